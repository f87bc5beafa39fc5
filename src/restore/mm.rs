//! Stage Memory: each address space rebuilt through remote syscalls from the
//! trampoline.
//!
//! Ordering requirements:
//! - rseq is unregistered before ccr's mappings go: the kernel writes the rseq area
//!   on every return to user space and would fault on an unmapped one;
//! - the vdso is mapped before the VMAs (ARCH_MAP_VDSO_64 refuses while any vdso
//!   exists, and puts vvar and vdso at a fixed distance from the given address);
//! - VMAs that receive pages are mapped writable, filled from the page source,
//!   then given their final protection;
//! - PR_SET_MM_MAP comes after the mappings: the kernel checks its addresses;
//! - every mapped file (and the executable) is checked to be the one dumped as
//!   it is opened, before anything is mapped from it;
//! - a memfd's write seals come before the mappings (made with the memfd in
//!   SharedObjects), its future-write seal and F_SEAL_SEAL after them.

use std::collections::HashMap;
use std::time::Instant;

use super::fork::Spawned;
use super::images::TaskImage;
use super::shared::Shared;
use super::{RestoreError, Run};
use crate::error::Result;
use crate::files::stamp::{self, FileStamp, May};
use crate::image::pages::{PageSource, TaskFileSource};
use crate::mm::{Prot, Vma, VmaKind};
use crate::sys::kernel;
use crate::sys::remote::Remote;
use crate::sys::{proc, trampoline};

const TASK_SIZE: u64 = 0x7fff_ffff_f000;
/// Runs at least this long are populated before they are filled.
const POPULATE_MIN_PAGES: u64 = 64;

pub fn rebuild_all(run: &mut Run<'_>) -> Result<()> {
    let started = Instant::now();
    let ckpt = run.ckpt.as_ref().expect("read");
    let tree = run.tree.as_ref().expect("forked");
    for t in &mut run.tasks {
        let img = ckpt.task(t.pid);
        let sp = &tree.spawned[&t.pid];
        let bytes = rebuild(t.leader_session(), img, sp, run.shared.as_ref().expect("made"))?;
        run.stats.pages_restored += bytes / 4096;
        run.progress.add_bytes(bytes);
        run.progress.add_task();
        crate::debug!(run.log, "pid {}: address space rebuilt", t.pid);
    }
    if let Some(shared) = &run.shared {
        for s in &ckpt.files.shmems {
            if let Some(mfd) = shared.shmem_fds.get(&s.id) {
                crate::mm::shmem::seal_late(mfd, s)?;
            }
        }
    }
    run.stats.memrestore_us = started.elapsed().as_micros() as u64;
    Ok(())
}

/// Rebuilds one address space; the bytes of page data put in.
fn rebuild(r: &mut Remote, img: &TaskImage, sp: &Spawned, shared: &Shared) -> Result<u64> {
    let pid = img.pid;
    if let Some(c) = r.tracee().rseq()? {
        r.rseq_unregister(c.rseq_abi_pointer, c.rseq_abi_size, c.signature)?;
    }
    let (t0, t1) = (sp.trampoline, sp.trampoline + trampoline::TRAMPOLINE_SIZE);
    r.munmap(0, t0)?;
    r.munmap(t1, TASK_SIZE - t1)?;
    map_vdso(r, img)?;

    // Which VMAs receive pages (runs were checked to lie in one VMA each).
    let mut fill = vec![false; img.mm.vmas.len()];
    let mut vi = 0;
    for run in &img.mm.runs {
        while img.mm.vmas[vi].end <= run.vaddr {
            vi += 1;
        }
        fill[vi] = true;
    }

    let mut files: HashMap<(String, bool), (i32, FileStamp)> = HashMap::new();
    for (i, v) in img.mm.vmas.iter().enumerate() {
        map_vma(r, pid, v, fill[i], shared, &mut files)?;
    }
    for (fd, _) in files.into_values() {
        r.close(fd)?;
    }

    // Fault the large runs in with one call each: allocating pages in bulk is much
    // cheaper than one fault per page inside the copy that follows.
    for run in img.mm.runs.iter().filter(|r| r.nr_pages >= POPULATE_MIN_PAGES) {
        r.populate_write(run.vaddr, run.bytes())?;
    }
    let mut source = TaskFileSource { task_fd: sp.pages_fd };
    let bytes = source.fill(r, &img.mm.runs).map_err(|source| RestoreError::Pages { pid, source })?;

    for (i, v) in img.mm.vmas.iter().enumerate() {
        if fill[i] && !v.prot.contains(Prot::WRITE) {
            r.mprotect(v.start, v.len(), v.prot.bits() as i32)?;
        }
        for &adv in &v.madvise {
            r.madvise(v.start, v.len(), adv)?;
        }
        if v.locked {
            r.mlock(v.start, v.len())?;
        }
    }
    set_mm_map(r, img)?;
    Ok(bytes)
}

fn map_vma(
    r: &mut Remote,
    pid: i32,
    v: &Vma,
    fill: bool,
    shared: &Shared,
    files: &mut HashMap<(String, bool), (i32, FileStamp)>,
) -> Result<()> {
    let mut prot = v.prot;
    if fill {
        prot |= Prot::WRITE;
    }
    let mut flags = libc::MAP_FIXED;
    if v.growsdown {
        flags |= libc::MAP_GROWSDOWN;
    }
    let (fd, off) = match &v.kind {
        VmaKind::Vdso | VmaKind::Vvar => return Ok(()),
        VmaKind::SysvShm { id } => return attach_sysv(r, pid, v, *id),
        VmaKind::AnonPrivate => {
            flags |= libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
            (None, 0)
        }
        VmaKind::Shmem { id } => {
            flags |= libc::MAP_SHARED;
            // The fd number is the same in the task: it inherited ccr's.
            let fd = shared.map_fd(*id).ok_or_else(|| RestoreError::Unsupported {
                pid,
                what: format!("mapping {:#x} of shared memory {id} without saved contents", v.start),
            })?;
            (Some(fd), v.pgoff)
        }
        VmaKind::FilePrivate { path } | VmaKind::FileShared { path, .. } => {
            let shared = matches!(v.kind, VmaKind::FileShared { .. });
            flags |= if shared { libc::MAP_SHARED } else { libc::MAP_PRIVATE };
            let writable = matches!(v.kind, VmaKind::FileShared { writable: true, .. });
            let key = (path.clone(), writable);
            let (fd, now) = match files.get(&key) {
                Some(known) => *known,
                None => {
                    let fd = r.open(path, if writable { libc::O_RDWR } else { libc::O_RDONLY })?;
                    let now = stamp::of_metadata(&proc::fd::metadata(r.proc_pid(), fd)?);
                    files.insert(key, (fd, now));
                    (fd, now)
                }
            };
            // Each VMA against its own stamp: a path may have mapped two files
            // over the task's life.
            not_changed(pid, path, &format!("mapped at {:#x}", v.start), v.stamp.as_ref(), &now)?;
            (Some(fd), v.pgoff)
        }
    };
    let got = r.mmap(v.start, v.len(), prot.bits() as i32, flags, fd, off)?;
    if got != v.start {
        return Err(RestoreError::Child { pid, detail: format!("mmap at {:#x} landed at {got:#x}", v.start) }.into());
    }
    Ok(())
}

/// Refuses a mapped file (or the executable) that is not the one dumped: a
/// changed binary or library is never mapped (`files::stamp` has the rule).
fn not_changed(pid: i32, path: &str, at: &str, then: Option<&FileStamp>, now: &FileStamp) -> Result<()> {
    match then.and_then(|then| stamp::differs(then, now, May::Nothing)) {
        None => Ok(()),
        Some(differs) => Err(RestoreError::NotTheDumpedFile { pid, path: path.into(), at: at.into(), differs }.into()),
    }
}

/// Attaches SysV segment `id` where it was (remote shmat). Only whole attachments:
/// a segment partly unmapped since would need the rest cut away.
fn attach_sysv(r: &mut Remote, pid: i32, v: &Vma, id: i32) -> Result<()> {
    let mut flags = 0;
    if !v.prot.contains(Prot::WRITE) {
        flags |= libc::SHM_RDONLY;
    }
    if v.prot.contains(Prot::EXEC) {
        flags |= libc::SHM_EXEC;
    }
    if v.pgoff != 0 {
        return Err(RestoreError::Unsupported {
            pid,
            what: format!("a partial SysV shm attachment at {:#x}", v.start),
        }
        .into());
    }
    let got = r.shmat(id, v.start, flags)?;
    if got != v.start {
        return Err(RestoreError::Child { pid, detail: format!("shmat at {:#x} landed at {got:#x}", v.start) }.into());
    }
    Ok(())
}

/// Maps vvar+vdso so that [vdso] lands where it was.
fn map_vdso(r: &mut Remote, img: &TaskImage) -> Result<()> {
    let special: Vec<&Vma> = img.mm.vmas.iter().filter(|v| matches!(v.kind, VmaKind::Vdso | VmaKind::Vvar)).collect();
    let Some(want) = special.iter().find(|v| v.kind == VmaKind::Vdso).map(|v| v.start) else {
        return Ok(());
    };
    r.map_vdso(special.iter().map(|v| v.start).min().unwrap_or(want))?;
    let got = proc::maps::maps(r.proc_pid())?.iter().find(|m| m.name == "[vdso]").map(|m| m.start).unwrap_or(0);
    if got != want {
        return Err(RestoreError::VdsoMoved { pid: img.pid, got, want }.into());
    }
    Ok(())
}

fn set_mm_map(r: &mut Remote, img: &TaskImage) -> Result<()> {
    let f = img.mm.fields;
    let exe_fd = if img.mm.exe.is_empty() { None } else { Some(r.open(&img.mm.exe, libc::O_RDONLY)?) };
    if let Some(fd) = exe_fd {
        let now = stamp::of_metadata(&proc::fd::metadata(r.proc_pid(), fd)?);
        not_changed(img.pid, &img.mm.exe, "(the executable)", img.mm.exe_stamp.as_ref(), &now)?;
    }
    let map = kernel::prctl_mm_map {
        start_code: f.start_code,
        end_code: f.end_code,
        start_data: f.start_data,
        end_data: f.end_data,
        start_brk: f.start_brk,
        brk: f.brk,
        start_stack: f.start_stack,
        arg_start: f.arg_start,
        arg_end: f.arg_end,
        env_start: f.env_start,
        env_end: f.env_end,
        auxv: std::ptr::null_mut(),
        auxv_size: 0,
        exe_fd: exe_fd.map(|fd| fd as u32).unwrap_or(u32::MAX),
    };
    r.set_mm_map(map, &img.mm.auxv)?;
    if let Some(fd) = exe_fd {
        r.close(fd)?;
    }
    Ok(())
}
