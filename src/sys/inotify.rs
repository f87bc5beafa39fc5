//! inotify: where a watch points (from the file handle the kernel reports) and
//! making the same watches again, with the same watch descriptors.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

use crate::sys::fd::from_ret;
use crate::sys::{SysError, SysResult};

/// The path of the inode a file handle names, on the filesystem with device `sdev`
/// (kernel encoding), found through a mount of it in task `pid`'s mount namespace.
pub fn handle_path(pid: i32, sdev: u64, handle_type: i32, handle: &[u8]) -> SysResult<String> {
    let (major, minor) = ((sdev >> 20) as u32, (sdev & 0xfffff) as u32);
    let mounts = crate::sys::proc::mountinfo::read(pid)?;
    let mnt = mounts.iter().find(|m| (m.major, m.minor) == (major, minor)).ok_or_else(|| SysError::Task {
        pid,
        detail: format!("an inotify watch on device {major}:{minor}, which no mount of the task shows"),
    })?;
    let dir = crate::sys::proc::links::under_root(pid, &mnt.mount_point);
    let mfd = crate::sys::fd::open(&dir, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC, 0)?;
    // struct file_handle: u32 handle_bytes, i32 handle_type, then the bytes.
    let header = std::mem::size_of::<libc::file_handle>();
    let mut fh = vec![0u8; header + handle.len()];
    fh[..4].copy_from_slice(&(handle.len() as u32).to_ne_bytes());
    fh[4..8].copy_from_slice(&handle_type.to_ne_bytes());
    fh[header..].copy_from_slice(handle);
    // SAFETY: `fh` is a well-formed file_handle of the length it states.
    let r = unsafe { libc::open_by_handle_at(mfd.as_raw_fd(), fh.as_mut_ptr().cast(), libc::O_PATH | libc::O_CLOEXEC) };
    let fd = from_ret("open_by_handle_at", r)?;
    crate::sys::proc::fd::target(crate::sys::proc::SELF, fd.as_raw_fd())
}

/// One watch to make again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    pub wd: i32,
    pub mask: u32,
    pub path: String,
}

/// A new inotify instance with `watches` at their wd numbers.
pub fn create(nonblock: bool, watches: &[Watch]) -> SysResult<OwnedFd> {
    let flags = libc::IN_CLOEXEC | if nonblock { libc::IN_NONBLOCK } else { 0 };
    // SAFETY: inotify_init1 with flags.
    let fd = from_ret("inotify_init1", unsafe { libc::inotify_init1(flags) })?;
    let mut sorted: Vec<&Watch> = watches.iter().collect();
    sorted.sort_by_key(|w| w.wd);
    let mut burned = false;
    for w in sorted {
        let c = CString::new(w.path.as_str())
            .map_err(|_| SysError::Parse { path: w.path.clone().into(), detail: "NUL".into() })?;
        loop {
            // SAFETY: a valid C string.
            let got = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), w.mask) };
            if got < 0 {
                return Err(SysError::Path {
                    call: "inotify_add_watch",
                    path: w.path.clone().into(),
                    source: std::io::Error::last_os_error(),
                });
            }
            if got == w.wd {
                break;
            }
            if got > w.wd {
                return Err(SysError::Path {
                    call: "inotify_add_watch: watch descriptor taken",
                    path: w.path.clone().into(),
                    source: std::io::Error::from_raw_os_error(libc::EEXIST),
                });
            }
            // wd numbers are handed out in turn: use one up to reach the saved one.
            // SAFETY: removing a watch we just added.
            unsafe { libc::inotify_rm_watch(fd.as_raw_fd(), got) };
            burned = true;
        }
    }
    if burned {
        drain(&fd);
    }
    Ok(fd)
}

/// Reads away the IN_IGNORED events that removing burned watches queued.
fn drain(fd: &OwnedFd) {
    let mut buf = [0u8; 4096];
    loop {
        let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, 0) } <= 0 {
            return;
        }
        // SAFETY: reading into a live buffer.
        if unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } <= 0 {
            return;
        }
    }
}
