//! pidfds: a copy of another task's fd (pidfd_getfd), the same open file description.

use std::os::fd::{AsRawFd, OwnedFd};

use crate::sys::{Errno, SysError, SysResult};

/// A pidfd of task `pid` (readable once it exits).
pub fn open(pid: i32) -> SysResult<OwnedFd> {
    // SAFETY: pidfd_open with integer arguments.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return Err(SysError::Pid { call: "pidfd_open", pid, errno: Errno::last() });
    }
    crate::sys::fd::from_ret("pidfd_open", r as libc::c_int)
}

/// A copy of fd `fd` of task `pid`.
pub fn getfd(pid: i32, fd: i32) -> SysResult<OwnedFd> {
    let pidfd = open(pid)?;
    // SAFETY: pidfd_getfd with integer arguments.
    let got = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if got < 0 {
        return Err(SysError::Pid { call: "pidfd_getfd", pid, errno: Errno::last() });
    }
    crate::sys::fd::from_ret("pidfd_getfd", got as libc::c_int)
}
