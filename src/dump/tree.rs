//! Seizing the process tree: every task below the root (the one tree walk of
//! `sys::proc::children`) and every thread of each, so that nothing of it runs
//! while it is collected. Zombies are recorded, not seized.

use std::collections::HashMap;

use crate::dump::DumpError;
use crate::error::Result;
use crate::image::pb;
use crate::sys::proc::{self, children::gone};
use crate::sys::process;
use crate::sys::ptrace::{Seized, Stopped};

/// One task of the tree, held stopped (threads[0] is the leader).
pub struct Task {
    pub entry: pb::TaskEntry,
    pub threads: Vec<Stopped>,
    /// Each thread's own CPU affinity.
    pub affinity: Vec<Vec<u8>>,
}

impl Task {
    pub fn pid(&self) -> i32 {
        self.entry.pid
    }

    pub fn leader(&self) -> &Stopped {
        &self.threads[0]
    }

    pub fn is_zombie(&self) -> bool {
        self.entry.zombie
    }
}

/// Seizes every thread of `pid` (the leader first), listing again until no new
/// thread appears. `attached` holds threads attached while their cgroup was frozen.
fn seize_threads(pid: i32, attached: &mut HashMap<i32, Seized>) -> Result<Vec<Stopped>> {
    let mut threads: Vec<Stopped> = Vec::new();
    loop {
        let tids = proc::task::threads(pid)?;
        let mut ordered: Vec<i32> = tids.iter().copied().filter(|t| *t == pid).collect();
        ordered.extend(tids.iter().copied().filter(|t| *t != pid));
        let mut new = 0;
        for tid in ordered {
            if threads.iter().any(|t| t.pid() == tid) {
                continue;
            }
            let seized = match attached.remove(&tid) {
                Some(s) => s.wait_stop(),
                None => Stopped::seize(tid, false),
            };
            match seized {
                Ok(t) => {
                    threads.push(t);
                    new += 1;
                }
                Err(e) if tid != pid && gone(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        if new == 0 {
            return Ok(threads);
        }
    }
}

/// Seizes the tree under `root`. `attached` holds tasks attached (not yet waited
/// for) while they were frozen; they are waited for here.
pub fn seize(root: i32, attached: &mut HashMap<i32, Seized>) -> Result<Vec<Task>> {
    let mut out: Vec<Task> = Vec::new();
    proc::children::walk(root, |pid| -> Result<bool> {
        let stat = match proc::stat::read(pid) {
            Ok(s) => s,
            Err(e) if pid != root && gone(&e) => return Ok(false),
            Err(e) if gone(&e) => return Err(DumpError::NoProcess { pid }.into()),
            Err(e) => return Err(e.into()),
        };
        let mut entry = pb::TaskEntry { pid, ppid: stat.ppid, pgid: stat.pgid, sid: stat.sid, ..Default::default() };
        if stat.is_zombie() {
            entry.zombie = true;
            entry.exit_status = stat.exit_code;
            out.push(Task { entry, threads: Vec::new(), affinity: Vec::new() });
            return Ok(false);
        }
        let threads = seize_threads(pid, attached)?;
        if threads.first().map(|t| t.pid()) != Some(pid) {
            return Err(DumpError::Unsupported { pid, what: "a process whose main thread has exited".into() }.into());
        }
        entry.threads = threads.iter().map(|t| t.pid()).collect();
        let affinity = threads.iter().map(|t| process::affinity(t.pid()).unwrap_or_default()).collect();
        out.push(Task { entry, threads, affinity });
        Ok(true)
    })?;
    Ok(out)
}
