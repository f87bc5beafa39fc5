//! signalfd: made again for the same signal set.

use std::os::fd::OwnedFd;

use super::{DumpCx, FdProbe, FileDesc, FileState, OpenCx};
use crate::error::Result;
use crate::image::pb;
use crate::sys::anonfd;

file_kind! { SignalFd: "signalfd", Signalfd, BeforeFork, anon "signalfd";

    fn dump(&self, _cx: &mut DumpCx<'_>, p: &FdProbe, _id: u32) -> Result<FileState> {
        let sigmask = p.need(p.info.num("sigmask", 16), "sigmask")?;
        Ok(FileState::Signalfd(pb::SignalFd { sigmask }))
    }

    fn open(&self, _cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
        let FileState::Signalfd(s) = &f.state else { unreachable!("owned by SignalFd") };
        Ok(anonfd::signalfd(s.sigmask, f.nonblock())?)
    }
}
