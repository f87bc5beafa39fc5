use super::inventory::{arch_from_pb, arch_to_pb};
use super::{At, ImageError};
use crate::checkpoint::{Arch, TaskCore, ThreadCore};
use crate::image::pb;
use crate::sys::ptrace::Regs;
use crate::sys::remote::ItimerWhich;
use crate::sys::signal::{ITimerVal, SigAction};

pub fn regs_to_pb(r: &Regs) -> pb::X86Regs {
    pb::X86Regs {
        r15: r.r15,
        r14: r.r14,
        r13: r.r13,
        r12: r.r12,
        bp: r.rbp,
        bx: r.rbx,
        r11: r.r11,
        r10: r.r10,
        r9: r.r9,
        r8: r.r8,
        ax: r.rax,
        cx: r.rcx,
        dx: r.rdx,
        si: r.rsi,
        di: r.rdi,
        orig_ax: r.orig_rax,
        ip: r.rip,
        cs: r.cs,
        flags: r.eflags,
        sp: r.rsp,
        ss: r.ss,
        fs_base: r.fs_base,
        gs_base: r.gs_base,
        ds: r.ds,
        es: r.es,
        fs: r.fs,
        gs: r.gs,
    }
}

pub fn regs_from_pb(p: &pb::X86Regs) -> Regs {
    Regs {
        r15: p.r15,
        r14: p.r14,
        r13: p.r13,
        r12: p.r12,
        rbp: p.bp,
        rbx: p.bx,
        r11: p.r11,
        r10: p.r10,
        r9: p.r9,
        r8: p.r8,
        rax: p.ax,
        rcx: p.cx,
        rdx: p.dx,
        rsi: p.si,
        rdi: p.di,
        orig_rax: p.orig_ax,
        rip: p.ip,
        cs: p.cs,
        eflags: p.flags,
        rsp: p.sp,
        ss: p.ss,
        fs_base: p.fs_base,
        gs_base: p.gs_base,
        ds: p.ds,
        es: p.es,
        fs: p.fs,
        gs: p.gs,
    }
}

/// The resource limits this kernel knows (RLIMIT_CPU .. RLIMIT_RTTIME).
const RLIMITS: u32 = libc::RLIMIT_RTTIME + 1;

/// The legacy x87/SSE area and the XSAVE header alone take 576 bytes.
const XSAVE_MIN: usize = 576;

fn us_to_timeval(us: u64) -> crate::sys::kernel::__kernel_old_timeval {
    crate::sys::kernel::__kernel_old_timeval { tv_sec: (us / 1_000_000) as i64, tv_usec: (us % 1_000_000) as i64 }
}

fn timeval_us(t: &crate::sys::kernel::__kernel_old_timeval) -> u64 {
    t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64
}

pub fn core_to_pb(c: &TaskCore, arch: Arch) -> pb::TaskCore {
    let threads = c
        .threads
        .iter()
        .map(|t| pb::ThreadCore {
            tid: t.tid,
            regs: Some(pb::Registers {
                arch: arch_to_pb(arch) as i32,
                x86: Some(regs_to_pb(&t.regs)),
                xsave: t.xsave.clone(),
            }),
            state: Some(t.state.clone()),
        })
        .collect();
    pb::TaskCore {
        pid: c.pid,
        comm: c.comm.clone(),
        threads,
        sigactions: c
            .sigactions
            .iter()
            .map(|(sig, a)| pb::SigAction {
                sig: *sig as u32,
                handler: a.handler,
                flags: a.flags,
                restorer: a.restorer,
                mask: a.mask,
            })
            .collect(),
        pending_shared: c.pending_shared.clone(),
        creds: Some(c.creds.clone()),
        rlimits: c.rlimits.clone(),
        umask: c.umask,
        personality: c.personality,
        dumpable: c.dumpable,
        cwd: c.cwd.clone(),
        root: c.root.clone(),
        itimers: c
            .itimers
            .iter()
            .map(|(w, v)| pb::ITimer {
                which: *w as u32,
                interval_us: timeval_us(&v.it_interval),
                value_us: timeval_us(&v.it_value),
            })
            .collect(),
        pdeath_signal: c.pdeath_signal,
        timer_slack_ns: c.timer_slack_ns,
        exit_signal: c.exit_signal,
        stop_signal: c.stop_signal,
        child_subreaper: c.child_subreaper,
        thp_disabled: c.thp_disabled,
        loginuid: c.loginuid,
        seccomp_filters: c.seccomp_filters.clone(),
        posix_timers: c.posix_timers.clone(),
        oom_score_adj: c.oom_score_adj,
    }
}

fn thread_from_pb(at: &At<'_>, i: usize, t: pb::ThreadCore) -> Result<ThreadCore, ImageError> {
    let field = |f: &str| format!("threads[{i}] (tid {}).{f}", t.tid);
    let regs = at.required(field("regs"), t.regs.as_ref())?;
    match arch_from_pb(at, &field("regs.arch"), regs.arch)? {
        Arch::X86_64 => {}
    }
    let gp = at.required(field("regs.x86"), regs.x86.as_ref())?;
    if regs.xsave.len() < XSAVE_MIN {
        return Err(at.invalid(
            field("regs.xsave"),
            format!("{} bytes, an XSAVE area has at least {XSAVE_MIN}", regs.xsave.len()),
        ));
    }
    let state = at.required(field("state"), t.state.as_ref())?.clone();
    if !crate::checkpoint::SCHED_POLICIES.contains(&state.sched_policy) || !(-20..=19).contains(&state.nice) {
        return Err(at.invalid(field("state"), format!("policy {} nice {}", state.sched_policy, state.nice)));
    }
    Ok(ThreadCore { tid: t.tid, regs: regs_from_pb(gp), xsave: regs.xsave.clone(), state })
}

pub fn core_from_pb(at: &At<'_>, p: pb::TaskCore) -> Result<TaskCore, ImageError> {
    if p.threads.first().map(|t| t.tid) != Some(p.pid) {
        return Err(at.invalid("threads", "the first thread is not the leader"));
    }
    let threads =
        p.threads.into_iter().enumerate().map(|(i, t)| thread_from_pb(at, i, t)).collect::<Result<Vec<_>, _>>()?;
    let insn = std::mem::size_of::<crate::sys::kernel::sock_filter>();
    for (i, f) in p.seccomp_filters.iter().enumerate() {
        // The kernel takes 1 to 4096 instructions (BPF_MAXINSNS).
        if f.program.is_empty() || f.program.len() % insn != 0 || f.program.len() > 4096 * insn {
            return Err(at.invalid(format!("seccomp_filters[{i}]"), format!("{} bytes of program", f.program.len())));
        }
    }
    for t in &threads {
        if let Some(&bad) = t.state.seccomp.iter().find(|&&n| n as usize >= p.seccomp_filters.len()) {
            return Err(at.invalid(format!("thread {}.seccomp", t.tid), format!("no filter {bad}")));
        }
    }
    let mut sigactions = Vec::new();
    for a in &p.sigactions {
        let sig = a.sig as i32;
        if !crate::sys::signal::catchable().any(|s| s == sig) {
            return Err(at.invalid("sigactions", format!("signal {} has no action to set", a.sig)));
        }
        sigactions.push((sig, SigAction { handler: a.handler, flags: a.flags, restorer: a.restorer, mask: a.mask }));
    }
    let mut itimers = Vec::new();
    for t in &p.itimers {
        let which = ItimerWhich::from_raw(t.which)
            .ok_or_else(|| at.invalid("itimers.which", format!("unknown timer {}", t.which)))?;
        itimers.push((
            which,
            ITimerVal { it_interval: us_to_timeval(t.interval_us), it_value: us_to_timeval(t.value_us) },
        ));
    }
    for (i, t) in p.posix_timers.iter().enumerate() {
        let field = |f: &str| format!("posix_timers[{i}] (timer {}).{f}", t.id);
        if !crate::checkpoint::TIMER_CLOCKS.contains(&t.clock) {
            return Err(at.invalid(field("clock"), format!("clock {} is none a timer can be made on", t.clock)));
        }
        let how = t.notify & !libc::SIGEV_THREAD_ID;
        if ![libc::SIGEV_SIGNAL, libc::SIGEV_NONE, libc::SIGEV_THREAD].contains(&how) {
            return Err(at.invalid(field("notify"), format!("unknown notification {}", t.notify)));
        }
        let to_thread = t.notify & libc::SIGEV_THREAD_ID != 0;
        if to_thread && !threads.iter().any(|th| th.tid == t.tid) {
            return Err(at.invalid(field("tid"), format!("{} is no thread of the task", t.tid)));
        }
        if t.id < 0 || p.posix_timers[..i].iter().any(|o| o.id == t.id) {
            return Err(at.invalid(field("id"), "negative or used twice"));
        }
    }
    if !(-1000..=1000).contains(&p.oom_score_adj) {
        return Err(at.invalid("oom_score_adj", format!("{} is out of -1000..1000", p.oom_score_adj)));
    }
    for r in &p.rlimits {
        if r.resource >= RLIMITS {
            return Err(at.invalid("rlimits.resource", format!("unknown resource {}", r.resource)));
        }
    }
    Ok(TaskCore {
        pid: p.pid,
        comm: p.comm,
        threads,
        sigactions,
        pending_shared: p.pending_shared,
        creds: at.required("creds", p.creds.as_ref())?.clone(),
        rlimits: p.rlimits,
        umask: p.umask,
        personality: p.personality,
        dumpable: p.dumpable,
        cwd: p.cwd,
        root: p.root,
        itimers,
        pdeath_signal: p.pdeath_signal,
        timer_slack_ns: p.timer_slack_ns,
        exit_signal: p.exit_signal,
        stop_signal: p.stop_signal,
        child_subreaper: p.child_subreaper,
        thp_disabled: p.thp_disabled,
        loginuid: p.loginuid,
        seccomp_filters: p.seccomp_filters,
        posix_timers: p.posix_timers,
        oom_score_adj: p.oom_score_adj,
    })
}
