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
