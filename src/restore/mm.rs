//! Rebuilding the address space through remote syscalls from the trampoline.
//!
//! Ordering requirements:
//! - rseq is unregistered before ccr's mappings go: the kernel writes the rseq area
//!   on every return to user space and would fault on an unmapped one;
//! - the vdso is mapped before the VMAs (ARCH_MAP_VDSO_64 refuses while any vdso
//!   exists, and puts vvar and vdso at a fixed distance from the given address);
//! - VMAs that receive pages are mapped writable, filled with preadv from
//!   pages-PID.img, then given their final protection;
//! - PR_SET_MM_MAP comes after the mappings: the kernel checks its addresses.

use std::collections::HashMap;

use crate::error::Result;
use crate::image::pb::{self, VmaKind};
use crate::restore::fork::Spawned;
use crate::restore::{RestoreCtx, RestoreError, TaskImages};
use crate::sys::remote::Remote;
use crate::sys::{bytes_of, kernel, proc, trampoline};

const TASK_SIZE: u64 = 0x7fff_ffff_f000;
const PAGE: u64 = 4096;
const IOV_BATCH: usize = 1024;
/// Runs at least this long are populated before they are filled.
const POPULATE_MIN_PAGES: u64 = 64;

pub fn rebuild(ctx: &mut RestoreCtx<'_>, r: &mut Remote<'_>, img: &TaskImages, sp: &Spawned) -> Result<()> {
    let pid = img.pid;
    if let Some(c) = r.tracee().rseq()? {
        r.syscall(
            "rseq(unregister)",
            libc::SYS_rseq,
            [c.rseq_abi_pointer, c.rseq_abi_size as u64, 1, c.signature as u64, 0, 0],
        )?;
    }
    let (t0, t1) = (sp.trampoline, sp.trampoline + trampoline::TRAMPOLINE_SIZE);
    r.syscall("munmap(below trampoline)", libc::SYS_munmap, [0, t0, 0, 0, 0, 0])?;
    r.syscall("munmap(above trampoline)", libc::SYS_munmap, [t1, TASK_SIZE - t1, 0, 0, 0, 0])?;
    map_vdso(r, img)?;

    // Which VMAs receive pages.
    let mut fill = vec![false; img.mm.vmas.len()];
    let mut vi = 0;
    for run in &img.mm.runs {
        while vi < img.mm.vmas.len() && img.mm.vmas[vi].end <= run.vaddr {
            vi += 1;
        }
        match img.mm.vmas.get(vi) {
            Some(v) if v.start <= run.vaddr && run.vaddr + run.nr_pages * PAGE <= v.end => fill[vi] = true,
            _ => {
                return Err(crate::image::ImageError::Corrupt {
                    path: ctx.dir.file(&crate::image::ImageKind::Mm.file_name(Some(pid))),
                    detail: format!("page run at {:#x} lies outside every VMA (or runs are unsorted)", run.vaddr),
                }
                .into())
            }
        }
    }

    let mut files: HashMap<(String, bool), u64> = HashMap::new();
    for (i, v) in img.mm.vmas.iter().enumerate() {
        let kind = VmaKind::try_from(v.kind).unwrap_or(VmaKind::VmaAnonPrivate);
        if matches!(kind, VmaKind::VmaVdso | VmaKind::VmaVvar) {
            continue;
        }
        if kind == VmaKind::VmaSysvShm {
            attach_sysv(r, pid, v)?;
            continue;
        }
        let prot = v.prot as u64 | if fill[i] { libc::PROT_WRITE as u64 } else { 0 };
        let len = v.end - v.start;
        let mut flags = libc::MAP_FIXED as u64;
        if v.growsdown {
            flags |= libc::MAP_GROWSDOWN as u64;
        }
        let (fd, off) = match kind {
            VmaKind::VmaAnonPrivate => {
                flags |= (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
                (u64::MAX, 0)
            }
            VmaKind::VmaAnonShared => {
                flags |= libc::MAP_SHARED as u64;
                let fd = sp.shmem_fds.get(&v.shmem_id).copied().ok_or_else(|| RestoreError::Unsupported {
                    pid,
                    what: format!("mapping {:#x} of shared memory {} without saved contents", v.start, v.shmem_id),
                })?;
                (fd as u64, v.pgoff)
            }
            VmaKind::VmaFilePrivate | VmaKind::VmaFileShared => {
                let shared = kind == VmaKind::VmaFileShared;
                flags |= if shared { libc::MAP_SHARED } else { libc::MAP_PRIVATE } as u64;
                let writable = shared && v.file_writable;
                let key = (v.path.clone(), writable);
                let fd = match files.get(&key) {
                    Some(fd) => *fd,
                    None => {
                        let fd = remote_open(r, &v.path, if writable { libc::O_RDWR } else { libc::O_RDONLY })?;
                        files.insert(key, fd);
                        fd
                    }
                };
                (fd, v.pgoff)
            }
            VmaKind::VmaVdso | VmaKind::VmaVvar | VmaKind::VmaSysvShm => unreachable!(),
        };
        let got = r.syscall("mmap", libc::SYS_mmap, [v.start, len, prot, flags, fd, off])?;
        if got != v.start {
            return Err(
                RestoreError::Child { pid, detail: format!("mmap at {:#x} landed at {got:#x}", v.start) }.into()
            );
        }
    }
    for fd in files.into_values() {
        r.syscall("close", libc::SYS_close, [fd, 0, 0, 0, 0, 0])?;
    }

    // Fault the large runs in with one call each: allocating pages in bulk is much
    // cheaper than one fault per page inside the copy that follows.
    for run in img.mm.runs.iter().filter(|r| r.nr_pages >= POPULATE_MIN_PAGES) {
        r.syscall("madvise(MADV_POPULATE_WRITE)", libc::SYS_madvise, [run.vaddr, run.nr_pages * PAGE, 23, 0, 0, 0])?;
    }
    fill_pages(ctx, r, img, sp)?;

    for (i, v) in img.mm.vmas.iter().enumerate() {
        if fill[i] && v.prot & libc::PROT_WRITE as u32 == 0 {
            r.syscall("mprotect", libc::SYS_mprotect, [v.start, v.end - v.start, v.prot as u64, 0, 0, 0])?;
        }
        for &adv in &v.madvise {
            r.syscall("madvise", libc::SYS_madvise, [v.start, v.end - v.start, adv as u64, 0, 0, 0])?;
        }
        if v.locked {
            r.syscall("mlock", libc::SYS_mlock, [v.start, v.end - v.start, 0, 0, 0, 0])?;
        }
    }
    set_mm_map(r, &img.mm)?;
    Ok(())
}

/// Attaches SysV segment `v.shmem_id` where it was (remote shmat). Only whole
/// attachments: a segment partly unmapped since would need the rest cut away.
fn attach_sysv(r: &mut Remote<'_>, pid: i32, v: &pb::Vma) -> Result<()> {
    let mut flags = 0u64;
    if v.prot & libc::PROT_WRITE as u32 == 0 {
        flags |= libc::SHM_RDONLY as u64;
    }
    if v.prot & libc::PROT_EXEC as u32 != 0 {
        flags |= libc::SHM_EXEC as u64;
    }
    if v.pgoff != 0 {
        return Err(RestoreError::Unsupported {
            pid,
            what: format!("a partial SysV shm attachment at {:#x}", v.start),
        }
        .into());
    }
    let got = r.syscall("shmat", libc::SYS_shmat, [v.shmem_id, v.start, flags, 0, 0, 0])?;
    if got != v.start {
        return Err(RestoreError::Child { pid, detail: format!("shmat at {:#x} landed at {got:#x}", v.start) }.into());
    }
    Ok(())
}

/// Opens `path` in the task; returns the fd number there.
pub fn remote_open(r: &mut Remote<'_>, path: &str, flags: i32) -> Result<u64> {
    let mut b = path.as_bytes().to_vec();
    b.push(0);
    let p = r.put(0, &b)?;
    Ok(r.syscall("openat", libc::SYS_openat, [libc::AT_FDCWD as u64, p, (flags | libc::O_CLOEXEC) as u64, 0, 0, 0])?)
}

/// Maps vvar+vdso so that [vdso] lands where it was.
fn map_vdso(r: &mut Remote<'_>, img: &TaskImages) -> Result<()> {
    let pid = img.pid;
    let special: Vec<&pb::Vma> =
        img.mm.vmas.iter().filter(|v| v.kind == VmaKind::VmaVdso as i32 || v.kind == VmaKind::VmaVvar as i32).collect();
    let Some(want) = special.iter().find(|v| v.kind == VmaKind::VmaVdso as i32).map(|v| v.start) else {
        return Ok(());
    };
    let lowest = special.iter().map(|v| v.start).min().unwrap_or(want);
    r.syscall(
        "arch_prctl(ARCH_MAP_VDSO_64)",
        libc::SYS_arch_prctl,
        [kernel::ARCH_MAP_VDSO_64 as u64, lowest, 0, 0, 0, 0],
    )?;
    let maps = proc::maps(r.pid())?;
    let got = maps.iter().find(|m| m.name == "[vdso]").map(|m| m.start).unwrap_or(0);
    if got != want {
        return Err(RestoreError::VdsoMoved { pid, got, want }.into());
    }
    Ok(())
}

/// Reads every page run from pages-PID.img into place with remote preadv calls.
///
/// One preadv moves at most MAX_RW_COUNT (2 GiB - 4 KiB) however large its iovecs
/// are, so a short read is not an error while it makes progress: the next call
/// goes on from where it stopped.
fn fill_pages(ctx: &mut RestoreCtx<'_>, r: &mut Remote<'_>, img: &TaskImages, sp: &Spawned) -> Result<()> {
    let mut file_off = 0u64;
    for batch in img.mm.runs.chunks(IOV_BATCH) {
        // What is still to read of this batch, as (address, length).
        let mut left: Vec<(u64, u64)> = batch.iter().map(|run| (run.vaddr, run.nr_pages * PAGE)).collect();
        while !left.is_empty() {
            let want: u64 = left.iter().map(|&(_, len)| len).sum();
            let mut iov = Vec::with_capacity(left.len() * 16);
            for &(addr, len) in &left {
                iov.extend_from_slice(&addr.to_le_bytes());
                iov.extend_from_slice(&len.to_le_bytes());
            }
            let p = r.put(0, &iov)?;
            let got = r.syscall(
                "preadv(pages)",
                libc::SYS_preadv,
                [sp.pages_fd as u64, p, left.len() as u64, file_off, 0, 0],
            )?;
            if got == 0 || got > want {
                return Err(RestoreError::ShortPages { pid: img.pid, addr: left[0].0, got, want }.into());
            }
            file_off += got;
            ctx.stats.pages_restored += got / PAGE;
            ctx.progress.add_bytes(got);
            consume(&mut left, got);
        }
    }
    Ok(())
}

/// Drops the first `n` bytes from a list of (address, length) segments.
fn consume(segs: &mut Vec<(u64, u64)>, mut n: u64) {
    let mut done = 0;
    for seg in segs.iter_mut() {
        if n < seg.1 {
            seg.0 += n;
            seg.1 -= n;
            break;
        }
        n -= seg.1;
        done += 1;
    }
    segs.drain(..done);
}

fn set_mm_map(r: &mut Remote<'_>, mm: &pb::Mm) -> Result<()> {
    let f = mm.fields.unwrap_or_default();
    let exe_fd = if mm.exe.is_empty() { None } else { Some(remote_open(r, &mm.exe, libc::O_RDONLY)?) };
    // Layout in scratch: auxv at 4096, the struct at 0 (after the exe path is used).
    let auxv_addr = r.put(4096, &mm.auxv)?;
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
        auxv: auxv_addr as *mut u64,
        auxv_size: mm.auxv.len() as u32,
        exe_fd: exe_fd.map(|fd| fd as u32).unwrap_or(u32::MAX),
    };
    let bytes = bytes_of(&map);
    let p = r.put(0, &bytes)?;
    r.syscall(
        "prctl(PR_SET_MM_MAP)",
        libc::SYS_prctl,
        [kernel::PR_SET_MM as u64, kernel::PR_SET_MM_MAP as u64, p, bytes.len() as u64, 0, 0],
    )?;
    if let Some(fd) = exe_fd {
        r.syscall("close", libc::SYS_close, [fd, 0, 0, 0, 0, 0])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::consume;

    #[test]
    fn consume_splits_and_drops_segments() {
        let mut s = vec![(0x1000, 0x2000), (0x10000, 0x1000), (0x20000, 0x3000)];
        consume(&mut s, 0x1000);
        assert_eq!(s, vec![(0x2000, 0x1000), (0x10000, 0x1000), (0x20000, 0x3000)]);
        consume(&mut s, 0x2000);
        assert_eq!(s, vec![(0x20000, 0x3000)]);
        consume(&mut s, 0x3000);
        assert!(s.is_empty());
    }
}
