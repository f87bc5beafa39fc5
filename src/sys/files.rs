//! fd-table plumbing for the restore child: reopen files at exact numbers.

use std::ffi::CString;
use std::os::fd::RawFd;

use crate::sys::{Errno, SysError, SysResult};

fn cpath(p: &str) -> SysResult<CString> {
    CString::new(p).map_err(|_| SysError::Parse { path: p.into(), detail: "NUL in path".into() })
}

fn check(call: &'static str, path: &str, r: libc::c_int) -> SysResult<libc::c_int> {
    if r < 0 {
        return Err(SysError::Path {
            call,
            path: path.into(),
            source: std::io::Error::from_raw_os_error(Errno::last() as i32),
        });
    }
    Ok(r)
}

/// open(2) with raw flags and mode.
pub fn open_raw(path: &str, flags: i32, mode: u32) -> SysResult<RawFd> {
    let c = cpath(path)?;
    // SAFETY: `c` is a valid NUL-terminated string.
    check("open", path, unsafe { libc::open(c.as_ptr(), flags, mode) })
}

/// Duplicates `fd` onto exactly `target` (dup3), keeping `fd`.
pub fn dup_to(fd: RawFd, target: RawFd, cloexec: bool) -> SysResult<()> {
    // SAFETY: dup3 on fds this process owns.
    check("dup3", "", unsafe { libc::dup3(fd, target, if cloexec { libc::O_CLOEXEC } else { 0 }) })?;
    Ok(())
}

/// Duplicates `fd` to the lowest number ≥ `min` (close-on-exec).
pub fn dup_at_least(fd: RawFd, min: RawFd) -> SysResult<RawFd> {
    // SAFETY: fcntl on an fd we own with integer arguments.
    check("fcntl(F_DUPFD_CLOEXEC)", "", unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) })
}

pub fn lseek(fd: RawFd, pos: u64) -> SysResult<()> {
    // SAFETY: lseek with integer arguments.
    if unsafe { libc::lseek(fd, pos as libc::off_t, libc::SEEK_SET) } < 0 {
        return Err(SysError::Call { call: "lseek", errno: Errno::last() });
    }
    Ok(())
}

/// Closes every fd in [from, to].
pub fn close_range(from: u32, to: u32) {
    if from > to {
        return;
    }
    // SAFETY: close_range with integer arguments; only this process's fds.
    unsafe { libc::syscall(libc::SYS_close_range, from, to, 0) };
}

pub fn close(fd: RawFd) {
    // SAFETY: closing an fd this process owns.
    unsafe { libc::close(fd) };
}

pub fn chdir(path: &str) -> SysResult<()> {
    let c = cpath(path)?;
    // SAFETY: valid C string.
    check("chdir", path, unsafe { libc::chdir(c.as_ptr()) }).map(|_| ())
}

pub fn chroot(path: &str) -> SysResult<()> {
    let c = cpath(path)?;
    // SAFETY: valid C string.
    check("chroot", path, unsafe { libc::chroot(c.as_ptr()) }).map(|_| ())
}

pub fn umask(mask: u32) {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) };
}

/// Raises the soft RLIMIT_NOFILE of this process to at least `n` (up to the hard limit).
pub fn ensure_nofile(n: u64) -> SysResult<()> {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: valid out pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    if rl.rlim_cur >= n {
        return Ok(());
    }
    if rl.rlim_max < n {
        return Err(SysError::Call {
            call: "setrlimit(RLIMIT_NOFILE): fd number above the hard limit",
            errno: Errno::EMFILE,
        });
    }
    rl.rlim_cur = n;
    // SAFETY: valid in pointer.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) } != 0 {
        return Err(SysError::Call { call: "setrlimit(RLIMIT_NOFILE)", errno: Errno::last() });
    }
    Ok(())
}

/// Blocks in read(2) on `fd` until ccr seizes us (or the fd reaches EOF).
pub fn wait_readable(fd: RawFd) -> isize {
    let mut b = [0u8; 1];
    // SAFETY: reading into a local buffer.
    unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) }
}

pub fn write_all(fd: RawFd, data: &[u8]) -> SysResult<()> {
    let mut off = 0;
    while off < data.len() {
        // SAFETY: writing from a live slice.
        let n = unsafe { libc::write(fd, data[off..].as_ptr().cast(), data.len() - off) };
        if n <= 0 {
            return Err(SysError::Call { call: "write", errno: Errno::last() });
        }
        off += n as usize;
    }
    Ok(())
}

/// A new anonymous shared memory file (memfd) of `size` bytes.
pub fn memfd(name: &str, size: u64) -> SysResult<RawFd> {
    let c = cpath(name)?;
    // SAFETY: valid C string; flags 0 (the fd is inherited by the restore children).
    let fd = unsafe { libc::memfd_create(c.as_ptr(), 0) };
    if fd < 0 {
        return Err(SysError::Call { call: "memfd_create", errno: Errno::last() });
    }
    // SAFETY: ftruncate on the fd just created.
    if unsafe { libc::ftruncate(fd, size as libc::off_t) } != 0 {
        close(fd);
        return Err(SysError::Call { call: "ftruncate(memfd)", errno: Errno::last() });
    }
    Ok(fd)
}

/// Starts a new session (the restored task was a session leader).
pub fn setsid() -> SysResult<()> {
    // SAFETY: setsid has no arguments.
    if unsafe { libc::setsid() } < 0 {
        return Err(SysError::Call { call: "setsid", errno: Errno::last() });
    }
    Ok(())
}

/// SIGCHLD back to its default action and unblocked, so the children a restore
/// child creates are neither reaped automatically (SIG_IGN) nor signalled to it.
pub fn default_sigchld() {
    // SAFETY: plain signal-disposition calls with valid arguments.
    unsafe {
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}

/// Every signal action of this process back to SIG_DFL with no flags and no mask
/// (the restore child must not hand ccr's own actions to the task it becomes).
pub fn reset_signal_actions() {
    let dfl = [0u64; 4]; // struct kernel_sigaction: handler SIG_DFL, flags, restorer, mask
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads one kernel_sigaction from a live array.
        unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, dfl.as_ptr(), std::ptr::null_mut::<u64>(), 8usize) };
    }
}

/// Ends the calling process the way a saved zombie ended: exit code or signal.
pub fn exit_like(wait_status: i32) -> ! {
    // SAFETY: ending the current process; the signal path resets the disposition
    // first so the signal is fatal, and disables core dumps.
    unsafe {
        if libc::WIFSIGNALED(wait_status) {
            let sig = libc::WTERMSIG(wait_status);
            let rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::setrlimit(libc::RLIMIT_CORE, &rl);
            libc::signal(sig, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::kill(libc::getpid(), sig);
        }
        libc::_exit(libc::WEXITSTATUS(wait_status))
    }
}

/// Waits up to `ms` for `fd` to become readable; false on timeout.
pub fn poll_readable(fd: RawFd, ms: i32) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) > 0 }
}

/// setpgid(2).
pub fn setpgid(pid: i32, pgid: i32) -> SysResult<()> {
    // SAFETY: setpgid with integer arguments.
    if unsafe { libc::setpgid(pid, pgid) } < 0 {
        return Err(SysError::Call { call: "setpgid", errno: Errno::last() });
    }
    Ok(())
}

/// pwrite of all of `data` at `off`.
pub fn write_at(fd: RawFd, data: &[u8], off: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    // SAFETY: a temporary File view of a borrowed fd, released before returning.
    let f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let r = f.write_all_at(data, off);
    let _ = std::os::fd::IntoRawFd::into_raw_fd(f);
    r
}

/// Makes this process a child subreaper: orphans below it are reparented to it.
pub fn set_child_subreaper() -> SysResult<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } < 0 {
        return Err(SysError::Call { call: "prctl(PR_SET_CHILD_SUBREAPER)", errno: Errno::last() });
    }
    Ok(())
}

/// Waits for child `pid` to exit (reaps it).
pub fn reap(pid: i32) -> SysResult<()> {
    let mut st = 0;
    loop {
        // SAFETY: a valid out pointer.
        if unsafe { libc::waitpid(pid, &mut st, libc::__WALL) } >= 0 {
            return Ok(());
        }
        if Errno::last() != Errno::EINTR {
            return Err(SysError::Pid { call: "waitpid", pid, errno: Errno::last() });
        }
    }
}
