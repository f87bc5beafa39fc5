//! Dump: live tasks → images directory.
//!
//! Stages, in order:
//! 1. freeze (when a freeze cgroup is given): nothing can fork away; every thread is
//!    attached (PTRACE_SEIZE + PTRACE_INTERRUPT) while frozen, then the cgroup thaws
//!    and each stops for us without running user code;
//! 2. seize the tree: every task below the root, every thread of each;
//! 3. collect each task: /proc state, fds (one table of open files for the whole
//!    tree, pipe contents), registers, signal state (remote syscalls), memory
//!    (pagemap + process_vm_readv into pages-PID.img; shared memory once per object);
//! 4. write the images;
//! 5. kill the tree, or (--leave-running) let it go exactly as it was.
//!
//! Any failure before 5 drops the tracees, which put back registers and signal masks
//! and detach: every task runs on untouched (and a frozen group goes back to the
//! state it had).

mod files;
mod mm;
mod task;
mod tree;

use std::collections::HashMap;
use std::time::Instant;

use crate::cgroup::FreezeGuard;
use crate::error::{Error, Result};
use crate::image::{pb, ImageDir, ImageKind, FORMAT_VERSION};
use crate::log::{Level, Log};
use crate::opts::Opts;
use crate::sys::proc;
use crate::sys::ptrace::{StopKind, Tracee};
use crate::{debug, info};

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("pid {pid}: no such process")]
    NoProcess { pid: i32 },
    #[error("pid {pid} cannot be seized: {detail}")]
    Seize { pid: i32, detail: String },
    #[error("pid {pid}: {what} is not supported yet")]
    Unsupported { pid: i32, what: String },
    #[error("pid {pid}: fd {fd} is a {kind} ({path}), which ccr cannot dump yet")]
    UnsupportedFd { pid: i32, fd: i32, kind: String, path: String },
    #[error("pid {pid}: mapping {start:#x}-{end:#x} ({name}) is {what}, which ccr cannot dump yet")]
    UnsupportedVma { pid: i32, start: u64, end: u64, name: String, what: String },
    #[error("pid {pid}: no syscall instruction found in its vdso")]
    NoSyscallInsn { pid: i32 },
    #[error("writing {path}: {source}")]
    WritePages { path: std::path::PathBuf, source: std::io::Error },
}

impl DumpError {
    pub fn errno(&self) -> i32 {
        match self {
            DumpError::NoProcess { .. } => libc::ESRCH,
            DumpError::Seize { .. } => libc::EPERM,
            DumpError::WritePages { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
            DumpError::NoSyscallInsn { .. } => libc::ENOEXEC,
            _ => libc::EOPNOTSUPP,
        }
    }
}

/// What one run of the dump needs; owned by the run, passed by reference.
pub struct DumpCtx<'a> {
    pub opts: &'a Opts,
    pub log: Log,
    pub dir: ImageDir,
    pub stats: pb::DumpStats,
    pub progress: crate::progress::Progress,
}

pub fn run(opts: &Opts) -> Result<()> {
    // A tree frozen by ptrace (`ccr freeze -t PID`) is held by a holder process:
    // only it can dump it without letting it run.
    if opts.freeze_cgroup.is_none() {
        if let Some(pid) = opts.pid {
            if crate::holder::exists(pid) {
                return crate::holder::dump(opts);
            }
        }
    }
    let (mut ctx, pid) = new_ctx(opts)?;
    let started = Instant::now();
    let mut pin = crate::sys::process::CpuPin::new();
    let (guard, attached) = freeze_and_attach(opts)?;
    let tasks = tree::seize(pid, attached, &mut pin).map_err(|e| seize_error(pid, e))?;
    let frozen = Instant::now();
    debug!(ctx.log, "seized {} tasks", tasks.len());

    let collected = match collect_all(&mut ctx, &tasks).and_then(|c| write_images(&ctx, &c).map(|()| c)) {
        Ok(c) => c,
        Err(e) => {
            info!(ctx.log, "dump of pid {pid} failed: {e}; leaving the tree running");
            pin.release();
            drop(tasks);
            drop(guard);
            return Err(e);
        }
    };
    pin.release();
    release(opts, tasks, guard)?;
    finish(&mut ctx, &collected, started, frozen)
}

/// A tree held stopped by ptrace across calls (the ptrace freeze of a bare PID).
pub struct Held {
    pub tasks: Vec<tree::Task>,
    pub pin: crate::sys::process::CpuPin,
}

/// Seizes the tree under `pid` and keeps it stopped.
pub fn hold(pid: i32) -> Result<Held> {
    let mut pin = crate::sys::process::CpuPin::new();
    let tasks = tree::seize(pid, HashMap::new(), &mut pin).map_err(|e| seize_error(pid, e))?;
    Ok(Held { tasks, pin })
}

impl Held {
    /// Lets every task run on as it was.
    pub fn thaw(mut self) {
        self.pin.release();
        drop(self.tasks);
    }
}

/// Dumps a held tree. On failure it stays held (frozen, as the caller left it);
/// with --leave-running it stays held too (the caller thaws it); otherwise it is
/// killed and `held.tasks` is left empty.
pub fn run_held(opts: &Opts, held: &mut Held) -> Result<()> {
    let (mut ctx, _) = new_ctx(opts)?;
    let started = Instant::now();
    let collected = collect_all(&mut ctx, &held.tasks).and_then(|c| write_images(&ctx, &c).map(|()| c))?;
    if !opts.leave_running {
        held.pin.release();
        release(opts, std::mem::take(&mut held.tasks), None)?;
    }
    finish(&mut ctx, &collected, started, started)
}

fn new_ctx(opts: &Opts) -> Result<(DumpCtx<'_>, i32)> {
    let pid = opts.pid.ok_or_else(|| Error::InvalidArgument("dump needs a pid (-t PID)".into()))?;
    let dir_path = opts
        .images_dir
        .as_deref()
        .ok_or_else(|| Error::InvalidArgument("dump needs an images directory (-D DIR)".into()))?;
    if pid <= 0 {
        return Err(Error::InvalidArgument(format!("pid {pid} is not a process id")));
    }
    let log = Log::open(opts.log_file.as_deref(), Level::from_int(opts.log_level)).map_err(|source| {
        crate::sys::SysError::Path { call: "open log", path: opts.log_file.clone().unwrap_or_default(), source }
    })?;
    let dir = ImageDir::create(dir_path)?;
    let mut ctx =
        DumpCtx { opts, log, dir, stats: pb::DumpStats::default(), progress: crate::progress::Progress::new("dump") };
    info!(ctx.log, "dumping the tree of pid {pid} into {}", dir_path.display());
    if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return Err(DumpError::NoProcess { pid }.into());
    }
    if pid == std::process::id() as i32 {
        return Err(Error::InvalidArgument(format!("pid {pid} is ccr itself")));
    }
    Ok((ctx, pid))
}

fn finish(ctx: &mut DumpCtx<'_>, c: &Collected, started: Instant, frozen: Instant) -> Result<()> {
    ctx.stats.frozen_us = frozen.elapsed().as_micros() as u64;
    ctx.stats.total_us = started.elapsed().as_micros() as u64;
    ctx.stats.tasks = c.inventory.tasks.len() as u32;
    let stats = pb::Stats { dump: Some(ctx.stats), restore: None };
    ctx.dir.write(ImageKind::Stats, None, &stats)?;
    info!(
        ctx.log,
        "dump of pid {} done in {} us (frozen {} us)", c.inventory.root_pid, ctx.stats.total_us, ctx.stats.frozen_us
    );
    Ok(())
}

/// A refused PTRACE_SEIZE, explained (someone else traces the task?).
fn seize_error(pid: i32, e: Error) -> Error {
    match e {
        Error::Sys(crate::sys::SysError::Pid { errno: nix::errno::Errno::EPERM, pid: p, .. }) => {
            let tracer = proc::status(p).ok().and_then(|s| s.int("TracerPid").ok()).unwrap_or(0);
            let detail =
                if tracer != 0 { format!("it is already traced by pid {tracer}") } else { "permission denied".into() };
            DumpError::Seize { pid: if p != 0 { p } else { pid }, detail }.into()
        }
        Error::Sys(crate::sys::SysError::Pid { errno: nix::errno::Errno::ESRCH, .. }) => {
            DumpError::NoProcess { pid }.into()
        }
        other => other,
    }
}

/// With a freeze cgroup: freeze it, attach every thread in it, and thaw it again so
/// the threads stop for us (they stay ptrace-stopped; none runs user code).
fn freeze_and_attach(opts: &Opts) -> Result<(Option<FreezeGuard>, HashMap<i32, Tracee>)> {
    let Some(path) = &opts.freeze_cgroup else {
        return Ok((None, HashMap::new()));
    };
    let timeout = opts.freeze_timeout_s.unwrap_or(10);
    let guard = crate::cgroup::freeze::freeze_for_dump_timeout(path, timeout)?;
    let mut attached = HashMap::new();
    for pid in crate::cgroup::tasks_of(path)? {
        for tid in proc::threads(pid).unwrap_or_default() {
            if let Ok(t) = Tracee::attach(tid, false) {
                attached.insert(tid, t);
            }
        }
    }
    crate::cgroup::freeze::thaw(path, timeout)?;
    Ok((Some(guard), attached))
}

/// Lets the tree go (as it was) or kills it; a group frozen before us, or that the
/// caller wants left frozen, is frozen again before any task could run.
fn release(opts: &Opts, tasks: Vec<tree::Task>, guard: Option<FreezeGuard>) -> Result<()> {
    if !opts.leave_running {
        // Every task gets SIGKILL first: an init of a PID namespace dies only after
        // the rest of its namespace. Then deaths are collected deepest task first,
        // and within a task the other threads before the leader (the kernel reports
        // a leader only after its whole group).
        for task in &tasks {
            let _ = crate::sys::process::kill(task.pid(), libc::SIGKILL);
        }
        for task in tasks.into_iter().rev() {
            let mut threads = task.threads;
            let leader = if threads.is_empty() { None } else { Some(threads.remove(0)) };
            for t in threads {
                t.kill()?;
            }
            if let Some(l) = leader {
                l.kill()?;
            }
        }
        return Ok(());
    }
    let keep_frozen = guard.as_ref().is_some_and(|g| g.was_frozen() || opts.leave_stopped);
    if let (true, Some(g)) = (keep_frozen, &guard) {
        crate::cgroup::freeze::freeze(g.path(), opts.freeze_timeout_s.unwrap_or(10))?;
    }
    for task in tasks {
        for t in task.threads {
            t.release()?;
        }
    }
    if let (true, Some(g)) = (keep_frozen, guard) {
        g.keep_frozen();
    }
    Ok(())
}

/// Everything the images hold.
pub struct Collected {
    pub inventory: pb::Inventory,
    pub tasks: Vec<(pb::TaskCore, pb::Mm, pb::Fds)>,
    pub files: pb::Files,
}

fn collect_all(ctx: &mut DumpCtx<'_>, tasks: &[tree::Task]) -> Result<Collected> {
    let mut table = files::FileTable::default();
    let mut store = mm::PageStore::new();
    let mut out = Vec::new();
    let root = tasks[0].pid();
    let my_pidns = std::fs::read_link("/proc/self/ns/pid").ok();
    let root_ns = std::fs::read_link(format!("/proc/{root}/ns/pid")).ok();
    let pid_ns = root_ns != my_pidns;
    if pid_ns && proc::ns_last(&proc::status(root)?, "NSpid") != 1 {
        return Err(DumpError::Unsupported {
            pid: root,
            what: "a root inside another PID namespace that is not its init".into(),
        }
        .into());
    }
    let mut xfeatures = 0;
    for task in tasks.iter().filter(|t| !t.entry.zombie) {
        let pid = task.pid();
        if std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok() != root_ns {
            return Err(DumpError::Unsupported { pid, what: "a task in a nested PID namespace".into() }.into());
        }
        let stat = proc::stat(pid)?;
        let status = proc::status(pid)?;
        if status.int("Seccomp").unwrap_or(0) != 0 {
            return Err(DumpError::Unsupported { pid, what: "a seccomp filter".into() }.into());
        }
        let timers = std::fs::read_to_string(format!("/proc/{pid}/timers")).unwrap_or_default();
        if !timers.trim().is_empty() {
            return Err(DumpError::Unsupported { pid, what: "POSIX timers (timer_create)".into() }.into());
        }
        // Files first: the cheapest way to find out early that we cannot dump.
        let fds = table.collect_task(ctx, pid)?;
        let maps = proc::smaps(pid)?;
        let vmas = mm::classify(pid, &maps)?;
        let mut state = task::collect(ctx, &task.threads, &stat, &status, &maps)?;
        for (th, mask) in state.core.threads.iter_mut().zip(&task.affinity) {
            th.cpu_affinity = mask.clone();
        }
        if let StopKind::GroupStop(sig) = task.leader().stop_kind() {
            state.core.stop_signal = sig;
        }
        let image_pid = if pid_ns { proc::ns_last(&status, "NSpid") } else { pid };
        let mm = mm::collect(ctx, pid, image_pid, &stat, vmas, &state, &mut store)?;
        ctx.progress.add_task();
        xfeatures = crate::image::convert::xstate_features(&state.core.threads[0].xstate);
        out.push((state.core, mm, fds));
    }
    let copied = Instant::now();
    let (shmems, sysv_shm) = store.finish()?;
    ctx.stats.memdump_us += copied.elapsed().as_micros() as u64;
    table.check_peers()?;
    let inventory = pb::Inventory {
        format_version: FORMAT_VERSION,
        root_pid: tasks[0].pid(),
        tasks: tasks.iter().map(|t| t.entry.clone()).collect(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string(),
        ccr_version: env!("CARGO_PKG_VERSION").to_string(),
        dump_time_unix_ns: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
        has_cgroups: false,
        xfeatures,
        pid_ns,
    };
    let files = pb::Files { files: table.files, pipes: table.pipes, shmems, sysv_shm };
    let mut c = Collected { inventory, tasks: out, files };
    if pid_ns {
        to_namespace_ids(&mut c, tasks)?;
    }
    Ok(c)
}

fn write_images(ctx: &DumpCtx<'_>, c: &Collected) -> Result<()> {
    for (core, mm, fds) in &c.tasks {
        ctx.dir.write(ImageKind::Core, Some(core.pid), core)?;
        ctx.dir.write(ImageKind::Mm, Some(core.pid), mm)?;
        ctx.dir.write(ImageKind::Fds, Some(core.pid), fds)?;
    }
    ctx.dir.write(ImageKind::Files, None, &c.files)?;
    // The inventory last: a directory without it is not a complete checkpoint.
    ctx.dir.write(ImageKind::Inventory, None, &c.inventory)?;
    Ok(())
}

/// Rewrites every pid of the checkpoint as seen inside the tree's PID namespace
/// (NSpid, NSpgid, NSsid of /proc status), so the images do not depend on the pids
/// the host gave the tasks.
fn to_namespace_ids(c: &mut Collected, tasks: &[tree::Task]) -> Result<()> {
    let mut inner: HashMap<i32, i32> = HashMap::new();
    let mut groups = Vec::with_capacity(tasks.len());
    for t in tasks {
        let st = proc::status(t.pid())?;
        inner.insert(t.pid(), proc::ns_last(&st, "NSpid"));
        groups.push((proc::ns_last(&st, "NSpgid"), proc::ns_last(&st, "NSsid")));
        for th in t.threads.iter().skip(1) {
            inner.insert(th.pid(), proc::ns_tid(t.pid(), th.pid())?);
        }
    }
    let map = |p: i32| inner.get(&p).copied().unwrap_or(0);
    for (e, (pgid, sid)) in c.inventory.tasks.iter_mut().zip(groups) {
        e.pid = map(e.pid);
        e.ppid = map(e.ppid);
        e.pgid = pgid;
        e.sid = sid;
        e.threads = e.threads.iter().map(|&x| map(x)).collect();
    }
    c.inventory.root_pid = map(c.inventory.root_pid);
    for (core, _, _) in &mut c.tasks {
        core.pid = map(core.pid);
        for th in &mut core.threads {
            th.tid = map(th.tid);
        }
    }
    for f in &mut c.files.files {
        f.owner_pid = map(f.owner_pid);
    }
    Ok(())
}
