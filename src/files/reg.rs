//! Regular files opened by path: reopened at their offset with their flags.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::{DumpCx, FdProbe, FileDesc, FileKind, FileState, OpenCx, Stage};
use crate::error::Result;
use crate::image::pb;
use crate::sys::fd;

pub struct Reg;

/// Reopens a file by path at its saved position (a path-only fd has none).
pub fn open_at_pos(path: &str, f: &FileDesc, pos: u64) -> Result<OwnedFd> {
    let fd = fd::open(Path::new(path), super::reopen_flags(f), 0)?;
    if pos != 0 && f.flags as i32 & libc::O_PATH == 0 {
        fd::lseek(fd.as_fd(), pos)?;
    }
    Ok(fd)
}

impl FileKind for Reg {
    fn name(&self) -> &'static str {
        "regular file"
    }

    fn claims(&self, p: &FdProbe) -> bool {
        p.md.is_file() && p.target.starts_with('/') && !p.target.ends_with(" (deleted)")
    }

    fn dump(&self, _cx: &mut DumpCx<'_>, p: &FdProbe, _id: u32) -> Result<FileState> {
        Ok(FileState::Reg(pb::RegFile {
            path: p.target.clone(),
            pos: p.info.pos,
            size: p.md.size(),
            mode: p.md.mode(),
        }))
    }

    fn owns(&self, s: &FileState) -> bool {
        matches!(s, FileState::Reg(_))
    }

    fn stage(&self) -> Stage {
        Stage::InTask
    }

    fn open(&self, _cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
        let FileState::Reg(r) = &f.state else { unreachable!("owned by Reg") };
        open_at_pos(&r.path, f, r.pos)
    }
}
