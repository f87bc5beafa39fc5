//! /proc: one module per /proc file. Each has a pure parser (unit tested on fixed
//! text) and a thin reader that attaches the path to any error. Nothing outside this
//! room names a /proc path.

pub mod attr;
pub mod auxv;
pub mod cgroup;
pub mod children;
pub mod cpuinfo;
pub mod fd;
pub mod fdinfo;
pub mod kernel;
pub mod limits;
pub mod links;
pub mod loginuid;
pub mod maps;
pub mod mem;
pub mod mountinfo;
pub mod ns;
pub mod oom;
pub mod pagemap;
pub mod personality;
pub mod stat;
pub mod status;
pub mod sysctl;
pub mod sysvipc;
pub mod task;
pub mod timers;

use std::path::PathBuf;

use crate::sys::{SysError, SysResult};

pub use fdinfo::FdInfo;
pub use maps::MapEntry;
pub use stat::Stat;
pub use status::Status;

/// The calling process, where a pid is asked for (`/proc/self`).
pub const SELF: i32 = 0;

/// `/proc/PID/REST` (`/proc/self/REST` for [`SELF`]).
pub(crate) fn path(pid: i32, rest: &str) -> PathBuf {
    if pid == SELF {
        PathBuf::from(format!("/proc/self/{rest}"))
    } else {
        PathBuf::from(format!("/proc/{pid}/{rest}"))
    }
}

/// A file under /proc that belongs to no task (`/proc/sys/...`, `/proc/cpuinfo`).
pub(crate) fn global(rest: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{rest}"))
}

pub(crate) fn read_text(path: &std::path::Path) -> SysResult<String> {
    std::fs::read_to_string(path).map_err(SysError::path("read", path))
}

/// Reads `/proc/PID/NAME` and parses it with `parse`; `what` says what a text
/// `parse` refuses is not.
pub(crate) fn read_parsed<T>(pid: i32, name: &str, parse: impl FnOnce(&str) -> Option<T>, what: &str) -> SysResult<T> {
    let p = path(pid, name);
    parse(&read_text(&p)?).ok_or_else(|| parse_err(&p, what))
}

pub(crate) fn parse_err(path: &std::path::Path, detail: impl Into<String>) -> SysError {
    SysError::Parse { path: path.to_path_buf(), detail: detail.into() }
}

/// The numeric entries of a /proc directory (fds, threads), sorted.
pub(crate) fn numbered(dir: &std::path::Path) -> SysResult<Vec<i32>> {
    let mut v: Vec<i32> = std::fs::read_dir(dir)
        .map_err(SysError::path("readdir", dir))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    v.sort_unstable();
    Ok(v)
}

/// Whether `/proc/PID` exists (a live task or a zombie).
pub fn exists(pid: i32) -> bool {
    path(pid, "").exists()
}
