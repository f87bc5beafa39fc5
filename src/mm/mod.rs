//! Memory: the engine's picture of an address space (VMAs, page runs, mm fields)
//! and the objects several tasks can share (`shmem`, `sysv`). Dump fills it from
//! /proc (`vma::classify`, `dump::mm`); restore rebuilds it (`restore::mm`).

pub mod shmem;
pub mod sysv;
pub mod vma;

pub use vma::{Prot, Vma, VmaKind};

bitflags::bitflags! {
    /// Where the contents of a page run are.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct RunFlags: u32 {
        /// In this directory's pages file, after the previous present run.
        const PRESENT = 1;
        /// In the parent images directory (an earlier pre-dump pass).
        const IN_PARENT = 2;
        /// Restore may leave them to be fetched on first touch.
        const LAZY = 4;
    }
}

/// A run of pages of one VMA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRun {
    pub vaddr: u64,
    pub nr_pages: u64,
    pub flags: RunFlags,
}

impl PageRun {
    pub fn bytes(&self) -> u64 {
        self.nr_pages * crate::sys::pagemap::PAGE_SIZE
    }

    pub fn end(&self) -> u64 {
        self.vaddr + self.bytes()
    }
}

/// The mm fields PR_SET_MM_MAP sets.
pub use crate::image::pb::MmFields;

/// A task's address space.
#[derive(Clone, Debug, Default)]
pub struct Mm {
    pub fields: MmFields,
    /// In address order.
    pub vmas: Vec<Vma>,
    /// In address order, each inside one VMA.
    pub runs: Vec<PageRun>,
    pub auxv: Vec<u8>,
    pub exe: String,
    /// The file `exe` named at the dump (None before format 2.3).
    pub exe_stamp: Option<crate::files::stamp::FileStamp>,
}

impl Mm {
    /// Bytes of page data this task has in its pages file.
    pub fn present_bytes(&self) -> u64 {
        self.runs.iter().filter(|r| r.flags.contains(RunFlags::PRESENT)).map(PageRun::bytes).sum()
    }
}
