//! Dump: live tasks → images directory.
//!
//! Stages, in order:
//! 1. seize: PTRACE_SEIZE + PTRACE_INTERRUPT; from here on nothing of the task runs;
//! 2. collect: /proc state, registers, signal state (remote syscalls), memory
//!    (pagemap + process_vm_readv, written to pages-PID.img), files;
//! 3. write the images;
//! 4. kill the task, or (--leave-running) let it go exactly as it was.
//!
//! Any failure before 4 drops the `Tracee`, which puts back the registers and signal
//! mask and detaches: the task runs on untouched.

mod files;
mod mm;
mod task;

use std::time::Instant;

use crate::error::{Error, Result};
use crate::image::{pb, ImageDir, ImageKind, FORMAT_VERSION};
use crate::log::{Level, Log};
use crate::opts::Opts;
use crate::sys::proc;
use crate::sys::ptrace::Tracee;
use crate::{debug, info};

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("pid {pid}: no such process")]
    NoProcess { pid: i32 },
    #[error("pid {pid}: {what} is not supported yet")]
    Unsupported { pid: i32, what: String },
    #[error("pid {pid}: fd {fd} is a {kind} ({path}), which ccr cannot dump yet")]
    UnsupportedFd {
        pid: i32,
        fd: i32,
        kind: String,
        path: String,
    },
    #[error(
        "pid {pid}: mapping {start:#x}-{end:#x} ({name}) is {what}, which ccr cannot dump yet"
    )]
    UnsupportedVma {
        pid: i32,
        start: u64,
        end: u64,
        name: String,
        what: String,
    },
    #[error("pid {pid} cannot be seized: {detail}")]
    Seize { pid: i32, detail: String },
    #[error("pid {pid}: no syscall instruction found in its vdso")]
    NoSyscallInsn { pid: i32 },
    #[error("writing {path}: {source}")]
    WritePages {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl DumpError {
    pub fn errno(&self) -> i32 {
        match self {
            DumpError::NoProcess { .. } => libc::ESRCH,
            DumpError::WritePages { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
            DumpError::NoSyscallInsn { .. } => libc::ENOEXEC,
            DumpError::Seize { .. } => libc::EPERM,
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
}

pub fn run(opts: &Opts) -> Result<()> {
    let pid = opts
        .pid
        .ok_or_else(|| Error::InvalidArgument("dump needs a pid (-t PID)".into()))?;
    let dir_path = opts
        .images_dir
        .as_deref()
        .ok_or_else(|| Error::InvalidArgument("dump needs an images directory (-D DIR)".into()))?;
    if pid <= 0 {
        return Err(Error::InvalidArgument(format!(
            "pid {pid} is not a process id"
        )));
    }
    let log =
        Log::open(opts.log_file.as_deref(), Level::from_int(opts.log_level)).map_err(|source| {
            crate::sys::SysError::Path {
                call: "open log",
                path: opts.log_file.clone().unwrap_or_default(),
                source,
            }
        })?;
    let dir = ImageDir::create(dir_path)?;
    let mut ctx = DumpCtx {
        opts,
        log,
        dir,
        stats: pb::DumpStats::default(),
    };
    let started = Instant::now();
    info!(ctx.log, "dumping pid {pid} into {}", dir_path.display());

    if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return Err(DumpError::NoProcess { pid }.into());
    }
    if pid == std::process::id() as i32 {
        return Err(Error::InvalidArgument(format!("pid {pid} is ccr itself")));
    }
    let tracee = Tracee::seize(pid, false).map_err(|e| match e {
        crate::sys::SysError::Pid {
            errno: nix::errno::Errno::ESRCH,
            ..
        } => DumpError::NoProcess { pid }.into(),
        other => Error::from(other),
    })?;
    let frozen = Instant::now();
    debug!(ctx.log, "seized pid {pid} ({:?})", tracee.stop_kind());

    let collected = collect(&mut ctx, &tracee);
    let collected = match collected {
        Ok(c) => c,
        Err(e) => {
            info!(ctx.log, "dump of pid {pid} failed: {e}; leaving it running");
            drop(tracee);
            return Err(e);
        }
    };
    if let Err(e) = write_images(&ctx, &collected) {
        drop(tracee);
        return Err(e);
    }
    if opts.leave_running {
        tracee.release()?;
    } else {
        tracee.kill()?;
    }
    ctx.stats.frozen_us = frozen.elapsed().as_micros() as u64;
    ctx.stats.total_us = started.elapsed().as_micros() as u64;
    ctx.stats.tasks = 1;
    let stats = pb::Stats {
        dump: Some(ctx.stats),
        restore: None,
    };
    ctx.dir.write(ImageKind::Stats, None, &stats)?;
    info!(
        ctx.log,
        "dump of pid {pid} done in {} us (frozen {} us)", ctx.stats.total_us, ctx.stats.frozen_us
    );
    Ok(())
}

/// Everything the images of one task hold.
pub struct Collected {
    pub inventory: pb::Inventory,
    pub core: pb::TaskCore,
    pub mm: pb::Mm,
    pub fds: pb::Fds,
}

fn collect(ctx: &mut DumpCtx<'_>, t: &Tracee) -> Result<Collected> {
    let pid = t.pid();
    let stat = proc::stat(pid)?;
    if stat.num_threads != 1 {
        return Err(DumpError::Unsupported {
            pid,
            what: format!("a multi-threaded process ({} threads)", stat.num_threads),
        }
        .into());
    }
    let children = proc::children(pid, pid)?;
    if !children.is_empty() {
        return Err(DumpError::Unsupported {
            pid,
            what: format!(
                "a process with children ({children:?}); process trees are not dumped yet"
            ),
        }
        .into());
    }
    let status = proc::status(pid)?;
    if status.int("Seccomp").unwrap_or(0) != 0 {
        return Err(DumpError::Unsupported {
            pid,
            what: "a seccomp filter".into(),
        }
        .into());
    }
    let timers = std::fs::read_to_string(format!("/proc/{pid}/timers")).unwrap_or_default();
    if !timers.trim().is_empty() {
        return Err(DumpError::Unsupported {
            pid,
            what: "POSIX timers (timer_create)".into(),
        }
        .into());
    }
    // Files first: the cheapest way to find out early that we cannot dump.
    let fds = files::collect(ctx, pid)?;
    let maps = proc::smaps(pid)?;
    let vmas = mm::classify(pid, &maps)?;
    let mut core = task::collect(ctx, t, &stat, &status, &maps)?;
    if let crate::sys::ptrace::StopKind::GroupStop(sig) = t.stop_kind() {
        core.core.stop_signal = sig;
    }
    let mm = mm::collect(ctx, t, &stat, vmas, &core)?;
    let inventory = pb::Inventory {
        format_version: FORMAT_VERSION,
        root_pid: pid,
        tasks: vec![pb::TaskEntry {
            pid,
            ppid: stat.ppid,
            pgid: stat.pgid,
            sid: stat.sid,
            threads: vec![pid],
        }],
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        ccr_version: env!("CARGO_PKG_VERSION").to_string(),
        dump_time_unix_ns: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
        has_cgroups: false,
        xfeatures: core
            .core
            .threads
            .first()
            .map(|th| crate::image::convert::xstate_features(&th.xstate))
            .unwrap_or(0),
    };
    Ok(Collected {
        inventory,
        core: core.core,
        mm,
        fds,
    })
}

fn write_images(ctx: &DumpCtx<'_>, c: &Collected) -> Result<()> {
    let pid = c.inventory.root_pid;
    ctx.dir.write(ImageKind::Core, Some(pid), &c.core)?;
    ctx.dir.write(ImageKind::Mm, Some(pid), &c.mm)?;
    ctx.dir.write(ImageKind::Fds, Some(pid), &c.fds)?;
    // The inventory last: a directory without it is not a complete checkpoint.
    ctx.dir.write(ImageKind::Inventory, None, &c.inventory)?;
    Ok(())
}
