//! The C ABI of ccr (`libccr.so`, `include/ccr.h`).
//!
//! Each function checks its arguments, converts them, calls the engine once through
//! `ccr::api`, catches any panic and records the last error for the calling thread.
//! Nothing else lives here.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use ccr::api::{self, Isolation};
use ccr::opts::{InheritFd, ManageCgroups};

/// Options of one checkpoint or restore. Opaque; create with ccr_opts_new().
pub struct CcrOpts {
    inner: ccr::Opts,
}

/// How ccr_cgroup_restore() treats existing and missing cgroups.
#[repr(C)]
pub enum CcrManageCgroups {
    /// Touch no cgroup.
    Ignore = 0,
    /// The cgroups must exist already; write their configuration.
    Props = 1,
    /// Create what is missing; configure only what ccr created (default).
    Soft = 2,
    /// Create what is missing; configure every cgroup.
    Full = 3,
    /// Fail if any of the cgroups exists already.
    Strict = 4,
}

/// Log levels for ccr_opts_set_log_level().
#[repr(C)]
pub enum CcrLogLevel {
    Error = 0,
    Warn = 1,
    Info = 2,
    Verbose = 3,
    Debug = 4,
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// Runs `f`, turning an engine error or a panic into a negative errno.
fn entry<F: FnOnce() -> Result<c_int, (c_int, String)>>(f: F) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => {
            set_last_error("");
            v
        }
        Ok(Err((errno, msg))) => {
            set_last_error(&msg);
            -errno.abs().max(1)
        }
        Err(_) => {
            set_last_error("internal error (panic) in libccr");
            -libc::EFAULT
        }
    }
}

fn engine<T>(r: ccr::Result<T>) -> Result<T, (c_int, String)> {
    r.map_err(|e| (e.errno(), e.to_string()))
}

fn invalid<T>(msg: &str) -> Result<T, (c_int, String)> {
    Err((libc::EINVAL, msg.to_string()))
}

/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
unsafe fn opts_mut<'a>(opts: *mut CcrOpts) -> Result<&'a mut ccr::Opts, (c_int, String)> {
    // SAFETY: the caller promises `opts` is null or a live pointer from ccr_opts_new().
    match unsafe { opts.as_mut() } {
        Some(o) => Ok(&mut o.inner),
        None => invalid("opts is NULL"),
    }
}

/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
unsafe fn opts_ref<'a>(opts: *const CcrOpts) -> Result<&'a ccr::Opts, (c_int, String)> {
    // SAFETY: as above.
    match unsafe { opts.as_ref() } {
        Some(o) => Ok(&o.inner),
        None => invalid("opts is NULL"),
    }
}

/// # Safety
/// `s` is null or a NUL-terminated string.
unsafe fn path_arg(s: *const c_char, what: &str) -> Result<PathBuf, (c_int, String)> {
    if s.is_null() {
        return invalid(&format!("{what} is NULL"));
    }
    // SAFETY: non-null and NUL-terminated by the caller's contract.
    let c = unsafe { CStr::from_ptr(s) };
    let s = c.to_str().map_err(|_| (libc::EINVAL, format!("{what} is not UTF-8")))?;
    if s.is_empty() {
        return invalid(&format!("{what} is empty"));
    }
    Ok(PathBuf::from(s))
}

/// Creates an options object with defaults; free it with ccr_opts_free().
#[no_mangle]
pub extern "C" fn ccr_opts_new() -> *mut CcrOpts {
    catch_unwind(|| Box::into_raw(Box::new(CcrOpts { inner: ccr::Opts::default() }))).unwrap_or(std::ptr::null_mut())
}

/// Frees an options object. NULL is ignored.
///
/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ccr_opts_free(opts: *mut CcrOpts) {
    if !opts.is_null() {
        // SAFETY: the pointer came from Box::into_raw in ccr_opts_new().
        drop(unsafe { Box::from_raw(opts) });
    }
}

/// The task (or root of the tree) to dump or freeze.
///
/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ccr_opts_set_pid(opts: *mut CcrOpts, pid: libc::pid_t) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        let o = unsafe { opts_mut(opts) }?;
        if pid <= 0 {
            return invalid(&format!("pid {pid} is not a process id"));
        }
        o.pid = Some(pid);
        Ok(0)
    })
}

/// The images directory (created by a dump if missing).
///
/// # Safety
/// `opts` as above; `path` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ccr_opts_set_images_dir(opts: *mut CcrOpts, path: *const c_char) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        let (o, p) = unsafe { (opts_mut(opts)?, path_arg(path, "images dir")?) };
        o.images_dir = Some(p);
        Ok(0)
    })
}

/// Keep the tasks running after a dump (default: they are killed).
///
/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ccr_opts_set_leave_running(opts: *mut CcrOpts, leave_running: bool) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        unsafe { opts_mut(opts) }?.leave_running = leave_running;
        Ok(0)
    })
}

/// Leave the tasks frozen after a dump; the caller thaws them with ccr_thaw().
///
/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ccr_opts_set_leave_stopped(opts: *mut CcrOpts, leave_stopped: bool) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        unsafe { opts_mut(opts) }?.leave_stopped = leave_stopped;
        Ok(0)
    })
}

/// Log to this file (appending); "-" logs to stderr.
///
/// # Safety
/// `opts` as above; `path` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ccr_opts_set_log_file(opts: *mut CcrOpts, path: *const c_char) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        let (o, p) = unsafe { (opts_mut(opts)?, path_arg(path, "log file")?) };
        o.log_file = Some(p);
        Ok(0)
    })
}

/// 0 errors … 4 debug (see CcrLogLevel).
///
/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ccr_opts_set_log_level(opts: *mut CcrOpts, level: c_int) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        let o = unsafe { opts_mut(opts) }?;
        if !(0..=4).contains(&level) {
            return invalid(&format!("log level {level} is not 0..4"));
        }
        o.log_level = level;
        Ok(0)
    })
}

/// The cgroup (a v1 freezer directory or a v2 directory) whose tasks to freeze.
///
/// # Safety
/// `opts` as above; `path` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ccr_opts_set_freeze_cgroup(opts: *mut CcrOpts, path: *const c_char) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        let (o, p) = unsafe { (opts_mut(opts)?, path_arg(path, "freeze cgroup")?) };
        o.freeze_cgroup = Some(p);
        Ok(0)
    })
}

/// Restore the cgroups of `controller` (NULL: of every hierarchy) under `path`.
///
/// # Safety
/// `opts` as above; `controller` null or NUL-terminated; `path` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ccr_opts_set_cgroup_root(
    opts: *mut CcrOpts,
    controller: *const c_char,
    path: *const c_char,
) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        let (o, p) = unsafe { (opts_mut(opts)?, path_arg(path, "cgroup root")?) };
        let ctl = if controller.is_null() {
            None
        } else {
            // SAFETY: non-null and NUL-terminated by the caller's contract.
            Some(unsafe { path_arg(controller, "controller") }?.to_string_lossy().into_owned())
        };
        o.cgroup_roots.push((ctl, p));
        Ok(0)
    })
}

/// How cgroup-restore treats cgroups: a CcrManageCgroups value.
///
/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ccr_opts_set_manage_cgroups(opts: *mut CcrOpts, mode: c_int) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        let o = unsafe { opts_mut(opts) }?;
        o.manage_cgroups = match ManageCgroups::from_int(mode) {
            Some(m) => m,
            None => return invalid(&format!("manage-cgroups mode {mode} is not 0..4")),
        };
        Ok(0)
    })
}

/// Hand `fd` to restore for the external resource named `key` (e.g. the console).
///
/// # Safety
/// `opts` as above; `key` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ccr_opts_add_inherit_fd(opts: *mut CcrOpts, fd: c_int, key: *const c_char) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        let (o, k) = unsafe { (opts_mut(opts)?, path_arg(key, "inherit-fd key")?) };
        if fd < 0 {
            return invalid(&format!("fd {fd} is not a file descriptor"));
        }
        o.inherit_fds.push(InheritFd { key: k.to_string_lossy().into_owned(), fd });
        Ok(0)
    })
}

/// Checkpoints the task set by ccr_opts_set_pid() into the images directory.
/// Returns 0 or a negative errno.
///
/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ccr_dump(opts: *const CcrOpts) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        let o = unsafe { opts_ref(opts) }?;
        engine(api::dump(o, Isolation::Helper)).map(|()| 0)
    })
}

/// Restores the checkpoint in the images directory. The restored task is a child of
/// the calling process. Returns its PID once it runs, or a negative errno.
///
/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ccr_restore(opts: *const CcrOpts) -> libc::pid_t {
    entry(|| {
        // SAFETY: forwarded caller contract.
        let o = unsafe { opts_ref(opts) }?;
        engine(api::restore(o, Isolation::Helper))
    })
}

/// Freezes the cgroup set by ccr_opts_set_freeze_cgroup().
///
/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ccr_freeze(opts: *const CcrOpts) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        engine(api::freeze(unsafe { opts_ref(opts) }?)).map(|()| 0)
    })
}

/// Thaws what ccr_freeze() froze.
///
/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ccr_thaw(opts: *const CcrOpts) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        engine(api::thaw(unsafe { opts_ref(opts) }?)).map(|()| 0)
    })
}

/// Saves the container's cgroups into the images directory (cgroup.img).
///
/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ccr_cgroup_save(opts: *const CcrOpts) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        engine(api::cgroup_save(unsafe { opts_ref(opts) }?)).map(|()| 0)
    })
}

/// Creates and configures the saved cgroups again (see ccr_opts_set_manage_cgroups()).
///
/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ccr_cgroup_restore(opts: *const CcrOpts) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        engine(api::cgroup_restore(unsafe { opts_ref(opts) }?)).map(|()| 0)
    })
}

/// The calling thread's last failure, human readable ("" after a success).
/// Valid until the next ccr call on this thread.
#[no_mangle]
pub extern "C" fn ccr_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}
