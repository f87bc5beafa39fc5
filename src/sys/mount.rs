//! Mounts through the kernel's file-descriptor mount API (open_tree, fsopen,
//! fsmount, mount_setattr, move_mount), which restore builds a namespace's mount
//! tree with: each mount is made detached, configured, and attached below its
//! parent by fd, so no path of the host is ever mounted on.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::kernel;
use super::{SysError, SysResult};

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

fn fd_from(ret: libc::c_long, call: &'static str, path: &Path) -> SysResult<OwnedFd> {
    if ret < 0 {
        return Err(SysError::Path { call, path: path.into(), source: std::io::Error::last_os_error() });
    }
    // SAFETY: the kernel just returned this new fd, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
}

/// A detached copy of the one mount at `path` (not its submounts), resolved from
/// `dir` (None: the cwd). An empty path means `dir` itself.
pub fn clone_mount(dir: Option<BorrowedFd<'_>>, path: &Path) -> SysResult<OwnedFd> {
    let dfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    let mut flags = kernel::OPEN_TREE_CLONE | libc::O_CLOEXEC as u32;
    if path.as_os_str().is_empty() {
        flags |= libc::AT_EMPTY_PATH as u32;
    }
    let p = cstr(path);
    // SAFETY: open_tree reads a NUL-terminated path; it returns a new fd or -1.
    let ret = unsafe { libc::syscall(kernel::__NR_open_tree as libc::c_long, dfd, p.as_ptr(), flags) };
    fd_from(ret, "open_tree", path)
}

/// The kernel's own words on a failed fs configuration ("e tmpfs: Bad value ...").
fn fs_messages(fs: &OwnedFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        // SAFETY: read into a live buffer of its length.
        let n = unsafe { libc::read(fs.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out.push(String::from_utf8_lossy(&buf[..n as usize]).trim().to_string());
    }
    out.join("; ")
}

/// A new, detached filesystem instance of `fstype` made with `options`
/// (`key=value` or a flag `key`, as mountinfo's super options show them).
pub fn new_fs(fstype: &str, source: &str, options: &[String]) -> SysResult<OwnedFd> {
    let what = Path::new(fstype);
    let t = CString::new(fstype).unwrap_or_default();
    // SAFETY: fsopen reads a NUL-terminated name.
    let ret = unsafe { libc::syscall(kernel::__NR_fsopen as libc::c_long, t.as_ptr(), kernel::FSOPEN_CLOEXEC) };
    let fs = fd_from(ret, "fsopen", what)?;
    let config = |cmd: u32, key: Option<&str>, value: Option<&str>| -> SysResult<()> {
        let k = key.map(|k| CString::new(k).unwrap_or_default());
        let v = value.map(|v| CString::new(v).unwrap_or_default());
        let kp = k.as_ref().map_or(std::ptr::null(), |k| k.as_ptr());
        let vp = v.as_ref().map_or(std::ptr::null(), |v| v.as_ptr());
        // SAFETY: fsconfig reads NUL-terminated key and value (or takes NULL).
        let ret = unsafe { libc::syscall(kernel::__NR_fsconfig as libc::c_long, fs.as_raw_fd(), cmd, kp, vp, 0) };
        if ret < 0 {
            let errno = std::io::Error::last_os_error();
            let said = fs_messages(&fs);
            let setting = match (key, value) {
                (Some(k), Some(v)) => format!("{k}={v}"),
                (Some(k), None) => k.to_string(),
                _ => "create".into(),
            };
            let detail = if said.is_empty() { setting } else { format!("{setting} ({said})") };
            return Err(SysError::Path { call: "fsconfig", path: format!("{fstype} {detail}").into(), source: errno });
        }
        Ok(())
    };
    if !source.is_empty() {
        config(kernel::fsconfig_command_FSCONFIG_SET_STRING, Some("source"), Some(source))?;
    }
    for o in options {
        match o.split_once('=') {
            Some((k, v)) => config(kernel::fsconfig_command_FSCONFIG_SET_STRING, Some(k), Some(v))?,
            None => config(kernel::fsconfig_command_FSCONFIG_SET_FLAG, Some(o), None)?,
        }
    }
    config(kernel::fsconfig_command_FSCONFIG_CMD_CREATE, None, None)?;
    // SAFETY: fsmount of a created context; returns a new mount fd or -1.
    let ret =
        unsafe { libc::syscall(kernel::__NR_fsmount as libc::c_long, fs.as_raw_fd(), kernel::FSMOUNT_CLOEXEC, 0) };
    fd_from(ret, "fsmount", what)
}

/// Per-mount flags (MOUNT_ATTR_*) and propagation (MS_SHARED, MS_PRIVATE, ...;
/// 0 leaves it) of the mount `fd` refers to.
pub fn set_attrs(fd: BorrowedFd<'_>, set: u64, clear: u64, propagation: u64) -> SysResult<()> {
    let attr = kernel::mount_attr { attr_set: set, attr_clr: clear, propagation, userns_fd: 0 };
    let empty = c"";
    // SAFETY: mount_setattr reads `attr` of the size passed.
    let ret = unsafe {
        libc::syscall(
            kernel::__NR_mount_setattr as libc::c_long,
            fd.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const kernel::mount_attr,
            std::mem::size_of::<kernel::mount_attr>(),
        )
    };
    if ret < 0 {
        return Err(SysError::last("mount_setattr"));
    }
    Ok(())
}

fn move_mount(from: BorrowedFd<'_>, to: BorrowedFd<'_>, flags: u32, call: &'static str) -> SysResult<()> {
    let empty = c"";
    let flags = flags | kernel::MOVE_MOUNT_F_EMPTY_PATH | kernel::MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: move_mount between two fds with empty paths.
    let ret = unsafe {
        libc::syscall(
            kernel::__NR_move_mount as libc::c_long,
            from.as_raw_fd(),
            empty.as_ptr(),
            to.as_raw_fd(),
            empty.as_ptr(),
            flags,
        )
    };
    if ret < 0 {
        return Err(SysError::last(call));
    }
    Ok(())
}

/// Attaches the detached mount `fd` on `target` (an O_PATH fd of its mount point).
pub fn attach(fd: BorrowedFd<'_>, target: BorrowedFd<'_>) -> SysResult<()> {
    move_mount(fd, target, 0, "move_mount")
}

/// Makes the mount `to` a member of the peer group of the shared mount `from`
/// (same filesystem, `to`'s root within `from`'s).
pub fn join_group(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> SysResult<()> {
    move_mount(from, to, kernel::MOVE_MOUNT_SET_GROUP, "move_mount(MOVE_MOUNT_SET_GROUP)")
}

/// An O_PATH fd of `path` (relative to `dir`, or absolute) resolved with the
/// RESOLVE_* flags `resolve`.
fn open_path(dir: Option<BorrowedFd<'_>>, path: &Path, resolve: u32) -> SysResult<OwnedFd> {
    let how = kernel::open_how { flags: (libc::O_PATH | libc::O_CLOEXEC) as u64, mode: 0, resolve: resolve as u64 };
    let p = cstr(path);
    // SAFETY: openat2 reads the path and `how` of the size passed.
    let ret = unsafe {
        libc::syscall(
            kernel::__NR_openat2 as libc::c_long,
            dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd()),
            p.as_ptr(),
            &how as *const kernel::open_how,
            std::mem::size_of::<kernel::open_how>(),
        )
    };
    fd_from(ret, "openat2", path)
}

/// An O_PATH fd of the absolute `path`, reached without following a symlink.
pub fn path_no_symlinks(path: &Path) -> SysResult<OwnedFd> {
    open_path(None, path, kernel::RESOLVE_NO_SYMLINKS)
}

/// An O_PATH fd of `rel` below `dir`, reached without leaving `dir`'s mount or
/// following a link: a mount point for `attach` that cannot land elsewhere.
pub fn path_beneath(dir: BorrowedFd<'_>, rel: &Path) -> SysResult<OwnedFd> {
    let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    open_path(Some(dir), rel, kernel::RESOLVE_NO_XDEV | kernel::RESOLVE_NO_SYMLINKS | kernel::RESOLVE_BENEATH)
}

/// Mounts the mount tree of this (new) namespace private from `/` down, so that
/// nothing done in it reaches the namespace it was copied from.
pub fn make_all_private() -> SysResult<()> {
    let flags = libc::MS_REC | libc::MS_PRIVATE;
    // SAFETY: mount with a NUL-terminated target and no data.
    if unsafe { libc::mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), flags, std::ptr::null()) } < 0 {
        return Err(SysError::last("mount(/, MS_REC|MS_PRIVATE)"));
    }
    Ok(())
}

/// Makes the attached mount `root` this process's root and its namespace's root
/// mount, and lets go of the old root with everything under it.
pub fn pivot_into(root: BorrowedFd<'_>) -> SysResult<()> {
    // SAFETY: fchdir to an open directory fd.
    if unsafe { libc::fchdir(root.as_raw_fd()) } < 0 {
        return Err(SysError::last("fchdir(new root)"));
    }
    let dot = c".";
    // pivot_root(".", "."): the old root ends up stacked on the new one, then goes.
    // SAFETY: pivot_root with two NUL-terminated paths.
    if unsafe { libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) } < 0 {
        return Err(SysError::last("pivot_root"));
    }
    // SAFETY: umount2 of a NUL-terminated path.
    if unsafe { libc::umount2(dot.as_ptr(), libc::MNT_DETACH) } < 0 {
        return Err(SysError::last("umount2(old root)"));
    }
    // SAFETY: chdir to a NUL-terminated path.
    if unsafe { libc::chdir(c"/".as_ptr()) } < 0 {
        return Err(SysError::last("chdir(/)"));
    }
    Ok(())
}
