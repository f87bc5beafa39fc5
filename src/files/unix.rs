//! Unix sockets: connected, unnamed pairs with both ends in the checkpoint, with
//! the messages queued in each (peeked, not consumed). The first end restore
//! meets makes the pair; its peer takes the other end. A socket bound to a name
//! and not connected (a datagram socket such as syslog's /dev/log, with its
//! queued messages; a listener with no connection waiting) is bound again where
//! its name is (`UnixBound`, opened in the task's mount namespace), its file
//! with its mode and owner. Connected named sockets (an accepted connection),
//! a listener with connections waiting, unconnected unnamed sockets, sockets
//! whose peer is outside the checkpoint and sockets of another network namespace
//! than ccr's (restore makes them in ccr's) are refused by name.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::table::FileTable;
use super::{DumpCx, FdProbe, FileDesc, FileState, OpenCx};
use crate::dump::DumpError;
use crate::error::Result;
use crate::image::pb::{self, SockType};
use crate::restore::RestoreError;
use crate::sys::{pidfd, unix_sock};

/// The socket(2) type of a saved socket (checked when the image was read).
pub fn sock_type(t: i32) -> i32 {
    match SockType::try_from(t) {
        Ok(SockType::Dgram) => libc::SOCK_DGRAM,
        Ok(SockType::Seqpacket) => libc::SOCK_SEQPACKET,
        _ => libc::SOCK_STREAM,
    }
}

fn image_type(t: u8) -> Option<SockType> {
    match t as i32 {
        libc::SOCK_STREAM => Some(SockType::Stream),
        libc::SOCK_DGRAM => Some(SockType::Dgram),
        libc::SOCK_SEQPACKET => Some(SockType::Seqpacket),
        _ => None,
    }
}

/// sock_diag's state of a connected unix socket, and of a listener.
const TCP_ESTABLISHED: u8 = 1;
const TCP_LISTEN: u8 = 10;

/// A named socket that is not connected, or a refusal naming what it is.
fn bound(p: &FdProbe, copy: std::os::fd::BorrowedFd<'_>, u: &unix_sock::UnixInfo, name: &[u8]) -> Result<FileState> {
    use std::os::unix::ffi::OsStrExt;
    // A path as bound may carry its terminating NUL (an abstract name's are its own).
    let name = if name.first() == Some(&0) { name } else { name.split(|&c| c == 0).next().unwrap_or(name) };
    let ty = image_type(u.sock_type).ok_or_else(|| p.refuse(&format!("unix socket of type {}", u.sock_type)))?;
    let shown = String::from_utf8_lossy(name.strip_prefix(b"\0").unwrap_or(name)).into_owned();
    let listening = ty != SockType::Dgram && u.state == TCP_LISTEN;
    if !(listening || (ty == SockType::Dgram && u.peer == 0)) {
        return Err(p.refuse(&format!("connected unix socket bound to {shown}")));
    }
    if listening && u.rqlen.0 > 0 {
        let what = format!("unix socket listening on {shown} with {} connections not accepted yet", u.rqlen.0);
        return Err(p.refuse(&what));
    }
    let mut s = pb::UnixBoundSocket {
        r#type: ty as i32,
        name: name.to_vec(),
        listening,
        backlog: u.rqlen.1,
        ..Default::default()
    };
    if name.first() != Some(&0) {
        if name.first() != Some(&b'/') {
            return Err(p.refuse(&format!("unix socket bound to the relative path {shown}")));
        }
        // Its file, as the task sees it: still this socket's (not removed or
        // replaced since the bind), whose mode and owner come back with it.
        let at = std::path::Path::new(&format!("/proc/{}/root", p.pid)).join(std::ffi::OsStr::from_bytes(&name[1..]));
        let md = std::fs::symlink_metadata(&at).ok().filter(|md| md.file_type().is_socket());
        let same = md.as_ref().is_some_and(|md| u.vfs == Some((md.dev(), md.ino() as u32)));
        let Some(md) = md.filter(|_| same) else {
            return Err(p.refuse(&format!("unix socket bound to {shown}, whose file was removed or replaced")));
        };
        (s.mode, s.uid, s.gid) = (md.mode() & 0o7777, md.uid(), md.gid());
    }
    if ty == SockType::Dgram {
        s.queue = unix_sock::peek_queue(copy, false)?;
    }
    Ok(FileState::UnixBound(s))
}

file_kind! { Unix: "unix socket", Unix, BeforeFork;

    fn claims(&self, p: &FdProbe) -> bool {
        p.md.file_type().is_socket()
    }

    fn dump(&self, cx: &mut DumpCx<'_>, p: &FdProbe, _id: u32) -> Result<FileState> {
        let copy = pidfd::getfd(p.pid, p.fd)?;
        // sock_diag lists the sockets of ccr's network namespace only. Restore makes
        // sockets in ccr before the fork, in that namespace: one made in another
        // (the tree's own) would come back in the wrong one.
        let u = cx.unix_sockets()?.get(&(p.md.ino() as u32)).cloned();
        let Some(u) = u else {
            let what = unix_sock::describe(copy.as_fd());
            if !unix_sock::in_callers_net_ns(copy.as_fd())? {
                return Err(p.refuse(&format!("{what} of another network namespace than ccr's (the tree's own)")));
            }
            return Err(p.refuse(&what));
        };
        // A socket pair's end whose peer was closed stays connected to nobody
        // (ESTABLISHED, no peer); a socket that never connected is not.
        let orphan = u.name.is_none() && u.peer == 0 && u.state == TCP_ESTABLISHED;
        if let Some(name) = &u.name {
            return bound(p, copy.as_fd(), &u, name);
        }
        if u.peer == 0 && !orphan {
            return Err(p.refuse("unconnected unix socket"));
        }
        let ty = image_type(u.sock_type).ok_or_else(|| p.refuse(&format!("unix socket of type {}", u.sock_type)))?;
        let queue = unix_sock::peek_queue(copy.as_fd(), ty == SockType::Stream)?;
        Ok(FileState::Unix(pb::UnixSocket {
            r#type: ty as i32,
            ino: u.ino as u64,
            peer_ino: u.peer as u64,
            queue,
            shutdown: u.shutdown as u32,
        }))
    }

    /// Every socket's peer must be in the checkpoint too (but a closed one's).
    fn finish_dump(&self, t: &FileTable) -> Result<()> {
        let ino = |f: &FileDesc| match &f.state {
            FileState::Unix(u) => Some(u.ino),
            _ => None,
        };
        for f in &t.files {
            let FileState::Unix(u) = &f.state else { continue };
            if u.peer_ino != 0 && !t.files.iter().any(|g| ino(g) == Some(u.peer_ino)) {
                let (pid, fd) = t.holder(f.id);
                return Err(DumpError::UnsupportedFd {
                    pid,
                    fd,
                    kind: "unix socket connected to a process outside the checkpoint".into(),
                    path: format!("socket:[{}]", u.ino),
                }
                .into());
            }
        }
        Ok(())
    }

    fn open(&self, cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
        let FileState::Unix(u) = &f.state else { unreachable!("owned by Unix") };
        let waiting: &mut Option<OwnedFd> = cx.object("unix", u.ino);
        if let Some(end) = waiting.take() {
            return Ok(end);
        }
        if u.peer_ino == 0 {
            // Its peer was closed: a pair whose other end sends the queue and goes.
            let (a, b) = unix_sock::socketpair(sock_type(u.r#type))?;
            for m in &u.queue {
                unix_sock::send_all(b.as_fd(), m)?;
            }
            drop(b);
            super::set_status(&a, f)?;
            return Ok(a);
        }
        let peer = cx
            .image
            .files
            .iter()
            .find(|g| matches!(&g.state, FileState::Unix(p) if p.ino == u.peer_ino && p.r#type == u.r#type))
            .ok_or_else(|| RestoreError::Unsupported {
                pid: f.owner_pid,
                what: format!("unix socket {} without its peer", u.ino),
            })?;
        let FileState::Unix(pu) = &peer.state else { unreachable!("matched above") };
        let (a, b) = unix_sock::socketpair(sock_type(u.r#type))?;
        // What sat in one end's receive queue is sent from the other end.
        for m in &u.queue {
            unix_sock::send_all(b.as_fd(), m)?;
        }
        for m in &pu.queue {
            unix_sock::send_all(a.as_fd(), m)?;
        }
        for (end, d, s) in [(&a, f, u), (&b, peer, pu)] {
            unix_sock::shutdown(end.as_fd(), (s.shutdown & 2) as u8)?;
            super::set_status(end, d)?;
        }
        let pino = pu.ino;
        *cx.object::<Option<OwnedFd>>("unix", pino) = Some(b);
        Ok(a)
    }
}

file_kind! { UnixBound: "bound unix socket", UnixBound, InTask;

    /// Its sockets are claimed by `Unix`, which tells them apart with sock_diag.
    fn claims(&self, _p: &FdProbe) -> bool {
        false
    }

    fn dump(&self, _cx: &mut DumpCx<'_>, p: &FdProbe, _id: u32) -> Result<FileState> {
        Err(p.refuse("bound unix socket"))
    }

    fn open(&self, _cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
        use std::os::unix::ffi::OsStrExt;
        let FileState::UnixBound(b) = &f.state else { unreachable!("owned by UnixBound") };
        let ty = sock_type(b.r#type);
        let shown = String::from_utf8_lossy(b.name.strip_prefix(b"\0").unwrap_or(&b.name)).into_owned();
        let fail = |what: String| -> crate::Error {
            RestoreError::Unsupported { pid: f.owner_pid, what: format!("file {}: unix socket {shown}: {what}", f.id) }.into()
        };
        let path = (b.name.first() != Some(&0)).then(|| std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&b.name)));
        // The file a dead socket left is taken over; a live one's is not.
        if unix_sock::answers(&b.name, ty)? {
            return Err(fail("another socket answers there".into()));
        }
        if let Some(path) = path.as_ref().filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket())) {
            std::fs::remove_file(path).map_err(|e| fail(format!("removing its old file: {e}")))?;
        }
        let s = unix_sock::socket(ty)?;
        unix_sock::bind(s.as_fd(), &b.name).map_err(|e| fail(e.to_string()))?;
        if let Some(path) = &path {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(b.mode))
                .map_err(|e| fail(format!("chmod: {e}")))?;
            std::os::unix::fs::lchown(path, Some(b.uid), Some(b.gid)).map_err(|e| fail(format!("chown: {e}")))?;
        }
        if b.listening {
            unix_sock::listen(s.as_fd(), b.backlog)?;
        }
        if !b.queue.is_empty() {
            unix_sock::send_to(&b.name, &b.queue).map_err(|e| fail(format!("its queued messages: {e}")))?;
        }
        super::set_status(&s, f)?;
        Ok(s)
    }
}
