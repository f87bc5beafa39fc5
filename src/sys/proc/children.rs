//! /proc/PID/task/TID/children: the children each thread forked, and the one walk
//! over a process tree that everything else uses.

use crate::sys::{Errno, SysError, SysResult};

/// Children of one thread.
pub fn of_thread(pid: i32, tid: i32) -> SysResult<Vec<i32>> {
    let p = super::path(pid, &format!("task/{tid}/children"));
    Ok(super::read_text(&p)?.split_whitespace().filter_map(|s| s.parse().ok()).collect())
}

/// Children of every thread of `pid`, in thread order.
pub fn of_task(pid: i32) -> SysResult<Vec<i32>> {
    let mut out = Vec::new();
    for tid in super::task::threads(pid)? {
        match of_thread(pid, tid) {
            Ok(kids) => out.extend(kids),
            // A thread that exited meanwhile has no children to report.
            Err(e) if gone(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Whether an error says the task (or its /proc entry) has gone.
pub fn gone(e: &SysError) -> bool {
    match e {
        SysError::Path { source, .. } => {
            source.kind() == std::io::ErrorKind::NotFound || source.raw_os_error() == Some(libc::ESRCH)
        }
        SysError::Pid { errno, .. } => *errno == Errno::ESRCH,
        SysError::Died { .. } => true,
        _ => false,
    }
}

/// Walks the tree under `root` breadth first. `visit(pid)` runs before the
/// children of `pid` are read (so a visit that stops the task sees a stable list)
/// and says whether to descend. A task that vanishes while walked is skipped,
/// unless it is the root. The visit's errors are the walk's.
pub fn walk<E: From<SysError>>(root: i32, mut visit: impl FnMut(i32) -> Result<bool, E>) -> Result<(), E> {
    let mut queue = std::collections::VecDeque::from([root]);
    let mut seen = std::collections::HashSet::new();
    while let Some(pid) = queue.pop_front() {
        if !seen.insert(pid) {
            continue;
        }
        if !visit(pid)? {
            continue;
        }
        match of_task(pid) {
            Ok(kids) => queue.extend(kids),
            Err(e) if pid != root && gone(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// `root` and every task below it, breadth first.
pub fn descendants(root: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let _ = walk::<SysError>(root, |pid| {
        out.push(pid);
        Ok(true)
    });
    out
}
