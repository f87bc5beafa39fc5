//! Namespaces of the tree. A restore creates its tasks from ccr, so each of them
//! lands in ccr's own namespaces, except a PID namespace of the tree's own (the
//! root as its init), which restore creates again. Every other namespace a thread
//! is in must therefore be ccr's: one of its own would come back as ccr's, with its
//! hostname, mounts, IPC objects or network silently gone. Until a kind is saved,
//! such a tree is refused here, naming the thread and the namespace.

use super::{tree, DumpError};
use crate::error::Result;
use crate::sys::proc;

/// The namespace types each of which a thread must share with ccr.
const SHARED_WITH_CCR: [&str; 7] = ["user", "mnt", "net", "ipc", "uts", "cgroup", "time"];

/// Checks every live thread's namespaces; says whether the tree has a PID
/// namespace of its own (its root is that namespace's init).
pub fn check(tasks: &[tree::Task]) -> Result<bool> {
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
            for own in ["pid", "time"] {
                let pending = proc::ns::for_children(tid, own)?;
                if pending.as_ref() != Some(&proc::ns::id(tid, own)?) {
                    let which = pending.unwrap_or_else(|| "no task in it yet".into());
                    return Err(refuse(format!("a {own} namespace unshared for its future children ({which})")).into());
                }
            }
        }
    }
    Ok(pid_ns)
}
