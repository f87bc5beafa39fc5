//! Unix sockets: who is connected to whom (netlink sock_diag), what sits in their
//! receive queues (peeked, not consumed), and socket pairs made again.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::sys::kernel;
use crate::sys::netlink::{attrs, u32_at, Netlink};
use crate::sys::{Errno, SysError, SysResult};

/// One unix socket as sock_diag reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnixInfo {
    pub ino: u32,
    pub sock_type: u8,
    pub state: u8,
    /// Inode of the connected peer, 0 when none.
    pub peer: u32,
    /// Bound address (path or abstract name), when any.
    pub name: Option<Vec<u8>>,
    pub shutdown: u8,
    /// A listener's connections waiting to be accepted and its backlog (else
    /// the bytes queued to read and to send).
    pub rqlen: (u32, u32),
    /// The (dev, inode) of a path-bound socket's file, dev as stat gives it.
    pub vfs: Option<(u64, u32)>,
}

fn err(call: &'static str) -> SysError {
    SysError::Call { call, errno: Errno::last() }
}

/// Every unix socket of this network namespace, by inode (a sock_diag dump).
pub fn all() -> SysResult<HashMap<u32, UnixInfo>> {
    let mut nl = Netlink::of(kernel::NETLINK_SOCK_DIAG, "socket(NETLINK_SOCK_DIAG)")?;
    let req = kernel::unix_diag_req {
        sdiag_family: libc::AF_UNIX as u8,
        udiag_states: u32::MAX,
        udiag_show: kernel::UDIAG_SHOW_NAME
            | kernel::UDIAG_SHOW_PEER
            | kernel::UDIAG_SHOW_RQLEN
            | kernel::UDIAG_SHOW_VFS,
        ..Default::default()
    };
    let by = kernel::SOCK_DIAG_BY_FAMILY;
    let all = nl.dump("sock_diag", by, by, &crate::sys::bytes_of(&req), parse)?;
    Ok(all.into_iter().map(|u| (u.ino, u)).collect())
}

/// One sock_diag reply (a unix_diag_msg and its attributes). Pure, so it is unit
/// tested.
pub fn parse(p: &[u8]) -> Option<UnixInfo> {
    if p.len() < 16 {
        return None;
    }
    let mut info = UnixInfo { sock_type: p[1], state: p[2], ino: u32_at(p, 4), ..Default::default() };
    for (ty, v) in attrs(&p[16..]) {
        match ty as u32 {
            kernel::UNIX_DIAG_PEER if v.len() >= 4 => info.peer = u32_at(v, 0),
            kernel::UNIX_DIAG_NAME => info.name = Some(v.to_vec()),
            kernel::UNIX_DIAG_SHUTDOWN if !v.is_empty() => info.shutdown = v[0],
            kernel::UNIX_DIAG_RQLEN if v.len() >= 8 => info.rqlen = (u32_at(v, 0), u32_at(v, 4)),
            // struct unix_diag_vfs: the inode, then the device as the kernel holds
            // it (major << 20 | minor), not as stat encodes it.
            kernel::UNIX_DIAG_VFS if v.len() >= 8 => {
                let dev = u32_at(v, 4);
                info.vfs = Some((libc::makedev(dev >> 20, dev & 0xf_ffff), u32_at(v, 0)));
            }
            _ => {}
        }
    }
    Some(info)
}

fn peek_off(fd: RawFd) -> SysResult<i32> {
    let mut v: i32 = -1;
    let mut len = 4 as libc::socklen_t;
    // SAFETY: valid out pointers of the right size.
    if unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_PEEK_OFF, (&mut v as *mut i32).cast(), &mut len) } < 0 {
        return Err(err("getsockopt(SO_PEEK_OFF)"));
    }
    Ok(v)
}

fn set_peek_off(fd: RawFd, v: i32) -> SysResult<()> {
    // SAFETY: a valid in pointer of the right size.
    if unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_PEEK_OFF, (&v as *const i32).cast(), 4) } < 0 {
        return Err(err("setsockopt(SO_PEEK_OFF)"));
    }
    Ok(())
}

/// The receive queue of a socket, without consuming it: one entry per message
/// (datagram sockets) or one for all bytes (stream). The socket's peek offset is
/// put back as it was.
pub fn peek_queue(sock: BorrowedFd<'_>, stream: bool) -> SysResult<Vec<Vec<u8>>> {
    let fd = sock.as_raw_fd();
    let saved = peek_off(fd)?;
    set_peek_off(fd, 0)?;
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    let res = loop {
        // SAFETY: receiving into a live buffer.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_PEEK | libc::MSG_DONTWAIT) };
        if n < 0 {
            let e = Errno::last();
            break if e == Errno::EAGAIN { Ok(()) } else { Err(SysError::Call { call: "recv(MSG_PEEK)", errno: e }) };
        }
        if n == 0 && stream {
            break Ok(());
        }
        if stream {
            if out.is_empty() {
                out.push(Vec::new());
            }
            out[0].extend_from_slice(&buf[..n as usize]);
        } else {
            out.push(buf[..n as usize].to_vec());
        }
    };
    set_peek_off(fd, saved)?;
    res.map(|()| out)
}

/// socketpair(AF_UNIX, `sock_type`).
pub fn socketpair(sock_type: i32) -> SysResult<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: socketpair writes two fds into `fds`.
    if unsafe { libc::socketpair(libc::AF_UNIX, sock_type | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } < 0 {
        return Err(err("socketpair"));
    }
    // SAFETY: both were just created and are owned here.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sends one whole message (or stream chunk).
pub fn send_all(fd: BorrowedFd<'_>, msg: &[u8]) -> SysResult<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: sending from a live buffer.
    let n = unsafe { libc::send(fd, msg.as_ptr().cast(), msg.len(), libc::MSG_DONTWAIT) };
    if n != msg.len() as isize {
        return Err(err("send(queued data)"));
    }
    Ok(())
}

/// shutdown(2) with the kernel's sk_shutdown bits (1 receive, 2 send).
pub fn shutdown(fd: BorrowedFd<'_>, bits: u8) -> SysResult<()> {
    let fd = fd.as_raw_fd();
    let how = match bits & 3 {
        0 => return Ok(()),
        1 => libc::SHUT_RD,
        2 => libc::SHUT_WR,
        _ => libc::SHUT_RDWR,
    };
    // SAFETY: shutdown with integer arguments.
    if unsafe { libc::shutdown(fd, how) } < 0 {
        return Err(err("shutdown"));
    }
    Ok(())
}

/// The uid of the process at the other end of a connected unix socket (SO_PEERCRED).
pub fn peer_uid(sock: BorrowedFd<'_>) -> SysResult<u32> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the live `cred`.
    let r = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(err("getsockopt(SO_PEERCRED)"));
    }
    Ok(cred.uid)
}

/// The network namespace socket `sock` was made in (SIOCGSKNS gives an fd of it).
pub fn net_ns_of(sock: BorrowedFd<'_>) -> SysResult<OwnedFd> {
    // SAFETY: SIOCGSKNS takes no argument and returns a new fd, owned below.
    let ns = unsafe { libc::ioctl(sock.as_raw_fd(), kernel::SIOCGSKNS as _) };
    if ns < 0 {
        return Err(err("ioctl(SIOCGSKNS)"));
    }
    // SAFETY: `ns` was just returned to us and is owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(ns) })
}

/// Every unix socket of the network namespace `ns` is open on, by inode. A
/// netlink socket lists its maker's namespace, so a thread of its own enters
/// `ns` to make it (ccr's other threads stay where they are).
pub fn all_in(ns: BorrowedFd<'_>) -> SysResult<HashMap<u32, UnixInfo>> {
    crate::sys::process::in_ns(ns, libc::CLONE_NEWNET, "sock_diag", all)
}

/// What a socket is, for messages: "TCP listening socket on 127.0.0.1:8000",
/// "UDP socket on [::1]:53", "netlink socket", ... (getsockopt and getsockname on
/// a copy of it).
pub fn describe(sock: BorrowedFd<'_>) -> String {
    let opt = |name: i32| -> Option<i32> {
        let mut v: i32 = 0;
        let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `v`.
        let r = unsafe {
            libc::getsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, name, (&mut v as *mut i32).cast(), &mut len)
        };
        (r == 0).then_some(v)
    };
    let (Some(domain), Some(ty)) = (opt(libc::SO_DOMAIN), opt(libc::SO_TYPE)) else {
        return "socket".into();
    };
    let listening = opt(libc::SO_ACCEPTCONN) == Some(1);
    let family = match domain {
        libc::AF_INET | libc::AF_INET6 => match ty {
            libc::SOCK_STREAM => "TCP",
            libc::SOCK_DGRAM => "UDP",
            libc::SOCK_RAW => "raw IP",
            _ => "IP",
        },
        libc::AF_NETLINK => "netlink",
        libc::AF_PACKET => "packet",
        libc::AF_UNIX => "unix",
        libc::AF_VSOCK => "vsock",
        _ => "",
    };
    let family = if family.is_empty() { format!("family {domain}") } else { family.to_string() };
    let kind = if listening { format!("{family} listening socket") } else { format!("{family} socket") };
    // SAFETY: an all-zero sockaddr_storage is a valid out buffer of `len` bytes.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getsockname writes at most `len` bytes into `ss`.
    let named =
        unsafe { libc::getsockname(sock.as_raw_fd(), (&mut ss as *mut libc::sockaddr_storage).cast(), &mut len) } == 0;
    let addr = match (named, domain) {
        (true, libc::AF_INET) => {
            // SAFETY: the kernel filled a sockaddr_in for an AF_INET socket.
            let a: libc::sockaddr_in = unsafe { std::ptr::read((&ss as *const libc::sockaddr_storage).cast()) };
            Some(format!("{}:{}", std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)), u16::from_be(a.sin_port)))
        }
        (true, libc::AF_INET6) => {
            // SAFETY: the kernel filled a sockaddr_in6 for an AF_INET6 socket.
            let a: libc::sockaddr_in6 = unsafe { std::ptr::read((&ss as *const libc::sockaddr_storage).cast()) };
            Some(format!("[{}]:{}", std::net::Ipv6Addr::from(a.sin6_addr.s6_addr), u16::from_be(a.sin6_port)))
        }
        _ => None,
    };
    match addr {
        Some(a) => format!("{kind} on {a}"),
        None => kind,
    }
}

/// The address of unix socket name `name` (a path, or abstract when it starts
/// with a 0 byte).
fn addr_of(name: &[u8]) -> SysResult<nix::sys::socket::UnixAddr> {
    use std::os::unix::ffi::OsStrExt;
    let made = match name.split_first() {
        Some((0, rest)) => nix::sys::socket::UnixAddr::new_abstract(rest),
        _ => nix::sys::socket::UnixAddr::new(std::ffi::OsStr::from_bytes(name)),
    };
    made.map_err(|errno| SysError::Call { call: "sockaddr_un", errno })
}

/// A new unix socket of `sock_type` (SOCK_STREAM, ...), close-on-exec.
pub fn socket(sock_type: i32) -> SysResult<OwnedFd> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType};
    let ty = SockType::try_from(sock_type).map_err(|errno| SysError::Call { call: "socket(AF_UNIX)", errno })?;
    nix::sys::socket::socket(AddressFamily::Unix, ty, SockFlag::SOCK_CLOEXEC, None)
        .map_err(|errno| SysError::Call { call: "socket(AF_UNIX)", errno })
}

/// Binds `sock` to `name`.
pub fn bind(sock: BorrowedFd<'_>, name: &[u8]) -> SysResult<()> {
    nix::sys::socket::bind(sock.as_raw_fd(), &addr_of(name)?).map_err(|errno| SysError::Call { call: "bind", errno })
}

pub fn listen(sock: BorrowedFd<'_>, backlog: u32) -> SysResult<()> {
    let b = nix::sys::socket::Backlog::new(backlog.min(i32::MAX as u32) as i32)
        .map_err(|errno| SysError::Call { call: "listen", errno })?;
    nix::sys::socket::listen(&sock, b).map_err(|errno| SysError::Call { call: "listen", errno })
}

/// Whether some socket answers at `name`: a connection of `sock_type` to it is
/// taken (a stale socket file refuses it).
pub fn answers(name: &[u8], sock_type: i32) -> SysResult<bool> {
    let s = socket(sock_type)?;
    match nix::sys::socket::connect(s.as_raw_fd(), &addr_of(name)?) {
        Ok(()) => Ok(true),
        Err(Errno::ECONNREFUSED | Errno::ENOENT) => Ok(false),
        Err(errno) => Err(SysError::Call { call: "connect", errno }),
    }
}

/// Sends each of `msgs` to the datagram socket at `name` from an unnamed one.
pub fn send_to(name: &[u8], msgs: &[Vec<u8>]) -> SysResult<()> {
    let s = socket(libc::SOCK_DGRAM)?;
    let to = addr_of(name)?;
    for m in msgs {
        nix::sys::socket::sendto(s.as_raw_fd(), m, &to, nix::sys::socket::MsgFlags::empty())
            .map_err(|errno| SysError::Call { call: "sendto", errno })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::netlink::take_replies;

    fn msg(ino: u32, peer: u32, name: Option<&[u8]>) -> Vec<u8> {
        let mut p = vec![libc::AF_UNIX as u8, 1, 1, 0];
        p.extend_from_slice(&ino.to_ne_bytes());
        p.extend_from_slice(&[0; 8]);
        let mut attr = |t: u16, v: &[u8]| {
            p.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
            p.extend_from_slice(&t.to_ne_bytes());
            p.extend_from_slice(v);
            while p.len() % 4 != 0 {
                p.push(0);
            }
        };
        attr(kernel::UNIX_DIAG_PEER as u16, &peer.to_ne_bytes());
        if let Some(n) = name {
            attr(kernel::UNIX_DIAG_NAME as u16, n);
        }
        let mut h = ((16 + p.len()) as u32).to_ne_bytes().to_vec();
        h.extend_from_slice(&(kernel::SOCK_DIAG_BY_FAMILY as u16).to_ne_bytes());
        h.extend_from_slice(&[0; 10]);
        h.extend(p);
        h
    }

    #[test]
    fn parses_peers_and_names() {
        let mut b = msg(10, 11, None);
        b.extend(msg(11, 10, Some(b"/run/x.sock")));
        let mut out = HashMap::new();
        let by = kernel::SOCK_DIAG_BY_FAMILY;
        let mut each = |p: &[u8]| {
            let u = parse(p).unwrap();
            out.insert(u.ino, u);
        };
        // Not done yet: more datagrams follow.
        assert!(!take_replies("sock_diag", &b, 0, by, &mut each).unwrap());
        let mut done = 16u32.to_ne_bytes().to_vec();
        done.extend_from_slice(&(kernel::NLMSG_DONE as u16).to_ne_bytes());
        done.extend_from_slice(&[0; 10]);
        assert!(take_replies("sock_diag", &done, 0, by, &mut each).unwrap());
        assert!(!take_replies("sock_diag", &[1, 0, 0, 0, 0, 0], 0, by, &mut each).unwrap());
        assert_eq!(out[&10].peer, 11);
        assert_eq!(out[&11].name.as_deref(), Some(&b"/run/x.sock"[..]));
    }
}
