//! Directories: reopened by path at their offset.

use std::os::fd::OwnedFd;

use super::{DumpCx, FdProbe, FileDesc, FileState, OpenCx};
use crate::error::Result;
use crate::image::pb;

file_kind! { Dir: "directory", Dir, InTask;

    fn claims(&self, p: &FdProbe) -> bool {
        p.md.is_dir()
    }

    fn dump(&self, _cx: &mut DumpCx<'_>, p: &FdProbe, _id: u32) -> Result<FileState> {
        Ok(FileState::Dir(pb::DirFile { path: p.path("directory")?, pos: p.info.pos }))
    }

    fn open(&self, _cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
        let FileState::Dir(d) = &f.state else { unreachable!("owned by Dir") };
        super::reg::open_at_pos(&d.path, f, d.pos)
    }
}
