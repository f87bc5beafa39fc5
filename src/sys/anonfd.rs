//! eventfd, timerfd, signalfd and epoll: creating them again with their state.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use crate::sys::fd::from_ret;
use crate::sys::{Errno, SysError, SysResult};

/// eventfd(2) holding `count`.
pub fn eventfd(count: u64, semaphore: bool, nonblock: bool) -> SysResult<OwnedFd> {
    let mut flags = libc::EFD_CLOEXEC;
    if semaphore {
        flags |= libc::EFD_SEMAPHORE;
    }
    if nonblock {
        flags |= libc::EFD_NONBLOCK;
    }
    // SAFETY: eventfd with integer arguments.
    let fd = from_ret("eventfd", unsafe { libc::eventfd(0, flags) })?;
    // SAFETY: writing 8 bytes from a local u64 adds it to the counter.
    if count > 0 && unsafe { libc::write(fd.as_raw_fd(), (&count as *const u64).cast(), 8) } != 8 {
        return Err(SysError::last("write(eventfd)"));
    }
    Ok(fd)
}

fn ts(ns: u64) -> libc::timespec {
    libc::timespec { tv_sec: (ns / 1_000_000_000) as libc::time_t, tv_nsec: (ns % 1_000_000_000) as libc::c_long }
}

/// A timerfd's state: clock, time left, interval, expirations not yet read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerState {
    pub clock: i32,
    pub value_ns: u64,
    pub interval_ns: u64,
    pub ticks: u64,
}

/// timerfd_create + timerfd_settime (relative) + the unread expirations.
pub fn timerfd(t: &TimerState, nonblock: bool) -> SysResult<OwnedFd> {
    let flags = libc::TFD_CLOEXEC | if nonblock { libc::TFD_NONBLOCK } else { 0 };
    // SAFETY: timerfd_create with integer arguments.
    let fd = from_ret("timerfd_create", unsafe { libc::timerfd_create(t.clock, flags) })?;
    if t.value_ns != 0 {
        let its = libc::itimerspec { it_interval: ts(t.interval_ns), it_value: ts(t.value_ns) };
        // SAFETY: a valid itimerspec; no old value wanted.
        if unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &its, std::ptr::null_mut()) } < 0 {
            return Err(SysError::last("timerfd_settime"));
        }
    }
    if t.ticks > 0 {
        // TFD_IOC_SET_TICKS (CONFIG_CHECKPOINT_RESTORE): _IOW('T', 0, u64).
        let req = nix::request_code_write!(b'T', 0, std::mem::size_of::<u64>());
        // SAFETY: the ioctl reads one u64 from the pointer.
        if unsafe { libc::ioctl(fd.as_raw_fd(), req as _, &t.ticks as *const u64) } < 0 {
            return Err(SysError::last("ioctl(TFD_IOC_SET_TICKS)"));
        }
    }
    Ok(fd)
}

/// signalfd(2) for the signals in `mask` (bit N-1 = signal N).
pub fn signalfd(mask: u64, nonblock: bool) -> SysResult<OwnedFd> {
    let flags = libc::SFD_CLOEXEC | if nonblock { libc::SFD_NONBLOCK } else { 0 };
    // SAFETY: the raw syscall takes a kernel sigset (8 bytes) and its size.
    let r = unsafe { libc::syscall(libc::SYS_signalfd4, -1, &mask as *const u64, 8usize, flags) };
    from_ret("signalfd4", r as libc::c_int)
}

pub fn epoll_create() -> SysResult<OwnedFd> {
    // SAFETY: epoll_create1 with a flag.
    from_ret("epoll_create1", unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })
}

/// epoll_ctl(EPOLL_CTL_ADD) of fd number `fd` (of this process); an fd already in
/// the set is fine.
pub fn epoll_add(epfd: BorrowedFd<'_>, fd: i32, events: u32, data: u64) -> SysResult<()> {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: a valid epoll_event; `fd` is checked by the kernel.
    if unsafe { libc::epoll_ctl(epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0
        && Errno::last() != Errno::EEXIST
    {
        return Err(SysError::last("epoll_ctl(EPOLL_CTL_ADD)"));
    }
    Ok(())
}
