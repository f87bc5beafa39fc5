//! TCP and UDP sockets of IPv4 and IPv6 with no connection: a server's
//! listeners (none waiting to be accepted), bound and unbound sockets, a UDP
//! socket with a default peer. Their task makes them again in its network
//! namespace: the same kind, options, filter, address, peer and backlog.
//!
//! Options are read as integers from a fixed list; restore sets the ones a fresh
//! socket of the kind reads differently (the defaults stay defaults, so a buffer
//! size the kernel tunes is not frozen). A classic BPF filter comes back (locked
//! if it was). Refused by name: a TCP connection in any state, a listener with
//! connections not accepted yet, a UDP socket with datagrams queued, other
//! protocols (raw, ICMP, SCTP, UDP-lite), and a socket of a network namespace
//! other than its task's. Not seen, so not kept: multicast memberships, eBPF
//! socket filters and reuseport programs.

use std::os::fd::{AsFd, OwnedFd};

use super::socket::{check_task_netns, read_filter, read_opts, set_filter, set_opts, step_failed, Opt};
use super::{DumpCx, FdProbe, FileDesc, FileState, OpenCx};
use crate::error::Result;
use crate::image::pb::{self, SockType};
use crate::sys::sock::{self, Addr};
use crate::sys::{pidfd, unix_sock};

/// The kernel's TCP states that hold no connection (include/net/tcp_states.h).
const TCP_CLOSE: u8 = 7;
const TCP_LISTEN: u8 = 10;

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
    (libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, libc::AF_INET, 0, "IP_MULTICAST_TTL"),
    (libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, libc::AF_INET, 0, "IP_MULTICAST_LOOP"),
    (libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, libc::AF_INET, 0, "IP_BIND_ADDRESS_NO_PORT"),
    (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, libc::AF_INET6, 0, "IPV6_V6ONLY"),
    (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, libc::AF_INET6, 0, "IPV6_UNICAST_HOPS"),
    (libc::IPPROTO_IPV6, libc::IPV6_TCLASS, libc::AF_INET6, 0, "IPV6_TCLASS"),
    (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, libc::AF_INET6, 0, "IPV6_RECVPKTINFO"),
    (libc::IPPROTO_IPV6, libc::IPV6_RECVERR, libc::AF_INET6, 0, "IPV6_RECVERR"),
    (libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER, libc::AF_INET6, 0, "IPV6_MTU_DISCOVER"),
    (libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, libc::AF_INET6, 0, "IPV6_MULTICAST_HOPS"),
    (libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, libc::AF_INET6, 0, "IPV6_MULTICAST_LOOP"),
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
        (true, _) => format!("{proto} socket listening on {local}"),
        (false, false) => format!("{proto} socket on {local}"),
        (false, true) => format!("unbound {proto} socket"),
    }
}

file_kind! { Inet: "inet socket", Inet, InTask;

    fn claims(&self, p: &FdProbe) -> bool {
        p.socket_domain().is_some_and(|d| d == libc::AF_INET || d == libc::AF_INET6)
    }

    fn dump(&self, _cx: &mut DumpCx<'_>, p: &FdProbe, _id: u32) -> Result<FileState> {
        dump(p).map(FileState::Inet)
    }

    fn open(&self, _cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
        let FileState::Inet(s) = &f.state else { unreachable!("owned by Inet") };
        open(f, s)
    }
}

fn dump(p: &FdProbe) -> Result<pb::InetSocket> {
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
    if ty == SockType::Stream {
        let info = sock::tcp_info(fd)?;
        match info.tcpi_state {
            TCP_LISTEN if info.tcpi_unacked > 0 => {
                let n = info.tcpi_unacked;
                return Err(p.refuse(&format!("{shown} with {n} connections not accepted yet")));
            }
            TCP_LISTEN => (s.listening, s.backlog) = (true, info.tcpi_sacked),
            TCP_CLOSE => {}
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
    s.opts = read_opts(fd, OPTS.iter().filter(|o| applies(o, &s)))?;
    (s.linger, s.linger_s) = sock::linger(fd)?;
    s.bound_dev = sock::get_str(fd, libc::SOL_SOCKET, libc::SO_BINDTODEVICE, "getsockopt(SO_BINDTODEVICE)")?;
    s.filter = read_filter(fd)?;
    Ok(s)
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
    let local = Addr { family: s.family, ip: s.addr.clone(), port: s.port as u16 };
    if !local.is_unset() {
        // The dumped tree's old connections may linger in TIME_WAIT on the
        // port: a TCP socket binds past them, then gets its own setting back.
        let reuse = s.opts.iter().find(|o| o.level == libc::SOL_SOCKET && o.name == libc::SO_REUSEADDR);
        let tcp = s.protocol == libc::IPPROTO_TCP;
        if tcp {
            sock::set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1).map_err(|e| fail("SO_REUSEADDR", e))?;
        }
        sock::bind(fd, &local).map_err(|e| fail(&format!("bind {local}"), e))?;
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
    super::set_status(&made, f)?;
    Ok(made)
}
