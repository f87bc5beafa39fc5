//! Sockets other than unix ones (TCP, UDP, packet): their addresses, state,
//! options and filters through getsockopt/getsockname on a copy, and made again
//! with socket, setsockopt, bind, connect and listen.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::sys::kernel;
use crate::sys::{Errno, SysError, SysResult};

fn err(call: &'static str) -> SysError {
    SysError::Call { call, errno: Errno::last() }
}

/// An address as the images keep it: the family, 4 or 16 bytes and the port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addr {
    pub family: i32,
    pub ip: Vec<u8>,
    pub port: u16,
}

impl Addr {
    /// Unbound: the wildcard address and no port.
    pub fn is_unset(&self) -> bool {
        self.port == 0 && self.ip.iter().all(|&b| b == 0)
    }

    fn to_sockaddr(&self) -> SysResult<(libc::sockaddr_storage, libc::socklen_t)> {
        // SAFETY: an all-zero sockaddr_storage is a valid (unspecified) address.
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let bad = || SysError::Call { call: "an inet address of the images", errno: Errno::EINVAL };
        let len = match self.family {
            libc::AF_INET => {
                let ip: [u8; 4] = self.ip.as_slice().try_into().map_err(|_| bad())?;
                let a = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: self.port.to_be(),
                    sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(ip) },
                    sin_zero: [0; 8],
                };
                // SAFETY: a sockaddr_in fits in a sockaddr_storage.
                unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), a) };
                std::mem::size_of::<libc::sockaddr_in>()
            }
            libc::AF_INET6 => {
                let ip: [u8; 16] = self.ip.as_slice().try_into().map_err(|_| bad())?;
                let a = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: self.port.to_be(),
                    sin6_flowinfo: 0,
                    sin6_addr: libc::in6_addr { s6_addr: ip },
                    sin6_scope_id: 0,
                };
                // SAFETY: a sockaddr_in6 fits in a sockaddr_storage.
                unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), a) };
                std::mem::size_of::<libc::sockaddr_in6>()
            }
            _ => return Err(bad()),
        };
        Ok((ss, len as libc::socklen_t))
    }

    fn from_sockaddr(ss: &libc::sockaddr_storage) -> Option<Addr> {
        match ss.ss_family as i32 {
            libc::AF_INET => {
                // SAFETY: the kernel filled a sockaddr_in for this family.
                let a: libc::sockaddr_in = unsafe { std::ptr::read((ss as *const libc::sockaddr_storage).cast()) };
                let ip = a.sin_addr.s_addr.to_ne_bytes().to_vec();
                Some(Addr { family: libc::AF_INET, ip, port: u16::from_be(a.sin_port) })
            }
            libc::AF_INET6 => {
                // SAFETY: the kernel filled a sockaddr_in6 for this family.
                let a: libc::sockaddr_in6 = unsafe { std::ptr::read((ss as *const libc::sockaddr_storage).cast()) };
                Some(Addr { family: libc::AF_INET6, ip: a.sin6_addr.s6_addr.to_vec(), port: u16::from_be(a.sin6_port) })
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.family, self.ip.len()) {
            (libc::AF_INET, 4) => {
                let ip: [u8; 4] = self.ip.as_slice().try_into().expect("4 bytes");
                write!(f, "{}:{}", std::net::Ipv4Addr::from(ip), self.port)
            }
            (libc::AF_INET6, 16) => {
                let ip: [u8; 16] = self.ip.as_slice().try_into().expect("16 bytes");
                write!(f, "[{}]:{}", std::net::Ipv6Addr::from(ip), self.port)
            }
            _ => write!(f, "(family {}):{}", self.family, self.port),
        }
    }
}

/// An integer socket option (`what` names it in an error).
pub fn get_int(fd: BorrowedFd<'_>, level: i32, name: i32, what: &'static str) -> SysResult<i32> {
    // SAFETY: an i32 is valid all zero.
    unsafe { get_struct(fd, level, name, what) }
}

pub fn set_int(fd: BorrowedFd<'_>, level: i32, name: i32, v: i32) -> SysResult<()> {
    set_struct(fd, level, name, &v, "setsockopt")
}

/// getsockopt into a `T`.
///
/// # Safety
/// `T` must be a plain C type for which all-zero bytes are a valid value.
pub(super) unsafe fn get_struct<T>(fd: BorrowedFd<'_>, level: i32, name: i32, what: &'static str) -> SysResult<T> {
    // SAFETY: the caller vouches that all-zero is a valid T.
    let mut v: T = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `v`.
    let r = unsafe { libc::getsockopt(fd.as_raw_fd(), level, name, (&mut v as *mut T).cast(), &mut len) };
    if r < 0 {
        return Err(err(what));
    }
    Ok(v)
}

/// setsockopt of a `T` as the option's value.
pub(super) fn set_struct<T>(fd: BorrowedFd<'_>, level: i32, name: i32, v: &T, what: &'static str) -> SysResult<()> {
    let len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: setsockopt reads `len` bytes from the live `v`.
    let r = unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, (v as *const T).cast(), len) };
    if r < 0 {
        return Err(err(what));
    }
    Ok(())
}

/// bind to a socket address struct `a` (sockaddr_ll, sockaddr_nl, ...).
fn bind_to<T>(fd: BorrowedFd<'_>, a: &T) -> SysResult<()> {
    let len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: bind reads `len` bytes from the live `a`.
    if unsafe { libc::bind(fd.as_raw_fd(), (a as *const T).cast(), len) } < 0 {
        return Err(err("bind"));
    }
    Ok(())
}

/// A string option (TCP_CONGESTION, SO_BINDTODEVICE); empty when unset.
pub fn get_str(fd: BorrowedFd<'_>, level: i32, name: i32, what: &'static str) -> SysResult<String> {
    let mut buf = [0u8; 64];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `buf`.
    let r = unsafe { libc::getsockopt(fd.as_raw_fd(), level, name, buf.as_mut_ptr().cast(), &mut len) };
    if r < 0 {
        return Err(err(what));
    }
    let got = &buf[..(len as usize).min(buf.len())];
    let got = got.split(|&c| c == 0).next().unwrap_or(got);
    Ok(String::from_utf8_lossy(got).into_owned())
}

pub fn set_str(fd: BorrowedFd<'_>, level: i32, name: i32, v: &str) -> SysResult<()> {
    // SAFETY: setsockopt reads `v.len()` bytes from `v`.
    let r = unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, v.as_ptr().cast(), v.len() as libc::socklen_t) };
    if r < 0 {
        return Err(err("setsockopt"));
    }
    Ok(())
}

/// SO_LINGER: (on, seconds).
pub fn linger(fd: BorrowedFd<'_>) -> SysResult<(bool, i32)> {
    // SAFETY: linger is two ints.
    let l: libc::linger = unsafe { get_struct(fd, libc::SOL_SOCKET, libc::SO_LINGER, "getsockopt(SO_LINGER)")? };
    Ok((l.l_onoff != 0, l.l_linger))
}

pub fn set_linger(fd: BorrowedFd<'_>, on: bool, secs: i32) -> SysResult<()> {
    let l = libc::linger { l_onoff: on as i32, l_linger: secs };
    set_struct(fd, libc::SOL_SOCKET, libc::SO_LINGER, &l, "setsockopt(SO_LINGER)")
}

/// TCP_INFO: a TCP socket's state; for a listener, its accept queue
/// (tcpi_unacked) and backlog (tcpi_sacked).
pub fn tcp_info(fd: BorrowedFd<'_>) -> SysResult<kernel::tcp_info> {
    // SAFETY: tcp_info is plain integers; all-zero is valid.
    unsafe { get_struct(fd, libc::IPPROTO_TCP, libc::TCP_INFO, "getsockopt(TCP_INFO)") }
}

/// How many classic BPF instructions the socket's filter has (0: none).
pub fn filter_len(fd: BorrowedFd<'_>) -> SysResult<u32> {
    let mut len: libc::socklen_t = 0;
    // SAFETY: with a zero length the kernel writes only the count into `len`.
    let r = unsafe {
        libc::getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_GET_FILTER, std::ptr::null_mut(), &mut len)
    };
    if r < 0 {
        return Err(err("getsockopt(SO_GET_FILTER)"));
    }
    Ok(len)
}

/// The bytes waiting to be read (for a datagram socket: the next datagram's size).
pub fn inq(fd: BorrowedFd<'_>) -> SysResult<i32> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) } < 0 {
        return Err(err("ioctl(FIONREAD)"));
    }
    Ok(n)
}

/// What poll(2) reports of the socket right now (every event asked).
pub fn events_now(fd: BorrowedFd<'_>) -> SysResult<i16> {
    let all = libc::POLLIN | libc::POLLPRI | libc::POLLOUT | libc::POLLRDHUP;
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: all, revents: 0 };
    // SAFETY: one valid pollfd, no wait.
    if unsafe { libc::poll(&mut p, 1, 0) } < 0 {
        return Err(err("poll"));
    }
    Ok(p.revents)
}

/// The local address (getsockname).
pub fn local(fd: BorrowedFd<'_>) -> SysResult<Addr> {
    name_of(fd, false)?.ok_or(SysError::Call { call: "getsockname: not an inet socket", errno: Errno::EAFNOSUPPORT })
}

/// The peer's address (getpeername); None when not connected.
pub fn peer(fd: BorrowedFd<'_>) -> SysResult<Option<Addr>> {
    match name_of(fd, true) {
        Err(SysError::Call { errno: Errno::ENOTCONN, .. }) => Ok(None),
        other => other,
    }
}

fn name_of(fd: BorrowedFd<'_>, peer: bool) -> SysResult<Option<Addr>> {
    // SAFETY: sockaddr_storage is a plain C struct, valid all zero.
    let ss: libc::sockaddr_storage = unsafe { raw_name(fd, peer)? };
    Ok(Addr::from_sockaddr(&ss))
}

/// getsockname (or with `peer` getpeername) into a `T`, a socket address struct.
///
/// # Safety
/// `T` must be a plain C struct for which all-zero bytes are a valid value.
unsafe fn raw_name<T>(fd: BorrowedFd<'_>, peer: bool) -> SysResult<T> {
    // SAFETY: the caller vouches that all-zero is a valid T.
    let mut a: T = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    let p = (&mut a as *mut T).cast();
    // SAFETY: get{sock,peer}name write at most `len` bytes into `a`.
    let r = unsafe {
        if peer {
            libc::getpeername(fd.as_raw_fd(), p, &mut len)
        } else {
            libc::getsockname(fd.as_raw_fd(), p, &mut len)
        }
    };
    if r < 0 {
        return Err(err(if peer { "getpeername" } else { "getsockname" }));
    }
    Ok(a)
}

/// A new socket, close-on-exec.
pub fn socket(family: i32, sock_type: i32, protocol: i32) -> SysResult<OwnedFd> {
    // SAFETY: socket(2) with integer arguments; the fd is owned below.
    let fd = unsafe { libc::socket(family, sock_type | libc::SOCK_CLOEXEC, protocol) };
    if fd < 0 {
        return Err(err("socket"));
    }
    // SAFETY: just created, owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn bind(fd: BorrowedFd<'_>, a: &Addr) -> SysResult<()> {
    let (ss, len) = a.to_sockaddr()?;
    // SAFETY: `ss` holds a valid address of `len` bytes.
    if unsafe { libc::bind(fd.as_raw_fd(), (&ss as *const libc::sockaddr_storage).cast(), len) } < 0 {
        return Err(err("bind"));
    }
    Ok(())
}

pub fn connect(fd: BorrowedFd<'_>, a: &Addr) -> SysResult<()> {
    let (ss, len) = a.to_sockaddr()?;
    // SAFETY: `ss` holds a valid address of `len` bytes.
    if unsafe { libc::connect(fd.as_raw_fd(), (&ss as *const libc::sockaddr_storage).cast(), len) } < 0 {
        return Err(err("connect"));
    }
    Ok(())
}

/// accept4(2) of the next connection, close-on-exec, its peer not asked.
pub fn accept(fd: BorrowedFd<'_>) -> SysResult<OwnedFd> {
    // SAFETY: no address asked; the new fd is owned here.
    let a = unsafe { libc::accept4(fd.as_raw_fd(), std::ptr::null_mut(), std::ptr::null_mut(), libc::SOCK_CLOEXEC) };
    if a < 0 {
        return Err(err("accept4"));
    }
    // SAFETY: just accepted, owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(a) })
}

pub fn listen(fd: BorrowedFd<'_>, backlog: u32) -> SysResult<()> {
    // SAFETY: listen(2) with integer arguments.
    if unsafe { libc::listen(fd.as_raw_fd(), backlog.min(i32::MAX as u32) as i32) } < 0 {
        return Err(err("listen"));
    }
    Ok(())
}

/// The socket's classic BPF filter (SO_GET_FILTER; empty: none).
pub fn filter(fd: BorrowedFd<'_>) -> SysResult<Vec<kernel::sock_filter>> {
    let n = filter_len(fd)?;
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut insns = vec![kernel::sock_filter { code: 0, jt: 0, jf: 0, k: 0 }; n as usize];
    // The length is counted in instructions, not bytes.
    let mut len = n as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` instructions into `insns`.
    let r = unsafe {
        libc::getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_GET_FILTER, insns.as_mut_ptr().cast(), &mut len)
    };
    if r < 0 {
        return Err(err("getsockopt(SO_GET_FILTER)"));
    }
    insns.truncate(len as usize);
    Ok(insns)
}

/// Attaches a classic BPF filter (SO_ATTACH_FILTER).
/// Takes the socket's classic BPF filter away (none: ENOENT).
pub fn detach_filter(fd: BorrowedFd<'_>) -> SysResult<()> {
    set_int(fd, libc::SOL_SOCKET, libc::SO_DETACH_FILTER, 0)
}

pub fn attach_filter(fd: BorrowedFd<'_>, insns: &[kernel::sock_filter]) -> SysResult<()> {
    // The kernel copies `len` instructions from the live `insns`.
    let prog = kernel::sock_fprog { len: insns.len() as u16, filter: insns.as_ptr() as *mut kernel::sock_filter };
    set_struct(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog, "setsockopt(SO_ATTACH_FILTER)")
}

/// A packet socket's address: the interface it is bound to (0: none) and the
/// protocol it takes (network order, as socket(2) and sockaddr_ll have it).
pub fn packet_local(fd: BorrowedFd<'_>) -> SysResult<(i32, u16)> {
    // SAFETY: sockaddr_ll is a plain C struct, valid all zero.
    let a: libc::sockaddr_ll = unsafe { raw_name(fd, false)? };
    Ok((a.sll_ifindex, a.sll_protocol))
}

/// Binds a packet socket to interface `ifindex` (0: every one) and `protocol`.
pub fn packet_bind(fd: BorrowedFd<'_>, ifindex: i32, protocol: u16) -> SysResult<()> {
    // SAFETY: an all-zero sockaddr_ll is valid; the fields that matter are set.
    let mut a: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    a.sll_family = libc::AF_PACKET as u16;
    a.sll_protocol = protocol;
    a.sll_ifindex = ifindex;
    bind_to(fd, &a)
}

/// The name of interface `ifindex` of the socket's network namespace.
pub fn if_name(fd: BorrowedFd<'_>, ifindex: i32) -> SysResult<String> {
    // SAFETY: an all-zero ifreq is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    req.ifr_ifru.ifru_ifindex = ifindex;
    // SAFETY: SIOCGIFNAME reads the index from and writes the name into `req`.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFNAME, &mut req) } < 0 {
        return Err(err("ioctl(SIOCGIFNAME)"));
    }
    let name: Vec<u8> = req.ifr_name.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    Ok(String::from_utf8_lossy(&name).into_owned())
}

/// The index of interface `name` of the socket's network namespace.
pub fn if_index(fd: BorrowedFd<'_>, name: &str) -> SysResult<i32> {
    // SAFETY: an all-zero ifreq is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes().take(libc::IFNAMSIZ - 1)) {
        *d = s as libc::c_char;
    }
    // SAFETY: SIOCGIFINDEX reads the name from and writes the index into `req`.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFINDEX, &mut req) } < 0 {
        return Err(err("ioctl(SIOCGIFINDEX)"));
    }
    // SAFETY: SIOCGIFINDEX filled the index member.
    Ok(unsafe { req.ifr_ifru.ifru_ifindex })
}

/// Filter instructions as the images keep them: 8 bytes each, little-endian.
pub fn filter_bytes(insns: &[kernel::sock_filter]) -> Vec<u8> {
    let mut out = Vec::with_capacity(insns.len() * 8);
    for i in insns {
        out.extend_from_slice(&i.code.to_le_bytes());
        out.extend_from_slice(&[i.jt, i.jf]);
        out.extend_from_slice(&i.k.to_le_bytes());
    }
    out
}

/// The instructions of [`filter_bytes`]; None when the length is not a whole
/// number of them.
pub fn filter_from_bytes(b: &[u8]) -> Option<Vec<kernel::sock_filter>> {
    if !b.len().is_multiple_of(8) {
        return None;
    }
    let insn = |c: &[u8]| kernel::sock_filter {
        code: u16::from_le_bytes([c[0], c[1]]),
        jt: c[2],
        jf: c[3],
        k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
    };
    Some(b.chunks_exact(8).map(insn).collect())
}

/// A netlink socket's port id and its peer's (port id, groups) as getsockname
/// and getpeername give them.
pub fn netlink_names(fd: BorrowedFd<'_>) -> SysResult<(u32, (u32, u32))> {
    // SAFETY: sockaddr_nl is a plain C struct, valid all zero.
    let (local, peer): (kernel::sockaddr_nl, kernel::sockaddr_nl) =
        unsafe { (raw_name(fd, false)?, raw_name(fd, true)?) };
    Ok((local.nl_pid, (peer.nl_pid, peer.nl_groups)))
}

/// The multicast groups a netlink socket listens to, as bitmap words.
pub fn netlink_groups(fd: BorrowedFd<'_>) -> SysResult<Vec<u32>> {
    let mut words = vec![0u32; 32];
    let mut len = (words.len() * 4) as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `words` and says how many it needs.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_NETLINK,
            kernel::NETLINK_LIST_MEMBERSHIPS as i32,
            words.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(err("getsockopt(NETLINK_LIST_MEMBERSHIPS)"));
    }
    if len as usize > words.len() * 4 {
        return Err(SysError::Call {
            call: "getsockopt(NETLINK_LIST_MEMBERSHIPS): over 1024 groups",
            errno: Errno::E2BIG,
        });
    }
    words.truncate(len as usize / 4);
    while words.last() == Some(&0) {
        words.pop();
    }
    Ok(words)
}

/// Binds a netlink socket to port id `port_id`, in no group.
pub fn netlink_bind(fd: BorrowedFd<'_>, port_id: u32) -> SysResult<()> {
    // SAFETY: an all-zero sockaddr_nl is valid; family and port id are set.
    let mut a: kernel::sockaddr_nl = unsafe { std::mem::zeroed() };
    a.nl_family = libc::AF_NETLINK as u16;
    a.nl_pid = port_id;
    bind_to(fd, &a)
}

/// Whether a message waits to be read (peeked, not taken), for sockets without
/// FIONREAD (netlink).
pub fn has_queued(fd: BorrowedFd<'_>) -> SysResult<bool> {
    let mut b = [0u8; 1];
    // SAFETY: peeking at most one byte into `b`.
    let n = unsafe { libc::recv(fd.as_raw_fd(), b.as_mut_ptr().cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT) };
    match n {
        n if n >= 0 => Ok(true),
        _ if Errno::last() == Errno::EAGAIN => Ok(false),
        _ => Err(err("recv(MSG_PEEK)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_instructions_round_trip_through_their_bytes() {
        let insns = [
            kernel::sock_filter { code: 0x30, jt: 0, jf: 0, k: 9 },
            kernel::sock_filter { code: 0x15, jt: 1, jf: 2, k: 0x1122_3344 },
            kernel::sock_filter { code: 0x06, jt: 0, jf: 0, k: 0xffff },
        ];
        let b = filter_bytes(&insns);
        assert_eq!(b.len(), 24);
        assert_eq!(&b[8..16], &[0x15, 0, 1, 2, 0x44, 0x33, 0x22, 0x11]);
        let back = filter_from_bytes(&b).unwrap();
        assert!(back.iter().zip(&insns).all(|(a, b)| (a.code, a.jt, a.jf, a.k) == (b.code, b.jt, b.jf, b.k)));
        assert!(filter_from_bytes(&b[..23]).is_none());
    }

    #[test]
    fn addresses_read_as_users_write_them() {
        let v4 = Addr { family: libc::AF_INET, ip: vec![127, 0, 0, 1], port: 80 };
        assert_eq!(v4.to_string(), "127.0.0.1:80");
        let mut ip = vec![0; 16];
        ip[15] = 1;
        assert_eq!(Addr { family: libc::AF_INET6, ip, port: 53 }.to_string(), "[::1]:53");
        assert!(Addr { family: libc::AF_INET, ip: vec![0; 4], port: 0 }.is_unset());
        assert!(!v4.is_unset());
        let (ss, len) = v4.to_sockaddr().unwrap();
        assert_eq!(len as usize, std::mem::size_of::<libc::sockaddr_in>());
        assert_eq!(Addr::from_sockaddr(&ss), Some(v4));
    }
}
