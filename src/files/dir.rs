//! Directories: reopened by path at their offset.

use std::os::fd::OwnedFd;

use super::{DumpCx, FdProbe, FileDesc, FileKind, FileState, OpenCx, Stage};
use crate::error::Result;
use crate::image::pb;

pub struct Dir;

impl FileKind for Dir {
    fn name(&self) -> &'static str {
        "directory"
    }

    fn claims(&self, p: &FdProbe) -> bool {
        p.md.is_dir()
    }

    fn dump(&self, _cx: &mut DumpCx<'_>, p: &FdProbe, _id: u32) -> Result<FileState> {
        if !p.target.starts_with('/') || p.target.ends_with(" (deleted)") {
            return Err(p.refuse("directory without a path (deleted?)"));
        }
        Ok(FileState::Dir(pb::DirFile { path: p.target.clone(), pos: p.info.pos }))
    }

    fn owns(&self, s: &FileState) -> bool {
        matches!(s, FileState::Dir(_))
    }

    fn stage(&self) -> Stage {
        Stage::InTask
    }

    fn open(&self, _cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
        let FileState::Dir(d) = &f.state else { unreachable!("owned by Dir") };
        super::reg::open_at_pos(&d.path, f, d.pos)
    }
}
