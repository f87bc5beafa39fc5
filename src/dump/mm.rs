//! The address space: VMAs from smaps, present pages from pagemap, their contents
//! copied into pages-PID.img (page aligned, in VMA order).

use std::fs::File;
use std::io::Write;

use crate::dump::task::TaskState;
use crate::dump::{DumpCtx, DumpError};
use crate::error::Result;
use crate::image::pb::{self, VmaKind};
use crate::sys::pagemap::{PageInfo, Pagemap, PAGE_SIZE};
use crate::sys::proc::{MapEntry, Stat};
use crate::sys::ptrace::Tracee;
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
        let kind = match m.name.as_str() {
            "[vsyscall]" => continue,
            "[vdso]" => VmaKind::VmaVdso,
            "[vvar]" | "[vvar_vclock]" => VmaKind::VmaVvar,
            n if m.shared && n.starts_with("/dev/zero") => VmaKind::VmaAnonShared,
            n if n.starts_with("/SYSV") => return Err(unsupported("SysV shared memory").into()),
            n if n.starts_with("/memfd:") => return Err(unsupported("a memfd mapping").into()),
            n if n.ends_with(" (deleted)") => {
                return Err(unsupported("a mapping of a deleted file").into())
            }
            n if n.starts_with('/') && m.inode != 0 => {
                if m.shared {
                    VmaKind::VmaFileShared
                } else {
                    VmaKind::VmaFilePrivate
                }
            }
            n if m.inode != 0 => return Err(unsupported(&format!("a mapping of {n}")).into()),
            _ if m.shared => VmaKind::VmaAnonShared,
            _ => VmaKind::VmaAnonPrivate,
        };
        out.push(Vma {
            entry: m.clone(),
            kind,
        });
    }
    Ok(out)
}

/// Whether a page of a VMA of this kind has contents the image must carry.
fn page_wanted(kind: VmaKind, p: PageInfo) -> bool {
    match kind {
        VmaKind::VmaAnonPrivate | VmaKind::VmaAnonShared => p.present() || p.swapped(),
        // Private file pages: only the ones copied-on-write (anonymous now).
        VmaKind::VmaFilePrivate => (p.present() && !p.file_or_shared()) || p.swapped(),
        VmaKind::VmaFileShared | VmaKind::VmaVdso | VmaKind::VmaVvar => false,
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

/// Copies page runs of the task into `out`, in chunks of at most `buf.len()`.
struct PageWriter<'a> {
    pid: i32,
    out: &'a mut File,
    path: std::path::PathBuf,
    buf: Vec<u8>,
    pages: u64,
}

impl PageWriter<'_> {
    fn copy_run(&mut self, vaddr: u64, nr: u64, readable: bool) -> Result<()> {
        let mut done = 0u64;
        while done < nr {
            let chunk = (nr - done).min(self.buf.len() as u64 / PAGE_SIZE);
            let len = (chunk * PAGE_SIZE) as usize;
            let addr = vaddr + done * PAGE_SIZE;
            let buf = &mut self.buf[..len];
            if readable {
                let mut local = [libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: len,
                }];
                let remote = [libc::iovec {
                    iov_base: addr as *mut libc::c_void,
                    iov_len: len,
                }];
                let n = mem::readv(self.pid, &mut local, &remote)?;
                if n != len {
                    mem::read(self.pid, addr, buf)?;
                }
            } else {
                // Not readable by the task (PROT_NONE, ...): /proc/PID/mem can.
                mem::read(self.pid, addr, buf)?;
            }
            self.out
                .write_all(buf)
                .map_err(|source| DumpError::WritePages {
                    path: self.path.clone(),
                    source,
                })?;
            done += chunk;
        }
        self.pages += nr;
        Ok(())
    }
}

pub fn collect(
    ctx: &mut DumpCtx<'_>,
    t: &Tracee,
    stat: &Stat,
    vmas: Vec<Vma>,
    task: &TaskState,
) -> Result<pb::Mm> {
    let pid = t.pid();
    let started = std::time::Instant::now();
    let pagemap = Pagemap::open(pid)?;
    let path = ctx.dir.file(&crate::image::pages_file_name(pid));
    let mut out = File::create(&path).map_err(|source| DumpError::WritePages {
        path: path.clone(),
        source,
    })?;
    let mut w = PageWriter {
        pid,
        out: &mut out,
        path: path.clone(),
        buf: vec![0u8; 4 << 20],
        pages: 0,
    };
    let mut runs = Vec::new();
    let mut image_vmas = Vec::new();
    let mut info = Vec::new();
    let mut scanned = 0u64;
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
        image_vmas.push(pb::Vma {
            start: m.start,
            end: m.end,
            pgoff: m.offset,
            prot: prot as u32,
            kind: v.kind as i32,
            path: if matches!(v.kind, VmaKind::VmaFilePrivate | VmaKind::VmaFileShared) {
                m.name.clone()
            } else {
                String::new()
            },
            dev: libc::makedev(m.dev_major, m.dev_minor),
            ino: m.inode,
            name: m.name.clone(),
            growsdown: m.has_flag("gd"),
            madvise: madvise_of(m),
            locked: m.has_flag("lo"),
            file_writable: m.shared && m.has_flag("mw"),
        });
        if matches!(
            v.kind,
            VmaKind::VmaFileShared | VmaKind::VmaVdso | VmaKind::VmaVvar
        ) {
            continue;
        }
        // Pagemap in slices, so a huge VMA does not need a huge buffer.
        let mut at = m.start;
        while at < m.end {
            let end = m.end.min(at + (1 << 30));
            pagemap.read(at, end, &mut info)?;
            scanned += info.len() as u64;
            let mut i = 0;
            while i < info.len() {
                if !page_wanted(v.kind, info[i]) {
                    i += 1;
                    continue;
                }
                let first = i;
                while i < info.len() && page_wanted(v.kind, info[i]) {
                    i += 1;
                }
                let vaddr = at + first as u64 * PAGE_SIZE;
                let nr = (i - first) as u64;
                w.copy_run(vaddr, nr, m.read)?;
                runs.push(pb::PageRun {
                    vaddr,
                    nr_pages: nr,
                });
            }
            at = end;
        }
    }
    let pages = w.pages;
    ctx.stats.pages_written += pages;
    ctx.stats.pages_scanned += scanned;
    ctx.stats.memdump_us += started.elapsed().as_micros() as u64;
    crate::debug!(
        ctx.log,
        "pid {pid}: {} vmas, {} page runs, {pages} pages",
        image_vmas.len(),
        runs.len()
    );
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
        runs,
        auxv: proc::read_bytes(&format!("/proc/{pid}/auxv"))?,
        exe: proc::readlink(&format!("/proc/{pid}/exe"))?,
        pages,
    })
}
