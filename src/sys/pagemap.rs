//! /proc/PID/pagemap: which pages of a range are present (or swapped), and whether
//! they are anonymous or page-cache/shmem pages.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::sys::{SysError, SysResult};

pub const PAGE_SIZE: u64 = 4096;
const PM_PRESENT: u64 = 1 << 63;
const PM_SWAP: u64 = 1 << 62;
const PM_FILE: u64 = 1 << 61;
const PM_PFN_MASK: u64 = (1 << 55) - 1;

pub struct Pagemap {
    file: File,
    path: std::path::PathBuf,
}

/// What one pagemap entry says about a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageInfo(pub u64);

impl PageInfo {
    pub fn present(self) -> bool {
        self.0 & PM_PRESENT != 0
    }
    pub fn swapped(self) -> bool {
        self.0 & PM_SWAP != 0
    }
    /// A page-cache or shared-memory page (not a private anonymous one).
    pub fn file_or_shared(self) -> bool {
        self.0 & PM_FILE != 0
    }
    pub fn pfn(self) -> u64 {
        if self.present() {
            self.0 & PM_PFN_MASK
        } else {
            0
        }
    }
}

impl Pagemap {
    pub fn open(pid: i32) -> SysResult<Pagemap> {
        let (file, path) = crate::sys::proc::pagemap::open(pid)?;
        Ok(Pagemap { file, path })
    }

    /// Entries for the pages of [start, end), into `out` (cleared first).
    pub fn read(&self, start: u64, end: u64, out: &mut Vec<PageInfo>) -> SysResult<()> {
        let n = ((end - start) / PAGE_SIZE) as usize;
        let mut raw = vec![0u8; n * 8];
        self.file.read_exact_at(&mut raw, start / PAGE_SIZE * 8).map_err(|source| SysError::Path {
            call: "read",
            path: self.path.join(format!("@{start:#x}")),
            source,
        })?;
        out.clear();
        out.extend(raw.chunks_exact(8).map(|c| PageInfo(u64::from_le_bytes(c.try_into().expect("8 bytes")))));
        Ok(())
    }
}

/// The page frame of the kernel's shared zero page (what a read fault of untouched
/// anonymous memory maps), or 0 when pagemap hides frame numbers.
pub fn zero_pfn() -> u64 {
    // SAFETY: a private anonymous page of our own, read once through a volatile
    // load (so the read fault happens) and unmapped again.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            PAGE_SIZE as usize,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return 0;
        }
        std::ptr::read_volatile(p as *const u8);
        let pfn = Pagemap::open(crate::sys::proc::SELF)
            .ok()
            .and_then(|pm| {
                let mut v = Vec::new();
                pm.read(p as u64, p as u64 + PAGE_SIZE, &mut v).ok()?;
                v.first().map(|e| e.pfn())
            })
            .unwrap_or(0);
        libc::munmap(p, PAGE_SIZE as usize);
        pfn
    }
}
