//! Seizing the process tree: every task below the root (found through
//! /proc/PID/task/TID/children of each thread) and every thread of each, so that
//! nothing of it runs while it is collected. Zombies are recorded, not seized.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::dump::DumpError;
use crate::error::Result;
use crate::image::pb;
use crate::sys::process::CpuPin;
use crate::sys::ptrace::Tracee;
use crate::sys::{proc, Errno, SysError};

/// One task of the tree, held stopped (threads[0] is the leader).
pub struct Task {
    pub entry: pb::TaskEntry,
    pub threads: Vec<Tracee>,
    /// Each thread's own CPU affinity (ccr pins them while it works).
    pub affinity: Vec<Vec<u8>>,
}

impl Task {
    pub fn pid(&self) -> i32 {
        self.entry.pid
    }

    pub fn leader(&self) -> &Tracee {
        &self.threads[0]
    }
}

fn vanished(e: &SysError) -> bool {
    match e {
        SysError::Pid { errno, .. } => *errno == Errno::ESRCH,
        SysError::Path { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
        SysError::Task { .. } => true,
        _ => false,
    }
}

/// Seizes the tree under `root`. `attached` holds tracees attached (not yet
/// waited for) while the tasks were frozen; they are waited for here.
pub fn seize(root: i32, mut attached: HashMap<i32, Tracee>, pin: &mut CpuPin) -> Result<Vec<Task>> {
    let mut out: Vec<Task> = Vec::new();
    let mut queue = VecDeque::from([root]);
    let mut seen = HashSet::new();
    while let Some(pid) = queue.pop_front() {
        if !seen.insert(pid) {
            continue;
        }
        let stat = match proc::stat(pid) {
            Ok(s) => s,
            Err(e) if pid != root && vanished(&e) => continue,
            Err(e) if vanished(&e) => return Err(DumpError::NoProcess { pid }.into()),
            Err(e) => return Err(e.into()),
        };
        let mut entry = pb::TaskEntry { pid, ppid: stat.ppid, pgid: stat.pgid, sid: stat.sid, ..Default::default() };
        if stat.state == 'Z' || stat.state == 'X' {
            entry.zombie = true;
            entry.exit_status = stat.exit_code;
            out.push(Task { entry, threads: Vec::new(), affinity: Vec::new() });
            continue;
        }
        let mut threads: Vec<Tracee> = Vec::new();
        // Threads may be born while we seize: list again until nothing is new.
        loop {
            let tids = proc::threads(pid)?;
            let mut new = 0;
            let mut ordered: Vec<i32> = tids.iter().copied().filter(|t| *t == pid).collect();
            ordered.extend(tids.iter().copied().filter(|t| *t != pid));
            for tid in ordered {
                if threads.iter().any(|t| t.pid() == tid) {
                    continue;
                }
                let seized = match attached.remove(&tid) {
                    Some(mut t) => t.wait_stopped().map(|()| t),
                    None => Tracee::seize(tid, false),
                };
                match seized {
                    Ok(t) => {
                        threads.push(t);
                        new += 1;
                    }
                    Err(e) if tid != pid && vanished(&e) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            if new == 0 {
                break;
            }
        }
        if threads.first().map(|t| t.pid()) != Some(pid) {
            return Err(DumpError::Unsupported { pid, what: "a process whose main thread has exited".into() }.into());
        }
        entry.threads = threads.iter().map(|t| t.pid()).collect();
        let affinity = threads.iter().map(|t| pin.pin(t.pid()).unwrap_or_default()).collect();
        for t in &threads {
            if let Ok(kids) = proc::children(pid, t.pid()) {
                queue.extend(kids);
            }
        }
        out.push(Task { entry, threads, affinity });
    }
    Ok(out)
}
