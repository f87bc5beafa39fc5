//! Terminals: a tty's settings (termios, window size) read and set through an fd,
//! and a session's controlling terminal and foreground group given back.

use std::os::fd::{AsRawFd, BorrowedFd};

use super::{SysError, SysResult};

/// What a tty keeps that its users see.
#[derive(Clone, Copy)]
pub struct Settings {
    pub termios: libc::termios,
    pub winsize: libc::winsize,
}

pub fn settings(fd: BorrowedFd<'_>) -> SysResult<Settings> {
    // SAFETY: both are plain C structs the ioctls fill.
    let mut termios: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut winsize: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TCGETS writes one termios into the live struct.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TCGETS, &mut termios) } < 0 {
        return Err(SysError::last("ioctl(TCGETS)"));
    }
    // SAFETY: TIOCGWINSZ writes one winsize into the live struct.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut winsize) } < 0 {
        return Err(SysError::last("ioctl(TIOCGWINSZ)"));
    }
    Ok(Settings { termios, winsize })
}

pub fn set_settings(fd: BorrowedFd<'_>, s: &Settings) -> SysResult<()> {
    // SAFETY: TCSETS reads one termios.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TCSETS, &s.termios) } < 0 {
        return Err(SysError::last("ioctl(TCSETS)"));
    }
    // SAFETY: TIOCSWINSZ reads one winsize.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &s.winsize) } < 0 {
        return Err(SysError::last("ioctl(TIOCSWINSZ)"));
    }
    Ok(())
}

/// Whether `fd` is the master side of a pty (TIOCGPTN answers only there).
pub fn is_pty_master(fd: BorrowedFd<'_>) -> bool {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int into the live variable.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGPTN, &mut n) == 0 }
}

/// Makes the tty `fd` is open on the controlling terminal of the calling session
/// leader (which must have none), taking it from no other session.
pub fn make_controlling(fd: BorrowedFd<'_>) -> SysResult<()> {
    // SAFETY: TIOCSCTTY takes an int argument (0: do not steal).
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(SysError::last("ioctl(TIOCSCTTY)"));
    }
    Ok(())
}

/// Sets the foreground process group of the calling task's controlling tty.
/// SIGTTOU is blocked meanwhile: a caller outside the foreground would be stopped.
pub fn set_foreground(fd: BorrowedFd<'_>, pgrp: i32) -> SysResult<()> {
    // SAFETY: sigset_t is a plain C struct sigemptyset initialises.
    let mut ttou: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: sigset calls on live sets; the mask is put back below.
    unsafe {
        libc::sigemptyset(&mut ttou);
        libc::sigaddset(&mut ttou, libc::SIGTTOU);
        libc::pthread_sigmask(libc::SIG_BLOCK, &ttou, &mut old);
    }
    // SAFETY: tcsetpgrp on an open fd.
    let ret = unsafe { libc::tcsetpgrp(fd.as_raw_fd(), pgrp) };
    let err = SysError::last("tcsetpgrp");
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    if ret < 0 {
        return Err(err);
    }
    Ok(())
}

/// An int-valued tty ioctl that reads into `out`.
fn get_int(fd: BorrowedFd<'_>, req: libc::Ioctl, call: &'static str) -> SysResult<i32> {
    let mut v: libc::c_int = 0;
    // SAFETY: the request writes one int into the live `v`.
    if unsafe { libc::ioctl(fd.as_raw_fd(), req, &mut v) } < 0 {
        return Err(SysError::last(call));
    }
    Ok(v)
}

/// An int-valued tty ioctl that takes a pointer to `v`.
fn set_int(fd: BorrowedFd<'_>, req: libc::Ioctl, v: i32, call: &'static str) -> SysResult<()> {
    let v: libc::c_int = v;
    // SAFETY: the request reads one int from the live `v`.
    if unsafe { libc::ioctl(fd.as_raw_fd(), req, &v) } < 0 {
        return Err(SysError::last(call));
    }
    Ok(())
}

/// The index of the pty whose master `fd` is (/dev/pts/N).
pub fn pty_index(master: BorrowedFd<'_>) -> SysResult<u32> {
    Ok(get_int(master, libc::TIOCGPTN, "ioctl(TIOCGPTN)")? as u32)
}

/// Opens the slave of the pty whose master `fd` is, in the master's own devpts
/// instance (no path lookup).
pub fn open_peer(master: BorrowedFd<'_>, flags: i32) -> SysResult<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: TIOCGPTPEER takes the open flags as its integer argument and
    // returns a new fd.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    if fd < 0 {
        return Err(SysError::last("ioctl(TIOCGPTPEER)"));
    }
    // SAFETY: a fresh fd only we hold.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Whether the slave of pty master `fd` is locked (unlockpt not called yet).
pub fn pty_locked(master: BorrowedFd<'_>) -> SysResult<bool> {
    Ok(get_int(master, libc::TIOCGPTLCK, "ioctl(TIOCGPTLCK)")? != 0)
}

pub fn set_pty_locked(master: BorrowedFd<'_>, locked: bool) -> SysResult<()> {
    set_int(master, libc::TIOCSPTLCK, i32::from(locked), "ioctl(TIOCSPTLCK)")
}

/// Whether pty master `fd` is in packet mode.
pub fn packet_mode(master: BorrowedFd<'_>) -> SysResult<bool> {
    Ok(get_int(master, libc::TIOCGPKT, "ioctl(TIOCGPKT)")? != 0)
}

pub fn set_packet_mode(master: BorrowedFd<'_>, on: bool) -> SysResult<()> {
    set_int(master, libc::TIOCPKT, i32::from(on), "ioctl(TIOCPKT)")
}

/// Whether the tty `fd` is open on is in exclusive mode (TIOCEXCL).
pub fn exclusive(fd: BorrowedFd<'_>) -> SysResult<bool> {
    Ok(get_int(fd, libc::TIOCGEXCL, "ioctl(TIOCGEXCL)")? != 0)
}

pub fn set_exclusive(fd: BorrowedFd<'_>) -> SysResult<()> {
    // SAFETY: TIOCEXCL takes no argument.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCEXCL) } < 0 {
        return Err(SysError::last("ioctl(TIOCEXCL)"));
    }
    Ok(())
}

/// Every byte readable from `fd` now, and what more arrives while it keeps coming
/// (a tty's flip buffer feeds its line discipline as room is made). Asked with
/// poll first: `fd` may be a blocking description the tree shares. A pty master
/// in packet mode prefixes each read with a status byte: 0 before data, else a
/// read of that byte alone (a flush or stop notice), which is not data.
pub fn drain(fd: BorrowedFd<'_>, packet: bool) -> SysResult<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let mut wait = 0;
    while super::fd::poll_readable(fd, wait) {
        let Some(n) = super::fd::read_some(fd, &mut buf) else {
            match super::Errno::last() {
                super::Errno::EINTR | super::Errno::EAGAIN => continue,
                // The other end is closed and nothing is left.
                super::Errno::EIO => break,
                errno => return Err(SysError::Call { call: "read(tty)", errno }),
            }
        };
        if n == 0 {
            break;
        }
        let got = &buf[..n];
        match (packet, got[0]) {
            (false, _) => out.extend_from_slice(got),
            (true, 0) => out.extend_from_slice(&got[1..]),
            (true, _) => {}
        }
        wait = 5;
    }
    Ok(out)
}

/// How many bytes are waiting to be read from the tty `fd` is open on.
pub fn queued(fd: BorrowedFd<'_>) -> SysResult<usize> {
    Ok(get_int(fd, libc::FIONREAD, "ioctl(FIONREAD)")? as usize)
}

/// The session whose controlling terminal the pty of master `fd` is, if any.
pub fn session_of(master: BorrowedFd<'_>) -> SysResult<Option<i32>> {
    match get_int(master, libc::TIOCGSID, "ioctl(TIOCGSID)") {
        Ok(sid) => Ok(Some(sid)),
        Err(SysError::Call { errno: super::Errno::ENOTTY, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether the tty `fd` is open on takes a write now (not stopped, not full).
pub fn writable(fd: BorrowedFd<'_>) -> bool {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLOUT, revents: 0 };
    // SAFETY: one valid pollfd, no waiting.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    r > 0 && p.revents & libc::POLLOUT != 0
}

/// Whether the other end of the tty `fd` is open on hung up (a pty master whose
/// slaves are all closed).
pub fn hung_up(fd: BorrowedFd<'_>) -> bool {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: 0, revents: 0 };
    // SAFETY: one valid pollfd, no waiting.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    r > 0 && p.revents & libc::POLLHUP != 0
}

/// Feeds `bytes` to the line discipline of the tty `fd` is open on as if typed
/// there (TIOCSTI, needs CAP_SYS_ADMIN), one at a time and at once: a write to
/// its pty master would reach it later, from a kernel worker, maybe after its
/// settings changed again.
pub fn simulate_input(fd: BorrowedFd<'_>, bytes: &[u8]) -> SysResult<()> {
    for b in bytes {
        // SAFETY: TIOCSTI reads one byte from the live `b`.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSTI, b as *const u8) } < 0 {
            return Err(SysError::last("ioctl(TIOCSTI)"));
        }
    }
    Ok(())
}
