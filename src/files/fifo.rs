//! FIFOs: opened again by path; the bytes queued in one go back in through the
//! opener of its first description.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use super::{DumpCx, FdProbe, FileDesc, FileState, OpenCx};
use crate::error::Result;
use crate::image::pb;
use crate::sys::fd;

file_kind! { Fifo: "FIFO", Fifo, InTask;

    fn claims(&self, p: &FdProbe) -> bool {
        p.md.file_type().is_fifo() && !p.target.starts_with("pipe:[")
    }

    fn dump(&self, cx: &mut DumpCx<'_>, p: &FdProbe, _id: u32) -> Result<FileState> {
        let path = p.path("FIFO")?;
        let pipe_id = super::pipe::save_contents(cx, p)?;
        Ok(FileState::Fifo(pb::FifoFile { path, pipe_id }))
    }

    fn open(&self, cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
        let FileState::Fifo(ff) = &f.state else { unreachable!("owned by Fifo") };
        let path = Path::new(&ff.path);
        // A read-write opener first, so neither side blocks on open; it puts the
        // saved bytes in when this is the first description of the FIFO.
        let keeper = fd::open(path, libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC, 0)?;
        let first = cx.image.files.iter().find(|g| matches!(&g.state, FileState::Fifo(o) if o.pipe_id == ff.pipe_id));
        if first.map(|g| g.id) == Some(f.id) {
            if let Some(d) = cx.image.pipes.iter().find(|d| d.id == ff.pipe_id) {
                fd::write_all(keeper.as_fd(), &d.data)?;
            }
        }
        let out = fd::open(path, f.access() | libc::O_NONBLOCK | libc::O_CLOEXEC, 0)?;
        super::set_status(&out, f)?;
        Ok(out)
    }
}
