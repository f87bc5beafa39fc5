//! Restore: images directory → live tasks.
//!
//! Stages, in order (each comment says why it comes where it does):
//! 1. read and check every image before touching anything;
//! 2. wait until the saved PID is free (PID 1 reaps orphans late);
//! 3. clone3 with set_tid: the child (a copy of ccr) reopens the task's files at their
//!    numbers, its cwd and umask, maps the trampoline, reports, and blocks in read();
//! 4. cgroups: the child is placed in its saved cgroups before any restored code runs;
//! 5. seize it; from now on it only moves through remote syscalls;
//! 6. address space: drop ccr's mappings (rseq first, or the kernel faults writing
//!    the old rseq area), vdso back at its address, every VMA, its pages, final
//!    protections, mm fields;
//! 7. signals, timers, rseq, names, pending signals; ccr's own fds closed;
//! 8. limits, then credentials last (they may take away what the steps above need);
//! 9. trampoline unmapped, registers and xstate and signal mask set, detach.
//!
//! A failure anywhere kills the child: nothing half-restored is left behind.

mod child;
mod mm;
mod task;

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::image::{pb, ImageDir, ImageKind};
use crate::log::{Level, Log};
use crate::opts::Opts;
use crate::sys::process::{self, PidState};
use crate::sys::ptrace::Tracee;
use crate::sys::{trampoline, SysError};
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
    #[error("pid {pid}: {what}")]
    Unsupported { pid: i32, what: String },
    #[error("pid {pid}: vdso came back at {got:#x}, expected {want:#x}")]
    VdsoMoved { pid: i32, got: u64, want: u64 },
    #[error("pid {pid}: page data short: {got} of {want} bytes at {addr:#x}")]
    ShortPages {
        pid: i32,
        addr: u64,
        got: u64,
        want: u64,
    },
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

/// The images of one task, read and checked.
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
}

/// Restores; with `child_of_caller` the root task becomes a child of our parent
/// (CLONE_PARENT), as the C ABI promises.
pub fn run(opts: &Opts, child_of_caller: bool) -> Result<i32> {
    let dir_path = opts.images_dir.as_deref().ok_or_else(|| {
        Error::InvalidArgument("restore needs an images directory (-D DIR)".into())
    })?;
    let log =
        Log::open(opts.log_file.as_deref(), Level::from_int(opts.log_level)).map_err(|source| {
            SysError::Path {
                call: "open log",
                path: opts.log_file.clone().unwrap_or_default(),
                source,
            }
        })?;
    let dir = ImageDir::open(dir_path)?;
    let mut ctx = RestoreCtx {
        opts,
        log,
        dir,
        stats: pb::RestoreStats::default(),
    };
    let started = Instant::now();

    if !ctx.dir.exists(ImageKind::Inventory, None) {
        return Err(RestoreError::NoCheckpoint {
            dir: dir_path.into(),
        }
        .into());
    }
    let inv: pb::Inventory = ctx.dir.read(ImageKind::Inventory, None)?;
    let pid = inv.root_pid;
    if inv.tasks.len() != 1 {
        return Err(RestoreError::Unsupported {
            pid,
            what: format!("a tree of {} tasks", inv.tasks.len()),
        }
        .into());
    }
    let img = read_task(&ctx.dir, pid)?;
    check_cpu(pid, &inv, &img)?;
    info!(ctx.log, "restoring pid {pid} from {}", dir_path.display());

    let waited = Instant::now();
    wait_pid_free(pid)?;
    ctx.stats.pid_wait_us = waited.elapsed().as_micros() as u64;
    let forked = Instant::now();
    let spawned = child::spawn(&mut ctx, &img, child_of_caller)?;
    ctx.stats.fork_us = forked.elapsed().as_micros() as u64;
    debug!(
        ctx.log,
        "pid {pid}: child up, trampoline at {:#x}", spawned.trampoline
    );

    // From here a failure must kill the child.
    let tracee = match Tracee::seize(pid, true) {
        Ok(t) => t,
        Err(e) => {
            let _ = process::kill(pid, libc::SIGKILL);
            return Err(e.into());
        }
    };
    match rebuild(&mut ctx, &tracee, &img, &spawned) {
        Ok(()) if img.core.stop_signal != 0 => tracee.detach_stopped(img.core.stop_signal)?,
        Ok(()) => tracee.detach()?,
        Err(e) => {
            info!(ctx.log, "restore of pid {pid} failed: {e}; killing it");
            let _ = tracee.kill();
            return Err(e);
        }
    }
    ctx.stats.total_us = started.elapsed().as_micros() as u64;
    ctx.stats.tasks = 1;
    info!(ctx.log, "pid {pid} restored in {} us", ctx.stats.total_us);
    save_stats(&ctx);
    if let Some(p) = &opts.pidfile {
        std::fs::write(p, format!("{pid}\n")).map_err(SysError::path("write pidfile", p))?;
    }
    Ok(pid)
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
        .map_err(|source| crate::image::ImageError::Io {
            path: pages_path.clone(),
            source,
        })?
        .len();
    if have < want {
        return Err(crate::image::ImageError::Truncated {
            path: pages_path,
            detail: format!("{have} bytes, the page runs need {want}"),
        }
        .into());
    }
    if core.threads.len() != 1 || core.threads[0].regs.is_none() {
        return Err(crate::image::ImageError::Corrupt {
            path: dir.file(&ImageKind::Core.file_name(Some(pid))),
            detail: "no thread registers".into(),
        }
        .into());
    }
    Ok(TaskImages {
        pid,
        core,
        mm,
        fds,
        pages_path,
    })
}

/// The xstate must fit this CPU: same features, same size.
fn check_cpu(pid: i32, inv: &pb::Inventory, img: &TaskImages) -> Result<()> {
    let here = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let xs = &img.core.threads[0].xstate;
    if xs.len() < 576 {
        return Err(RestoreError::Unsupported {
            pid,
            what: format!("xstate of {} bytes", xs.len()),
        }
        .into());
    }
    if inv.xfeatures & (1 << 2) != 0 && !here.contains(" avx") {
        return Err(RestoreError::Unsupported {
            pid,
            what: "AVX state from a CPU with AVX; this one has none".into(),
        }
        .into());
    }
    Ok(())
}

/// Waits for the PID to come free: a dumped-and-killed task may still be a zombie
/// until its parent (often PID 1, late) reaps it. A live process is an error at once.
fn wait_pid_free(pid: i32) -> Result<()> {
    let limit = Duration::from_secs(10);
    let start = Instant::now();
    loop {
        match process::pid_state(pid) {
            PidState::Free => return Ok(()),
            PidState::Alive => return Err(RestoreError::PidTaken { pid }.into()),
            PidState::Zombie if start.elapsed() > limit => {
                return Err(RestoreError::PidBusy {
                    pid,
                    secs: limit.as_secs(),
                }
                .into())
            }
            PidState::Zombie => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn rebuild(
    ctx: &mut RestoreCtx<'_>,
    t: &Tracee,
    img: &TaskImages,
    sp: &child::Spawned,
) -> Result<()> {
    let mut r = crate::sys::remote::Remote::start(t, sp.trampoline)?;
    r.set_scratch(Some(crate::sys::remote::Scratch {
        addr: sp.trampoline + trampoline::SCRATCH_OFFSET,
        len: (trampoline::TRAMPOLINE_SIZE - trampoline::SCRATCH_OFFSET) as usize,
    }));
    let mem_started = Instant::now();
    mm::rebuild(ctx, &mut r, img, sp)?;
    ctx.stats.memrestore_us = mem_started.elapsed().as_micros() as u64;
    task::restore(ctx, &mut r, img, sp)?;
    // Last remote call: the trampoline itself goes. The task stops at syscall exit
    // and never executes from the unmapped page again.
    r.syscall(
        "munmap(trampoline)",
        libc::SYS_munmap,
        [sp.trampoline, trampoline::TRAMPOLINE_SIZE, 0, 0, 0, 0],
    )?;
    let th = &img.core.threads[0];
    let regs = crate::image::convert::regs_from_pb(th.regs.as_ref().expect("checked in read_task"));
    t.set_xstate(&th.xstate)?;
    r.finish(Some(&regs), Some(th.blocked), false)?;
    Ok(())
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
            Err(errno) => {
                return Err(crate::sys::SysError::Pid {
                    call: "waitpid",
                    pid,
                    errno,
                }
                .into())
            }
        }
    }
}
