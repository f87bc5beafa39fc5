//! Regular files opened by path: reopened at their offset with their flags, and
//! refused when the path holds another file now (`stamp` has the rule).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::stamp::{self, May};
use super::{DumpCx, FdProbe, FileDesc, FileState, OpenCx};
use crate::error::Result;
use crate::image::pb;
use crate::restore::RestoreError;
use crate::sys::{fd, proc};

/// What the images keep of a regular file opened at `path`.
pub fn state(p: &FdProbe, path: String, stamps: &mut stamp::Stamps) -> Result<pb::RegFile> {
    let stamp = stamps.take(&proc::fd::link_path(p.pid, p.fd), Some(&p.md))?;
    Ok(pb::RegFile { stamp, ..fields(p, path) })
}

/// What describes the file of `p` at `path`, its stamp aside.
pub fn fields(p: &FdProbe, path: String) -> pb::RegFile {
    pb::RegFile { path, pos: p.info.pos, size: p.md.size(), mode: p.md.mode(), stamp: None, fd: p.fd }
}

/// Reopens a file by path at its saved position (a path-only fd has none).
pub fn open_at_pos(path: &str, f: &FileDesc, pos: u64) -> Result<OwnedFd> {
    let fd = fd::open(Path::new(path), super::reopen_flags(f), 0)?;
    if pos != 0 && f.flags as i32 & libc::O_PATH == 0 {
        fd::lseek(fd.as_fd(), pos)?;
    }
    Ok(fd)
}

/// Refuses `opened` when it is not the file `r` describes. A file opened for
/// writing may have been written since (its mtime), one written only at its end
/// (O_APPEND) may also have grown.
fn check(f: &FileDesc, r: &pb::RegFile, opened: &OwnedFd) -> Result<()> {
    let Some(then) = &r.stamp else { return Ok(()) };
    let may = match (f.access(), f.flags as i32 & libc::O_APPEND != 0) {
        (libc::O_RDONLY, _) => May::Nothing,
        (_, true) => May::Grow,
        (_, false) => May::BeWritten,
    };
    let now = stamp::of_stat(&fd::stat(opened.as_fd())?);
    match stamp::differs(then, &now, may) {
        None => Ok(()),
        Some(differs) => Err(RestoreError::NotTheDumpedFile {
            pid: f.owner_pid,
            path: r.path.clone(),
            at: format!("(fd {})", r.fd),
            differs,
        }
        .into()),
    }
}

file_kind! { Reg: "regular file", Reg, InTask;

    fn claims(&self, p: &FdProbe) -> bool {
        p.md.is_file() && p.target.starts_with('/') && !p.target.ends_with(" (deleted)")
    }

    fn dump(&self, cx: &mut DumpCx<'_>, p: &FdProbe, _id: u32) -> Result<FileState> {
        Ok(FileState::Reg(state(p, p.target.clone(), cx.stamps)?))
    }

    fn open(&self, _cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
        let FileState::Reg(r) = &f.state else { unreachable!("owned by Reg") };
        let opened = open_at_pos(&r.path, f, r.pos)?;
        check(f, r, &opened)?;
        Ok(opened)
    }
}
