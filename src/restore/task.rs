//! One task, after it is seized: address space, process-wide state, threads, each
//! thread's own state, credentials, registers.
//!
//! Ordering requirements:
//! - every signal action is written (the child still has ccr's own handlers);
//! - pending signals are queued while the remote session blocks every signal, so
//!   none is delivered before the saved mask is in place;
//! - ccr's plumbing fds close before limits (RLIMIT_NOFILE may be below them);
//! - threads are cloned (remote clone3 with set_tid, auto-attached through
//!   PTRACE_O_TRACECLONE) after the address space is back and before credentials
//!   change; each thread then restores its own altstack, rseq, robust list, pending
//!   signals and credentials (all per-thread in the kernel);
//! - credentials come last, bounding set and securebits while we still hold
//!   CAP_SETPCAP, KEEP_CAPS across the uid change so capset can set the saved sets;
//! - the trampoline is unmapped by the leader after every thread is done with it.

use crate::error::Result;
use crate::image::{convert, pb};
use crate::restore::fork::Spawned;
use crate::restore::{mm, RestoreCtx, RestoreError, TaskImages};
use crate::sys::ptrace::Tracee;
use crate::sys::remote::{Remote, Scratch};
use crate::sys::{bytes_of, kernel, proc, process, trampoline};

fn le(v: &[u64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn scratch(sp: &Spawned) -> Scratch {
    Scratch {
        addr: sp.trampoline + trampoline::SCRATCH_OFFSET,
        len: (trampoline::TRAMPOLINE_SIZE - trampoline::SCRATCH_OFFSET) as usize,
    }
}

/// Rebuilds one seized task; returns the tracees of the threads it created (stopped,
/// registers set, ready to be let go). On failure the task is killed.
pub fn rebuild(
    ctx: &mut RestoreCtx<'_>,
    leader: &Tracee,
    img: &TaskImages,
    e: &pb::TaskEntry,
    sp: &Spawned,
) -> Result<Vec<Tracee>> {
    let r = rebuild_inner(ctx, leader, img, e, sp);
    if r.is_err() {
        let _ = process::kill(leader.pid(), libc::SIGKILL);
    }
    r
}

fn rebuild_inner(
    ctx: &mut RestoreCtx<'_>,
    leader: &Tracee,
    img: &TaskImages,
    e: &pb::TaskEntry,
    sp: &Spawned,
) -> Result<Vec<Tracee>> {
    let pid = img.pid;
    let mut r = Remote::start(leader, sp.trampoline)?;
    r.set_scratch(Some(scratch(sp)));
    mm::rebuild(ctx, &mut r, img, sp)?;
    crate::debug!(ctx.log, "pid {pid}: address space rebuilt");
    process_state(&mut r, img, sp)?;
    let cur_pgid = r.syscall("getpgid", libc::SYS_getpgid, [0; 6])? as i32;
    if cur_pgid != e.pgid && e.sid != pid {
        r.syscall("setpgid", libc::SYS_setpgid, [0, e.pgid as u64, 0, 0, 0, 0])?;
    }

    let mut threads = Vec::new();
    if img.core.threads.len() > 1 {
        leader.set_options(kernel::PTRACE_O_TRACESYSGOOD | kernel::PTRACE_O_EXITKILL | kernel::PTRACE_O_TRACECLONE)?;
        for th in &img.core.threads[1..] {
            threads.push(clone_thread(&mut r, leader.pid(), pid, th.tid)?);
        }
        leader.set_options(kernel::PTRACE_O_TRACESYSGOOD | kernel::PTRACE_O_EXITKILL)?;
        for (t, th) in threads.iter().zip(&img.core.threads[1..]) {
            let mut tr = Remote::start(t, sp.trampoline)?;
            tr.set_scratch(Some(scratch(sp)));
            thread_state(&mut tr, pid, th, img.core.creds.as_ref(), ctx.last_cap)?;
            let regs = convert::regs_from_pb(th.regs.as_ref().expect("checked when read"));
            t.set_xstate(&th.xstate)?;
            tr.finish(Some(&regs), Some(th.blocked), false)?;
            set_affinity(ctx, t.pid(), th)?;
        }
    }
    let th = &img.core.threads[0];
    thread_state(&mut r, pid, th, img.core.creds.as_ref(), ctx.last_cap)?;
    r.syscall(
        "prctl(PR_SET_DUMPABLE)",
        libc::SYS_prctl,
        [kernel::PR_SET_DUMPABLE as u64, img.core.dumpable as u64, 0, 0, 0, 0],
    )?;
    // Last remote call: the trampoline goes. The task stops at syscall exit and
    // never executes from the unmapped page again.
    r.syscall("munmap(trampoline)", libc::SYS_munmap, [sp.trampoline, trampoline::TRAMPOLINE_SIZE, 0, 0, 0, 0])?;
    let regs = convert::regs_from_pb(th.regs.as_ref().expect("checked when read"));
    leader.set_xstate(&th.xstate)?;
    r.finish(Some(&regs), Some(th.blocked), false)?;
    set_affinity(ctx, leader.pid(), th)?;
    crate::debug!(ctx.log, "pid {pid}: rebuilt with {} threads", img.core.threads.len());
    Ok(threads)
}

/// The thread's saved CPU affinity (or ccr's own from before the run).
fn set_affinity(ctx: &RestoreCtx<'_>, tid: i32, th: &pb::ThreadCore) -> Result<()> {
    let mask = if th.cpu_affinity.is_empty() { ctx.default_affinity.as_deref() } else { Some(&th.cpu_affinity[..]) };
    if let Some(m) = mask {
        process::set_affinity(tid, m)?;
    }
    Ok(())
}

/// A thread with id `tid` in the task, through a remote clone3.
fn clone_thread(r: &mut Remote<'_>, outer_pid: i32, pid: i32, tid: i32) -> Result<Tracee> {
    let tid_addr = r.put(512, &(tid as u64).to_le_bytes())?;
    let flags = libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM;
    let args = kernel::clone_args { flags: flags as u64, set_tid: tid_addr, set_tid_size: 1, ..Default::default() };
    let b = bytes_of(&args);
    let p = r.put(0, &b)?;
    let got = r.syscall("clone3(thread)", libc::SYS_clone3, [p, b.len() as u64, 0, 0, 0, 0])? as i32;
    if got != tid {
        return Err(RestoreError::ThreadId { pid, tid, got }.into());
    }
    // The tid as we see it (differs when the task has its own PID namespace).
    let ours = if outer_pid == pid { tid } else { proc::outer_tid(outer_pid, tid)?.unwrap_or(tid) };
    Ok(Tracee::adopt_new_thread(ours)?)
}

/// Process-wide state: signal actions, timers, names, limits; ccr's fds go.
fn process_state(r: &mut Remote<'_>, img: &TaskImages, sp: &Spawned) -> Result<()> {
    let core = &img.core;
    let pid = img.pid;
    // The restore child reset every action to the default before it reported; only
    // the saved (non-default) ones are written here.
    for sig in 1..=64u32 {
        if !core.sigactions.iter().any(|a| a.sig == sig) {
            continue;
        }
        let sa = core
            .sigactions
            .iter()
            .find(|a| a.sig == sig)
            .copied()
            .unwrap_or(pb::SigAction { sig, ..Default::default() });
        let p = r.put(0, &le(&[sa.handler, sa.flags, sa.restorer, sa.mask]))?;
        r.syscall("rt_sigaction", libc::SYS_rt_sigaction, [sig as u64, p, 0, 8, 0, 0])?;
    }
    for it in &core.itimers {
        let split = |us: u64| [us / 1_000_000, us % 1_000_000];
        let v = [split(it.interval_us), split(it.value_us)].concat();
        let p = r.put(0, &le(&v))?;
        r.syscall("setitimer", libc::SYS_setitimer, [it.which as u64, p, 0, 0, 0, 0])?;
    }
    r.syscall(
        "prctl(PR_SET_PDEATHSIG)",
        libc::SYS_prctl,
        [kernel::PR_SET_PDEATHSIG as u64, core.pdeath_signal as u64, 0, 0, 0, 0],
    )?;
    if core.timer_slack_ns != 0 {
        r.syscall(
            "prctl(PR_SET_TIMERSLACK)",
            libc::SYS_prctl,
            [kernel::PR_SET_TIMERSLACK as u64, core.timer_slack_ns, 0, 0, 0, 0],
        )?;
    }
    r.syscall("personality", libc::SYS_personality, [core.personality as u64, 0, 0, 0, 0, 0])?;
    // The restore child may have set it to adopt children whose session leader is gone.
    let subreaper = [kernel::PR_SET_CHILD_SUBREAPER as u64, core.child_subreaper as u64, 0, 0, 0, 0];
    r.syscall("prctl(PR_SET_CHILD_SUBREAPER)", libc::SYS_prctl, subreaper)?;
    for s in &core.pending_shared {
        let p = r.put(0, &s.siginfo)?;
        r.syscall("rt_sigqueueinfo", libc::SYS_rt_sigqueueinfo, [pid as u64, s.sig as u64, p, 0, 0, 0])?;
    }
    for &fd in &sp.plumbing {
        r.syscall("close(plumbing)", libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0])?;
    }
    for rl in &core.rlimits {
        let p = r.put(0, &le(&[rl.cur, rl.max]))?;
        r.syscall("prlimit64", libc::SYS_prlimit64, [0, rl.resource as u64, p, 0, 0, 0])?;
    }
    Ok(())
}

/// The state each thread holds for itself, then its credentials.
fn thread_state(
    r: &mut Remote<'_>,
    pid: i32,
    th: &pb::ThreadCore,
    creds: Option<&pb::Creds>,
    last_cap: u64,
) -> Result<()> {
    let alt = th.altstack.unwrap_or(pb::AltStack { flags: libc::SS_DISABLE, ..Default::default() });
    let mut ss = alt.sp.to_le_bytes().to_vec();
    ss.extend_from_slice(&(alt.flags & !libc::SS_ONSTACK).to_le_bytes());
    ss.extend_from_slice(&[0u8; 4]);
    ss.extend_from_slice(&alt.size.to_le_bytes());
    let p = r.put(0, &ss)?;
    r.syscall("sigaltstack", libc::SYS_sigaltstack, [p, 0, 0, 0, 0, 0])?;
    r.syscall("set_tid_address", libc::SYS_set_tid_address, [th.clear_child_tid, 0, 0, 0, 0, 0])?;
    if th.robust_list != 0 {
        r.syscall("set_robust_list", libc::SYS_set_robust_list, [th.robust_list, th.robust_list_len, 0, 0, 0, 0])?;
    }
    if let Some(rs) = &th.rseq {
        r.syscall("rseq(register)", libc::SYS_rseq, [rs.pointer, rs.size as u64, 0, rs.signature as u64, 0, 0])?;
    }
    let mut comm = th.comm.as_bytes().to_vec();
    comm.truncate(15);
    comm.push(0);
    let p = r.put(0, &comm)?;
    r.syscall("prctl(PR_SET_NAME)", libc::SYS_prctl, [kernel::PR_SET_NAME as u64, p, 0, 0, 0, 0])?;
    for s in &th.pending {
        let p = r.put(0, &s.siginfo)?;
        r.syscall(
            "rt_tgsigqueueinfo",
            libc::SYS_rt_tgsigqueueinfo,
            [pid as u64, th.tid as u64, s.sig as u64, p, 0, 0],
        )?;
    }
    if let Some(c) = creds {
        restore_creds(r, c, last_cap)?;
    }
    Ok(())
}

fn restore_creds(r: &mut Remote<'_>, c: &pb::Creds, last_cap: u64) -> Result<()> {
    let prctl = |r: &mut Remote<'_>, name, args: [u64; 5]| {
        r.syscall(name, libc::SYS_prctl, [args[0], args[1], args[2], args[3], args[4], 0])
    };
    for cap in 0..=last_cap {
        if c.cap_bnd & (1 << cap) == 0 {
            prctl(r, "prctl(PR_CAPBSET_DROP)", [kernel::PR_CAPBSET_DROP as u64, cap, 0, 0, 0])?;
        }
    }
    let groups: Vec<u8> = c.groups.iter().flat_map(|g| g.to_le_bytes()).collect();
    let p = if groups.is_empty() { r.scratch_addr(0)? } else { r.put(0, &groups)? };
    r.syscall("setgroups", libc::SYS_setgroups, [c.groups.len() as u64, p, 0, 0, 0, 0])?;
    r.syscall("setresgid", libc::SYS_setresgid, [c.gid as u64, c.egid as u64, c.sgid as u64, 0, 0, 0])?;
    r.syscall("setfsgid", libc::SYS_setfsgid, [c.fsgid as u64, 0, 0, 0, 0, 0])?;
    let keep = 1u64 << kernel::SECURE_KEEP_CAPS; // SECBIT_KEEP_CAPS
    prctl(r, "prctl(PR_SET_SECUREBITS)", [kernel::PR_SET_SECUREBITS as u64, c.securebits as u64 | keep, 0, 0, 0])?;
    r.syscall("setresuid", libc::SYS_setresuid, [c.uid as u64, c.euid as u64, c.suid as u64, 0, 0, 0])?;
    r.syscall("setfsuid", libc::SYS_setfsuid, [c.fsuid as u64, 0, 0, 0, 0, 0])?;
    // capset v3: a header then two data structs (low and high 32 bits).
    let hdr = kernel::__user_cap_header_struct { version: kernel::_LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let lo = |v: u64| v as u32;
    let hi = |v: u64| (v >> 32) as u32;
    let data = [
        kernel::__user_cap_data_struct {
            effective: lo(c.cap_eff),
            permitted: lo(c.cap_prm),
            inheritable: lo(c.cap_inh),
        },
        kernel::__user_cap_data_struct {
            effective: hi(c.cap_eff),
            permitted: hi(c.cap_prm),
            inheritable: hi(c.cap_inh),
        },
    ];
    let hp = r.put(0, &bytes_of(&hdr))?;
    let dp = r.put(64, &bytes_of(&data))?;
    r.syscall("capset", libc::SYS_capset, [hp, dp, 0, 0, 0, 0])?;
    for cap in 0..=last_cap {
        if c.cap_amb & (1 << cap) != 0 {
            prctl(
                r,
                "prctl(PR_CAP_AMBIENT_RAISE)",
                [kernel::PR_CAP_AMBIENT as u64, kernel::PR_CAP_AMBIENT_RAISE as u64, cap, 0, 0],
            )?;
        }
    }
    if c.securebits as u64 & keep == 0 {
        // Clearing KEEP_CAPS needs no privilege (PR_SET_SECUREBITS would).
        prctl(r, "prctl(PR_SET_KEEPCAPS)", [kernel::PR_SET_KEEPCAPS as u64, 0, 0, 0, 0])?;
    }
    if c.no_new_privs {
        prctl(r, "prctl(PR_SET_NO_NEW_PRIVS)", [kernel::PR_SET_NO_NEW_PRIVS as u64, 1, 0, 0, 0])?;
    }
    Ok(())
}
