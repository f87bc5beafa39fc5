//! External files: something of the host the task holds (the console, a tty a
//! container manager bind-mounted in) that the dump lets go and the caller hands
//! back on restore as an inherited fd (`--inherit-fd fd[N]:KEY`).

use std::os::fd::OwnedFd;

use super::{DumpCx, FdProbe, FileDesc, FileState, OpenCx};
use crate::error::{Error, Result};

file_kind! { External: "external file", External, BeforeFork;

    /// The dump marks no fd external yet (the tty work will); nothing is claimed.
    fn claims(&self, _p: &FdProbe) -> bool {
        false
    }

    fn dump(&self, _cx: &mut DumpCx<'_>, p: &FdProbe, _id: u32) -> Result<FileState> {
        Err(p.refuse("external file"))
    }

    fn open(&self, cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
        let FileState::External(e) = &f.state else { unreachable!("owned by External") };
        let fd = cx.inherited.get(&e.key).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "file {} is the external file {}: hand it over with --inherit-fd fd[N]:{}",
                f.id, e.key, e.key
            ))
        })?;
        fd.try_clone_to_owned().map_err(|e| {
            crate::sys::SysError::Call {
                call: "dup(inherited fd)",
                errno: crate::sys::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EBADF)),
            }
            .into()
        })
    }
}
