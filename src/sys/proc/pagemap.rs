//! /proc/PID/pagemap: opened here, read by `sys::pagemap`.

use crate::sys::{SysError, SysResult};

pub fn open(pid: i32) -> SysResult<(std::fs::File, std::path::PathBuf)> {
    let p = super::path(pid, "pagemap");
    let f = std::fs::File::open(&p).map_err(SysError::path("open", &p))?;
    Ok((f, p))
}
