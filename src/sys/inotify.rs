//! inotify: where a watch points (from the file handle the kernel reports) and
//! making the same watches again, with the same watch descriptors.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::sys::{files, Errno, SysError, SysResult};

/// The path of the inode a file handle names, on the filesystem with device
/// `sdev` (kernel encoding), through a mount of it in our mount namespace.
pub fn handle_path(sdev: u64, handle_type: i32, handle: &[u8]) -> SysResult<String> {
    let (major, minor) = ((sdev >> 20) as u32, (sdev & 0xfffff) as u32);
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").map_err(SysError::path("read", "/proc/self/mountinfo"))?;
    let mnt = mountinfo
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&format!("{major}:{minor}").as_str())).then(|| f.get(4).map(|s| s.to_string())).flatten()
        })
        .next()
        .ok_or_else(|| SysError::Parse {
            path: "/proc/self/mountinfo".into(),
            detail: format!("no mount of device {major}:{minor}"),
        })?;
    let mfd = files::open_raw(&mnt, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC, 0)?;
    // SAFETY: just opened, owned here.
    let mfd = unsafe { OwnedFd::from_raw_fd(mfd) };
    // struct file_handle: u32 handle_bytes, i32 handle_type, then the bytes.
    let mut fh = (handle.len() as u32).to_ne_bytes().to_vec();
    fh.extend_from_slice(&handle_type.to_ne_bytes());
    fh.extend_from_slice(handle);
    // SAFETY: `fh` is a well-formed file_handle of the length it states.
    let fd = unsafe {
        libc::syscall(libc::SYS_open_by_handle_at, mfd.as_raw_fd(), fh.as_mut_ptr(), libc::O_PATH | libc::O_CLOEXEC)
    };
    if fd < 0 {
        return Err(SysError::Call { call: "open_by_handle_at", errno: Errno::last() });
    }
    // SAFETY: a new fd, owned here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    crate::sys::proc::readlink(&format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// A new inotify instance with `watches` (wd, mask, path) at their wd numbers.
pub fn create(nonblock: bool, watches: &[(i32, u32, String)]) -> SysResult<RawFd> {
    let flags = libc::IN_CLOEXEC | if nonblock { libc::IN_NONBLOCK } else { 0 };
    // SAFETY: inotify_init1 with flags.
    let fd = unsafe { libc::inotify_init1(flags) };
    if fd < 0 {
        return Err(SysError::Call { call: "inotify_init1", errno: Errno::last() });
    }
    let mut sorted: Vec<&(i32, u32, String)> = watches.iter().collect();
    sorted.sort_by_key(|w| w.0);
    let mut burned = false;
    for (wd, mask, path) in sorted {
        let c = std::ffi::CString::new(path.as_str())
            .map_err(|_| SysError::Parse { path: path.into(), detail: "NUL".into() })?;
        loop {
            // SAFETY: a valid C string.
            let got = unsafe { libc::inotify_add_watch(fd, c.as_ptr(), *mask) };
            if got < 0 {
                return Err(SysError::Path {
                    call: "inotify_add_watch",
                    path: path.into(),
                    source: std::io::Error::last_os_error(),
                });
            }
            if got == *wd {
                break;
            }
            if got > *wd {
                return Err(SysError::Path {
                    call: "inotify_add_watch: watch descriptor taken",
                    path: path.into(),
                    source: std::io::Error::from_raw_os_error(libc::EEXIST),
                });
            }
            // wd numbers are handed out in turn: use one up to reach the saved one.
            // SAFETY: removing a watch we just added.
            unsafe { libc::inotify_rm_watch(fd, got) };
            burned = true;
        }
    }
    if burned {
        drain(fd);
    }
    Ok(fd)
}

/// Reads away the IN_IGNORED events that removing burned watches queued.
fn drain(fd: RawFd) {
    let mut buf = [0u8; 4096];
    loop {
        let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, 0) } <= 0 {
            return;
        }
        // SAFETY: reading into a live buffer.
        if unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } <= 0 {
            return;
        }
    }
}
