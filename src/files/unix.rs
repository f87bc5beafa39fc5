//! Unix sockets: connected, unnamed pairs with both ends in the checkpoint, with
//! the messages queued in each (peeked, not consumed). The first end restore
//! meets makes the pair; its peer takes the other end. Bound, listening and
//! unconnected sockets, sockets whose peer is outside the checkpoint and sockets
//! of another network namespace than ccr's (restore makes them in ccr's) are
//! refused by name.

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

/// sock_diag's state of a connected unix socket.
const TCP_ESTABLISHED: u8 = 1;

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
        if u.name.is_some() {
            return Err(p.refuse("bound or listening unix socket"));
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
