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

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use nix::errno::Errno;

use super::{DumpCx, FdProbe, FileDesc, FileState, OpenCx};
use crate::error::Result;
use crate::image::pb::{self, SockType};
use crate::restore::RestoreError;
use crate::sys::sock::{self, Addr};
use crate::sys::{pidfd, unix_sock};

/// The kernel's TCP states that hold no connection (include/net/tcp_states.h).
const TCP_CLOSE: u8 = 7;
const TCP_LISTEN: u8 = 10;

/// An integer option kept: level, name, the family it applies to (0 both, else
/// AF_INET or AF_INET6), the protocol (0 any, else IPPROTO_TCP or IPPROTO_UDP)
/// and its name for errors.
pub(super) type Opt = (i32, i32, i32, i32, &'static str);

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

/// The domain (AF_*) of a socket.
fn domain(fd: BorrowedFd<'_>) -> Option<i32> {
    sock::get_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN, "getsockopt(SO_DOMAIN)").ok()
}

/// Whether the fd is a socket of one of `domains` (asked on a copy).
pub(super) fn claims_domain(p: &FdProbe, domains: &[i32]) -> bool {
    p.md.file_type().is_socket()
        && pidfd::getfd(p.pid, p.fd).ok().and_then(|c| domain(c.as_fd())).is_some_and(|d| domains.contains(&d))
}

/// Refuses a socket made in a network namespace other than its task's: its task
/// makes it again, in its own.
pub(super) fn check_task_netns(p: &FdProbe, fd: BorrowedFd<'_>, shown: &str) -> Result<()> {
    let ns = unix_sock::net_ns_of(fd)?;
    let ns = std::fs::File::from(ns).metadata().map_err(crate::sys::SysError::path("fstat", "SIOCGSKNS"))?;
    let task_ns = format!("/proc/{}/ns/net", p.pid);
    let task_ns = std::fs::metadata(&task_ns).map_err(crate::sys::SysError::path("stat", task_ns))?;
    if (ns.dev(), ns.ino()) != (task_ns.dev(), task_ns.ino()) {
        return Err(p.refuse(&format!("{shown} of a network namespace other than its task's")));
    }
    Ok(())
}

/// The values of the options `list` of the socket; one this kernel does not have
/// for the socket's kind is not the socket's.
pub(super) fn read_opts<'o>(fd: BorrowedFd<'_>, list: impl Iterator<Item = &'o Opt>) -> Result<Vec<pb::SockOpt>> {
    let mut out = Vec::new();
    for o in list {
        let value = match sock::get_int(fd, o.0, o.1, o.4) {
            Err(crate::sys::SysError::Call { errno: Errno::ENOPROTOOPT | Errno::EOPNOTSUPP, .. }) => continue,
            v => v?,
        };
        out.push(pb::SockOpt { level: o.0, name: o.1, value });
    }
    Ok(out)
}

/// How a restore step's failure becomes the restore's error: (step, cause).
pub(super) type Fail<'a> = dyn Fn(&str, crate::sys::SysError) -> crate::Error + 'a;

/// Sets the saved options a fresh socket reads differently (`names` names them
/// in errors).
pub(super) fn set_opts(fd: BorrowedFd<'_>, opts: &[pb::SockOpt], names: &[Opt], fail: &Fail<'_>) -> Result<()> {
    for o in opts {
        let name = opt_name(o, names);
        let fresh = sock::get_int(fd, o.level, o.name, "getsockopt").map_err(|e| fail(&name, e))?;
        if fresh == o.value {
            continue;
        }
        let set = match (o.level, o.name) {
            // The kernel doubles what it is given, and caps it unless forced.
            (libc::SOL_SOCKET, libc::SO_RCVBUF) => sock::set_int(fd, o.level, libc::SO_RCVBUFFORCE, o.value / 2),
            (libc::SOL_SOCKET, libc::SO_SNDBUF) => sock::set_int(fd, o.level, libc::SO_SNDBUFFORCE, o.value / 2),
            _ => sock::set_int(fd, o.level, o.name, o.value),
        };
        set.map_err(|e| fail(&name, e))?;
    }
    Ok(())
}

/// An option and its value for errors.
fn opt_name(o: &pb::SockOpt, names: &[Opt]) -> String {
    match names.iter().find(|k| k.0 == o.level && k.1 == o.name) {
        Some(k) => format!("{} = {}", k.4, o.value),
        None => format!("socket option {} at level {} = {}", o.name, o.level, o.value),
    }
}

/// The socket's classic BPF filter, if any.
pub(super) fn read_filter(fd: BorrowedFd<'_>) -> Result<Option<pb::SockFilter>> {
    let insns = sock::filter(fd)?;
    if insns.is_empty() {
        return Ok(None);
    }
    let locked = sock::get_int(fd, libc::SOL_SOCKET, libc::SO_LOCK_FILTER, "getsockopt(SO_LOCK_FILTER)")? != 0;
    Ok(Some(pb::SockFilter { insns: sock::filter_bytes(&insns), locked }))
}

pub(super) fn set_filter(fd: BorrowedFd<'_>, filter: Option<&pb::SockFilter>, fail: &Fail<'_>) -> Result<()> {
    let Some(f) = filter else { return Ok(()) };
    let bad = crate::sys::SysError::Call { call: "a filter of the images", errno: Errno::EINVAL };
    let insns = sock::filter_from_bytes(&f.insns).ok_or_else(|| fail("SO_ATTACH_FILTER", bad))?;
    sock::attach_filter(fd, &insns).map_err(|e| fail("SO_ATTACH_FILTER", e))?;
    if f.locked {
        sock::set_int(fd, libc::SOL_SOCKET, libc::SO_LOCK_FILTER, 1).map_err(|e| fail("SO_LOCK_FILTER", e))?;
    }
    Ok(())
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
        claims_domain(p, &[libc::AF_INET, libc::AF_INET6])
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
    let fail = |step: &str, e: crate::sys::SysError| -> crate::Error {
        let what = format!("file {}: {}: {step}: {e}", f.id, what(s));
        RestoreError::Unsupported { pid: f.owner_pid, what }.into()
    };
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
