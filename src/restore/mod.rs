//! Restore: images directory → live tasks, as a fixed list of [`Stage`]s run in
//! order by one loop. Everything a run creates (tasks, tracees, cgroups, SysV
//! segments, shared objects) belongs to one [`Run`], which undoes it on any
//! failure in the order written in `Run::undo`: nothing half-restored is left.
//!
//! Namespaces and mounts (the container work) go between `Cgroups` and
//! `SharedObjects` on ccr's side, and at the start of each restore child's set-up
//! (`fork`), before it opens its files.
//!
//! Hooks (`crate::action`) run between stages: pre-restore before anything is
//! made; setup-namespaces and post-setup-namespaces after `Fork`; post-restore,
//! network-unlock and pre-resume after `CheckData`, every task rebuilt and still
//! stopped; post-resume once the tree runs. A hook that fails before the tree runs
//! is a failed stage (the run undoes everything); a post-resume failure is logged
//! and the restore succeeds, as in criu: the tree runs and cannot be taken back,
//! and a caller told "failed" would not know it has a running tree.

mod cgns;
mod fork;
pub(crate) mod images;
pub mod join;
mod mm;
pub mod pty_masters;
mod shared;
mod task;
mod userns;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::action::{HookStage, Hooks};
use crate::cgroup::CgroupRestorePlan;
use crate::error::{Error, Result};
use crate::image::{pb, ImageDir};
use crate::log::{Level, Log};
use crate::opts::{ManageCgroups, RestoreOpts};
use crate::sys::proc::stat::{pid_state, PidState};
use crate::sys::process;
use crate::{debug, info};

pub use images::{Checkpoint, TaskImage};

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{dir}: not a complete checkpoint (no inventory.img)")]
    NoCheckpoint { dir: std::path::PathBuf },
    #[error("pid {pid} is in use by another process")]
    PidTaken { pid: i32 },
    #[error("pid {pid} did not become free within {secs} s")]
    PidBusy { pid: i32, secs: u64 },
    #[error("pid {pid}: restore child failed: {detail}")]
    Child { pid: i32, detail: String },
    #[error("pid {pid}: {what} cannot be restored yet")]
    Unsupported { pid: i32, what: String },
    #[error("pid {pid}: vdso came back at {got:#x}, expected {want:#x}")]
    VdsoMoved { pid: i32, got: u64, want: u64 },
    #[error("pid {pid}: {source}")]
    Pages { pid: i32, source: crate::image::pages::PageSourceError },
    #[error("pid {pid}: cannot take back the {lock} of file {file_id} ({what}): {detail}")]
    Lock { pid: i32, file_id: u32, what: String, lock: String, detail: String },
    #[error("restore stopped by {signal} at the start of stage {stage}; what it made is undone")]
    Interrupted { signal: String, stage: String },
    /// A file restore opens or maps by path is not the one that was dumped
    /// (`files::stamp` has the rule); `at` is "(fd N)", "mapped at ADDR", ...
    #[error("pid {pid}: {path} {at}: it is not the file that was dumped ({differs})")]
    NotTheDumpedFile { pid: i32, path: String, at: String, differs: String },
    #[error("pid {pid}: thread {tid} came back as {got}")]
    ThreadId { pid: i32, tid: i32, got: i32 },
    #[error("the tree's cgroup namespace root {path} on {hierarchy}: {detail}")]
    CgroupNsRoot { hierarchy: String, path: String, detail: String },
    #[error("the caller's pty master function did not take the new master of {key}: it returned {code}")]
    PtyMasterRefused { key: String, code: i32 },
    #[error("joining cgroup {dir} to unshare the tree's cgroup namespace there: {source}")]
    JoinCgroup { dir: std::path::PathBuf, source: Box<crate::sys::SysError> },
}

impl RestoreError {
    pub fn errno(&self) -> i32 {
        match self {
            RestoreError::NoCheckpoint { .. } | RestoreError::CgroupNsRoot { .. } => libc::ENOENT,
            RestoreError::PidTaken { .. } | RestoreError::PidBusy { .. } => libc::EEXIST,
            RestoreError::Unsupported { .. } => libc::EOPNOTSUPP,
            RestoreError::Interrupted { .. } => libc::EINTR,
            RestoreError::NotTheDumpedFile { .. } => libc::ESTALE,
            RestoreError::PtyMasterRefused { .. } => libc::ECANCELED,
            _ => libc::EIO,
        }
    }
}

/// The stages of a restore, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Every image is read and checked before anything is touched.
    ReadImages,
    /// The saved PIDs must be free; a dumped-and-killed task stays a zombie until
    /// PID 1 reaps it, which takes a moment.
    WaitPids,
    /// Cgroups are created and configured before any task exists, so each task
    /// can be placed in them before it runs.
    Cgroups,
    /// What several tasks share, and every object that has no path, is made once
    /// in ccr (SysV segments, shared memory, pipes, sockets, eventfds, ...):
    /// the tree inherits it.
    SharedObjects,
    /// The tree is forked top-down with clone3 + set_tid (exact PIDs, parents,
    /// sessions, groups); each restore child opens its files by path, puts its fds
    /// in place, maps a trampoline and waits.
    Fork,
    /// Each task goes into its saved cgroups before any restored code runs.
    PlaceInCgroups,
    /// Every task is seized; from now on they only move through remote syscalls.
    Seize,
    /// Address spaces: ccr's mappings out, vdso, VMAs, pages, protections, mm
    /// fields. Shared memfds get their last seals once every task has mapped them.
    Memory,
    /// Process-wide state: signal actions, itimers, limits, pending signals; ccr's
    /// plumbing fds close (before limits: RLIMIT_NOFILE may be below them).
    ProcessState,
    /// Threads are cloned (remote clone3 with set_tid) once the address space is
    /// back and before credentials change.
    Threads,
    /// Each thread's own state: altstack, rseq, robust list, name, pending signals.
    ThreadState,
    /// What sends the tasks signals, once every thread it may signal exists: fd
    /// owners and O_ASYNC (F_SETOWN_EX, F_SETSIG), then POSIX timers under the IDs
    /// the program holds, armed with the time they had left (signals stay blocked
    /// while ccr works, so an early expiry waits as a pending signal).
    SignalSources,
    /// Credentials last (they drop the privileges the stages above need), then
    /// what a credential change resets (dumpable, the parent-death signal).
    Credentials,
    /// The trampoline goes, registers and signal masks come back, CPU affinity.
    Registers,
    /// No task runs before every raw data file (pages, shared memory, SysV
    /// segments, ghost files) matched its checksums; read on a thread of its own
    /// since the Memory stage began.
    CheckData,
    /// Every task is let go at once (a job-control stop stays a stop); the
    /// cgroups' freezer states apply; the run keeps what it made.
    Release,
}

impl Stage {
    pub const ALL: [Stage; 16] = [
        Stage::ReadImages,
        Stage::WaitPids,
        Stage::Cgroups,
        Stage::SharedObjects,
        Stage::Fork,
        Stage::PlaceInCgroups,
        Stage::Seize,
        Stage::Memory,
        Stage::ProcessState,
        Stage::Threads,
        Stage::ThreadState,
        Stage::SignalSources,
        Stage::Credentials,
        Stage::Registers,
        Stage::CheckData,
        Stage::Release,
    ];
}

/// What one restore needs, and everything it has made so far.
pub struct Run<'a> {
    pub opts: &'a RestoreOpts,
    pub log: Log,
    pub dir: ImageDir,
    pub stats: pb::RestoreStats,
    pub progress: crate::progress::Progress,
    /// The root becomes a child of our parent (CLONE_PARENT), as the C ABI promises.
    pub child_of_caller: bool,
    /// ccr's own affinity before it pinned itself: for threads saved without one.
    pub default_affinity: Option<Vec<u8>>,
    /// The highest capability number this kernel knows.
    pub last_cap: u64,
    pub ckpt: Option<Checkpoint>,
    /// The check of the raw data files against their checksums.
    pub data_check: images::DataCheck,
    /// The namespaces the caller named for the tree to join, open (ReadImages).
    pub joined: Vec<join::Joined>,
    /// Where each external mount is bound from on this side (ReadImages).
    pub ext_mounts: HashMap<String, std::path::PathBuf>,
    /// The veth pairs to make for the tree's namespace (ReadImages).
    pub veth_plan: Vec<crate::netns::veth::Planned>,
    // What the run made, undone by `undo` unless `done`:
    pin: Option<process::CpuPin>,
    pub cgroups: Option<CgroupRestorePlan>,
    pub sysv_created: Vec<i32>,
    /// What this run makes that would outlive a killed ccr, written down first.
    pub journal: Option<crate::journal::Journal>,
    pub shared: Option<shared::Shared>,
    pub tree: Option<fork::Tree>,
    pub tasks: Vec<task::Restoring>,
    /// The veth pairs made for the tree (Fork): deleted on drop, unless kept.
    pub veths: Option<crate::netns::veth::Pairs>,
    done: bool,
}

impl Run<'_> {
    pub fn ckpt(&self) -> &Checkpoint {
        self.ckpt.as_ref().expect("read in ReadImages")
    }

    /// Undoes a failed restore, in this order: every task it created is killed
    /// (and given a moment to die, so its cgroups empty), its tracees let go, the
    /// SysV segments it made removed, the cgroups it made removed (the plan's
    /// drop, deepest first), the shared objects closed, the host ends of the veth
    /// pairs it made deleted (each takes its inside end along).
    fn undo(&mut self) {
        let pids: Vec<i32> = self.tree.as_ref().map(|t| t.outer.values().copied().collect()).unwrap_or_default();
        for &pid in &pids {
            let _ = process::kill(pid, libc::SIGKILL);
        }
        // The root is our child unless it was made our caller's: ours to reap.
        if let Some(t) = self.tree.as_ref().filter(|_| !self.child_of_caller) {
            self.tasks.clear();
            let _ = crate::sys::wait::reap(t.root);
        }
        self.tasks.clear();
        self.tree = None;
        let deadline = Instant::now() + Duration::from_secs(2);
        while pids.iter().any(|&p| pid_state(p) == PidState::Alive) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        for &id in &self.sysv_created {
            crate::mm::sysv::remove(id);
        }
        self.sysv_created.clear();
        self.cgroups = None;
        self.shared = None;
        self.veths = None;
        self.pin = None;
    }
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.undo();
        }
    }
}

/// Restores; returns the PID of the restored root as ccr sees it, once it runs.
/// With `child_of_caller` the root becomes a child of our parent (CLONE_PARENT).
pub fn run(opts: &RestoreOpts, child_of_caller: bool) -> Result<i32> {
    let dir_path = opts
        .images_dir
        .as_deref()
        .ok_or_else(|| Error::InvalidArgument("restore needs an images directory (-D DIR)".into()))?;
    let log = Log::open(opts.log.file.as_deref(), Level::from_int(opts.log.level)).map_err(|source| {
        crate::sys::SysError::Path { call: "open log", path: opts.log.file.clone().unwrap_or_default(), source }
    })?;
    let mut run = Run {
        opts,
        log,
        dir: ImageDir::open_trusted(dir_path)?,
        stats: pb::RestoreStats::default(),
        progress: crate::progress::Progress::new("restore"),
        child_of_caller,
        default_affinity: None,
        last_cap: crate::sys::proc::kernel::cap_last_cap().unwrap_or(40),
        ckpt: None,
        pin: None,
        cgroups: None,
        sysv_created: Vec::new(),
        journal: None,
        shared: None,
        tree: None,
        tasks: Vec::new(),
        data_check: images::DataCheck::None,
        joined: Vec::new(),
        ext_mounts: HashMap::new(),
        veth_plan: Vec::new(),
        veths: None,
        done: false,
    };
    let started = Instant::now();
    let (journal, cleaned) = crate::journal::Journal::start_if_writable(dir_path)?;
    if cleaned != Default::default() {
        info!(run.log, "removed what a killed restore of this directory left: {cleaned:?}");
    }
    if journal.is_none() {
        info!(
            run.log,
            "{} is read-only: no restore journal (a killed ccr may leave SysV segments and cgroups)",
            dir_path.display()
        );
    }
    run.journal = journal;
    if let Some(profile) = &opts.lsm_profile {
        lsm_profile(&mut run.log, profile)?;
    }
    let hooks = Hooks::new(&opts.hooks, dir_path);
    hooks.run(&mut run.log, HookStage::PreRestore, None)?;
    for stage in Stage::ALL {
        let t = Instant::now();
        crate::fault::point("restore.stage");
        if let Some(sig) = crate::sys::interrupt::pending() {
            let signal = crate::sys::interrupt::name(sig);
            let e = RestoreError::Interrupted { signal, stage: format!("{stage:?}") };
            info!(run.log, "restore stopped: {e}");
            return Err(e.into());
        }
        let r = match stage {
            Stage::ReadImages => images::read(&mut run),
            Stage::WaitPids => wait_pids(&mut run),
            Stage::Cgroups => cgroups(&mut run),
            Stage::SharedObjects => shared::make(&mut run),
            Stage::Fork => fork_tree(&mut run),
            Stage::PlaceInCgroups => place_in_cgroups(&run),
            Stage::Seize => task::seize(&mut run),
            Stage::Memory => {
                images::start_data_check(&mut run);
                mm::rebuild_all(&mut run)
            }
            Stage::ProcessState => task::process_state(&mut run),
            Stage::Threads => task::threads(&mut run),
            Stage::ThreadState => task::thread_state(&mut run),
            Stage::SignalSources => task::signal_sources(&mut run),
            Stage::Credentials => task::credentials(&mut run),
            Stage::Registers => task::registers(&mut run),
            Stage::CheckData => images::check_data(&mut run).and_then(|()| task::let_go_of_connections(&mut run)),
            Stage::Release => release(&mut run),
        };
        let r = r.and_then(|()| hooks_after(&mut run, &hooks, stage));
        if let Err(e) = r {
            info!(run.log, "restore failed ({stage:?}): {e}; undoing it");
            return Err(e);
        }
        debug!(run.log, "{stage:?} done in {} us", t.elapsed().as_micros());
    }
    run.stats.total_us = started.elapsed().as_micros() as u64;
    run.stats.tasks = run.ckpt().inventory.tasks.len() as u32;
    info!(run.log, "{} tasks restored in {} us", run.stats.tasks, run.stats.total_us);
    save_stats(&run);
    let root = run.tree.as_ref().expect("forked").outer_of(run.ckpt().inventory.root_pid)?;
    if let Err(e) = hooks.run(&mut run.log, HookStage::PostResume, Some(root)) {
        crate::log_at!(run.log, Error, "{e} (pid {root} and its tree run on: they cannot be taken back)");
    }
    if let Some(p) = &opts.pidfile {
        std::fs::write(p, format!("{root}\n")).map_err(crate::sys::SysError::path("write pidfile", p))?;
    }
    Ok(root)
}

/// The hooks that follow `stage`. setup-namespaces comes once the whole tree is
/// forked, not as soon as the root exists: `fork` makes the tree in one go, and
/// stopping the root before its children would need a hand-shake there. Nothing
/// restored runs yet either way: the tasks wait in their set-up, before cgroups,
/// ptrace or memory.
fn hooks_after(run: &mut Run<'_>, hooks: &Hooks<'_>, stage: Stage) -> Result<()> {
    let at: &[HookStage] = match stage {
        Stage::Fork => &[HookStage::SetupNamespaces, HookStage::PostSetupNamespaces],
        // No network is locked by a restore itself: the unlock is the dump's lock's.
        Stage::CheckData => &[HookStage::PostRestore, HookStage::NetworkUnlock, HookStage::PreResume],
        _ => &[],
    };
    if at.is_empty() {
        return Ok(());
    }
    let root = run.tree.as_ref().expect("forked").root;
    for &h in at {
        hooks.run(&mut run.log, h, Some(root))?;
    }
    Ok(())
}

fn save_stats(run: &Run<'_>) {
    let mut stats: pb::Stats = run.dir.read(None).unwrap_or_default();
    stats.restore = Some(run.stats);
    // Best effort: a read-only images directory must not fail a finished restore.
    let _ = run.dir.write(None, &stats);
}

/// Stage WaitPids. In a new PID namespace every pid is free; otherwise a live
/// process on a saved pid is an error at once, a zombie is waited for.
fn wait_pids(run: &mut Run<'_>) -> Result<()> {
    let waited = Instant::now();
    if !run.ckpt().inventory.pid_ns {
        for t in &run.ckpt().inventory.tasks {
            wait_pid_free(t.pid)?;
        }
    }
    run.stats.pid_wait_us = waited.elapsed().as_micros() as u64;
    Ok(())
}

fn wait_pid_free(pid: i32) -> Result<()> {
    let limit = Duration::from_secs(10);
    let start = Instant::now();
    loop {
        match pid_state(pid) {
            PidState::Free => return Ok(()),
            PidState::Alive => return Err(RestoreError::PidTaken { pid }.into()),
            PidState::Zombie if start.elapsed() > limit => {
                return Err(RestoreError::PidBusy { pid, secs: limit.as_secs() }.into())
            }
            PidState::Zombie => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Stage Cgroups (when the checkpoint has them and the caller wants them managed).
fn cgroups(run: &mut Run<'_>) -> Result<()> {
    if run.dir.exists(crate::image::ImageKind::Cgroup, None) && run.opts.cgroups.manage != ManageCgroups::Ignore {
        let journal = run.journal.as_ref().map(|j| j.handle()).transpose()?;
        let plan = crate::cgroup::api::restore_plan(&run.dir, &run.opts.cgroups, journal)?;
        for line in plan.describe() {
            info!(run.log, "cgroups: {line}");
        }
        run.cgroups = Some(plan);
    }
    Ok(())
}

/// Stage Fork. Children inherit ccr's CPU pin: every ptrace stop stays on this CPU.
fn fork_tree(run: &mut Run<'_>) -> Result<()> {
    let pin = process::CpuPin::new();
    run.default_affinity = pin.original().map(|m| m.to_vec());
    run.pin = Some(pin);
    let forked = Instant::now();
    let shared = run.shared.as_ref().expect("made in SharedObjects");
    // Before the fork: the root's child moves the inside ends into its namespace.
    // A connection to a peer outside must find its socket back before the
    // peer finds the namespace again.
    let held_down = run.ckpt().files.files.iter().any(|f| {
        matches!(&f.state, crate::files::FileState::Inet(s) if s.established.as_ref().is_some_and(|c| c.peer_outside))
    });
    // A namespace joined is nobody's to hold down: the peer could meet it first.
    if held_down && join::joins(&run.joined, "net") {
        let what = "a TCP connection to a peer outside, restored into a network namespace joined (--join-ns \
                    net): only a namespace the restore makes is kept from its peers until the connection is back"
            .to_string();
        return Err(RestoreError::Unsupported { pid: run.ckpt().inventory.root_pid, what }.into());
    }
    run.veths = crate::netns::veth::make(&run.veth_plan, run.journal.as_mut(), held_down)?;
    let ckpt = run.ckpt.as_ref().expect("read");
    let asked = fork::Asked {
        root_at: run.opts.root.as_deref(),
        join: &run.joined,
        ext_mounts: &run.ext_mounts,
        veths: run.veths.as_ref(),
    };
    let cgroup_ns =
        ckpt.inventory.cgroup_ns.as_ref().map(|ns| cgns::root_dirs(ns, run.cgroups.as_ref())).transpose()?;
    let tree = fork::spawn(&run.dir, ckpt, shared, run.child_of_caller, asked, cgroup_ns.as_deref())?;
    run.tree = Some(tree);
    // ccr's copies of what the tree inherited go; memfds stay until sealed.
    if let Some(s) = run.shared.as_mut() {
        s.files.clear();
    }
    run.stats.fork_us = forked.elapsed().as_micros() as u64;
    debug!(run.log, "{} tasks forked in {} us", run.ckpt().inventory.tasks.len(), run.stats.fork_us);
    Ok(())
}

/// Stage PlaceInCgroups.
fn place_in_cgroups(run: &Run<'_>) -> Result<()> {
    let (Some(plan), Some(tree)) = (&run.cgroups, &run.tree) else { return Ok(()) };
    for t in run.ckpt().inventory.tasks.iter().filter(|t| !t.zombie) {
        // A cgroup image is saved from outside a PID namespace: it names the tasks as
        // ccr saw them at the dump (images before 2.8 have no such pid).
        let saved = if t.dumped_pid != 0 { t.dumped_pid } else { t.pid };
        plan.place_task(tree.outer_of(t.pid)?, saved)?;
    }
    Ok(())
}

/// The LSM profile the caller asks for. A dump refuses tasks that run under a
/// label, so the checkpoint's ran unconfined: on a kernel where no LSM labels
/// tasks the profile has nothing to apply to; elsewhere ccr cannot apply one yet.
fn lsm_profile(log: &mut Log, profile: &str) -> Result<()> {
    if crate::sys::proc::attr::no_lsm_labels() {
        info!(log, "--lsm-profile {profile}: no LSM labels tasks on this kernel; the tasks run unconfined as dumped");
        return Ok(());
    }
    let what = format!("the LSM profile {profile} (ccr does not apply LSM profiles yet)");
    Err(RestoreError::Unsupported { pid: 0, what }.into())
}

/// Stage Release: threads first, then the leaders, all at once at the end.
fn release(run: &mut Run<'_>) -> Result<()> {
    // Before the tree runs: a socket that cannot take them fails the restore.
    if let Some(tree) = run.tree.as_mut() {
        let (root, masters) = (tree.root, std::mem::take(&mut tree.pty_masters));
        pty_masters::deliver(&mut run.log, run.opts, root, masters)?;
    }
    for t in &mut run.tasks {
        for th in t.stopped_threads.drain(..) {
            th.detach()?;
        }
    }
    for t in run.tasks.drain(..) {
        let stop = t.stop_signal;
        let leader = t.into_leader();
        if stop != 0 {
            leader.detach_stopped(stop)?;
        } else {
            leader.detach()?;
        }
    }
    run.done = true;
    // The tree runs: what it uses is no leftover any more.
    run.journal = None;
    run.sysv_created.clear();
    // A segment removed while attached goes again once its last user detaches.
    // In a user namespace of the tree's own, its IPC namespace is not ccr's: the
    // segments are removed from a thread inside it.
    let removed: Vec<i32> = run.ckpt().files.sysv.iter().filter(|s| s.removed).map(|s| s.id).collect();
    let root = run.tree.as_ref().map(|t| t.root);
    match root.filter(|_| run.ckpt().inventory.user_ns.is_some() && run.ckpt().inventory.ipc.is_some()) {
        Some(root) if !removed.is_empty() => process::in_namespaces_of(root, &["ipc"], || -> Result<()> {
            removed.iter().for_each(|&id| crate::mm::sysv::remove(id));
            Ok(())
        })?,
        _ => removed.iter().for_each(|&id| crate::mm::sysv::remove(id)),
    }
    if let Some(mut plan) = run.cgroups.take() {
        plan.apply_freeze_states()?;
        plan.commit();
    }
    run.shared = None;
    if let Some(pairs) = run.veths.take() {
        pairs.keep();
    }
    Ok(())
}

/// Waits for a restored child and returns its exit status as a shell would
/// (128 + signal when it was killed).
pub fn wait_restored(pid: i32) -> Result<u8> {
    match crate::sys::wait::reap(pid)? {
        Some(st) => Ok(st.shell_code()),
        None => Err(crate::sys::SysError::Pid { call: "waitpid", pid, errno: nix::errno::Errno::ECHILD }.into()),
    }
}
