//! ccr: checkpoint/restore of Linux processes and containers.
//!
//! The engine is a pipeline: `dump` turns live tasks into an image directory,
//! `restore` turns an image directory back into live tasks. Only `sys` talks to the
//! kernel; everything else is safe Rust over its typed wrappers.

pub mod api;
pub mod cgroup;
pub mod check;
pub mod dump;
pub mod error;
pub mod holder;
pub mod image;
pub mod log;
pub mod opts;
pub mod progress;
pub mod restore;
pub mod show;
pub mod sys;

pub use error::{Error, Result};
pub use opts::Opts;
