//! A tree's own network namespace, saved and made again: its loopback device
//! (flags, MTU, every address) and its sysctls. The dump reads them from a
//! short-lived thread that entered the namespace (a netlink socket, like
//! /proc/sys/net, belongs to the namespace of the thread that opens it); the
//! restore writes them from the root's restore child, which clone3 put in a new
//! namespace.
//!
//! What it cannot save is refused by name: any device but lo (a veth, bridge,
//! tun, ...) and any route the kernel did not make for an address.

use std::net::IpAddr;

use crate::error::Result;
use crate::image::pb;
use crate::sys::netlink::{Addr, Link, Route};
use crate::sys::proc::sysctl;
use crate::sys::SysError;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("pid {pid}: its network namespace has device {name} ({kind}), which ccr cannot save yet")]
    Device { pid: i32, name: String, kind: String },
    #[error("pid {pid}: its network namespace has {what}, which ccr cannot save yet")]
    Unsupported { pid: i32, what: String },
    #[error("pid {pid}: reading its network namespace: {source}")]
    Read { pid: i32, source: SysError },
    #[error("network namespace: {step} {what}: {source}")]
    Make { step: &'static str, what: String, source: SysError },
}

impl NetError {
    pub fn errno(&self) -> i32 {
        match self {
            NetError::Device { .. } | NetError::Unsupported { .. } => libc::EOPNOTSUPP,
            NetError::Read { source, .. } | NetError::Make { source, .. } => source.errno(),
        }
    }
}

/// The per-namespace sysctls ccr saves and restores, by path under /proc/sys; a
/// restore writes no other name an image holds. In this order on restore: a
/// value for all devices before lo's own (writing "all" sets every device's).
pub const NS_SYSCTLS: [&str; 21] = [
    "net/core/somaxconn",
    "net/unix/max_dgram_qlen",
    "net/ipv4/ip_default_ttl",
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/forwarding",
    "net/ipv4/ip_local_port_range",
    "net/ipv4/ip_unprivileged_port_start",
    "net/ipv4/ip_nonlocal_bind",
    "net/ipv4/ping_group_range",
    "net/ipv4/tcp_syncookies",
    "net/ipv4/tcp_fin_timeout",
    "net/ipv4/tcp_keepalive_time",
    "net/ipv4/tcp_keepalive_intvl",
    "net/ipv4/tcp_keepalive_probes",
    "net/ipv4/tcp_tw_reuse",
    "net/ipv4/icmp_echo_ignore_all",
    "net/ipv6/bindv6only",
    "net/ipv6/conf/all/forwarding",
    "net/ipv6/conf/all/disable_ipv6",
    "net/ipv6/conf/default/disable_ipv6",
    "net/ipv6/conf/lo/disable_ipv6",
];

/// The flags of lo a restore sets as saved (the others are the kernel's to say).
const SETTABLE_FLAGS: u32 =
    (libc::IFF_UP | libc::IFF_DEBUG | libc::IFF_NOARP | libc::IFF_PROMISC | libc::IFF_ALLMULTI | libc::IFF_MULTICAST)
        as u32;

fn is_lo(l: &Link) -> bool {
    l.name == "lo" && l.link_type == libc::ARPHRD_LOOPBACK
}

/// The namespace of `root` as it is now; refuses what cannot come back.
pub fn save(root: i32) -> Result<pb::NetNamespace> {
    crate::sys::process::in_namespaces_of(root, &["net"], || -> Result<pb::NetNamespace> {
        let read = |source| NetError::Read { pid: root, source };
        let mut rt = Route::open().map_err(read)?;
        let links = rt.links().map_err(read)?;
        // TODO: a veth whose peer is on the host is external: save its name and
        // addresses, and let the manager name the new host end on restore.
        if let Some(l) = links.iter().find(|l| !is_lo(l)) {
            let kind = l.kind.clone().unwrap_or_else(|| format!("link type {}", l.link_type));
            return Err(NetError::Device { pid: root, name: l.name.clone(), kind }.into());
        }
        let lo = links.first().ok_or_else(|| NetError::Unsupported { pid: root, what: "no lo".into() })?;
        // Routes the kernel makes for addresses come back with them; any other is lost.
        if let Some(r) =
            rt.routes().map_err(read)?.iter().find(|r| r.protocol as u32 != crate::sys::kernel::RTPROT_KERNEL)
        {
            let dst = r.dst.map_or("default".to_string(), |d| format!("{d}/{}", r.dst_len));
            let what = format!("a route to {dst} (table {}, protocol {})", r.table, r.protocol);
            return Err(NetError::Unsupported { pid: root, what }.into());
        }
        let addrs = rt.addresses().map_err(read)?;
        let lo_addresses = addrs.iter().filter(|a| a.index == lo.index as u32).map(addr_to_pb).collect();
        Ok(pb::NetNamespace {
            lo_flags: lo.flags,
            lo_mtu: lo.mtu,
            lo_addresses,
            sysctls: sysctl::read_all(&NS_SYSCTLS)?,
        })
    })
}

fn text(a: &Option<IpAddr>) -> String {
    a.map(|a| a.to_string()).unwrap_or_default()
}

fn addr_to_pb(a: &Addr) -> pb::NetAddress {
    pb::NetAddress {
        family: a.family as u32,
        prefix_len: a.prefix_len as u32,
        flags: a.flags,
        scope: a.scope as u32,
        local: text(&a.local),
        address: text(&a.address),
        broadcast: text(&a.broadcast),
        label: a.label.clone().unwrap_or_default(),
        valid_lft: a.valid_lft,
        preferred_lft: a.preferred_lft,
    }
}

/// Parsed, checked against its family; the text `check` already accepted.
fn addr_from_pb(a: &pb::NetAddress, index: u32) -> std::result::Result<Addr, String> {
    let family = match a.family as i32 {
        libc::AF_INET => libc::AF_INET as u8,
        libc::AF_INET6 => libc::AF_INET6 as u8,
        f => return Err(format!("family {f} is neither AF_INET nor AF_INET6")),
    };
    let v6 = family == libc::AF_INET6 as u8;
    let ip = |s: &str| -> std::result::Result<Option<IpAddr>, String> {
        if s.is_empty() {
            return Ok(None);
        }
        let ip: IpAddr = s.parse().map_err(|_| format!("{s:?} is not an address"))?;
        if ip.is_ipv6() != v6 {
            return Err(format!("{s} is not of family {family}"));
        }
        Ok(Some(ip))
    };
    let (local, address, broadcast) = (ip(&a.local)?, ip(&a.address)?, ip(&a.broadcast)?);
    if local.is_none() && address.is_none() {
        return Err("no address".into());
    }
    if a.prefix_len > if v6 { 128 } else { 32 } || a.scope > 255 {
        return Err(format!("prefix length {} or scope {} out of range", a.prefix_len, a.scope));
    }
    // The kernel takes an IPv4 label only when it starts with the device's name.
    if !a.label.is_empty() && (!a.label.starts_with("lo") || a.label.len() >= libc::IFNAMSIZ) {
        return Err(format!("label {:?} is not one of lo", a.label));
    }
    Ok(Addr {
        family,
        prefix_len: a.prefix_len as u8,
        flags: a.flags,
        scope: a.scope as u8,
        index,
        local,
        address,
        broadcast,
        label: (!a.label.is_empty()).then(|| a.label.clone()),
        valid_lft: a.valid_lft,
        preferred_lft: a.preferred_lft,
    })
}

/// What an image's namespace may hold: sysctls of ccr's list only, addresses
/// that parse. Says what is wrong.
pub fn check(ns: &pb::NetNamespace) -> std::result::Result<(), String> {
    if let Some(i) = sysctl::first_not_of(&NS_SYSCTLS, &ns.sysctls) {
        return Err(format!("sysctls[{i}]: {:?} is not a network namespace sysctl of ccr's", ns.sysctls[i].name));
    }
    for (i, a) in ns.lo_addresses.iter().enumerate() {
        addr_from_pb(a, 1).map_err(|e| format!("lo_addresses[{i}]: {e}"))?;
    }
    Ok(())
}

/// Whether two addresses are the same one of a device (what RTM_DELADDR matches).
fn same(a: &Addr, b: &Addr) -> bool {
    (a.family, a.prefix_len, a.local.or(a.address)) == (b.family, b.prefix_len, b.local.or(b.address))
}

/// Makes the calling process's network namespace (new, from clone3) the saved one.
///
/// Ordering requirements: sysctls first (disable_ipv6 decides whether lo gets
/// ::1 when it goes up); lo up before its addresses (going up adds the kernel's
/// 127.0.0.1 and ::1, and would drop IPv6 ones added while down); the kernel's
/// addresses the tree had removed, removed last.
pub fn restore(ns: &pb::NetNamespace) -> Result<()> {
    let make = |step, what: String| move |source| NetError::Make { step, what, source };
    // Only what differs is written. A value the kernel refuses for now may be
    // accepted once another is set (ip_unprivileged_port_start and
    // ip_local_port_range bound each other): a second pass.
    let mut pending: Vec<&pb::Sysctl> = Vec::new();
    for s in &ns.sysctls {
        if sysctl::read(&s.name)?.as_deref() != Some(s.value.as_str()) {
            pending.push(s);
        }
    }
    for pass in 0..2 {
        let mut refused = Vec::new();
        for s in pending {
            if let Err(source) = sysctl::write(&s.name, &s.value) {
                if pass == 1 || source.errno() != libc::EINVAL {
                    return Err(
                        NetError::Make { step: "sysctl", what: format!("{} = {}", s.name, s.value), source }.into()
                    );
                }
                refused.push(s);
            }
        }
        pending = refused;
    }
    let mut rt = Route::open().map_err(make("netlink", String::new()))?;
    let links = rt.links().map_err(make("reading", "its links".into()))?;
    let lo = links.iter().find(|l| is_lo(l)).ok_or_else(|| NetError::Make {
        step: "finding",
        what: "lo".into(),
        source: SysError::Call { call: "RTM_GETLINK", errno: crate::sys::Errno::ENODEV },
    })?;
    let flags = ns.lo_flags & SETTABLE_FLAGS;
    rt.set_link(lo.index, flags, SETTABLE_FLAGS, ns.lo_mtu)
        .map_err(make("setting", format!("lo flags {flags:#x} mtu {}", ns.lo_mtu)))?;
    let saved: Vec<Addr> = ns
        .lo_addresses
        .iter()
        .map(|a| addr_from_pb(a, lo.index as u32))
        .collect::<std::result::Result<_, _>>()
        .expect("checked when the image was read");
    for a in &saved {
        match rt.add_address(a) {
            Err(e) if e.errno() == libc::EEXIST => {}
            r => {
                r.map_err(make("adding", format!("address {}/{} to lo", text(&a.local.or(a.address)), a.prefix_len)))?
            }
        }
    }
    let now = rt.addresses().map_err(make("reading", "lo's addresses".into()))?;
    for a in now.iter().filter(|a| a.index == lo.index as u32 && !saved.iter().any(|s| same(s, a))) {
        rt.del_address(a)
            .map_err(make("removing", format!("address {}/{} from lo", text(&a.local.or(a.address)), a.prefix_len)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sysctl(name: &str, value: &str) -> pb::Sysctl {
        pb::Sysctl { name: name.into(), value: value.into() }
    }

    #[test]
    fn an_image_names_only_sysctls_of_the_list_and_addresses_of_their_family() {
        let good = pb::NetAddress {
            family: libc::AF_INET6 as u32,
            prefix_len: 64,
            address: "fd00:cc::5".into(),
            ..Default::default()
        };
        let mut ns = pb::NetNamespace {
            lo_addresses: vec![good.clone()],
            sysctls: vec![sysctl("net/ipv4/ip_default_ttl", "77")],
            ..Default::default()
        };
        assert_eq!(check(&ns), Ok(()));
        ns.sysctls.push(sysctl("kernel/core_pattern", "|/tmp/x"));
        assert!(check(&ns).unwrap_err().contains("kernel/core_pattern"));
        ns.sysctls.pop();
        ns.sysctls.push(sysctl("net/ipv4/ip_default_ttl", "77\nnet/x"));
        assert!(check(&ns).is_err());
        ns.sysctls.pop();
        for bad in [
            pb::NetAddress { address: "10.0.0.1".into(), ..good.clone() },
            pb::NetAddress { prefix_len: 129, ..good.clone() },
            pb::NetAddress { family: 17, ..good.clone() },
            pb::NetAddress { address: String::new(), ..good.clone() },
            pb::NetAddress { label: "eth0".into(), ..good.clone() },
        ] {
            ns.lo_addresses = vec![bad.clone()];
            assert!(check(&ns).is_err(), "{bad:?} passed");
        }
    }
}
