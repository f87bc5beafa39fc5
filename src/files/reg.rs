//! Regular files opened by path: reopened at their offset with their flags.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::{DumpCx, FdProbe, FileDesc, FileState, OpenCx};
use crate::error::Result;
use crate::image::pb;
use crate::sys::fd;

/// What the images keep of a regular file opened at `path`.
pub fn state(p: &FdProbe, path: String) -> pb::RegFile {
    pb::RegFile { path, pos: p.info.pos, size: p.md.size(), mode: p.md.mode() }
}

/// Reopens a file by path at its saved position (a path-only fd has none).
pub fn open_at_pos(path: &str, f: &FileDesc, pos: u64) -> Result<OwnedFd> {
    let fd = fd::open(Path::new(path), super::reopen_flags(f), 0)?;
    if pos != 0 && f.flags as i32 & libc::O_PATH == 0 {
        fd::lseek(fd.as_fd(), pos)?;
    }
    Ok(fd)
}

file_kind! { Reg: "regular file", Reg, InTask;

    fn claims(&self, p: &FdProbe) -> bool {
        p.md.is_file() && p.target.starts_with('/') && !p.target.ends_with(" (deleted)")
    }

    fn dump(&self, _cx: &mut DumpCx<'_>, p: &FdProbe, _id: u32) -> Result<FileState> {
        Ok(FileState::Reg(state(p, p.target.clone())))
    }

    fn open(&self, _cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
        let FileState::Reg(r) = &f.state else { unreachable!("owned by Reg") };
        open_at_pos(&r.path, f, r.pos)
    }
}
