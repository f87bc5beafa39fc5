//! /proc/PID/fd: a task's open fds, where each points, and opening the same file
//! again through the link (a new open file description of the same object).

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use crate::sys::{SysError, SysResult};

/// /proc/PID/fd/FD: stat(2) through it reaches the open file itself.
pub fn link_path(pid: i32, fd: i32) -> PathBuf {
    super::path(pid, &format!("fd/{fd}"))
}

/// Open fd numbers of a task, sorted.
pub fn list(pid: i32) -> SysResult<Vec<i32>> {
    super::numbered(&super::path(pid, "fd"))
}

/// Where fd `fd` of `pid` points ("/etc/passwd", "pipe:[123]", "anon_inode:[eventfd]").
pub fn target(pid: i32, fd: i32) -> SysResult<String> {
    let p = link_path(pid, fd);
    Ok(std::fs::read_link(&p).map_err(SysError::path("readlink", &p))?.to_string_lossy().into_owned())
}

/// stat(2) of the file behind the fd (follows the link).
pub fn metadata(pid: i32, fd: i32) -> SysResult<std::fs::Metadata> {
    let p = link_path(pid, fd);
    std::fs::metadata(&p).map_err(SysError::path("stat", p))
}

/// Opens the object behind fd `fd` of `pid` again, with `flags`.
pub fn reopen(pid: i32, fd: i32, flags: i32) -> SysResult<OwnedFd> {
    crate::sys::fd::open(&link_path(pid, fd), flags, 0)
}

/// The whole contents of the file behind the fd, into `dest` (created new, 0600,
/// never through a link: the source's mode and setuid bits do not come along).
pub fn copy_contents(pid: i32, fd: i32, dest: &std::path::Path) -> SysResult<u64> {
    use std::os::unix::fs::OpenOptionsExt;
    let p = link_path(pid, fd);
    let mut from = std::fs::File::open(&p).map_err(SysError::path("open", &p))?;
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dest)
        .map_err(SysError::path("create", dest))?;
    std::io::copy(&mut from, &mut to).map_err(SysError::path("copy", p))
}
