//! /proc/PID/loginuid: the audit login uid (4294967295: unset).

use crate::sys::SysResult;

pub fn read(pid: i32) -> SysResult<u32> {
    super::read_parsed(pid, "loginuid", |t| t.trim().parse().ok(), "not a number")
}

// Only the task itself may write it (the kernel refuses anyone else with EPERM):
// restore has the task do it through a remote write.
