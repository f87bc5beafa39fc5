//! ptrace as a type: a `Tracee` is a task we seized and that is stopped. Registers,
//! signal state and remote execution exist only on it; `detach(self)` consumes it,
//! and dropping it detaches too (so an error path never leaves a task traced).
//!
//! Only the thread that seized a task may issue requests for it (others get ESRCH);
//! the engine is single-threaded, and the helper process owns its tracees.

use std::mem::MaybeUninit;

use crate::sys::kernel::{self, user_regs_struct};
use crate::sys::{Errno, SysError, SysResult};

pub type Regs = user_regs_struct;

/// Size of a raw siginfo_t.
pub const SIGINFO_SIZE: usize = 128;

/// How the task was found when it stopped for us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopKind {
    /// PTRACE_INTERRUPT stop: the task was running (or sleeping in a syscall).
    Interrupted,
    /// The task was in a job-control stop (SIGSTOP/SIGTSTP) with this signal.
    GroupStop(i32),
}

#[derive(Debug)]
pub struct Tracee {
    pid: i32,
    stop: StopKind,
    detached: bool,
}

fn ptrace_raw(req: u32, pid: i32, addr: usize, data: usize) -> Result<i64, Errno> {
    // SAFETY: ptrace with integer or caller-checked pointer arguments; every call
    // site passes `addr`/`data` pointing to live buffers of the size the request uses.
    let r = unsafe { libc::ptrace(req as libc::c_uint, pid, addr as *mut libc::c_void, data as *mut libc::c_void) };
    if r == -1 {
        let e = Errno::last();
        if e != Errno::UnknownErrno && e as i32 != 0 {
            return Err(e);
        }
    }
    Ok(r)
}

/// Waits for a state change of `pid` (any child or tracee), returning the raw status.
pub fn wait_raw(pid: i32) -> Result<i32, Errno> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r == -1 {
            let e = Errno::last();
            if e == Errno::EINTR {
                continue;
            }
            return Err(e);
        }
        return Ok(status);
    }
}

impl Tracee {
    /// PTRACE_SEIZE + PTRACE_INTERRUPT, then waits for the task to stop for us.
    /// With `exit_kill` the task dies if ccr does (used for tasks being restored).
    pub fn seize(pid: i32, exit_kill: bool) -> SysResult<Tracee> {
        let mut t = Tracee::attach(pid, exit_kill)?;
        t.wait_stopped()?;
        Ok(t)
    }

    /// PTRACE_SEIZE + PTRACE_INTERRUPT without waiting: a frozen task stops for us
    /// only once its cgroup thaws. Call `wait_stopped` before anything else.
    pub fn attach(pid: i32, exit_kill: bool) -> SysResult<Tracee> {
        let mut opts = kernel::PTRACE_O_TRACESYSGOOD;
        if exit_kill {
            opts |= kernel::PTRACE_O_EXITKILL;
        }
        ptrace_raw(kernel::PTRACE_SEIZE, pid, 0, opts as usize).map_err(|errno| SysError::Pid {
            call: "PTRACE_SEIZE",
            pid,
            errno,
        })?;
        let t = Tracee { pid, stop: StopKind::Interrupted, detached: false };
        ptrace_raw(kernel::PTRACE_INTERRUPT, pid, 0, 0).map_err(|errno| SysError::Pid {
            call: "PTRACE_INTERRUPT",
            pid,
            errno,
        })?;
        Ok(t)
    }

    /// Waits for the stop an `attach` asked for.
    pub fn wait_stopped(&mut self) -> SysResult<()> {
        self.stop = self.wait_interrupt_stop()?;
        Ok(())
    }

    /// A thread the kernel attached to us (PTRACE_O_TRACECLONE) once it reports its
    /// first stop.
    pub fn adopt_new_thread(tid: i32) -> SysResult<Tracee> {
        let mut t = Tracee { pid: tid, stop: StopKind::Interrupted, detached: false };
        t.wait_stopped()?;
        Ok(t)
    }

    pub fn set_options(&self, opts: u32) -> SysResult<()> {
        ptrace_raw(kernel::PTRACE_SETOPTIONS, self.pid, 0, opts as usize).map_err(self.err("PTRACE_SETOPTIONS"))?;
        Ok(())
    }

    /// Waits for the PTRACE_EVENT_STOP after an interrupt. A signal that arrives first
    /// is delivered (as it would have been a moment before the dump).
    fn wait_interrupt_stop(&mut self) -> SysResult<StopKind> {
        let pid = self.pid;
        loop {
            let status = wait_raw(pid).map_err(|errno| SysError::Pid { call: "waitpid", pid, errno })?;
            if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
                self.detached = true;
                return Err(SysError::Task { pid, detail: "exited while being seized".into() });
            }
            if !libc::WIFSTOPPED(status) {
                continue;
            }
            let sig = libc::WSTOPSIG(status);
            let event = (status >> 16) as u32;
            if event == kernel::PTRACE_EVENT_STOP {
                return Ok(match sig {
                    libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU => StopKind::GroupStop(sig),
                    _ => StopKind::Interrupted,
                });
            }
            // A signal-delivery-stop: let the signal go through; the interrupt stays pending.
            ptrace_raw(kernel::PTRACE_CONT, pid, 0, sig as usize).map_err(|errno| SysError::Pid {
                call: "PTRACE_CONT",
                pid,
                errno,
            })?;
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn stop_kind(&self) -> StopKind {
        self.stop
    }

    fn err(&self, call: &'static str) -> impl FnOnce(Errno) -> SysError {
        let pid = self.pid;
        move |errno| SysError::Pid { call, pid, errno }
    }

    pub fn regs(&self) -> SysResult<Regs> {
        let mut r = MaybeUninit::<Regs>::zeroed();
        ptrace_raw(kernel::PTRACE_GETREGS, self.pid, 0, r.as_mut_ptr() as usize).map_err(self.err("PTRACE_GETREGS"))?;
        // SAFETY: the kernel filled the whole struct (and it was zeroed before).
        Ok(unsafe { r.assume_init() })
    }

    pub fn set_regs(&self, r: &Regs) -> SysResult<()> {
        ptrace_raw(kernel::PTRACE_SETREGS, self.pid, 0, r as *const Regs as usize)
            .map_err(self.err("PTRACE_SETREGS"))?;
        Ok(())
    }

    /// The XSAVE area (x87, SSE, AVX, PKRU, ...) at the size the CPU reports.
    pub fn xstate(&self) -> SysResult<Vec<u8>> {
        let mut buf = vec![0u8; 16384];
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        ptrace_raw(kernel::PTRACE_GETREGSET, self.pid, kernel::NT_X86_XSTATE as usize, &mut iov as *mut _ as usize)
            .map_err(self.err("PTRACE_GETREGSET(NT_X86_XSTATE)"))?;
        buf.truncate(iov.iov_len);
        Ok(buf)
    }

    pub fn set_xstate(&self, xs: &[u8]) -> SysResult<()> {
        let mut copy = xs.to_vec();
        let mut iov = libc::iovec { iov_base: copy.as_mut_ptr().cast(), iov_len: copy.len() };
        ptrace_raw(kernel::PTRACE_SETREGSET, self.pid, kernel::NT_X86_XSTATE as usize, &mut iov as *mut _ as usize)
            .map_err(self.err("PTRACE_SETREGSET(NT_X86_XSTATE)"))?;
        Ok(())
    }

    pub fn sigmask(&self) -> SysResult<u64> {
        let mut m: u64 = 0;
        ptrace_raw(kernel::PTRACE_GETSIGMASK, self.pid, 8, &mut m as *mut u64 as usize)
            .map_err(self.err("PTRACE_GETSIGMASK"))?;
        Ok(m)
    }

    pub fn set_sigmask(&self, m: u64) -> SysResult<()> {
        ptrace_raw(kernel::PTRACE_SETSIGMASK, self.pid, 8, &m as *const u64 as usize)
            .map_err(self.err("PTRACE_SETSIGMASK"))?;
        Ok(())
    }

    /// Queued signals without dequeuing them: the thread's own, or (`shared`) the process's.
    pub fn pending_siginfo(&self, shared: bool) -> SysResult<Vec<[u8; SIGINFO_SIZE]>> {
        let mut out = Vec::new();
        loop {
            let mut buf = [[0u8; SIGINFO_SIZE]; 32];
            let args = kernel::ptrace_peeksiginfo_args {
                off: out.len() as u64,
                flags: if shared { kernel::PTRACE_PEEKSIGINFO_SHARED } else { 0 },
                nr: buf.len() as i32,
            };
            let n =
                ptrace_raw(kernel::PTRACE_PEEKSIGINFO, self.pid, &args as *const _ as usize, buf.as_mut_ptr() as usize)
                    .map_err(self.err("PTRACE_PEEKSIGINFO"))?;
            if n <= 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
    }

    /// The task's rseq registration, if any.
    pub fn rseq(&self) -> SysResult<Option<kernel::ptrace_rseq_configuration>> {
        let mut c = kernel::ptrace_rseq_configuration::default();
        ptrace_raw(
            kernel::PTRACE_GET_RSEQ_CONFIGURATION,
            self.pid,
            std::mem::size_of_val(&c),
            &mut c as *mut _ as usize,
        )
        .map_err(self.err("PTRACE_GET_RSEQ_CONFIGURATION"))?;
        Ok((c.rseq_abi_pointer != 0).then_some(c))
    }

    /// Resumes until the next syscall entry or exit stop (PTRACE_SYSCALL).
    /// Other stops are errors: the caller blocks signals around remote calls.
    pub(crate) fn syscall_step(&self) -> SysResult<()> {
        // A task seized in a job-control stop re-reports that stop (PTRACE_EVENT_STOP)
        // the first time it is resumed; resume it again.
        for _ in 0..8 {
            ptrace_raw(kernel::PTRACE_SYSCALL, self.pid, 0, 0).map_err(self.err("PTRACE_SYSCALL"))?;
            let status = wait_raw(self.pid).map_err(self.err("waitpid"))?;
            if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
                return Err(SysError::Task {
                    pid: self.pid,
                    detail: format!("died during a remote syscall (status {status:#x})"),
                });
            }
            if libc::WIFSTOPPED(status) && libc::WSTOPSIG(status) == (libc::SIGTRAP | 0x80) {
                return Ok(());
            }
            let event = (status >> 16) as u32;
            if libc::WIFSTOPPED(status) && event == kernel::PTRACE_EVENT_CLONE {
                continue;
            }
            if !(libc::WIFSTOPPED(status) && event == kernel::PTRACE_EVENT_STOP) {
                return Err(SysError::Task {
                    pid: self.pid,
                    detail: format!("unexpected stop during a remote syscall (status {status:#x})"),
                });
            }
        }
        Err(SysError::Task { pid: self.pid, detail: "keeps stopping instead of running a remote syscall".into() })
    }

    /// Resumes for exactly one instruction (the `syscall` we pointed it at) and waits
    /// for the trap after it (PTRACE_SINGLESTEP): one stop instead of two. The trap
    /// is a SIGTRAP the next resume discards; see `Remote` for when this is safe.
    pub(crate) fn step(&self) -> SysResult<()> {
        for _ in 0..8 {
            ptrace_raw(kernel::PTRACE_SINGLESTEP, self.pid, 0, 0).map_err(self.err("PTRACE_SINGLESTEP"))?;
            let status = wait_raw(self.pid).map_err(self.err("waitpid"))?;
            if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
                return Err(SysError::Task {
                    pid: self.pid,
                    detail: format!("died during a remote syscall (status {status:#x})"),
                });
            }
            let event = (status >> 16) as u32;
            if libc::WIFSTOPPED(status) && libc::WSTOPSIG(status) == libc::SIGTRAP && event == 0 {
                return Ok(());
            }
            if !(libc::WIFSTOPPED(status)
                && (event == kernel::PTRACE_EVENT_STOP || event == kernel::PTRACE_EVENT_CLONE))
            {
                return Err(SysError::Task {
                    pid: self.pid,
                    detail: format!("unexpected stop during a remote syscall (status {status:#x})"),
                });
            }
        }
        Err(SysError::Task { pid: self.pid, detail: "keeps stopping instead of running a remote syscall".into() })
    }

    /// Detaches, letting the task run on (the kernel resumes it from our stop).
    pub fn detach(mut self) -> SysResult<()> {
        self.detached = true;
        ptrace_raw(kernel::PTRACE_DETACH, self.pid, 0, 0).map_err(self.err("PTRACE_DETACH"))?;
        Ok(())
    }

    /// Detaches and leaves the task in a job-control stop (`sig`: SIGSTOP, SIGTSTP, ...),
    /// as it was when we seized it.
    pub fn detach_stopped(mut self, sig: i32) -> SysResult<()> {
        self.detached = true;
        ptrace_raw(kernel::PTRACE_DETACH, self.pid, 0, sig as usize).map_err(self.err("PTRACE_DETACH"))?;
        Ok(())
    }

    /// Lets go of the task the way it was found: running, or in its job-control stop.
    pub fn release(self) -> SysResult<()> {
        match self.stop {
            StopKind::Interrupted => self.detach(),
            StopKind::GroupStop(sig) => self.detach_stopped(sig),
        }
    }

    /// Kills the task and waits until it is gone.
    pub fn kill(mut self) -> SysResult<()> {
        self.detached = true;
        // SAFETY: kill with integer arguments.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        loop {
            match wait_raw(self.pid) {
                Ok(st) if libc::WIFEXITED(st) || libc::WIFSIGNALED(st) => return Ok(()),
                Ok(_) => continue,
                Err(Errno::ECHILD) => return Ok(()),
                Err(errno) => return Err(SysError::Pid { call: "waitpid", pid: self.pid, errno }),
            }
        }
    }
}

impl Drop for Tracee {
    fn drop(&mut self) {
        if !self.detached {
            let sig = match self.stop {
                StopKind::Interrupted => 0,
                StopKind::GroupStop(sig) => sig,
            };
            let _ = ptrace_raw(kernel::PTRACE_DETACH, self.pid, 0, sig as usize);
        }
    }
}
