//! /proc/PID/task: the threads of a task, their names and their ids inside the
//! task's PID namespace.

use crate::sys::SysResult;

/// Thread ids of a task, sorted (the leader is not necessarily first).
pub fn threads(pid: i32) -> SysResult<Vec<i32>> {
    super::numbered(&super::path(pid, "task"))
}

/// A thread's name (comm), without the newline.
pub fn comm(pid: i32, tid: i32) -> String {
    let text = std::fs::read_to_string(super::path(pid, &format!("task/{tid}/comm"))).unwrap_or_default();
    text.trim_end().to_string()
}

/// The id thread `tid` of task `pid` has inside its own PID namespace.
pub fn ns_tid(pid: i32, tid: i32) -> SysResult<i32> {
    Ok(super::status::thread(pid, tid)?.ns_last("NSpid"))
}
