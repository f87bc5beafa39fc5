//! Established TCP connections (`--tcp-established`), both ends in the
//! checkpoint: read in repair mode while their tasks are held, made again in
//! repair mode by their tasks (no handshake: the sequence numbers, queues,
//! negotiated options and windows are set), and let out of it by ccr once every
//! task of the tree has its sockets, just before they run.
//!
//! A held connection drops what arrives (see sys::tcp_repair), so neither end
//! moves while the dump reads them. A peer outside the checkpoint is let in
//! when the connection is in the tree's own network namespace: after the kill
//! the dump takes that namespace's devices down before the held sockets go (no
//! socket left to answer the peer with a reset, and no way in), and the
//! restore keeps its veths' host ends down until every connection is back. In
//! the host's namespace such a connection is refused by name.
//! Not kept: urgent (out-of-band) data and the out-of-order queue (its
//! segments are sent again by the peer).

use std::os::fd::{AsFd, BorrowedFd};

use super::socket::Fail;
use super::table::FileTable;
use super::{DumpCx, FdProbe, FileState};
use crate::dump::DumpError;
use crate::error::Result;
use crate::image::pb;
use crate::sys::sock::{self, Addr};
use crate::sys::tcp_repair::{self as repair, Negotiated, Queue};
use crate::sys::{pidfd, SysResult};

/// Puts the task's connection in repair mode (held so until the tasks are
/// killed or let go) and reads it; `s` holds its filter and options as read
/// before, which it gets back.
pub fn dump(cx: &mut DumpCx<'_>, p: &FdProbe, shown: &str, s: &pb::InetSocket) -> Result<pb::TcpConnection> {
    let held = pidfd::getfd(p.pid, p.fd)?;
    let copy = held.try_clone().map_err(crate::sys::SysError::path("dup", shown))?;
    let hold = cx.state.repairing.start(held, own_filter(s), reuse_of(s));
    hold.map_err(|e| p.refuse(&format!("{shown}: holding it still: {e}")))?;
    read(copy.as_fd()).map_err(|e| p.refuse(&format!("{shown}: reading it in TCP repair mode: {e}")))
}

/// How much of the saved send queue had been sent (the rest never was).
fn sent_len(c: &pb::TcpConnection) -> usize {
    c.send_queue.len() - (c.unsent as usize).min(c.send_queue.len())
}

/// The socket's own classic BPF filter, as saved (empty: none).
fn own_filter(s: &pb::InetSocket) -> Vec<crate::sys::kernel::sock_filter> {
    s.filter.as_ref().and_then(|f| sock::filter_from_bytes(&f.insns)).unwrap_or_default()
}

/// The socket's SO_REUSEADDR, as saved.
fn reuse_of(s: &pb::InetSocket) -> i32 {
    s.opts.iter().find(|o| (o.level, o.name) == (libc::SOL_SOCKET, libc::SO_REUSEADDR)).map_or(0, |o| o.value)
}

fn read(fd: BorrowedFd<'_>) -> SysResult<pb::TcpConnection> {
    let mut c = pb::TcpConnection::default();
    repair::select(fd, Queue::Send)?;
    c.snd_seq = repair::queue_seq(fd)?;
    let (queued, unsent) = repair::send_queue_len(fd)?;
    c.send_queue = repair::peek_queue(fd, queued)?;
    c.unsent = unsent;
    repair::select(fd, Queue::Recv)?;
    c.rcv_seq = repair::queue_seq(fd)?;
    c.recv_queue = repair::peek_queue(fd, repair::recv_queue_len(fd)?)?;
    repair::select(fd, Queue::None)?;
    let n = repair::negotiated(fd)?;
    (c.mss, c.sack, c.timestamps) = (n.mss, n.sack, n.timestamps);
    if let Some((snd, rcv)) = n.wscale {
        (c.wscale, c.snd_wscale, c.rcv_wscale) = (true, snd, rcv);
    }
    if n.timestamps {
        c.timestamp = repair::timestamp(fd)?;
    }
    let w = repair::window(fd)?;
    (c.snd_wl1, c.snd_wnd, c.max_window, c.rcv_wnd, c.rcv_wup) =
        (w.snd_wl1, w.snd_wnd, w.max_window, w.rcv_wnd, w.rcv_wup);
    Ok(c)
}

/// The connection's ends: (local, peer).
fn ends(s: &pb::InetSocket) -> (Addr, Addr) {
    let local = Addr { family: s.family, ip: s.addr.clone(), port: s.port as u16 };
    let peer = Addr { family: s.family, ip: s.peer_addr.clone(), port: s.peer_port as u16 };
    (local, peer)
}

/// An end as the wire sees it: an IPv4-mapped IPv6 address (a dual-stack
/// socket's) is the IPv4 one.
fn on_wire(a: &Addr) -> (&[u8], u16) {
    match a.ip.as_slice() {
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, v4 @ ..] => (v4, a.port),
        ip => (ip, a.port),
    }
}

/// The address of an end, IPv4-mapped ones as IPv4.
fn ip_of(a: &Addr) -> Option<std::net::IpAddr> {
    match on_wire(a).0 {
        v4 if v4.len() == 4 => Some(std::net::IpAddr::from(<[u8; 4]>::try_from(v4).ok()?)),
        v6 => Some(std::net::IpAddr::from(<[u8; 16]>::try_from(v6).ok()?)),
    }
}

/// Every address of a saved network namespace (on lo and on its devices).
pub fn local_ips(ns: &pb::NetNamespace) -> Vec<std::net::IpAddr> {
    let addrs = ns.lo_addresses.iter().chain(ns.devices.iter().flat_map(|d| d.addresses.iter()));
    addrs.flat_map(|a| [&a.local, &a.address]).filter_map(|s| s.parse().ok()).collect()
}

/// Every established connection's other end is a socket of the checkpoint in
/// the same network namespace, or the connection is in the tree's own network
/// namespace (`tree_net`: its inode and addresses) to a peer that is not one
/// of the namespace's own addresses, whose way out the dump cuts after the
/// kill and the restore opens only once every connection is back: marked
/// `peer_outside`. Whether any is.
pub fn check_peers(t: &mut FileTable, tree_net: Option<&(u64, Vec<std::net::IpAddr>)>) -> Result<bool> {
    let netns = |t: &FileTable, id: u32| {
        let (pid, _) = t.holder(id);
        std::fs::metadata(format!("/proc/{pid}/ns/net")).ok().map(|m| std::os::unix::fs::MetadataExt::ino(&m))
    };
    let conns: Vec<(u32, (Addr, Addr), Option<u64>)> = (t.files.iter())
        .filter_map(|f| match &f.state {
            FileState::Inet(s) if s.established.is_some() => Some((f.id, ends(s), netns(t, f.id))),
            _ => None,
        })
        .collect();
    let mut outside = Vec::new();
    for (id, (local, peer), ns) in &conns {
        let inside =
            conns.iter().any(|(_, (l, p), n)| on_wire(l) == on_wire(peer) && on_wire(p) == on_wire(local) && n == ns);
        if inside {
            continue;
        }
        let why = match tree_net {
            Some((tree_ns, local_ips)) if *ns == Some(*tree_ns) => {
                // A peer of the namespace itself (loopback, one of its addresses)
                // would find it again at once: a process left out of the tree.
                let ip = ip_of(peer);
                if !ip.is_some_and(|ip| ip.is_loopback() || local_ips.contains(&ip)) {
                    outside.push(*id);
                    continue;
                }
                "a process of the tree's network namespace left out of the checkpoint"
            }
            _ => {
                "outside the checkpoint and reached through the host's network namespace (ccr holds no network \
                 lock there yet: the peer's next packet would reset it)"
            }
        };
        let (pid, fd) = t.holder(*id);
        return Err(DumpError::UnsupportedFd {
            pid,
            fd,
            kind: format!("TCP connection to {peer}, {why}"),
            path: format!("from {local}"),
        }
        .into());
    }
    for f in t.files.iter_mut().filter(|f| outside.contains(&f.id)) {
        if let FileState::Inet(pb::InetSocket { established: Some(c), .. }) = &mut f.state {
            c.peer_outside = true;
        }
    }
    Ok(!outside.is_empty())
}

/// Restore, in the task: makes the connection again in repair mode, bound and
/// connected without a packet, with its queues, options and windows; it stays
/// in repair mode until [`let_go`].
pub fn open(fd: BorrowedFd<'_>, s: &pb::InetSocket, c: &pb::TcpConnection, fail: &Fail<'_>) -> Result<()> {
    let (local, peer) = ends(s);
    let step = |what: &str, r: SysResult<()>| r.map_err(|e| fail(what, e));
    // Held still until let_go: a packet from an end not made yet is a reset.
    step("a filter that drops everything", repair::hold_still(fd))?;
    step("TCP_REPAIR", repair::set_repair(fd, true))?;
    let queued = |q, len: usize, seq: u32| {
        repair::select(fd, q)?;
        repair::set_queue_seq(fd, seq.wrapping_sub(len as u32))
    };
    step("TCP_QUEUE_SEQ of the send queue", queued(Queue::Send, c.send_queue.len(), c.snd_seq))?;
    step("TCP_QUEUE_SEQ of the receive queue", queued(Queue::Recv, c.recv_queue.len(), c.rcv_seq))?;
    step("TCP_REPAIR_QUEUE", repair::select(fd, Queue::None))?;
    step(&format!("bind {local} in repair mode"), sock::bind(fd, &local))?;
    step(&format!("connect {peer} in repair mode"), sock::connect(fd, &peer))?;
    let n = Negotiated {
        mss: c.mss,
        wscale: c.wscale.then_some((c.snd_wscale, c.rcv_wscale)),
        sack: c.sack,
        timestamps: c.timestamps,
    };
    step("TCP_REPAIR_OPTIONS", repair::set_negotiated(fd, &n))?;
    if c.timestamps {
        step("TCP_TIMESTAMP", repair::set_timestamp(fd, c.timestamp))?;
    }
    let fill = |q, data: &[u8]| {
        repair::select(fd, q)?;
        repair::send_all(fd, data, None)
    };
    step("the receive queue", fill(Queue::Recv, &c.recv_queue))?;
    // What was not sent yet is sent for real once out of repair mode (let_go).
    let sent = sent_len(c);
    step("the send queue", fill(Queue::Send, &c.send_queue[..sent]))?;
    step("TCP_REPAIR_QUEUE", repair::select(fd, Queue::None))?;
    let w = crate::sys::kernel::tcp_repair_window {
        snd_wl1: c.snd_wl1,
        snd_wnd: c.snd_wnd,
        max_window: c.max_window,
        rcv_wnd: c.rcv_wnd,
        rcv_wup: c.rcv_wup,
    };
    step("TCP_REPAIR_WINDOW", repair::set_window(fd, &w))?;
    Ok(())
}

/// Restore, in ccr, once every task of the tree has its sockets: the
/// connection (`sock`, a copy of the task's) leaves repair mode and gets its
/// own filter and SO_REUSEADDR back.
pub fn put_back(sock: BorrowedFd<'_>, s: &pb::InetSocket) -> SysResult<()> {
    repair::put_back(sock, &own_filter(s), reuse_of(s))
}

/// Then, once every connection is back: what was not sent at the dump is
/// queued to send (the peers are out of repair mode too, so their
/// acknowledgements free the send buffer if it is full; TCP_NOTSENT_LOWAT
/// would hold it back, so it is lifted meanwhile).
pub fn send_unsent(sock: BorrowedFd<'_>, c: &pb::TcpConnection) -> SysResult<()> {
    let sent = sent_len(c);
    if sent == c.send_queue.len() {
        return Ok(());
    }
    let lowat = sock::get_int(sock, libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT, "getsockopt(TCP_NOTSENT_LOWAT)")?;
    sock::set_int(sock, libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT, -1)?;
    let queued = repair::send_all(sock, &c.send_queue[sent..], Some(10_000));
    let back = sock::set_int(sock, libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT, lowat);
    queued.and(back)
}
