//! A tree's own user namespace. The dump saves its uid and gid maps and its
//! setgroups setting as ccr (in the initial user namespace) reads them; every
//! other id in the images stays as ccr saw it (the host's: /proc shows ids as its
//! reader's namespace sees them). What a restored task, or the root's restore
//! child inside the new namespace, sets from inside (its credentials, the owners
//! of the files it makes) is turned into the namespace's own id through the maps
//! ([`Ids`]); an id the maps do not hold is refused by name, at the dump already.

use crate::image::pb;
use crate::sys::userns::{self, Extent};
use crate::sys::SysResult;

/// The maps, setgroups setting and owner of `root`'s user namespace, as ccr sees them.
pub fn save(root: i32) -> SysResult<pb::UserNamespace> {
    let to_pb = |m: Vec<Extent>| {
        m.into_iter().map(|e| pb::IdMapExtent { inside: e.inside, outside: e.outside, count: e.count }).collect()
    };
    let names = userns::sysctl_names()?;
    let values = userns::sysctls_inside(root, &names)?;
    let sysctls =
        names.into_iter().zip(values).filter_map(|(name, value)| Some(pb::Sysctl { name, value: value? })).collect();
    Ok(pb::UserNamespace {
        uid_map: to_pb(userns::read_map(root, "uid_map")?),
        gid_map: to_pb(userns::read_map(root, "gid_map")?),
        setgroups_deny: userns::setgroups_denied(root)?,
        sysctls,
    })
}

/// Whether `name` can be a sysctl of a user namespace (/proc/sys/user/NAME):
/// what an image may ask a restore to write.
pub fn is_sysctl_name(name: &str) -> bool {
    name.starts_with("max_") && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// Writes the saved limits of the tree's user namespace, in the root's restore
/// child inside it (which has CAP_SYS_RESOURCE there, as writing them takes).
pub fn restore_sysctls(ns: &pb::UserNamespace) -> SysResult<()> {
    for s in &ns.sysctls {
        let p = std::path::Path::new("/proc/sys/user").join(&s.name);
        std::fs::write(&p, &s.value).map_err(crate::sys::SysError::path("write", p))?;
    }
    Ok(())
}

/// The extents of a saved map.
pub fn extents(map: &[pb::IdMapExtent]) -> Vec<Extent> {
    map.iter().map(|e| Extent { inside: e.inside, outside: e.outside, count: e.count }).collect()
}

/// How ids of the images (ccr's view) become the ids a task of the tree sets:
/// unchanged without a user namespace of the tree's own, else through its maps.
#[derive(Clone, Debug, Default)]
pub struct Ids {
    maps: Option<(Vec<Extent>, Vec<Extent>)>,
    setgroups_deny: bool,
}

impl Ids {
    pub fn of(ns: Option<&pb::UserNamespace>) -> Ids {
        match ns {
            None => Ids::default(),
            Some(ns) => {
                Ids { maps: Some((extents(&ns.uid_map), extents(&ns.gid_map))), setgroups_deny: ns.setgroups_deny }
            }
        }
    }

    /// Whether the ids are translated (the tree has a user namespace of its own).
    pub fn own(&self) -> bool {
        self.maps.is_some()
    }

    /// No task of the tree may call setgroups (its namespace denies it).
    pub fn setgroups_denied(&self) -> bool {
        self.setgroups_deny
    }

    /// The tree's uid for ccr's uid `host`; None when its namespace maps no such id.
    pub fn uid(&self, host: u32) -> Option<u32> {
        match &self.maps {
            None => Some(host),
            Some((u, _)) => userns::to_inside(u, host),
        }
    }

    /// The tree's gid for ccr's gid `host`; None when its namespace maps no such id.
    pub fn gid(&self, host: u32) -> Option<u32> {
        match &self.maps {
            None => Some(host),
            Some((_, g)) => userns::to_inside(g, host),
        }
    }

    /// Both, or a description of the first that is not mapped ("uid 0", "gid 5").
    pub fn owner(&self, uid: u32, gid: u32) -> Result<(u32, u32), String> {
        let u = self.uid(uid).ok_or_else(|| format!("uid {uid}"))?;
        let g = self.gid(gid).ok_or_else(|| format!("gid {gid}"))?;
        Ok((u, g))
    }

    /// A task's credentials as the tree's namespace sees them (capabilities are
    /// the same bits anywhere); Err names the first id the maps do not hold.
    /// Supplementary groups are kept as they are when setgroups is denied: no task
    /// sets them then, and they are checked as ccr sees them.
    pub fn creds(&self, c: &pb::Creds) -> Result<pb::Creds, String> {
        let uid = |name: &str, v: u32| self.uid(v).ok_or_else(|| format!("{name} {v}"));
        let gid = |name: &str, v: u32| self.gid(v).ok_or_else(|| format!("{name} {v}"));
        let groups = if self.setgroups_deny {
            c.groups.clone()
        } else {
            c.groups.iter().map(|&g| gid("supplementary group", g)).collect::<Result<_, _>>()?
        };
        Ok(pb::Creds {
            uid: uid("uid", c.uid)?,
            euid: uid("euid", c.euid)?,
            suid: uid("saved uid", c.suid)?,
            fsuid: uid("fsuid", c.fsuid)?,
            gid: gid("gid", c.gid)?,
            egid: gid("egid", c.egid)?,
            sgid: gid("saved gid", c.sgid)?,
            fsgid: gid("fsgid", c.fsgid)?,
            groups,
            ..c.clone()
        })
    }
}

/// Ids of the tree's user namespace a helper of the root's restore child takes
/// (`as_ids`), and whether setgroups is denied there.
#[derive(Clone, Copy, Debug)]
pub struct NsIds {
    pub uid: u32,
    pub gid: u32,
    pub setgroups_deny: bool,
}

/// The ids things are made with inside user namespace `ns`: its root if mapped,
/// else its first uid and gid.
pub fn maker_ids(ns: &pb::UserNamespace) -> NsIds {
    let first = |m: &[pb::IdMapExtent]| {
        if m.iter().any(|e| e.inside == 0) {
            0
        } else {
            m.first().map_or(0, |e| e.inside)
        }
    };
    NsIds { uid: first(&ns.uid_map), gid: first(&ns.gid_map), setgroups_deny: ns.setgroups_deny }
}

/// Runs `work` in a forked helper that first takes `ids` (and no supplementary
/// groups unless setgroups is denied), and waits for it; Err is its error text.
/// The helper has pid `pid` when given, else the next free one.
///
/// The root's restore child keeps ccr's ids, which its user namespace does not
/// map: with them it still reads the images and walks the host's paths as ccr's
/// user. But some things only a mapped id may do there: make a file in a
/// filesystem of the namespace (EOVERFLOW otherwise: a tmpfs's files, a POSIX
/// queue), or write the IPC namespace's sysctls (owned by its root). The helper
/// shares the child's namespaces, so what it makes is the tree's.
pub fn as_ids(ids: NsIds, pid: Option<i32>, work: impl FnOnce() -> crate::Result<()>) -> Result<(), String> {
    use std::io::Read;
    use std::os::fd::AsFd;
    let fail = |e: crate::sys::SysError| e.to_string();
    let (rd, wr) = crate::sys::pipe::pipe().map_err(fail)?;
    let groups = (!ids.setgroups_deny).then_some(&[][..]);
    let helper = crate::sys::process::spawn_with_pid(pid, || {
        let r =
            crate::sys::process::set_ids(ids.uid, ids.gid, groups).map_err(crate::Error::from).and_then(|()| work());
        match r {
            Ok(()) => 0,
            Err(e) => {
                let _ = crate::sys::fd::write_all(wr.as_fd(), e.to_string().as_bytes());
                1
            }
        }
    })
    .map_err(fail)?;
    drop(wr);
    let mut text = String::new();
    let _ = std::fs::File::from(rd).read_to_string(&mut text);
    let status = crate::sys::wait::reap(helper).map_err(fail)?;
    if status.is_some_and(|s| s.shell_code() == 0) {
        return Ok(());
    }
    if text.is_empty() {
        text = format!("its helper ended with {status:?}");
    }
    Err(format!("as uid {} gid {} of its user namespace: {text}", ids.uid, ids.gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(deny: bool) -> pb::UserNamespace {
        let e = |inside, outside, count| pb::IdMapExtent { inside, outside, count };
        pb::UserNamespace {
            uid_map: vec![e(0, 100000, 65536)],
            gid_map: vec![e(0, 200000, 1000)],
            setgroups_deny: deny,
            sysctls: vec![],
        }
    }

    #[test]
    fn creds_become_the_namespaces_own() {
        let ids = Ids::of(Some(&ns(false)));
        let c = pb::Creds {
            uid: 101000,
            euid: 100000,
            suid: 100000,
            fsuid: 101000,
            gid: 200005,
            egid: 200005,
            sgid: 200005,
            fsgid: 200005,
            groups: vec![200001],
            cap_eff: 7,
            ..Default::default()
        };
        let got = ids.creds(&c).unwrap();
        assert_eq!((got.uid, got.euid, got.fsuid, got.gid, got.cap_eff), (1000, 0, 1000, 5, 7));
        assert_eq!(got.groups, vec![1]);
        let unmapped = pb::Creds { gid: 201000, ..c.clone() };
        assert_eq!(ids.creds(&unmapped).unwrap_err(), "gid 201000");
        // Denied setgroups: the groups are left as they are, mapped or not.
        let deny = Ids::of(Some(&ns(true)));
        assert_eq!(deny.creds(&pb::Creds { groups: vec![0], ..c.clone() }).unwrap().groups, vec![0]);
        // Without a namespace of its own nothing changes.
        assert_eq!(Ids::of(None).creds(&c).unwrap(), c);
        assert_eq!(ids.owner(0, 200000).unwrap_err(), "uid 0");
    }
}
