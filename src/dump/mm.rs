//! The address space: VMAs from smaps (`mm::vma` says what each is), present
//! pages from pagemap, their contents copied through the page writer into the
//! task's page data (in VMA order). Shared memory objects are saved once per
//! object at their offsets, SysV segments once per dump.

use crate::dump::task::TaskState;
use crate::dump::{DumpCtx, DumpError};
use crate::error::Result;
use crate::files::stamp;
use crate::image::pages::{self, Dest, PageWriter, CHUNK};
use crate::image::{pb, ImageDir};
use crate::mm::shmem::ShmemTable;
use crate::mm::{sysv, Mm, PageRun, Prot, RunFlags, Vma, VmaKind};
use crate::sys::pagemap::{PageInfo, Pagemap, PAGE_SIZE};
use crate::sys::proc::{self, MapEntry, Stat};

/// Sorts each mapping into a kind, or refuses what cannot be restored yet.
pub fn classify(pid: i32, maps: &[MapEntry]) -> Result<Vec<Vma>> {
    let mut out = Vec::new();
    for m in maps {
        match crate::mm::vma::classify(m) {
            Ok(Some(v)) => out.push(v),
            Ok(None) => {}
            Err(r) => {
                return Err(DumpError::UnsupportedVma {
                    pid,
                    start: m.start,
                    end: m.end,
                    name: m.name.clone(),
                    what: r.0,
                }
                .into())
            }
        }
    }
    Ok(out)
}

/// Stamps each file mapping with the file it maps (through map_files, so the file
/// itself, whatever its path holds now), for restore to check it maps that file.
/// A file is looked at once per dump, however many VMAs and tasks map it.
fn stamp_files(pid: i32, mut vmas: Vec<Vma>, stamps: &mut stamp::Stamps) -> Result<Vec<Vma>> {
    for v in vmas.iter_mut().filter(|v| matches!(v.kind, VmaKind::FilePrivate { .. } | VmaKind::FileShared { .. })) {
        v.stamp = stamps.of_mapping(&proc::maps::mapped_file_link(pid, v.start, v.end), v.dev, v.ino)?;
    }
    Ok(vmas)
}

/// Where the page data of a whole dump goes: one writer for every task, the
/// shared memory objects and SysV segments met so far.
pub struct PageStore {
    pub writer: PageWriter,
    pub shmem: ShmemTable,
    pub sysv: Vec<pb::SysvShm>,
    /// The files met so far, stamped for restore to check.
    pub stamps: stamp::Stamps,
}

impl PageStore {
    /// `cpus`: where the writer thread may run (ccr's mask before it pinned itself).
    pub fn new(dir: &ImageDir, cpus: Option<Vec<u8>>) -> PageStore {
        let sink = Box::new(pages::DirSink::new(dir));
        PageStore {
            writer: PageWriter::new(sink, cpus),
            shmem: ShmemTable::default(),
            sysv: Vec::new(),
            stamps: stamp::Stamps::default(),
        }
    }

    /// Saves SysV segment `id` (once per dump).
    pub fn sysv_segment(&mut self, dir: &ImageDir, pid: i32, id: i32) -> Result<()> {
        if self.sysv.iter().any(|s| s.id == id) {
            return Ok(());
        }
        let seg = sysv::save(dir, id).map_err(|e| match e {
            sysv::SaveError::Unlisted => {
                DumpError::Unsupported { pid, what: format!("SysV shm segment {id} that the kernel does not list") }
                    .into()
            }
            sysv::SaveError::Sys(e) => crate::Error::from(e),
        })?;
        self.sysv.push(seg);
        Ok(())
    }
}

/// Copies `nr` pages at `vaddr` of `pid` to `dest`, chunk by chunk.
fn copy_run(w: &mut PageWriter, pid: i32, vaddr: u64, nr: u64, readable: bool, dest: Dest) -> Result<()> {
    let mut done = 0u64;
    while done < nr {
        let mut buf = w.buffer()?;
        let chunk = (nr - done).min(CHUNK as u64 / PAGE_SIZE);
        let len = (chunk * PAGE_SIZE) as usize;
        let addr = vaddr + done * PAGE_SIZE;
        pages::read_task(pid, addr, &mut buf[..len], readable)?;
        w.submit(dest.advanced(done * PAGE_SIZE), buf, len)?;
        done += chunk;
    }
    Ok(())
}

/// What one task's memory came to.
pub struct Counts {
    pub pages: u64,
    pub scanned: u64,
}

/// Collects the address space of `pid` (saved as `image_pid`).
pub fn collect(
    ctx: &mut DumpCtx<'_>,
    pid: i32,
    image_pid: i32,
    stat: &Stat,
    vmas: Vec<Vma>,
    task: &TaskState,
    store: &mut PageStore,
) -> Result<(Mm, Counts)> {
    for v in &vmas {
        if let VmaKind::SysvShm { id } = v.kind {
            store.sysv_segment(&ctx.dir, pid, id)?;
        }
    }
    let pagemap = Pagemap::open(pid)?;
    let zero = crate::sys::pagemap::zero_pfn();
    let me = Dest::Task(image_pid);
    store.writer.open(me)?;
    let mut runs = Vec::new();
    let mut info: Vec<PageInfo> = Vec::new();
    let mut counts = Counts { pages: 0, scanned: 0 };
    for v in &vmas {
        let shmem = match v.kind {
            VmaKind::Shmem { id } => {
                // The object's own size; what the mapping covers if the kernel hides it.
                let size = proc::maps::mapped_file_size(pid, v.start, v.end).unwrap_or(v.pgoff + v.len());
                if store.shmem.note(id, size) {
                    store.writer.open(Dest::Shmem { id, offset: 0 })?;
                }
                Some(id)
            }
            ref k if k.pages_in_task_image() => None,
            _ => continue,
        };
        let readable = v.prot.contains(Prot::READ);
        // Pagemap in slices, so a huge VMA does not need a huge buffer.
        let mut at = v.start;
        while at < v.end {
            let end = v.end.min(at + (1 << 30));
            pagemap.read(at, end, &mut info)?;
            counts.scanned += info.len() as u64;
            let mut i = 0;
            while i < info.len() {
                if !v.page_wanted(info[i], zero) {
                    i += 1;
                    continue;
                }
                let first = i;
                while i < info.len() && v.page_wanted(info[i], zero) {
                    i += 1;
                }
                let vaddr = at + first as u64 * PAGE_SIZE;
                let nr = (i - first) as u64;
                match shmem {
                    Some(id) => {
                        let offset = v.pgoff + (vaddr - v.start);
                        copy_run(&mut store.writer, pid, vaddr, nr, readable, Dest::Shmem { id, offset })?
                    }
                    None => {
                        copy_run(&mut store.writer, pid, vaddr, nr, readable, me)?;
                        runs.push(PageRun { vaddr, nr_pages: nr, flags: RunFlags::PRESENT });
                    }
                }
                counts.pages += nr;
                ctx.progress.add_bytes(nr * PAGE_SIZE);
            }
            at = end;
        }
    }
    crate::debug!(ctx.log, "pid {pid}: {} vmas, {} page runs, {} pages", vmas.len(), runs.len(), counts.pages);
    let fields = pb::MmFields {
        start_code: stat.start_code,
        end_code: stat.end_code,
        start_data: stat.start_data,
        end_data: stat.end_data,
        start_brk: stat.start_brk,
        brk: task.brk,
        start_stack: stat.start_stack,
        arg_start: stat.arg_start,
        arg_end: stat.arg_end,
        env_start: stat.env_start,
        env_end: stat.env_end,
    };
    let vmas = stamp_files(pid, vmas, &mut store.stamps)?;
    let exe_stamp = store.stamps.take(&proc::links::exe_link(pid), None)?;
    let mm = Mm { fields, vmas, runs, auxv: proc::auxv::read(pid)?, exe: proc::links::exe(pid)?, exe_stamp };
    Ok((mm, counts))
}
