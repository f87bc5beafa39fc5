//! Per-task state other than memory and files: registers, signal state, identity,
//! limits. What only the task can report comes from remote syscalls: process-wide
//! state through the leader, per-thread state through each thread, all sharing one
//! scratch page mapped for the occasion.

use crate::checkpoint::{TaskCore, ThreadCore};
use crate::dump::DumpError;
use crate::error::Result;
use crate::image::pb;
use crate::sys::proc::{self, MapEntry, Stat, Status};
use crate::sys::process::CpuPin;
use crate::sys::ptrace::{Stopped, SIGINFO_SIZE};
use crate::sys::remote::landing::Restorers;
use crate::sys::remote::{ItimerWhich, Landing, Remote};
use crate::sys::{mem, signal};

/// What `collect` found besides the core image.
pub struct TaskState {
    pub core: TaskCore,
    /// (hostname, domainname) of its UTS namespace, when asked for.
    pub uts: Option<(String, String)>,
    /// The owner and signal of each signalling fd that has one.
    pub fd_owners: Vec<(i32, pb::FdOwner)>,
    /// The current program break (brk(0)), for the mm image.
    pub brk: u64,
    /// Why the remote sessions ran without a landing, if they did.
    pub unlanded: Option<&'static str>,
}

/// The address of a `syscall` instruction (0f 05) in the task's vdso, or in another
/// executable mapping when the vdso has none. Any such byte pair works: the CPU
/// decodes from where we point it.
pub fn find_syscall_insn(pid: i32, maps: &[MapEntry]) -> Result<u64> {
    let mut candidates: Vec<&MapEntry> = maps.iter().filter(|m| m.name == "[vdso]").collect();
    candidates.extend(maps.iter().filter(|m| m.exec && m.read && m.name != "[vdso]" && m.name != "[vsyscall]"));
    for m in candidates {
        let len = (m.end - m.start).min(1 << 20) as usize;
        let mut buf = vec![0u8; len];
        if mem::read(pid, m.start, &mut buf).is_err() {
            continue;
        }
        if let Some(i) = buf.windows(2).position(|w| w == [0x0f, 0x05]) {
            return Ok(m.start + i as u64);
        }
    }
    Err(DumpError::NoSyscallInsn { pid }.into())
}

fn siginfo_entries(raw: Vec<[u8; SIGINFO_SIZE]>) -> Vec<pb::PendingSignal> {
    raw.into_iter()
        .map(|si| pb::PendingSignal {
            sig: u32::from_le_bytes(si[0..4].try_into().expect("4 bytes")),
            siginfo: si.to_vec(),
        })
        .collect()
}

/// Registers and the per-thread signal state ptrace can read directly, and the
/// CPU the thread last ran on.
fn thread_regs(t: &Stopped, pid: i32) -> Result<(ThreadCore, u32)> {
    let sched = proc::stat::read(t.pid())?;
    // SCHED_DEADLINE's runtime, deadline and period are not in /proc.
    if !crate::checkpoint::SCHED_POLICIES.contains(&sched.policy) {
        let what = format!("thread {}: scheduling policy {}", t.pid(), sched.policy);
        return Err(DumpError::Unsupported { pid, what }.into());
    }
    let rseq = t.rseq()?.map(|c| pb::Rseq {
        pointer: c.rseq_abi_pointer,
        size: c.rseq_abi_size,
        flags: c.flags,
        signature: c.signature,
    });
    let core = ThreadCore {
        tid: t.pid(),
        regs: t.regs()?,
        xsave: t.xstate()?,
        state: pb::ThreadState {
            blocked: t.sigmask()?,
            pending: siginfo_entries(t.pending_siginfo(false)?),
            rseq,
            comm: proc::task::comm(pid, t.pid()),
            nice: sched.nice,
            sched_policy: sched.policy,
            sched_priority: sched.rt_priority,
            ..Default::default()
        },
    };
    Ok((core, sched.processor))
}

/// Each thread's seccomp filters into `cores` (oldest first, as indexes into the
/// returned list, which holds each program once); its strict mode is asked of
/// the thread itself (`thread_remote_state`), which /proc shows for the leader
/// only. Seized without PTRACE_O_SUSPEND_SECCOMP (ccr lacks CAP_SYS_ADMIN or is
/// under seccomp itself) ccr can neither read a filter nor pass one by: each
/// thread's mode is read from /proc then, before any call is made in it.
fn seccomp(threads: &[Stopped], pid: i32, status: &Status, cores: &mut [ThreadCore]) -> Result<Vec<pb::SeccompFilter>> {
    let mut filters: Vec<pb::SeccompFilter> = Vec::new();
    for (t, core) in threads.iter().zip(cores.iter_mut()) {
        if !t.seccomp_suspended() {
            let mode = if t.pid() == pid { status.int("Seccomp") } else { proc::status::read(t.pid())?.int("Seccomp") };
            if mode.unwrap_or(0) != 0 {
                let what = format!("thread {}: seccomp, which ccr cannot pass by without CAP_SYS_ADMIN", t.pid());
                return Err(DumpError::Unsupported { pid, what }.into());
            }
            continue;
        }
        let mut chain = Vec::new();
        while let Some((program, flags)) = t.seccomp_filter(chain.len() as u32)? {
            if let Some(why) = unrestorable_filter(&program) {
                let what = format!("thread {}: a seccomp filter that {why}", t.pid());
                return Err(DumpError::Unsupported { pid, what }.into());
            }
            chain.push(pb::SeccompFilter { program, flags });
        }
        for f in chain.into_iter().rev() {
            let i = match filters.iter().position(|g| *g == f) {
                Some(i) => i,
                None => {
                    filters.push(f);
                    filters.len() - 1
                }
            };
            core.state.seccomp.push(i as u32);
        }
    }
    Ok(filters)
}

/// Why seccomp filter `program` (sock_filter instructions) cannot come back, if
/// it cannot: one that hands calls to a user-notification listener (the listener
/// is not restored: the calls would fail with ENOSYS), or returns an action it
/// computes, which could be that.
fn unrestorable_filter(program: &[u8]) -> Option<&'static str> {
    const BPF_RET: u16 = 0x06;
    const BPF_A: u16 = 0x10;
    const RET_ACTION_FULL: u32 = 0xffff_0000;
    let user_notif = crate::sys::kernel::SECCOMP_RET_USER_NOTIF;
    for insn in program.chunks_exact(8) {
        let code = u16::from_ne_bytes([insn[0], insn[1]]);
        let k = u32::from_ne_bytes([insn[4], insn[5], insn[6], insn[7]]);
        if code & 0x07 != BPF_RET {
            continue;
        }
        if code & 0x18 == BPF_A {
            return Some("returns an action it computes");
        }
        if k & RET_ACTION_FULL == user_notif {
            return Some("hands calls to a user-notification listener (not restored)");
        }
    }
    None
}

pub fn collect(
    threads: &[Stopped],
    stat: &Stat,
    status: &Status,
    maps: &[MapEntry],
    want_uts: bool,
    signalling: &[i32],
    shared: &mut Sessions<'_>,
) -> Result<TaskState> {
    let leader = &threads[0];
    let pid = leader.pid();
    let mut cores = Vec::new();
    let mut cpus = Vec::new();
    for t in threads {
        let (core, cpu) = thread_regs(t, pid)?;
        cores.push(core);
        cpus.push(cpu);
    }
    let seccomp_filters = seccomp(threads, pid, status, &mut cores)?;
    let pending_shared = siginfo_entries(leader.pending_siginfo(true)?);
    let tids: Vec<i32> = threads.iter().map(|t| t.pid()).collect();
    let timers = checked_timers(pid, &tids)?;

    let sps: Vec<u64> = cores.iter().map(|c| c.regs.rsp).collect();
    let shadow_stack = status.get("x86_Thread_features").is_some_and(|f| f.contains("shstk"));
    let how = match Landing::find(pid, maps, &sps, cores[0].xsave.len(), shadow_stack, shared.restorers) {
        Ok(l) => How::Landed(l),
        Err(why) => How::Plain(find_syscall_insn(pid, maps)?, why),
    };
    // One session at a time: only the thread being worked on holds ccr's registers.
    let mut follow = |cpu: u32| {
        if let Some(p) = shared.pin.as_deref_mut() {
            p.follow(cpu)
        }
    };
    follow(cpus[0]);
    let mut remote = session(leader, pid, &how, |r| {
        let mut st = remote_state(r)?;
        st.posix_timers = posix_timers(r, &timers)?;
        if want_uts {
            st.uts = Some(r.uts_names()?);
        }
        for &fd in signalling {
            let (kind, pid, signal) = r.fd_owner(fd)?;
            if pid != 0 || signal != 0 {
                st.fd_owners.push((fd, pb::FdOwner { r#type: kind, pid, signal }));
            }
        }
        thread_remote_state(r, &mut cores[0])?;
        Ok(st)
    })?;
    for ((t, core), &cpu) in threads[1..].iter().zip(cores[1..].iter_mut()).zip(&cpus[1..]) {
        follow(cpu);
        session(t, pid, &how, |r| thread_remote_state(r, core))?;
    }
    if let How::Plain(_, why) = how {
        remote.unlanded = Some(why);
    }

    let ids = status.numbers("Uid")?;
    let gids = status.numbers("Gid")?;
    let creds = pb::Creds {
        uid: ids[0],
        euid: ids[1],
        suid: ids[2],
        fsuid: ids[3],
        gid: gids[0],
        egid: gids[1],
        sgid: gids[2],
        fsgid: gids[3],
        groups: status.numbers("Groups")?,
        cap_inh: status.hex("CapInh")?,
        cap_prm: status.hex("CapPrm")?,
        cap_eff: status.hex("CapEff")?,
        cap_bnd: status.hex("CapBnd")?,
        cap_amb: status.hex("CapAmb")?,
        securebits: remote.securebits,
        no_new_privs: status.int("NoNewPrivs")? != 0,
    };
    let rlimits =
        proc::limits::read(pid)?.into_iter().map(|(resource, cur, max)| pb::Rlimit { resource, cur, max }).collect();
    let core = TaskCore {
        pid,
        comm: stat.comm.clone(),
        threads: cores,
        sigactions: remote.sigactions,
        pending_shared,
        creds,
        rlimits,
        umask: status.octal("Umask")?,
        personality: proc::personality::read(pid)?,
        dumpable: remote.dumpable,
        cwd: proc::links::cwd(pid)?,
        root: proc::links::root(pid)?,
        itimers: remote.itimers,
        pdeath_signal: remote.pdeath_signal,
        timer_slack_ns: remote.timer_slack_ns,
        exit_signal: stat.exit_signal,
        stop_signal: 0,
        child_subreaper: remote.child_subreaper,
        thp_disabled: remote.thp_disabled,
        posix_timers: remote.posix_timers,
        oom_score_adj: proc::oom::read(pid)?,
        loginuid: proc::loginuid::read(pid)?,
        seccomp_filters,
    };
    Ok(TaskState { core, uts: remote.uts, fd_owners: remote.fd_owners, brk: remote.brk, unlanded: remote.unlanded })
}

/// What the remote sessions of one dump share across its processes.
pub struct Sessions<'a> {
    /// ccr's own CPU pin, moved next to each thread it drives.
    pub pin: Option<&'a mut CpuPin>,
    pub restorers: &'a mut Restorers,
}

/// How the remote sessions of one process run.
enum How {
    /// On a landing: a killed ccr leaves each thread as it was.
    Landed(Landing),
    /// From a `syscall` instruction with a scratch page mapped per session, and why
    /// there is no landing.
    Plain(u64, &'static str),
}

/// Runs `f` in a remote session on thread `t` of process `pid`; registers, mask
/// and memory go back whatever `f` returned.
fn session<R>(t: &Stopped, pid: i32, how: &How, f: impl FnOnce(&mut Remote<&Stopped>) -> Result<R>) -> Result<R> {
    match how {
        How::Landed(l) => {
            let mut r = Remote::start_landed(t, pid, l)?;
            let out = f(&mut r);
            let done = r.finish(None, None, true);
            let out = out?;
            done?;
            Ok(out)
        }
        How::Plain(ip, _) => {
            let mut r = Remote::start(t, pid, *ip)?;
            r.no_single_step()?;
            let scratch = r.map_scratch()?;
            r.set_scratch(Some(scratch));
            let out = f(&mut r);
            // The scratch page goes whatever happened; then registers and mask go back.
            let unmapped = r.munmap(scratch.addr, scratch.len as u64);
            let out = out?;
            unmapped?;
            r.finish(None, None, true)?;
            Ok(out)
        }
    }
}

/// Per-thread state only the thread can tell: its altstack, clear_child_tid and
/// robust list.
fn thread_remote_state(r: &mut Remote<&Stopped>, core: &mut ThreadCore) -> Result<()> {
    let ss = r.sigaltstack()?;
    let st = &mut core.state;
    st.altstack = Some(pb::AltStack { sp: ss.ss_sp as u64, flags: ss.ss_flags, size: ss.ss_size });
    st.clear_child_tid = r.tid_address()?;
    (st.robust_list, st.robust_list_len) = r.robust_list()?;
    // Only where ccr's calls pass seccomp by (else no thread has any: `seccomp`).
    if r.tracee().seccomp_suspended() {
        st.seccomp_strict = r.seccomp_mode()? == crate::sys::kernel::SECCOMP_MODE_STRICT;
    }
    Ok(())
}

/// The process's POSIX timers as /proc shows them; a timer a restored task could
/// not create again is refused by ID.
fn checked_timers(pid: i32, tids: &[i32]) -> Result<Vec<proc::timers::ProcTimer>> {
    let threads = tids.len();
    let timers = proc::timers::read(pid)?;
    for t in &timers {
        let refuse = |what: String| DumpError::Unsupported { pid, what: format!("POSIX timer {}: {what}", t.id) };
        if !crate::checkpoint::TIMER_CLOCKS.contains(&t.clock) {
            return Err(refuse(format!("clock {} (the CPU clock of another process or thread)", t.clock)).into());
        }
        if t.notify & libc::SIGEV_THREAD_ID != 0 && !tids.contains(&t.target) {
            return Err(refuse(format!("it signals thread {}, which has exited", t.target)).into());
        }
        if t.clock == libc::CLOCK_THREAD_CPUTIME_ID && threads > 1 {
            return Err(refuse("the CPU clock of one of several threads (which one, /proc does not say)".into()).into());
        }
    }
    Ok(timers)
}

/// Each timer's time left, interval and overrun (timer_gettime in the task).
fn posix_timers(r: &mut Remote<&Stopped>, timers: &[proc::timers::ProcTimer]) -> Result<Vec<pb::PosixTimer>> {
    let mut out = Vec::with_capacity(timers.len());
    for t in timers {
        let (value_ns, interval_ns) = r.timer_gettime(t.id)?;
        out.push(pb::PosixTimer {
            id: t.id,
            clock: t.clock,
            notify: t.notify,
            signo: t.signo,
            sigval: t.sigval,
            tid: if t.notify & libc::SIGEV_THREAD_ID != 0 { t.target } else { 0 },
            value_ns,
            interval_ns,
            overrun: r.timer_getoverrun(t.id)?,
        });
    }
    Ok(out)
}

struct RemoteState {
    sigactions: Vec<(i32, signal::SigAction)>,
    itimers: Vec<(ItimerWhich, signal::ITimerVal)>,
    brk: u64,
    pdeath_signal: i32,
    timer_slack_ns: u64,
    dumpable: i32,
    securebits: u32,
    child_subreaper: bool,
    thp_disabled: bool,
    posix_timers: Vec<pb::PosixTimer>,
    uts: Option<(String, String)>,
    fd_owners: Vec<(i32, pb::FdOwner)>,
    unlanded: Option<&'static str>,
}

/// Process-wide state only the task can tell, through the leader.
fn remote_state(r: &mut Remote<&Stopped>) -> Result<RemoteState> {
    let mut sigactions = Vec::new();
    // Every signal: /proc's SigCgt/SigIgn do not show a default action that carries
    // flags (glibc sets SA_RESTORER even for SIG_DFL).
    for sig in signal::catchable() {
        let sa = r.sigaction(sig)?;
        if !signal::is_default(&sa) {
            sigactions.push((sig, sa));
        }
    }
    let mut itimers = Vec::new();
    for which in ItimerWhich::ALL {
        let v = r.getitimer(which)?;
        let zero = |t: &crate::sys::kernel::__kernel_old_timeval| t.tv_sec == 0 && t.tv_usec == 0;
        if !zero(&v.it_interval) || !zero(&v.it_value) {
            itimers.push((which, v));
        }
    }
    Ok(RemoteState {
        sigactions,
        itimers,
        brk: r.brk_current()?,
        pdeath_signal: r.pdeath_signal()?,
        timer_slack_ns: r.timer_slack()?,
        dumpable: r.dumpable()?,
        securebits: r.securebits()?,
        child_subreaper: r.child_subreaper()?,
        thp_disabled: r.thp_disabled()?,
        posix_timers: Vec::new(),
        uts: None,
        fd_owners: Vec::new(),
        unlanded: None,
    })
}

#[cfg(test)]
mod tests {
    /// One sock_filter instruction's bytes.
    fn insn(code: u16, k: u32) -> Vec<u8> {
        [&code.to_ne_bytes()[..], &[0, 0], &k.to_ne_bytes()].concat()
    }

    #[test]
    fn filters_that_cannot_come_back() {
        let load = insn(0x20, 0);
        let allow = insn(0x06, 0x7fff_0000);
        let errno = insn(0x06, 0x0005_0001);
        assert_eq!(super::unrestorable_filter(&[load.clone(), errno, allow.clone()].concat()), None);
        let notif = insn(0x06, crate::sys::kernel::SECCOMP_RET_USER_NOTIF);
        assert!(super::unrestorable_filter(&[load.clone(), notif, allow.clone()].concat()).is_some());
        let ret_a = insn(0x16, 0);
        assert!(super::unrestorable_filter(&[load, ret_a, allow].concat()).is_some());
    }
}
