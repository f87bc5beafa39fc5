//! /proc/PID/oom_score_adj: how the OOM killer weighs the process.

use crate::sys::{SysError, SysResult};

pub fn read(pid: i32) -> SysResult<i32> {
    super::read_parsed(pid, "oom_score_adj", |t| t.trim().parse().ok(), "not a number")
}

/// Sets it. Below the process's floor (the value it inherited, 0 from ccr) this
/// needs CAP_SYS_RESOURCE, which the caller may lack: the error then says so.
pub fn write(pid: i32, v: i32) -> SysResult<()> {
    let p = super::path(pid, "oom_score_adj");
    std::fs::write(&p, v.to_string()).map_err(|source| {
        let call = if source.raw_os_error() == Some(libc::EACCES) {
            "write (lowering oom_score_adj needs CAP_SYS_RESOURCE)"
        } else {
            "write"
        };
        SysError::Path { call, path: p.clone(), source }
    })
}
