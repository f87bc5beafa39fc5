//! Page data behind a writer (dump) and a reader (restore), so that where pages go
//! and come from is one seam: the images directory today; a page-server socket and
//! a userfaultfd handler later.
//!
//! Dump: the copier reads a task's memory into buffers from a small pool and hands
//! them to [`PageWriter`], whose thread writes them to a [`PageSink`] while the next
//! chunk is read: the two copies run on both cores.
//!
//! Restore: a [`PageSource`] puts the present runs of a task into its memory.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use super::sums::{self, Summer};
use super::{pb, ImageDir, ImageError, ImageKind};
use crate::mm::{PageRun, RunFlags};
use crate::sys::remote::Remote;
use crate::sys::SysResult;

/// Where a chunk of page data belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// Appended to task `pid`'s page data (in run order).
    Task(i32),
    /// At `offset` of shared memory object `id`.
    Shmem { id: u64, offset: u64 },
}

impl Dest {
    /// The place `n` bytes further on (page data of a task is appended in order).
    pub fn advanced(self, n: u64) -> Dest {
        match self {
            Dest::Shmem { id, offset } => Dest::Shmem { id, offset: offset + n },
            d => d,
        }
    }
}

/// Where a dump's page data goes.
pub trait PageSink: Send {
    fn write(&mut self, dest: Dest, data: &[u8]) -> Result<(), ImageError>;
    /// Everything is written (not synced); the checksums of what was written,
    /// file by file.
    fn finish(&mut self) -> Result<Vec<pb::FileSum>, ImageError>;
}

/// One file a [`DirSink`] writes, and its running checksums.
struct SinkFile {
    file: File,
    path: std::path::PathBuf,
    sums: Summer,
}

/// Page data into the images directory: `pages-PID.img`, `shmem-ID.img`.
pub struct DirSink {
    dir: ImageDir,
    files: HashMap<(ImageKind, u64), SinkFile>,
}

impl DirSink {
    pub fn new(dir: &ImageDir) -> DirSink {
        DirSink { dir: dir.clone(), files: HashMap::new() }
    }

    fn file(&mut self, kind: ImageKind, n: u64) -> Result<&mut SinkFile, ImageError> {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.files.entry((kind, n)) {
            let (file, path) = self.dir.create_raw(kind, n)?;
            slot.insert(SinkFile { file, path, sums: Summer::new(kind.file_name(Some(n))) });
        }
        Ok(self.files.get_mut(&(kind, n)).expect("just inserted"))
    }
}

impl PageSink for DirSink {
    fn write(&mut self, dest: Dest, data: &[u8]) -> Result<(), ImageError> {
        let (kind, n) = match dest {
            Dest::Task(pid) => (ImageKind::Pages, pid as u64),
            Dest::Shmem { id, .. } => (ImageKind::Shmem, id),
        };
        let f = self.file(kind, n)?;
        let (r, offset) = match dest {
            Dest::Task(_) => ((&f.file).write_all(data), f.sums.size()),
            Dest::Shmem { offset, .. } => (f.file.write_all_at(data, offset), offset),
        };
        r.map_err(|source| ImageError::Io { path: f.path.clone(), source })?;
        f.sums.wrote(offset, data);
        Ok(())
    }

    fn finish(&mut self) -> Result<Vec<pb::FileSum>, ImageError> {
        let mut out = Vec::new();
        for (_, f) in self.files.drain() {
            if f.sums.in_order() {
                out.push(f.sums.finish());
            } else {
                // Written out of order (a shared object mapped in pieces): read back.
                let name = f.sums.finish().name;
                drop(f.file);
                let back = self.dir.open_file(&name)?;
                out.push(sums::of_file(&name, &back, &f.path)?);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// One chunk for the writer thread.
struct Chunk {
    dest: Dest,
    buf: Vec<u8>,
    len: usize,
}

/// Writes page data on a thread of its own, through a pool of buffers.
pub struct PageWriter {
    to_writer: Option<SyncSender<Chunk>>,
    free: Receiver<Vec<u8>>,
    writer: Option<std::thread::JoinHandle<Result<Vec<pb::FileSum>, ImageError>>>,
}

/// Size of one buffer of the pool.
pub const CHUNK: usize = 4 << 20;
const BUFFERS: usize = 3;

impl PageWriter {
    /// `cpus`: the writer thread's CPU mask; it would otherwise inherit the pin of
    /// the thread that makes it, and share that one CPU with the copier.
    pub fn new(mut sink: Box<dyn PageSink>, cpus: Option<Vec<u8>>) -> PageWriter {
        let (tx, rx) = sync_channel::<Chunk>(BUFFERS);
        let (free_tx, free) = sync_channel::<Vec<u8>>(BUFFERS);
        for _ in 0..BUFFERS {
            let _ = free_tx.send(vec![0u8; CHUNK]);
        }
        let writer = std::thread::spawn(move || {
            if let Some(m) = cpus {
                let _ = crate::sys::process::set_affinity(0, &m);
            }
            let mut failed = None;
            for c in rx {
                if failed.is_none() {
                    if let Err(e) = sink.write(c.dest, &c.buf[..c.len]) {
                        failed = Some(e);
                    }
                }
                let _ = free_tx.send(c.buf);
            }
            match failed {
                Some(e) => Err(e),
                None => sink.finish(),
            }
        });
        PageWriter { to_writer: Some(tx), free, writer: Some(writer) }
    }

    fn gone() -> ImageError {
        ImageError::Io { path: "pages".into(), source: std::io::Error::other("the page writer thread ended") }
    }

    /// A free buffer of [`CHUNK`] bytes (waits while all are being written).
    pub fn buffer(&mut self) -> Result<Vec<u8>, ImageError> {
        self.free.recv().map_err(|_| Self::gone())
    }

    /// Queues the first `len` bytes of `buf` for `dest`; the buffer comes back to
    /// the pool once written.
    pub fn submit(&mut self, dest: Dest, buf: Vec<u8>, len: usize) -> Result<(), ImageError> {
        let tx = self.to_writer.as_ref().ok_or_else(Self::gone)?;
        tx.send(Chunk { dest, buf, len }).map_err(|_| Self::gone())
    }

    /// Makes sure `dest` exists in the images even if no page goes there.
    pub fn open(&mut self, dest: Dest) -> Result<(), ImageError> {
        let buf = self.buffer()?;
        self.submit(dest, buf, 0)
    }

    /// Waits for every chunk to be written; the checksums of the files written, or
    /// the first write error.
    pub fn finish(mut self) -> Result<Vec<pb::FileSum>, ImageError> {
        drop(self.to_writer.take());
        match self.writer.take().map(|w| w.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => {
                Err(ImageError::Io { path: "pages".into(), source: std::io::Error::other("page writer panicked") })
            }
            None => Ok(Vec::new()),
        }
    }
}

impl Drop for PageWriter {
    fn drop(&mut self) {
        drop(self.to_writer.take());
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// Why a source could not fill a task's memory.
#[derive(Debug, thiserror::Error)]
pub enum PageSourceError {
    #[error(transparent)]
    Sys(#[from] crate::sys::SysError),
    #[error("page data short: {got} of {want} bytes at {addr:#x}")]
    Short { addr: u64, got: u64, want: u64 },
    #[error("page run at {addr:#x} is {what}, which this restore cannot read yet")]
    Unsupported { addr: u64, what: &'static str },
}

/// Where restore takes a task's pages from.
pub trait PageSource {
    /// Puts every run's contents into the task driven by `r`; the bytes moved.
    fn fill(&mut self, r: &mut Remote, runs: &[PageRun]) -> Result<u64, PageSourceError>;
}

/// The task's own pages file in the images directory, already open in the task
/// (fd `task_fd`): the task reads its pages in place with remote preadv, no copy
/// through ccr.
pub struct TaskFileSource {
    pub task_fd: i32,
}

impl PageSource for TaskFileSource {
    /// One preadv moves at most MAX_RW_COUNT (2 GiB - 4 KiB) however large its
    /// iovecs are, so a short read is not an error while it makes progress: the next
    /// call goes on from where it stopped.
    fn fill(&mut self, r: &mut Remote, runs: &[PageRun]) -> Result<u64, PageSourceError> {
        if let Some(run) = runs.iter().find(|r| !r.flags.contains(RunFlags::PRESENT)) {
            let what = if run.flags.contains(RunFlags::IN_PARENT) { "in a parent image" } else { "not present" };
            return Err(PageSourceError::Unsupported { addr: run.vaddr, what });
        }
        let mut file_off = 0u64;
        let batch = r.preadv_capacity().max(1);
        for chunk in runs.chunks(batch) {
            // What is still to read of this batch, as (address, length).
            let mut left: Vec<(u64, u64)> = chunk.iter().map(|run| (run.vaddr, run.bytes())).collect();
            while !left.is_empty() {
                let want: u64 = left.iter().map(|&(_, len)| len).sum();
                let got = r.preadv(self.task_fd, &left, file_off)?;
                if got == 0 || got > want {
                    return Err(PageSourceError::Short { addr: left[0].0, got, want });
                }
                file_off += got;
                consume(&mut left, got);
            }
        }
        Ok(file_off)
    }
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

/// Reads a task's memory for a dump (the other end of [`PageWriter`]).
pub fn read_task(pid: i32, addr: u64, buf: &mut [u8], readable: bool) -> SysResult<()> {
    if readable && crate::sys::mem::read_some(pid, addr, buf).ok() == Some(buf.len()) {
        return Ok(());
    }
    // Not readable by the task (PROT_NONE, ...) or a short read: /proc/PID/mem can.
    crate::sys::mem::read_proc_mem(pid, addr, buf)
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
