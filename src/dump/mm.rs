//! The address space: VMAs from smaps, present pages from pagemap, their contents
//! copied into pages-PID.img (page aligned, in VMA order). Shared memory objects
//! (MAP_SHARED anonymous, shared memfd mappings) are saved once per object into
//! shmem-ID.img at their offset in the object, whichever tasks map them.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;

use crate::dump::task::TaskState;
use crate::dump::{DumpCtx, DumpError};
use crate::error::Result;
use crate::image::pb::{self, VmaKind};
use crate::sys::pagemap::{PageInfo, Pagemap, PAGE_SIZE};
use crate::sys::proc::{MapEntry, Stat};
use crate::sys::{mem, proc};

/// A VMA and what to do with it.
pub struct Vma {
    pub entry: MapEntry,
    pub kind: VmaKind,
}

/// Sorts each mapping into a kind, or refuses what cannot be restored yet.
pub fn classify(pid: i32, maps: &[MapEntry]) -> Result<Vec<Vma>> {
    let mut out = Vec::new();
    for m in maps {
        let unsupported = |what: &str| DumpError::UnsupportedVma {
            pid,
            start: m.start,
            end: m.end,
            name: m.name.clone(),
            what: what.into(),
        };
        let shmem = m.shared && (m.name.starts_with("/dev/zero") || m.name.starts_with("/memfd:"));
        let kind = match m.name.as_str() {
            "[vsyscall]" => continue,
            "[vdso]" => VmaKind::VmaVdso,
            "[vvar]" | "[vvar_vclock]" => VmaKind::VmaVvar,
            _ if shmem => VmaKind::VmaAnonShared,
            n if n.starts_with("/SYSV") => VmaKind::VmaSysvShm,
            n if n.starts_with("/memfd:") => return Err(unsupported("a private memfd mapping").into()),
            n if n.ends_with(" (deleted)") => return Err(unsupported("a mapping of a deleted file").into()),
            n if n.starts_with('/') && m.inode != 0 => {
                if m.shared {
                    VmaKind::VmaFileShared
                } else {
                    VmaKind::VmaFilePrivate
                }
            }
            n if m.inode != 0 => return Err(unsupported(&format!("a mapping of {n}")).into()),
            _ if m.shared => return Err(unsupported("shared memory of unknown origin").into()),
            _ => VmaKind::VmaAnonPrivate,
        };
        out.push(Vma { entry: m.clone(), kind });
    }
    Ok(out)
}

/// Whether a page of a VMA of this kind has contents the image must carry. A page
/// mapped to the shared zero page was only ever read: restore gets it for free.
fn page_wanted(kind: VmaKind, p: PageInfo, zero_pfn: u64) -> bool {
    if zero_pfn != 0 && p.present() && p.pfn() == zero_pfn {
        return false;
    }
    match kind {
        VmaKind::VmaAnonPrivate | VmaKind::VmaAnonShared => p.present() || p.swapped(),
        // Private file pages: only the ones copied-on-write (anonymous now).
        VmaKind::VmaFilePrivate => (p.present() && !p.file_or_shared()) || p.swapped(),
        // SysV segments are saved whole, once, in sysvshm-ID.img.
        VmaKind::VmaFileShared | VmaKind::VmaVdso | VmaKind::VmaVvar | VmaKind::VmaSysvShm => false,
    }
}

fn madvise_of(m: &MapEntry) -> Vec<u32> {
    let mut v = Vec::new();
    for (flag, advice) in [
        ("dd", libc::MADV_DONTDUMP),
        ("dc", libc::MADV_DONTFORK),
        ("wf", libc::MADV_WIPEONFORK),
        ("hg", libc::MADV_HUGEPAGE),
        ("nh", libc::MADV_NOHUGEPAGE),
        ("mg", libc::MADV_MERGEABLE),
    ] {
        if m.has_flag(flag) {
            v.push(advice as u32);
        }
    }
    v
}

/// Where the pages of a run go: appended to the task's page file, or written at an
/// offset of a shared memory object's file.
enum Sink<'a> {
    Append(&'a File),
    At(&'a File, u64),
}

/// One chunk for the writer thread: where it goes and the bytes.
struct Chunk {
    file: File,
    at: Option<u64>,
    buf: Vec<u8>,
    len: usize,
    path: std::path::PathBuf,
}

/// Copies runs of pages out of a task. Reading (process_vm_readv, on this thread)
/// and writing the image (on a writer thread) overlap, through a small pool of
/// buffers: the two copies run on both cores.
struct PageCopier {
    to_writer: Option<std::sync::mpsc::SyncSender<Chunk>>,
    free: std::sync::mpsc::Receiver<Vec<u8>>,
    writer: Option<std::thread::JoinHandle<std::result::Result<(), DumpError>>>,
}

const CHUNK: usize = 4 << 20;
const BUFFERS: usize = 3;

impl PageCopier {
    fn new() -> PageCopier {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(BUFFERS);
        let (free_tx, free) = std::sync::mpsc::sync_channel::<Vec<u8>>(BUFFERS);
        for _ in 0..BUFFERS {
            let _ = free_tx.send(vec![0u8; CHUNK]);
        }
        let writer = std::thread::spawn(move || {
            let mut failed = None;
            for c in rx {
                if failed.is_none() {
                    let data = &c.buf[..c.len];
                    let w = match c.at {
                        None => (&c.file).write_all(data),
                        Some(off) => c.file.write_all_at(data, off),
                    };
                    if let Err(source) = w {
                        failed = Some(DumpError::WritePages { path: c.path.clone(), source });
                    }
                }
                let _ = free_tx.send(c.buf);
            }
            failed.map_or(Ok(()), Err)
        });
        PageCopier { to_writer: Some(tx), free, writer: Some(writer) }
    }

    fn copy_run(
        &mut self,
        pid: i32,
        vaddr: u64,
        nr: u64,
        readable: bool,
        sink: Sink<'_>,
        path: &std::path::Path,
    ) -> Result<()> {
        let mut done = 0u64;
        while done < nr {
            let mut buf = self.free.recv().map_err(|_| self.writer_gone(path))?;
            let chunk = (nr - done).min(CHUNK as u64 / PAGE_SIZE);
            let len = (chunk * PAGE_SIZE) as usize;
            let addr = vaddr + done * PAGE_SIZE;
            if readable {
                let mut local = [libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: len }];
                let remote = [libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: len }];
                if mem::readv(pid, &mut local, &remote)? != len {
                    mem::read(pid, addr, &mut buf[..len])?;
                }
            } else {
                // Not readable by the task (PROT_NONE, ...): /proc/PID/mem can.
                mem::read(pid, addr, &mut buf[..len])?;
            }
            let (file, at) = match &sink {
                Sink::Append(f) => (*f, None),
                Sink::At(f, off) => (*f, Some(*off + done * PAGE_SIZE)),
            };
            let file = file.try_clone().map_err(|source| DumpError::WritePages { path: path.into(), source })?;
            let job = Chunk { file, at, buf, len, path: path.into() };
            self.to_writer.as_ref().expect("open until finish").send(job).map_err(|_| self.writer_gone(path))?;
            done += chunk;
        }
        Ok(())
    }

    fn writer_gone(&self, path: &std::path::Path) -> DumpError {
        DumpError::WritePages { path: path.into(), source: std::io::Error::other("image writer thread ended") }
    }

    /// Waits for every chunk to be written; the first write error, if any.
    fn finish(mut self) -> Result<()> {
        drop(self.to_writer.take());
        match self.writer.take().map(|w| w.join()) {
            Some(Ok(r)) => r.map_err(Into::into),
            Some(Err(_)) => {
                Err(DumpError::WritePages { path: "pages".into(), source: std::io::Error::other("writer panicked") }
                    .into())
            }
            None => Ok(()),
        }
    }
}

impl Drop for PageCopier {
    fn drop(&mut self) {
        drop(self.to_writer.take());
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// Where the page data of a whole dump goes: the copier (one writer thread and its
/// buffers for every task) and the shared memory objects met so far.
pub struct PageStore {
    pub shmem: ShmemTable,
    copier: PageCopier,
    /// SysV segments saved so far.
    pub sysv: Vec<pb::SysvShm>,
}

impl PageStore {
    pub fn new() -> PageStore {
        PageStore { shmem: ShmemTable::default(), copier: PageCopier::new(), sysv: Vec::new() }
    }

    /// Waits until every page is written; the first write error, if any.
    pub fn finish(self) -> Result<(Vec<pb::Shmem>, Vec<pb::SysvShm>)> {
        self.copier.finish()?;
        Ok((self.shmem.objs, self.sysv))
    }

    /// Saves SysV segment `id` (once per dump).
    fn sysv_segment(&mut self, ctx: &DumpCtx<'_>, pid: i32, id: i32) -> Result<()> {
        if self.sysv.iter().any(|s| s.id == id) {
            return Ok(());
        }
        let seg = crate::sys::sysv_shm::segments()?.into_iter().find(|s| s.id == id).ok_or_else(|| {
            DumpError::Unsupported { pid, what: format!("SysV shm segment {id} that /proc/sysvipc/shm does not list") }
        })?;
        crate::sys::sysv_shm::save(id, seg.size, &ctx.dir.file(&crate::image::sysv_shm_file_name(id)))?;
        self.sysv.push(pb::SysvShm {
            id,
            key: seg.key,
            mode: seg.mode,
            size: seg.size,
            uid: seg.uid,
            gid: seg.gid,
            removed: seg.mode & crate::sys::sysv_shm::SHM_DEST != 0,
        });
        Ok(())
    }
}

/// Shared memory objects met so far, and their page files.
#[derive(Default)]
pub struct ShmemTable {
    pub objs: Vec<pb::Shmem>,
    files: HashMap<u64, (File, std::path::PathBuf)>,
}

impl ShmemTable {
    fn file(&mut self, ctx: &DumpCtx<'_>, id: u64, size: u64) -> Result<&(File, std::path::PathBuf)> {
        match self.objs.iter_mut().find(|o| o.id == id) {
            Some(o) => o.size = o.size.max(size),
            None => self.objs.push(pb::Shmem { id, size }),
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = self.files.entry(id) {
            let path = ctx.dir.file(&crate::image::shmem_file_name(id));
            let f = File::create(&path).map_err(|source| DumpError::WritePages { path: path.clone(), source })?;
            slot.insert((f, path));
        }
        Ok(&self.files[&id])
    }
}

pub fn collect(
    ctx: &mut DumpCtx<'_>,
    pid: i32,
    image_pid: i32,
    stat: &Stat,
    vmas: Vec<Vma>,
    task: &TaskState,
    store: &mut PageStore,
) -> Result<pb::Mm> {
    for v in vmas.iter().filter(|v| v.kind == VmaKind::VmaSysvShm) {
        store.sysv_segment(ctx, pid, v.entry.inode as i32)?;
    }
    let PageStore { shmem: shm, copier, .. } = store;
    let started = std::time::Instant::now();
    let pagemap = Pagemap::open(pid)?;
    let zero = crate::sys::pagemap::zero_pfn();
    let path = ctx.dir.file(&crate::image::pages_file_name(image_pid));
    let out = File::create(&path).map_err(|source| DumpError::WritePages { path: path.clone(), source })?;
    let mut runs = Vec::new();
    let mut image_vmas = Vec::new();
    let mut info = Vec::new();
    let (mut scanned, mut pages) = (0u64, 0u64);
    for v in &vmas {
        let m = &v.entry;
        let mut prot = 0;
        if m.read {
            prot |= libc::PROT_READ;
        }
        if m.write {
            prot |= libc::PROT_WRITE;
        }
        if m.exec {
            prot |= libc::PROT_EXEC;
        }
        let file_backed = matches!(v.kind, VmaKind::VmaFilePrivate | VmaKind::VmaFileShared);
        image_vmas.push(pb::Vma {
            start: m.start,
            end: m.end,
            pgoff: m.offset,
            prot: prot as u32,
            kind: v.kind as i32,
            path: if file_backed { m.name.clone() } else { String::new() },
            dev: libc::makedev(m.dev_major, m.dev_minor),
            ino: m.inode,
            name: m.name.clone(),
            growsdown: m.has_flag("gd"),
            madvise: madvise_of(m),
            locked: m.has_flag("lo"),
            file_writable: m.shared && m.has_flag("mw"),
            shmem_id: if matches!(v.kind, VmaKind::VmaAnonShared | VmaKind::VmaSysvShm) { m.inode } else { 0 },
        });
        if matches!(v.kind, VmaKind::VmaFileShared | VmaKind::VmaVdso | VmaKind::VmaVvar | VmaKind::VmaSysvShm) {
            continue;
        }
        let shmem = (v.kind == VmaKind::VmaAnonShared).then_some(m.inode);
        if let Some(id) = shmem {
            shm.file(ctx, id, m.offset + (m.end - m.start))?;
        }
        // Pagemap in slices, so a huge VMA does not need a huge buffer.
        let mut at = m.start;
        while at < m.end {
            let end = m.end.min(at + (1 << 30));
            pagemap.read(at, end, &mut info)?;
            scanned += info.len() as u64;
            let mut i = 0;
            while i < info.len() {
                if !page_wanted(v.kind, info[i], zero) {
                    i += 1;
                    continue;
                }
                let first = i;
                while i < info.len() && page_wanted(v.kind, info[i], zero) {
                    i += 1;
                }
                let vaddr = at + first as u64 * PAGE_SIZE;
                let nr = (i - first) as u64;
                match shmem {
                    Some(id) => {
                        let (f, p) = shm.file(ctx, id, 0)?;
                        copier.copy_run(pid, vaddr, nr, m.read, Sink::At(f, m.offset + (vaddr - m.start)), p)?;
                    }
                    None => {
                        copier.copy_run(pid, vaddr, nr, m.read, Sink::Append(&out), &path)?;
                        runs.push(pb::PageRun { vaddr, nr_pages: nr });
                    }
                }
                pages += nr;
                ctx.progress.add_bytes(nr * PAGE_SIZE);
            }
            at = end;
        }
    }
    ctx.stats.pages_written += pages;
    ctx.stats.pages_scanned += scanned;
    ctx.stats.memdump_us += started.elapsed().as_micros() as u64;
    crate::debug!(ctx.log, "pid {pid}: {} vmas, {} page runs, {pages} pages", image_vmas.len(), runs.len());
    Ok(pb::Mm {
        fields: Some(pb::MmFields {
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
        }),
        vmas: image_vmas,
        pages: runs.iter().map(|r| r.nr_pages).sum(),
        runs,
        auxv: proc::read_bytes(&format!("/proc/{pid}/auxv"))?,
        exe: proc::readlink(&format!("/proc/{pid}/exe"))?,
    })
}
