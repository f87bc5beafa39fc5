//! /proc/PID/mem: another task's memory, also where process_vm_readv refuses
//! (PROT_NONE and other pages the task itself cannot read).

use crate::sys::{SysError, SysResult};

pub fn open(pid: i32) -> SysResult<std::fs::File> {
    let p = super::path(pid, "mem");
    std::fs::OpenOptions::new().read(true).write(true).open(&p).map_err(SysError::path("open", p))
}
