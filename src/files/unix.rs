//! Unix sockets: connected, unnamed pairs with both ends in the checkpoint, with
//! the messages queued in each (peeked, not consumed). The first end restore
//! meets makes the pair; its peer takes the other end. A pair is made in the
//! network namespace it was in: ccr's before the fork, or the tree's own by the
//! task above both its ends, inside it. A socket bound to a name and not
//! connected (a datagram socket such as syslog's /dev/log, with its queued
//! messages; a listener with no connection waiting) is bound again where its
//! name is by its task (`UnixBound`, in the task's mount and network
//! namespaces), its file with its mode and owner. Connected named sockets (an
//! accepted connection), a listener with connections waiting, unconnected
//! unnamed sockets, sockets whose peer is outside the checkpoint and sockets of
//! a network namespace that is neither their task's nor ccr's are refused by
//! name.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::table::FileTable;
use super::{DumpCx, DumpState, FdProbe, FileDesc, FileState, NetNs, OpenCx, Stage};
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

/// The network namespace `path` (/proc/PID/ns/net) is.
fn net_ns(path: &str) -> Result<NetNs> {
    let md = std::fs::metadata(path).map_err(crate::sys::SysError::path("stat", path))?;
    Ok((md.dev(), md.ino()))
}

/// Every file a unix socket is bound to, of the sockets of ccr's network
/// namespace and of the tree's (`root`'s), by (dev, inode): whether the tree holds
/// that socket (else a process outside the checkpoint does).
pub fn bound_files(state: &mut DumpState, root: i32) -> Result<BoundFiles> {
    let mut out = BoundFiles::new();
    for path in ["/proc/thread-self/ns/net".to_string(), format!("/proc/{root}/ns/net")] {
        let ns = crate::sys::fd::open(std::path::Path::new(&path), libc::O_RDONLY | libc::O_CLOEXEC, 0)?;
        let (_, all) = state.unix_sockets_in(ns.as_fd())?;
        out.extend(all.values().filter_map(|u| u.vfs).map(|(dev, ino)| ((dev, ino as u64), false)));
    }
    out.extend(state.bound_files.iter().map(|&f| (f, true)));
    Ok(out)
}

/// Socket files by (dev, inode): whether the tree holds the socket bound there.
pub type BoundFiles = std::collections::HashMap<(u64, u64), bool>;

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
        // sock_diag of the socket's own network namespace. Restore makes a socket
        // of ccr's namespace in ccr, and one of the task's (the tree's own) in the
        // task: one of any other namespace would come back in the wrong one.
        let (net, table) = cx.unix_sockets(copy.as_fd())?;
        let Some(u) = table.get(&(p.md.ino() as u32)).cloned() else {
            return Err(p.refuse(&unix_sock::describe(copy.as_fd())));
        };
        let theirs = net_ns(&format!("/proc/{}/ns/net", p.pid))?;
        let ours = net_ns("/proc/thread-self/ns/net")?;
        if net != theirs && net != ours {
            let what = unix_sock::describe(copy.as_fd());
            return Err(p.refuse(&format!("{what} of a network namespace that is neither its task's nor ccr's")));
        }
        // A socket pair's end whose peer was closed stays connected to nobody
        // (ESTABLISHED, no peer); a socket that never connected is not.
        let orphan = u.name.is_none() && u.peer == 0 && u.state == TCP_ESTABLISHED;
        if let Some(name) = &u.name {
            if net != theirs {
                let what = unix_sock::describe(copy.as_fd());
                return Err(p.refuse(&format!("{what}, bound in a network namespace other than its task's")));
            }
            let state = bound(p, copy.as_fd(), &u, name)?;
            if let Some((dev, ino)) = u.vfs {
                cx.state.bound_files.insert((dev, ino as u64));
            }
            return Ok(state);
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
            own_net: net == theirs && net != ours,
        }))
    }

    /// A pair of the tree's own network namespace is made by a task inside it,
    /// both ends by the same one.
    fn stage_of(&self, f: &FileDesc) -> Stage {
        match &f.state {
            FileState::Unix(u) if u.own_net => Stage::InTask,
            _ => Stage::BeforeFork,
        }
    }

    fn group(&self, f: &FileDesc) -> Option<u64> {
        match &f.state {
            FileState::Unix(u) if u.peer_ino != 0 => Some(u.ino.min(u.peer_ino)),
            FileState::Unix(u) => Some(u.ino),
            _ => None,
        }
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

    fn open(&self, cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
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
        // In the tree's user namespace the file is made (and given its mode and
        // owner, as the namespace names it) by a helper with ids the namespace
        // maps, which also listens: a client then sees the namespace's root as
        // its peer, not an unmapped id.
        let owner = match cx.userns {
            Some(u) => u.ids.owner(b.uid, b.gid).map_err(|id| fail(format!("its owner {id} is not mapped")))?,
            None => (b.uid, b.gid),
        };
        let make = || -> Result<()> {
            unix_sock::bind(s.as_fd(), &b.name).map_err(|e| fail(e.to_string()))?;
            if let Some(path) = &path {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(b.mode))
                    .map_err(|e| fail(format!("chmod: {e}")))?;
                std::os::unix::fs::lchown(path, Some(owner.0), Some(owner.1))
                    .map_err(|e| fail(format!("chown: {e}")))?;
            }
            if b.listening {
                unix_sock::listen(s.as_fd(), b.backlog)?;
            }
            Ok(())
        };
        // The helper's copy of the socket is this one (fork shares it).
        match cx.userns {
            Some(u) => crate::userns::as_ids(u.maker, u.helper_pid, make).map_err(fail)?,
            None => make()?,
        }
        if !b.queue.is_empty() {
            unix_sock::send_to(&b.name, &b.queue).map_err(|e| fail(format!("its queued messages: {e}")))?;
        }
        super::set_status(&s, f)?;
        Ok(s)
    }
}
