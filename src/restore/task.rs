//! The stages that run inside each seized task through its remote sessions:
//! Seize, ProcessState, Threads, ThreadState, SignalSources, Credentials, Registers.
//!
//! Ordering requirements:
//! - every signal action is written (the child still has ccr's own handlers reset
//!   to the default; only saved ones are written);
//! - pending signals are queued while the remote session blocks every signal, so
//!   none is delivered before the saved mask is in place;
//! - ccr's plumbing fds close before limits (RLIMIT_NOFILE may be below them);
//! - threads are cloned (remote clone3 with set_tid, attached through
//!   PTRACE_O_TRACECLONE) after the address space is back and before credentials
//!   change; each thread then restores its own altstack, rseq, robust list, pending
//!   signals and credentials (all per-thread in the kernel);
//! - credentials come last: bounding set and securebits while we still hold
//!   CAP_SETPCAP, KEEP_CAPS across the uid change so capset can set the saved sets;
//!   a credential change resets dumpable and the parent-death signal, so those
//!   follow it;
//! - the trampoline is unmapped by the leader after every thread is done with it.

use super::fork::Spawned;
use super::images::TaskImage;
use super::{RestoreError, Run};
use crate::checkpoint::ThreadCore;
use crate::error::Result;
use crate::image::pb;
use crate::sys::kernel;
use crate::sys::ptrace::Stopped;
use crate::sys::remote::{Remote, Scratch};
use crate::sys::signal::{self, AltStack};
use crate::sys::{process, trampoline};

/// One task being restored: its remote sessions, then its stopped threads.
pub struct Restoring {
    /// As in the images.
    pub pid: i32,
    /// As ccr sees it.
    pub outer: i32,
    /// The job-control stop it goes back into (0: none).
    pub stop_signal: i32,
    leader: Option<Remote>,
    /// Sessions on the other threads, in image order.
    threads: Vec<Remote>,
    /// After the Registers stage: the threads, ready to be let go.
    pub stopped_threads: Vec<Stopped>,
    stopped_leader: Option<Stopped>,
}

impl Restoring {
    pub fn leader_session(&mut self) -> &mut Remote {
        self.leader.as_mut().expect("a session until Registers")
    }

    pub fn into_leader(mut self) -> Stopped {
        self.stopped_leader.take().expect("registers set")
    }
}

fn scratch(sp: &Spawned) -> Scratch {
    Scratch {
        addr: sp.trampoline + trampoline::SCRATCH_OFFSET,
        len: (trampoline::TRAMPOLINE_SIZE - trampoline::SCRATCH_OFFSET) as usize,
    }
}

fn session(t: Stopped, outer_pid: i32, sp: &Spawned) -> Result<Remote> {
    let mut r = Remote::start(t, outer_pid, sp.trampoline)?;
    r.set_scratch(Some(scratch(sp)));
    Ok(r)
}

/// Stage Seize: every live task stops for us and gets a remote session.
pub fn seize(run: &mut Run<'_>) -> Result<()> {
    let ckpt = run.ckpt.as_ref().expect("read");
    let tree = run.tree.as_ref().expect("forked");
    for t in ckpt.inventory.tasks.iter().filter(|t| !t.zombie) {
        let outer = tree.outer_of(t.pid)?;
        let leader = session(Stopped::seize(outer, true)?.kill_on_drop(), outer, &tree.spawned[&t.pid])?;
        run.tasks.push(Restoring {
            pid: t.pid,
            outer,
            stop_signal: ckpt.task(t.pid).core.stop_signal,
            leader: Some(leader),
            threads: Vec::new(),
            stopped_threads: Vec::new(),
            stopped_leader: None,
        });
    }
    crate::debug!(run.log, "{} tasks seized", run.tasks.len());
    Ok(())
}

/// Runs `f` on every task being restored, with its images and what its restore
/// child reported.
fn each(run: &mut Run<'_>, mut f: impl FnMut(&mut Restoring, &TaskImage, &Spawned) -> Result<()>) -> Result<()> {
    let ckpt = run.ckpt.as_ref().expect("read");
    let tree = run.tree.as_ref().expect("forked");
    for t in &mut run.tasks {
        f(t, ckpt.task(t.pid), &tree.spawned[&t.pid])?;
    }
    Ok(())
}

/// Stage ProcessState: signal actions, timers, names, limits; ccr's fds go.
pub fn process_state(run: &mut Run<'_>) -> Result<()> {
    let entries = run.ckpt().inventory.tasks.clone();
    each(run, |t, img, sp| {
        let core = &img.core;
        let e = entries.iter().find(|e| e.pid == t.pid).expect("a task of the inventory");
        let pid = t.pid;
        let outer = t.outer;
        let r = t.leader_session();
        // The restore child reset every action to the default before it reported.
        for (sig, a) in &core.sigactions {
            r.set_sigaction(*sig, a)?;
        }
        for (which, v) in &core.itimers {
            r.setitimer(*which, v)?;
        }
        if core.timer_slack_ns != 0 {
            r.set_timer_slack(core.timer_slack_ns)?;
        }
        r.personality(core.personality)?;
        // The restore child may have set it to adopt children whose session leader is gone.
        r.set_child_subreaper(core.child_subreaper)?;
        if core.thp_disabled {
            r.set_thp_disabled(true)?;
        }
        for s in &core.pending_shared {
            r.queue_signal(pid, s.sig, &s.siginfo)?;
        }
        for &fd in &sp.plumbing {
            r.close(fd)?;
        }
        // POSIX locks belong to the task's fd table and go with any close of an fd of
        // their file (the Memory stage opened and closed mapped files): taken last.
        for f in img.fds.iter().filter(|f| !f.task_locks.is_empty()) {
            crate::files::lock::take_in_task(r, pid, f.fd, f.file_id, &f.task_locks)?;
        }

        if core.oom_score_adj != 0 {
            crate::sys::proc::oom::write(outer, core.oom_score_adj)?;
        }
        // Only the task itself may set its loginuid.
        if crate::sys::proc::loginuid::read(outer)? != core.loginuid {
            r.write_own_proc("loginuid", &core.loginuid.to_string())?;
        }
        // Limits last: RLIMIT_NOFILE may be below the fd the loginuid write opens.
        for rl in &core.rlimits {
            r.prlimit(rl.resource, rl.cur, rl.max)?;
        }
        // Group 0: a shell job's, the caller's group it inherited.
        if e.pgid != 0 && r.getpgid()? != e.pgid && e.sid != pid {
            r.setpgid(e.pgid)?;
        }
        Ok(())
    })
}

/// Stage Threads: every other thread, cloned by the leader with its saved id.
pub fn threads(run: &mut Run<'_>) -> Result<()> {
    each(run, |t, img, sp| {
        let (pid, outer) = (t.pid, t.outer);
        let r = t.leader.as_mut().expect("a session until Registers");
        let others = &img.core.threads[1..];
        if others.is_empty() {
            return Ok(());
        }
        r.tracee_mut().trace_clones(true)?;
        let mut made = Vec::new();
        for th in others {
            let (got, stopped) = r.clone_thread(th.tid)?;
            if got != th.tid {
                return Err(RestoreError::ThreadId { pid, tid: th.tid, got }.into());
            }
            made.push(session(stopped, outer, sp)?);
        }
        r.tracee_mut().trace_clones(false)?;
        t.threads = made;
        Ok(())
    })
}

/// Every session of a task with the image of its thread, the leader first.
fn sessions<'a>(
    t: &'a mut Restoring,
    threads: &'a [ThreadCore],
) -> impl Iterator<Item = (&'a mut Remote, &'a ThreadCore)> {
    t.leader.iter_mut().chain(t.threads.iter_mut()).zip(threads)
}

/// Stage ThreadState: the state each thread holds for itself.
pub fn thread_state(run: &mut Run<'_>) -> Result<()> {
    each(run, |t, img, _| {
        let pid = t.pid;
        for (r, th) in sessions(t, &img.core.threads) {
            let st = &th.state;
            let alt = st.altstack.unwrap_or(pb::AltStack { flags: libc::SS_DISABLE, ..Default::default() });
            let ss = AltStack {
                ss_sp: alt.sp as *mut libc::c_void,
                ss_flags: alt.flags & !libc::SS_ONSTACK,
                ss_size: alt.size,
            };
            r.set_sigaltstack(&ss)?;
            r.set_tid_address(st.clear_child_tid)?;
            if st.robust_list != 0 {
                r.set_robust_list(st.robust_list, st.robust_list_len)?;
            }
            if let Some(rs) = &st.rseq {
                r.rseq_register(rs.pointer, rs.size, rs.signature)?;
            }
            r.set_name(&st.comm)?;
            // Before credentials: a lower niceness or a real-time policy needs
            // CAP_SYS_NICE.
            if st.sched_policy != 0 || st.sched_priority != 0 {
                r.set_scheduler(st.sched_policy, st.sched_priority)?;
            }
            r.set_nice(st.nice)?;
            for s in &st.pending {
                r.queue_thread_signal(pid, th.tid, s.sig, &s.siginfo)?;
            }
            // Filters now, while ccr's calls in the task pass them by (seized
            // with PTRACE_O_SUSPEND_SECCOMP) and the task is still root (no
            // no_new_privs needed); each thread gets its own copy of the chain.
            if st.seccomp_strict || !st.seccomp.is_empty() {
                if !r.tracee().seccomp_suspended() {
                    let what = format!("thread {}: seccomp, which ccr cannot pass by without CAP_SYS_ADMIN", th.tid);
                    return Err(RestoreError::Unsupported { pid, what }.into());
                }
                for &i in &st.seccomp {
                    let f = &img.core.seccomp_filters[i as usize];
                    r.seccomp_filter(&f.program, f.flags)?;
                }
                if st.seccomp_strict {
                    r.seccomp_strict()?;
                }
            }
        }
        Ok(())
    })
}

/// Stage SignalSources: each process's timers, created under their saved IDs
/// (PR_TIMER_CREATE_RESTORE_IDS, on only while ccr creates them) and armed; then
/// who gets each fd's signals (F_SETOWN_EX: a thread may be the owner) and which.
pub fn signal_sources(run: &mut Run<'_>) -> Result<()> {
    let async_files: std::collections::HashSet<u32> =
        (run.ckpt().files.files.iter()).filter(|f| f.flags & libc::O_ASYNC as u32 != 0).map(|f| f.id).collect();
    each(run, |t, img, _| {
        // After the leases (taking one makes the task the owner), and through the
        // task's own fd numbers (O_ASYNC's signals carry the fd).
        for f in &img.fds {
            if let Some(o) = &f.owner {
                t.leader_session().set_fd_owner(f.fd, o.r#type, o.pid, o.signal)?;
            }
            if async_files.contains(&f.file_id) {
                t.leader_session().set_async(f.fd)?;
            }
        }
        let timers = &img.core.posix_timers;
        if timers.is_empty() {
            return Ok(());
        }
        let pid = t.pid;
        let r = t.leader_session();
        r.set_timer_restore_ids(true).map_err(|e| RestoreError::Unsupported {
            pid,
            what: format!("POSIX timers under their IDs ({e}; PR_TIMER_CREATE_RESTORE_IDS needs Linux 6.15)"),
        })?;
        for tm in timers {
            let ev = signal::sigevent(tm.notify, tm.signo, tm.sigval, tm.tid);
            let got = r.timer_create_with_id(tm.clock, &ev, tm.id)?;
            if got != tm.id {
                let detail = format!("POSIX timer {} came back as timer {got}", tm.id);
                return Err(RestoreError::Child { pid, detail }.into());
            }
            if tm.value_ns != 0 {
                r.timer_settime(tm.id, tm.value_ns, tm.interval_ns)?;
            }
        }
        r.set_timer_restore_ids(false)?;
        Ok(())
    })
}

/// At the end of stage CheckData, the last thing before the hooks and the run:
/// every task has its sockets, so the way in opens (veths held down), then the
/// established connections leave repair mode (both ends exist, so neither's
/// first packet meets a reset), then each sends what it had not sent. A later
/// failure kills nothing whose connection was let go before it was needed.
pub fn let_go_of_connections(run: &mut Run<'_>) -> Result<()> {
    let connections: std::collections::HashMap<u32, pb::InetSocket> = (run.ckpt().files.files.iter())
        .filter_map(|f| match &f.state {
            crate::files::FileState::Inet(s) if s.established.is_some() => Some((f.id, s.clone())),
            _ => None,
        })
        .collect();
    if connections.is_empty() {
        return Ok(());
    }
    if let Some(v) = run.veths.as_ref() {
        v.bring_up()?;
    }
    // One copy per connection (a file two tasks share is one connection).
    let mut copies: Vec<(i32, i32, u32, std::os::fd::OwnedFd)> = Vec::new();
    each(run, |t, img, _| {
        for f in img.fds.iter().filter(|f| connections.contains_key(&f.file_id)) {
            if copies.iter().all(|c| c.2 != f.file_id) {
                // ccr sees the task by its pid outside the tree's namespace.
                copies.push((t.pid, f.fd, f.file_id, crate::sys::pidfd::getfd(t.outer, f.fd)?));
            }
        }
        Ok(())
    })?;
    use std::os::fd::AsFd;
    let failed = |pid: i32, fd: i32, step: &str, e: crate::sys::SysError| RestoreError::Unsupported {
        pid,
        what: format!("fd {fd}: a TCP connection {step} ({e})"),
    };
    for (pid, fd, id, copy) in &copies {
        crate::files::tcp_conn::put_back(copy.as_fd(), &connections[id])
            .map_err(|e| failed(*pid, *fd, "leaving repair mode", e))?;
    }
    for (pid, fd, id, copy) in &copies {
        let c = connections[id].established.as_ref().expect("established");
        crate::files::tcp_conn::send_unsent(copy.as_fd(), c).map_err(|e| failed(*pid, *fd, "sending on", e))?;
    }
    Ok(())
}

/// Stage Credentials: every thread's credentials, then what their change reset.
///
/// The images hold ids as ccr saw them at the dump; a task in the tree's own
/// user namespace sets the namespace's own ids for them (checked at the dump to
/// be mapped, and again here). Where the namespace denies setgroups, the task
/// must already have its groups (inherited from ccr, which had them at the fork).
pub fn credentials(run: &mut Run<'_>) -> Result<()> {
    let last_cap = run.last_cap;
    let root = run.tree.as_ref().map(|t| t.root).unwrap_or(0);
    let (ccr_is_roots_parent, detached) = (!run.child_of_caller, run.opts.detached);
    let mut notes = Vec::new();
    let ids = crate::userns::Ids::of(run.ckpt().inventory.user_ns.as_ref());
    each(run, |t, img, _| {
        let (pid, outer) = (t.pid, t.outer);
        let creds = ids.creds(&img.core.creds).map_err(|id| RestoreError::Unsupported {
            pid,
            what: format!("credentials with {id}, which the tree's user namespace does not map,"),
        })?;
        let set_groups = !ids.setgroups_denied();
        if !set_groups {
            let has = crate::sys::proc::status::read(t.outer)?.numbers("Groups")?;
            if has != creds.groups {
                let what = format!(
                    "supplementary groups {:?} in a user namespace that denies setgroups (it has {has:?}),",
                    creds.groups
                );
                return Err(RestoreError::Unsupported { pid, what }.into());
            }
        }
        let core = &img.core;
        // The other threads first, as each had its own session since it was cloned.
        for r in t.threads.iter_mut() {
            restore_creds(r, &creds, last_cap, set_groups)?;
        }
        let r = t.leader_session();
        restore_creds(r, &creds, last_cap, set_groups)?;
        r.set_dumpable(core.dumpable)?;
        // The root's parent is ccr, which a detached restore ends: its death
        // signal would kill what was restored.
        if outer == root && ccr_is_roots_parent && detached && core.pdeath_signal != 0 {
            notes.push((pid, core.pdeath_signal));
            return Ok(());
        }
        Ok(r.set_pdeath_signal(core.pdeath_signal)?)
    })?;
    for (pid, sig) in notes {
        crate::info!(
            run.log,
            "pid {pid}: its parent death signal {sig} is not armed: its parent is ccr, which returns now (-d)"
        );
    }
    Ok(())
}

/// Stage Registers: each thread gets its registers, XSAVE area, signal mask and
/// CPU affinity; the leader unmaps the trampoline first (its last remote call:
/// the task stops at syscall exit and never executes from that page again).
pub fn registers(run: &mut Run<'_>) -> Result<()> {
    let default = run.default_affinity.clone();
    let default = default.as_deref();
    let mut log = Vec::new();
    each(run, |t, img, sp| {
        let core = &img.core;
        let shared = &core.pending_shared;
        for (r, th) in std::mem::take(&mut t.threads).into_iter().zip(&core.threads[1..]) {
            t.stopped_threads.push(set_registers(r, th, shared, default)?);
        }
        let mut r = t.leader.take().expect("a session until Registers");
        r.munmap(sp.trampoline, trampoline::TRAMPOLINE_SIZE)?;
        t.stopped_leader = Some(set_registers(r, &core.threads[0], shared, default)?);
        log.push((t.pid, core.threads.len()));
        Ok(())
    })?;
    for (pid, n) in log {
        crate::debug!(run.log, "pid {pid}: rebuilt with {n} threads");
    }
    Ok(())
}

/// Ends a thread's session with its saved registers, XSAVE area and mask, and
/// sets its CPU affinity. A wait the dump's stop broke off (`rewait_interrupted`)
/// waits again unless a signal the thread takes (its own or its process's
/// `shared` ones, not blocked) broke it off.
fn set_registers(r: Remote, th: &ThreadCore, shared: &[pb::PendingSignal], default: Option<&[u8]>) -> Result<Stopped> {
    r.tracee().set_xstate(&th.xsave)?;
    let blocked = th.state.blocked;
    let to_take = th.state.pending.iter().chain(shared).any(|s| {
        let sig = s.sig as i32;
        (1..=64).contains(&sig) && signal::bit(sig) & blocked == 0
    });
    let regs = crate::sys::remote::rewait_interrupted(th.regs, to_take);
    let stopped = r.finish(Some(&regs), Some(blocked), false)?;
    set_affinity(default, stopped.pid(), th)?;
    Ok(stopped)
}

/// The thread's saved CPU affinity (or ccr's own from before the run).
fn set_affinity(default: Option<&[u8]>, tid: i32, th: &ThreadCore) -> Result<()> {
    let a = &th.state.cpu_affinity;
    let mask = if a.is_empty() { default } else { Some(&a[..]) };
    if let Some(m) = mask {
        process::set_affinity(tid, m)?;
    }
    Ok(())
}

fn restore_creds(r: &mut Remote, c: &pb::Creds, last_cap: u64, set_groups: bool) -> Result<()> {
    for cap in 0..=last_cap {
        if c.cap_bnd & (1 << cap) == 0 {
            r.capbset_drop(cap)?;
        }
    }
    if set_groups {
        r.setgroups(&c.groups)?;
    }
    r.setresgid(c.gid, c.egid, c.sgid)?;
    r.setfsgid(c.fsgid)?;
    let keep = 1u32 << kernel::SECURE_KEEP_CAPS;
    r.set_securebits(c.securebits | keep)?;
    r.setresuid(c.uid, c.euid, c.suid)?;
    r.setfsuid(c.fsuid)?;
    r.capset(c.cap_eff, c.cap_prm, c.cap_inh)?;
    for cap in 0..=last_cap {
        if c.cap_amb & (1 << cap) != 0 {
            r.cap_ambient_raise(cap)?;
        }
    }
    if c.securebits & keep == 0 {
        // Clearing KEEP_CAPS needs no privilege (PR_SET_SECUREBITS would).
        r.set_keepcaps(false)?;
    }
    if c.no_new_privs {
        r.set_no_new_privs()?;
    }
    Ok(())
}
