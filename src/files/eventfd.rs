//! eventfd: made again holding its count, in semaphore mode if it was.

use std::os::fd::OwnedFd;

use super::{DumpCx, FdProbe, FileDesc, FileState, OpenCx};
use crate::error::Result;
use crate::image::pb;
use crate::sys::anonfd;

file_kind! { EventFd: "eventfd", Eventfd, BeforeFork, anon "eventfd";

    fn dump(&self, _cx: &mut DumpCx<'_>, p: &FdProbe, _id: u32) -> Result<FileState> {
        let count = p.need(p.info.num("eventfd-count", 16), "eventfd-count")?;
        let semaphore = p.info.num("eventfd-semaphore", 10).unwrap_or(0) != 0;
        Ok(FileState::Eventfd(pb::EventFd { count, semaphore }))
    }

    fn open(&self, _cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
        let FileState::Eventfd(e) = &f.state else { unreachable!("owned by EventFd") };
        Ok(anonfd::eventfd(e.count, e.semaphore, f.nonblock())?)
    }
}
