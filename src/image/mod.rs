//! The images directory: one file per image kind (the table is in `kinds`), each
//! framed so that a wrong, foreign, truncated or newer file is recognised and never
//! mis-parsed.
//!
//! File layout (all integers little endian):
//!
//! ```text
//! offset  size  field
//!      0     4  magic "CCRi"
//!      4     4  kind tag (the kinds table, e.g. "CORE")
//!      8     2  format minor version
//!     10     2  format major version
//!     12     4  crc32 of the body
//!     16     8  body length in bytes
//!     24     n  body: one protobuf message
//! ```
//!
//! Compatibility (the schemas' side is written in `proto/common.proto`): a ccr reads
//! images of its own major version and of any minor up to its own; a newer minor
//! (which may carry state this ccr would drop) and any other major are refused,
//! naming the file and both versions.
//!
//! Raw data (`pages-PID.img`, shared memory, SysV segments, ghost files) is not
//! framed: pages are page aligned so restore can read them straight into place;
//! their layout is described by the framed images.
//!
//! Protobuf messages stay at this boundary: `convert` turns them into engine types
//! (checking every enum, flag and required field) when they are read.

pub mod convert;
pub mod crc32;
pub mod hex;
pub mod kinds;
pub mod pages;
pub mod pb;
pub mod sums;

#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub use kinds::{Image, ImageKind};

pub const MAGIC: [u8; 4] = *b"CCRi";
pub const FORMAT_MAJOR: u16 = 2;
/// 2.1: file locks, POSIX timers, UTS and IPC namespaces, scheduling and oom_score_adj.
/// 2.2: checksums of the raw data files (sums.img).
/// 2.3: file stamps (dev, ino, size, mtime) of files opened by path, mapped files
/// and the executable, checked on restore.
/// 2.4: a tree's own mount namespace (its mount tree, tmpfs files in mntdata-ID.img).
/// 2.5: a tree's own network namespace (lo, its addresses, the namespace's sysctls):
/// an older ccr refuses it rather than restore the tree into its own namespace.
/// 2.6: a tree's own cgroup namespace (its root on every hierarchy, in the inventory).
/// 2.7: external ttys (--external tty[..]) with their settings, and the controlling
/// terminal and foreground group a session leader takes back.
/// 2.8: POSIX message queues of a tree's own IPC namespace; the pid a PID
/// namespace's task had outside it at the dump (TaskEntry.dumped_pid).
/// 2.9: pty pairs whose master the tree holds (Files.ptys, FileDesc.pty); seccomp
/// filters and strict mode (TaskCore.seccomp_filters, ThreadState.seccomp);
/// external bind mounts the caller named with a key (MountEntry.ext_mount);
/// a tree's own user namespace (its uid and gid maps, setgroups): an older ccr
/// refuses it rather than restore the tree with the host's ids.
/// 2.10: veths of a tree's own network namespace (a peer outside it, or both ends
/// inside), and the main table's routes through them (NetNamespace.devices, .routes).
/// 2.11: unix sockets of a tree's own network namespace (UnixSocket.own_net, and
/// bound ones there), and socket files in a saved tmpfs (FsEntry of S_IFSOCK).
/// 2.12: TCP and UDP sockets with no connection (FileDesc.inet), packet sockets
/// (FileDesc.packet) and netlink sockets (FileDesc.netlink), with their classic
/// BPF filters.
/// 2.13: closed and established TCP connections (InetSocket.closed,
/// InetSocket.established): an older ccr would make them unconnected sockets.
pub const FORMAT_MINOR: u16 = 13;
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
    #[error(
        "image {path} has format {major}.{minor}; this ccr reads format {FORMAT_MAJOR}.0 to {FORMAT_MAJOR}.{FORMAT_MINOR}{}",
        if *major == FORMAT_MAJOR { " (it was written by a newer ccr)" } else { "" }
    )]
    Version { path: PathBuf, major: u16, minor: u16 },
    #[error("image {path} is truncated: {detail}")]
    Truncated { path: PathBuf, detail: String },
    #[error("image {path} is corrupt: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    /// A field with a value this ccr does not know or cannot use.
    #[error("image {path}: {field}: {detail}")]
    Invalid { path: PathBuf, field: String, detail: String },
    #[error("{path} {detail}: ccr keeps checkpoints and logs only where no one else can write")]
    Untrusted { path: PathBuf, detail: String },
}

impl ImageError {
    pub fn errno(&self) -> i32 {
        match self {
            ImageError::Dir { source, .. } | ImageError::Io { source, .. } => {
                source.raw_os_error().unwrap_or(libc::EIO)
            }
            ImageError::Missing { .. } => libc::ENOENT,
            ImageError::Untrusted { .. } => libc::EPERM,
            _ => libc::EINVAL,
        }
    }
}

/// An images directory. It holds the directory open, so raw files are reached
/// through the fd (also from a restore child that has moved to another root).
#[derive(Clone, Debug)]
pub struct ImageDir {
    path: PathBuf,
    fd: std::sync::Arc<std::os::fd::OwnedFd>,
}

fn open_dir(path: &Path) -> Result<std::sync::Arc<std::os::fd::OwnedFd>, ImageError> {
    let fd = crate::sys::fd::open(path, libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC, 0)
        .map_err(|e| ImageError::Dir { path: path.into(), source: std::io::Error::from_raw_os_error(e.errno()) })?;
    Ok(std::sync::Arc::new(fd))
}

impl ImageDir {
    /// The names of the directory's image files, sorted: the framed ones
    /// (protobuf records) or the raw data ones.
    pub fn names(&self, framed: bool) -> Result<Vec<String>, ImageError> {
        let entries =
            std::fs::read_dir(self.path()).map_err(|source| ImageError::Dir { path: self.path().into(), source })?;
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| ImageKind::from_file_name(n).is_some_and(|k| k.tag().is_some() == framed))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Opens an existing directory for reading.
    pub fn open(path: &Path) -> Result<ImageDir, ImageError> {
        let md = std::fs::metadata(path).map_err(|source| ImageError::Dir { path: path.into(), source })?;
        if !md.is_dir() {
            return Err(ImageError::Dir {
                path: path.into(),
                source: std::io::Error::from_raw_os_error(libc::ENOTDIR),
            });
        }
        Ok(ImageDir { path: path.into(), fd: open_dir(path)? })
    }

    /// Opens a directory that restore may trust: one no one but the caller (or
    /// root) can write to.
    pub fn open_trusted(path: &Path) -> Result<ImageDir, ImageError> {
        let d = ImageDir::open(path)?;
        check_private(path, "the images directory")?;
        Ok(d)
    }

    /// Opens a directory for writing, creating it if needed (private: 0700, as
    /// images hold a process's memory); one that others can write to is refused.
    pub fn create(path: &Path) -> Result<ImageDir, ImageError> {
        make_private_dir(path, "the images directory")?;
        Ok(ImageDir { path: path.into(), fd: open_dir(path)? })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of image `kind` (number `n` for numbered kinds).
    pub fn file(&self, kind: ImageKind, n: Option<u64>) -> PathBuf {
        self.path.join(kind.file_name(n))
    }

    pub fn exists(&self, kind: ImageKind, n: Option<u64>) -> bool {
        self.file(kind, n).exists()
    }

    /// Writes `msg` as its image kind (atomically: a temporary file renamed into place).
    pub fn write<M: Image>(&self, n: Option<u64>, msg: &M) -> Result<(), ImageError> {
        let path = self.file(M::KIND, n);
        let buf = frame(M::KIND, &msg.encode_to_vec());
        let tmp = path.with_extension("img.tmp");
        let io = |source| ImageError::Io { path: path.clone(), source };
        // Never through a link planted at the temporary name: created new, here.
        let tmp_name = Path::new(tmp.file_name().expect("an image file name"));
        let _ = std::fs::remove_file(&tmp);
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let mut f = {
            use std::os::fd::AsFd;
            let fd = crate::sys::fd::openat(self.fd.as_fd(), tmp_name, flags, 0o600)
                .map_err(|e| io(std::io::Error::from_raw_os_error(e.errno())))?;
            File::from(fd)
        };
        f.write_all(&buf).map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(io)
    }

    /// Reads image `M::KIND`, checking magic, kind, version, length and checksum.
    pub fn read<M: Image>(&self, n: Option<u64>) -> Result<M, ImageError> {
        let path = self.file(M::KIND, n);
        let (_, body) = read_body(&path, Some(M::KIND))?;
        M::decode(body.as_slice()).map_err(|e| ImageError::Corrupt { path, detail: format!("protobuf: {e}") })
    }

    fn openat(&self, kind: ImageKind, n: u64, flags: i32) -> Result<(File, PathBuf), ImageError> {
        let name = kind.file_name(Some(n));
        self.openat_name(&name, flags)
    }

    fn openat_name(&self, name: &str, flags: i32) -> Result<(File, PathBuf), ImageError> {
        use std::os::fd::AsFd;
        let path = self.path.join(name);
        let fd = crate::sys::fd::openat(self.fd.as_fd(), Path::new(name), flags | libc::O_CLOEXEC, 0o600);
        match fd {
            Ok(fd) => Ok((File::from(fd), path)),
            Err(e) if e.errno() == libc::ENOENT => Err(ImageError::Missing { path }),
            Err(e) => Err(ImageError::Io { path, source: std::io::Error::from_raw_os_error(e.errno()) }),
        }
    }

    /// Creates a raw data file (new: never through a link planted at its name).
    pub fn create_raw(&self, kind: ImageKind, n: u64) -> Result<(File, PathBuf), ImageError> {
        self.openat(kind, n, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW)
    }

    /// Opens a raw data file for reading.
    pub fn open_raw(&self, kind: ImageKind, n: u64) -> Result<(File, PathBuf), ImageError> {
        self.openat(kind, n, libc::O_RDONLY)
    }

    /// Opens a file of the directory by name for reading, never through a link
    /// (nor waiting on a FIFO put in its place).
    pub fn open_file(&self, name: &str) -> Result<File, ImageError> {
        self.openat_name(name, libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK).map(|(f, _)| f)
    }
}

/// Whether this ccr reads images of format `major.minor` (the rule above).
pub fn readable(major: u16, minor: u16) -> bool {
    major == FORMAT_MAJOR && minor <= FORMAT_MINOR
}

/// Header and body of one framed image.
pub fn frame(kind: ImageKind, body: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(HEADER_LEN + body.len());
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&kind.tag().expect("a framed kind"));
    buf.extend_from_slice(&FORMAT_MINOR.to_le_bytes());
    buf.extend_from_slice(&FORMAT_MAJOR.to_le_bytes());
    buf.extend_from_slice(&crc32::crc32(body).to_le_bytes());
    buf.extend_from_slice(&(body.len() as u64).to_le_bytes());
    buf.extend_from_slice(body);
    buf
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
    let minor = u16::from_le_bytes([data[8], data[9]]);
    let major = u16::from_le_bytes([data[10], data[11]]);
    if !readable(major, minor) {
        return Err(ImageError::Version { path: path.into(), major, minor });
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

/// Refuses `path` (`what` for the message) unless only its owner can write to it
/// and that owner is the caller or root.
pub fn check_private(path: &Path, what: &str) -> Result<(), ImageError> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(path).map_err(|source| ImageError::Dir { path: path.into(), source })?;
    let me = nix::unistd::geteuid().as_raw();
    let detail = if md.uid() != me && md.uid() != 0 {
        format!("({what}) belongs to uid {}", md.uid())
    } else if md.mode() & 0o022 != 0 {
        format!("({what}) can be written by others (mode {:o})", md.mode() & 0o7777)
    } else {
        return Ok(());
    };
    Err(ImageError::Untrusted { path: path.into(), detail })
}

/// Creates directory `path` (and its parents) 0700 if missing. One of ours that
/// others may write to (made under umask 002, or by an older ccr) is made private;
/// anyone else's is refused (`what` names it).
pub fn make_private_dir(path: &Path, what: &str) -> Result<(), ImageError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| ImageError::Dir { path: path.into(), source })?;
    if check_private(path, what).is_err() {
        if std::fs::metadata(path).is_ok_and(|m| m.uid() == nix::unistd::geteuid().as_raw()) {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700));
        }
        check_private(path, what)?;
    }
    Ok(())
}

/// A dump's images on their way into a directory: written into a fresh private
/// directory inside it (`.ccr-dump-PID.partial`) and moved in only when complete,
/// so a failed or killed dump leaves the directory as it was. Dropped uncommitted,
/// the partial directory goes; one left by a dump that was killed outright is
/// removed by the next dump into the same directory.
pub struct Staging {
    target: ImageDir,
    partial: ImageDir,
    committed: std::cell::Cell<bool>,
}

const PARTIAL_PREFIX: &str = ".ccr-dump-";
const PARTIAL_SUFFIX: &str = ".partial";

impl Staging {
    /// Creates `target` if needed, removes partial directories of dumps that are
    /// gone, and makes this dump's.
    pub fn new(target: &Path) -> Result<Staging, ImageError> {
        let target = ImageDir::create(target)?;
        let entries = std::fs::read_dir(target.path())
            .map_err(|source| ImageError::Dir { path: target.path().into(), source })?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name.strip_prefix(PARTIAL_PREFIX).and_then(|r| r.strip_suffix(PARTIAL_SUFFIX));
            if let Some(pid) = pid.and_then(|p| p.parse::<i32>().ok()) {
                if !crate::sys::proc::exists(pid) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let name = format!("{PARTIAL_PREFIX}{}{PARTIAL_SUFFIX}", std::process::id());
        let path = target.path().join(name);
        let _ = std::fs::remove_dir_all(&path);
        // Made new here (not through whatever may be at the name), private.
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&path)
                .map_err(|source| ImageError::Dir { path: path.clone(), source })?;
        }
        let partial = ImageDir::open(&path)?;
        Ok(Staging { target, partial, committed: std::cell::Cell::new(false) })
    }

    /// Where the dump writes.
    pub fn partial(&self) -> &ImageDir {
        &self.partial
    }

    /// Where the checkpoint is once committed.
    pub fn target(&self) -> &ImageDir {
        &self.target
    }

    /// Moves the images in: the old checkpoint's inventory goes first (so the
    /// directory is never a complete mix of two), then every old image of a kind
    /// a dump writes (cgroup.img, from cgroup-save, stays), then the new images,
    /// the inventory last.
    pub fn commit(&self) -> Result<(), ImageError> {
        let dir_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ImageError::Dir { path: path.clone(), source }
        };
        let inventory = ImageKind::Inventory.file_name(None);
        // Old images go only where there was a checkpoint (a ccr inventory): in any
        // other directory a `files.img` or `disk.img.tmp` is someone else's.
        let old = self.target.path().join(&inventory);
        if read_body(&old, Some(ImageKind::Inventory)).is_ok() {
            let _ = std::fs::remove_file(&old);
            for e in std::fs::read_dir(self.target.path()).map_err(dir_err(self.target.path()))?.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let kind = ImageKind::from_file_name(name.strip_suffix(".tmp").unwrap_or(&name));
                if kind.is_some_and(|k| k != ImageKind::Cgroup) && e.file_type().is_ok_and(|t| !t.is_dir()) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let mut names: Vec<String> = std::fs::read_dir(self.partial.path())
            .map_err(dir_err(self.partial.path()))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        // The inventory last: a directory with one is complete.
        names.sort_by_key(|n| *n == inventory);
        for n in names {
            let to = self.target.path().join(&n);
            std::fs::rename(self.partial.path().join(&n), &to).map_err(|source| ImageError::Io { path: to, source })?;
        }
        self.committed.set(true);
        let _ = std::fs::remove_dir(self.partial.path());
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed.get() {
            let _ = std::fs::remove_dir_all(self.partial.path());
        }
    }
}
