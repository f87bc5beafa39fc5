//! Remote syscalls: the task itself executes a syscall we choose.
//!
//! We point its registers at a `syscall` instruction (found in its vdso at dump
//! time, or in the trampoline page on restore), let it execute that one
//! instruction and read the result. Two ways, chosen per session:
//! - single-step (one ptrace stop per syscall): the trap after the instruction is a
//!   SIGTRAP sent with force_sig, which would reset a blocked or ignored SIGTRAP
//!   handler to SIG_DFL, so it is used only when the task ignores no SIGTRAP and has
//!   none pending, and SIGTRAP stays unblocked during the session;
//! - otherwise PTRACE_SYSCALL to the syscall-entry and then the syscall-exit stop
//!   (two stops, but no signal at all).
//!
//! Ordering requirements:
//! - every signal is blocked (PTRACE_SETSIGMASK) for the session, so no handler runs
//!   and no signal-delivery-stop interleaves with our stops;
//! - `orig_ax` is -1 while we drive the task, so the kernel's syscall-restart logic
//!   never rewrites our registers;
//! - at the end the saved registers and mask are put back, with the restart of an
//!   interrupted syscall done by hand (the kernel would have done it at the stop we
//!   consumed).
//!
//! A dump session (`start_landed`) never single-steps and keeps the thread on a
//! landing (`landing`) from which it puts itself back if ccr dies; a restore
//! session works on tasks ccr made and would kill anyway.
//!
//! The typed calls (`calls`) are the only way the engine runs a syscall in a task:
//! no stage builds one by number.

mod calls;
pub mod landing;

use std::borrow::Borrow;

use crate::fault;
use crate::sys::ptrace::{Regs, StepEvents, Stopped};
use crate::sys::{mem, signal, Errno, SysError, SysResult};

pub use calls::ItimerWhich;
pub use landing::Landing;

const ERESTARTSYS: i64 = 512;
const ERESTARTNOINTR: i64 = 513;
const ERESTARTNOHAND: i64 = 514;
const ERESTART_RESTARTBLOCK: i64 = 516;

/// Registers after the restart the kernel would do for a syscall interrupted by our
/// stop with no handler to run. `restart_block_usable`: the task still has its
/// kernel restart block (same task, leave-running); otherwise restart_syscall would
/// only return -EINTR, so we return -EINTR directly, as a signal would have.
pub fn restart_interrupted(r: Regs, restart_block_usable: bool) -> Regs {
    if (r.orig_rax as i64) < 0 {
        return r;
    }
    let mut out = Regs { orig_rax: u64::MAX, ..r };
    match interrupted_call(&r, restart_block_usable) {
        Some(call) if -(call.rax as i64) == ERESTART_RESTARTBLOCK => {
            out.rax = libc::SYS_restart_syscall as u64;
            out.rip -= 2;
        }
        Some(_) => {
            out.rax = r.orig_rax;
            out.rip -= 2;
        }
        None if -(r.rax as i64) == ERESTART_RESTARTBLOCK => out.rax = (-(libc::EINTR as i64)) as u64,
        None => {}
    }
    out
}

/// The interrupted syscall `restart_interrupted` restarts from `r`, in the form the
/// kernel ends or restarts by itself on a signal check: None when it restarts none.
fn interrupted_call(r: &Regs, restart_block_usable: bool) -> Option<Regs> {
    if (r.orig_rax as i64) < 0 {
        return None;
    }
    match -(r.rax as i64) {
        ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND => Some(*r),
        ERESTART_RESTARTBLOCK if restart_block_usable => Some(*r),
        // poll turns every interruption into a restart block, even with no
        // timeout. Its arguments are still in the registers: started again, it
        // only waits longer than it had left, where EINTR would end loops that
        // never expect it (util-linux's script quits on it).
        ERESTART_RESTARTBLOCK if r.orig_rax == libc::SYS_poll as u64 => {
            Some(Regs { rax: (-ERESTARTNOHAND) as u64, ..*r })
        }
        _ => None,
    }
}

/// Registers that wait again in a wait with no timeout that the dump's own stop
/// broke off: `rt_sigtimedwait` (busybox init waits there for SIGCHLD) and
/// `epoll_wait` (a daemon's event loop; `epoll_pwait` and `epoll_pwait2` without
/// a signal mask of their own). The kernel ends these with -EINTR when the task
/// is stopped (ptrace's interrupt, a stop signal) and never restarts them
/// (signal(7)), so a task seized there would find on restore that its wait
/// failed though nothing happened to it. A handler's signal that really broke
/// one off is still pending when ccr's stop comes, before any handler runs: with
/// one (`signal_to_take`, pending and not blocked) the -EINTR stays; with none
/// the call is restarted from its own arguments, as the kernel restarts a call
/// that returned -ERESTARTNOHAND. A wait with a timeout keeps its -EINTR (a
/// restart would wait its whole time again).
pub fn rewait_interrupted(r: Regs, signal_to_take: bool) -> Regs {
    let eintr = (-(libc::EINTR as i64)) as u64;
    if signal_to_take || r.rax != eintr || (r.orig_rax as i64) < 0 {
        return r;
    }
    // Arguments: rdi, rsi, rdx, r10, r8.
    let untimed = match r.orig_rax as i64 {
        libc::SYS_rt_sigtimedwait => r.rdx == 0,
        libc::SYS_epoll_wait => (r.r10 as i32) < 0,
        libc::SYS_epoll_pwait => (r.r10 as i32) < 0 && r.r8 == 0,
        libc::SYS_epoll_pwait2 => r.r10 == 0 && r.r8 == 0,
        _ => false,
    };
    if untimed {
        return Regs { rax: (-ERESTARTNOHAND) as u64, ..r };
    }
    r
}

/// Registers for an rt_sigreturn frame: as `restart_interrupted`, but a call that
/// would resume through `restart_syscall` starts again from its own arguments,
/// since rt_sigreturn drops the restart block.
fn restart_from_frame(r: Regs) -> Regs {
    if (r.orig_rax as i64) >= 0 && -(r.rax as i64) == ERESTART_RESTARTBLOCK {
        return Regs { rax: r.orig_rax, rip: r.rip - 2, orig_rax: u64::MAX, ..r };
    }
    restart_interrupted(r, true)
}

/// Whether a single-step trap leaves the task's signal state as it was: SIGTRAP not
/// ignored (force_sig would reset the action) and not pending (its stop would be
/// taken for ours).
fn single_step_safe(pid: i32, tid: i32) -> bool {
    let trap = signal::bit(libc::SIGTRAP);
    let Ok(st) = crate::sys::proc::status::thread(pid, tid) else { return false };
    ["SigIgn", "SigPnd", "ShdPnd"].iter().all(|k| st.hex(k).is_ok_and(|v| v & trap == 0))
}

/// A scratch area mapped in the task for syscall arguments and results.
#[derive(Clone, Copy, Debug)]
pub struct Scratch {
    pub addr: u64,
    pub len: usize,
}

/// A remote-syscall session on a stopped thread. It owns the tracee (or borrows
/// it, `Remote<&Stopped>`); dropping it unfinished puts registers and mask back.
pub struct Remote<T: Borrow<Stopped> = Stopped> {
    t: Option<T>,
    /// The process the thread belongs to, as ccr sees it (for /proc).
    proc_pid: i32,
    single_step: bool,
    syscall_ip: u64,
    saved_regs: Regs,
    saved_mask: u64,
    scratch: Option<Scratch>,
    /// The landing and the bytes its area held before the session.
    landed: Option<(Landing, Vec<u8>)>,
}

impl<T: Borrow<Stopped>> Remote<T> {
    /// Starts a session on a stopped thread of process `proc_pid` (as ccr sees
    /// it); `syscall_ip` is the address of a `syscall` instruction (0f 05) mapped
    /// executable in the task.
    pub fn start(t: T, proc_pid: i32, syscall_ip: u64) -> SysResult<Remote<T>> {
        let s: &Stopped = t.borrow();
        let saved_regs = s.regs()?;
        let saved_mask = s.sigmask()?;
        let single_step = single_step_safe(proc_pid, s.pid());
        let trap = signal::bit(libc::SIGTRAP);
        s.set_sigmask(if single_step { signal::ALL & !trap } else { signal::ALL })?;
        Ok(Remote {
            t: Some(t),
            proc_pid,
            single_step,
            syscall_ip,
            saved_regs,
            saved_mask,
            scratch: None,
            landed: None,
        })
    }

    /// Starts a dump session on a stopped thread of process `proc_pid`, on
    /// `landing`: from here to the end of `finish`, the thread puts itself back if
    /// it runs on without ccr. The order matters: frame first, then the parked
    /// registers, and only then every signal blocked.
    pub fn start_landed(t: T, proc_pid: i32, landing: &Landing) -> SysResult<Remote<T>> {
        let s: &Stopped = t.borrow();
        let saved_regs = s.regs()?;
        let saved_mask = s.sigmask()?;
        let frame =
            landing.frame_bytes(&restart_from_frame(saved_regs), saved_mask, &s.xstate()?).ok_or_else(|| {
                SysError::Task { pid: s.pid(), detail: "its xsave area does not fit the landing frame".into() }
            })?;
        let old = landing.install(s.pid(), &frame)?;
        fault::point("remote.start");
        let r = Remote {
            t: Some(t),
            proc_pid,
            single_step: false,
            syscall_ip: landing.syscall_ret,
            saved_regs,
            saved_mask,
            scratch: Some(Scratch { addr: landing.area, len: landing::SCRATCH_LEN }),
            landed: Some((*landing, old)),
        };
        r.tracee().set_regs(&landing.parked(&saved_regs))?;
        fault::point("remote.start");
        r.tracee().set_sigmask(signal::ALL)?;
        fault::point("remote.start");
        Ok(r)
    }

    pub fn tracee(&self) -> &Stopped {
        self.t.as_ref().expect("held until finish").borrow()
    }

    /// The tracee, to change its ptrace options.
    pub fn tracee_mut(&mut self) -> &mut T {
        self.t.as_mut().expect("held until finish")
    }

    /// The thread's id as ccr sees it.
    pub fn pid(&self) -> i32 {
        self.tracee().pid()
    }

    /// The process the thread belongs to, as ccr sees it.
    pub fn proc_pid(&self) -> i32 {
        self.proc_pid
    }

    /// From now on, syscall-entry and -exit stops instead of single steps. The
    /// typed calls that make SIGTRAP ignored or queue one switch first: a
    /// single-step trap would reset an ignored SIGTRAP (even the one the call
    /// itself just set), and a queued SIGTRAP would be taken for the trap.
    fn use_syscall_stops(&mut self) -> SysResult<()> {
        if self.single_step {
            self.single_step = false;
            self.tracee().set_sigmask(signal::ALL)?;
        }
        Ok(())
    }

    /// Syscall stops from the start: a dump session without a landing must not
    /// leave a trap flag behind if ccr dies.
    pub fn no_single_step(&mut self) -> SysResult<()> {
        self.use_syscall_stops()
    }

    pub fn set_scratch(&mut self, s: Option<Scratch>) {
        self.scratch = s;
    }

    pub fn scratch(&self) -> SysResult<Scratch> {
        self.scratch.ok_or(SysError::Task { pid: self.pid(), detail: "no scratch area mapped".into() })
    }

    /// Executes one syscall in the task; the raw result (-errno on failure) and
    /// what the kernel reported meanwhile.
    fn syscall_raw(&mut self, nr: i64, args: [u64; 6]) -> SysResult<(i64, StepEvents)> {
        let mut r = self.saved_regs;
        r.rax = nr as u64;
        r.orig_rax = u64::MAX;
        r.rdi = args[0];
        r.rsi = args[1];
        r.rdx = args[2];
        r.r10 = args[3];
        r.r8 = args[4];
        r.r9 = args[5];
        r.rip = self.syscall_ip;
        if let Some((l, _)) = &self.landed {
            r.rsp = l.frame();
        }
        let t = self.tracee();
        t.set_regs(&r)?;
        fault::point("remote.call");
        let ev = if self.single_step {
            t.step()?
        } else {
            let entry = t.syscall_step()?;
            fault::point("remote.call");
            let exit = t.syscall_step()?;
            fault::point("remote.call");
            StepEvents { cloned: entry.cloned.or(exit.cloned) }
        };
        Ok((t.regs()?.rax as i64, ev))
    }

    /// Executes a syscall; a -errno result becomes an error naming the call.
    fn call_ev(&mut self, call: &'static str, nr: i64, args: [u64; 6]) -> SysResult<(u64, StepEvents)> {
        let (r, ev) = self.syscall_raw(nr, args)?;
        if (-4095..0).contains(&r) {
            return Err(SysError::Remote { call, pid: self.pid(), errno: Errno::from_raw(-r as i32) });
        }
        Ok((r as u64, ev))
    }

    fn call(&mut self, call: &'static str, nr: i64, args: [u64; 6]) -> SysResult<u64> {
        self.call_ev(call, nr, args).map(|(r, _)| r)
    }

    /// Copies `data` into the scratch area at `off`; returns its address in the task.
    pub fn put(&self, off: usize, data: &[u8]) -> SysResult<u64> {
        let s = self.scratch()?;
        if off + data.len() > s.len {
            return Err(SysError::Task {
                pid: self.pid(),
                detail: format!("scratch overflow: {} bytes at {off}", data.len()),
            });
        }
        mem::write(self.pid(), s.addr + off as u64, data)?;
        Ok(s.addr + off as u64)
    }

    /// Reads `len` bytes from the scratch area at `off`.
    pub fn get(&self, off: usize, len: usize) -> SysResult<Vec<u8>> {
        let s = self.scratch()?;
        let mut buf = vec![0u8; len];
        mem::read(self.pid(), s.addr + off as u64, &mut buf)?;
        Ok(buf)
    }

    pub fn scratch_addr(&self, off: usize) -> SysResult<u64> {
        Ok(self.scratch()?.addr + off as u64)
    }

    /// Ends the session: the saved registers (or `regs`) and signal mask (or `mask`)
    /// go back; the tracee is handed back. `restart_block_usable` as for
    /// `restart_interrupted`.
    pub fn finish(mut self, regs: Option<&Regs>, mask: Option<u64>, restart_block_usable: bool) -> SysResult<T> {
        // A landed thread orphaned here would go back to what its frame holds.
        debug_assert!(self.landed.is_none() || (regs.is_none() && mask.is_none()));
        let given = *regs.unwrap_or(&self.saved_regs);
        let mask = mask.unwrap_or(self.saved_mask);
        let t = self.t.take().expect("held until finish");
        put_back(t.borrow(), &given, restart_block_usable, mask, self.landed.take())?;
        Ok(t)
    }
}

/// Puts a thread's registers and mask back. An interrupted syscall it restarts
/// goes back as the kernel left it (its number, -ERESTART*, past the `syscall`),
/// for the kernel to end or restart on the thread's way out of our stop, as it
/// would have without us: every detach from a ptrace stop makes the thread look
/// for signals first (__ptrace_unlink sets TIF_SIGPENDING), so a signal sent while
/// ccr held it gives its handler EINTR (or the restart SA_RESTART asks for), and
/// with none the call starts again. Registers that already restart it (the
/// `syscall` again, no number) would let such a signal's handler run and then
/// wait again for a wakeup that already came. On a landing the mask goes first
/// (the thread is still parked, so running on would only heal it), then the
/// registers, and the area's old bytes last, once nothing points at them.
fn put_back(
    t: &Stopped,
    given: &Regs,
    restart_block_usable: bool,
    mask: u64,
    landed: Option<(Landing, Vec<u8>)>,
) -> SysResult<()> {
    let regs = &interrupted_call(given, restart_block_usable)
        .unwrap_or_else(|| restart_interrupted(*given, restart_block_usable));
    match landed {
        Some((l, old)) => {
            t.set_sigmask(mask)?;
            fault::point("remote.finish");
            t.set_regs(regs)?;
            fault::point("remote.finish");
            l.put_back(t.pid(), &old)
        }
        None => {
            t.set_regs(regs)?;
            t.set_sigmask(mask)
        }
    }
}

impl<T: Borrow<Stopped>> Drop for Remote<T> {
    fn drop(&mut self) {
        if let Some(t) = self.t.as_ref() {
            let _ = put_back(t.borrow(), &self.saved_regs, true, self.saved_mask, self.landed.take());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs(orig: i64, ax: i64, ip: u64) -> Regs {
        Regs { orig_rax: orig as u64, rax: ax as u64, rip: ip, ..Default::default() }
    }

    #[test]
    fn restart_rules() {
        let r = restart_interrupted(regs(0, -ERESTARTSYS, 100), false);
        assert_eq!((r.rax, r.rip, r.orig_rax), (0, 98, u64::MAX));
        let r = restart_interrupted(regs(35, -ERESTART_RESTARTBLOCK, 100), true);
        assert_eq!((r.rax, r.rip), (libc::SYS_restart_syscall as u64, 98));
        let r = restart_interrupted(regs(35, -ERESTART_RESTARTBLOCK, 100), false);
        assert_eq!((r.rax as i64, r.rip), (-(libc::EINTR as i64), 100));
        // A poll in a new task starts again from its arguments.
        let r = restart_interrupted(regs(libc::SYS_poll, -ERESTART_RESTARTBLOCK, 100), false);
        assert_eq!((r.rax, r.rip), (libc::SYS_poll as u64, 98));
        let r = restart_from_frame(regs(35, -ERESTART_RESTARTBLOCK, 100));
        assert_eq!((r.rax, r.rip, r.orig_rax), (35, 98, u64::MAX));
        let r = restart_from_frame(regs(0, -ERESTARTSYS, 100));
        assert_eq!((r.rax, r.rip), (0, 98));
        let r = restart_interrupted(regs(-1, -ERESTARTSYS, 100), false);
        assert_eq!((r.rax as i64, r.rip), (-ERESTARTSYS, 100));
        let r = restart_interrupted(regs(1, 5, 100), false);
        assert_eq!((r.rax, r.rip), (5, 100));
    }

    /// What goes back for the kernel to end or restart itself: the call as it was
    /// interrupted, a poll of a new task as one a handler ends with EINTR.
    #[test]
    fn interrupted_calls_go_back_as_the_kernel_left_them() {
        let r = regs(libc::SYS_pause, -ERESTARTNOHAND, 100);
        assert_eq!(interrupted_call(&r, false).map(|c| (c.orig_rax, c.rax, c.rip)), Some((r.orig_rax, r.rax, 100)));
        let poll = interrupted_call(&regs(libc::SYS_poll, -ERESTART_RESTARTBLOCK, 100), false).unwrap();
        assert_eq!((poll.rax as i64, poll.rip), (-ERESTARTNOHAND, 100));
        assert!(interrupted_call(&regs(35, -ERESTART_RESTARTBLOCK, 100), false).is_none());
        assert!(interrupted_call(&regs(35, -ERESTART_RESTARTBLOCK, 100), true).is_some());
        assert!(interrupted_call(&regs(1, 5, 100), true).is_none());
        assert!(interrupted_call(&regs(-1, -ERESTARTSYS, 100), true).is_none());
    }

    #[test]
    fn an_untimed_wait_broken_off_by_the_stop_waits_again() {
        let wait = libc::SYS_rt_sigtimedwait;
        let eintr = -(libc::EINTR as i64);
        let r = restart_interrupted(rewait_interrupted(regs(wait, eintr, 100), false), false);
        assert_eq!((r.rax, r.rip, r.orig_rax), (wait as u64, 98, u64::MAX));
        // A signal to take broke it off: it returns -EINTR, as it did.
        let r = restart_interrupted(rewait_interrupted(regs(wait, eintr, 100), true), false);
        assert_eq!((r.rax as i64, r.rip), (eintr, 100));
        // With a timeout, or another call, or another result: as it was.
        let timed = Regs { rdx: 0x7000, ..regs(wait, eintr, 100) };
        assert_eq!(rewait_interrupted(timed, false).rax as i64, eintr);
        assert_eq!(rewait_interrupted(regs(libc::SYS_read, eintr, 100), false).rax as i64, eintr);
        assert_eq!(rewait_interrupted(regs(wait, 17, 100), false).rax, 17);
        // epoll_wait with no timeout (-1 in r10) waits again, with one keeps it.
        let untimed = Regs { r10: u32::MAX as u64, ..regs(libc::SYS_epoll_wait, eintr, 100) };
        let r = restart_interrupted(rewait_interrupted(untimed, false), false);
        assert_eq!((r.rax, r.rip), (libc::SYS_epoll_wait as u64, 98));
        let timed = Regs { r10: 1000, ..untimed };
        assert_eq!(rewait_interrupted(timed, false).rax as i64, eintr);
        // epoll_pwait with a signal mask of its own keeps its EINTR.
        let masked = Regs { r10: u32::MAX as u64, r8: 0x7000, ..regs(libc::SYS_epoll_pwait, eintr, 100) };
        assert_eq!(rewait_interrupted(masked, false).rax as i64, eintr);
    }
}
