//! What several fds or tasks share is created once, in ccr, before the tree is
//! forked: every open file description (files at their offset, pipes with their
//! contents and capacity, FIFOs) and every shared memory object (a memfd with the
//! saved pages). The restore children inherit them at high fd numbers and dup3 what
//! they need into place, so sharing (one offset, one pipe) comes back by itself.

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

use crate::error::Result;
use crate::image::pb::{self, FdKind};
use crate::image::ImageDir;
use crate::restore::RestoreError;
use crate::sys::{anonfd, files, pipe, unix_sock, SysError};

/// Status flags fcntl(F_SETFL) can change on an open file.
const SETFL_MASK: u32 = (libc::O_APPEND | libc::O_NONBLOCK | libc::O_ASYNC | libc::O_DIRECT | libc::O_NOATIME) as u32;

pub struct Inherited {
    /// file id → fd in ccr (and so in every restore child).
    pub files: HashMap<u32, RawFd>,
    /// shmem id → memfd.
    pub shmems: HashMap<u64, RawFd>,
    /// Held open in ccr until the tree is forked (the children close what they do
    /// not use); dropping them closes ccr's copies.
    _held: Vec<OwnedFd>,
}

fn nonblock(f: &pb::FileDesc) -> bool {
    f.flags as i32 & libc::O_NONBLOCK != 0
}

/// Moves a fresh fd to ≥ `base` and keeps it.
fn keep(owned: &mut Vec<OwnedFd>, fd: RawFd, base: RawFd) -> Result<RawFd> {
    let high = files::dup_at_least(fd, base)?;
    files::close(fd);
    // SAFETY: `high` was just created by F_DUPFD and is owned by nobody else.
    owned.push(unsafe { OwnedFd::from_raw_fd(high) });
    Ok(high)
}

pub fn prepare(dir: &ImageDir, img: &pb::Files, base: RawFd) -> Result<Inherited> {
    files::ensure_nofile(base as u64 + 2 * (img.files.len() + img.shmems.len()) as u64 + 64)?;
    let mut owned = Vec::new();
    let mut by_id = HashMap::new();
    // Pipes: both ends, filled; descriptions hand out these ends first, then reopen.
    let mut pipe_ends: HashMap<u64, (RawFd, RawFd, bool, bool)> = HashMap::new();
    // Anonymous pipes here; a FIFO's contents go in through its first opener below.
    let anonymous = |ino: u64| img.files.iter().any(|f| f.pipe_ino == ino && f.kind == FdKind::FdPipe as i32);
    for p in img.pipes.iter().filter(|p| anonymous(p.ino)) {
        let (r, w) = pipe::pipe_with_capacity(p.capacity)?;
        pipe::fill(w.as_raw_fd(), &p.data)?;
        let r = keep(&mut owned, r.into_raw_fd(), base)?;
        let w = keep(&mut owned, w.into_raw_fd(), base)?;
        pipe_ends.insert(p.ino, (r, w, false, false));
    }
    // Socket pairs: the first end met creates the pair; the peer's end waits here.
    let mut peer_ends: HashMap<u64, RawFd> = HashMap::new();
    for f in &img.files {
        let kind = FdKind::try_from(f.kind).unwrap_or(FdKind::FdReg);
        let acc = f.flags as i32 & libc::O_ACCMODE;
        let fd = match kind {
            FdKind::FdReg if f.deleted => {
                let fd = ghost(dir, f)?;
                if f.pos != 0 {
                    files::lseek(fd, f.pos)?;
                }
                keep(&mut owned, fd, base)?
            }
            FdKind::FdReg | FdKind::FdDir | FdKind::FdChr => {
                let fd = files::open_raw(&f.path, f.flags as i32 | libc::O_NOCTTY | libc::O_CLOEXEC, 0)?;
                if kind != FdKind::FdChr && f.pos != 0 && f.flags as i32 & libc::O_PATH == 0 {
                    files::lseek(fd, f.pos)?;
                }
                keep(&mut owned, fd, base)?
            }
            FdKind::FdPipe => {
                let ends = pipe_ends.get_mut(&f.pipe_ino).ok_or_else(|| RestoreError::Unsupported {
                    pid: 0,
                    what: format!("file {}: pipe {} has no saved contents", f.id, f.pipe_ino),
                })?;
                let (end, used) = if acc == libc::O_WRONLY { (ends.1, &mut ends.3) } else { (ends.0, &mut ends.2) };
                let fd = if !*used {
                    *used = true;
                    end
                } else {
                    // Another description of the same end: open the pipe again.
                    let again =
                        files::open_raw(&format!("/proc/self/fd/{end}"), acc | libc::O_NONBLOCK | libc::O_CLOEXEC, 0)?;
                    keep(&mut owned, again, base)?
                };
                pipe::set_status_flags(fd, (f.flags & SETFL_MASK) as i32)?;
                fd
            }
            FdKind::FdFifo => {
                // A read-write opener first, so neither side blocks on open.
                if let std::collections::hash_map::Entry::Vacant(slot) = pipe_ends.entry(f.pipe_ino) {
                    let keeper = files::open_raw(&f.path, libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC, 0)?;
                    let keeper = keep(&mut owned, keeper, base)?;
                    if let Some(p) = img.pipes.iter().find(|p| p.ino == f.pipe_ino) {
                        pipe::fill(keeper, &p.data)?;
                    }
                    slot.insert((keeper, keeper, true, true));
                }
                let fd = files::open_raw(&f.path, acc | libc::O_NONBLOCK | libc::O_CLOEXEC, 0)?;
                let fd = keep(&mut owned, fd, base)?;
                pipe::set_status_flags(fd, (f.flags & SETFL_MASK) as i32)?;
                fd
            }
            FdKind::FdEventfd => {
                let fd = anonfd::eventfd(f.eventfd_count, f.eventfd_semaphore, nonblock(f))?;
                keep(&mut owned, fd, base)?
            }
            FdKind::FdTimerfd => {
                let fd =
                    anonfd::timerfd(f.timer_clock, nonblock(f), f.timer_value_ns, f.timer_interval_ns, f.timer_ticks)?;
                keep(&mut owned, fd, base)?
            }
            FdKind::FdSignalfd => keep(&mut owned, anonfd::signalfd(f.sigmask, nonblock(f))?, base)?,
            FdKind::FdInotify => {
                let watches: Vec<(i32, u32, String)> =
                    f.inotify.iter().map(|w| (w.wd, w.mask, w.path.clone())).collect();
                keep(&mut owned, crate::sys::inotify::create(nonblock(f), &watches)?, base)?
            }
            // Registrations are made by the owner task once its fds are in place.
            FdKind::FdEpoll => keep(&mut owned, anonfd::epoll_create()?, base)?,
            FdKind::FdUnix => match peer_ends.remove(&f.sock_ino) {
                Some(fd) => fd,
                None => {
                    let peer =
                        img.files.iter().find(|g| g.sock_ino == f.peer_ino && g.kind == f.kind).ok_or_else(|| {
                            RestoreError::Unsupported {
                                pid: f.owner_pid,
                                what: format!("unix socket {} without its peer", f.sock_ino),
                            }
                        })?;
                    let (a, b) = unix_sock::socketpair(f.sock_type as i32)?;
                    // What sat in one end's receive queue is sent from the other end.
                    for m in &f.sock_queue {
                        unix_sock::send_all(b.as_raw_fd(), m)?;
                    }
                    for m in &peer.sock_queue {
                        unix_sock::send_all(a.as_raw_fd(), m)?;
                    }
                    let a = keep(&mut owned, a.into_raw_fd(), base)?;
                    let b = keep(&mut owned, b.into_raw_fd(), base)?;
                    for (fd, d) in [(a, f), (b, peer)] {
                        unix_sock::shutdown(fd, (d.sock_shutdown & 2) as u8)?;
                        pipe::set_status_flags(fd, (d.flags & SETFL_MASK) as i32)?;
                    }
                    peer_ends.insert(peer.sock_ino, b);
                    a
                }
            },
            FdKind::FdExternal => {
                return Err(RestoreError::Unsupported {
                    pid: 0,
                    what: format!("external file {} ({})", f.id, f.external_key),
                }
                .into())
            }
        };
        by_id.insert(f.id, fd);
    }
    let mut shmems = HashMap::new();
    for s in &img.shmems {
        let fd = files::memfd("ccr-shmem", s.size)?;
        let fd = keep(&mut owned, fd, base)?;
        copy_sparse(&dir.file(&crate::image::shmem_file_name(s.id)), fd)?;
        shmems.insert(s.id, fd);
    }
    Ok(Inherited { files: by_id, shmems, _held: owned })
}

/// Copies a (sparse) image file into the memfd, skipping all-zero chunks.
fn copy_sparse(path: &std::path::Path, fd: RawFd) -> Result<()> {
    let mut src = std::fs::File::open(path).map_err(SysError::path("open", path))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0u64;
    loop {
        let n = src.read(&mut buf).map_err(SysError::path("read", path))?;
        if n == 0 {
            return Ok(());
        }
        if buf[..n].iter().any(|&b| b != 0) {
            files::write_at(fd, &buf[..n], off).map_err(SysError::path("write memfd for", path))?;
        }
        off += n as u64;
    }
}

/// A file that was deleted while open: made again from ghost-ID.img at its old name
/// (or nameless, O_TMPFILE, when the name is taken), opened, and deleted again.
fn ghost(dir: &ImageDir, f: &pb::FileDesc) -> Result<RawFd> {
    let src = dir.file(&crate::image::ghost_file_name(f.id));
    let data = std::fs::read(&src).map_err(SysError::path("read", &src))?;
    let acc_rw = (f.flags as i32 & !libc::O_ACCMODE & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC)) | libc::O_RDWR;
    let mode = f.mode & 0o7777;
    let fd = match files::open_raw(&f.path, acc_rw | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC, mode) {
        Ok(fd) => {
            let _ = std::fs::remove_file(&f.path);
            fd
        }
        Err(_) => {
            let parent = std::path::Path::new(&f.path)
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|| "/".into());
            files::open_raw(&parent, libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC, mode)?
        }
    };
    files::write_at(fd, &data, 0).map_err(|e| SysError::Path {
        call: "write ghost file",
        path: f.path.clone().into(),
        source: e,
    })?;
    // The same access mode as before: reopen through /proc if it was not O_RDWR.
    let acc = f.flags as i32 & libc::O_ACCMODE;
    if acc == libc::O_RDWR {
        return Ok(fd);
    }
    let flags = (f.flags as i32 & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC)) | libc::O_CLOEXEC;
    let again = files::open_raw(&format!("/proc/self/fd/{fd}"), flags, 0)?;
    files::close(fd);
    Ok(again)
}
