//! Namespaces of the tree. A restore creates its tasks from ccr, so each of them
//! lands in ccr's own namespaces, except the kinds restore makes again for the
//! root when the tree had one of its own: user (its id maps, owning every other
//! namespace of its own), PID (the root as its init), UTS (its host and domain
//! name), IPC (its objects), time (its clocks), mount (its mount tree), network
//! (its lo, `crate::netns`) and cgroup (its root on every hierarchy). Every other
//! namespace a thread is in must therefore be ccr's, and for the kinds made
//! again, the root's: any other would come back as ccr's (or the root's), with
//! its hostname, mounts, IPC objects or network silently gone. A namespace the
//! tree has of its own must be owned by the tree's user namespace, as the one
//! restore makes is. Until a kind is saved, such a tree is refused here, naming
//! the thread and the namespace.

use super::{tree, DumpError};
use crate::error::Result;
use crate::image::pb;
use crate::sys::proc;
use crate::sys::proc::cgroup::TaskCgroup;

/// The kinds restore makes again for the root when the tree has its own.
const MADE_AGAIN: [&str; 6] = ["uts", "ipc", "time", "mnt", "net", "cgroup"];

/// The namespaces of its own a tree has, which restore makes again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Own {
    /// Its root has a user namespace of its own (a child of ccr's), which every
    /// task shares and which owns every other namespace of the tree's own.
    pub user: bool,
    /// Its root is the init of its own PID namespace.
    pub pid: bool,
    /// Its root has a UTS namespace of its own, which every task shares.
    pub uts: bool,
    /// Its root has an IPC namespace of its own, which every task shares.
    pub ipc: bool,
    /// Its root has a time namespace of its own, which every task shares.
    pub time: bool,
    /// Its root has a mount namespace of its own, which every task shares.
    pub mnt: bool,
    /// Its root has a network namespace of its own, which every task shares.
    pub net: bool,
    /// Its root has a cgroup namespace of its own, which every task shares.
    pub cgroup: bool,
}

/// Checks every live thread's namespaces; says which of its own the tree has.
pub fn check(tasks: &[tree::Task]) -> Result<Own> {
    let root = tasks[0].pid();
    let pid_ns = !proc::ns::same(proc::SELF, root, "pid")?;
    if pid_ns && proc::status::read(root)?.ns_last("NSpid") != 1 {
        return Err(DumpError::Unsupported {
            pid: root,
            what: "a root inside another PID namespace that is not its init".into(),
        }
        .into());
    }
    let tree_user = proc::ns::id(root, "user")?;
    let own_user = tree_user != proc::ns::id(proc::SELF, "user")?;
    if own_user {
        check_user_ns(root)?;
    }
    let root_pid_ns = proc::ns::id(root, "pid")?;
    // A kind this kernel lacks: the same "none" for every task. Asked once, not
    // per thread.
    let present = MADE_AGAIN.map(proc::ns::has);
    let ns_id = |pid: i32, i: usize| {
        if present[i] {
            proc::ns::id(pid, MADE_AGAIN[i])
        } else {
            Ok(String::new())
        }
    };
    let roots: Vec<String> = (0..MADE_AGAIN.len()).map(|i| ns_id(root, i)).collect::<std::result::Result<_, _>>()?;
    let mut own_kinds = [false; MADE_AGAIN.len()];
    for (i, own) in own_kinds.iter_mut().enumerate() {
        *own = roots[i] != ns_id(proc::SELF, i)?;
    }
    let for_children: Vec<&str> = ["pid", "time"].into_iter().filter(|k| proc::ns::has(k)).collect();
    for task in tasks.iter().filter(|t| !t.is_zombie()) {
        let pid = task.pid();
        for tid in task.threads.iter().map(|t| t.pid()) {
            let who = if tid == pid { String::new() } else { format!("thread {tid}: ") };
            let refuse = |what: String| DumpError::Unsupported { pid, what: format!("{who}{what}") };
            let its_user = proc::ns::id(tid, "user")?;
            if its_user != tree_user {
                let what = if own_user { "a nested user namespace" } else { "a user namespace of its own" };
                return Err(refuse(format!("{what} ({its_user}; the root is in {tree_user})")).into());
            }
            let its_pid = proc::ns::id(tid, "pid")?;
            if its_pid != root_pid_ns {
                return Err(refuse(format!("a nested PID namespace ({its_pid}; the root is in {root_pid_ns})")).into());
            }
            for (i, (kind, theirs)) in MADE_AGAIN.iter().zip(&roots).enumerate() {
                let its = ns_id(tid, i)?;
                if &its != theirs {
                    return Err(refuse(format!("its own {kind} namespace ({its}; the root is in {theirs})")).into());
                }
            }
            for &own in &for_children {
                let pending = proc::ns::for_children(tid, own)?;
                if pending.as_ref() != Some(&proc::ns::id(tid, own)?) {
                    let which = pending.unwrap_or_else(|| "no task in it yet".into());
                    return Err(refuse(format!("a {own} namespace unshared for its future children ({which})")).into());
                }
            }
        }
    }
    // What restore makes is owned by the user namespace it makes the root in (or
    // by ccr's): a namespace the tree has of its own owned by any other would
    // come back owned by the wrong one, with other privileges over it.
    let tree_user_ino = crate::sys::userns::user_ns_of(root)?;
    let owned: Vec<&str> = MADE_AGAIN.iter().zip(&own_kinds).filter(|(_, &o)| o).map(|(k, _)| *k).collect();
    for kind in owned.into_iter().chain(pid_ns.then_some("pid")) {
        if crate::sys::userns::owner_of(root, kind)? != tree_user_ino {
            let what = format!(
                "a {kind} namespace ({}) owned by a user namespace other than the tree's ({tree_user})",
                proc::ns::id(root, kind)?
            );
            return Err(DumpError::Unsupported { pid: root, what }.into());
        }
    }
    // clone3's set_tid needs privilege over the PID namespace the pid is set in:
    // from inside the tree's user namespace, that is only over one it owns.
    if own_user && !pid_ns {
        let other = tasks.iter().find(|t| t.pid() != root).map(|t| (t.pid(), "task"));
        let thread = tasks[0].threads.get(1).map(|t| (t.pid(), "thread"));
        if let Some((pid, what)) = other.or(thread) {
            let what = format!(
                "a {what} besides the root in a user namespace of the tree's own without a PID namespace of its \
                 own (its pid could not be set from inside)"
            );
            return Err(DumpError::Unsupported { pid, what }.into());
        }
    }
    let [uts, ipc, time, mnt, net, cgroup] = own_kinds;
    Ok(Own { user: own_user, pid: pid_ns, uts, ipc, time, mnt, net, cgroup })
}

/// A user namespace of the tree's own restore can make: a child of ccr's (one
/// level: its maps are then in ccr's ids) created by ccr's user.
fn check_user_ns(root: i32) -> Result<()> {
    use crate::sys::userns;
    let refuse = |what: String| -> crate::Error { DumpError::Unsupported { pid: root, what }.into() };
    let id = proc::ns::id(root, "user")?;
    let nested = || refuse(format!("a user namespace ({id}) nested below another one"));
    match userns::parent_of_user_ns(root) {
        Ok(p) if p == userns::user_ns_of(proc::SELF)? => {}
        Ok(_) => return Err(nested()),
        // The parent is outside ccr's namespace (ccr is not in the initial one).
        Err(crate::sys::SysError::Pid { errno: nix::errno::Errno::EPERM, .. }) => return Err(nested()),
        Err(e) => return Err(e.into()),
    }
    let owner = userns::owner_uid(root)?;
    let ccr = nix::unistd::geteuid().as_raw();
    if owner != ccr {
        return Err(refuse(format!("a user namespace ({id}) created by uid {owner} (restore makes it as uid {ccr})")));
    }
    Ok(())
}

/// The root of the tree's own cgroup namespace on every hierarchy, as ccr sees it.
///
/// The kernel shows /proc/PID/cgroup relative to the root of the *reader's*
/// cgroup namespace: read by ccr, a task's cgroup is the namespace root's path
/// followed by what a thread inside the tree's namespace reads for it ("/" when
/// the task sits in the root). So the root is ccr's path less that suffix. A task
/// whose cgroup is not at or below the root (the kernel shows it as "/.." from
/// inside) is refused: restore could not put it there and keep what it sees.
pub fn cgroup_roots(tasks: &[tree::Task]) -> Result<pb::CgroupNamespace> {
    let root = tasks[0].pid();
    let live: Vec<i32> = tasks.iter().filter(|t| !t.is_zombie()).map(|t| t.pid()).collect();
    let outside = proc::cgroup::read(root)?;
    let inside = crate::sys::process::in_namespaces_of(root, &["cgroup"], || -> Result<Vec<Vec<TaskCgroup>>> {
        Ok(live.iter().map(|&p| proc::cgroup::read(p)).collect::<std::result::Result<_, _>>()?)
    })?;
    let mut ns = pb::CgroupNamespace::default();
    for o in &outside {
        // Every task shares the root's namespace (checked before): from inside, each
        // must show the hierarchy, at or below the root ("/.." is outside it).
        for (&pid, ins) in live.iter().zip(&inside) {
            let refuse = |what: String| DumpError::Unsupported { pid, what };
            let Some(seen) = ins.iter().find(|c| c.version == o.version && c.controllers == o.controllers) else {
                return Err(
                    refuse(format!("a cgroup hierarchy ({}) its cgroup namespace does not show", hier(o))).into()
                );
            };
            let below_root = seen.path.starts_with('/') && !seen.path.split('/').any(|c| c == "..");
            let ns_root = if pid == root { ns_root_of(&o.path, &seen.path) } else { below_root.then(String::new) };
            let Some(ns_root) = ns_root.filter(|_| below_root) else {
                return Err(refuse(format!(
                    "its cgroup on {}, outside its cgroup namespace's root (seen as {} inside it)",
                    hier(o),
                    seen.path
                ))
                .into());
            };
            if pid == root {
                ns.roots.push(pb::CgroupNsRoot {
                    version: o.version,
                    controllers: o.controllers.clone(),
                    path: ns_root,
                });
            }
        }
    }
    Ok(ns)
}

/// A hierarchy by name, as errors name it.
fn hier(c: &TaskCgroup) -> String {
    if c.version == 2 {
        "cgroup2".into()
    } else {
        c.controllers.join(",")
    }
}

/// The namespace root of a task whose cgroup ccr sees as `outside` and a thread
/// in the namespace sees as `inside`; None when the task is not at or below it.
fn ns_root_of(outside: &str, inside: &str) -> Option<String> {
    if !inside.starts_with('/') || inside.split('/').any(|c| c == "..") {
        return None;
    }
    if inside == "/" {
        return Some(outside.to_string());
    }
    // `inside` begins with '/', so what is left ends at a component boundary.
    let rest = outside.strip_suffix(inside)?;
    Some(if rest.is_empty() { "/".to_string() } else { rest.to_string() })
}

/// The clocks of `root`'s time namespace now, as its tasks see them: ccr's (the
/// host's) plus the namespace's offsets.
pub fn time_clocks(root: i32) -> Result<pb::TimeNamespace> {
    use crate::sys::process::clock_ns;
    let (mono_off, boot_off) = proc::ns::timens_offsets(root)?;
    Ok(pb::TimeNamespace {
        monotonic_ns: clock_ns(libc::CLOCK_MONOTONIC)? + mono_off,
        boottime_ns: clock_ns(libc::CLOCK_BOOTTIME)? + boot_off,
    })
}

/// The semaphore sets and message queues of the IPC namespace the calling thread
/// is in (the tree's, entered for the dump), read without changing them, and its
/// POSIX message queues (`root` names the tree in refusals).
pub fn ipc_objects(root: i32) -> Result<pb::IpcNamespace> {
    use crate::sys::sysv_ipc;
    let mut ns = pb::IpcNamespace::default();
    for s in proc::sysvipc::sem()? {
        let values = sysv_ipc::sem_values(s.id, s.count as usize)?;
        ns.sems.push(pb::SysvSem {
            id: s.id,
            key: s.key,
            mode: s.mode,
            uid: s.uid,
            gid: s.gid,
            values: values.into_iter().map(u32::from).collect(),
        });
    }
    for q in proc::sysvipc::msg()? {
        let messages = sysv_ipc::msg_copy_all(q.id, q.count)?;
        ns.queues.push(pb::SysvMsgQueue {
            id: q.id,
            key: q.key,
            mode: q.mode,
            uid: q.uid,
            gid: q.gid,
            messages: messages.into_iter().map(|(mtype, text)| pb::SysvMsg { mtype, text }).collect(),
        });
    }
    for q in crate::sys::mqueue::list()? {
        let refuse = |what: String| DumpError::Unsupported { pid: root, what };
        if q.waiting > 0 {
            let what = format!(
                "POSIX message queue /{} holding {} messages (they cannot be read without taking them off it)",
                q.name, q.waiting
            );
            return Err(refuse(what).into());
        }
        if q.notify {
            return Err(refuse(format!("POSIX message queue /{} with a notification registered", q.name)).into());
        }
        ns.mqueues.push(pb::PosixMqueue {
            name: q.name,
            mode: q.mode,
            uid: q.uid,
            gid: q.gid,
            maxmsg: q.maxmsg,
            msgsize: q.msgsize,
        });
    }
    ns.sysctls = proc::sysctl::read_all(&sysv_ipc::NS_SYSCTLS)?;
    Ok(ns)
}

/// Refuses an object of the tree's own IPC namespace whose owner its own user
/// namespace (`ids`) does not map: restore makes them from inside it.
pub fn ipc_owners_mapped(
    root: i32,
    ns: &pb::IpcNamespace,
    segs: &[pb::SysvShm],
    ids: &crate::userns::Ids,
) -> Result<()> {
    let owners = segs
        .iter()
        .map(|s| (format!("SysV shm segment {}", s.id), s.uid, s.gid))
        .chain(ns.sems.iter().map(|s| (format!("SysV semaphore set {}", s.id), s.uid, s.gid)))
        .chain(ns.queues.iter().map(|q| (format!("SysV message queue {}", q.id), q.uid, q.gid)))
        .chain(ns.mqueues.iter().map(|q| (format!("POSIX message queue /{}", q.name), q.uid, q.gid)));
    for (what, uid, gid) in owners {
        if let Err(id) = ids.owner(uid, gid) {
            let what = format!("{what} owned by {id}, which its user namespace does not map");
            return Err(DumpError::Unsupported { pid: root, what }.into());
        }
    }
    Ok(())
}

/// The inode of `pid`'s network namespace.
pub fn net_ino(pid: i32) -> Result<u64> {
    let path = format!("/proc/{pid}/ns/net");
    let m = std::fs::metadata(&path).map_err(crate::sys::SysError::path("stat", path))?;
    Ok(std::os::unix::fs::MetadataExt::ino(&m))
}

#[cfg(test)]
mod tests {
    use super::ns_root_of;

    #[test]
    fn ns_root_is_ccrs_path_less_the_inside_one() {
        assert_eq!(ns_root_of("/lxc/c1", "/").as_deref(), Some("/lxc/c1"));
        assert_eq!(ns_root_of("/lxc/c1/sub", "/sub").as_deref(), Some("/lxc/c1"));
        assert_eq!(ns_root_of("/sub", "/sub").as_deref(), Some("/"));
        assert_eq!(ns_root_of("/", "/").as_deref(), Some("/"));
        // Outside the root: the kernel writes the way up from it.
        assert_eq!(ns_root_of("/lxc", "/.."), None);
        assert_eq!(ns_root_of("/other/x", "/../../other/x"), None);
        // Not a component boundary, or not a suffix at all.
        assert_eq!(ns_root_of("/lxc/c1sub", "/sub"), None);
        assert_eq!(ns_root_of("/lxc/c1", "/c2"), None);
    }
}
