//! Netlink: a socket of one protocol, its dumps and acknowledged requests, and
//! the framing of its messages and attributes (sock_diag in `unix_sock` uses it
//! too). For rtnetlink (NETLINK_ROUTE): the links, addresses and routes of a
//! network namespace. A netlink socket belongs to the namespace of the thread
//! that makes it, so a thread that entered another namespace (setns) talks to
//! that one through `Route::open`.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::sys::{bytes_of, from_bytes, kernel};
use crate::sys::{Errno, SysError, SysResult};

/// One link (RTM_NEWLINK of a dump).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Link {
    pub index: i32,
    pub name: String,
    /// IFLA_INFO_KIND ("veth", "bridge", ...); None for lo and other kindless devices.
    pub kind: Option<String>,
    /// ARPHRD_* of the device.
    pub link_type: u16,
    pub flags: u32,
    pub mtu: u32,
    /// IFLA_ADDRESS: the hardware (MAC) address.
    pub mac: Vec<u8>,
    /// IFLA_LINK: the index of the device it is tied to (a veth's peer), in the
    /// namespace `link_netnsid` names, else in its own.
    pub link: Option<i32>,
    /// IFLA_LINK_NETNSID: set when that device is in another namespace.
    pub link_netnsid: Option<i32>,
    /// IFLA_MASTER: the bridge (or bond) it is a port of.
    pub master: Option<i32>,
}

/// One address (RTM_NEWADDR of a dump, or one to add).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Addr {
    pub family: u8,
    pub prefix_len: u8,
    /// IFA_F_*: IFA_FLAGS when given, else the header's 8 bits.
    pub flags: u32,
    pub scope: u8,
    pub index: u32,
    pub local: Option<IpAddr>,
    pub address: Option<IpAddr>,
    pub broadcast: Option<IpAddr>,
    pub label: Option<String>,
    /// Seconds left; u32::MAX is forever.
    pub valid_lft: u32,
    pub preferred_lft: u32,
}

/// One route (RTM_NEWROUTE of a dump, or one to add), as much as ccr looks at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteEntry {
    pub family: u8,
    pub dst_len: u8,
    pub table: u32,
    /// RTPROT_*: who made it (RTPROT_KERNEL: the kernel, for an address).
    pub protocol: u8,
    /// RT_SCOPE_*.
    pub scope: u8,
    /// RTN_* (RTN_UNICAST: an ordinary route).
    pub kind: u8,
    /// RTNH_F_* of the header (RTNH_F_ONLINK: the gateway is on the link).
    pub flags: u32,
    pub dst: Option<IpAddr>,
    /// RTA_OIF: the device it goes out of.
    pub oif: Option<u32>,
    pub gateway: Option<IpAddr>,
    /// RTA_PREFSRC: the source address it prefers.
    pub prefsrc: Option<IpAddr>,
    /// RTA_PRIORITY: the metric.
    pub priority: Option<u32>,
    /// RTA_MULTIPATH: more than one next hop (ccr saves none such).
    pub multipath: bool,
    /// What else the route has that the fields above do not hold (metrics, an
    /// encapsulation, an expiry, ...), by name: a dump refuses such a route.
    pub unsaved: Vec<&'static str>,
}

/// One policy routing rule (RTM_NEWRULE of a dump), as much as ccr looks at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    pub family: u8,
    /// FRA_PRIORITY (0 when absent).
    pub priority: u32,
    /// FRA_TABLE, else the header's.
    pub table: u32,
    /// FRA_PROTOCOL: RTPROT_KERNEL for the kernel's own default rules.
    pub protocol: u8,
}

/// A veth pair to make (RTM_NEWLINK of kind veth): this end in the namespace of
/// the socket, the peer by its own name in the same one. An empty MAC or a 0
/// index: the kernel's choice.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewVeth {
    pub name: String,
    pub mac: Vec<u8>,
    pub mtu: u32,
    pub index: i32,
    pub peer: String,
    pub peer_mac: Vec<u8>,
    pub peer_mtu: u32,
    pub peer_index: i32,
}

/// A netlink socket of the calling thread's network namespace (`Route`: of
/// NETLINK_ROUTE).
pub struct Netlink {
    sock: OwnedFd,
    seq: u32,
}

const HDR: usize = std::mem::size_of::<kernel::nlmsghdr>();

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

pub type Route = Netlink;

pub(crate) fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_ne_bytes([b[o], b[o + 1]])
}

pub(crate) fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_ne_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}

/// One netlink message of a datagram: (type, flags, seq, payload).
type Message<'a> = (u16, u16, u32, &'a [u8]);

/// Splits a datagram into its messages. Pure, so it is unit tested.
fn messages(mut b: &[u8]) -> SysResult<Vec<Message<'_>>> {
    let mut out = Vec::new();
    while b.len() >= HDR {
        let h: kernel::nlmsghdr = from_bytes(b);
        let len = h.nlmsg_len as usize;
        if len < HDR || len > b.len() {
            return Err(SysError::Call { call: "rtnetlink (a truncated message)", errno: Errno::EPROTO });
        }
        out.push((h.nlmsg_type, h.nlmsg_flags, h.nlmsg_seq, &b[HDR..len]));
        b = &b[align4(len).min(b.len())..];
    }
    Ok(out)
}

/// The attributes (type without the nested/byte-order bits, value) in `b`. Pure.
pub(crate) fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16_at(b, 0) as usize;
        let ty = u16_at(b, 2) & kernel::NLA_TYPE_MASK as u16;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((ty, &b[4..len]));
        b = &b[align4(len).min(b.len())..];
    }
    out
}

/// Hands each payload of type `want` answering request `seq` in datagram `d` to
/// `each`; whether the answer is complete (NLMSG_DONE, or the acknowledgement).
/// Pure, so it is unit tested.
pub(crate) fn take_replies(
    call: &'static str,
    d: &[u8],
    seq: u32,
    want: u32,
    each: &mut impl FnMut(&[u8]),
) -> SysResult<bool> {
    for (ty, _, s, p) in messages(d)? {
        if s != seq {
            continue;
        }
        match ty as u32 {
            kernel::NLMSG_DONE => return Ok(true),
            kernel::NLMSG_ERROR => {
                let e = if p.len() >= 4 { -(u32_at(p, 0) as i32) } else { libc::EPROTO };
                return if e == 0 { Ok(true) } else { Err(SysError::Call { call, errno: Errno::from_raw(e) }) };
            }
            t if t == want => each(p),
            _ => {}
        }
    }
    Ok(false)
}

/// One attribute, padded, as a request carries it.
fn attr(ty: u32, value: &[u8]) -> Vec<u8> {
    let h = kernel::nlattr { nla_len: (4 + value.len()) as u16, nla_type: ty as u16 };
    let mut out = bytes_of(&h);
    out.extend_from_slice(value);
    out.resize(align4(out.len()), 0);
    out
}

fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v.split(|&c| c == 0).next().unwrap_or_default()).into_owned()
}

fn ip(family: u8, v: &[u8]) -> Option<IpAddr> {
    match (family as i32, v.len()) {
        (libc::AF_INET, 4) => Some(IpAddr::from(<[u8; 4]>::try_from(v).ok()?)),
        (libc::AF_INET6, 16) => Some(IpAddr::from(<[u8; 16]>::try_from(v).ok()?)),
        _ => None,
    }
}

fn ip_bytes(a: &IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// A link from the payload of an RTM_NEWLINK. Pure.
fn parse_link(p: &[u8]) -> Option<Link> {
    let n = std::mem::size_of::<kernel::ifinfomsg>();
    if p.len() < n {
        return None;
    }
    let m: kernel::ifinfomsg = from_bytes(p);
    let mut l = Link { index: m.ifi_index, link_type: m.ifi_type, flags: m.ifi_flags, ..Default::default() };
    for (ty, v) in attrs(&p[n..]) {
        match ty as u32 {
            kernel::IFLA_IFNAME => l.name = text(v),
            kernel::IFLA_MTU if v.len() >= 4 => l.mtu = u32_at(v, 0),
            kernel::IFLA_ADDRESS => l.mac = v.to_vec(),
            kernel::IFLA_LINK if v.len() >= 4 => l.link = Some(u32_at(v, 0) as i32),
            kernel::IFLA_LINK_NETNSID if v.len() >= 4 => l.link_netnsid = Some(u32_at(v, 0) as i32),
            kernel::IFLA_MASTER if v.len() >= 4 => l.master = Some(u32_at(v, 0) as i32),
            kernel::IFLA_LINKINFO => {
                l.kind = attrs(v).into_iter().find(|(t, _)| *t as u32 == kernel::IFLA_INFO_KIND).map(|(_, k)| text(k))
            }
            _ => {}
        }
    }
    Some(l)
}

/// An address from the payload of an RTM_NEWADDR. Pure.
fn parse_addr(p: &[u8]) -> Option<Addr> {
    let n = std::mem::size_of::<kernel::ifaddrmsg>();
    if p.len() < n {
        return None;
    }
    let m: kernel::ifaddrmsg = from_bytes(p);
    let f = m.ifa_family;
    let mut a = Addr {
        family: f,
        prefix_len: m.ifa_prefixlen,
        flags: m.ifa_flags as u32,
        scope: m.ifa_scope,
        index: m.ifa_index,
        valid_lft: u32::MAX,
        preferred_lft: u32::MAX,
        ..Default::default()
    };
    for (ty, v) in attrs(&p[n..]) {
        match ty as u32 {
            kernel::IFA_LOCAL => a.local = ip(f, v),
            kernel::IFA_ADDRESS => a.address = ip(f, v),
            kernel::IFA_BROADCAST => a.broadcast = ip(f, v),
            kernel::IFA_LABEL => a.label = Some(text(v)),
            kernel::IFA_FLAGS if v.len() >= 4 => a.flags = u32_at(v, 0),
            kernel::IFA_CACHEINFO if v.len() >= std::mem::size_of::<kernel::ifa_cacheinfo>() => {
                let c: kernel::ifa_cacheinfo = from_bytes(v);
                (a.valid_lft, a.preferred_lft) = (c.ifa_valid, c.ifa_prefered);
            }
            _ => {}
        }
    }
    Some(a)
}

/// A route from the payload of an RTM_NEWROUTE. Pure.
fn parse_route(p: &[u8]) -> Option<RouteEntry> {
    let n = std::mem::size_of::<kernel::rtmsg>();
    if p.len() < n {
        return None;
    }
    let m: kernel::rtmsg = from_bytes(p);
    let f = m.rtm_family;
    let mut r = RouteEntry {
        family: f,
        dst_len: m.rtm_dst_len,
        table: m.rtm_table as u32,
        protocol: m.rtm_protocol,
        scope: m.rtm_scope,
        kind: m.rtm_type,
        flags: m.rtm_flags,
        ..Default::default()
    };
    if m.rtm_src_len > 0 {
        r.unsaved.push("a source prefix");
    }
    if m.rtm_tos > 0 {
        r.unsaved.push("a TOS");
    }
    for (ty, v) in attrs(&p[n..]) {
        match ty as u32 {
            kernel::rtattr_type_t_RTA_DST => r.dst = ip(f, v),
            kernel::rtattr_type_t_RTA_TABLE if v.len() >= 4 => r.table = u32_at(v, 0),
            kernel::rtattr_type_t_RTA_OIF if v.len() >= 4 => r.oif = Some(u32_at(v, 0)),
            kernel::rtattr_type_t_RTA_GATEWAY => r.gateway = ip(f, v),
            kernel::rtattr_type_t_RTA_PREFSRC => r.prefsrc = ip(f, v),
            kernel::rtattr_type_t_RTA_PRIORITY if v.len() >= 4 => r.priority = Some(u32_at(v, 0)),
            kernel::rtattr_type_t_RTA_MULTIPATH => r.multipath = true,
            kernel::rtattr_type_t_RTA_METRICS if !v.is_empty() => r.unsaved.push("metrics (mtu, advmss, ...)"),
            // IPv6 routes say their preference; medium (0) is what one added without gets.
            kernel::rtattr_type_t_RTA_PREF if v.first().is_some_and(|&p| p != 0) => r.unsaved.push("a preference"),
            kernel::rtattr_type_t_RTA_VIA => r.unsaved.push("a next hop of another family"),
            kernel::rtattr_type_t_RTA_ENCAP | kernel::rtattr_type_t_RTA_ENCAP_TYPE => {
                r.unsaved.push("an encapsulation")
            }
            kernel::rtattr_type_t_RTA_EXPIRES => r.unsaved.push("an expiry"),
            kernel::rtattr_type_t_RTA_NH_ID => r.unsaved.push("a nexthop object"),
            kernel::rtattr_type_t_RTA_FLOW => r.unsaved.push("a realm"),
            _ => {}
        }
    }
    r.unsaved.dedup();
    Some(r)
}

/// A rule from the payload of an RTM_NEWRULE. Pure.
fn parse_rule(p: &[u8]) -> Option<Rule> {
    let n = std::mem::size_of::<kernel::fib_rule_hdr>();
    if p.len() < n {
        return None;
    }
    let h: kernel::fib_rule_hdr = from_bytes(p);
    let mut r = Rule { family: h.family, table: h.table as u32, ..Default::default() };
    for (ty, v) in attrs(&p[n..]) {
        match ty as u32 {
            kernel::FRA_PRIORITY if v.len() >= 4 => r.priority = u32_at(v, 0),
            kernel::FRA_TABLE if v.len() >= 4 => r.table = u32_at(v, 0),
            kernel::FRA_PROTOCOL if !v.is_empty() => r.protocol = v[0],
            _ => {}
        }
    }
    Some(r)
}

/// The body of an RTM_NEWROUTE that adds `r`. Pure.
fn route_body(r: &RouteEntry) -> Vec<u8> {
    let m = kernel::rtmsg {
        rtm_family: r.family,
        rtm_dst_len: r.dst_len,
        rtm_table: if r.table < 256 { r.table as u8 } else { kernel::rt_class_t_RT_TABLE_UNSPEC as u8 },
        rtm_protocol: r.protocol,
        rtm_scope: r.scope,
        rtm_type: r.kind,
        rtm_flags: r.flags,
        ..Default::default()
    };
    let mut body = bytes_of(&m);
    body.extend(attr(kernel::rtattr_type_t_RTA_TABLE, &r.table.to_ne_bytes()));
    for (ty, v) in [
        (kernel::rtattr_type_t_RTA_DST, &r.dst),
        (kernel::rtattr_type_t_RTA_GATEWAY, &r.gateway),
        (kernel::rtattr_type_t_RTA_PREFSRC, &r.prefsrc),
    ] {
        if let Some(v) = v {
            body.extend(attr(ty, &ip_bytes(v)));
        }
    }
    for (ty, v) in [(kernel::rtattr_type_t_RTA_OIF, r.oif), (kernel::rtattr_type_t_RTA_PRIORITY, r.priority)] {
        if let Some(v) = v {
            body.extend(attr(ty, &v.to_ne_bytes()));
        }
    }
    body
}

fn name_attr(ty: u32, name: &str) -> Vec<u8> {
    let mut v = name.as_bytes().to_vec();
    v.push(0);
    attr(ty, &v)
}

/// The body of the RTM_NEWLINK that makes veth pair `v`. Pure.
///
/// Layout: ifinfomsg (with the index), IFLA_IFNAME, IFLA_MTU, IFLA_ADDRESS,
/// IFLA_LINKINFO { IFLA_INFO_KIND "veth", IFLA_INFO_DATA { VETH_INFO_PEER:
/// ifinfomsg of the peer (its index), its IFLA_IFNAME, IFLA_MTU, IFLA_ADDRESS } }.
fn veth_body(v: &NewVeth) -> Vec<u8> {
    let end = |index: i32, name: &str, mtu: u32, mac: &[u8]| {
        let m = kernel::ifinfomsg { ifi_family: libc::AF_UNSPEC as u8, ifi_index: index, ..Default::default() };
        let mut b = bytes_of(&m);
        b.extend(name_attr(kernel::IFLA_IFNAME, name));
        b.extend(attr(kernel::IFLA_MTU, &mtu.to_ne_bytes()));
        if !mac.is_empty() {
            b.extend(attr(kernel::IFLA_ADDRESS, mac));
        }
        b
    };
    let data = attr(kernel::VETH_INFO_PEER, &end(v.peer_index, &v.peer, v.peer_mtu, &v.peer_mac));
    let mut info = attr(kernel::IFLA_INFO_KIND, b"veth");
    info.extend(attr(kernel::IFLA_INFO_DATA, &data));
    let mut body = end(v.index, &v.name, v.mtu, &v.mac);
    body.extend(attr(kernel::IFLA_LINKINFO, &info));
    body
}

impl Netlink {
    /// socket(AF_NETLINK, NETLINK_ROUTE) in the calling thread's network namespace.
    pub fn open() -> SysResult<Netlink> {
        Netlink::of(kernel::NETLINK_ROUTE, "socket(NETLINK_ROUTE)")
    }

    /// socket(AF_NETLINK, `protocol`) in the calling thread's network namespace.
    pub fn of(protocol: u32, call: &'static str) -> SysResult<Netlink> {
        // SAFETY: creating a socket; owned below.
        let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, protocol as i32) };
        if fd < 0 {
            return Err(SysError::last(call));
        }
        // SAFETY: `fd` was just created and is owned here.
        Ok(Netlink { sock: unsafe { OwnedFd::from_raw_fd(fd) }, seq: 0 })
    }

    fn send(&mut self, call: &'static str, ty: u32, flags: u32, body: &[u8]) -> SysResult<u32> {
        self.seq += 1;
        let hdr = kernel::nlmsghdr {
            nlmsg_len: (HDR + body.len()) as u32,
            nlmsg_type: ty as u16,
            nlmsg_flags: (kernel::NLM_F_REQUEST | flags) as u16,
            nlmsg_seq: self.seq,
            nlmsg_pid: 0,
        };
        let mut msg = bytes_of(&hdr);
        msg.extend_from_slice(body);
        // SAFETY: sending from a live buffer of `msg.len()` bytes.
        if unsafe { libc::send(self.sock.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) } < 0 {
            return Err(SysError::last(call));
        }
        Ok(self.seq)
    }

    /// Reads replies to request `seq` and hands each payload of type `want` to
    /// `each`, until NLMSG_DONE (a dump) or the acknowledgement (a request).
    fn replies(&mut self, call: &'static str, seq: u32, want: u32, mut each: impl FnMut(&[u8])) -> SysResult<()> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: receiving into a live buffer of `buf.len()` bytes; MSG_TRUNC
            // makes the kernel say how long the datagram really was.
            let n = unsafe { libc::recv(self.sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_TRUNC) };
            if n < 0 {
                return Err(SysError::last(call));
            }
            if n as usize > buf.len() {
                return Err(SysError::Call { call, errno: Errno::EMSGSIZE });
            }
            if take_replies(call, &buf[..n as usize], seq, want, &mut each)? {
                return Ok(());
            }
        }
    }

    /// A dump request of `ty` with header `body`; the payloads of type `reply`.
    pub(crate) fn dump<T>(
        &mut self,
        call: &'static str,
        ty: u32,
        reply: u32,
        body: &[u8],
        parse: fn(&[u8]) -> Option<T>,
    ) -> SysResult<Vec<T>> {
        let seq = self.send(call, ty, kernel::NLM_F_DUMP, body)?;
        let mut out = Vec::new();
        self.replies(call, seq, reply, |p| out.extend(parse(p)))?;
        Ok(out)
    }

    fn request(&mut self, call: &'static str, ty: u32, flags: u32, body: &[u8]) -> SysResult<()> {
        let seq = self.send(call, ty, kernel::NLM_F_ACK | flags, body)?;
        self.replies(call, seq, u32::MAX, |_| {})
    }

    /// Every link (RTM_GETLINK dump).
    pub fn links(&mut self) -> SysResult<Vec<Link>> {
        let m = kernel::ifinfomsg { ifi_family: libc::AF_UNSPEC as u8, ..Default::default() };
        self.dump("RTM_GETLINK", kernel::RTM_GETLINK, kernel::RTM_NEWLINK, &bytes_of(&m), parse_link)
    }

    /// Every address of every family (RTM_GETADDR dump).
    pub fn addresses(&mut self) -> SysResult<Vec<Addr>> {
        let m = kernel::ifaddrmsg { ifa_family: libc::AF_UNSPEC as u8, ..Default::default() };
        self.dump("RTM_GETADDR", kernel::RTM_GETADDR, kernel::RTM_NEWADDR, &bytes_of(&m), parse_addr)
    }

    /// Every route of every table and family (RTM_GETROUTE dump).
    pub fn routes(&mut self) -> SysResult<Vec<RouteEntry>> {
        let m = kernel::rtmsg { rtm_family: libc::AF_UNSPEC as u8, ..Default::default() };
        self.dump("RTM_GETROUTE", kernel::RTM_GETROUTE, kernel::RTM_NEWROUTE, &bytes_of(&m), parse_route)
    }

    /// Every policy routing rule of every family (RTM_GETRULE dump).
    pub fn rules(&mut self) -> SysResult<Vec<Rule>> {
        let m = kernel::fib_rule_hdr { family: libc::AF_UNSPEC as u8, ..Default::default() };
        self.dump("RTM_GETRULE", kernel::RTM_GETRULE, kernel::RTM_NEWRULE, &bytes_of(&m), parse_rule)
    }

    /// The link named `name`, if there is one.
    pub fn link_by_name(&mut self, name: &str) -> SysResult<Option<Link>> {
        Ok(self.links()?.into_iter().find(|l| l.name == name))
    }

    /// RTM_NEWLINK of kind veth (NLM_F_CREATE|NLM_F_EXCL: EEXIST when a name is taken).
    pub fn add_veth(&mut self, v: &NewVeth) -> SysResult<()> {
        let flags = kernel::NLM_F_CREATE | kernel::NLM_F_EXCL;
        self.request("RTM_NEWLINK veth", kernel::RTM_NEWLINK, flags, &veth_body(v))
    }

    /// RTM_DELLINK of link `index` (a veth takes its peer along).
    pub fn del_link(&mut self, index: i32) -> SysResult<()> {
        let m = kernel::ifinfomsg { ifi_family: libc::AF_UNSPEC as u8, ifi_index: index, ..Default::default() };
        self.request("RTM_DELLINK", kernel::RTM_DELLINK, 0, &bytes_of(&m))
    }

    /// RTM_NEWLINK on link `index`: IFLA_MASTER `master` (a port of that bridge).
    pub fn set_master(&mut self, index: i32, master: i32) -> SysResult<()> {
        let m = kernel::ifinfomsg { ifi_family: libc::AF_UNSPEC as u8, ifi_index: index, ..Default::default() };
        let mut body = bytes_of(&m);
        body.extend(attr(kernel::IFLA_MASTER, &master.to_ne_bytes()));
        self.request("RTM_NEWLINK master", kernel::RTM_NEWLINK, 0, &body)
    }

    /// RTM_NEWLINK on link `index`: into the network namespace `ns` (an nsfs fd,
    /// IFLA_NET_NS_FD), named `name` there, with index `new_index` there when
    /// given (IFLA_NEW_IFINDEX). It arrives down and without addresses.
    pub fn move_link(&mut self, index: i32, ns: BorrowedFd<'_>, name: &str, new_index: Option<i32>) -> SysResult<()> {
        let m = kernel::ifinfomsg { ifi_family: libc::AF_UNSPEC as u8, ifi_index: index, ..Default::default() };
        let mut body = bytes_of(&m);
        body.extend(attr(kernel::IFLA_NET_NS_FD, &ns.as_raw_fd().to_ne_bytes()));
        body.extend(name_attr(kernel::IFLA_IFNAME, name));
        if let Some(i) = new_index {
            body.extend(attr(kernel::IFLA_NEW_IFINDEX, &i.to_ne_bytes()));
        }
        self.request("RTM_NEWLINK netns", kernel::RTM_NEWLINK, 0, &body)
    }

    /// RTM_NEWROUTE (NLM_F_CREATE|NLM_F_EXCL: EEXIST when it is there already).
    pub fn add_route(&mut self, r: &RouteEntry) -> SysResult<()> {
        let flags = kernel::NLM_F_CREATE | kernel::NLM_F_EXCL;
        self.request("RTM_NEWROUTE", kernel::RTM_NEWROUTE, flags, &route_body(r))
    }

    /// RTM_NEWLINK on link `index`: the flags in `change` set as in `flags`, and
    /// the MTU.
    pub fn set_link(&mut self, index: i32, flags: u32, change: u32, mtu: u32) -> SysResult<()> {
        let m = kernel::ifinfomsg {
            ifi_family: libc::AF_UNSPEC as u8,
            ifi_index: index,
            ifi_flags: flags,
            ifi_change: change,
            ..Default::default()
        };
        let mut body = bytes_of(&m);
        body.extend(attr(kernel::IFLA_MTU, &mtu.to_ne_bytes()));
        self.request("RTM_NEWLINK", kernel::RTM_NEWLINK, 0, &body)
    }

    fn addr_body(a: &Addr, with_state: bool) -> Vec<u8> {
        let m = kernel::ifaddrmsg {
            ifa_family: a.family,
            ifa_prefixlen: a.prefix_len,
            ifa_flags: a.flags as u8,
            ifa_scope: a.scope,
            ifa_index: a.index,
        };
        let mut body = bytes_of(&m);
        for (ty, v) in [(kernel::IFA_LOCAL, &a.local), (kernel::IFA_ADDRESS, &a.address)] {
            if let Some(v) = v {
                body.extend(attr(ty, &ip_bytes(v)));
            }
        }
        if !with_state {
            return body;
        }
        if let Some(b) = &a.broadcast {
            body.extend(attr(kernel::IFA_BROADCAST, &ip_bytes(b)));
        }
        if let Some(l) = &a.label {
            let mut v = l.as_bytes().to_vec();
            v.push(0);
            body.extend(attr(kernel::IFA_LABEL, &v));
        }
        body.extend(attr(kernel::IFA_FLAGS, &a.flags.to_ne_bytes()));
        let c = kernel::ifa_cacheinfo { ifa_prefered: a.preferred_lft, ifa_valid: a.valid_lft, ..Default::default() };
        body.extend(attr(kernel::IFA_CACHEINFO, &bytes_of(&c)));
        body
    }

    /// RTM_NEWADDR (NLM_F_CREATE|NLM_F_EXCL: EEXIST when it is there already).
    pub fn add_address(&mut self, a: &Addr) -> SysResult<()> {
        let flags = kernel::NLM_F_CREATE | kernel::NLM_F_EXCL;
        self.request("RTM_NEWADDR", kernel::RTM_NEWADDR, flags, &Self::addr_body(a, true))
    }

    /// RTM_DELADDR of an address as a dump gave it.
    pub fn del_address(&mut self, a: &Addr) -> SysResult<()> {
        self.request("RTM_DELADDR", kernel::RTM_DELADDR, 0, &Self::addr_body(a, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(ty: u32, seq: u32, payload: &[u8]) -> Vec<u8> {
        let h = kernel::nlmsghdr {
            nlmsg_len: (HDR + payload.len()) as u32,
            nlmsg_type: ty as u16,
            nlmsg_seq: seq,
            ..Default::default()
        };
        let mut out = bytes_of(&h);
        out.extend_from_slice(payload);
        out.resize(align4(out.len()), 0);
        out
    }

    #[test]
    fn a_link_with_its_kind_is_read_from_a_datagram() {
        let m = kernel::ifinfomsg { ifi_index: 3, ifi_type: 1, ifi_flags: 0x1003, ..Default::default() };
        let mut p = bytes_of(&m);
        p.extend(attr(kernel::IFLA_IFNAME, b"br0\0"));
        p.extend(attr(kernel::IFLA_MTU, &1500u32.to_ne_bytes()));
        // Nested, with NLA_F_NESTED set as the kernel does.
        let mut info = attr(kernel::IFLA_LINKINFO, &attr(kernel::IFLA_INFO_KIND, b"bridge"));
        info[3] |= 0x80;
        p.extend(info);
        let mut dgram = message(kernel::RTM_NEWLINK, 7, &p);
        dgram.extend(message(kernel::NLMSG_DONE, 7, &[0; 4]));
        let msgs = messages(&dgram).unwrap();
        assert_eq!(msgs.len(), 2);
        let l = parse_link(msgs[0].3).unwrap();
        assert_eq!(
            l,
            Link {
                index: 3,
                name: "br0".into(),
                kind: Some("bridge".into()),
                link_type: 1,
                flags: 0x1003,
                mtu: 1500,
                ..Default::default()
            }
        );
        assert_eq!(msgs[1].0 as u32, kernel::NLMSG_DONE);
    }

    #[test]
    fn an_address_round_trips_through_a_request_body() {
        let a = Addr {
            family: libc::AF_INET as u8,
            prefix_len: 24,
            flags: 0x80,
            scope: 0,
            index: 1,
            local: Some("10.11.12.13".parse().unwrap()),
            address: Some("10.11.12.13".parse().unwrap()),
            broadcast: Some("10.11.12.255".parse().unwrap()),
            label: Some("lo:ccr".into()),
            valid_lft: u32::MAX,
            preferred_lft: 600,
        };
        assert_eq!(parse_addr(&Route::addr_body(&a, true)).unwrap(), a);
    }

    #[test]
    fn a_route_round_trips_through_a_request_body() {
        let r = RouteEntry {
            family: libc::AF_INET6 as u8,
            dst_len: 0,
            table: kernel::rt_class_t_RT_TABLE_MAIN,
            protocol: kernel::RTPROT_BOOT as u8,
            scope: kernel::rt_scope_t_RT_SCOPE_UNIVERSE as u8,
            kind: kernel::RTN_UNICAST as u8,
            flags: kernel::RTNH_F_ONLINK,
            oif: Some(7),
            gateway: Some("fd00:cc::1".parse().unwrap()),
            priority: Some(1024),
            ..Default::default()
        };
        assert_eq!(parse_route(&route_body(&r)).unwrap(), r);
    }

    #[test]
    fn a_rule_is_read_with_its_priority_table_and_protocol() {
        let h = kernel::fib_rule_hdr { family: libc::AF_INET as u8, table: 254, action: 1, ..Default::default() };
        let mut p = bytes_of(&h);
        p.extend(attr(kernel::FRA_PRIORITY, &32766u32.to_ne_bytes()));
        p.extend(attr(kernel::FRA_TABLE, &254u32.to_ne_bytes()));
        p.extend(attr(kernel::FRA_PROTOCOL, &[kernel::RTPROT_KERNEL as u8]));
        let r = parse_rule(&p).unwrap();
        assert_eq!(
            r,
            Rule { family: libc::AF_INET as u8, priority: 32766, table: 254, protocol: kernel::RTPROT_KERNEL as u8 }
        );
    }

    #[test]
    fn a_veth_request_nests_its_peer() {
        let v = NewVeth {
            name: "ccrt1".into(),
            mac: vec![2, 0xcc, 0, 0, 0, 1],
            mtu: 1400,
            index: 40,
            peer: "ccrt2".into(),
            peer_mac: vec![2, 0xcc, 0, 0, 0, 2],
            peer_mtu: 1400,
            peer_index: 41,
        };
        let b = veth_body(&v);
        let l = parse_link(&b).unwrap();
        assert_eq!((l.name.as_str(), l.mtu, l.kind.as_deref(), &l.mac[..]), ("ccrt1", 1400, Some("veth"), &v.mac[..]));
        let n = std::mem::size_of::<kernel::ifinfomsg>();
        let info = attrs(&b[n..]).into_iter().find(|(t, _)| *t as u32 == kernel::IFLA_LINKINFO).unwrap().1;
        let data = attrs(info).into_iter().find(|(t, _)| *t as u32 == kernel::IFLA_INFO_DATA).unwrap().1;
        let (ty, peer) = attrs(data)[0];
        assert_eq!(ty as u32, kernel::VETH_INFO_PEER);
        let p = parse_link(peer).unwrap();
        assert_eq!((p.name.as_str(), p.index, &p.mac[..]), ("ccrt2", 41, &v.peer_mac[..]));
        assert_eq!(l.index, 40);
    }

    #[test]
    fn a_short_or_overlong_message_is_an_error_not_a_panic() {
        let mut dgram = message(kernel::RTM_NEWLINK, 1, &[0; 16]);
        dgram[0] = 200;
        assert!(messages(&dgram).is_err());
        assert!(parse_link(&[0; 3]).is_none());
        assert!(attrs(&[8, 0, 1, 0, 1]).is_empty());
    }
}
