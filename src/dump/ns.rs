//! Namespaces of the tree. A restore creates its tasks from ccr, so each of them
//! lands in ccr's own namespaces, except the kinds restore makes again for the
//! root when the tree had one of its own: PID (the root as its init) and UTS (its
//! host and domain name). Every other namespace a thread is in must therefore be
//! ccr's, and for the kinds made again, the root's: any other would come back as
//! ccr's (or the root's), with its hostname, mounts, IPC objects or network
//! silently gone. Until a kind is saved, such a tree is refused here, naming the
//! thread and the namespace.

use super::{tree, DumpError};
use crate::error::Result;
use crate::sys::proc;

/// The namespace types each of which a thread must share with ccr.
const SHARED_WITH_CCR: [&str; 6] = ["user", "mnt", "net", "ipc", "cgroup", "time"];

/// The namespaces of its own a tree has, which restore makes again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Own {
    /// Its root is the init of its own PID namespace.
    pub pid: bool,
    /// Its root has a UTS namespace of its own, which every task shares.
    pub uts: bool,
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
    let ours: Vec<String> =
        SHARED_WITH_CCR.iter().map(|k| proc::ns::id(proc::SELF, k)).collect::<std::result::Result<_, _>>()?;
    let root_pid_ns = proc::ns::id(root, "pid")?;
    let root_uts = proc::ns::id(root, "uts")?;
    let uts = root_uts != proc::ns::id(proc::SELF, "uts")?;
    for task in tasks.iter().filter(|t| !t.is_zombie()) {
        let pid = task.pid();
        for tid in task.threads.iter().map(|t| t.pid()) {
            let who = if tid == pid { String::new() } else { format!("thread {tid}: ") };
            let refuse = |what: String| DumpError::Unsupported { pid, what: format!("{who}{what}") };
            for (kind, ccr) in SHARED_WITH_CCR.iter().zip(&ours) {
                let its = proc::ns::id(tid, kind)?;
                if &its != ccr {
                    return Err(refuse(format!(
                        "its own {kind} namespace ({its}; ccr is in {ccr}, where a restore would put it)"
                    ))
                    .into());
                }
            }
            let its_pid = proc::ns::id(tid, "pid")?;
            if its_pid != root_pid_ns {
                return Err(refuse(format!("a nested PID namespace ({its_pid}; the root is in {root_pid_ns})")).into());
            }
            let its_uts = proc::ns::id(tid, "uts")?;
            if its_uts != root_uts {
                return Err(refuse(format!("its own uts namespace ({its_uts}; the root is in {root_uts})")).into());
            }
            for own in ["pid", "time"] {
                let pending = proc::ns::for_children(tid, own)?;
                if pending.as_ref() != Some(&proc::ns::id(tid, own)?) {
                    let which = pending.unwrap_or_else(|| "no task in it yet".into());
                    return Err(refuse(format!("a {own} namespace unshared for its future children ({which})")).into());
                }
            }
        }
    }
    Ok(Own { pid: pid_ns, uts })
}
