//! VMAs: what each mapping of a task is, and which of its pages a checkpoint must
//! carry. Anything that cannot be restored yet is refused here, by name.

use crate::sys::pagemap::PageInfo;
use crate::sys::proc::MapEntry;

bitflags::bitflags! {
    /// A mapping's protection (PROT_*).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Prot: u32 {
        const READ = libc::PROT_READ as u32;
        const WRITE = libc::PROT_WRITE as u32;
        const EXEC = libc::PROT_EXEC as u32;
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmaKind {
    AnonPrivate,
    /// A private mapping of a file; pages it copied-on-write are saved.
    FilePrivate {
        path: String,
    },
    /// A shared mapping of a file; `writable` when the file was open for writing.
    FileShared {
        path: String,
        writable: bool,
    },
    /// Shared memory object `id` (MAP_SHARED anonymous memory, a shared memfd mapping).
    Shmem {
        id: u64,
    },
    Vdso,
    Vvar,
    /// An attachment of SysV segment `id`.
    SysvShm {
        id: i32,
    },
}

impl VmaKind {
    /// Whether the pages of this mapping live in the task's pages file.
    pub fn pages_in_task_image(&self) -> bool {
        matches!(self, VmaKind::AnonPrivate | VmaKind::FilePrivate { .. })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub pgoff: u64,
    pub prot: Prot,
    pub kind: VmaKind,
    pub dev: u64,
    pub ino: u64,
    /// As /proc/PID/maps names it ("[heap]", a path, "").
    pub name: String,
    pub growsdown: bool,
    /// madvise advice to apply again (MADV_*).
    pub madvise: Vec<i32>,
    pub locked: bool,
    /// File kinds: the mapped file as dumped (the dump fills it in; None from
    /// images before 2.3 and for pseudo filesystems).
    pub stamp: Option<crate::files::stamp::FileStamp>,
}

impl Vma {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// Whether a page of this VMA has contents the images must carry. A page mapped
    /// to the shared zero page was only ever read: restore gets it for free.
    pub fn page_wanted(&self, p: PageInfo, zero_pfn: u64) -> bool {
        if zero_pfn != 0 && p.present() && p.pfn() == zero_pfn {
            return false;
        }
        match self.kind {
            VmaKind::AnonPrivate | VmaKind::Shmem { .. } => p.present() || p.swapped(),
            // Private file pages: only the ones copied-on-write (anonymous now).
            VmaKind::FilePrivate { .. } => (p.present() && !p.file_or_shared()) || p.swapped(),
            // The file holds them; SysV segments are saved whole, once.
            VmaKind::FileShared { .. } | VmaKind::Vdso | VmaKind::Vvar | VmaKind::SysvShm { .. } => false,
        }
    }
}

/// Why a mapping cannot be dumped (the caller adds the task and the address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused(pub String);

fn madvise_of(m: &MapEntry) -> Vec<i32> {
    [
        ("dd", libc::MADV_DONTDUMP),
        ("dc", libc::MADV_DONTFORK),
        ("wf", libc::MADV_WIPEONFORK),
        ("hg", libc::MADV_HUGEPAGE),
        ("nh", libc::MADV_NOHUGEPAGE),
        ("mg", libc::MADV_MERGEABLE),
    ]
    .into_iter()
    .filter(|(flag, _)| m.has_flag(flag))
    .map(|(_, advice)| advice)
    .collect()
}

/// What one mapping of /proc/PID/smaps is; None for mappings the kernel gives
/// every task by itself ([vsyscall]).
pub fn classify(m: &MapEntry) -> Result<Option<Vma>, Refused> {
    let refuse = |what: &str| Err(Refused(what.into()));
    let shmem = m.shared && (m.name.starts_with("/dev/zero") || m.name.starts_with("/memfd:"));
    let kind = match m.name.as_str() {
        "[vsyscall]" => return Ok(None),
        "[vdso]" => VmaKind::Vdso,
        "[vvar]" | "[vvar_vclock]" => VmaKind::Vvar,
        _ if shmem => VmaKind::Shmem { id: m.inode },
        n if n.starts_with("/SYSV") => VmaKind::SysvShm { id: m.inode as i32 },
        n if n.starts_with("/memfd:") => return refuse("a private memfd mapping"),
        n if n.ends_with(" (deleted)") => return refuse("a mapping of a deleted file"),
        n if n.starts_with('/') && m.inode != 0 => {
            if m.shared {
                VmaKind::FileShared { path: n.to_string(), writable: m.has_flag("mw") }
            } else {
                VmaKind::FilePrivate { path: n.to_string() }
            }
        }
        n if m.inode != 0 => return refuse(&format!("a mapping of {n}")),
        _ if m.shared => return refuse("shared memory of unknown origin"),
        _ => VmaKind::AnonPrivate,
    };
    let mut prot = Prot::empty();
    prot.set(Prot::READ, m.read);
    prot.set(Prot::WRITE, m.write);
    prot.set(Prot::EXEC, m.exec);
    Ok(Some(Vma {
        start: m.start,
        end: m.end,
        pgoff: m.offset,
        prot,
        kind,
        dev: libc::makedev(m.dev_major, m.dev_minor),
        ino: m.inode,
        name: m.name.clone(),
        growsdown: m.has_flag("gd"),
        madvise: madvise_of(m),
        locked: m.has_flag("lo"),
        stamp: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, shared: bool, inode: u64) -> MapEntry {
        MapEntry {
            start: 0x1000,
            end: 0x3000,
            read: true,
            write: true,
            shared,
            inode,
            name: name.into(),
            flags: vec!["rd".into(), "wr".into(), "mw".into()],
            ..Default::default()
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(classify(&entry("", false, 0)).unwrap().unwrap().kind, VmaKind::AnonPrivate);
        assert_eq!(classify(&entry("/dev/zero (deleted)", true, 9)).unwrap().unwrap().kind, VmaKind::Shmem { id: 9 });
        assert_eq!(
            classify(&entry("/SYSV00000000 (deleted)", true, 7)).unwrap().unwrap().kind,
            VmaKind::SysvShm { id: 7 }
        );
        let v = classify(&entry("/usr/lib/x.so", true, 5)).unwrap().unwrap();
        assert_eq!(v.kind, VmaKind::FileShared { path: "/usr/lib/x.so".into(), writable: true });
        assert_eq!(v.prot, Prot::READ | Prot::WRITE);
        assert!(classify(&entry("[vsyscall]", false, 0)).unwrap().is_none());
        assert!(classify(&entry("/memfd:x (deleted)", false, 3)).is_err());
        assert!(classify(&entry("/tmp/gone (deleted)", false, 3)).is_err());
        assert!(classify(&entry("", true, 0)).is_err());
    }
}
