//! waitpid(2): the one wait loop of ccr (children, tracees, helpers).

use crate::sys::{Errno, SysError, SysResult};

/// What a wait reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Exited(i32),
    Signaled(i32),
    /// A stop: the signal and the ptrace event (status >> 16), 0 for none.
    Stopped {
        sig: i32,
        event: u32,
    },
    Continued,
}

impl Status {
    pub fn from_raw(st: i32) -> Status {
        if libc::WIFEXITED(st) {
            Status::Exited(libc::WEXITSTATUS(st))
        } else if libc::WIFSIGNALED(st) {
            Status::Signaled(libc::WTERMSIG(st))
        } else if libc::WIFSTOPPED(st) {
            Status::Stopped { sig: libc::WSTOPSIG(st), event: (st >> 16) as u32 }
        } else {
            Status::Continued
        }
    }

    pub fn is_exit(self) -> bool {
        matches!(self, Status::Exited(_) | Status::Signaled(_))
    }

    /// As a shell reports it: the exit code, or 128 + signal.
    pub fn shell_code(self) -> u8 {
        match self {
            Status::Exited(c) => c as u8,
            Status::Signaled(s) => 128u8.wrapping_add(s as u8),
            _ => 0,
        }
    }
}

fn waitpid(pid: i32, flags: i32) -> Result<Option<Status>, Errno> {
    let mut st = 0;
    loop {
        // SAFETY: `st` is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut st, flags | libc::__WALL) };
        if r == -1 {
            let e = Errno::last();
            if e == Errno::EINTR {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            return Ok(None);
        }
        return Ok(Some(Status::from_raw(st)));
    }
}

/// Waits for the next state change of `pid` (a child or a tracee).
pub fn wait(pid: i32) -> Result<Status, Errno> {
    waitpid(pid, 0).map(|s| s.expect("a blocking waitpid reports a state"))
}

/// A state change of `pid` if one is pending.
pub fn try_wait(pid: i32) -> Result<Option<Status>, Errno> {
    waitpid(pid, libc::WNOHANG)
}

/// Waits until child `pid` has exited; its last status. ECHILD (someone else reaped
/// it) counts as gone.
pub fn reap(pid: i32) -> SysResult<Option<Status>> {
    loop {
        match wait(pid) {
            Ok(s) if s.is_exit() => return Ok(Some(s)),
            Ok(_) => continue,
            Err(Errno::ECHILD) => return Ok(None),
            Err(errno) => return Err(SysError::Pid { call: "waitpid", pid, errno }),
        }
    }
}
