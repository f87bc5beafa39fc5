//! eventfd, timerfd, signalfd and epoll: creating them again with their state.

use std::os::fd::RawFd;

use crate::sys::{Errno, SysError, SysResult};

fn check(call: &'static str, r: libc::c_int) -> SysResult<RawFd> {
    if r < 0 {
        return Err(SysError::Call { call, errno: Errno::last() });
    }
    Ok(r)
}

/// eventfd(2) holding `count`.
pub fn eventfd(count: u64, semaphore: bool, nonblock: bool) -> SysResult<RawFd> {
    let mut flags = libc::EFD_CLOEXEC;
    if semaphore {
        flags |= libc::EFD_SEMAPHORE;
    }
    if nonblock {
        flags |= libc::EFD_NONBLOCK;
    }
    // SAFETY: eventfd with integer arguments.
    let fd = check("eventfd", unsafe { libc::eventfd(0, flags) })?;
    if count > 0 {
        // SAFETY: writing 8 bytes from a local u64 adds it to the counter.
        if unsafe { libc::write(fd, (&count as *const u64).cast(), 8) } != 8 {
            return Err(SysError::Call { call: "write(eventfd)", errno: Errno::last() });
        }
    }
    Ok(fd)
}

fn ts(ns: u64) -> libc::timespec {
    libc::timespec { tv_sec: (ns / 1_000_000_000) as libc::time_t, tv_nsec: (ns % 1_000_000_000) as libc::c_long }
}

/// timerfd_create + timerfd_settime (relative) + the unread expirations.
pub fn timerfd(clock: i32, nonblock: bool, value_ns: u64, interval_ns: u64, ticks: u64) -> SysResult<RawFd> {
    let flags = libc::TFD_CLOEXEC | if nonblock { libc::TFD_NONBLOCK } else { 0 };
    // SAFETY: timerfd_create with integer arguments.
    let fd = check("timerfd_create", unsafe { libc::timerfd_create(clock, flags) })?;
    if value_ns != 0 {
        let its = libc::itimerspec { it_interval: ts(interval_ns), it_value: ts(value_ns) };
        // SAFETY: a valid itimerspec; no old value wanted.
        check("timerfd_settime", unsafe { libc::timerfd_settime(fd, 0, &its, std::ptr::null_mut()) })?;
    }
    if ticks > 0 {
        // TFD_IOC_SET_TICKS (CONFIG_CHECKPOINT_RESTORE): _IOW('T', 0, u64).
        let req = nix::request_code_write!(b'T', 0, std::mem::size_of::<u64>());
        // SAFETY: the ioctl reads one u64 from the pointer.
        check("ioctl(TFD_IOC_SET_TICKS)", unsafe { libc::ioctl(fd, req as _, &ticks as *const u64) })?;
    }
    Ok(fd)
}

/// signalfd(2) for the signals in `mask` (bit N-1 = signal N).
pub fn signalfd(mask: u64, nonblock: bool) -> SysResult<RawFd> {
    let flags = libc::SFD_CLOEXEC | if nonblock { libc::SFD_NONBLOCK } else { 0 };
    // SAFETY: the raw syscall takes a kernel sigset (8 bytes) and its size.
    let r = unsafe { libc::syscall(libc::SYS_signalfd4, -1, &mask as *const u64, 8usize, flags) };
    check("signalfd4", r as libc::c_int)
}

pub fn epoll_create() -> SysResult<RawFd> {
    // SAFETY: epoll_create1 with a flag.
    check("epoll_create1", unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })
}

/// epoll_ctl(EPOLL_CTL_ADD); an fd already in the set is fine.
pub fn epoll_add(epfd: RawFd, fd: RawFd, events: u32, data: u64) -> SysResult<()> {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: a valid epoll_event.
    if unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 && Errno::last() != Errno::EEXIST {
        return Err(SysError::Call { call: "epoll_ctl(EPOLL_CTL_ADD)", errno: Errno::last() });
    }
    Ok(())
}
