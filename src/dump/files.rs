//! Open files. Every open file description of the checkpoint gets an id in one table
//! (files.img); each task's fd table (fds-PID.img) maps fd numbers to those ids.
//! Descriptions shared by several fds or tasks (dup, fork) are found with kcmp, so
//! restore can share them again (one offset, one pipe end).

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use crate::dump::{DumpCtx, DumpError};
use crate::error::Result;
use crate::image::pb::{self, FdKind};
use crate::sys::{pipe, proc, process, unix_sock, SysError};

#[derive(Default)]
pub struct FileTable {
    pub files: Vec<pb::FileDesc>,
    /// For each file id, one (pid, fd) that holds it, for kcmp.
    holders: Vec<(i32, i32)>,
    pub pipes: Vec<pb::Pipe>,
    pipes_seen: HashSet<u64>,
    /// Unix sockets of the namespace (sock_diag), read on first need.
    unix: Option<HashMap<u32, unix_sock::UnixInfo>>,
}

impl FileTable {
    /// Every unix socket must have its peer in the checkpoint too.
    pub fn check_peers(&self) -> Result<()> {
        for (i, f) in self.files.iter().enumerate() {
            if f.kind == FdKind::FdUnix as i32 && !self.files.iter().any(|g| g.sock_ino == f.peer_ino) {
                let (pid, fd) = self.holders[i];
                return Err(DumpError::UnsupportedFd {
                    pid,
                    fd,
                    kind: "unix socket connected to a process outside the checkpoint".into(),
                    path: format!("socket:[{}]", f.sock_ino),
                }
                .into());
            }
        }
        Ok(())
    }

    /// Collects the fd table of `pid`, adding new open file descriptions.
    pub fn collect_task(&mut self, ctx: &mut DumpCtx<'_>, pid: i32) -> Result<pb::Fds> {
        let mut fds = Vec::new();
        for fd in proc::fds(pid)? {
            let link_path = format!("/proc/{pid}/fd/{fd}");
            let target = proc::readlink(&link_path)?;
            let unsupported =
                |kind: &str| DumpError::UnsupportedFd { pid, fd, kind: kind.into(), path: target.clone() };
            let md = std::fs::metadata(&link_path).map_err(SysError::path("stat", &link_path))?;
            let info = proc::fdinfo(pid, fd)?;
            let anon = target.strip_prefix("anon_inode:").map(|k| k.trim_start_matches('[').trim_end_matches(']'));
            let anon_kind = match anon {
                None => None,
                Some("eventfd") => Some(FdKind::FdEventfd),
                Some("timerfd") => Some(FdKind::FdTimerfd),
                Some("signalfd") => Some(FdKind::FdSignalfd),
                Some("eventpoll") => Some(FdKind::FdEpoll),
                Some("inotify") => Some(FdKind::FdInotify),
                Some(other) => return Err(unsupported(&format!("anonymous inode {other}")).into()),
            };
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
                fds.push(pb::Fd { fd, file_id, cloexec });
                continue;
            }
            let ft = md.file_type();
            let is_pipe = target.starts_with("pipe:[");
            let kind = if let Some(k) = anon_kind {
                k
            } else if ft.is_fifo() && is_pipe {
                FdKind::FdPipe
            } else if ft.is_fifo() {
                FdKind::FdFifo
            } else if ft.is_socket() {
                FdKind::FdUnix
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
            let pathless = is_pipe || anon_kind.is_some() || kind == FdKind::FdUnix;
            let deleted = kind == FdKind::FdReg && target.ends_with(" (deleted)") && target.starts_with('/');
            if !pathless && !deleted && (target.ends_with(" (deleted)") || !target.starts_with('/')) {
                return Err(unsupported(if target.ends_with(" (deleted)") {
                    "deleted file"
                } else {
                    "file without a path"
                })
                .into());
            }
            let pipe_ino = if matches!(kind, FdKind::FdPipe | FdKind::FdFifo) { md.ino() } else { 0 };
            if pipe_ino != 0 && self.pipes_seen.insert(pipe_ino) {
                let (capacity, data) = pipe::peek(pid, fd)?;
                crate::debug!(
                    ctx.log,
                    "pid {pid} fd {fd}: pipe {pipe_ino}, {} bytes queued, capacity {capacity}",
                    data.len()
                );
                self.pipes.push(pb::Pipe { ino: pipe_ino, capacity, data });
            }
            let id = self.files.len() as u32 + 1;
            crate::debug!(
                ctx.log,
                "pid {pid} fd {fd}: file {id} {kind:?} {target} pos {} flags {:o}",
                info.pos,
                info.flags
            );
            let mut desc = pb::FileDesc {
                id,
                kind: kind as i32,
                path: if is_pipe || anon_kind.is_some() { String::new() } else { target.clone() },
                flags: info.flags & !(libc::O_CLOEXEC as u32),
                pos: info.pos,
                dev: md.dev(),
                ino: md.ino(),
                mode: md.mode(),
                rdev: md.rdev(),
                size: md.size(),
                external_key: String::new(),
                pipe_ino,
                owner_pid: pid,
                ..Default::default()
            };
            anon_state(&mut desc, kind, &info, pid, fd)?;
            if deleted {
                // Keep its contents: read through the fd's /proc link.
                desc.deleted = true;
                desc.path = target.trim_end_matches(" (deleted)").to_string();
                let ghost = ctx.dir.file(&crate::image::ghost_file_name(id));
                std::fs::copy(&link_path, &ghost)
                    .map_err(|source| DumpError::WritePages { path: ghost.clone(), source })?;
            }
            if kind == FdKind::FdUnix {
                if self.unix.is_none() {
                    self.unix = Some(unix_sock::all()?);
                }
                let u = self.unix.as_ref().and_then(|m| m.get(&(md.ino() as u32))).cloned();
                let u = u.ok_or_else(|| unsupported("socket that is not a unix socket"))?;
                if u.name.is_some() || u.peer == 0 {
                    return Err(unsupported("bound, listening or unconnected unix socket").into());
                }
                let copy = unix_sock::steal_fd(pid, fd)?;
                desc.sock_type = u.sock_type as u32;
                desc.sock_ino = u.ino as u64;
                desc.peer_ino = u.peer as u64;
                desc.sock_queue = unix_sock::peek_queue(&copy, u.sock_type as i32 == libc::SOCK_STREAM)?;
                desc.sock_shutdown = u.shutdown as u32;
                desc.path = String::new();
            }
            self.files.push(desc);
            self.holders.push((pid, fd));
            fds.push(pb::Fd { fd, file_id: id, cloexec });
        }
        Ok(pb::Fds { fds })
    }
}

/// The state of an eventfd, timerfd, signalfd or epoll set, from its fdinfo.
fn anon_state(d: &mut pb::FileDesc, kind: FdKind, fi: &proc::FdInfo, pid: i32, fd: i32) -> Result<()> {
    let bad =
        |what: &str| SysError::Parse { path: format!("/proc/{pid}/fdinfo/{fd}").into(), detail: format!("no {what}") };
    match kind {
        FdKind::FdEventfd => {
            d.eventfd_count = proc::fdinfo_num(fi, "eventfd-count", 16).ok_or_else(|| bad("eventfd-count"))?;
            d.eventfd_semaphore = proc::fdinfo_num(fi, "eventfd-semaphore", 10).unwrap_or(0) != 0;
        }
        FdKind::FdTimerfd => {
            d.timer_clock = proc::fdinfo_num(fi, "clockid", 10).ok_or_else(|| bad("clockid"))? as i32;
            d.timer_ticks = proc::fdinfo_num(fi, "ticks", 10).unwrap_or(0);
            d.timer_value_ns = proc::fdinfo_timespec(fi, "it_value").ok_or_else(|| bad("it_value"))?;
            d.timer_interval_ns = proc::fdinfo_timespec(fi, "it_interval").ok_or_else(|| bad("it_interval"))?;
        }
        FdKind::FdSignalfd => d.sigmask = proc::fdinfo_num(fi, "sigmask", 16).ok_or_else(|| bad("sigmask"))?,
        FdKind::FdInotify => {
            for w in proc::fdinfo_inotify(fi) {
                let path = crate::sys::inotify::handle_path(w.sdev, w.handle_type, &w.handle)?;
                d.inotify.push(pb::InotifyWatch { wd: w.wd, mask: w.mask, path });
            }
        }
        FdKind::FdEpoll => {
            d.epoll = proc::fdinfo_epoll(fi)
                .into_iter()
                .map(|(fd, events, data)| pb::EpollTarget { fd, events, data })
                .collect();
        }
        _ => {}
    }
    Ok(())
}
