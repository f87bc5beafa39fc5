//! Character devices: reopened by path, and refused when the path is now another
//! device than the one the task had open.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::{DumpCx, FdProbe, FileDesc, FileState, OpenCx};
use crate::error::Result;
use crate::image::pb;
use crate::restore::RestoreError;
use crate::sys::fd;

fn dev_name(rdev: u64) -> String {
    format!("{}:{}", libc::major(rdev), libc::minor(rdev))
}

file_kind! { Chr: "character device", Chr, InTask;

    fn claims(&self, p: &FdProbe) -> bool {
        p.md.file_type().is_char_device() && p.anon_inode().is_none()
    }

    /// /dev/tty is the controlling terminal of the session that opens it.
    fn after_ctty(&self, f: &FileDesc) -> bool {
        matches!(&f.state, FileState::Chr(c) if c.rdev == libc::makedev(5, 0))
    }

    fn dump(&self, _cx: &mut DumpCx<'_>, p: &FdProbe, _id: u32) -> Result<FileState> {
        // A pty master reopened by path is a new pty: the pair, its slave and the
        // bytes in it would be gone (ptys are not saved yet).
        if p.md.rdev() == libc::makedev(5, 2) {
            return Err(p.refuse("pty master"));
        }
        Ok(FileState::Chr(pb::ChrFile { path: p.path("character device")?, rdev: p.md.rdev() }))
    }

    fn open(&self, _cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
        let FileState::Chr(c) = &f.state else { unreachable!("owned by Chr") };
        let opened = fd::open(Path::new(&c.path), super::reopen_flags(f), 0)?;
        let st = fd::stat(opened.as_fd())?;
        if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != c.rdev {
            return Err(RestoreError::Unsupported {
                pid: f.owner_pid,
                what: format!(
                    "file {}: {} is device {} now, the checkpoint had device {}",
                    f.id,
                    c.path,
                    dev_name(st.st_rdev),
                    dev_name(c.rdev)
                ),
            }
            .into());
        }
        Ok(opened)
    }
}
