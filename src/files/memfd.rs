//! memfd fds. The memfd itself (name, size, seals, contents) is a shared memory
//! object (`mm::shmem`), saved once with whatever maps it; its fds open that one
//! object again, so an fd and a mapping of the same memfd stay one file.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use super::{DumpCx, FdProbe, FileDesc, FileState, OpenCx};
use crate::error::Result;
use crate::image::pages::{Dest, CHUNK};
use crate::image::pb;
use crate::restore::RestoreError;
use crate::sys::fd;

/// The name memfd_create got, from the fd's link ("/memfd:NAME (deleted)").
fn name_of(target: &str) -> Option<&str> {
    target.strip_prefix("/memfd:").map(|n| n.strip_suffix(" (deleted)").unwrap_or(n))
}

file_kind! { Memfd: "memfd", Memfd, BeforeFork;

    fn claims(&self, p: &FdProbe) -> bool {
        p.md.is_file() && name_of(&p.target).is_some()
    }

    fn dump(&self, cx: &mut DumpCx<'_>, p: &FdProbe, _id: u32) -> Result<FileState> {
        let id = p.md.ino();
        let name = name_of(&p.target).unwrap_or_default();
        let copy = crate::sys::proc::fd::reopen(p.pid, p.fd, libc::O_RDONLY | libc::O_CLOEXEC)?;
        let seals = fd::seals(copy.as_fd())?;
        if cx.shmem.note_memfd(id, p.md.size(), name, seals) {
            // The whole contents, once; pages a mapping saves are the same bytes.
            let mut off = 0u64;
            loop {
                let mut buf = cx.pages.buffer()?;
                let n = fd::read_at(copy.as_fd(), &mut buf[..CHUNK], off).map_err(|e| crate::sys::SysError::Path {
                    call: "read memfd",
                    path: p.target.clone().into(),
                    source: e,
                })?;
                if n == 0 {
                    cx.pages.submit(Dest::Shmem { id, offset: off }, buf, 0)?;
                    break;
                }
                // Holes stay holes.
                let len = if buf[..n].iter().any(|&b| b != 0) { n } else { 0 };
                cx.pages.submit(Dest::Shmem { id, offset: off }, buf, len)?;
                off += n as u64;
            }
        }
        Ok(FileState::Memfd(pb::MemfdFile { shmem_id: id, pos: p.info.pos }))
    }

    fn open(&self, cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
        let FileState::Memfd(m) = &f.state else { unreachable!("owned by Memfd") };
        let obj = cx.shmem_fds.get(&m.shmem_id).ok_or_else(|| RestoreError::Unsupported {
            pid: f.owner_pid,
            what: format!("file {}: memfd {} has no saved contents", f.id, m.shmem_id),
        })?;
        let out = fd::reopen(obj.as_fd(), super::reopen_flags(f) & !libc::O_NOCTTY)?;
        fd::lseek(out.as_fd(), m.pos)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        assert_eq!(super::name_of("/memfd:buf (deleted)"), Some("buf"));
        assert_eq!(super::name_of("/memfd:a b"), Some("a b"));
        assert_eq!(super::name_of("/tmp/x"), None);
    }
}
