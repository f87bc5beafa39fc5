//! Open files. Every open file description of the checkpoint gets an id in one table
//! (files.img); each task's fd table (fds-PID.img) maps fd numbers to those ids.
//! Descriptions shared by several fds or tasks (dup, fork) are found with kcmp, so
//! restore can share them again (one offset, one pipe end).

use std::collections::HashSet;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use crate::dump::{DumpCtx, DumpError};
use crate::error::Result;
use crate::image::pb::{self, FdKind};
use crate::sys::{pipe, proc, process, SysError};

#[derive(Default)]
pub struct FileTable {
    pub files: Vec<pb::FileDesc>,
    /// For each file id, one (pid, fd) that holds it, for kcmp.
    holders: Vec<(i32, i32)>,
    pub pipes: Vec<pb::Pipe>,
    pipes_seen: HashSet<u64>,
}

impl FileTable {
    /// Collects the fd table of `pid`, adding new open file descriptions.
    pub fn collect_task(&mut self, ctx: &mut DumpCtx<'_>, pid: i32) -> Result<pb::Fds> {
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
            let info = proc::fdinfo(pid, fd)?;
            let cloexec = info.flags & libc::O_CLOEXEC as u32 != 0;
            // An open file description we have seen (through another fd or task)?
            let mut known = None;
            for (id, f) in self.files.iter().enumerate() {
                if f.dev == md.dev() && f.ino == md.ino() {
                    let (hp, hf) = self.holders[id];
                    if process::same_file(hp, hf, pid, fd)? {
                        known = Some(f.id);
                        break;
                    }
                }
            }
            if let Some(file_id) = known {
                fds.push(pb::Fd {
                    fd,
                    file_id,
                    cloexec,
                });
                continue;
            }
            let ft = md.file_type();
            let is_pipe = target.starts_with("pipe:[");
            let kind = if ft.is_fifo() && is_pipe {
                FdKind::FdPipe
            } else if ft.is_fifo() {
                FdKind::FdFifo
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
            if !is_pipe && (target.ends_with(" (deleted)") || !target.starts_with('/')) {
                return Err(unsupported(if target.ends_with(" (deleted)") {
                    "deleted file"
                } else {
                    "file without a path"
                })
                .into());
            }
            let pipe_ino = if matches!(kind, FdKind::FdPipe | FdKind::FdFifo) {
                md.ino()
            } else {
                0
            };
            if pipe_ino != 0 && self.pipes_seen.insert(pipe_ino) {
                let (capacity, data) = pipe::peek(pid, fd)?;
                crate::debug!(
                    ctx.log,
                    "pid {pid} fd {fd}: pipe {pipe_ino}, {} bytes queued, capacity {capacity}",
                    data.len()
                );
                self.pipes.push(pb::Pipe {
                    ino: pipe_ino,
                    capacity,
                    data,
                });
            }
            let id = self.files.len() as u32 + 1;
            crate::debug!(
                ctx.log,
                "pid {pid} fd {fd}: file {id} {kind:?} {target} pos {} flags {:o}",
                info.pos,
                info.flags
            );
            self.files.push(pb::FileDesc {
                id,
                kind: kind as i32,
                path: if is_pipe {
                    String::new()
                } else {
                    target.clone()
                },
                flags: info.flags & !(libc::O_CLOEXEC as u32),
                pos: info.pos,
                dev: md.dev(),
                ino: md.ino(),
                mode: md.mode(),
                rdev: md.rdev(),
                size: md.size(),
                external_key: String::new(),
                pipe_ino,
            });
            self.holders.push((pid, fd));
            fds.push(pb::Fd {
                fd,
                file_id: id,
                cloexec,
            });
        }
        Ok(pb::Fds { fds })
    }
}
