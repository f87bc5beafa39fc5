//! Creating and ending processes: clone3 with an exact PID, signals, waiting.

use crate::sys::kernel;
use crate::sys::{Errno, SysError, SysResult};

/// Whether this process runs a single thread (forking without exec is only sound then).
pub fn single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Threads:")).map(|l| l[8..].trim() == "1"))
        .unwrap_or(false)
}

/// clone3 with `set_tid` = `pid` (any PID when None); CLONE_PARENT with `as_sibling`.
/// The child runs `child` and exits with its return value; the parent gets the PID.
///
/// The engine must be single-threaded here: the child is a copy of this process and
/// runs Rust code after the clone (checked, an error otherwise).
pub fn spawn_with_pid<F: FnOnce() -> i32>(pid: Option<i32>, as_sibling: bool, child: F) -> SysResult<i32> {
    spawn(pid, as_sibling, false, child)
}

/// As `spawn_with_pid`; with `new_pidns` the child is PID 1 of a new PID namespace.
pub fn spawn<F: FnOnce() -> i32>(pid: Option<i32>, as_sibling: bool, new_pidns: bool, child: F) -> SysResult<i32> {
    if !single_threaded() {
        return Err(SysError::Task {
            pid: std::process::id() as i32,
            detail: "restore must run in a single-threaded process".into(),
        });
    }
    let set_tid: [libc::pid_t; 1] = [pid.unwrap_or(0)];
    let args = kernel::clone_args {
        flags: (if as_sibling { kernel::CLONE_PARENT as u64 } else { 0 })
            | (if new_pidns { kernel::CLONE_NEWPID as u64 } else { 0 }),
        // With CLONE_PARENT the kernel takes our own exit signal (SIGCHLD: the helper
        // was forked) and refuses an explicit one.
        exit_signal: if as_sibling { 0 } else { libc::SIGCHLD as u64 },
        set_tid: if pid.is_some() { set_tid.as_ptr() as u64 } else { 0 },
        set_tid_size: if pid.is_some() { 1 } else { 0 },
        ..Default::default()
    };
    // SAFETY: clone3 without CLONE_VM behaves like fork: the child gets a private copy
    // of this (single-threaded) process; `args` and `set_tid` outlive the call.
    let r =
        unsafe { libc::syscall(libc::SYS_clone3, &args as *const kernel::clone_args, std::mem::size_of_val(&args)) };
    if r < 0 {
        return Err(SysError::Pid { call: "clone3(set_tid)", pid: pid.unwrap_or(0), errno: Errno::last() });
    }
    if r == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(127);
        // SAFETY: _exit ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    Ok(r as i32)
}

/// What occupies a PID right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PidState {
    Free,
    /// Dead but not yet reaped by its parent: the PID comes free soon.
    Zombie,
    Alive,
}

pub fn pid_state(pid: i32) -> PidState {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => PidState::Free,
        Ok(s) => match s.rfind(')').and_then(|i| s[i + 1..].trim_start().chars().next()) {
            Some('Z') | Some('X') => PidState::Zombie,
            _ => PidState::Alive,
        },
    }
}

pub fn kill(pid: i32, sig: i32) -> SysResult<()> {
    // SAFETY: kill with integer arguments.
    if unsafe { libc::kill(pid, sig) } != 0 {
        return Err(SysError::Pid { call: "kill", pid, errno: Errno::last() });
    }
    Ok(())
}

/// Whether fd `a` of `pid_a` and fd `b` of `pid_b` are the same open file description
/// (kcmp KCMP_FILE).
pub fn same_file(pid_a: i32, a: i32, pid_b: i32, b: i32) -> SysResult<bool> {
    const KCMP_FILE: i32 = 0;
    // SAFETY: kcmp with integer arguments only.
    let r = unsafe { libc::syscall(libc::SYS_kcmp, pid_a, pid_b, KCMP_FILE, a as u64, b as u64) };
    if r < 0 {
        return Err(SysError::Pid { call: "kcmp(KCMP_FILE)", pid: pid_a, errno: Errno::last() });
    }
    Ok(r == 0)
}

/// The CPU affinity mask of a thread (sched_getaffinity), as raw bytes.
pub fn affinity(tid: i32) -> SysResult<Vec<u8>> {
    let mut buf = vec![0u8; 128];
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    let n = unsafe { libc::syscall(libc::SYS_sched_getaffinity, tid, buf.len(), buf.as_mut_ptr()) };
    if n < 0 {
        return Err(SysError::Pid { call: "sched_getaffinity", pid: tid, errno: Errno::last() });
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// Sets a thread's CPU affinity mask (raw bytes as `affinity` returns them).
pub fn set_affinity(tid: i32, mask: &[u8]) -> SysResult<()> {
    // SAFETY: the kernel reads `mask.len()` bytes from `mask`.
    if unsafe { libc::syscall(libc::SYS_sched_setaffinity, tid, mask.len(), mask.as_ptr()) } < 0 {
        return Err(SysError::Pid { call: "sched_setaffinity", pid: tid, errno: Errno::last() });
    }
    Ok(())
}

/// A mask holding only the CPU this thread runs on now.
pub fn this_cpu_mask() -> Vec<u8> {
    // SAFETY: sched_getcpu has no arguments.
    let cpu = unsafe { libc::sched_getcpu() }.max(0) as usize;
    let mut m = vec![0u8; (cpu / 8 + 1).max(8)];
    m[cpu / 8] |= 1 << (cpu % 8);
    m
}

/// Keeps ccr and the tasks it drives on one CPU for a run: every ptrace stop is
/// then a switch on that CPU instead of a wakeup of another (slow on VMs). Each
/// thread's own mask goes back when it is let go (`release`) or when the pin drops.
pub struct CpuPin {
    mask: Vec<u8>,
    ours: Option<Vec<u8>>,
    saved: Vec<(i32, Vec<u8>)>,
}

impl CpuPin {
    /// Pins the calling thread to the CPU it runs on.
    pub fn new() -> CpuPin {
        let mask = this_cpu_mask();
        let ours = affinity(0).ok();
        let _ = set_affinity(0, &mask);
        CpuPin { mask, ours, saved: Vec::new() }
    }

    /// Pins `tid` too; returns its own mask (kept to put back).
    pub fn pin(&mut self, tid: i32) -> Option<Vec<u8>> {
        let own = affinity(tid).ok()?;
        set_affinity(tid, &self.mask).ok()?;
        self.saved.push((tid, own.clone()));
        Some(own)
    }

    /// Puts back the masks of every pinned thread (before they run again).
    pub fn release(&mut self) {
        for (tid, m) in self.saved.drain(..) {
            let _ = set_affinity(tid, &m);
        }
    }

    /// The mask ccr itself had before pinning.
    pub fn original(&self) -> Option<&[u8]> {
        self.ours.as_deref()
    }
}

impl Default for CpuPin {
    fn default() -> Self {
        CpuPin::new()
    }
}

impl Drop for CpuPin {
    fn drop(&mut self) {
        self.release();
        if let Some(m) = self.ours.take() {
            let _ = set_affinity(0, &m);
        }
    }
}
