//! TCP and UDP sockets of IPv4 and IPv6 with no connection: a server's
//! listeners (none waiting to be accepted), bound and unbound sockets, a UDP
//! socket with a default peer. Their task makes them again in its network
//! namespace: the same kind, options, filter, address, peer and backlog.
//!
//! Options are read as integers from a fixed list; restore sets the ones a fresh
//! socket of the kind reads differently (the defaults stay defaults, so a buffer
//! size the kernel tunes is not frozen). A classic BPF filter comes back (locked
//! if it was). A TCP connection closed both ways with nothing left to read (a
//! server's accepted socket between the peer's close and its own) comes back
//! closed: bound where it was, reading end of file. Refused by name: a TCP
//! connection in any other state, a socket with an error not read yet (a reset),
//! a listener with connections not accepted yet, a UDP socket with datagrams
//! queued, other protocols (raw, ICMP, SCTP, UDP-lite), and a socket of a
//! network namespace other than its task's. Not seen, so not kept: multicast
//! memberships, eBPF socket filters and reuseport programs; the multicast TTL
//! an accepted TCP socket reads (its SYN's TTL; nothing sets it on TCP, nothing
//! uses it) reads 1 after.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::socket::{check_task_netns, read_filter, read_opts, set_filter, set_opts, step_failed, Fail, Opt};
use super::{DumpCx, FdProbe, FileDesc, FileState, OpenCx};
use crate::error::Result;
use crate::image::pb::{self, SockType};
use crate::sys::sock::{self, Addr};
use crate::sys::{pidfd, unix_sock};

/// The kernel's TCP states ccr saves (include/net/tcp_states.h).
const TCP_ESTABLISHED: u8 = 1;
const TCP_CLOSE: u8 = 7;
const TCP_LISTEN: u8 = 10;

// Multicast options are UDP's: TCP refuses to set them, yet an accepted socket
// reads the TTL (hop limit) of its SYN there.
const OPTS: &[Opt] = &[
    (libc::SOL_SOCKET, libc::SO_REUSEADDR, 0, 0, "SO_REUSEADDR"),
    (libc::SOL_SOCKET, libc::SO_REUSEPORT, 0, 0, "SO_REUSEPORT"),
    (libc::SOL_SOCKET, libc::SO_KEEPALIVE, 0, 0, "SO_KEEPALIVE"),
    (libc::SOL_SOCKET, libc::SO_BROADCAST, 0, 0, "SO_BROADCAST"),
    (libc::SOL_SOCKET, libc::SO_DONTROUTE, 0, 0, "SO_DONTROUTE"),
    (libc::SOL_SOCKET, libc::SO_OOBINLINE, 0, 0, "SO_OOBINLINE"),
    (libc::SOL_SOCKET, libc::SO_PRIORITY, 0, 0, "SO_PRIORITY"),
    (libc::SOL_SOCKET, libc::SO_RCVLOWAT, 0, 0, "SO_RCVLOWAT"),
    (libc::SOL_SOCKET, libc::SO_MARK, 0, 0, "SO_MARK"),
    (libc::SOL_SOCKET, libc::SO_RCVBUF, 0, 0, "SO_RCVBUF"),
    (libc::SOL_SOCKET, libc::SO_SNDBUF, 0, 0, "SO_SNDBUF"),
    (libc::SOL_SOCKET, libc::SO_TIMESTAMP, 0, 0, "SO_TIMESTAMP"),
    (libc::IPPROTO_IP, libc::IP_TOS, libc::AF_INET, 0, "IP_TOS"),
    (libc::IPPROTO_IP, libc::IP_TTL, libc::AF_INET, 0, "IP_TTL"),
    (libc::IPPROTO_IP, libc::IP_FREEBIND, libc::AF_INET, 0, "IP_FREEBIND"),
    (libc::IPPROTO_IP, libc::IP_TRANSPARENT, libc::AF_INET, 0, "IP_TRANSPARENT"),
    (libc::IPPROTO_IP, libc::IP_PKTINFO, libc::AF_INET, 0, "IP_PKTINFO"),
    (libc::IPPROTO_IP, libc::IP_RECVTOS, libc::AF_INET, 0, "IP_RECVTOS"),
    (libc::IPPROTO_IP, libc::IP_RECVERR, libc::AF_INET, 0, "IP_RECVERR"),
    (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, libc::AF_INET, 0, "IP_MTU_DISCOVER"),
    (libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, libc::AF_INET, libc::IPPROTO_UDP, "IP_MULTICAST_TTL"),
    (libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, libc::AF_INET, libc::IPPROTO_UDP, "IP_MULTICAST_LOOP"),
    (libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, libc::AF_INET, 0, "IP_BIND_ADDRESS_NO_PORT"),
    (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, libc::AF_INET6, 0, "IPV6_V6ONLY"),
    (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, libc::AF_INET6, 0, "IPV6_UNICAST_HOPS"),
    (libc::IPPROTO_IPV6, libc::IPV6_TCLASS, libc::AF_INET6, 0, "IPV6_TCLASS"),
    (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, libc::AF_INET6, 0, "IPV6_RECVPKTINFO"),
    (libc::IPPROTO_IPV6, libc::IPV6_RECVERR, libc::AF_INET6, 0, "IPV6_RECVERR"),
    (libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER, libc::AF_INET6, 0, "IPV6_MTU_DISCOVER"),
    (libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, libc::AF_INET6, libc::IPPROTO_UDP, "IPV6_MULTICAST_HOPS"),
    (libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, libc::AF_INET6, libc::IPPROTO_UDP, "IPV6_MULTICAST_LOOP"),
    (libc::IPPROTO_IPV6, libc::IPV6_TRANSPARENT, libc::AF_INET6, 0, "IPV6_TRANSPARENT"),
    (libc::IPPROTO_TCP, libc::TCP_NODELAY, 0, libc::IPPROTO_TCP, "TCP_NODELAY"),
    (libc::IPPROTO_TCP, libc::TCP_MAXSEG, 0, libc::IPPROTO_TCP, "TCP_MAXSEG"),
    (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, 0, libc::IPPROTO_TCP, "TCP_KEEPIDLE"),
    (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, 0, libc::IPPROTO_TCP, "TCP_KEEPINTVL"),
    (libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 0, libc::IPPROTO_TCP, "TCP_KEEPCNT"),
    (libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT, 0, libc::IPPROTO_TCP, "TCP_DEFER_ACCEPT"),
    (libc::IPPROTO_TCP, libc::TCP_FASTOPEN, 0, libc::IPPROTO_TCP, "TCP_FASTOPEN"),
    (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, 0, libc::IPPROTO_TCP, "TCP_USER_TIMEOUT"),
    (libc::IPPROTO_TCP, libc::TCP_CORK, 0, libc::IPPROTO_TCP, "TCP_CORK"),
    (libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT, 0, libc::IPPROTO_TCP, "TCP_NOTSENT_LOWAT"),
    (libc::IPPROTO_TCP, libc::TCP_SYNCNT, 0, libc::IPPROTO_TCP, "TCP_SYNCNT"),
    (libc::IPPROTO_TCP, libc::TCP_LINGER2, 0, libc::IPPROTO_TCP, "TCP_LINGER2"),
    (libc::IPPROTO_TCP, libc::TCP_WINDOW_CLAMP, 0, libc::IPPROTO_TCP, "TCP_WINDOW_CLAMP"),
    (libc::IPPROTO_UDP, libc::UDP_CORK, 0, libc::IPPROTO_UDP, "UDP_CORK"),
];

fn applies(&(_, _, family, protocol, _): &Opt, s: &pb::InetSocket) -> bool {
    (family == 0 || family == s.family) && (protocol == 0 || protocol == s.protocol)
}

fn what(s: &pb::InetSocket) -> String {
    let proto = if s.protocol == libc::IPPROTO_TCP { "TCP" } else { "UDP" };
    let local = Addr { family: s.family, ip: s.addr.clone(), port: s.port as u16 };
    match (s.listening, local.is_unset()) {
        _ if s.closed => format!("closed TCP connection on {local}"),
        (true, _) => format!("{proto} socket listening on {local}"),
        (false, false) => format!("{proto} socket on {local}"),
        (false, true) => format!("unbound {proto} socket"),
    }
}

file_kind! { Inet: "inet socket", Inet, InTask;

    fn claims(&self, p: &FdProbe) -> bool {
        p.socket_domain().is_some_and(|d| d == libc::AF_INET || d == libc::AF_INET6)
    }

    fn dump(&self, cx: &mut DumpCx<'_>, p: &FdProbe, _id: u32) -> Result<FileState> {
        dump(cx, p).map(FileState::Inet)
    }


    fn open(&self, _cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
        let FileState::Inet(s) = &f.state else { unreachable!("owned by Inet") };
        open(f, s)
    }
}

fn dump(cx: &mut DumpCx<'_>, p: &FdProbe) -> Result<pb::InetSocket> {
    let copy = pidfd::getfd(p.pid, p.fd)?;
    let fd = copy.as_fd();
    let shown = unix_sock::describe(fd);
    let int = |level, name, what| sock::get_int(fd, level, name, what);
    let family = int(libc::SOL_SOCKET, libc::SO_DOMAIN, "getsockopt(SO_DOMAIN)")?;
    let sock_type = int(libc::SOL_SOCKET, libc::SO_TYPE, "getsockopt(SO_TYPE)")?;
    let protocol = int(libc::SOL_SOCKET, libc::SO_PROTOCOL, "getsockopt(SO_PROTOCOL)")?;
    let ty = match (sock_type, protocol) {
        (libc::SOCK_STREAM, libc::IPPROTO_TCP) => SockType::Stream,
        (libc::SOCK_DGRAM, libc::IPPROTO_UDP) => SockType::Dgram,
        _ => return Err(p.refuse(&format!("{shown} (protocol {protocol})"))),
    };
    check_task_netns(p, fd, &shown)?;
    let local = sock::local(fd)?;
    let mut s = pb::InetSocket {
        family,
        r#type: ty as i32,
        protocol,
        addr: local.ip,
        port: local.port as u32,
        ..Default::default()
    };
    // Before a connection is held still, which swaps its filter and forces reuse.
    s.filter = read_filter(fd)?;
    s.opts = read_opts(fd, OPTS.iter().filter(|o| applies(o, &s)))?;
    if ty == SockType::Stream {
        let info = sock::tcp_info(fd)?;
        match info.tcpi_state {
            TCP_LISTEN if info.tcpi_unacked > 0 => {
                let n = info.tcpi_unacked;
                return Err(p.refuse(&format!("{shown} with {n} connections not accepted yet")));
            }
            TCP_LISTEN => (s.listening, s.backlog) = (true, info.tcpi_sacked),
            TCP_CLOSE => s.closed = closed_connection(p, fd, &shown)?,
            TCP_ESTABLISHED if cx.state.tcp_established => {
                let peer = sock::peer(fd)?.ok_or_else(|| p.refuse(&format!("{shown} with no peer")))?;
                (s.peer_addr, s.peer_port) = (peer.ip, peer.port as u32);
                s.established = Some(super::tcp_conn::dump(cx, p, &shown, &s)?);
            }
            TCP_ESTABLISHED => {
                let peer = sock::peer(fd)?.map(|a| format!(" to {a}")).unwrap_or_default();
                let why = "dump with --tcp-established to save it";
                return Err(p.refuse(&format!("TCP connection{peer} (state 1) of {shown} ({why})")));
            }
            st => {
                let peer = sock::peer(fd)?.map(|a| format!(" to {a}")).unwrap_or_default();
                return Err(p.refuse(&format!("TCP connection{peer} (state {st}) of {shown}")));
            }
        }
        s.congestion = sock::get_str(fd, libc::IPPROTO_TCP, libc::TCP_CONGESTION, "getsockopt(TCP_CONGESTION)")?;
    } else {
        if sock::inq(fd)? > 0 {
            return Err(p.refuse(&format!("{shown} with datagrams queued")));
        }
        if let Some(peer) = sock::peer(fd)? {
            (s.peer_addr, s.peer_port) = (peer.ip, peer.port as u32);
        }
    }
    // A connection's TCP_MAXSEG is its path's MSS, not a setting (an
    // established one keeps its MSS clamp in repair mode).
    if s.closed || s.established.is_some() {
        s.opts.retain(|o| (o.level, o.name) != (libc::IPPROTO_TCP, libc::TCP_MAXSEG));
    }
    (s.linger, s.linger_s) = sock::linger(fd)?;
    s.bound_dev = sock::get_str(fd, libc::SOL_SOCKET, libc::SO_BINDTODEVICE, "getsockopt(SO_BINDTODEVICE)")?;
    Ok(s)
}

/// Whether a TCP socket in TCP_CLOSE is a connection closed both ways (its
/// receive side shut: poll says POLLRDHUP) rather than one never connected.
fn closed_connection(p: &FdProbe, fd: BorrowedFd<'_>, shown: &str) -> Result<bool> {
    let ev = sock::events_now(fd)?;
    if ev & libc::POLLERR != 0 {
        // Reading SO_ERROR would take the error from the task.
        return Err(p.refuse(&format!("{shown} with an error not read yet (a reset or refused connection)")));
    }
    if ev & libc::POLLRDHUP == 0 {
        return Ok(false);
    }
    match sock::inq(fd)? {
        0 => Ok(true),
        n => Err(p.refuse(&format!("closed TCP connection of {shown} with {n} bytes not read yet"))),
    }
}

/// Makes `fd` (bound at `local`, unconnected) a connection closed both ways as
/// the dumped one was: connected to a listener of its own on its address, shut
/// by it, then by the peer. Shutting an unconnected socket would read the same,
/// but connect would then work where it gives EISCONN.
fn close_a_connection(fd: BorrowedFd<'_>, local: &Addr, fail: &Fail<'_>) -> Result<()> {
    let l = sock::socket(local.family, libc::SOCK_STREAM, libc::IPPROTO_TCP).map_err(|e| fail("socket", e))?;
    let any_port = Addr { family: local.family, ip: local.ip.clone(), port: 0 };
    sock::bind(l.as_fd(), &any_port).map_err(|e| fail(&format!("bind a listener to close it at {any_port}"), e))?;
    sock::listen(l.as_fd(), 1).map_err(|e| fail("listen", e))?;
    let at = sock::local(l.as_fd()).map_err(|e| fail("getsockname", e))?;
    sock::connect(fd, &at).map_err(|e| fail(&format!("connect {at} to close it"), e))?;
    let peer = sock::accept(l.as_fd()).map_err(|e| fail("accept", e))?;
    unix_sock::shutdown(fd, 2).map_err(|e| fail("shutdown", e))?;
    // Nothing was sent: the peer's close is a FIN, never a reset.
    drop(peer);
    // Loopback delivers within the calls above; the wait is a bound.
    for _ in 0..1000 {
        let state = sock::tcp_info(fd).map_err(|e| fail("TCP_INFO", e))?.tcpi_state;
        if state == TCP_CLOSE {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Err(fail(
        "closing it",
        crate::sys::SysError::Call { call: "wait for TCP_CLOSE", errno: nix::errno::Errno::ETIMEDOUT },
    ))
}

fn open(f: &FileDesc, s: &pb::InetSocket) -> Result<OwnedFd> {
    let fail = step_failed(f, what(s));
    let ty = if s.r#type == SockType::Stream as i32 { libc::SOCK_STREAM } else { libc::SOCK_DGRAM };
    let made = sock::socket(s.family, ty, s.protocol).map_err(|e| fail("socket", e))?;
    let fd = made.as_fd();
    set_opts(fd, &s.opts, OPTS, &fail)?;
    if s.linger {
        sock::set_linger(fd, true, s.linger_s).map_err(|e| fail("SO_LINGER", e))?;
    }
    let congestion = sock::get_str(fd, libc::IPPROTO_TCP, libc::TCP_CONGESTION, "getsockopt(TCP_CONGESTION)");
    if !s.congestion.is_empty() && congestion.ok().as_deref() != Some(s.congestion.as_str()) {
        sock::set_str(fd, libc::IPPROTO_TCP, libc::TCP_CONGESTION, &s.congestion)
            .map_err(|e| fail(&format!("TCP_CONGESTION {}", s.congestion), e))?;
    }
    if !s.bound_dev.is_empty() {
        sock::set_str(fd, libc::SOL_SOCKET, libc::SO_BINDTODEVICE, &s.bound_dev)
            .map_err(|e| fail(&format!("SO_BINDTODEVICE {}", s.bound_dev), e))?;
    }
    set_filter(fd, s.filter.as_ref(), &fail)?;
    if let Some(c) = &s.established {
        super::tcp_conn::open(fd, s, c, &fail)?;
        super::set_status(&made, f)?;
        return Ok(made);
    }
    let local = Addr { family: s.family, ip: s.addr.clone(), port: s.port as u16 };
    if !local.is_unset() {
        // The dumped tree's old connections may linger in TIME_WAIT on the
        // port: a TCP socket binds past them, then gets its own setting back.
        let reuse = s.opts.iter().find(|o| o.level == libc::SOL_SOCKET && o.name == libc::SO_REUSEADDR);
        // A closed connection shares its port with its listener (or with
        // its own TIME_WAIT): it binds in repair mode, past them.
        let tcp = s.protocol == libc::IPPROTO_TCP;
        if s.closed {
            crate::sys::tcp_repair::bind_past(fd, &local)
                .map_err(|e| fail(&format!("bind {local} in TCP_REPAIR mode"), e))?;
        } else {
            if tcp {
                sock::set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1).map_err(|e| fail("SO_REUSEADDR", e))?;
            }
            sock::bind(fd, &local).map_err(|e| fail(&format!("bind {local}"), e))?;
        }
        if tcp {
            let back = reuse.map_or(0, |o| o.value);
            sock::set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, back).map_err(|e| fail("SO_REUSEADDR", e))?;
        }
    }
    if !s.peer_addr.is_empty() {
        let peer = Addr { family: s.family, ip: s.peer_addr.clone(), port: s.peer_port as u16 };
        sock::connect(fd, &peer).map_err(|e| fail(&format!("connect {peer}"), e))?;
    }
    if s.listening {
        sock::listen(fd, s.backlog).map_err(|e| fail("listen", e))?;
    }
    if s.closed {
        close_a_connection(fd, &local, &fail)?;
    }
    super::set_status(&made, f)?;
    Ok(made)
}
