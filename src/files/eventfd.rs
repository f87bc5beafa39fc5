//! eventfd: made again holding its count, in semaphore mode if it was.

use std::os::fd::OwnedFd;

use super::{DumpCx, FdProbe, FileDesc, FileKind, FileState, OpenCx, Stage};
use crate::error::Result;
use crate::image::pb;
use crate::sys::anonfd;

pub struct EventFd;

impl FileKind for EventFd {
    fn name(&self) -> &'static str {
        "eventfd"
    }

    fn claims(&self, p: &FdProbe) -> bool {
        p.anon_inode() == Some("eventfd")
    }

    fn dump(&self, _cx: &mut DumpCx<'_>, p: &FdProbe, _id: u32) -> Result<FileState> {
        let count = p.need(p.info.num("eventfd-count", 16), "eventfd-count")?;
        let semaphore = p.info.num("eventfd-semaphore", 10).unwrap_or(0) != 0;
        Ok(FileState::Eventfd(pb::EventFd { count, semaphore }))
    }

    fn owns(&self, s: &FileState) -> bool {
        matches!(s, FileState::Eventfd(_))
    }

    fn stage(&self) -> Stage {
        Stage::BeforeFork
    }

    fn open(&self, _cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
        let FileState::Eventfd(e) = &f.state else { unreachable!("owned by EventFd") };
        Ok(anonfd::eventfd(e.count, e.semaphore, f.nonblock())?)
    }
}
