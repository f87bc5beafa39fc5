//! The routes and policy rules of a tree's network namespace: which routes a
//! dump saves (a unicast one of the main table through a saved veth; the
//! kernel's own for an address come back with the address), how a saved one is
//! checked and made again, and the rule that a namespace's policy rules must be
//! the kernel's defaults.

use super::{ip_of, text, NetError};
use crate::error::Result;
use crate::image::pb;
use crate::sys::netlink::{Link, RouteEntry, Rule};

/// The routes to save: none the kernel made for an address (they come back with
/// it); a unicast one of the main table through a saved veth; any other refused.
pub(super) fn save_routes(root: i32, routes: &[RouteEntry], devices: &[&Link]) -> Result<Vec<pb::NetRoute>> {
    use crate::sys::kernel;
    let mut out = Vec::new();
    for r in routes.iter().filter(|r| r.protocol as u32 != kernel::RTPROT_KERNEL) {
        let dev = devices.iter().find(|l| r.oif == Some(l.index as u32));
        let plain = r.table == kernel::rt_class_t_RT_TABLE_MAIN && r.kind as u32 == kernel::RTN_UNICAST;
        if let (Some(d), true, false) = (dev, plain, r.unsaved.is_empty()) {
            let dst = r.dst.map_or("default".to_string(), |d| format!("{d}/{}", r.dst_len));
            let what = format!("a route to {dst} through {} with {}", d.name, r.unsaved.join(", "));
            return Err(NetError::Unsupported { pid: root, what }.into());
        }
        let Some(dev) = dev.filter(|_| plain && !r.multipath) else {
            let dst = r.dst.map_or("default".to_string(), |d| format!("{d}/{}", r.dst_len));
            let how = if r.multipath { ", multipath" } else { "" };
            let what = format!("a route to {dst} (table {}, type {}, protocol {}{how})", r.table, r.kind, r.protocol);
            return Err(NetError::Unsupported { pid: root, what }.into());
        };
        out.push(pb::NetRoute {
            family: r.family as u32,
            dst: text(&r.dst),
            dst_len: r.dst_len as u32,
            gateway: text(&r.gateway),
            device: dev.name.clone(),
            scope: r.scope as u32,
            protocol: r.protocol as u32,
            priority: r.priority.unwrap_or(0),
            prefsrc: text(&r.prefsrc),
            flags: r.flags & kernel::RTNH_F_ONLINK,
        });
    }
    Ok(out)
}

/// The policy rules the kernel gives a new namespace: (family, priority, table).
const KERNEL_RULES: [(i32, u32, u32); 5] = [
    (libc::AF_INET, 0, 255),
    (libc::AF_INET, 32766, 254),
    (libc::AF_INET, 32767, 253),
    (libc::AF_INET6, 0, 255),
    (libc::AF_INET6, 32766, 254),
];

/// A namespace's policy rules must be the kernel's own, all of them: a restored
/// namespace has those and no other.
pub(super) fn check_rules(root: i32, rules: &[Rule]) -> Result<()> {
    let kernel = crate::sys::kernel::RTPROT_KERNEL as u8;
    let key = |r: &Rule| (r.family as i32, r.priority, r.table);
    let ip = |r: &Rule| r.family as i32 == libc::AF_INET || r.family as i32 == libc::AF_INET6;
    if let Some(r) = rules.iter().find(|r| r.protocol != kernel || (ip(r) && !KERNEL_RULES.contains(&key(r)))) {
        let what = format!(
            "a policy routing rule of family {} at priority {} to table {} (protocol {})",
            r.family, r.priority, r.table, r.protocol
        );
        return Err(NetError::Unsupported { pid: root, what }.into());
    }
    if let Some((f, p, t)) = KERNEL_RULES.iter().find(|k| !rules.iter().any(|r| key(r) == **k)) {
        let what = format!("no policy routing rule of family {f} at priority {p} to table {t} (the kernel's, removed)");
        return Err(NetError::Unsupported { pid: root, what }.into());
    }
    Ok(())
}

/// A saved route, parsed and checked, through link `oif`.
pub(super) fn route_from_pb(r: &pb::NetRoute, oif: u32) -> std::result::Result<RouteEntry, String> {
    use crate::sys::kernel;
    let v6 = match r.family as i32 {
        libc::AF_INET => false,
        libc::AF_INET6 => true,
        f => return Err(format!("family {f} is neither AF_INET nor AF_INET6")),
    };
    if r.dst_len > if v6 { 128 } else { 32 } || r.scope > 255 || r.protocol > 255 {
        return Err(format!("dst_len {}, scope {} or protocol {} out of range", r.dst_len, r.scope, r.protocol));
    }
    if r.protocol == kernel::RTPROT_KERNEL {
        return Err("a route of the kernel's own".into());
    }
    Ok(RouteEntry {
        family: r.family as u8,
        dst_len: r.dst_len as u8,
        table: kernel::rt_class_t_RT_TABLE_MAIN,
        protocol: r.protocol as u8,
        scope: r.scope as u8,
        kind: kernel::RTN_UNICAST as u8,
        flags: r.flags & kernel::RTNH_F_ONLINK,
        dst: ip_of(&r.dst, v6)?,
        oif: Some(oif),
        gateway: ip_of(&r.gateway, v6)?,
        prefsrc: ip_of(&r.prefsrc, v6)?,
        priority: (r.priority != 0).then_some(r.priority),
        multipath: false,
        unsaved: Vec::new(),
    })
}
