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
//! - `action`: the hooks (action scripts, callbacks) at named stages of both;
//! - `api`, `opts`: what callers ask for; `cli`: the command lines.

#![deny(unsafe_code)]

pub mod action;
pub mod api;
pub mod cgroup;
pub mod check;
pub mod checkpoint;
pub mod cli;
pub mod dump;
pub mod error;
pub mod fault;
pub mod files;
pub mod holder;
pub mod image;
pub mod journal;
pub mod log;
pub mod mm;
pub mod mounts;
pub mod netns;
pub mod opts;
pub mod progress;
pub mod restore;
pub mod show;
// The one room that talks to the kernel, and so the only one with `unsafe`.
#[allow(unsafe_code)]
pub mod sys;
pub mod userns;

pub use error::{Error, Result};
