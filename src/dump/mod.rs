//! Dump: live tasks → images directory, as a fixed list of [`Stage`]s run in
//! order by one loop. Everything a run holds (frozen cgroup, tracees, CPU pins)
//! lives in one [`Hold`], which undoes it on any failure in the order written in
//! `Hold::undo`: every task runs on untouched, and a frozen group goes back to the
//! state it had.
//!
//! Hooks (`crate::action`) run between stages, where criu runs them: pre-dump
//! before Freeze (nothing is touched yet), network-lock once the tree is seized,
//! post-dump once the images are in place and the tasks still stopped. A failing
//! hook is a failed stage: the tasks run on as they were, and images already in
//! place (post-dump) stay. network-unlock runs before the tasks are let go with
//! --leave-running, and after any failure once network-lock ran; a tree that is
//! killed keeps its network locked, for its restore to unlock.

mod mm;
mod ns;
mod task;
mod tree;

use std::collections::HashMap;
use std::time::Instant;

use crate::action::{HookStage, Hooks};
use crate::cgroup::FreezeGuard;
use crate::checkpoint::{Arch, Inventory, TaskCore};
use crate::error::{Error, Result};
use crate::files::table::FileTable;
use crate::files::{DumpCx, FilesImage};
use crate::image::{convert, pb, sums, ImageDir, Staging};
use crate::log::{Level, Log};
use crate::mm::Mm;
use crate::opts::DumpOpts;
use crate::sys::proc;
use crate::sys::process::CpuPin;
use crate::sys::ptrace::{Seized, StopKind};
use crate::{debug, info, warn};

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
    #[error("pid {pid}: fd {fd} ({path}) is a deleted file of {size} bytes, above --ghost-limit {limit}")]
    GhostTooBig { pid: i32, fd: i32, path: String, size: u64, limit: u64 },
    #[error("pid {pid}: no syscall instruction found in its vdso")]
    NoSyscallInsn { pid: i32 },
    #[error("writing {path}: {source}")]
    WritePages { path: std::path::PathBuf, source: std::io::Error },
    #[error("dump stopped by {signal} at {stage}; every task runs on as it was")]
    Interrupted { signal: String, stage: String },
    #[error(
        "pid {pid}: its {what} {id} belongs outside the dumped tree (a job started from a shell?): a restore \
         could not put it back there; dump with --shell-job to restore the tree into the restoring shell's \
         session and process group"
    )]
    ShellJob { pid: i32, what: &'static str, id: i32 },
}

impl DumpError {
    pub fn errno(&self) -> i32 {
        match self {
            DumpError::NoProcess { .. } => libc::ESRCH,
            DumpError::Seize { .. } => libc::EPERM,
            DumpError::WritePages { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
            DumpError::NoSyscallInsn { .. } => libc::ENOEXEC,
            DumpError::Interrupted { .. } => libc::EINTR,
            _ => libc::EOPNOTSUPP,
        }
    }
}

/// The stages of a dump, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// With a freeze cgroup: freeze it and attach every thread in it while it is
    /// frozen, so nothing can fork away while the tree is found.
    Freeze,
    /// Every task below the root and every thread of each stop for us (a frozen
    /// group is thawed first: its tasks stop under ptrace without running).
    Seize,
    /// What no later stage could save is refused now, before anything is written:
    /// namespaces other than ccr's (but the tree's own PID namespace).
    Check,
    /// Per task: files first (the cheapest way to find an fd ccr cannot dump),
    /// then registers and signal state (remote syscalls), then memory.
    Collect,
    /// The images, into a partial directory inside the images directory, then
    /// moved in with the inventory last: a failure before leaves the directory as
    /// it was, and a directory without an inventory is incomplete.
    Write,
    /// The tree is killed, or let go exactly as it was (a group that was frozen
    /// before, or that the caller wants left frozen, is frozen again first).
    Release,
}

impl Stage {
    pub const ALL: [Stage; 6] =
        [Stage::Freeze, Stage::Seize, Stage::Check, Stage::Collect, Stage::Write, Stage::Release];
}

/// What one run of the dump needs; owned by the run, passed by reference.
pub struct DumpCtx<'a> {
    pub opts: &'a DumpOpts,
    pub log: Log,
    /// Where the images are written: the partial directory of `out`.
    pub dir: ImageDir,
    pub out: Staging,
    pub stats: pb::DumpStats,
    pub progress: crate::progress::Progress,
    pub started: Instant,
}

/// Everything a dump holds of the tasks, undone (in `undo`) if the dump fails.
#[derive(Default)]
pub struct Hold {
    pin: Option<CpuPin>,
    /// Threads attached while their cgroup was frozen, not yet stopped.
    attached: HashMap<i32, Seized>,
    pub tasks: Vec<tree::Task>,
    freeze: Option<FreezeGuard>,
}

impl Hold {
    /// Gives everything back, in this order: a freeze cgroup its owner had frozen
    /// is frozen again, the tracees are detached (they run on from where they
    /// stopped, with their registers and masks put back by the remote sessions),
    /// ccr's own CPU mask goes back, then any other freeze cgroup is thawed.
    fn undo(&mut self) {
        // A group its owner had frozen is frozen again before its tasks are let go.
        if let Some(g) = self.freeze.as_mut().filter(|g| g.was_frozen()) {
            let _ = g.restore_state();
        }
        self.tasks.clear();
        self.pin = None;
        self.attached.clear();
        self.freeze = None;
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.undo();
    }
}

/// Everything the images hold.
pub struct Collected {
    pub inventory: Inventory,
    pub tasks: Vec<(TaskCore, Mm, Vec<pb::Fd>)>,
    pub files: FilesImage,
    /// Checksums of the page data, from the page writer.
    pub sums: Vec<pb::FileSum>,
    /// The tree's cgroups, when the dump saves them (`DumpOpts::cgroups`).
    pub cgroups: Option<pb::CgroupImage>,
    /// Established connections held in repair mode until the tasks are killed
    /// or let go (a failed dump lets them go when this is dropped).
    pub repairing: crate::sys::tcp_repair::Repairing,
}

pub fn run(opts: &DumpOpts) -> Result<()> {
    // A tree frozen by ptrace (`ccr freeze -t PID`) is held by a holder process:
    // only it can dump it without letting it run.
    if opts.freeze_cgroup.is_none() {
        if let Some(pid) = opts.pid {
            if crate::holder::exists(pid) {
                return crate::holder::dump(opts);
            }
        }
    }
    let (mut ctx, root) = new_ctx(opts)?;
    let hooks = Hooks::new(&opts.hooks, images_dir(opts));
    hooks.run(&mut ctx.log, HookStage::PreDump, Some(root))?;
    let mut hold = Hold::default();
    let mut collected = None;
    let mut checked = Checked::default();
    let mut frozen = ctx.started;
    let mut net = NetLock::default();
    for stage in Stage::ALL {
        let t = Instant::now();
        crate::fault::point("dump.stage");
        // Once the images are moved in (end of Write) the dump is done: a late stop
        // request does not take the checkpoint back.
        if stage != Stage::Release {
            if let Err(e) = stop_requested(&format!("the start of stage {stage:?}")) {
                info!(ctx.log, "dump of pid {root} stopped ({stage:?}): {e}; leaving the tree as it was");
                net.undo(&hooks, &mut ctx.log, root);
                return Err(e);
            }
        }
        let r = match stage {
            Stage::Freeze => freeze(&ctx, &mut hold),
            Stage::Seize => seize(root, &mut hold).map(|()| frozen = Instant::now()),
            Stage::Check => check(&mut hold.tasks, opts).map(|c| checked = c),
            Stage::Collect => {
                collect(&mut ctx, &hold.tasks, &mut hold.pin, std::mem::take(&mut checked)).and_then(|mut c| {
                    c.cgroups = save_cgroups(&mut ctx.log, opts, root, &hold)?;
                    collected = Some(c);
                    Ok(())
                })
            }
            Stage::Write => write(&ctx, collected.as_ref().expect("collected")),
            Stage::Release => let_go_of_connections(opts, collected.as_mut().expect("collected"))
                .and_then(|()| release(opts, &mut hold))
                .map(|()| {
                    if let Err(e) = collected.as_mut().expect("collected").repairing.killed() {
                        warn!(ctx.log, "the tree's network namespace may answer its peers with resets: {e}");
                    }
                }),
        };
        let r = r.and_then(|()| match stage {
            Stage::Seize => net.lock(&hooks, &mut ctx.log, root),
            Stage::Write => after_write(opts, &hooks, &mut ctx.log, root, &mut net),
            _ => Ok(()),
        });
        if let Err(e) = r {
            info!(ctx.log, "dump of pid {root} failed ({stage:?}): {e}; leaving the tree as it was");
            net.undo(&hooks, &mut ctx.log, root);
            return Err(e);
        }
        debug!(ctx.log, "{stage:?} done in {} us", t.elapsed().as_micros());
    }
    finish(&mut ctx, collected.as_ref().expect("collected"), frozen)
}

/// Whether the network-lock hooks ran (even if one failed: it may have locked
/// part), so the network-unlock hooks are owed.
#[derive(Default)]
struct NetLock {
    locked: bool,
}

impl NetLock {
    fn lock(&mut self, hooks: &Hooks<'_>, log: &mut Log, root: i32) -> Result<()> {
        self.locked = true;
        Ok(hooks.run(log, HookStage::NetworkLock, Some(root))?)
    }

    /// network-unlock while the tasks are still held, on the way to letting them
    /// go; its failure fails the dump (and it is not run again).
    fn unlock(&mut self, hooks: &Hooks<'_>, log: &mut Log, root: i32) -> Result<()> {
        self.locked = false;
        Ok(hooks.run(log, HookStage::NetworkUnlock, Some(root))?)
    }

    /// network-unlock on a failed dump's way out, if it is owed: a failure is
    /// logged, the dump's own error is the one reported.
    fn undo(&mut self, hooks: &Hooks<'_>, log: &mut Log, root: i32) {
        if std::mem::take(&mut self.locked) {
            if let Err(e) = hooks.run_to_end(log, HookStage::NetworkUnlock, Some(root)) {
                warn!(log, "after the failed dump of pid {root}: {e}");
            }
        }
    }
}

/// The hooks after the images are in place: post-dump, then with --leave-running
/// network-unlock (the tasks are let go next).
fn after_write(opts: &DumpOpts, hooks: &Hooks<'_>, log: &mut Log, root: i32, net: &mut NetLock) -> Result<()> {
    hooks.run(log, HookStage::PostDump, Some(root))?;
    if opts.leave_running {
        net.unlock(hooks, log, root)?;
    }
    Ok(())
}

/// A tree held stopped by ptrace across calls (the ptrace freeze of a bare PID).
pub struct Held {
    hold: Hold,
}

/// Seizes the tree under `pid` and keeps it stopped.
pub fn hold(pid: i32) -> Result<Held> {
    let mut hold = Hold::default();
    hold.pin = Some(CpuPin::new());
    seize(pid, &mut hold)?;
    Ok(Held { hold })
}

impl Held {
    /// Lets every task run on as it was.
    pub fn thaw(self) {
        drop(self.hold);
    }

    /// Whether the tree is gone (a dump killed it).
    pub fn is_empty(&self) -> bool {
        self.hold.tasks.is_empty()
    }

    /// Whether every task of the tree has died (killed by someone else while held).
    pub fn died(&self) -> bool {
        self.hold.tasks.iter().all(|t| proc::stat::read(t.pid()).map_or(true, |s| s.is_zombie()))
    }
}

/// Dumps a held tree. On failure it stays held (frozen, as the caller left it);
/// with --leave-running it stays held too (the caller thaws it); otherwise it is
/// killed.
pub fn run_held(opts: &DumpOpts, held: &mut Held) -> Result<()> {
    let (mut ctx, root) = new_ctx(opts)?;
    let original = held.hold.pin.as_ref().and_then(|p| p.original());
    let hooks = Hooks::new(&opts.hooks, images_dir(opts)).with_affinity(original);
    // The tree was seized by the freeze: pre-dump and network-lock come at once.
    hooks.run(&mut ctx.log, HookStage::PreDump, Some(root))?;
    let mut net = NetLock::default();
    let mut stages = || -> Result<Collected> {
        net.lock(&hooks, &mut ctx.log, root)?;
        let checked = check(&mut held.hold.tasks, opts)?;
        let mut c = collect(&mut ctx, &held.hold.tasks, &mut held.hold.pin, checked)?;
        c.cgroups = save_cgroups(&mut ctx.log, opts, root, &held.hold)?;
        write(&ctx, &c)?;
        after_write(opts, &hooks, &mut ctx.log, root, &mut net)?;
        Ok(c)
    };
    let c = match stages() {
        Ok(c) => c,
        Err(e) => {
            net.undo(&hooks, &mut ctx.log, root);
            return Err(e);
        }
    };
    let mut c = c;
    let_go_of_connections(opts, &mut c)?;
    if !opts.leave_running {
        release(opts, &mut held.hold)?;
        if let Err(e) = c.repairing.killed() {
            warn!(ctx.log, "the tree's network namespace may answer its peers with resets: {e}");
        }
    }
    let started = ctx.started;
    finish(&mut ctx, &c, started)
}

/// The images directory hooks are told (where the images are once in place).
fn images_dir(opts: &DumpOpts) -> &std::path::Path {
    opts.images_dir.as_deref().expect("checked by new_ctx")
}

fn new_ctx(opts: &DumpOpts) -> Result<(DumpCtx<'_>, i32)> {
    let pid = opts.pid.ok_or_else(|| Error::InvalidArgument("dump needs a pid (-t PID)".into()))?;
    let dir_path = opts
        .images_dir
        .as_deref()
        .ok_or_else(|| Error::InvalidArgument("dump needs an images directory (-D DIR)".into()))?;
    if pid <= 0 {
        return Err(Error::InvalidArgument(format!("pid {pid} is not a process id")));
    }
    // A key that names nothing ccr lets go of would be ignored: refused instead.
    if let Some(k) = opts.external.iter().find(|k| crate::files::external::tty_rdev(k).is_none()) {
        return Err(Error::InvalidArgument(format!(
            "external {k}: ccr lets go of ttys only (tty[RDEV:DEV], hex); a mount is named with --external \
             mnt[PATH]:KEY (ccr_opts_add_ext_mount)"
        )));
    }
    let log = Log::open(opts.log.file.as_deref(), Level::from_int(opts.log.level)).map_err(|source| {
        crate::sys::SysError::Path { call: "open log", path: opts.log.file.clone().unwrap_or_default(), source }
    })?;
    let out = Staging::new(dir_path)?;
    let mut ctx = DumpCtx {
        opts,
        log,
        dir: out.partial().clone(),
        out,
        stats: pb::DumpStats::default(),
        progress: crate::progress::Progress::new("dump"),
        started: Instant::now(),
    };
    info!(ctx.log, "dumping the tree of pid {pid} into {}", dir_path.display());
    if !proc::exists(pid) {
        return Err(DumpError::NoProcess { pid }.into());
    }
    if pid == std::process::id() as i32 {
        return Err(Error::InvalidArgument(format!("pid {pid} is ccr itself")));
    }
    Ok((ctx, pid))
}

fn finish(ctx: &mut DumpCtx<'_>, c: &Collected, frozen: Instant) -> Result<()> {
    ctx.stats.frozen_us = frozen.elapsed().as_micros() as u64;
    ctx.stats.total_us = ctx.started.elapsed().as_micros() as u64;
    ctx.stats.tasks = c.inventory.tasks.len() as u32;
    let stats = pb::Stats { dump: Some(ctx.stats), restore: None };
    ctx.out.target().write(None, &stats)?;
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
            let tracer = proc::status::read(p).ok().and_then(|s| s.int("TracerPid").ok()).unwrap_or(0);
            let detail =
                if tracer != 0 { format!("it is already traced by pid {tracer}") } else { "permission denied".into() };
            DumpError::Seize { pid: if p != 0 { p } else { pid }, detail }.into()
        }
        Error::Sys(crate::sys::SysError::Pid { errno: nix::errno::Errno::ESRCH, pid: p, .. })
        | Error::Sys(crate::sys::SysError::Died { pid: p, .. })
            if p == pid =>
        {
            DumpError::NoProcess { pid }.into()
        }
        other => other,
    }
}

/// Stage Freeze: with a freeze cgroup, freeze it and attach every thread in it.
fn freeze(ctx: &DumpCtx<'_>, hold: &mut Hold) -> Result<()> {
    hold.pin = Some(CpuPin::new());
    let Some(path) = &ctx.opts.freeze_cgroup else {
        return Ok(());
    };
    hold.freeze = Some(crate::cgroup::freeze::freeze_for_dump_timeout(path, ctx.opts.freeze_timeout())?);
    for pid in crate::cgroup::tasks_of(path)? {
        for tid in proc::task::threads(pid).unwrap_or_default() {
            if let Ok(t) = Seized::attach(tid, false) {
                hold.attached.insert(tid, t);
            }
        }
    }
    Ok(())
}

/// Stage Seize: a frozen group thaws (its tasks stop for us as they wake), then
/// the whole tree is seized.
fn seize(root: i32, hold: &mut Hold) -> Result<()> {
    if let Some(g) = &mut hold.freeze {
        g.thaw_attached()?;
    }
    hold.pin.get_or_insert_with(CpuPin::new);
    hold.tasks = tree::seize(root, &mut hold.attached).map_err(|e| seize_error(root, e))?;
    // Threads of the frozen group that are not in the tree: they stop for us as
    // they wake, and are let go at once (one that does not stop soon, asleep in
    // the kernel, stays attached until ccr exits rather than hold up the dump).
    let deadline = Instant::now() + std::time::Duration::from_millis(200);
    for (_, s) in hold.attached.drain() {
        if let Ok(Some(t)) = s.wait_stop_until(Some(deadline)) {
            let _ = t.release();
        }
    }
    Ok(())
}

/// Processes of the tree that share an address space, fd table, fs or signal
/// handlers (clone without CLONE_THREAD) would come back each with its own copy,
/// and what one of them does would no longer reach the other: refused by name.
/// Sorting by the kernel's order (kcmp) finds every pair in n log n comparisons.
fn refuse_shared_tables(tasks: &[tree::Task]) -> Result<()> {
    use crate::sys::process::{kcmp_order, Shareable};
    let live: Vec<i32> = tasks.iter().filter(|t| !t.is_zombie()).map(|t| t.pid()).collect();
    for (kind, what, flag) in [
        (Shareable::Vm, "its address space", "CLONE_VM"),
        (Shareable::Files, "its file descriptor table", "CLONE_FILES"),
        (Shareable::Fs, "its cwd, root and umask", "CLONE_FS"),
        (Shareable::Sighand, "its signal handlers", "CLONE_SIGHAND"),
    ] {
        let mut failed = None;
        let mut sorted = live.clone();
        sorted.sort_by(|&a, &b| {
            kcmp_order(a, b, kind).unwrap_or_else(|e| {
                failed.get_or_insert(e);
                std::cmp::Ordering::Less
            })
        });
        if let Some(e) = failed {
            return Err(e.into());
        }
        for w in sorted.windows(2) {
            if kcmp_order(w[0], w[1], kind)? == std::cmp::Ordering::Equal {
                let what = format!("{what} shared with process {} ({flag} without CLONE_THREAD)", w[1]);
                return Err(DumpError::Unsupported { pid: w[0], what }.into());
            }
        }
    }
    Ok(())
}

/// What the Check stage found: the tree's own namespaces, and whether it let go of
/// a shell's session or group (--shell-job).
#[derive(Debug, Default)]
struct Checked {
    own: ns::Own,
    shell_job: bool,
    /// The tree's own mount tree, found savable; its files are read in Collect.
    mnt: Option<crate::mounts::dump::Planned>,
    /// The tree's own network namespace, read whole (it holds no files).
    net: Option<pb::NetNamespace>,
    /// The roots of the tree's own cgroup namespace.
    cgroup_ns: Option<pb::CgroupNamespace>,
    /// The maps of the tree's own user namespace.
    user_ns: Option<pb::UserNamespace>,
}

/// Stage Check: what the images could not hold, refused before anything is
/// written. Says which namespaces of its own the tree has.
fn check(tasks: &mut [tree::Task], opts: &DumpOpts) -> Result<Checked> {
    let shell_job = opts.shell_job;
    if tasks[0].is_zombie() {
        let what = "a root that has exited (a zombie: nothing of it would come back but its exit status)".into();
        return Err(DumpError::Unsupported { pid: tasks[0].pid(), what }.into());
    }
    let own = ns::check(tasks)?;
    refuse_shared_tables(tasks)?;
    refuse_lsm_labels(tasks)?;
    let shell_job = !own.pid && let_go_of_the_shell(tasks, shell_job)?;
    let cgroup_ns = if own.cgroup { Some(ns::cgroup_roots(tasks)?) } else { None };
    if let Some(e) = opts.ext_mounts.first().filter(|_| !own.mnt) {
        let what = format!(
            "--external mnt[{}]:{} for a tree in ccr's own mount namespace (only a mount namespace of the \
             tree's own is saved)",
            e.mount_point, e.key
        );
        return Err(DumpError::Unsupported { pid: tasks[0].pid(), what }.into());
    }
    let mnt = if own.mnt {
        Some(crate::mounts::dump::plan(tasks[0].pid(), &opts.external, &opts.ext_mounts, cgroup_ns.as_ref())?)
    } else {
        None
    };
    let net = if own.net { Some(crate::netns::save(tasks[0].pid())?) } else { None };
    let user_ns = if own.user { Some(crate::userns::save(tasks[0].pid())?) } else { None };
    Ok(Checked { own, shell_job, mnt, net, cgroup_ns, user_ns })
}

/// A task under an LSM label (an AppArmor profile, an SELinux context) would come
/// back under ccr's: refused by name until ccr saves and sets labels.
fn refuse_lsm_labels(tasks: &[tree::Task]) -> Result<()> {
    // Where no LSM labels ccr itself, none labels any task: one read, not one a task.
    if proc::attr::no_lsm_labels() {
        return Ok(());
    }
    for t in tasks.iter().filter(|t| !t.is_zombie()) {
        if let Some(label) = proc::attr::current_label(t.pid())? {
            let what = format!("running under the LSM label {label:?} (ccr does not save labels)");
            return Err(DumpError::Unsupported { pid: t.pid(), what }.into());
        }
    }
    Ok(())
}

/// Each session of the tree with a controlling terminal gets it back on restore:
/// a pty of the tree whose session it is, or a tty the caller let go of
/// (`--external tty[..]`); the leader takes it back with its foreground group. A
/// session led from outside keeps the restoring caller's terminal. Anything else
/// is refused by name.
fn give_ttys(
    entries: &mut [pb::TaskEntry],
    files: &[crate::files::FileDesc],
    ptys: &[crate::files::pty::PtySession],
    cttys: &[(i32, i32, u32, i32)],
) -> Result<()> {
    use crate::files::external::tty_rdev;
    use std::collections::BTreeMap;
    // Each external tty's device → its keys (the device on one filesystem) → the
    // first file let go of as it. A tty is often open in several descriptions (a
    // console init got from its manager and each getty or shell opened itself):
    // any of them gives the terminal back, as they are one tty.
    let mut ttys: HashMap<u64, BTreeMap<&str, u32>> = HashMap::new();
    for f in files {
        if let crate::files::FileState::External(e) = &f.state {
            if let Some(rdev) = tty_rdev(&e.key) {
                let first = ttys.entry(rdev).or_default().entry(e.key.as_str()).or_insert(f.id);
                *first = (*first).min(f.id);
            }
        }
    }
    let index: HashMap<i32, usize> = entries.iter().enumerate().map(|(i, e)| (e.pid, i)).collect();
    for &(pid, sid, tty_nr, tpgid) in cttys {
        // A session led from outside (a shell job's, or the one a PID namespace's
        // init was started in) is the restoring caller's, with its terminal.
        let leader = index.get(&sid).copied().filter(|&i| !entries[i].zombie);
        let in_ours = index.get(&pid).is_some_and(|&i| entries[i].sid == 0);
        let Some(leader) = leader.filter(|_| !in_ours) else { continue };
        let dev = format!("{}:{}", libc::major(tty_nr as u64), libc::minor(tty_nr as u64));
        let refuse = |what: String| DumpError::Unsupported { pid, what };
        // A pty is told apart from another instance's of the same number by the
        // session it is the terminal of (or, when that cannot be asked, the
        // leader holding it).
        let pty = ptys.iter().find(|p| {
            let ours = p.session.map_or(p.holders.contains(&sid), |s| s == sid);
            ours && libc::makedev(136, p.index) == tty_nr as u64
        });
        let candidates: Vec<u32> =
            ttys.get(&(tty_nr as u64)).map(|keys| keys.values().copied().collect()).unwrap_or_default();
        let file = match (pty, &candidates[..]) {
            (Some(p), _) => match p.slave_files.first() {
                Some(&f) => f,
                None => {
                    let what = format!("a controlling terminal (pty {}) no task of the tree holds open", p.index);
                    return Err(refuse(what).into());
                }
            },
            (None, &[file]) => file,
            (None, []) => {
                let what = format!("a controlling terminal ({dev}) that is neither a pty of the tree nor a tty let go of with --external tty[RDEV:DEV]");
                return Err(refuse(what).into());
            }
            (None, _) => {
                return Err(
                    refuse(format!("a controlling terminal ({dev}) that more than one external tty could be")).into()
                )
            }
        };
        let leader = &mut entries[leader];
        if leader.ctty_file != 0 && leader.ctty_file != file {
            return Err(refuse(format!("a controlling terminal ({dev}) other than its session leader's")).into());
        }
        leader.ctty_file = file;
        leader.tty_pgrp = tpgid.max(0);
    }
    Ok(())
}

/// A session or process group from outside the tree cannot be made again by a
/// restore (its id is a process, maybe a zombie, that is not ours): refused, or with
/// --shell-job let go of (0 in the images: the restoring caller's). Returns
/// whether it let go of any. A tree that is its own PID namespace sees such ids as
/// 0 already (from inside), and its restore has always kept ccr's.
fn let_go_of_the_shell(tasks: &mut [tree::Task], shell_job: bool) -> Result<bool> {
    let ours: std::collections::HashSet<i32> = tasks.iter().map(|t| t.pid()).collect();
    // 0: led from outside ccr's own PID namespace.
    // Every task of a job names the same few ids: look each up once.
    let mut alive = std::collections::HashMap::new();
    let mut held_outside =
        |id: i32| id == 0 || (!ours.contains(&id) && *alive.entry(id).or_insert_with(|| proc::stat::read(id).is_ok()));
    let mut let_go = false;
    for t in tasks.iter_mut() {
        let e = &mut t.entry;
        let session = held_outside(e.sid);
        // A group lives in one session: in a session from outside, it is from outside
        // too, even when its leader has gone.
        let group = held_outside(e.pgid) || (session && !ours.contains(&e.pgid));
        for (what, id, outside) in [("session", e.sid, session), ("process group", e.pgid, group)] {
            if outside && !shell_job {
                return Err(DumpError::ShellJob { pid: e.pid, what, id }.into());
            }
        }
        if session {
            e.sid = 0;
        }
        if group {
            e.pgid = 0;
        }
        let_go |= session || group;
    }
    Ok(let_go)
}

/// An error if SIGINT, SIGTERM or SIGHUP (or the death of the process that
/// started this helper) asked ccr to stop.
fn stop_requested(stage: &str) -> Result<()> {
    match crate::sys::interrupt::pending() {
        Some(sig) => {
            Err(DumpError::Interrupted { signal: crate::sys::interrupt::name(sig), stage: stage.to_string() }.into())
        }
        None => Ok(()),
    }
}

/// Stage Collect: every task's files, state and memory.
fn collect(
    ctx: &mut DumpCtx<'_>,
    tasks: &[tree::Task],
    pin: &mut Option<CpuPin>,
    checked: Checked,
) -> Result<Collected> {
    let own = checked.own;
    let pid_ns = own.pid;
    let mut uts = None;
    // What the restored tasks set from inside their user namespace must be an id it maps.
    let ids = crate::userns::Ids::of(checked.user_ns.as_ref());
    let mut root_groups: Option<Vec<u32>> = None;
    // The tree's SysV objects are seen (and attached, to copy) from inside its IPC
    // namespace; this thread stays there for the whole collection.
    let _in_ipc_ns = if own.ipc { Some(crate::sys::process::enter_ipc_ns(tasks[0].pid())?) } else { None };
    let root = tasks[0].pid();
    let mut table = FileTable::default();
    let mut state = crate::files::DumpState::default();
    state.externals = ctx.opts.external.clone();
    state.tcp_established = ctx.opts.tcp_established;
    state.ghost_limit = ctx.opts.ghost_limit;
    let mut store = mm::PageStore::new(&ctx.dir, pin.as_ref().and_then(|p| p.original()).map(<[u8]>::to_vec));
    let mut out = Vec::new();
    let mut xfeatures = 0;
    let mut restorers = crate::sys::remote::landing::Restorers::default();
    // (pid, its session, its controlling tty, that tty's foreground group)
    let mut cttys = Vec::new();
    for task in tasks.iter().filter(|t| !t.is_zombie()) {
        let pid = task.pid();
        stop_requested(&format!("pid {pid}"))?;
        let stat = proc::stat::read(pid)?;
        if stat.tty_nr != 0 {
            cttys.push((pid, stat.sid, stat.tty_nr, stat.tpgid));
        }
        let status = proc::status::read(pid)?;
        // Files first: the cheapest way to find out early that we cannot dump.
        let fds = {
            let mut cx = DumpCx {
                dir: &ctx.dir,
                log: &mut ctx.log,
                state: &mut state,
                shmem: &mut store.shmem,
                pages: &mut store.writer,
                stamps: &mut store.stamps,
            };
            table.collect_task(&mut cx, pid)?
        };
        // The fds that send signals: their owner and signal are asked of the task.
        let lease = pb::LockKind::Lease as i32;
        let signalling: Vec<i32> = fds
            .iter()
            .filter(|f| {
                let async_io = table.files[(f.file_id - 1) as usize].flags & libc::O_ASYNC as u32 != 0;
                async_io || f.task_locks.iter().any(|l| l.kind == lease)
            })
            .map(|f| f.fd)
            .collect();
        let mut fds = fds;
        let maps = proc::maps::smaps(pid)?;
        let vmas = mm::classify(pid, &maps)?;
        let want_uts = own.uts && pid == root;
        let mut sessions = task::Sessions { pin: pin.as_mut(), restorers: &mut restorers };
        let t0 = Instant::now();
        let mut state = task::collect(&task.threads, &stat, &status, &maps, want_uts, &signalling, &mut sessions)?;
        if let Err(id) = ids.creds(&state.core.creds) {
            let what = format!("credentials with {id}, which its user namespace does not map");
            return Err(DumpError::Unsupported { pid, what }.into());
        }
        // Where setgroups is denied, every task comes back with the root's groups
        // (no task can set its own there).
        if ids.setgroups_denied() {
            let groups = &state.core.creds.groups;
            match &root_groups {
                None => root_groups = Some(groups.clone()),
                Some(r) if r != groups => {
                    let what = format!(
                        "supplementary groups {groups:?} other than the root's {r:?} in a user namespace that \
                         denies setgroups"
                    );
                    return Err(DumpError::Unsupported { pid, what }.into());
                }
                Some(_) => {}
            }
        }
        debug!(ctx.log, "pid {pid}: task state in {} us", t0.elapsed().as_micros());
        if let Some(why) = state.unlanded {
            warn!(ctx.log, "pid {pid}: remote calls ran without a landing ({why}): had ccr died during them, the task would not have been put back");
        }
        for (fd, owner) in std::mem::take(&mut state.fd_owners) {
            if let Some(f) = fds.iter_mut().find(|f| f.fd == fd) {
                f.owner = Some(owner);
            }
        }
        if let Some((hostname, domainname)) = state.uts.take() {
            uts = Some(pb::UtsNamespace { hostname, domainname });
        }
        for (th, mask) in state.core.threads.iter_mut().zip(&task.affinity) {
            th.state.cpu_affinity = mask.clone();
        }
        if let StopKind::GroupStop(sig) = task.leader().stop_kind() {
            state.core.stop_signal = sig;
        }
        let image_pid = if pid_ns { status.ns_last("NSpid") } else { pid };
        let mem_started = Instant::now();
        let (mm, counts) = mm::collect(ctx, pid, image_pid, &stat, vmas, &state, &mut store)?;
        ctx.stats.memdump_us += mem_started.elapsed().as_micros() as u64;
        ctx.stats.pages_written += counts.pages;
        ctx.stats.pages_scanned += counts.scanned;
        ctx.progress.add_task();
        xfeatures = convert::xstate_features(&state.core.threads[0].xsave);
        out.push((state.core, mm, fds));
    }
    table.finish()?;
    let tree_net = match (&checked.net, own.net) {
        (Some(ns), true) => Some((crate::dump::ns::net_ino(root)?, crate::files::tcp_conn::local_ips(ns))),
        _ => None,
    };
    if crate::files::tcp_conn::check_peers(&mut table, tree_net.as_ref())? {
        state.repairing.cut_links_on_kill();
    }
    let own_devpts = checked.mnt.as_ref().map(|p| p.own_devpts()).unwrap_or_default();
    let (ptys, pty_sessions) = crate::files::pty::finish(&state.ptys, own_devpts)?;
    let time = if own.time { Some(ns::time_clocks(root)?) } else { None };
    let mnt = match checked.mnt {
        Some(planned) => {
            let sockets = crate::files::unix::bound_files(&mut state, root)?;
            Some(crate::mounts::dump::save(root, &ctx.dir, planned, &ids, &sockets)?)
        }
        None => None,
    };
    let ipc = if own.ipc {
        // Every segment of the namespace, attached or not, goes with it.
        for seg in proc::sysvipc::shm()? {
            store.sysv_segment(&ctx.dir, root, seg.id)?;
        }
        Some(ns::ipc_objects(root)?)
    } else {
        None
    };
    let mm::PageStore { writer, shmem, sysv, .. } = store;
    if let Some(ns) = ipc.as_ref().filter(|_| ids.own()) {
        ns::ipc_owners_mapped(root, ns, &sysv, &ids)?;
    }
    let written = Instant::now();
    let sums = writer.finish()?;
    ctx.stats.memdump_us += written.elapsed().as_micros() as u64;
    let inventory = Inventory {
        root_pid: root,
        tasks: tasks.iter().map(|t| t.entry.clone()).collect(),
        arch: Arch::HOST,
        kernel: proc::kernel::osrelease(),
        ccr_version: env!("CARGO_PKG_VERSION").to_string(),
        dump_time_unix_ns: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
        xfeatures,
        pid_ns,
        uts,
        ipc,
        parent: None,
        time,
        mnt,
        net: checked.net,
        checksummed: true,
        shell_job: checked.shell_job,
        cgroup_ns: checked.cgroup_ns,
        user_ns: checked.user_ns,
    };
    let mut inventory = inventory;
    give_ttys(&mut inventory.tasks, &table.files, &pty_sessions, &cttys)?;
    let files = FilesImage { files: table.files, pipes: state.pipes, shmems: shmem.into_images(), sysv, ptys };
    let repairing = std::mem::take(&mut state.repairing);
    let mut c = Collected { inventory, tasks: out, files, sums, cgroups: None, repairing };
    if pid_ns {
        to_namespace_ids(&mut c, tasks)?;
    }
    Ok(c)
}

/// The tree's cgroups when the dump saves them (criu's dump --manage-cgroups), read
/// while every task is held: cgroup-save's image, the freeze cgroup's state as
/// its owner had it.
fn save_cgroups(log: &mut Log, opts: &DumpOpts, root: i32, hold: &Hold) -> Result<Option<pb::CgroupImage>> {
    use crate::cgroup::{hierarchy, save};
    let Some(c) = &opts.cgroups else { return Ok(None) };
    let hs = hierarchy::mounted()?;
    for ctl in save::unmounted_roots(&c.roots, &hs) {
        info!(log, "cgroups: no hierarchy with {ctl} is mounted here: its --cgroup-root is ignored");
    }
    let frozen_for_dump = hold.freeze.as_ref().map(|g| (g.path().to_path_buf(), g.was_frozen()));
    let t = save::SaveTarget {
        pid: Some(root),
        freeze_cgroup: opts.freeze_cgroup.clone(),
        frozen_for_dump,
        roots: c.roots.clone(),
    };
    let img = save::collect(&t, &hs)?;
    for h in &img.hierarchies {
        debug!(log, "cgroups: {} saved with root {}", h.mount_point, h.root);
    }
    Ok(Some(img))
}

/// Stage Write: every image, the inventory last.
fn write(ctx: &DumpCtx<'_>, c: &Collected) -> Result<()> {
    let arch = c.inventory.arch;
    for (core, mm, fds) in &c.tasks {
        let n = Some(core.pid as u64);
        ctx.dir.write(n, &convert::core_to_pb(core, arch))?;
        ctx.dir.write(n, &convert::mm_to_pb(mm, core.pid))?;
        ctx.dir.write(n, &pb::Fds { fds: fds.clone(), pid: core.pid })?;
    }
    ctx.dir.write(None, &convert::files_to_pb(&c.files))?;
    if let Some(img) = &c.cgroups {
        ctx.dir.write(None, img)?;
    }
    // The page data was summed on its way out; the other raw files are read back.
    let mut files = c.sums.clone();
    for name in sums::raw_files(&ctx.dir)? {
        if !files.iter().any(|s| s.name == name) {
            let f = ctx.dir.open_file(&name)?;
            files.push(sums::of_file(&name, &f, &ctx.dir.path().join(&name))?);
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    ctx.dir.write(None, &pb::Sums { files })?;
    ctx.dir.write(None, &convert::inventory_to_pb(&c.inventory))?;
    stop_requested("the move of the images into place")?;
    ctx.out.commit()?;
    Ok(())
}

/// Stage Release: kill the tree, or let it go as it was found.
/// With --leave-running, the connections come out of repair mode before their
/// tasks run (a send in repair mode fails); tasks about to be killed take
/// theirs silently, never put back (even if ccr dies meanwhile).
fn let_go_of_connections(opts: &DumpOpts, c: &mut Collected) -> Result<()> {
    if opts.leave_running {
        c.repairing.let_go()?;
    } else {
        c.repairing.killing();
    }
    Ok(())
}

fn release(opts: &DumpOpts, hold: &mut Hold) -> Result<()> {
    hold.pin = None;
    let tasks = std::mem::take(&mut hold.tasks);
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
    let guard = hold.freeze.take();
    let keep_frozen = guard.as_ref().is_some_and(|g| g.was_frozen() || opts.leave_stopped);
    if let (true, Some(g)) = (keep_frozen, &guard) {
        crate::cgroup::freeze::freeze(g.path(), opts.freeze_timeout())?;
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

/// Rewrites every pid of the checkpoint as seen inside the tree's PID namespace
/// (NSpid, NSpgid, NSsid of /proc status), so the images do not depend on the pids
/// the host gave the tasks.
fn to_namespace_ids(c: &mut Collected, tasks: &[tree::Task]) -> Result<()> {
    let mut inner: HashMap<i32, i32> = HashMap::new();
    let mut groups = Vec::with_capacity(tasks.len());
    for t in tasks {
        let st = proc::status::read(t.pid())?;
        inner.insert(t.pid(), st.ns_last("NSpid"));
        groups.push((st.ns_last("NSpgid"), st.ns_last("NSsid")));
        for th in t.threads.iter().skip(1) {
            inner.insert(th.pid(), proc::task::ns_tid(t.pid(), th.pid())?);
        }
    }
    let map = |p: i32| inner.get(&p).copied().unwrap_or(0);
    // A foreground group by its id as ccr sees it → as the namespace does.
    let ns_pgid: HashMap<i32, i32> = c.inventory.tasks.iter().zip(&groups).map(|(e, g)| (e.pgid, g.0)).collect();
    for e in c.inventory.tasks.iter_mut() {
        e.tty_pgrp = ns_pgid.get(&e.tty_pgrp).copied().unwrap_or(0);
    }
    for (e, (pgid, sid)) in c.inventory.tasks.iter_mut().zip(groups) {
        e.dumped_pid = e.pid;
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
        for t in &mut core.posix_timers {
            t.tid = map(t.tid);
        }
    }
    for f in &mut c.files.files {
        f.owner_pid = map(f.owner_pid);
    }
    Ok(())
}
