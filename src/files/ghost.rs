//! Regular files deleted while open: their contents go into ghost-ID.img; restore
//! makes the file again at its old name (or nameless, O_TMPFILE, when the name is
//! taken), opens it and deletes it again.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use super::{DumpCx, FdProbe, FileDesc, FileState, OpenCx};
use crate::dump::DumpError;
use crate::error::Result;
use crate::image::{pb, ImageError, ImageKind};
use crate::sys::{fd, SysError};

const DELETED: &str = " (deleted)";

file_kind! { Ghost: "deleted file", Ghost, InTask;

    fn claims(&self, p: &FdProbe) -> bool {
        p.md.is_file() && p.target.starts_with('/') && p.target.ends_with(DELETED)
    }

    fn dump(&self, cx: &mut DumpCx<'_>, p: &FdProbe, id: u32) -> Result<FileState> {
        use std::os::unix::fs::MetadataExt;
        if let Some(limit) = cx.state.ghost_limit.filter(|&l| p.md.size() > l) {
            let (pid, fd, path, size) = (p.pid, p.fd, p.target.clone(), p.md.size());
            return Err(DumpError::GhostTooBig { pid, fd, path, size, limit }.into());
        }
        let dest = cx.dir.file(ImageKind::Ghost, Some(id as u64));
        crate::sys::proc::fd::copy_contents(p.pid, p.fd, &dest).map_err(|e| match e {
            SysError::Path { source, .. } => DumpError::WritePages { path: dest, source },
            e => DumpError::WritePages { path: dest, source: std::io::Error::from_raw_os_error(e.errno()) },
        })?;
        // Its contents come back from the image: there is no file to compare with.
        let file = super::reg::fields(p, p.target.trim_end_matches(DELETED).to_string());
        Ok(FileState::Ghost(pb::GhostFile { file: Some(file) }))
    }

    fn open(&self, cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
        let FileState::Ghost(ghost) = &f.state else { unreachable!("owned by Ghost") };
        let g = ghost.file.as_ref().expect("checked when the image was read");
        let (mut src, src_path) = cx.dir.open_raw(ImageKind::Ghost, f.id as u64)?;
        let create = (f.flags as i32 & !libc::O_ACCMODE & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC))
            | libc::O_RDWR
            | libc::O_CLOEXEC;
        let mode = g.mode & 0o7777;
        let path = Path::new(&g.path);
        let made = match fd::open(path, create | libc::O_CREAT | libc::O_EXCL, mode) {
            Ok(made) => {
                let _ = std::fs::remove_file(path);
                made
            }
            Err(_) => {
                let parent = path.parent().unwrap_or(Path::new("/"));
                fd::open(parent, libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC, mode)?
            }
        };
        let mut out = std::fs::File::from(made);
        std::io::copy(&mut src, &mut out).map_err(|source| ImageError::Io { path: src_path, source })?;
        let made = OwnedFd::from(out);
        // The same access mode as before: reopen through /proc if it was not O_RDWR.
        let fd = if f.access() == libc::O_RDWR {
            made
        } else {
            fd::reopen(made.as_fd(), super::reopen_flags(f) & !libc::O_NOCTTY)?
        };
        fd::lseek(fd.as_fd(), g.pos).map_err(|e| match e {
            SysError::Call { errno, .. } => SysError::Path {
                call: "lseek in ghost file",
                path: g.path.clone().into(),
                source: std::io::Error::from_raw_os_error(errno as i32),
            },
            e => e,
        })?;
        Ok(fd)
    }
}
