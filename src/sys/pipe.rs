//! Pipes: reading what sits in a pipe without consuming it (tee), and creating a
//! pipe again with its capacity and contents.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::sys::{Errno, SysError, SysResult};

/// Capacity and queued bytes of the pipe behind fd `fd` of task `pid`. Opens the
/// pipe again through /proc (read side, non-blocking) and tees its contents into a
/// pipe of our own, which leaves the task's pipe untouched.
pub fn peek(pid: i32, fd: i32) -> SysResult<(u32, Vec<u8>)> {
    let rd = crate::sys::proc::fd::reopen(pid, fd, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC)?;
    let cap = capacity(rd.as_fd())?;
    let (r, w) = pipe_with_capacity(cap)?;
    // SAFETY: tee between two pipe fds we own; no user memory involved.
    let n = unsafe { libc::tee(rd.as_raw_fd(), w.as_raw_fd(), cap as usize, libc::SPLICE_F_NONBLOCK) };
    if n < 0 {
        if Errno::last() == Errno::EAGAIN {
            return Ok((cap, Vec::new()));
        }
        return Err(SysError::last("tee"));
    }
    let mut data = vec![0u8; n as usize];
    let mut off = 0;
    while off < data.len() {
        // SAFETY: reading into the live buffer `data`.
        let got = unsafe { libc::read(r.as_raw_fd(), data[off..].as_mut_ptr().cast(), data.len() - off) };
        if got <= 0 {
            return Err(SysError::last("read(pipe copy)"));
        }
        off += got as usize;
    }
    Ok((cap, data))
}

/// The capacity of a pipe (F_GETPIPE_SZ).
pub fn capacity(fd: BorrowedFd<'_>) -> SysResult<u32> {
    Ok(crate::sys::fd::fcntl_int(fd, "fcntl(F_GETPIPE_SZ)", libc::F_GETPIPE_SZ)? as u32)
}

/// A new pipe (read end, write end) of at least `capacity` bytes.
pub fn pipe_with_capacity(capacity: u32) -> SysResult<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two fds into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(SysError::last("pipe2"));
    }
    // SAFETY: both fds were just created and are owned here.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl with integer arguments on an fd we own.
    if capacity > 4096 && unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, capacity as libc::c_int) } < 0 {
        return Err(SysError::Call {
            call: "fcntl(F_SETPIPE_SZ) (above pipe-max-size needs CAP_SYS_RESOURCE)",
            errno: Errno::last(),
        });
    }
    Ok((r, w))
}

/// A plain close-on-exec pipe.
pub fn pipe() -> SysResult<(OwnedFd, OwnedFd)> {
    pipe_with_capacity(0)
}
