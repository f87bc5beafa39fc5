//! A tree's own network namespace, saved and made again: its loopback device
//! (flags, MTU, every address), its sysctls, and each veth whose peer is outside
//! the namespace (a container's eth0: name, MAC, MTU, flags, addresses, its own
//! sysctls of a list, and the main table's routes through it). The dump reads them from a short-lived
//! thread that entered the namespace (a netlink socket, like /proc/sys/net,
//! belongs to the namespace of the thread that opens it); the restore writes
//! them from the root's restore child, which clone3 put in a new namespace. A
//! veth comes back as a new pair ccr makes on its own side (`veth`), the host
//! end named by the caller; the child moves the other end in.
//!
//! A veth whose peer is in the namespace too is made again there as a pair.
//!
//! What it cannot save is refused by name: any other device (a bridge, tun,
//! macvlan, ...), any route the kernel did not
//! make for an address but a unicast one of the main table through a veth, and
//! policy routing rules other than the kernel's defaults.

mod route;
pub mod veth;

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
    #[error(
        "the checkpoint's network namespace has veth {name}, whose peer was outside it: name its new host end with \
         --veth-pair {name}=NAME[@BRIDGE] (ccr_opts_add_veth_pair)"
    )]
    NoHostEnd { name: String },
    #[error("--veth-pair {pair}: {detail}")]
    Pair { pair: String, detail: String },
    #[error("veth host end {name}: the name is in use on this side")]
    HostNameTaken { name: String },
    #[error("veth host end {name}: {step}: {source}")]
    Host { name: String, step: &'static str, source: SysError },
}

impl NetError {
    pub fn errno(&self) -> i32 {
        match self {
            NetError::Device { .. } | NetError::Unsupported { .. } => libc::EOPNOTSUPP,
            NetError::Read { source, .. } | NetError::Make { source, .. } | NetError::Host { source, .. } => {
                source.errno()
            }
            NetError::NoHostEnd { .. } | NetError::Pair { .. } => libc::EINVAL,
            NetError::HostNameTaken { .. } => libc::EEXIST,
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

/// A veth's own sysctls ccr saves and restores, under /proc/sys/net with DEV
/// for its name; a restore writes no other name an image holds for it. In this
/// order on restore, before the device goes up: disable_ipv6 and addr_gen_mode
/// decide its IPv6 link-local address, accept_dad how its addresses start.
const DEV_SYSCTLS: [&str; 19] = [
    "ipv6/conf/DEV/disable_ipv6",
    "ipv6/conf/DEV/addr_gen_mode",
    "ipv6/conf/DEV/accept_dad",
    "ipv6/conf/DEV/dad_transmits",
    "ipv6/conf/DEV/forwarding",
    "ipv6/conf/DEV/accept_ra",
    "ipv6/conf/DEV/autoconf",
    "ipv6/conf/DEV/use_tempaddr",
    "ipv6/conf/DEV/accept_redirects",
    "ipv6/conf/DEV/hop_limit",
    "ipv4/conf/DEV/forwarding",
    "ipv4/conf/DEV/rp_filter",
    "ipv4/conf/DEV/accept_redirects",
    "ipv4/conf/DEV/send_redirects",
    "ipv4/conf/DEV/proxy_arp",
    "ipv4/conf/DEV/arp_ignore",
    "ipv4/conf/DEV/arp_announce",
    "ipv4/conf/DEV/arp_filter",
    "ipv4/conf/DEV/route_localnet",
];

/// The paths (under /proc/sys) of device `dev`'s sysctls of ccr's list.
fn dev_sysctls(dev: &str) -> Vec<String> {
    DEV_SYSCTLS.iter().map(|s| format!("net/{}", s.replace("DEV", dev))).collect()
}

/// Writes those of `saved` whose values differ from what they are now; says
/// which failed.
fn write_sysctls(saved: &[pb::Sysctl]) -> Result<()> {
    for s in saved {
        if sysctl::read(&s.name)?.as_deref() != Some(s.value.as_str()) {
            sysctl::write(&s.name, &s.value).map_err(|source| NetError::Make {
                step: "sysctl",
                what: format!("{} = {}", s.name, s.value),
                source,
            })?;
        }
    }
    Ok(())
}

/// The flags of a device a restore sets as saved (the others are the kernel's to say).
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
        let mut devices = Vec::new();
        for l in links.iter().filter(|l| !is_lo(l)) {
            let refuse = |kind: String| NetError::Device { pid: root, name: l.name.clone(), kind };
            match (l.kind.as_deref(), l.link_netnsid) {
                // The peer is in another namespace: it stays there, and the caller
                // names the host end of the pair restore makes.
                (Some("veth"), Some(_)) => devices.push(l),
                // Both ends are here: the pair is made inside again.
                (Some("veth"), None) if links.iter().any(|p| Some(p.index) == l.link && p.link == Some(l.index)) => {
                    devices.push(l)
                }
                (Some("veth"), None) => return Err(refuse("veth whose peer ccr cannot find".into()).into()),
                _ => return Err(refuse(l.kind.clone().unwrap_or_else(|| format!("link type {}", l.link_type))).into()),
            }
        }
        let lo =
            links.iter().find(|l| is_lo(l)).ok_or_else(|| NetError::Unsupported { pid: root, what: "no lo".into() })?;
        let routes = route::save_routes(root, &rt.routes().map_err(read)?, &devices)?;
        route::check_rules(root, &rt.rules().map_err(read)?)?;
        let addrs = rt.addresses().map_err(read)?;
        let on = |index: i32| addrs.iter().filter(move |a| a.index == index as u32).map(addr_to_pb);
        let mut saved = Vec::new();
        for l in &devices {
            let names = dev_sysctls(&l.name);
            saved.push(pb::NetDevice {
                name: l.name.clone(),
                kind: "veth".into(),
                flags: l.flags,
                mtu: l.mtu,
                mac: mac_text(&l.mac),
                addresses: on(l.index).collect(),
                index: l.index,
                sysctls: sysctl::read_all(&names.iter().map(String::as_str).collect::<Vec<_>>())?,
                peer: match l.link_netnsid {
                    Some(_) => String::new(),
                    None => links.iter().find(|p| Some(p.index) == l.link).map(|p| p.name.clone()).unwrap_or_default(),
                },
            });
        }
        let devices = saved;
        Ok(pb::NetNamespace {
            lo_flags: lo.flags,
            lo_mtu: lo.mtu,
            lo_addresses: on(lo.index).collect(),
            sysctls: sysctl::read_all(&NS_SYSCTLS)?,
            devices,
            routes,
        })
    })
}

fn mac_text(mac: &[u8]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// "02:cc:00:00:00:01" as bytes; None when it is not six hex pairs.
pub(crate) fn mac_bytes(text: &str) -> Option<Vec<u8>> {
    let out: Vec<u8> = text
        .split(':')
        .map(|h| (h.len() == 2).then(|| u8::from_str_radix(h, 16).ok()).flatten())
        .collect::<Option<_>>()?;
    (out.len() == 6).then_some(out)
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
/// `dev`: the name of the device it is on (its label must start with it).
fn addr_from_pb(a: &pb::NetAddress, index: u32, dev: &str) -> std::result::Result<Addr, String> {
    let family = match a.family as i32 {
        libc::AF_INET => libc::AF_INET as u8,
        libc::AF_INET6 => libc::AF_INET6 as u8,
        f => return Err(format!("family {f} is neither AF_INET nor AF_INET6")),
    };
    let v6 = family == libc::AF_INET6 as u8;
    let ip = |s: &str| ip_of(s, v6);
    let (local, address, broadcast) = (ip(&a.local)?, ip(&a.address)?, ip(&a.broadcast)?);
    if local.is_none() && address.is_none() {
        return Err("no address".into());
    }
    if a.prefix_len > if v6 { 128 } else { 32 } || a.scope > 255 {
        return Err(format!("prefix length {} or scope {} out of range", a.prefix_len, a.scope));
    }
    // The kernel takes an IPv4 label only when it starts with the device's name.
    if !a.label.is_empty() && (!a.label.starts_with(dev) || a.label.len() >= libc::IFNAMSIZ) {
        return Err(format!("label {:?} is not one of {dev}", a.label));
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

/// `s` as an address of the family (`v6`), or None for "".
fn ip_of(s: &str, v6: bool) -> std::result::Result<Option<IpAddr>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    let ip: IpAddr = s.parse().map_err(|_| format!("{s:?} is not an address"))?;
    if ip.is_ipv6() != v6 {
        return Err(format!("{s} is not of family {}", if v6 { "AF_INET6" } else { "AF_INET" }));
    }
    Ok(Some(ip))
}

/// What an image's namespace may hold: sysctls of ccr's list only, addresses
/// and routes that parse, veths with a MAC and a name, routes through one of
/// them. Says what is wrong.
pub fn check(ns: &pb::NetNamespace) -> std::result::Result<(), String> {
    if let Some(i) = sysctl::first_not_of(&NS_SYSCTLS, &ns.sysctls) {
        return Err(format!("sysctls[{i}]: {:?} is not a network namespace sysctl of ccr's", ns.sysctls[i].name));
    }
    for (i, a) in ns.lo_addresses.iter().enumerate() {
        addr_from_pb(a, 1, "lo").map_err(|e| format!("lo_addresses[{i}]: {e}"))?;
    }
    for (i, d) in ns.devices.iter().enumerate() {
        let bad = |e: String| format!("devices[{i}] ({}): {e}", d.name);
        crate::opts::VethPair::new(&d.name, "x", None).map_err(bad)?;
        if d.name == "lo" || ns.devices[..i].iter().any(|o| o.name == d.name) {
            return Err(bad("a second device of that name".into()));
        }
        if d.kind != "veth" {
            return Err(bad(format!("kind {:?} is not veth", d.kind)));
        }
        if d.index < 0 || d.index == 1 || ns.devices[..i].iter().any(|o| o.index == d.index && o.index != 0) {
            return Err(bad(format!("ifindex {} is lo's, negative or another device's", d.index)));
        }
        if mac_bytes(&d.mac).is_none() {
            return Err(bad(format!("MAC address {:?} is not six hex bytes", d.mac)));
        }
        for (j, a) in d.addresses.iter().enumerate() {
            addr_from_pb(a, 1, &d.name).map_err(|e| bad(format!("addresses[{j}]: {e}")))?;
        }
        if !d.peer.is_empty() && (d.peer == d.name || !ns.devices.iter().any(|p| p.name == d.peer && p.peer == d.name))
        {
            return Err(bad(format!("its peer {:?} is no veth of the namespace whose peer it is", d.peer)));
        }
        let names = dev_sysctls(&d.name);
        if let Some(j) = sysctl::first_not_of(&names.iter().map(String::as_str).collect::<Vec<_>>(), &d.sysctls) {
            return Err(bad(format!("sysctls[{j}]: {:?} is not a sysctl of its of ccr's", d.sysctls[j].name)));
        }
    }
    for (i, r) in ns.routes.iter().enumerate() {
        if !ns.devices.iter().any(|d| d.name == r.device) {
            return Err(format!("routes[{i}]: device {:?} is not one of the namespace's veths", r.device));
        }
        route::route_from_pb(r, 1).map_err(|e| format!("routes[{i}]: {e}"))?;
    }
    Ok(())
}

/// Whether two addresses are the same one of a device (what RTM_DELADDR matches).
fn same(a: &Addr, b: &Addr) -> bool {
    (a.family, a.prefix_len, a.local.or(a.address)) == (b.family, b.prefix_len, b.local.or(b.address))
}

/// Makes the calling process's network namespace (new, from clone3) the saved
/// one; `veths`: the pairs ccr made for its veths (one for each, checked when
/// the images were read).
///
/// Ordering requirements: sysctls first (disable_ipv6 decides whether lo gets
/// ::1 when it goes up, and a device moved in takes the namespace's defaults),
/// a veth's own once it is in and before it goes up;
/// a device up before its addresses (going up adds the kernel's 127.0.0.1 and
/// ::1, and would drop IPv6 ones added while down); the kernel's addresses the
/// tree had removed, removed after its own are back; routes last (a gateway must
/// be reachable through an address's route).
pub fn restore(ns: &pb::NetNamespace, veths: Option<&veth::Pairs>) -> Result<()> {
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
    set_device(&mut rt, lo, ns.lo_flags, ns.lo_mtu, &ns.lo_addresses)?;
    let mut oifs = Vec::new();
    for (i, d) in ns.devices.iter().enumerate() {
        let l =
            if d.peer.is_empty() { veth::move_in(veths, i, d, &mut rt)? } else { veth::make_inside(ns, d, &mut rt)? };
        write_sysctls(&d.sysctls)?;
        set_device(&mut rt, &l, d.flags, d.mtu, &d.addresses)?;
        oifs.push((d.name.as_str(), l.index as u32));
    }
    for r in &ns.routes {
        let oif = oifs.iter().find(|(n, _)| *n == r.device).map(|d| d.1).expect("checked when the image was read");
        let route = route::route_from_pb(r, oif).expect("checked when the image was read");
        let dst = if r.dst.is_empty() { "default".to_string() } else { format!("{}/{}", r.dst, r.dst_len) };
        let via = if r.gateway.is_empty() { "on-link".to_string() } else { format!("via {}", r.gateway) };
        let what = format!("route to {dst} {via} dev {}", r.device);
        match rt.add_route(&route) {
            Err(e) if e.errno() == libc::EEXIST => {}
            res => res.map_err(make("adding", what))?,
        }
    }
    Ok(())
}

/// Device `l` as saved: its flags and MTU, then its addresses (the kernel's
/// own it had removed, removed).
fn set_device(rt: &mut Route, l: &Link, flags: u32, mtu: u32, addresses: &[pb::NetAddress]) -> Result<()> {
    let make = |step, what: String| move |source| NetError::Make { step, what, source };
    let name = &l.name;
    let flags = flags & SETTABLE_FLAGS;
    rt.set_link(l.index, flags, SETTABLE_FLAGS, mtu)
        .map_err(make("setting", format!("{name} flags {flags:#x} mtu {mtu}")))?;
    let saved: Vec<Addr> = addresses
        .iter()
        .map(|a| addr_from_pb(a, l.index as u32, name))
        .collect::<std::result::Result<_, _>>()
        .expect("checked when the image was read");
    for a in &saved {
        match rt.add_address(a) {
            Err(e) if e.errno() == libc::EEXIST => {}
            r => r.map_err(make(
                "adding",
                format!("address {}/{} to {name}", text(&a.local.or(a.address)), a.prefix_len),
            ))?,
        }
    }
    let now = rt.addresses().map_err(make("reading", format!("{name}'s addresses")))?;
    for a in now.iter().filter(|a| a.index == l.index as u32 && !saved.iter().any(|s| same(s, a))) {
        rt.del_address(a).map_err(make(
            "removing",
            format!("address {}/{} from {name}", text(&a.local.or(a.address)), a.prefix_len),
        ))?;
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

    #[test]
    fn an_image_has_veths_with_a_mac_and_routes_through_them() {
        let eth0 = pb::NetDevice {
            name: "eth0".into(),
            kind: "veth".into(),
            flags: libc::IFF_UP as u32,
            mtu: 1400,
            mac: "02:cc:00:00:4d:01".into(),
            addresses: vec![pb::NetAddress {
                family: libc::AF_INET as u32,
                prefix_len: 24,
                local: "10.213.77.2".into(),
                address: "10.213.77.2".into(),
                label: "eth0".into(),
                ..Default::default()
            }],
            index: 5,
            sysctls: vec![sysctl("net/ipv6/conf/eth0/accept_ra", "0")],
            peer: String::new(),
        };
        let default = pb::NetRoute {
            family: libc::AF_INET as u32,
            gateway: "10.213.77.1".into(),
            device: "eth0".into(),
            protocol: crate::sys::kernel::RTPROT_BOOT,
            ..Default::default()
        };
        let ns = pb::NetNamespace { devices: vec![eth0.clone()], routes: vec![default.clone()], ..Default::default() };
        assert_eq!(check(&ns), Ok(()));
        let r = route::route_from_pb(&default, 5).unwrap();
        assert_eq!((r.oif, r.dst, r.gateway), (Some(5), None, Some("10.213.77.1".parse().unwrap())));
        assert_eq!(mac_bytes("02:cc:00:00:4d:01"), Some(vec![2, 0xcc, 0, 0, 0x4d, 1]));
        for bad in ["02:cc:00:00:4d", "02:cc:00:00:4d:01:07", "2:cc:00:00:4d:01", "zz:cc:00:00:4d:01", ""] {
            assert_eq!(mac_bytes(bad), None, "{bad}");
        }
        let devices = [
            pb::NetDevice { mac: "02:cc".into(), ..eth0.clone() },
            pb::NetDevice { kind: "bridge".into(), ..eth0.clone() },
            pb::NetDevice { name: "lo".into(), ..eth0.clone() },
            pb::NetDevice { name: "a/b".into(), ..eth0.clone() },
            pb::NetDevice { index: 1, ..eth0.clone() },
            pb::NetDevice { sysctls: vec![sysctl("net/ipv6/conf/eth1/accept_ra", "0")], ..eth0.clone() },
            pb::NetDevice { sysctls: vec![sysctl("net/ipv6/conf/eth0/mtu", "1280")], ..eth0.clone() },
        ];
        for d in devices {
            let ns = pb::NetNamespace { devices: vec![d.clone()], ..Default::default() };
            assert!(check(&ns).is_err(), "{d:?} passed");
        }
        let twice = pb::NetNamespace { devices: vec![eth0.clone(), eth0.clone()], ..Default::default() };
        assert!(check(&twice).unwrap_err().contains("second device"));
        // A pair inside: each the other's peer.
        let end = |name: &str, peer: &str, index| pb::NetDevice {
            name: name.into(),
            peer: peer.into(),
            index,
            addresses: vec![],
            sysctls: vec![],
            ..eth0.clone()
        };
        let inside = |devices| pb::NetNamespace { devices, ..Default::default() };
        assert_eq!(check(&inside(vec![end("in0", "in1", 7), end("in1", "in0", 8)])), Ok(()));
        for bad in
            [vec![end("in0", "in1", 7)], vec![end("in0", "in0", 7)], vec![end("in0", "in1", 7), end("in1", "x", 8)]]
        {
            assert!(check(&inside(bad.clone())).unwrap_err().contains("its peer"), "{bad:?} passed");
        }
        for bad in [
            pb::NetRoute { device: "eth1".into(), ..default.clone() },
            pb::NetRoute { gateway: "fd00::1".into(), ..default.clone() },
            pb::NetRoute { dst_len: 33, ..default.clone() },
            pb::NetRoute { protocol: crate::sys::kernel::RTPROT_KERNEL, ..default.clone() },
        ] {
            let ns = pb::NetNamespace { devices: vec![eth0.clone()], routes: vec![bad.clone()], ..Default::default() };
            assert!(check(&ns).is_err(), "{bad:?} passed");
        }
    }
}
