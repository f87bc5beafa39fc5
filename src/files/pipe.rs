//! Anonymous pipes. The dump saves each pipe's queued bytes and capacity once
//! (Files.pipes, read with tee so the pipe stays as it was); restore makes the pipe
//! again, filled, and hands its ends to the descriptions of it.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::{DumpCx, FdProbe, FileDesc, FileState, OpenCx};
use crate::error::Result;
use crate::image::pb;
use crate::restore::RestoreError;
use crate::sys::{fd, pipe};

/// The id of the pipe (or FIFO) behind the fd; its contents are saved the first
/// time it is met. Ids are per object (device and inode: a pipe's inode number
/// can equal a FIFO's on another filesystem).
pub fn save_contents(cx: &mut DumpCx<'_>, p: &FdProbe) -> Result<u64> {
    let (id, new) = cx.pipe_id(p.md.dev(), p.md.ino());
    if new {
        let (capacity, data) = pipe::peek(p.pid, p.fd)?;
        crate::debug!(cx.log, "pid {} fd {}: pipe {id}, {} bytes queued, capacity {capacity}", p.pid, p.fd, data.len());
        cx.state.pipes.push(pb::PipeData { id, capacity, data });
    }
    Ok(id)
}

/// Both ends of one pipe made again; `used`: an end already handed out.
#[derive(Default)]
struct Ends {
    ends: Option<[OwnedFd; 2]>,
    used: [bool; 2],
}

file_kind! { Pipe: "pipe", Pipe, BeforeFork;

    fn claims(&self, p: &FdProbe) -> bool {
        p.md.file_type().is_fifo() && p.target.starts_with("pipe:[")
    }

    fn dump(&self, cx: &mut DumpCx<'_>, p: &FdProbe, _id: u32) -> Result<FileState> {
        let pipe_id = save_contents(cx, p)?;
        Ok(FileState::Pipe(pb::PipeEnd { pipe_id }))
    }

    fn open(&self, cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
        let FileState::Pipe(end) = &f.state else { unreachable!("owned by Pipe") };
        let data = cx.image.pipes.iter().find(|d| d.id == end.pipe_id).ok_or_else(|| RestoreError::Unsupported {
            pid: f.owner_pid,
            what: format!("file {}: pipe {} has no saved contents", f.id, end.pipe_id),
        })?;
        let (capacity, bytes) = (data.capacity, data.data.clone());
        let obj: &mut Ends = cx.object("pipe", end.pipe_id);
        if obj.ends.is_none() {
            let (r, w) = pipe::pipe_with_capacity(capacity)?;
            fd::write_all(w.as_fd(), &bytes)?;
            obj.ends = Some([r, w]);
        }
        let which = usize::from(f.access() == libc::O_WRONLY);
        let ends = obj.ends.as_ref().expect("made above");
        let out = if !obj.used[which] {
            obj.used[which] = true;
            ends[which].try_clone().map_err(|e| crate::sys::SysError::Call {
                call: "dup(pipe end)",
                errno: crate::sys::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            })?
        } else {
            // Another description of the same end: open the pipe again.
            fd::reopen(ends[which].as_fd(), f.access() | libc::O_NONBLOCK | libc::O_CLOEXEC)?
        };
        super::set_status(&out, f)?;
        Ok(out)
    }
}
