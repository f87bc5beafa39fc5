//! ccr: checkpoint/restore of Linux processes and containers.
//!
//! The engine is a pipeline: `dump` turns live tasks into an images directory,
//! `restore` turns an images directory back into live tasks, each as a list of
//! named stages. Only `sys` talks to the kernel (and holds the only `unsafe`);
//! everything else is safe Rust over its typed wrappers:
//!
//! - `checkpoint`, `mm`, `files`: the engine's picture of what a checkpoint holds;
//!   `files` has one module per kind of open file, dump and restore side by side;
//! - `image`: the images directory, the table of image kinds, the page writer and
//!   reader, and the conversions between image messages and engine types;
//! - `dump`, `restore`: the stages; `cgroup`, `holder`: freezing and cgroups;
//! - `api`, `opts`: what callers ask for; `cli`: the command lines.

#[deny(unsafe_code)]
pub mod api;
#[deny(unsafe_code)]
pub mod cgroup;
#[deny(unsafe_code)]
pub mod check;
#[deny(unsafe_code)]
pub mod checkpoint;
#[deny(unsafe_code)]
pub mod cli;
#[deny(unsafe_code)]
pub mod dump;
#[deny(unsafe_code)]
pub mod error;
#[deny(unsafe_code)]
pub mod files;
#[deny(unsafe_code)]
pub mod holder;
#[deny(unsafe_code)]
pub mod image;
#[deny(unsafe_code)]
pub mod log;
#[deny(unsafe_code)]
pub mod mm;
#[deny(unsafe_code)]
pub mod opts;
#[deny(unsafe_code)]
pub mod progress;
#[deny(unsafe_code)]
pub mod restore;
#[deny(unsafe_code)]
pub mod show;
pub mod sys;

pub use error::{Error, Result};
