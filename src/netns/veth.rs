//! A veth of the tree's namespace whose peer was outside it (a container's eth0,
//! its peer on the host, often a port of a bridge such as lxcbr0), made again as
//! a new pair: the caller names the host end (`--veth-pair IN=OUT[@BRIDGE]`).
//!
//! Ordering requirements, and why the pair is made on ccr's side:
//! 1. ReadImages (`plan`): every veth of the checkpoint has a host end named,
//!    every name asked for is a veth of it, no host name is in use, every bridge
//!    is one. Nothing is made before all of that holds.
//! 2. Fork, before the tree is forked (`make`): ccr makes each pair in its own
//!    namespace, the inside end under a name of its own, the host end as asked,
//!    with the saved MAC and MTU (both survive a move between namespaces), the
//!    host end a port of the bridge and up. ccr holds the host ends ([`Pairs`]):
//!    a failed restore deletes them, which takes the inside ends along wherever
//!    they are.
//! 3. The root's restore child (`move_in`), in the tree's new namespace after
//!    its sysctls: moves its inside end in through a netlink socket of ccr's
//!    namespace it inherited, renamed to the saved name in the same request
//!    and given its saved ifindex (the device arrives down, with no address, with
//!    the namespace's defaults);
//!    `netns::restore` then sets its flags, addresses and routes.
//!
//! Once the inside end is in the tree's namespace, the pair lives as long as
//! that namespace: a killed ccr's restore children exit, the namespace goes and
//! the kernel deletes both ends. Before that, a killed ccr leaves the pair in
//! its own namespace: the restore journal names its host end first, and the
//! next run (or `ccr cleanup`) deletes it if the other end still has the name
//! that ccr gave it (`remove_leftover`).

use std::os::fd::AsFd;

use super::NetError;
use crate::error::Result;
use crate::image::pb;
use crate::opts::VethPair;
use crate::sys::netlink::{Link, NewVeth, Route};

/// One pair to make: the saved device (its position in `NetNamespace.devices`)
/// and where its host end goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    pub device: usize,
    pub host: String,
    /// The bridge's name and index on this side.
    pub bridge: Option<(String, i32)>,
    pub mac: Vec<u8>,
    pub mtu: u32,
}

/// Checks what the caller asked against the checkpoint's veths (`ns`: the
/// namespace restore makes, None when the tree has none of its own or joins
/// one) and this side's devices; says what is wrong, by name.
pub fn plan(ns: Option<&pb::NetNamespace>, asked: &[VethPair]) -> Result<Vec<Planned>> {
    let devices = ns.map(|ns| &ns.devices[..]).unwrap_or_default();
    let pair_err = |p: &VethPair, detail: String| {
        let bridge = p.bridge.as_ref().map(|b| format!("@{b}")).unwrap_or_default();
        NetError::Pair { pair: format!("{}={}{bridge}", p.inside, p.outside), detail }
    };
    // Only a veth whose peer was outside has a host end; a pair inside is made inside.
    let outer: Vec<(usize, &pb::NetDevice)> = devices.iter().enumerate().filter(|(_, d)| d.peer.is_empty()).collect();
    for (i, p) in asked.iter().enumerate() {
        if !outer.iter().any(|(_, d)| d.name == p.inside) {
            let why = if ns.is_none() {
                " (the tree comes back in no network namespace of its own)"
            } else if devices.iter().any(|d| d.name == p.inside) {
                " (its peer is in the namespace too)"
            } else {
                ""
            };
            return Err(
                pair_err(p, format!("the checkpoint has no veth {} whose peer was outside{why}", p.inside)).into()
            );
        }
        if asked[..i].iter().any(|o| o.inside == p.inside || o.outside == p.outside) {
            return Err(pair_err(p, "a second pair for that device or host name".into()).into());
        }
    }
    if outer.is_empty() {
        return Ok(Vec::new());
    }
    let links = Route::open().and_then(|mut rt| rt.links()).map_err(|source| NetError::Make {
        step: "reading",
        what: "the devices of ccr's network namespace".into(),
        source,
    })?;
    let mut out = Vec::new();
    for &(i, d) in &outer {
        let p =
            asked.iter().find(|p| p.inside == d.name).ok_or_else(|| NetError::NoHostEnd { name: d.name.clone() })?;
        if links.iter().any(|l| l.name == p.outside) {
            return Err(NetError::HostNameTaken { name: p.outside.clone() }.into());
        }
        let bridge = match &p.bridge {
            None => None,
            Some(b) => match links.iter().find(|l| &l.name == b) {
                Some(l) if l.kind.as_deref() == Some("bridge") => Some((b.clone(), l.index)),
                Some(l) => {
                    let kind = l.kind.as_deref().unwrap_or("no kind");
                    return Err(pair_err(p, format!("{b} is no bridge ({kind})")).into());
                }
                None => return Err(pair_err(p, format!("there is no bridge {b} on this side")).into()),
            },
        };
        let mac = super::mac_bytes(&d.mac).expect("checked when the image was read");
        out.push(Planned { device: i, host: p.outside.clone(), bridge, mac, mtu: d.mtu });
    }
    Ok(out)
}

/// One pair ccr made: both ends' indexes in ccr's namespace at the time.
#[derive(Debug)]
struct Made {
    device: usize,
    inside: i32,
    host: i32,
    host_name: String,
    mtu: u32,
}

/// The pairs ccr made for a restore, and a netlink socket of ccr's namespace
/// the root's restore child inherits. Dropped before `keep`, it deletes every
/// host end (and so its pair).
pub struct Pairs {
    sock: std::cell::RefCell<Route>,
    made: Vec<Made>,
    kept: bool,
    /// The host ends stay down until `bring_up` (a connection to a peer outside
    /// must not meet the namespace before its socket is back).
    held_down: bool,
}

/// The name the inside end of pair `i` has in ccr's namespace, made by ccr `pid`.
fn temp_name(pid: u32, i: usize) -> String {
    format!("ccr{pid}v{i}")
}

/// Makes every planned pair in ccr's namespace, each written in the journal
/// first; on an error the ones made are deleted again. With `held_down` their
/// host ends stay down until [`Pairs::bring_up`].
pub fn make(
    planned: &[Planned],
    mut journal: Option<&mut crate::journal::Journal>,
    held_down: bool,
) -> Result<Option<Pairs>> {
    if planned.is_empty() {
        return Ok(None);
    }
    let sock =
        Route::open().map_err(|source| NetError::Make { step: "netlink", what: "of ccr's side".into(), source })?;
    let mut pairs = Pairs { sock: std::cell::RefCell::new(sock), made: Vec::new(), kept: false, held_down };
    for (i, p) in planned.iter().enumerate() {
        if let Some(j) = journal.as_deref_mut() {
            j.veth(&p.host)?;
        }
        pairs.make_one(i, p)?;
        // A ccr killed here leaves the pair in its namespace: the journal names it.
        crate::fault::point("restore.veth");
    }
    Ok(Some(pairs))
}

/// What a killed ccr `writer` left: the pair whose host end is `host`, if both
/// its ends are still in this namespace and the other one has the name that
/// ccr gave it. Whether it was removed.
pub fn remove_leftover(host: &str, writer: i32) -> bool {
    let Ok(mut rt) = Route::open() else { return false };
    let Ok(links) = rt.links() else { return false };
    let Some(l) = links.iter().find(|l| l.name == host && l.kind.as_deref() == Some("veth")) else { return false };
    let peer = links.iter().find(|p| l.link_netnsid.is_none() && Some(p.index) == l.link);
    let ours =
        peer.is_some_and(|p| p.name.strip_prefix(&format!("ccr{writer}v")).is_some_and(|n| n.parse::<usize>().is_ok()));
    ours && rt.del_link(l.index).is_ok()
}

impl Pairs {
    fn make_one(&mut self, i: usize, p: &Planned) -> Result<()> {
        let err = |step| {
            let name = p.host.clone();
            move |source| NetError::Host { name, step, source }
        };
        // The inside end's name until the tree's namespace renames it: ccr's own.
        let temp = temp_name(std::process::id(), i);
        let rt = self.sock.get_mut();
        let v = NewVeth {
            name: temp.clone(),
            mac: p.mac.clone(),
            mtu: p.mtu,
            peer: p.host.clone(),
            peer_mtu: p.mtu,
            ..Default::default()
        };
        match rt.add_veth(&v) {
            Err(e) if e.errno() == libc::EEXIST => {
                return Err(NetError::HostNameTaken { name: p.host.clone() }.into());
            }
            r => r.map_err(err("making the pair"))?,
        }
        let links = rt.links().map_err(err("finding the new pair"))?;
        let index = |n: &str| links.iter().find(|l| l.name == n).map(|l| l.index);
        let (Some(inside), Some(host)) = (index(&temp), index(&p.host)) else {
            let source = crate::sys::SysError::Call { call: "RTM_GETLINK", errno: crate::sys::Errno::ENODEV };
            return Err(NetError::Host { name: p.host.clone(), step: "finding the new pair", source }.into());
        };
        // Held from here on: a failure below deletes it.
        self.made.push(Made { device: p.device, inside, host, host_name: p.host.clone(), mtu: p.mtu });
        let rt = self.sock.get_mut();
        if let Some((_, bridge)) = &p.bridge {
            rt.set_master(host, *bridge).map_err(err("joining the bridge"))?;
        }
        if !self.held_down {
            rt.set_link(host, libc::IFF_UP as u32, libc::IFF_UP as u32, p.mtu).map_err(err("setting it up"))?;
        }
        Ok(())
    }

    /// Sets the host ends held down up.
    pub fn bring_up(&self) -> Result<()> {
        if !self.held_down {
            return Ok(());
        }
        let mut rt = self.sock.borrow_mut();
        for m in &self.made {
            let up = libc::IFF_UP as u32;
            rt.set_link(m.host, up, up, m.mtu).map_err(|source| NetError::Host {
                name: m.host_name.clone(),
                step: "setting it up",
                source,
            })?;
        }
        Ok(())
    }

    /// The host ends' names, in the order made.
    pub fn host_names(&self) -> Vec<&str> {
        self.made.iter().map(|m| m.host_name.as_str()).collect()
    }

    /// The restore succeeded: the pairs are the tree's.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Pairs {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        let rt = self.sock.get_mut();
        for m in &self.made {
            // The index is ours (the pair was made under it); gone already if the
            // tree's namespace went first.
            let _ = rt.del_link(m.host);
        }
    }
}

/// In the root's restore child, in the tree's new namespace: makes the pair of
/// saved veth `d` and its peer (also saved, in the same namespace) there, both
/// ends with their names, MACs, MTUs and ifindexes, unless its peer came first
/// and made it; the link of `d`.
pub fn make_inside(ns: &pb::NetNamespace, d: &pb::NetDevice, rt: &mut Route) -> Result<Link> {
    let make = |step, what: String| move |source| NetError::Make { step, what, source };
    let first = ns.devices.iter().position(|x| x.name == d.name) < ns.devices.iter().position(|x| x.name == d.peer);
    if first {
        let p = ns.devices.iter().find(|x| x.name == d.peer).expect("checked when the image was read");
        let mac = |x: &pb::NetDevice| super::mac_bytes(&x.mac).expect("checked when the image was read");
        let v = NewVeth {
            name: d.name.clone(),
            mac: mac(d),
            mtu: d.mtu,
            index: d.index,
            peer: p.name.clone(),
            peer_mac: mac(p),
            peer_mtu: p.mtu,
            peer_index: p.index,
        };
        rt.add_veth(&v).map_err(make("making", format!("veth pair {} and {}", d.name, p.name)))?;
    }
    let l = rt.link_by_name(&d.name).map_err(make("reading", format!("veth {}", d.name)))?;
    l.ok_or_else(|| {
        let source = crate::sys::SysError::Call { call: "RTM_GETLINK", errno: crate::sys::Errno::ENODEV };
        NetError::Make { step: "finding", what: format!("veth {} once made", d.name), source }.into()
    })
}

/// In the root's restore child, in the tree's new namespace: moves the inside
/// end made for saved device `i` in, named as saved; the link as it is here.
pub fn move_in(pairs: Option<&Pairs>, i: usize, d: &pb::NetDevice, rt: &mut Route) -> Result<Link> {
    let make = |step, what: String| move |source| NetError::Make { step, what, source };
    let m = pairs.and_then(|p| p.made.iter().find(|m| m.device == i).map(|m| (p, m)));
    let Some((pairs, m)) = m else {
        let source = crate::sys::SysError::Call { call: "RTM_NEWLINK", errno: crate::sys::Errno::ENODEV };
        return Err(
            NetError::Make { step: "finding", what: format!("the pair made for veth {}", d.name), source }.into()
        );
    };
    let at = "/proc/thread-self/ns/net";
    let here = std::fs::File::open(at).map_err(crate::sys::SysError::path("open", at))?;
    // Our copy of ccr's socket (the same one: no other task uses it meanwhile).
    let mut outer = pairs.sock.borrow_mut();
    // The saved index, unless an image before it was saved (0).
    let index = (d.index > 0).then_some(d.index);
    outer.move_link(m.inside, here.as_fd(), &d.name, index).map_err(make("moving", format!("veth {} in", d.name)))?;
    let l = rt.link_by_name(&d.name).map_err(make("reading", format!("veth {}", d.name)))?;
    l.ok_or_else(|| {
        let source = crate::sys::SysError::Call { call: "RTM_GETLINK", errno: crate::sys::Errno::ENODEV };
        NetError::Make { step: "finding", what: format!("veth {} once moved in", d.name), source }.into()
    })
}
