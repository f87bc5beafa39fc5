//! Processes: clone3 with an exact PID, signals, kcmp, CPU affinity, and the
//! process attributes a restore child sets on itself (session, group, root, cwd).

use std::ffi::CString;
use std::path::Path;

use crate::sys::kernel;
use crate::sys::{Errno, SysError, SysResult};

/// How a new process is created (clone3 arguments ccr uses).
#[derive(Clone, Copy, Debug, Default)]
pub struct CloneSpec {
    /// The PID it must get (set_tid); any when None.
    pub pid: Option<i32>,
    /// A sibling of the caller (CLONE_PARENT) instead of its child.
    pub as_sibling: bool,
    /// PID 1 of a new PID namespace (CLONE_NEWPID).
    pub new_pidns: bool,
    /// In a new UTS namespace (CLONE_NEWUTS).
    pub new_utsns: bool,
    /// In a new mount namespace (CLONE_NEWNS), a copy of the caller's.
    pub new_mntns: bool,
    /// In a new network namespace (CLONE_NEWNET): nothing but a lo that is down.
    pub new_netns: bool,
    /// In a new user namespace (CLONE_NEWUSER), which then owns every namespace
    /// this same clone makes. Its id maps are still to be written.
    pub new_userns: bool,
    /// In a new IPC namespace (CLONE_NEWIPC).
    pub new_ipcns: bool,
}

/// clone3 per `spec`; the child runs `child` and exits with its return value; the
/// parent gets the PID.
///
/// The caller must be single-threaded: the child is a copy of this process and runs
/// Rust code after the clone (checked, an error otherwise).
pub fn spawn<F: FnOnce() -> i32>(spec: CloneSpec, child: F) -> SysResult<i32> {
    if !crate::sys::proc::status::self_single_threaded() {
        return Err(SysError::Task {
            pid: std::process::id() as i32,
            detail: "restore must run in a single-threaded process".into(),
        });
    }
    let set_tid: [libc::pid_t; 1] = [spec.pid.unwrap_or(0)];
    let args = kernel::clone_args {
        flags: (if spec.as_sibling { kernel::CLONE_PARENT as u64 } else { 0 })
            | (if spec.new_pidns { kernel::CLONE_NEWPID as u64 } else { 0 })
            | (if spec.new_utsns { kernel::CLONE_NEWUTS as u64 } else { 0 })
            | (if spec.new_mntns { kernel::CLONE_NEWNS as u64 } else { 0 })
            | (if spec.new_netns { kernel::CLONE_NEWNET as u64 } else { 0 })
            | (if spec.new_userns { kernel::CLONE_NEWUSER as u64 } else { 0 })
            | (if spec.new_ipcns { kernel::CLONE_NEWIPC as u64 } else { 0 }),
        // With CLONE_PARENT the kernel takes our own exit signal (SIGCHLD: the helper
        // was forked) and refuses an explicit one.
        exit_signal: if spec.as_sibling { 0 } else { libc::SIGCHLD as u64 },
        set_tid: if spec.pid.is_some() { set_tid.as_ptr() as u64 } else { 0 },
        set_tid_size: if spec.pid.is_some() { 1 } else { 0 },
        ..Default::default()
    };
    // SAFETY: clone3 without CLONE_VM behaves like fork: the child gets a private copy
    // of this (single-threaded) process; `args` and `set_tid` outlive the call.
    let r =
        unsafe { libc::syscall(libc::SYS_clone3, &args as *const kernel::clone_args, std::mem::size_of_val(&args)) };
    if r < 0 {
        return Err(SysError::Pid { call: "clone3(set_tid)", pid: spec.pid.unwrap_or(0), errno: Errno::last() });
    }
    if r == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(127);
        // SAFETY: _exit ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    Ok(r as i32)
}

/// The calling thread in the IPC namespace of `pid` until the guard drops, then
/// back in its own (other threads stay where they are).
pub struct IpcNsGuard {
    home: std::os::fd::OwnedFd,
}

pub fn enter_ipc_ns(pid: i32) -> SysResult<IpcNsGuard> {
    use std::os::fd::AsFd;
    let open = |p: &str| crate::sys::fd::open(Path::new(p), libc::O_RDONLY | libc::O_CLOEXEC, 0);
    let home = open("/proc/thread-self/ns/ipc")?;
    let there = open(&format!("/proc/{pid}/ns/ipc"))?;
    set_ns(there.as_fd(), libc::CLONE_NEWIPC).map_err(|e| SysError::Pid {
        call: "setns(ipc)",
        pid,
        errno: Errno::from_raw(e.errno()),
    })?;
    Ok(IpcNsGuard { home })
}

impl Drop for IpcNsGuard {
    fn drop(&mut self) {
        use std::os::fd::AsFd;
        let _ = set_ns(self.home.as_fd(), libc::CLONE_NEWIPC);
    }
}

/// The clone flag of namespace kind `kind` (as /proc/PID/ns names it).
pub fn ns_flag(kind: &str) -> Option<i32> {
    Some(match kind {
        "mnt" => libc::CLONE_NEWNS,
        "net" => libc::CLONE_NEWNET,
        "ipc" => libc::CLONE_NEWIPC,
        "cgroup" => libc::CLONE_NEWCGROUP,
        "uts" => libc::CLONE_NEWUTS,
        "pid" => libc::CLONE_NEWPID,
        "time" => libc::CLONE_NEWTIME,
        "user" => libc::CLONE_NEWUSER,
        _ => return None,
    })
}

/// Runs `work` in a thread of its own that first enters the namespaces `kinds`
/// ("mnt", "net", "ipc", "cgroup", ...) of `pid`, and ends with it: ccr's other
/// threads never leave their namespaces. For "mnt" the thread first stops
/// sharing its fs with them (setns demands it); its root and cwd are then the
/// namespace's root.
pub fn in_namespaces_of<T: Send, E: From<SysError> + Send>(
    pid: i32,
    kinds: &[&str],
    work: impl FnOnce() -> Result<T, E> + Send,
) -> Result<T, E> {
    use std::os::fd::AsFd;
    let enter = || -> SysResult<()> {
        for &kind in kinds {
            let Some(flag) = ns_flag(kind) else {
                return Err(SysError::Task { pid, detail: format!("no namespace kind {kind} to enter") });
            };
            let ns = crate::sys::fd::open(
                Path::new(&format!("/proc/{pid}/ns/{kind}")),
                libc::O_RDONLY | libc::O_CLOEXEC,
                0,
            )?;
            // SAFETY: unshare with a flag only, in this thread of its own.
            if flag == libc::CLONE_NEWNS && unsafe { libc::unshare(libc::CLONE_FS) } < 0 {
                return Err(SysError::last("unshare(CLONE_FS)"));
            }
            set_ns(ns.as_fd(), flag).map_err(|e| SysError::Pid {
                call: "setns",
                pid,
                errno: Errno::from_raw(e.errno()),
            })?;
        }
        Ok(())
    };
    let run = || -> Result<T, E> {
        enter()?;
        work()
    };
    std::thread::scope(|s| s.spawn(run).join()).unwrap_or_else(|_| {
        Err(SysError::Task { pid, detail: format!("a thread inside its {} namespace panicked", kinds.join("+")) }
            .into())
    })
}

/// The time of `clock` (CLOCK_MONOTONIC, CLOCK_BOOTTIME, ...) in this process's
/// time namespace, in ns.
pub fn clock_ns(clock: libc::clockid_t) -> SysResult<i64> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out pointer.
    if unsafe { libc::clock_gettime(clock, &mut ts) } < 0 {
        return Err(SysError::last("clock_gettime"));
    }
    Ok(ts.tv_sec * 1_000_000_000 + ts.tv_nsec)
}

/// A new time namespace for this process's children, with these offsets (ns) of
/// CLOCK_MONOTONIC and CLOCK_BOOTTIME: set before any task is in it, as the
/// kernel demands.
pub fn unshare_time(monotonic: i64, boottime: i64) -> SysResult<()> {
    // SAFETY: unshare with a flag only.
    if unsafe { libc::unshare(libc::CLONE_NEWTIME) } < 0 {
        return Err(SysError::last("unshare(CLONE_NEWTIME)"));
    }
    // Seconds and a non-negative nanosecond part, as the file takes them.
    let split = |v: i64| (v.div_euclid(1_000_000_000), v.rem_euclid(1_000_000_000));
    let ((ms, mn), (bs, bn)) = (split(monotonic), split(boottime));
    let text = format!("monotonic {ms} {mn}\nboottime {bs} {bn}\n");
    std::fs::write("/proc/self/timens_offsets", text).map_err(SysError::path("write", "/proc/self/timens_offsets"))
}

/// This process into the time namespace it unshared for its children (setns to
/// /proc/self/ns/time_for_children; only a single-threaded process may).
pub fn enter_time_ns_for_children() -> SysResult<()> {
    use std::os::fd::AsFd;
    let p = Path::new("/proc/self/ns/time_for_children");
    let ns = crate::sys::fd::open(p, libc::O_RDONLY | libc::O_CLOEXEC, 0)?;
    set_ns(ns.as_fd(), libc::CLONE_NEWTIME)
}

/// setns(2) into the namespace `fd` is open on, which must be of type `flag`.
/// Runs `work` on a thread of its own that entered the namespace `ns` (of kind
/// `flag`), so ccr's other threads stay where they are.
pub fn in_ns<T: Send>(
    ns: std::os::fd::BorrowedFd<'_>,
    flag: i32,
    what: &'static str,
    work: impl FnOnce() -> SysResult<T> + Send,
) -> SysResult<T> {
    let run = || -> SysResult<T> {
        set_ns(ns, flag)?;
        work()
    };
    std::thread::scope(|s| s.spawn(run).join())
        .unwrap_or_else(|_| Err(SysError::Parse { path: what.into(), detail: "its thread panicked".into() }))
}

pub fn set_ns(fd: std::os::fd::BorrowedFd<'_>, flag: i32) -> SysResult<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: setns with an open fd and a type flag.
    if unsafe { libc::setns(fd.as_raw_fd(), flag) } < 0 {
        return Err(SysError::last("setns"));
    }
    Ok(())
}

/// This process into a new IPC namespace (its children are made in it).
pub fn unshare_ipc() -> SysResult<()> {
    // SAFETY: unshare with a flag only.
    if unsafe { libc::unshare(libc::CLONE_NEWIPC) } < 0 {
        return Err(SysError::last("unshare(CLONE_NEWIPC)"));
    }
    Ok(())
}

/// This process into a new cgroup namespace rooted at the cgroups it is in now
/// (its later children are made in it).
pub fn unshare_cgroup() -> SysResult<()> {
    // SAFETY: unshare with a flag only.
    if unsafe { libc::unshare(libc::CLONE_NEWCGROUP) } < 0 {
        return Err(SysError::last("unshare(CLONE_NEWCGROUP)"));
    }
    Ok(())
}

/// sethostname and setdomainname in this process's UTS namespace.
pub fn set_uts_names(hostname: &str, domainname: &str) -> SysResult<()> {
    // SAFETY: each call reads `len` bytes of a live string.
    if unsafe { libc::sethostname(hostname.as_ptr().cast(), hostname.len()) } < 0 {
        return Err(SysError::last("sethostname"));
    }
    // SAFETY: as above.
    if unsafe { libc::setdomainname(domainname.as_ptr().cast(), domainname.len()) } < 0 {
        return Err(SysError::last("setdomainname"));
    }
    Ok(())
}

/// This process's supplementary groups (getgroups).
pub fn groups() -> SysResult<Vec<u32>> {
    Ok(nix::unistd::getgroups()
        .map_err(|e| SysError::Call { call: "getgroups", errno: e })?
        .into_iter()
        .map(|g| g.as_raw())
        .collect())
}

/// Sets this process's supplementary groups (setgroups).
pub fn set_groups(groups: &[u32]) -> SysResult<()> {
    // SAFETY: the kernel reads `groups.len()` gids from the slice.
    check("setgroups", unsafe { libc::setgroups(groups.len(), groups.as_ptr()) })
}

/// Sets this process's real, effective and saved ids (setresgid, then setresuid)
/// and its supplementary groups first unless `groups` is None.
pub fn set_ids(uid: u32, gid: u32, groups: Option<&[u32]>) -> SysResult<()> {
    if let Some(g) = groups {
        set_groups(g)?;
    }
    // SAFETY: setresgid/setresuid with integer arguments.
    check("setresgid", unsafe { libc::setresgid(gid, gid, gid) })?;
    // SAFETY: as above.
    check("setresuid", unsafe { libc::setresuid(uid, uid, uid) })
}

/// A plain child (fork) running `child`, with PID `pid` when given.
pub fn spawn_with_pid<F: FnOnce() -> i32>(pid: Option<i32>, child: F) -> SysResult<i32> {
    spawn(CloneSpec { pid, ..Default::default() }, child)
}

pub fn kill(pid: i32, sig: i32) -> SysResult<()> {
    // SAFETY: kill with integer arguments.
    if unsafe { libc::kill(pid, sig) } != 0 {
        return Err(SysError::Pid { call: "kill", pid, errno: Errno::last() });
    }
    Ok(())
}

/// Whether fd `a` of `pid_a` and fd `b` of `pid_b` are the same open file description
/// (kcmp KCMP_FILE).
pub fn same_file(pid_a: i32, a: i32, pid_b: i32, b: i32) -> SysResult<bool> {
    const KCMP_FILE: i32 = 0;
    // SAFETY: kcmp with integer arguments only.
    let r = unsafe { libc::syscall(libc::SYS_kcmp, pid_a, pid_b, KCMP_FILE, a as u64, b as u64) };
    if r < 0 {
        return Err(SysError::Pid { call: "kcmp(KCMP_FILE)", pid: pid_a, errno: Errno::last() });
    }
    Ok(r == 0)
}

/// What a process may share with another one it was cloned from without being its
/// thread: address space, fd table, fs (cwd, root, umask), signal handlers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shareable {
    Vm,
    Files,
    Fs,
    Sighand,
}

/// How two processes' objects of `kind` compare (kcmp): Equal when shared. The
/// order is the kernel's own, stable for a sort.
pub fn kcmp_order(a: i32, b: i32, kind: Shareable) -> SysResult<std::cmp::Ordering> {
    let k = match kind {
        Shareable::Vm => kernel::kcmp_type_KCMP_VM,
        Shareable::Files => kernel::kcmp_type_KCMP_FILES,
        Shareable::Fs => kernel::kcmp_type_KCMP_FS,
        Shareable::Sighand => kernel::kcmp_type_KCMP_SIGHAND,
    };
    // SAFETY: kcmp with integer arguments only.
    let r = unsafe { libc::syscall(libc::SYS_kcmp, a, b, k as libc::c_int, 0u64, 0u64) };
    match r {
        0 => Ok(std::cmp::Ordering::Equal),
        1 => Ok(std::cmp::Ordering::Less),
        2 => Ok(std::cmp::Ordering::Greater),
        3 => Err(SysError::Task { pid: a, detail: format!("kcmp gives no order of its {kind:?} and {b}'s") }),
        _ => Err(SysError::Pid { call: "kcmp", pid: a, errno: Errno::last() }),
    }
}

/// The CPU affinity mask of a thread (sched_getaffinity), as raw bytes.
pub fn affinity(tid: i32) -> SysResult<Vec<u8>> {
    let mut buf = vec![0u8; 128];
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    let n = unsafe { libc::syscall(libc::SYS_sched_getaffinity, tid, buf.len(), buf.as_mut_ptr()) };
    if n < 0 {
        return Err(SysError::Pid { call: "sched_getaffinity", pid: tid, errno: Errno::last() });
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// Sets a thread's CPU affinity mask (raw bytes as `affinity` returns them).
pub fn set_affinity(tid: i32, mask: &[u8]) -> SysResult<()> {
    // SAFETY: the kernel reads `mask.len()` bytes from `mask`.
    if unsafe { libc::syscall(libc::SYS_sched_setaffinity, tid, mask.len(), mask.as_ptr()) } < 0 {
        return Err(SysError::Pid { call: "sched_setaffinity", pid: tid, errno: Errno::last() });
    }
    Ok(())
}

/// A mask holding only the CPU this thread runs on now.
pub fn this_cpu_mask() -> Vec<u8> {
    // SAFETY: sched_getcpu has no arguments.
    let cpu = unsafe { libc::sched_getcpu() }.max(0) as usize;
    cpu_mask(cpu)
}

/// Keeps ccr on one CPU for a run, next to the task it drives: every ptrace stop
/// is then a switch on that CPU instead of a wakeup of another (slow on VMs). The
/// tasks' own masks are never touched: a ccr killed in the middle must leave
/// them as they were, so ccr moves to them instead (`follow`).
pub struct CpuPin {
    mask: Vec<u8>,
    ours: Option<Vec<u8>>,
}

fn cpu_mask(cpu: usize) -> Vec<u8> {
    let mut m = vec![0u8; (cpu / 8 + 1).max(8)];
    m[cpu / 8] |= 1 << (cpu % 8);
    m
}

impl CpuPin {
    /// Pins the calling thread to the CPU it runs on.
    pub fn new() -> CpuPin {
        let mask = this_cpu_mask();
        let ours = affinity(0).ok();
        let _ = set_affinity(0, &mask);
        CpuPin { mask, ours }
    }

    /// Moves ccr to `cpu`, where the thread it drives next last ran, if ccr may run
    /// there: the stopped thread is woken where it slept, next to its tracer.
    pub fn follow(&mut self, cpu: u32) {
        let cpu = cpu as usize;
        let allowed = self.ours.as_ref().is_none_or(|m| m.get(cpu / 8).is_some_and(|b| b & (1 << (cpu % 8)) != 0));
        let m = cpu_mask(cpu);
        if allowed && m != self.mask && set_affinity(0, &m).is_ok() {
            self.mask = m;
        }
    }

    /// The mask ccr itself had before pinning.
    pub fn original(&self) -> Option<&[u8]> {
        self.ours.as_deref()
    }
}

impl Default for CpuPin {
    fn default() -> Self {
        CpuPin::new()
    }
}

impl Drop for CpuPin {
    fn drop(&mut self) {
        if let Some(m) = self.ours.take() {
            let _ = set_affinity(0, &m);
        }
    }
}

fn cpath(p: &str) -> SysResult<CString> {
    CString::new(p).map_err(|_| SysError::Parse { path: p.into(), detail: "NUL in path".into() })
}

fn check(call: &'static str, r: libc::c_int) -> SysResult<()> {
    if r < 0 {
        return Err(SysError::last(call));
    }
    Ok(())
}

fn check_path(call: &'static str, path: &str, r: libc::c_int) -> SysResult<()> {
    if r < 0 {
        return Err(SysError::Path { call, path: Path::new(path).into(), source: std::io::Error::last_os_error() });
    }
    Ok(())
}

/// Starts a new session.
pub fn setsid() -> SysResult<()> {
    // SAFETY: setsid has no arguments.
    check("setsid", unsafe { libc::setsid() })
}

/// setpgid(2).
pub fn setpgid(pid: i32, pgid: i32) -> SysResult<()> {
    // SAFETY: setpgid with integer arguments.
    check("setpgid", unsafe { libc::setpgid(pid, pgid) })
}

pub fn chdir(path: &str) -> SysResult<()> {
    let c = cpath(path)?;
    // SAFETY: valid C string.
    check_path("chdir", path, unsafe { libc::chdir(c.as_ptr()) })
}

pub fn chroot(path: &str) -> SysResult<()> {
    let c = cpath(path)?;
    // SAFETY: valid C string.
    check_path("chroot", path, unsafe { libc::chroot(c.as_ptr()) })
}

pub fn umask(mask: u32) {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) };
}

/// Prepares `cmd` (a hook script) to start clean of ccr: in a process group of its
/// own (ccr kills the group when it is stopped), with an empty signal mask and
/// every signal action at its default, on `affinity` (ccr's mask before it pinned
/// itself), and with every fd above stderr closed at exec (ccr's plumbing, images,
/// pidfds: nothing the script should hold, and nothing that would keep a restored
/// tree's pipes open).
pub fn isolate_script(cmd: &mut std::process::Command, affinity: Option<Vec<u8>>) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    // SAFETY: the closure runs in the child between fork and exec and makes only
    // async-signal-safe system calls on the child itself; it allocates nothing
    // (the mask was allocated before the fork).
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            // The kernel's call, not libc's, which refuses the signals it keeps to
            // itself (32, 33): ignored ones would stay so across exec.
            crate::sys::signal::reset_all_actions();
            if let Some(m) = &affinity {
                let _ = set_affinity(0, m);
            }
            // CLOEXEC rather than close: std reports a failed exec on a pipe of its own.
            crate::sys::fd::cloexec_range(3, u32::MAX);
            Ok(())
        });
    }
}

/// Makes this process a child subreaper: orphans below it are reparented to it.
pub fn set_child_subreaper() -> SysResult<()> {
    // SAFETY: prctl with integer arguments.
    check("prctl(PR_SET_CHILD_SUBREAPER)", unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) })
}

/// Ends this process at once (no exit handlers: they belong to the process image
/// we were forked from).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns.
    unsafe { libc::_exit(code) }
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
