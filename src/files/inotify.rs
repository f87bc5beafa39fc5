//! inotify: each watch is saved as the path of the inode it watches (resolved from
//! the kernel's file handle through the task's own mounts) and made again, by path
//! inside the restored task, with the same watch descriptor.

use std::os::fd::OwnedFd;

use super::{DumpCx, FdProbe, FileDesc, FileState, OpenCx};
use crate::error::Result;
use crate::image::pb;
use crate::sys::inotify::{self, Watch};

file_kind! { Inotify: "inotify", Inotify, InTask, anon "inotify";

    fn dump(&self, _cx: &mut DumpCx<'_>, p: &FdProbe, _id: u32) -> Result<FileState> {
        let mut watches = Vec::new();
        for w in p.info.inotify_watches() {
            let path = inotify::handle_path(p.pid, w.sdev, w.handle_type, &w.handle)?;
            watches.push(pb::InotifyWatch { wd: w.wd, mask: w.mask, path });
        }
        Ok(FileState::Inotify(pb::InotifyFile { watches }))
    }

    fn open(&self, _cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
        let FileState::Inotify(i) = &f.state else { unreachable!("owned by Inotify") };
        let watches: Vec<Watch> =
            i.watches.iter().map(|w| Watch { wd: w.wd, mask: w.mask, path: w.path.clone() }).collect();
        Ok(inotify::create(f.nonblock(), &watches)?)
    }
}
