//! epoll sets: made empty before the tree is forked; the task that owns the set
//! registers its targets again once its fds are in place (the registrations name
//! fd numbers of that task).

use std::os::fd::OwnedFd;

use super::{DumpCx, FdProbe, FileDesc, FileState, OpenCx};
use crate::error::Result;
use crate::image::pb;
use crate::sys::{anonfd, fd};

file_kind! { Epoll: "epoll", Epoll, BeforeFork, anon "eventpoll";

    fn dump(&self, _cx: &mut DumpCx<'_>, p: &FdProbe, _id: u32) -> Result<FileState> {
        let targets =
            p.info.epoll_targets().into_iter().map(|(fd, events, data)| pb::EpollTarget { fd, events, data }).collect();
        Ok(FileState::Epoll(pb::EpollFile { targets }))
    }

    fn open(&self, _cx: &mut OpenCx<'_>, _f: &FileDesc) -> Result<OwnedFd> {
        Ok(anonfd::epoll_create()?)
    }

    fn installed(&self, f: &FileDesc, epfd: i32) -> Result<()> {
        let FileState::Epoll(e) = &f.state else { unreachable!("owned by Epoll") };
        for t in &e.targets {
            anonfd::epoll_add(fd::installed(epfd), t.fd, t.events, t.data)?;
        }
        Ok(())
    }
}
