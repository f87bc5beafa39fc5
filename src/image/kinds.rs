//! The one table of image kinds: file name, header tag, message type and how
//! `ccr show` prints it. `ImageDir` and `show` both read it; a new kind is one row
//! here (and one `impl Image`).

use serde_json::{json, Value};

use super::pb;

/// Every kind of file an images directory holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageKind {
    /// What the checkpoint holds: tasks, format, machine facts.
    Inventory,
    /// Per task: registers, signals, credentials, limits.
    Core,
    /// Per task: VMAs, mm fields, page runs.
    Mm,
    /// Per task: fd numbers and the open files they refer to.
    Fds,
    /// Every open file description, pipe contents, shared memory objects.
    Files,
    /// The container's cgroups.
    Cgroup,
    /// Timings of dump and restore.
    Stats,
    /// Checksums of every block of the raw data files.
    Sums,
    /// Per task: raw page contents (page aligned, unframed).
    Pages,
    /// Per shared memory object: its contents at object offsets (sparse, unframed).
    Shmem,
    /// Per SysV segment: its contents (unframed).
    SysvShm,
    /// Per deleted-but-open file: its contents (unframed).
    Ghost,
    /// Per saved mount (a tmpfs of the tree's mount namespace): its files' bytes.
    MountData,
}

/// How the files of a kind are named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Naming {
    /// `PREFIX.img`
    Single,
    /// `PREFIX-N.img`, N a pid (per task) or an object id.
    Numbered,
}

/// How `ccr show` decodes a framed body.
pub type ShowFn = fn(&[u8]) -> Result<Value, prost::DecodeError>;

/// One row of the table.
pub struct KindDesc {
    pub kind: ImageKind,
    pub prefix: &'static str,
    pub naming: Naming,
    /// The header tag of a framed file; None for raw data.
    pub tag: Option<[u8; 4]>,
    /// Decodes a framed body for `ccr show`.
    pub show: Option<ShowFn>,
}

fn show_as<M: prost::Message + Default + serde::Serialize>(body: &[u8]) -> Result<Value, prost::DecodeError> {
    let m = M::decode(body)?;
    Ok(serde_json::to_value(&m).unwrap_or(Value::Null))
}

const fn framed(kind: ImageKind, prefix: &'static str, naming: Naming, tag: [u8; 4], show: ShowFn) -> KindDesc {
    KindDesc { kind, prefix, naming, tag: Some(tag), show: Some(show) }
}

const fn raw(kind: ImageKind, prefix: &'static str) -> KindDesc {
    KindDesc { kind, prefix, naming: Naming::Numbered, tag: None, show: None }
}

pub static KINDS: &[KindDesc] = &[
    framed(ImageKind::Inventory, "inventory", Naming::Single, *b"INVT", show_as::<pb::Inventory>),
    framed(ImageKind::Core, "core", Naming::Numbered, *b"CORE", show_as::<pb::TaskCore>),
    framed(ImageKind::Mm, "mm", Naming::Numbered, *b"MMAP", show_as::<pb::Mm>),
    framed(ImageKind::Fds, "fds", Naming::Numbered, *b"FDS_", show_as::<pb::Fds>),
    framed(ImageKind::Files, "files", Naming::Single, *b"FILE", show_as::<pb::Files>),
    framed(ImageKind::Cgroup, "cgroup", Naming::Single, *b"CGRP", show_as::<pb::CgroupImage>),
    framed(ImageKind::Stats, "stats", Naming::Single, *b"STAT", show_as::<pb::Stats>),
    framed(ImageKind::Sums, "sums", Naming::Single, *b"SUMS", show_as::<pb::Sums>),
    raw(ImageKind::Pages, "pages"),
    raw(ImageKind::Shmem, "shmem"),
    raw(ImageKind::SysvShm, "sysvshm"),
    raw(ImageKind::Ghost, "ghost"),
    raw(ImageKind::MountData, "mntdata"),
];

/// A message type that is the body of one image kind.
pub trait Image: prost::Message + Default {
    const KIND: ImageKind;
}

macro_rules! image {
    ($t:ty, $k:ident) => {
        impl Image for $t {
            const KIND: ImageKind = ImageKind::$k;
        }
    };
}
image!(pb::Inventory, Inventory);
image!(pb::TaskCore, Core);
image!(pb::Mm, Mm);
image!(pb::Fds, Fds);
image!(pb::Files, Files);
image!(pb::CgroupImage, Cgroup);
image!(pb::Stats, Stats);
image!(pb::Sums, Sums);

impl ImageKind {
    pub fn desc(self) -> &'static KindDesc {
        KINDS.iter().find(|d| d.kind == self).expect("every kind has a row")
    }

    pub fn tag(self) -> Option<[u8; 4]> {
        self.desc().tag
    }

    pub fn from_tag(tag: &[u8]) -> Option<ImageKind> {
        KINDS.iter().find(|d| d.tag.is_some_and(|t| t == tag)).map(|d| d.kind)
    }

    /// The kind a file name belongs to (`core-42.img` → Core).
    pub fn from_file_name(name: &str) -> Option<ImageKind> {
        let stem = name.strip_suffix(".img")?;
        let (prefix, num) = match stem.split_once('-') {
            Some((p, n)) => (p, Some(n)),
            None => (stem, None),
        };
        let d = KINDS.iter().find(|d| d.prefix == prefix)?;
        let ok = match (d.naming, num) {
            (Naming::Single, None) => true,
            (Naming::Numbered, Some(n)) => !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()),
            _ => false,
        };
        ok.then_some(d.kind)
    }

    /// `PREFIX.img`, or `PREFIX-N.img` for numbered kinds.
    pub fn file_name(self, n: Option<u64>) -> String {
        let d = self.desc();
        match (d.naming, n) {
            (Naming::Numbered, Some(n)) => format!("{}-{n}.img", d.prefix),
            _ => format!("{}.img", d.prefix),
        }
    }

    /// How `ccr show` prints a raw file of this kind.
    pub fn show_raw(len: u64) -> Value {
        json!({ "raw_pages": len / 4096, "bytes": len })
    }
}
