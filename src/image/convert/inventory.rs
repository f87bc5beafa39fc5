use super::{At, ImageError};
use crate::checkpoint::{Arch, Inventory};
use crate::image::pb;

pub fn arch_to_pb(a: Arch) -> pb::Arch {
    match a {
        Arch::X86_64 => pb::Arch::X8664,
    }
}

pub fn arch_from_pb(at: &At<'_>, field: &str, v: i32) -> Result<Arch, ImageError> {
    match at.known::<pb::Arch>(field, v)? {
        pb::Arch::X8664 => Ok(Arch::X86_64),
        pb::Arch::Unspecified => Err(at.invalid(field, "not set")),
    }
}

pub fn inventory_to_pb(i: &Inventory) -> pb::Inventory {
    pb::Inventory {
        root_pid: i.root_pid,
        tasks: i.tasks.clone(),
        arch: arch_to_pb(i.arch) as i32,
        kernel: i.kernel.clone(),
        ccr_version: i.ccr_version.clone(),
        dump_time_unix_ns: i.dump_time_unix_ns,
        xfeatures: i.xfeatures,
        pid_ns: i.pid_ns,
        uts: i.uts.clone(),
        ipc: i.ipc.clone(),
        parent: i.parent.as_ref().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default(),
        checksummed: i.checksummed,
        shell_job: i.shell_job,
        time: i.time,
        mnt: i.mnt.clone(),
        net: i.net.clone(),
        cgroup_ns: i.cgroup_ns.clone(),
        user_ns: i.user_ns.clone(),
    }
}

pub fn inventory_from_pb(at: &At<'_>, p: pb::Inventory) -> Result<Inventory, ImageError> {
    let arch = arch_from_pb(at, "arch", p.arch)?;
    if p.tasks.first().map(|t| t.pid) != Some(p.root_pid) {
        return Err(at.invalid("tasks", "the first task is not the root"));
    }
    for (i, t) in p.tasks.iter().enumerate() {
        if t.pid <= 0 {
            return Err(at.invalid(format!("tasks[{i}].pid"), format!("{} is not a pid", t.pid)));
        }
        // 0 (from outside ccr's PID namespace) in images before 2.2 restored as ccr's.
        if (t.sid == 0 || t.pgid == 0) && !p.shell_job && !p.pid_ns && p.checksummed {
            return Err(at.invalid(format!("tasks[{i}]"), "session or group 0 in a checkpoint not of a shell job"));
        }
        if !t.zombie && t.threads.first() != Some(&t.pid) {
            return Err(at.invalid(format!("tasks[{i}].threads"), "the leader is not the first thread"));
        }
    }
    if let Some(u) = &p.uts {
        // The kernel's limit (__NEW_UTS_LEN).
        if u.hostname.len() > 64 || u.domainname.len() > 64 {
            return Err(at.invalid("uts", "a name longer than the kernel's 64 bytes"));
        }
    }
    if let Some(ns) = &p.ipc {
        if let Some(i) = crate::sys::proc::sysctl::first_not_of(&crate::sys::sysv_ipc::NS_SYSCTLS, &ns.sysctls) {
            let s = &ns.sysctls[i];
            return Err(at.invalid(format!("ipc.sysctls[{i}]"), format!("{:?} is not an IPC namespace sysctl", s.name)));
        }
        for (i, q) in ns.mqueues.iter().enumerate() {
            if q.name.is_empty() || q.name.contains('/') || q.name.contains('\0') || q.name == "." || q.name == ".." {
                return Err(at.invalid(format!("ipc.mqueues[{i}].name"), format!("{:?} is not a queue name", q.name)));
            }
        }
        for (i, s) in ns.sems.iter().enumerate() {
            // SEMVMX: the largest value a semaphore holds.
            if s.values.iter().any(|&v| v > 32767) {
                return Err(at.invalid(format!("ipc.sems[{i}] (id {}).values", s.id), "a value above 32767"));
            }
        }
    }
    if let Some(ns) = &p.mnt {
        crate::mounts::restore::check(ns).map_err(|e| at.invalid("mnt", e.to_string()))?;
    }
    if let Some(ns) = &p.net {
        crate::netns::check(ns).map_err(|e| at.invalid("net", e))?;
    }
    if let Some(ns) = &p.cgroup_ns {
        check_cgroup_ns(at, ns)?;
    }
    if let Some(ns) = &p.user_ns {
        check_user_ns(at, ns)?;
    }
    Ok(Inventory {
        root_pid: p.root_pid,
        tasks: p.tasks,
        arch,
        kernel: p.kernel,
        ccr_version: p.ccr_version,
        dump_time_unix_ns: p.dump_time_unix_ns,
        xfeatures: p.xfeatures,
        pid_ns: p.pid_ns,
        uts: p.uts,
        ipc: p.ipc,
        parent: (!p.parent.is_empty()).then(|| p.parent.into()),
        checksummed: p.checksummed,
        shell_job: p.shell_job,
        time: p.time,
        mnt: p.mnt,
        net: p.net,
        cgroup_ns: p.cgroup_ns,
        user_ns: p.user_ns,
    })
}

/// A user namespace restore can make: each map of 1 to 340 lines (the kernel's
/// limit), none empty or past the last id, no two overlapping inside or outside.
fn check_user_ns(at: &At<'_>, ns: &pb::UserNamespace) -> Result<(), ImageError> {
    for (i, s) in ns.sysctls.iter().enumerate() {
        if !crate::userns::is_sysctl_name(&s.name) || !s.value.bytes().all(|b| b.is_ascii_digit()) || s.value.is_empty()
        {
            return Err(at.invalid(format!("user_ns.sysctls[{i}]"), format!("{:?} = {:?}", s.name, s.value)));
        }
    }
    for (which, map) in [("uid_map", &ns.uid_map), ("gid_map", &ns.gid_map)] {
        let field = format!("user_ns.{which}");
        if map.is_empty() || map.len() > 340 {
            return Err(at.invalid(field, format!("{} lines (1 to 340 are possible)", map.len())));
        }
        let end = |start: u32, count: u32| u64::from(start) + u64::from(count);
        for (i, e) in map.iter().enumerate() {
            if e.count == 0 || end(e.inside, e.count) > 1 << 32 || end(e.outside, e.count) > 1 << 32 {
                return Err(at.invalid(format!("{field}[{i}]"), "an empty range or one past the last id"));
            }
            for o in &map[..i] {
                let overlap = |a: u32, b: u32| u64::from(a) < end(b, o.count) && u64::from(b) < end(a, e.count);
                if overlap(e.inside, o.inside) || overlap(e.outside, o.outside) {
                    return Err(at.invalid(format!("{field}[{i}]"), "overlaps an earlier line"));
                }
            }
        }
    }
    Ok(())
}

/// A cgroup namespace restore can make: each root on a known hierarchy, once,
/// at an absolute path that stays inside the hierarchy.
fn check_cgroup_ns(at: &At<'_>, ns: &pb::CgroupNamespace) -> Result<(), ImageError> {
    use crate::cgroup::hierarchy::is_v1_controller;
    for (i, r) in ns.roots.iter().enumerate() {
        let field = format!("cgroup_ns.roots[{i}]");
        match r.version {
            2 if !r.controllers.is_empty() => return Err(at.invalid(field, "controllers on the v2 hierarchy")),
            2 => {}
            1 if r.controllers.is_empty() => return Err(at.invalid(field, "a v1 hierarchy without controllers")),
            1 => {
                if let Some(c) = r.controllers.iter().find(|c| !is_v1_controller(c)) {
                    return Err(at.invalid(field, format!("{c:?} is not a cgroup v1 controller")));
                }
            }
            v => return Err(at.invalid(field, format!("cgroup version {v}"))),
        }
        let p = &r.path;
        if !p.starts_with('/') || p.split('/').any(|c| c == ".." || c == ".") || p.contains(['\0', '\n']) {
            return Err(at.invalid(format!("{field}.path"), format!("{p:?} is not an absolute cgroup path")));
        }
        let same = |o: &&pb::CgroupNsRoot| o.version == r.version && o.controllers == r.controllers;
        if ns.roots[..i].iter().any(|o| same(&o)) {
            return Err(at.invalid(field, "a second root on the same hierarchy"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(version: u32, controllers: &[&str], path: &str) -> pb::CgroupNsRoot {
        pb::CgroupNsRoot {
            version,
            controllers: controllers.iter().map(|c| c.to_string()).collect(),
            path: path.into(),
        }
    }

    #[test]
    fn cgroup_namespace_roots_are_checked() {
        let p = std::path::Path::new("/img/inventory.img");
        let at = At(p);
        let ok = |roots: Vec<pb::CgroupNsRoot>| check_cgroup_ns(&at, &pb::CgroupNamespace { roots });
        ok(vec![root(2, &[], "/lxc/c1"), root(1, &["pids"], "/"), root(1, &["name=systemd"], "/a b")]).unwrap();
        for (bad, why) in [
            (vec![root(2, &[], "lxc")], "relative"),
            (vec![root(2, &[], "/lxc/../etc")], "a way up"),
            (vec![root(2, &[], "/a\nb")], "a newline"),
            (vec![root(1, &["pids", "bogus"], "/")], "an unknown controller"),
            (vec![root(1, &["name="], "/")], "an empty name"),
            (vec![root(1, &[], "/")], "no controllers on v1"),
            (vec![root(2, &["pids"], "/")], "controllers on v2"),
            (vec![root(3, &[], "/")], "a version"),
            (vec![root(2, &[], "/a"), root(2, &[], "/b")], "two roots on one hierarchy"),
        ] {
            let e = ok(bad).expect_err(why);
            assert!(e.to_string().contains("cgroup_ns.roots["), "{why}: {e}");
        }
    }

    #[test]
    fn user_namespace_maps_are_checked() {
        let p = std::path::Path::new("/img/inventory.img");
        let at = At(p);
        let e = |inside, outside, count| pb::IdMapExtent { inside, outside, count };
        let ns = |uid_map: Vec<pb::IdMapExtent>| pb::UserNamespace {
            uid_map,
            gid_map: vec![e(0, 100000, 65536)],
            setgroups_deny: false,
            sysctls: vec![],
        };
        check_user_ns(&at, &ns(vec![e(0, 100000, 65536)])).unwrap();
        check_user_ns(&at, &ns(vec![e(0, 100000, 1000), e(1000, 5000, 1), e(1001, 101001, 64535)])).unwrap();
        for (bad, why) in [
            (vec![], "no line"),
            (vec![e(0, 100000, 0)], "an empty range"),
            (vec![e(1, 100000, u32::MAX)], "past the last id inside"),
            (vec![e(0, 100000, 1000), e(999, 200000, 10)], "overlapping inside"),
            (vec![e(0, 100000, 1000), e(2000, 100500, 10)], "overlapping outside"),
        ] {
            let err = check_user_ns(&at, &ns(bad)).expect_err(why);
            assert!(err.to_string().contains("user_ns.uid_map"), "{why}: {err}");
        }
        let with = |name: &str, value: &str| pb::UserNamespace {
            sysctls: vec![pb::Sysctl { name: name.into(), value: value.into() }],
            ..ns(vec![e(0, 100000, 65536)])
        };
        check_user_ns(&at, &with("max_user_namespaces", "7")).unwrap();
        for (name, value) in [("../../kernel/core_pattern", "1"), ("max_user_namespaces", "1\n2"), ("max_x", "")] {
            assert!(check_user_ns(&at, &with(name, value)).is_err(), "{name} = {value:?}");
        }
    }
}
