use super::{At, ImageError};
use crate::image::pb::{self, VmaKind as PbKind};
use crate::mm::{Mm, PageRun, Prot, RunFlags, Vma, VmaKind};

fn kind_to_pb(v: &Vma) -> (PbKind, String, bool, u64) {
    match &v.kind {
        VmaKind::AnonPrivate => (PbKind::AnonPrivate, String::new(), false, 0),
        VmaKind::FilePrivate { path } => (PbKind::FilePrivate, path.clone(), false, 0),
        VmaKind::FileShared { path, writable } => (PbKind::FileShared, path.clone(), *writable, 0),
        VmaKind::Shmem { id } => (PbKind::Shmem, String::new(), false, *id),
        VmaKind::Vdso => (PbKind::Vdso, String::new(), false, 0),
        VmaKind::Vvar => (PbKind::Vvar, String::new(), false, 0),
        VmaKind::SysvShm { id } => (PbKind::SysvShm, String::new(), false, *id as u64),
    }
}

pub fn mm_to_pb(m: &Mm, pid: i32) -> pb::Mm {
    let vmas = m
        .vmas
        .iter()
        .map(|v| {
            let (kind, path, file_writable, shmem_id) = kind_to_pb(v);
            pb::Vma {
                start: v.start,
                end: v.end,
                pgoff: v.pgoff,
                prot: v.prot.bits(),
                kind: kind as i32,
                path,
                dev: v.dev,
                ino: v.ino,
                name: v.name.clone(),
                growsdown: v.growsdown,
                madvise: v.madvise.iter().map(|&a| a as u32).collect(),
                locked: v.locked,
                file_writable,
                shmem_id,
                stamp: v.stamp,
            }
        })
        .collect();
    pb::Mm {
        fields: Some(m.fields),
        vmas,
        runs: m
            .runs
            .iter()
            .map(|r| pb::PageRun { vaddr: r.vaddr, nr_pages: r.nr_pages, flags: r.flags.bits() })
            .collect(),
        auxv: m.auxv.clone(),
        exe: m.exe.clone(),
        pid,
        exe_stamp: m.exe_stamp,
    }
}

fn vma_from_pb(at: &At<'_>, i: usize, v: pb::Vma) -> Result<Vma, ImageError> {
    let field = |f: &str| format!("vmas[{i}] ({:#x}).{f}", v.start);
    if v.end <= v.start || !v.start.is_multiple_of(4096) || !v.end.is_multiple_of(4096) {
        return Err(at.invalid(field("end"), format!("{:#x}-{:#x} is not a page-aligned range", v.start, v.end)));
    }
    let prot =
        Prot::from_bits(v.prot).ok_or_else(|| at.invalid(field("prot"), format!("unknown bits {:#x}", v.prot)))?;
    let kind = match at.known::<PbKind>(field("kind"), v.kind)? {
        PbKind::Unspecified => return Err(at.invalid(field("kind"), "not set")),
        PbKind::AnonPrivate => VmaKind::AnonPrivate,
        PbKind::FilePrivate => VmaKind::FilePrivate { path: v.path.clone() },
        PbKind::FileShared => VmaKind::FileShared { path: v.path.clone(), writable: v.file_writable },
        PbKind::Shmem => VmaKind::Shmem { id: v.shmem_id },
        PbKind::Vdso => VmaKind::Vdso,
        PbKind::Vvar => VmaKind::Vvar,
        PbKind::SysvShm => VmaKind::SysvShm { id: v.shmem_id as i32 },
    };
    if matches!(kind, VmaKind::FilePrivate { .. } | VmaKind::FileShared { .. }) && !v.path.starts_with('/') {
        return Err(at.invalid(field("path"), format!("{:?} is not a file", v.path)));
    }
    Ok(Vma {
        start: v.start,
        end: v.end,
        pgoff: v.pgoff,
        prot,
        kind,
        dev: v.dev,
        ino: v.ino,
        name: v.name,
        growsdown: v.growsdown,
        madvise: v.madvise.iter().map(|&a| a as i32).collect(),
        locked: v.locked,
        stamp: v.stamp,
    })
}

/// Reads an address space, checking that every run lies inside one VMA that keeps
/// its pages in the task's image, in address order.
pub fn mm_from_pb(at: &At<'_>, p: pb::Mm) -> Result<Mm, ImageError> {
    let vmas = p.vmas.into_iter().enumerate().map(|(i, v)| vma_from_pb(at, i, v)).collect::<Result<Vec<_>, _>>()?;
    if let Some(i) = vmas.windows(2).position(|w| w[1].start < w[0].end) {
        return Err(at.invalid(format!("vmas[{}]", i + 1), "overlaps the one before it, or is out of order"));
    }
    let mut runs = Vec::with_capacity(p.runs.len());
    let mut vi = 0;
    for (i, r) in p.runs.iter().enumerate() {
        let field = format!("runs[{i}] ({:#x})", r.vaddr);
        let flags = RunFlags::from_bits(r.flags)
            .ok_or_else(|| at.invalid(format!("{field}.flags"), format!("unknown bits {:#x}", r.flags)))?;
        if flags.contains(RunFlags::PRESENT) == flags.contains(RunFlags::IN_PARENT) {
            return Err(at.invalid(format!("{field}.flags"), "exactly one of PRESENT and IN_PARENT must be set"));
        }
        let run = PageRun { vaddr: r.vaddr, nr_pages: r.nr_pages, flags };
        while vi < vmas.len() && vmas[vi].end <= run.vaddr {
            vi += 1;
        }
        match vmas.get(vi) {
            Some(v) if v.start <= run.vaddr && run.end() <= v.end && r.nr_pages > 0 && v.kind.pages_in_task_image() => {
            }
            _ => return Err(at.invalid(field, "lies outside every VMA that keeps pages here (or runs are unsorted)")),
        }
        runs.push(run);
    }
    Ok(Mm { fields: p.fields.unwrap_or_default(), vmas, runs, auxv: p.auxv, exe: p.exe, exe_stamp: p.exe_stamp })
}
