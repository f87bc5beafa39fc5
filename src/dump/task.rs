//! Per-task state other than memory and files: registers, signal state, identity,
//! limits. What only the task can report comes from remote syscalls: process-wide
//! state through the leader, per-thread state through each thread, all sharing one
//! scratch page mapped for the occasion.

use crate::dump::{DumpCtx, DumpError};
use crate::error::Result;
use crate::image::{convert, pb};
use crate::sys::proc::{self, MapEntry, Stat, Status};
use crate::sys::ptrace::{Tracee, SIGINFO_SIZE};
use crate::sys::remote::{Remote, Scratch};
use crate::sys::{kernel, mem, SysError};

pub struct TaskState {
    pub core: pb::TaskCore,
    /// The current program break (brk(0)), for the mm image.
    pub brk: u64,
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

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

fn siginfo_entries(raw: Vec<[u8; SIGINFO_SIZE]>) -> Vec<pb::PendingSignal> {
    raw.into_iter()
        .map(|si| pb::PendingSignal {
            sig: u32::from_le_bytes(si[0..4].try_into().expect("4 bytes")),
            siginfo: si.to_vec(),
        })
        .collect()
}

/// Registers and the per-thread signal state ptrace can read directly.
fn thread_regs(t: &Tracee, pid: i32) -> Result<pb::ThreadCore> {
    let regs = t.regs()?;
    let rseq = t.rseq()?.map(|c| pb::Rseq {
        pointer: c.rseq_abi_pointer,
        size: c.rseq_abi_size,
        flags: c.flags,
        signature: c.signature,
    });
    let comm = std::fs::read_to_string(format!("/proc/{pid}/task/{}/comm", t.pid())).unwrap_or_default();
    Ok(pb::ThreadCore {
        tid: t.pid(),
        regs: Some(convert::regs_to_pb(&regs)),
        xstate: t.xstate()?,
        blocked: t.sigmask()?,
        pending: siginfo_entries(t.pending_siginfo(false)?),
        rseq,
        comm: comm.trim_end().to_string(),
        ..Default::default()
    })
}

pub fn collect(
    ctx: &mut DumpCtx<'_>,
    threads: &[Tracee],
    stat: &Stat,
    status: &Status,
    maps: &[MapEntry],
) -> Result<TaskState> {
    let leader = &threads[0];
    let pid = leader.pid();
    let mut cores = Vec::new();
    for t in threads {
        cores.push(thread_regs(t, pid)?);
    }
    let pending_shared = siginfo_entries(leader.pending_siginfo(true)?);

    let ip = find_syscall_insn(pid, maps)?;
    let mut r = Remote::start(leader, ip)?;
    let prot = (libc::PROT_READ | libc::PROT_WRITE) as u64;
    let flags = (libc::MAP_SHARED | libc::MAP_ANONYMOUS) as u64;
    let scratch = r.syscall("mmap(scratch)", libc::SYS_mmap, [0, 4096, prot, flags, u64::MAX, 0])?;
    let sc = Scratch { addr: scratch, len: 4096 };
    r.set_scratch(Some(sc));
    let out = (|| -> Result<RemoteState> {
        let st = remote_state(&mut r)?;
        thread_remote_state(&mut r, &mut cores[0])?;
        for (t, core) in threads[1..].iter().zip(cores[1..].iter_mut()) {
            let mut tr = Remote::start(t, ip)?;
            tr.set_scratch(Some(sc));
            thread_remote_state(&mut tr, core)?;
            tr.finish(None, None, true)?;
        }
        Ok(st)
    })();
    // The scratch page goes whatever happened; then registers and mask go back.
    let unmapped = r.syscall("munmap(scratch)", libc::SYS_munmap, [scratch, 4096, 0, 0, 0, 0]);
    let remote = out?;
    unmapped?;
    r.finish(None, None, true)?;

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
    let personality_path = format!("/proc/{pid}/personality");
    let personality = std::fs::read_to_string(&personality_path)
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim(), 16).ok())
        .ok_or_else(|| SysError::Parse { path: personality_path.into(), detail: "not hex".into() })?;
    let rlimits =
        proc::limits(pid)?.into_iter().map(|(resource, cur, max)| pb::Rlimit { resource, cur, max }).collect();
    if let Some(r0) = cores[0].regs.as_ref() {
        crate::debug!(
            ctx.log,
            "pid {pid}: ip {:#x} sp {:#x} orig_ax {} ax {:#x}, {} threads",
            r0.ip,
            r0.sp,
            r0.orig_ax as i64,
            r0.ax,
            cores.len()
        );
    }
    let core = pb::TaskCore {
        pid,
        comm: stat.comm.clone(),
        threads: cores,
        sigactions: remote.sigactions,
        pending_shared,
        creds: Some(creds),
        rlimits,
        umask: status.octal("Umask")?,
        personality,
        dumpable: remote.dumpable,
        cwd: proc::readlink(&format!("/proc/{pid}/cwd"))?,
        root: proc::readlink(&format!("/proc/{pid}/root"))?,
        itimers: remote.itimers,
        pdeath_signal: remote.pdeath_signal,
        timer_slack_ns: remote.timer_slack_ns,
        exit_signal: stat.exit_signal,
        stop_signal: 0,
        child_subreaper: remote.child_subreaper,
    };
    Ok(TaskState { core, brk: remote.brk })
}

/// Per-thread state only the thread can tell: its altstack, clear_child_tid and
/// robust list.
fn thread_remote_state(r: &mut Remote<'_>, core: &mut pb::ThreadCore) -> Result<()> {
    let s = r.scratch_addr(0)?;
    r.syscall("sigaltstack", libc::SYS_sigaltstack, [0, s, 0, 0, 0, 0])?;
    let b = r.get(0, 24)?;
    let flags = i32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
    core.altstack = Some(pb::AltStack { sp: u64_at(&b, 0), flags, size: u64_at(&b, 16) });
    r.syscall("prctl(PR_GET_TID_ADDRESS)", libc::SYS_prctl, [kernel::PR_GET_TID_ADDRESS as u64, s, 0, 0, 0, 0])?;
    core.clear_child_tid = u64_at(&r.get(0, 8)?, 0);
    r.syscall("get_robust_list", libc::SYS_get_robust_list, [0, s, s + 8, 0, 0, 0])?;
    let b = r.get(0, 16)?;
    core.robust_list = u64_at(&b, 0);
    core.robust_list_len = u64_at(&b, 8);
    Ok(())
}

struct RemoteState {
    sigactions: Vec<pb::SigAction>,
    itimers: Vec<pb::ITimer>,
    brk: u64,
    pdeath_signal: i32,
    timer_slack_ns: u64,
    dumpable: i32,
    securebits: u32,
    child_subreaper: bool,
}

/// Process-wide state only the task can tell, through the leader.
fn remote_state(r: &mut Remote<'_>) -> Result<RemoteState> {
    let s = r.scratch_addr(0)?;
    let mut sigactions = Vec::new();
    // Every signal: /proc's SigCgt/SigIgn do not show a default action that carries
    // flags (glibc sets SA_RESTORER even for SIG_DFL).
    for sig in 1..=64u64 {
        if sig == libc::SIGKILL as u64 || sig == libc::SIGSTOP as u64 {
            continue;
        }
        // struct kernel_sigaction: handler, flags, restorer, mask (8 bytes each).
        r.syscall("rt_sigaction", libc::SYS_rt_sigaction, [sig, 0, s, 8, 0, 0])?;
        let b = r.get(0, 32)?;
        let sa = pb::SigAction {
            sig: sig as u32,
            handler: u64_at(&b, 0),
            flags: u64_at(&b, 8),
            restorer: u64_at(&b, 16),
            mask: u64_at(&b, 24),
        };
        if sa.handler != 0 || sa.flags != 0 || sa.mask != 0 {
            sigactions.push(sa);
        }
    }
    let mut itimers = Vec::new();
    for which in [libc::ITIMER_REAL, libc::ITIMER_VIRTUAL, libc::ITIMER_PROF] {
        r.syscall("getitimer", libc::SYS_getitimer, [which as u64, s, 0, 0, 0, 0])?;
        let b = r.get(0, 32)?;
        let us = |o: usize| u64_at(&b, o) * 1_000_000 + u64_at(&b, o + 8);
        let (interval_us, value_us) = (us(0), us(16));
        if interval_us != 0 || value_us != 0 {
            itimers.push(pb::ITimer { which: which as u32, interval_us, value_us });
        }
    }
    let brk = r.syscall("brk", libc::SYS_brk, [0; 6])?;
    r.syscall("prctl(PR_GET_PDEATHSIG)", libc::SYS_prctl, [kernel::PR_GET_PDEATHSIG as u64, s, 0, 0, 0, 0])?;
    let pdeath_signal = i32::from_le_bytes(r.get(0, 4)?.try_into().expect("4 bytes"));
    let prctl = |r: &mut Remote<'_>, name, op: u32| r.syscall(name, libc::SYS_prctl, [op as u64, 0, 0, 0, 0, 0]);
    let timer_slack_ns = prctl(r, "prctl(PR_GET_TIMERSLACK)", kernel::PR_GET_TIMERSLACK)?;
    let dumpable = prctl(r, "prctl(PR_GET_DUMPABLE)", kernel::PR_GET_DUMPABLE)? as i32;
    let securebits = prctl(r, "prctl(PR_GET_SECUREBITS)", kernel::PR_GET_SECUREBITS)? as u32;
    r.syscall(
        "prctl(PR_GET_CHILD_SUBREAPER)",
        libc::SYS_prctl,
        [kernel::PR_GET_CHILD_SUBREAPER as u64, s, 0, 0, 0, 0],
    )?;
    let child_subreaper = r.get(0, 4)? != [0, 0, 0, 0];
    Ok(RemoteState { sigactions, itimers, brk, pdeath_signal, timer_slack_ns, dumpable, securebits, child_subreaper })
}
