//! Open files: number, path, flags, position and close-on-exec of every fd.

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use crate::dump::{DumpCtx, DumpError};
use crate::error::Result;
use crate::image::pb::{self, FdKind};
use crate::sys::{proc, process, SysError};

pub fn collect(ctx: &mut DumpCtx<'_>, pid: i32) -> Result<pb::Fds> {
    let mut fds = Vec::new();
    for fd in proc::fds(pid)? {
        let link_path = format!("/proc/{pid}/fd/{fd}");
        let target = proc::readlink(&link_path)?;
        let unsupported = |kind: &str| DumpError::UnsupportedFd {
            pid,
            fd,
            kind: kind.into(),
            path: target.clone(),
        };
        if let Some(rest) = target.strip_prefix("anon_inode:") {
            return Err(unsupported(&format!("anonymous inode {rest}")).into());
        }
        let md = std::fs::metadata(&link_path).map_err(SysError::path("stat", &link_path))?;
        let ft = md.file_type();
        let kind = if ft.is_fifo() {
            return Err(unsupported("pipe or FIFO").into());
        } else if ft.is_socket() {
            return Err(unsupported("socket").into());
        } else if ft.is_block_device() {
            return Err(unsupported("block device").into());
        } else if ft.is_dir() {
            FdKind::FdDir
        } else if ft.is_char_device() {
            FdKind::FdChr
        } else if ft.is_file() {
            FdKind::FdReg
        } else {
            return Err(unsupported("file of unknown type").into());
        };
        if target.ends_with(" (deleted)") || !target.starts_with('/') {
            return Err(unsupported(if target.ends_with(" (deleted)") {
                "deleted file"
            } else {
                "file without a path"
            })
            .into());
        }
        let info = proc::fdinfo(pid, fd)?;
        let mut dup_of = None;
        for earlier in fds
            .iter()
            .filter(|e: &&pb::Fd| e.dev == md.dev() && e.ino == md.ino() && e.dup_of.is_none())
        {
            if process::same_file(pid, earlier.fd, pid, fd)? {
                dup_of = Some(earlier.fd);
                break;
            }
        }
        crate::debug!(
            ctx.log,
            "pid {pid} fd {fd}: {kind:?} {target} pos {} flags {:o}",
            info.pos,
            info.flags
        );
        fds.push(pb::Fd {
            fd,
            kind: kind as i32,
            path: target,
            flags: info.flags & !(libc::O_CLOEXEC as u32),
            pos: info.pos,
            cloexec: info.flags & libc::O_CLOEXEC as u32 != 0,
            dev: md.dev(),
            ino: md.ino(),
            mode: md.mode(),
            rdev: md.rdev(),
            size: md.size(),
            external_key: String::new(),
            dup_of,
        });
    }
    Ok(pb::Fds { fds })
}
