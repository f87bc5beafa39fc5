//! Restore: images directory → live tasks.
//!
//! Stages, in order (each comment says why it comes where it does):
//! 1. read and check every image before touching anything;
//! 2. wait until the saved PIDs are free (PID 1 reaps orphans late);
//! 3. cgroups (when the checkpoint has them): created and configured before any
//!    task exists, so tasks can be placed into them;
//! 4. shared resources (open files, pipes, shared memory) created once in ccr;
//! 5. the tree forked top-down by restore children (copies of ccr) with clone3 +
//!    set_tid; each puts its fds in place, maps a trampoline and blocks;
//! 6. each task placed in its saved cgroups before any restored code runs;
//! 7. every task seized; from now on they only move through remote syscalls;
//! 8. per task: address space (ccr's mappings out, rseq first; vdso, VMAs, pages,
//!    protections, mm fields), signal state, limits, threads (remote clone3), each
//!    thread's own state, credentials last, trampoline out, registers in;
//! 9. process groups joined, then every task released at once.
//!
//! A failure anywhere kills every task created: nothing half-restored is left, and
//! the cgroups this run created are removed.

mod fork;
mod mm;
mod shared;
mod task;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::image::{pb, ImageDir, ImageKind};
use crate::log::{Level, Log};
use crate::opts::{ManageCgroups, Opts};
use crate::sys::process::{self, PidState};
use crate::sys::ptrace::Tracee;
use crate::sys::SysError;
use crate::{debug, info};

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
    #[error("pid {pid}: page data short: {got} of {want} bytes at {addr:#x}")]
    ShortPages { pid: i32, addr: u64, got: u64, want: u64 },
    #[error("pid {pid}: thread {tid} came back as {got}")]
    ThreadId { pid: i32, tid: i32, got: i32 },
}

impl RestoreError {
    pub fn errno(&self) -> i32 {
        match self {
            RestoreError::NoCheckpoint { .. } => libc::ENOENT,
            RestoreError::PidTaken { .. } | RestoreError::PidBusy { .. } => libc::EEXIST,
            RestoreError::Unsupported { .. } => libc::EOPNOTSUPP,
            _ => libc::EIO,
        }
    }
}

/// The images of one live task, read and checked.
pub struct TaskImages {
    pub pid: i32,
    pub core: pb::TaskCore,
    pub mm: pb::Mm,
    pub fds: pb::Fds,
    pub pages_path: std::path::PathBuf,
}

pub struct RestoreCtx<'a> {
    pub opts: &'a Opts,
    pub log: Log,
    pub dir: ImageDir,
    pub stats: pb::RestoreStats,
    pub progress: crate::progress::Progress,
    /// ccr's own affinity before it pinned itself: for threads saved without one.
    pub default_affinity: Option<Vec<u8>>,
    /// The highest capability number this kernel knows (read once per restore).
    pub last_cap: u64,
}

/// SysV segments this run created, removed unless the restore succeeded.
struct SysvGuard {
    created: Vec<i32>,
    done: bool,
}

impl Drop for SysvGuard {
    fn drop(&mut self) {
        if !self.done {
            for &id in &self.created {
                crate::sys::sysv_shm::remove(id);
            }
        }
    }
}

/// Every task this run created, killed on drop unless released.
struct Created {
    pids: Vec<i32>,
    released: bool,
}

impl Drop for Created {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        for &pid in &self.pids {
            let _ = process::kill(pid, libc::SIGKILL);
        }
    }
}

/// Restores; with `child_of_caller` the root task becomes a child of our parent
/// (CLONE_PARENT), as the C ABI promises.
pub fn run(opts: &Opts, child_of_caller: bool) -> Result<i32> {
    let dir_path = opts
        .images_dir
        .as_deref()
        .ok_or_else(|| Error::InvalidArgument("restore needs an images directory (-D DIR)".into()))?;
    let log = Log::open(opts.log_file.as_deref(), Level::from_int(opts.log_level)).map_err(|source| {
        SysError::Path { call: "open log", path: opts.log_file.clone().unwrap_or_default(), source }
    })?;
    let dir = ImageDir::open(dir_path)?;
    let mut ctx = RestoreCtx {
        opts,
        log,
        dir,
        stats: pb::RestoreStats::default(),
        progress: crate::progress::Progress::new("restore"),
        default_affinity: None,
        last_cap: std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(40),
    };
    let started = Instant::now();

    if !ctx.dir.exists(ImageKind::Inventory, None) {
        return Err(RestoreError::NoCheckpoint { dir: dir_path.into() }.into());
    }
    let inv: pb::Inventory = ctx.dir.read(ImageKind::Inventory, None)?;
    let root = inv.root_pid;
    if inv.tasks.first().map(|t| t.pid) != Some(root) {
        return Err(crate::image::ImageError::Corrupt {
            path: ctx.dir.file("inventory.img"),
            detail: "the first task is not the root".into(),
        }
        .into());
    }
    let mut images = HashMap::new();
    for t in inv.tasks.iter().filter(|t| !t.zombie) {
        let img = read_task(&ctx.dir, t.pid)?;
        images.insert(t.pid, img);
    }
    check_cpu(root, &inv)?;
    let files: pb::Files = ctx.dir.read(ImageKind::Files, None)?;
    // An fd handed over must stand for an external file the checkpoint let go.
    for i in &opts.inherit_fds {
        let wanted = files.files.iter().any(|f| f.kind == pb::FdKind::FdExternal as i32 && f.external_key == i.key);
        if !wanted {
            return Err(Error::InvalidArgument(format!(
                "--inherit-fd fd[{}]:{}: the checkpoint has no external file with that key",
                i.fd, i.key
            )));
        }
    }
    info!(ctx.log, "restoring {} tasks (root {root}) from {}", inv.tasks.len(), dir_path.display());

    let waited = Instant::now();
    // In a new PID namespace every pid is free; otherwise wait for the old tasks.
    for t in inv.tasks.iter().filter(|_| !inv.pid_ns) {
        wait_pid_free(t.pid)?;
    }
    ctx.stats.pid_wait_us = waited.elapsed().as_micros() as u64;

    let cgroups = if ctx.dir.exists(ImageKind::Cgroup, None) && opts.manage_cgroups != ManageCgroups::Ignore {
        Some(crate::cgroup::api::restore_plan(opts)?)
    } else {
        None
    };

    // SysV segments exist before any task attaches them; removed again on failure.
    let mut sysv = SysvGuard { created: Vec::new(), done: false };
    for seg in &files.sysv_shm {
        let info = crate::sys::sysv_shm::SegmentInfo {
            key: seg.key,
            id: seg.id,
            mode: seg.mode,
            size: seg.size,
            uid: seg.uid,
            gid: seg.gid,
            nattch: 0,
        };
        if crate::sys::sysv_shm::restore(&info, &ctx.dir.file(&crate::image::sysv_shm_file_name(seg.id)))? {
            sysv.created.push(seg.id);
        }
    }
    // Children inherit the pin: every ptrace stop stays on this CPU.
    let pin = crate::sys::process::CpuPin::new();
    ctx.default_affinity = pin.original().map(|m| m.to_vec());
    let forked = Instant::now();
    let max_fd = images.values().flat_map(|i| i.fds.fds.iter().map(|f| f.fd)).max().unwrap_or(2);
    let base = (max_fd + 1).max(64);
    let inherited = shared::prepare(&ctx.dir, &files, base)?;
    // Declared before `created`, so they drop after it: on failure every task is
    // killed first and only then are the (dead) tracees let go.
    let mut leaders: Vec<(i32, Tracee)> = Vec::new();
    let mut threads: Vec<Tracee> = Vec::new();
    let tree = fork::spawn(&inv.tasks, &images, &files, &inherited, base, child_of_caller, inv.pid_ns)?;
    let outer = |p: i32| tree.outer.get(&p).copied().unwrap_or(p);
    let mut created = Created { pids: inv.tasks.iter().map(|t| outer(t.pid)).collect(), released: false };
    drop(inherited);
    ctx.stats.fork_us = forked.elapsed().as_micros() as u64;
    debug!(ctx.log, "{} tasks forked in {} us", tree.spawned.len(), ctx.stats.fork_us);

    if let Some(plan) = &cgroups {
        for t in inv.tasks.iter().filter(|t| !t.zombie) {
            plan.place_task(outer(t.pid), t.pid)?;
        }
    }
    for t in inv.tasks.iter().filter(|t| !t.zombie) {
        leaders.push((t.pid, Tracee::seize(outer(t.pid), true)?));
    }
    debug!(ctx.log, "{} tasks seized", leaders.len());
    let mem_started = Instant::now();
    for (pid, leader) in &leaders {
        let e = inv.tasks.iter().find(|t| t.pid == *pid).expect("a task of the inventory");
        threads.extend(task::rebuild(&mut ctx, leader, &images[pid], e, &tree.spawned[pid])?);
        ctx.progress.add_task();
    }
    ctx.stats.memrestore_us = mem_started.elapsed().as_micros() as u64;
    // Release: threads first, then the leaders, all at once at the end.
    for t in threads.drain(..) {
        t.detach()?;
    }
    for (pid, leader) in leaders.drain(..) {
        let stop = images[&pid].core.stop_signal;
        if stop != 0 {
            leader.detach_stopped(stop)?;
        } else {
            leader.detach()?;
        }
    }
    created.released = true;
    sysv.done = true;
    // A segment removed while attached goes again once its last user detaches.
    for seg in files.sysv_shm.iter().filter(|s| s.removed) {
        crate::sys::sysv_shm::remove(seg.id);
    }
    if let Some(mut plan) = cgroups {
        plan.apply_freeze_states()?;
        plan.commit();
    }
    ctx.stats.total_us = started.elapsed().as_micros() as u64;
    ctx.stats.tasks = inv.tasks.len() as u32;
    info!(ctx.log, "{} tasks restored in {} us", inv.tasks.len(), ctx.stats.total_us);
    save_stats(&ctx);
    let root = outer(root);
    if let Some(p) = &opts.pidfile {
        std::fs::write(p, format!("{root}\n")).map_err(SysError::path("write pidfile", p))?;
    }
    Ok(root)
}

fn save_stats(ctx: &RestoreCtx<'_>) {
    let mut stats: pb::Stats = ctx.dir.read(ImageKind::Stats, None).unwrap_or_default();
    stats.restore = Some(ctx.stats);
    // Best effort: a read-only images directory must not fail a finished restore.
    let _ = ctx.dir.write(ImageKind::Stats, None, &stats);
}

fn read_task(dir: &ImageDir, pid: i32) -> Result<TaskImages> {
    let core: pb::TaskCore = dir.read(ImageKind::Core, Some(pid))?;
    let mm: pb::Mm = dir.read(ImageKind::Mm, Some(pid))?;
    let fds: pb::Fds = dir.read(ImageKind::Fds, Some(pid))?;
    let pages_path = dir.file(&crate::image::pages_file_name(pid));
    let want = mm.runs.iter().map(|r| r.nr_pages).sum::<u64>() * 4096;
    let have = std::fs::metadata(&pages_path)
        .map_err(|source| crate::image::ImageError::Io { path: pages_path.clone(), source })?
        .len();
    if have < want {
        return Err(crate::image::ImageError::Truncated {
            path: pages_path,
            detail: format!("{have} bytes, the page runs need {want}"),
        }
        .into());
    }
    if core.threads.is_empty() || core.threads.iter().any(|t| t.regs.is_none()) || core.threads[0].tid != pid {
        let path = dir.file(&ImageKind::Core.file_name(Some(pid)));
        return Err(crate::image::ImageError::Corrupt { path, detail: "threads without registers".into() }.into());
    }
    // The legacy x87/SSE area and the XSAVE header alone take 576 bytes.
    if let Some(th) = core.threads.iter().find(|t| t.xstate.len() < 576) {
        return Err(RestoreError::Unsupported { pid, what: format!("an xstate of {} bytes", th.xstate.len()) }.into());
    }
    Ok(TaskImages { pid, core, mm, fds, pages_path })
}

/// The checkpoint's xstate must fit this CPU.
fn check_cpu(pid: i32, inv: &pb::Inventory) -> Result<()> {
    let here = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    if inv.xfeatures & (1 << 2) != 0 && !here.contains(" avx") {
        return Err(RestoreError::Unsupported { pid, what: "AVX state on a CPU without AVX".into() }.into());
    }
    Ok(())
}

/// Waits for a PID to come free: a dumped-and-killed task may still be a zombie
/// until its parent (often PID 1, late) reaps it. A live process is an error at once.
fn wait_pid_free(pid: i32) -> Result<()> {
    let limit = Duration::from_secs(10);
    let start = Instant::now();
    loop {
        match process::pid_state(pid) {
            PidState::Free => return Ok(()),
            PidState::Alive => return Err(RestoreError::PidTaken { pid }.into()),
            PidState::Zombie if start.elapsed() > limit => {
                return Err(RestoreError::PidBusy { pid, secs: limit.as_secs() }.into())
            }
            PidState::Zombie => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Waits for a restored child and returns its exit status as a shell would
/// (128 + signal when it was killed).
pub fn wait_restored(pid: i32) -> crate::Result<u8> {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, c)) => return Ok(c as u8),
            Ok(WaitStatus::Signaled(_, s, _)) => return Ok(128 + s as u8),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(crate::sys::SysError::Pid { call: "waitpid", pid, errno }.into()),
        }
    }
}
