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
        for (i, s) in ns.sysctls.iter().enumerate() {
            if !crate::sys::sysv_ipc::NS_SYSCTLS.contains(&s.name.as_str()) || s.value.contains('\n') {
                return Err(
                    at.invalid(format!("ipc.sysctls[{i}]"), format!("{:?} is not an IPC namespace sysctl", s.name))
                );
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
    })
}
