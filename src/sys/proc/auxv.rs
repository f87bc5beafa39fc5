//! /proc/PID/auxv: the ELF auxiliary vector, as raw bytes.

use crate::sys::{SysError, SysResult};

pub fn read(pid: i32) -> SysResult<Vec<u8>> {
    let p = super::path(pid, "auxv");
    std::fs::read(&p).map_err(SysError::path("read", p))
}
