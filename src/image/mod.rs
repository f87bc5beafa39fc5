//! The image directory: one file per image kind, each framed so that a wrong,
//! foreign or truncated file is recognised and never mis-parsed.
//!
//! File layout (all integers little endian):
//!
//! ```text
//! offset  size  field
//!      0     4  magic "CCRi"
//!      4     4  kind tag (ImageKind::tag, e.g. "CORE")
//!      8     4  format version (FORMAT_VERSION)
//!     12     4  crc32 of the body
//!     16     8  body length in bytes
//!     24     n  body: one protobuf message
//! ```
//!
//! Raw page data (`pages-PID.img`) is not framed: it is page aligned so restore can
//! read it straight into place; its layout is described by the `mm-PID.img` runs.

pub mod convert;
pub mod crc32;
pub mod hex;
pub mod pb;

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub const MAGIC: [u8; 4] = *b"CCRi";
pub const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 24;
/// Bodies larger than this are refused as corrupt rather than allocated.
const MAX_BODY: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("images directory {path}: {source}")]
    Dir { path: PathBuf, source: std::io::Error },
    #[error("image {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("image {path} is missing")]
    Missing { path: PathBuf },
    #[error("image {path} is not a ccr image (bad magic)")]
    BadMagic { path: PathBuf },
    #[error("image {path} holds a {found:?} image, expected {expected:?}")]
    WrongKind { path: PathBuf, expected: String, found: String },
    #[error("image {path} has format version {found}, this ccr reads version {FORMAT_VERSION}")]
    Version { path: PathBuf, found: u32 },
    #[error("image {path} is truncated: {detail}")]
    Truncated { path: PathBuf, detail: String },
    #[error("image {path} is corrupt: {detail}")]
    Corrupt { path: PathBuf, detail: String },
}

impl ImageError {
    pub fn errno(&self) -> i32 {
        match self {
            ImageError::Dir { source, .. } | ImageError::Io { source, .. } => {
                source.raw_os_error().unwrap_or(libc::EIO)
            }
            ImageError::Missing { .. } => libc::ENOENT,
            _ => libc::EINVAL,
        }
    }
}

/// Every kind of image file. The tag is written into the header; the file name
/// pattern says where it lives in the directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
}

impl ImageKind {
    pub const ALL: [ImageKind; 7] = [
        ImageKind::Inventory,
        ImageKind::Core,
        ImageKind::Mm,
        ImageKind::Fds,
        ImageKind::Files,
        ImageKind::Cgroup,
        ImageKind::Stats,
    ];

    pub fn tag(self) -> [u8; 4] {
        match self {
            ImageKind::Inventory => *b"INVT",
            ImageKind::Core => *b"CORE",
            ImageKind::Mm => *b"MMAP",
            ImageKind::Fds => *b"FDS_",
            ImageKind::Files => *b"FILE",
            ImageKind::Cgroup => *b"CGRP",
            ImageKind::Stats => *b"STAT",
        }
    }

    /// File name prefix; per-task kinds are `PREFIX-PID.img`, others `PREFIX.img`.
    pub fn prefix(self) -> &'static str {
        match self {
            ImageKind::Inventory => "inventory",
            ImageKind::Core => "core",
            ImageKind::Mm => "mm",
            ImageKind::Fds => "fds",
            ImageKind::Files => "files",
            ImageKind::Cgroup => "cgroup",
            ImageKind::Stats => "stats",
        }
    }

    pub fn per_task(self) -> bool {
        matches!(self, ImageKind::Core | ImageKind::Mm | ImageKind::Fds)
    }

    pub fn from_tag(tag: &[u8]) -> Option<ImageKind> {
        Self::ALL.into_iter().find(|k| k.tag() == tag)
    }

    /// The kind a file name belongs to (`core-42.img` → Core).
    pub fn from_file_name(name: &str) -> Option<ImageKind> {
        let stem = name.strip_suffix(".img")?;
        let prefix = stem.split('-').next()?;
        Self::ALL.into_iter().find(|k| k.prefix() == prefix)
    }

    pub fn file_name(self, pid: Option<i32>) -> String {
        match pid {
            Some(p) if self.per_task() => format!("{}-{}.img", self.prefix(), p),
            _ => format!("{}.img", self.prefix()),
        }
    }
}

/// The raw page file of one task.
pub fn pages_file_name(pid: i32) -> String {
    format!("pages-{pid}.img")
}

/// The contents of a SysV shared memory segment.
pub fn sysv_shm_file_name(id: i32) -> String {
    format!("sysvshm-{id}.img")
}

/// The contents of a file that was deleted while open (FileDesc id).
pub fn ghost_file_name(id: u32) -> String {
    format!("ghost-{id}.img")
}

/// The raw contents of one shared memory object (sparse, at object offsets).
pub fn shmem_file_name(id: u64) -> String {
    format!("shmem-{id}.img")
}

/// An images directory.
#[derive(Clone, Debug)]
pub struct ImageDir {
    path: PathBuf,
}

impl ImageDir {
    /// Opens an existing directory for reading.
    pub fn open(path: &Path) -> Result<ImageDir, ImageError> {
        let md = std::fs::metadata(path).map_err(|source| ImageError::Dir { path: path.into(), source })?;
        if !md.is_dir() {
            return Err(ImageError::Dir {
                path: path.into(),
                source: std::io::Error::from_raw_os_error(libc::ENOTDIR),
            });
        }
        Ok(ImageDir { path: path.into() })
    }

    /// Opens a directory for writing, creating it if needed.
    pub fn create(path: &Path) -> Result<ImageDir, ImageError> {
        std::fs::create_dir_all(path).map_err(|source| ImageError::Dir { path: path.into(), source })?;
        Ok(ImageDir { path: path.into() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn exists(&self, kind: ImageKind, pid: Option<i32>) -> bool {
        self.file(&kind.file_name(pid)).exists()
    }

    /// Writes `msg` as image `kind` (atomically: a temporary file renamed into place).
    pub fn write<M: prost::Message>(&self, kind: ImageKind, pid: Option<i32>, msg: &M) -> Result<(), ImageError> {
        let path = self.file(&kind.file_name(pid));
        let body = msg.encode_to_vec();
        let mut buf = Vec::with_capacity(HEADER_LEN + body.len());
        buf.extend_from_slice(&MAGIC);
        buf.extend_from_slice(&kind.tag());
        buf.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        buf.extend_from_slice(&crc32::crc32(&body).to_le_bytes());
        buf.extend_from_slice(&(body.len() as u64).to_le_bytes());
        buf.extend_from_slice(&body);
        let tmp = path.with_extension("img.tmp");
        let io = |source| ImageError::Io { path: path.clone(), source };
        let mut f = File::create(&tmp).map_err(io)?;
        f.write_all(&buf).map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(io)
    }

    /// Reads image `kind`, checking magic, kind, version, length and checksum.
    pub fn read<M: prost::Message + Default>(&self, kind: ImageKind, pid: Option<i32>) -> Result<M, ImageError> {
        read_file(&self.file(&kind.file_name(pid)), Some(kind)).map(|(_, m)| m)
    }
}

/// Reads a framed image file; with `expect`, a file of another kind is an error.
pub fn read_file<M: prost::Message + Default>(
    path: &Path,
    expect: Option<ImageKind>,
) -> Result<(ImageKind, M), ImageError> {
    let (kind, body) = read_body(path, expect)?;
    let msg = M::decode(body.as_slice())
        .map_err(|e| ImageError::Corrupt { path: path.into(), detail: format!("protobuf: {e}") })?;
    Ok((kind, msg))
}

/// Reads and checks the frame of an image file, returning its kind and body.
pub fn read_body(path: &Path, expect: Option<ImageKind>) -> Result<(ImageKind, Vec<u8>), ImageError> {
    let mut f = File::open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ImageError::Missing { path: path.into() }
        } else {
            ImageError::Io { path: path.into(), source }
        }
    })?;
    let mut data = Vec::new();
    f.read_to_end(&mut data).map_err(|source| ImageError::Io { path: path.into(), source })?;
    parse_frame(path, &data, expect).map(|(k, b)| (k, b.to_vec()))
}

/// Checks a frame held in memory. Pure, so corrupt-input cases are unit tested.
pub fn parse_frame<'a>(
    path: &Path,
    data: &'a [u8],
    expect: Option<ImageKind>,
) -> Result<(ImageKind, &'a [u8]), ImageError> {
    if data.len() < HEADER_LEN {
        if data.len() >= 4 && data[..4] != MAGIC {
            return Err(ImageError::BadMagic { path: path.into() });
        }
        return Err(ImageError::Truncated {
            path: path.into(),
            detail: format!("{} bytes, header needs {HEADER_LEN}", data.len()),
        });
    }
    if data[..4] != MAGIC {
        return Err(ImageError::BadMagic { path: path.into() });
    }
    let tag = &data[4..8];
    let kind = ImageKind::from_tag(tag).ok_or_else(|| ImageError::Corrupt {
        path: path.into(),
        detail: format!("unknown image kind {:?}", String::from_utf8_lossy(tag)),
    })?;
    if let Some(e) = expect {
        if e != kind {
            return Err(ImageError::WrongKind {
                path: path.into(),
                expected: format!("{e:?}"),
                found: format!("{kind:?}"),
            });
        }
    }
    let version = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(ImageError::Version { path: path.into(), found: version });
    }
    let crc = u32::from_le_bytes(data[12..16].try_into().expect("4 bytes"));
    let len = u64::from_le_bytes(data[16..24].try_into().expect("8 bytes"));
    if len > MAX_BODY {
        return Err(ImageError::Corrupt { path: path.into(), detail: format!("body length {len} is implausible") });
    }
    let body = &data[HEADER_LEN..];
    if (body.len() as u64) < len {
        return Err(ImageError::Truncated {
            path: path.into(),
            detail: format!("body has {} of {len} bytes", body.len()),
        });
    }
    if (body.len() as u64) > len {
        return Err(ImageError::Corrupt {
            path: path.into(),
            detail: format!("{} bytes after the body", body.len() as u64 - len),
        });
    }
    if crc32::crc32(body) != crc {
        return Err(ImageError::Corrupt { path: path.into(), detail: "checksum mismatch".into() });
    }
    Ok((kind, body))
}

#[cfg(test)]
mod tests;
