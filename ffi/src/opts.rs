//! The options object (`ccr_opts`): every setter of the header, and its conversion
//! into the options of each operation.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::panic::catch_unwind;
use std::path::PathBuf;

use ccr::action::{HookCallback, HookStage};
use ccr::opts::{
    CgroupRestoreCmdOpts, CgroupRestoreOpts, CgroupSaveOpts, DumpOpts, ExtMount, ExtMountMap, FreezeOpts, HookOpts,
    InheritFd, JoinNs, LogOpts, ManageCgroups, RestoreOpts, VethPair,
};
use ccr::restore::pty_masters::PtyMasterCallback;

use crate::error::{entry, invalid, Failure};

/// Options of one checkpoint or restore. Opaque; create with ccr_opts_new().
#[derive(Default)]
pub struct CcrOpts {
    pid: Option<i32>,
    images_dir: Option<PathBuf>,
    leave_running: bool,
    leave_stopped: bool,
    tcp_established: bool,
    ghost_limit: Option<u64>,
    log: LogOpts,
    freeze_cgroup: Option<PathBuf>,
    cgroups: CgroupRestoreOpts,
    inherit_fds: Vec<InheritFd>,
    shell_job: bool,
    external: Vec<String>,
    /// ccr_opts_add_ext_mount() pairs: mount point → key on a dump, key → path
    /// on a restore.
    ext_mounts: Vec<(String, String)>,
    join_ns: Vec<JoinNs>,
    root: Option<PathBuf>,
    pty_master_socket: Option<PathBuf>,
    pty_master_fn: Option<PtyMasterCallback>,
    veth_pairs: Vec<VethPair>,
    hooks: HookOpts,
}

impl CcrOpts {
    pub(crate) fn dump(&self) -> DumpOpts {
        DumpOpts {
            pid: self.pid,
            images_dir: self.images_dir.clone(),
            leave_running: self.leave_running,
            leave_stopped: self.leave_stopped,
            tcp_established: self.tcp_established,
            ghost_limit: self.ghost_limit,
            freeze_cgroup: self.freeze_cgroup.clone(),
            freeze_timeout_s: None,
            external: self.external.clone(),
            ext_mounts: self
                .ext_mounts
                .iter()
                .map(|(point, key)| ExtMount { mount_point: point.clone(), key: key.clone() })
                .collect(),
            // The C API saves cgroups with ccr_cgroup_save.
            cgroups: None,
            shell_job: self.shell_job,
            hooks: self.hooks.clone(),
            log: self.log.clone(),
        }
    }

    pub(crate) fn restore(&self) -> RestoreOpts {
        RestoreOpts {
            images_dir: self.images_dir.clone(),
            detached: true,
            // The C API's restore makes the root the caller's child anyway.
            sibling: false,
            lsm_profile: None,
            pidfile: None,
            inherit_fds: self.inherit_fds.clone(),
            cgroups: self.cgroups.clone(),
            shell_job: self.shell_job,
            root: self.root.clone(),
            pty_master_socket: self.pty_master_socket.clone(),
            pty_master_callback: self.pty_master_fn.clone(),
            veth_pairs: self.veth_pairs.clone(),
            join_ns: self.join_ns.clone(),
            ext_mounts: self
                .ext_mounts
                .iter()
                .map(|(key, path)| ExtMountMap { key: key.clone(), path: PathBuf::from(path) })
                .collect(),
            hooks: self.hooks.clone(),
            log: self.log.clone(),
        }
    }

    pub(crate) fn freeze(&self) -> FreezeOpts {
        FreezeOpts { pid: self.pid, freeze_cgroup: self.freeze_cgroup.clone(), timeout_s: None }
    }

    pub(crate) fn cgroup_save(&self) -> CgroupSaveOpts {
        CgroupSaveOpts { pid: self.pid, freeze_cgroup: self.freeze_cgroup.clone(), images_dir: self.images_dir.clone() }
    }

    pub(crate) fn cgroup_restore(&self) -> CgroupRestoreCmdOpts {
        CgroupRestoreCmdOpts { images_dir: self.images_dir.clone(), cgroups: self.cgroups.clone() }
    }
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

/// The stages at which a hook set with ccr_opts_set_hook() is called, in the order
/// a dump, then a restore, reaches them. ccr_hook_stage_name() gives each one's
/// name, the one action scripts see in CRTOOLS_SCRIPT_ACTION.
#[repr(C)]
pub enum CcrHookStage {
    /// "pre-dump": before the dump touches anything.
    PreDump = 0,
    /// "network-lock": every task of the tree is stopped; nothing is saved yet.
    NetworkLock = 1,
    /// "post-dump": the images are complete and in place; the tasks are still
    /// stopped. Failing here leaves the tasks running (the images stay).
    PostDump = 2,
    /// "network-unlock": on a dump, with leave-running or after a failure once
    /// network-lock was called, before the tasks go on; on a restore, after
    /// post-restore.
    NetworkUnlock = 3,
    /// "pre-restore": before the restore makes anything. pid is 0.
    PreRestore = 4,
    /// "setup-namespaces": the tree exists in its new namespaces (pid: the root,
    /// whose namespaces to configure); nothing restored runs yet.
    SetupNamespaces = 5,
    /// "post-setup-namespaces": right after setup-namespaces.
    PostSetupNamespaces = 6,
    /// "post-restore": every task is rebuilt, all still stopped.
    PostRestore = 7,
    /// "pre-resume": the last moment before the tasks run.
    PreResume = 8,
    /// "post-resume": the tasks run. The return value is only logged: the
    /// restore succeeds, as the tree cannot be taken back.
    PostResume = 9,
}

impl From<HookStage> for CcrHookStage {
    fn from(s: HookStage) -> Self {
        match s {
            HookStage::PreDump => CcrHookStage::PreDump,
            HookStage::NetworkLock => CcrHookStage::NetworkLock,
            HookStage::PostDump => CcrHookStage::PostDump,
            HookStage::NetworkUnlock => CcrHookStage::NetworkUnlock,
            HookStage::PreRestore => CcrHookStage::PreRestore,
            HookStage::SetupNamespaces => CcrHookStage::SetupNamespaces,
            HookStage::PostSetupNamespaces => CcrHookStage::PostSetupNamespaces,
            HookStage::PostRestore => CcrHookStage::PostRestore,
            HookStage::PreResume => CcrHookStage::PreResume,
            HookStage::PostResume => CcrHookStage::PostResume,
        }
    }
}

/// A hook (see ccr_opts_set_hook()): the stage, the root task's pid (0 before a
/// restore has made it), the images directory (absolute), and the caller's
/// user_data. Returns 0 to go on; anything else aborts the operation there.
pub type CcrHookFn = Option<
    unsafe extern "C" fn(
        stage: CcrHookStage,
        pid: libc::pid_t,
        images_dir: *const c_char,
        user_data: *mut c_void,
    ) -> c_int,
>;

/// A C hook and its user_data, called from the engine.
struct CHook {
    f: unsafe extern "C" fn(CcrHookStage, libc::pid_t, *const c_char, *mut c_void) -> c_int,
    user_data: *mut c_void,
}

// SAFETY: ccr calls a hook only on the one thread that runs the operation (the
// only thread of the helper process ccr forks for it); user_data is the caller's,
// handed back untouched, and the caller vouches for its use there.
unsafe impl Send for CHook {}
// SAFETY: as above: never called from two threads at once.
unsafe impl Sync for CHook {}

impl CHook {
    fn call(&self, stage: HookStage, pid: Option<i32>, dir: &std::path::Path) -> c_int {
        let dir = CString::new(dir.as_os_str().as_bytes()).unwrap_or_default();
        // SAFETY: `f` is the caller's function of this signature (ccr_opts_set_hook's
        // contract); `dir` outlives the call.
        unsafe { (self.f)(stage.into(), pid.unwrap_or(0), dir.as_ptr(), self.user_data) }
    }
}

/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
unsafe fn opts_mut<'a>(opts: *mut CcrOpts) -> Result<&'a mut CcrOpts, Failure> {
    // SAFETY: the caller promises `opts` is null or a live pointer from ccr_opts_new().
    match unsafe { opts.as_mut() } {
        Some(o) => Ok(o),
        None => invalid("opts is NULL"),
    }
}

/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
pub(crate) unsafe fn opts_ref<'a>(opts: *const CcrOpts) -> Result<&'a CcrOpts, Failure> {
    // SAFETY: as above.
    match unsafe { opts.as_ref() } {
        Some(o) => Ok(o),
        None => invalid("opts is NULL"),
    }
}

/// # Safety
/// `s` is null or a NUL-terminated string.
unsafe fn path_arg(s: *const c_char, what: &str) -> Result<PathBuf, Failure> {
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
    catch_unwind(|| Box::into_raw(Box::new(CcrOpts::default()))).unwrap_or(std::ptr::null_mut())
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

/// Where restore binds the root mount of a tree with its own mount namespace
/// from (a container's root filesystem on this side); by default, the path it
/// had at dump.
///
/// # Safety
/// `opts` as above; `path` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ccr_opts_set_root(opts: *mut CcrOpts, path: *const c_char) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        let (o, p) = unsafe { (opts_mut(opts)?, path_arg(path, "root")?) };
        o.root = Some(p);
        Ok(0)
    })
}

/// A restore sends the new master of each pty whose master was outside the
/// tree (a container's /dev/tty1..N, bound from its own devpts, whose masters
/// the manager held) to the unix socket at `path`: ccr connects (SOCK_SEQPACKET)
/// once the tree is rebuilt, before it runs, and sends one message per pty: its
/// key (the slave's path inside the tree, e.g. "/dev/pts/0") with the master as
/// SCM_RIGHTS. Without a socket a keeper process holds them (see README).
///
/// # Safety
/// `opts` as above; `path` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ccr_opts_set_pty_master_socket(opts: *mut CcrOpts, path: *const c_char) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        let (o, p) = unsafe { (opts_mut(opts)?, path_arg(path, "pty master socket")?) };
        o.pty_master_socket = Some(p);
        Ok(0)
    })
}

/// Takes a new pty master (see ccr_opts_set_pty_master_fn()): the pty's key (the
/// slave's path inside the tree, e.g. "/dev/pts/0"), the master fd (the
/// caller's to keep and close; close-on-exec), the caller's user_data. Returns 0
/// when it took the master; anything else fails the restore.
pub type CcrPtyMasterFn = Option<unsafe extern "C" fn(key: *const c_char, fd: c_int, user_data: *mut c_void) -> c_int>;

/// A C pty master taker and its user_data, called from the engine.
struct CPtyMasterFn {
    f: unsafe extern "C" fn(*const c_char, c_int, *mut c_void) -> c_int,
    user_data: *mut c_void,
}

// SAFETY: ccr calls it only on the thread that called ccr_restore(), one call at
// a time; user_data is the caller's, handed back untouched.
unsafe impl Send for CPtyMasterFn {}
// SAFETY: as above: never called from two threads at once.
unsafe impl Sync for CPtyMasterFn {}

impl CPtyMasterFn {
    fn call(&self, key: &str, master: std::os::fd::OwnedFd) -> c_int {
        use std::os::fd::IntoRawFd;
        let key = CString::new(key).unwrap_or_default();
        // SAFETY: `f` is the caller's function of this signature
        // (ccr_opts_set_pty_master_fn's contract); `key` outlives the call; the fd
        // becomes the caller's.
        unsafe { (self.f)(key.as_ptr(), master.into_raw_fd(), self.user_data) }
    }
}

/// A restore calls `take` once for each pty whose master was outside the tree
/// (a container's /dev/tty1..N, bound from its own devpts, whose masters the
/// manager held) with its key and its new master, once the tree is rebuilt and
/// before it runs, in the caller's process and on the thread that called
/// ccr_restore(); NULL removes it. A non-zero return fails the restore with
/// -ECANCELED (ccr_last_error() names the pty and the value); masters taken
/// before stay the caller's. Not with ccr_opts_set_pty_master_socket().
///
/// # Safety
/// `opts` as above; `take` null or a function of the ccr_pty_master_fn signature
/// that may be called with `user_data` during ccr_restore().
#[no_mangle]
pub unsafe extern "C" fn ccr_opts_set_pty_master_fn(
    opts: *mut CcrOpts,
    take: CcrPtyMasterFn,
    user_data: *mut c_void,
) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        let o = unsafe { opts_mut(opts) }?;
        o.pty_master_fn = take.map(|f| {
            let t = CPtyMasterFn { f, user_data };
            PtyMasterCallback::new(move |key, master| Ok(t.call(key, master)))
        });
        Ok(0)
    })
}

/// The dump lets go of the host file `key` names (`tty[RDEV:DEV]`: a tty device
/// and the filesystem it is on, hex as stat gives them) with its settings; the
/// restore takes the one handed over with ccr_opts_add_inherit_fd(opts, fd, key).
/// A dump refuses any other key (a mount is named with ccr_opts_add_ext_mount()).
///
/// # Safety
/// `opts` as above; `key` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ccr_opts_add_external(opts: *mut CcrOpts, key: *const c_char) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        let (o, k) = unsafe { (opts_mut(opts)?, path_arg(key, "external key")?) };
        o.external.push(k.to_string_lossy().into_owned());
        Ok(0)
    })
}

/// An external bind mount: something of the host bound into the tree's mount
/// namespace, saved by a key rather than by the host path it binds, so that the
/// restoring side says where it is. The same call means one thing on each side:
///
/// - on the options of ccr_dump(): `a` is a mount point as the tree sees it
///   ("/lib") and `b` the key to record it by ("lib"); a mount the host path of
///   which ccr cannot reach is made dumpable this way too. A mount point that is
///   no mount of the tree fails the dump, naming it.
/// - on the options of ccr_restore(): `a` is a key of the checkpoint ("lib")
///   and `b` the path of this side to bind it from ("/usr/lib"; a symlink on the
///   way is followed here). It must be the kind of file the mount showed at dump
///   (a directory, a regular file, ...). A keyed mount without a path fails the
///   restore before anything is made, naming the key.
///
/// Mounts of the host not named here are bound again from the path they had
/// (`criu --external mnt[PATH]:KEY` on dump, `mnt[KEY]:PATH` on restore).
///
/// # Safety
/// `opts` as above; `a` and `b` NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn ccr_opts_add_ext_mount(opts: *mut CcrOpts, a: *const c_char, b: *const c_char) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        let (o, a, b) = unsafe {
            (opts_mut(opts)?, path_arg(a, "external mount point or key")?, path_arg(b, "external mount key or path")?)
        };
        o.ext_mounts.push((a.to_string_lossy().into_owned(), b.to_string_lossy().into_owned()));
        Ok(0)
    })
}

/// Restore joins the namespace of kind `ns` ("net", "uts", "mnt" or "cgroup")
/// that `target` names — a pid, or the path of an nsfs file (a bind-mounted
/// /proc/PID/ns/NS) — instead of making one or staying in ccr's.
///
/// # Safety
/// `opts` as above; `ns` and `target` NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn ccr_opts_join_ns(opts: *mut CcrOpts, ns: *const c_char, target: *const c_char) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        let (o, k, t) = unsafe { (opts_mut(opts)?, path_arg(ns, "namespace kind")?, path_arg(target, "namespace")?) };
        match JoinNs::new(&k.to_string_lossy(), &t.to_string_lossy()) {
            Ok(j) => o.join_ns.push(j),
            Err(e) => return invalid(&e),
        }
        Ok(0)
    })
}

/// The host end of the checkpoint's veth `inside` ("eth0": the name it had in
/// the tree's network namespace): ccr_restore() makes the pair anew, `inside` in
/// the tree's new namespace with its MAC, MTU, flags, addresses and routes, and
/// `outside` ("vethXYZ", a name not in use) in the caller's namespace, up and a
/// port of the bridge `bridge` ("lxcbr0") unless it is NULL. A veth of the
/// checkpoint with no host end named fails the restore before anything is made,
/// naming it; a failed restore deletes the host end it made
/// (`criu restore --veth-pair IN=OUT[@BRIDGE]`).
///
/// # Safety
/// `opts` as above; `inside` and `outside` NUL-terminated strings, `bridge` one
/// or NULL.
#[no_mangle]
pub unsafe extern "C" fn ccr_opts_add_veth_pair(
    opts: *mut CcrOpts,
    inside: *const c_char,
    outside: *const c_char,
    bridge: *const c_char,
) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        let (o, i, out) =
            unsafe { (opts_mut(opts)?, path_arg(inside, "veth inside name")?, path_arg(outside, "veth host name")?) };
        // SAFETY: as above; NULL means no bridge.
        let b = if bridge.is_null() { None } else { Some(unsafe { path_arg(bridge, "bridge name") }?) };
        let name = |p: &PathBuf| p.to_string_lossy().into_owned();
        match VethPair::new(&name(&i), &name(&out), b.as_ref().map(name).as_deref()) {
            Ok(v) => o.veth_pairs.push(v),
            Err(e) => return invalid(&e),
        }
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

/// The tree is a job of a shell: a dump lets go of a session or process group
/// led from outside the tree, and a restore puts the tree in the caller's own
/// session and group (otherwise a dump refuses such a tree, naming it).
///
/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ccr_opts_set_shell_job(opts: *mut CcrOpts, shell_job: bool) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        unsafe { opts_mut(opts) }?.shell_job = shell_job;
        Ok(0)
    })
}

/// Save established TCP connections whose peer is in the checkpoint too (held
/// in TCP repair mode while the tasks are, made again without a handshake)
/// instead of refusing them.
///
/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ccr_opts_set_tcp_established(opts: *mut CcrOpts, tcp_established: bool) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        unsafe { opts_mut(opts) }?.tcp_established = tcp_established;
        Ok(0)
    })
}

/// A dump fails, naming it, on a deleted and still open file larger than
/// `bytes` (criu's --ghost-limit); 0: no limit (the default).
///
/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ccr_opts_set_ghost_limit(opts: *mut CcrOpts, bytes: u64) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        unsafe { opts_mut(opts) }?.ghost_limit = (bytes > 0).then_some(bytes);
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
        o.log.file = Some(p);
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
        o.log.level = level;
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
        o.cgroups.roots.push((ctl, p));
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
        o.cgroups.manage = match ManageCgroups::from_int(mode) {
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

/// Calls `hook` at every stage of ccr_dump() and ccr_restore() (see
/// ccr_hook_stage), after any action scripts, with `user_data`; NULL removes it.
/// A non-zero return aborts the operation at that stage, which then undoes what it
/// did (a dump leaves the tasks running, a restore leaves nothing) and fails with
/// -ECANCELED, ccr_last_error() naming the stage and the value.
///
/// The hook runs in the helper process ccr forks for the operation, in its only
/// thread: it sees the caller's memory as it was at the call (user_data is valid),
/// but what it writes there does not reach the caller; report through a pipe, a
/// file or MAP_SHARED memory. A dump of a tree frozen with ccr_freeze() by pid
/// (no cgroup) refuses a hook: its freeze holder cannot call it.
///
/// # Safety
/// `opts` as above; `hook` null or a function of the ccr_hook_fn signature that
/// may be called from the helper with `user_data`.
#[no_mangle]
pub unsafe extern "C" fn ccr_opts_set_hook(opts: *mut CcrOpts, hook: CcrHookFn, user_data: *mut c_void) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        let o = unsafe { opts_mut(opts) }?;
        o.hooks.callback = hook.map(|f| {
            let h = CHook { f, user_data };
            HookCallback::new(move |stage, pid, dir| h.call(stage, pid, dir))
        });
        Ok(0)
    })
}

/// The name of a ccr_hook_stage ("pre-dump", ..., as in CRTOOLS_SCRIPT_ACTION);
/// NULL for a value that is none. The string is static.
#[no_mangle]
pub extern "C" fn ccr_hook_stage_name(stage: c_int) -> *const c_char {
    HookStage::ALL
        .into_iter()
        .find(|&s| CcrHookStage::from(s) as c_int == stage)
        .map_or(std::ptr::null(), |s| s.c_name().as_ptr())
}
