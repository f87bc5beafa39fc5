//! /proc/sys/kernel/*: the kernel's knobs that ccr reads or sets.

use crate::sys::{SysError, SysResult};

fn knob(name: &str) -> std::path::PathBuf {
    super::global(&format!("sys/kernel/{name}"))
}

fn number(name: &str) -> Option<u64> {
    std::fs::read_to_string(knob(name)).ok()?.trim().parse().ok()
}

/// The kernel release (`uname -r`).
pub fn osrelease() -> String {
    std::fs::read_to_string(knob("osrelease")).unwrap_or_default().trim().to_string()
}

/// The highest capability number this kernel knows.
pub fn cap_last_cap() -> Option<u64> {
    number("cap_last_cap")
}

pub fn pid_max() -> Option<u64> {
    number("pid_max")
}

/// Yama's ptrace_scope, when Yama is built in.
pub fn yama_ptrace_scope() -> Option<u64> {
    number("yama/ptrace_scope")
}

/// The id the next shmget(IPC_CREAT) gets (-1: the kernel chooses).
pub fn set_shm_next_id(id: i32) -> SysResult<()> {
    set_next_id("shm_next_id", id)
}

/// The id the next SysV object of a kind gets (`shm_next_id`, `sem_next_id`,
/// `msg_next_id`), in this process's IPC namespace.
pub fn set_next_id(knob_name: &str, id: i32) -> SysResult<()> {
    let p = knob(knob_name);
    std::fs::write(&p, id.to_string()).map_err(SysError::path("write", p))
}
