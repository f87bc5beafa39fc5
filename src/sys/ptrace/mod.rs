//! ptrace as type-state. A [`Seized`] task is attached with an interrupt pending
//! but may still be running (a frozen task stops only once its cgroup thaws);
//! [`Stopped`] is a task that has stopped for us, and only it has registers,
//! signal state and remote execution. Consuming calls (`wait_stop`, `detach`,
//! `kill`) move a task from one state to the next, and dropping a `Stopped`
//! detaches it (so an error path never leaves a task traced, stopped or changed).
//!
//! ESRCH from a request on a stopped task means it died (SIGKILL from elsewhere):
//! it becomes [`SysError::Died`]. Only the thread that seized a task may issue
//! requests for it (others get ESRCH too); the engine drives tracees from one thread.

use std::mem::MaybeUninit;

use crate::sys::kernel::{self, user_regs_struct};
use crate::sys::wait::{self, Status};
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

/// What resuming a stopped task for one remote syscall observed.
#[derive(Debug, Default)]
pub struct StepEvents {
    /// A thread the syscall cloned (PTRACE_EVENT_CLONE), attached and stopped.
    pub cloned: Option<Stopped>,
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

/// A task attached with PTRACE_SEIZE and sent PTRACE_INTERRUPT, not yet stopped.
#[derive(Debug)]
pub struct Seized {
    pid: i32,
    opts: u32,
    done: bool,
}

impl Seized {
    /// PTRACE_SEIZE + PTRACE_INTERRUPT. With `exit_kill` the task dies if ccr does
    /// (tasks being restored).
    pub fn attach(pid: i32, exit_kill: bool) -> SysResult<Seized> {
        let mut opts = kernel::PTRACE_O_TRACESYSGOOD;
        if exit_kill {
            opts |= kernel::PTRACE_O_EXITKILL;
        }
        // The calls ccr makes in a task must not meet its seccomp filters (or
        // strict mode), nor a filter restored early. Needs CAP_SYS_ADMIN in the
        // initial user namespace: without it, seized as before.
        let suspend = opts | kernel::PTRACE_O_SUSPEND_SECCOMP;
        let opts = match ptrace_raw(kernel::PTRACE_SEIZE, pid, 0, suspend as usize) {
            Ok(_) => suspend,
            // EPERM: no CAP_SYS_ADMIN; EINVAL: a kernel without the option.
            Err(Errno::EPERM | Errno::EINVAL) => {
                ptrace_raw(kernel::PTRACE_SEIZE, pid, 0, opts as usize).map_err(|errno| SysError::Pid {
                    call: "PTRACE_SEIZE",
                    pid,
                    errno,
                })?;
                opts
            }
            Err(errno) => return Err(SysError::Pid { call: "PTRACE_SEIZE", pid, errno }),
        };
        let s = Seized { pid, opts, done: false };
        ptrace_raw(kernel::PTRACE_INTERRUPT, pid, 0, 0).map_err(|errno| SysError::Pid {
            call: "PTRACE_INTERRUPT",
            pid,
            errno,
        })?;
        Ok(s)
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Waits for the stop the interrupt asked for. A signal that arrives first is
    /// delivered (as it would have been a moment before the dump).
    pub fn wait_stop(self) -> SysResult<Stopped> {
        self.wait_stop_until(None).map(|s| s.expect("no deadline"))
    }

    /// As `wait_stop`, giving up at `deadline` (None then: the task stays seized,
    /// and the kernel detaches it when ccr exits).
    pub fn wait_stop_until(mut self, deadline: Option<std::time::Instant>) -> SysResult<Option<Stopped>> {
        match wait_interrupt_stop(self.pid, deadline) {
            Ok(Some(stop)) => {
                self.done = true;
                Ok(Some(Stopped { pid: self.pid, stop, opts: self.opts, held: true, kill_on_drop: false }))
            }
            Ok(None) => Ok(None),
            // Gone: nothing to detach.
            Err(e @ SysError::Died { .. }) => {
                self.done = true;
                Err(e)
            }
            // Still ours (a failed PTRACE_CONT or waitpid): the drop detaches it.
            Err(e) => Err(e),
        }
    }
}

impl Drop for Seized {
    fn drop(&mut self) {
        if !self.done {
            // Only a stopped tracee can be detached; a task that has not stopped yet
            // is detached by the kernel when ccr exits.
            let _ = ptrace_raw(kernel::PTRACE_DETACH, self.pid, 0, 0);
        }
    }
}

/// Waits for the PTRACE_EVENT_STOP an interrupt asked for (until `deadline`).
fn wait_interrupt_stop(pid: i32, deadline: Option<std::time::Instant>) -> SysResult<Option<StopKind>> {
    let err = |errno| SysError::Pid { call: "waitpid", pid, errno };
    loop {
        let st = match deadline {
            None => wait::wait(pid).map_err(err)?,
            Some(d) => match wait::try_wait(pid).map_err(err)? {
                Some(st) => st,
                None if std::time::Instant::now() >= d => return Ok(None),
                None => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    continue;
                }
            },
        };
        match st {
            Status::Exited(_) | Status::Signaled(_) => {
                return Err(SysError::Died { pid, during: "being seized".into() });
            }
            Status::Stopped { sig, event } if event == kernel::PTRACE_EVENT_STOP => {
                return Ok(Some(match sig {
                    libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU => StopKind::GroupStop(sig),
                    _ => StopKind::Interrupted,
                }));
            }
            // A signal-delivery-stop: let the signal go through; the interrupt stays pending.
            Status::Stopped { sig, .. } => {
                ptrace_raw(kernel::PTRACE_CONT, pid, 0, sig as usize).map_err(|errno| SysError::Pid {
                    call: "PTRACE_CONT",
                    pid,
                    errno,
                })?;
            }
            Status::Continued => {}
        }
    }
}

/// A task stopped for us.
#[derive(Debug)]
pub struct Stopped {
    pid: i32,
    stop: StopKind,
    /// The ptrace options in force (a cloned thread inherits them).
    opts: u32,
    /// Still traced by us (false once detached or dead).
    held: bool,
    /// Dropping it kills the task instead of letting it run (tasks being restored:
    /// half-restored code must never run).
    kill_on_drop: bool,
}

impl Stopped {
    /// Seizes `pid` and waits for it to stop.
    pub fn seize(pid: i32, exit_kill: bool) -> SysResult<Stopped> {
        Seized::attach(pid, exit_kill)?.wait_stop()
    }

    /// A thread the kernel attached to us (PTRACE_O_TRACECLONE), once it reports
    /// its first stop.
    fn adopt_clone(tid: i32, opts: u32) -> SysResult<Stopped> {
        let stop = wait_interrupt_stop(tid, None)?.expect("no deadline");
        Ok(Stopped { pid: tid, stop, opts, held: true, kill_on_drop: false })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// From now on, dropping it (instead of `detach`) kills the task.
    pub fn kill_on_drop(mut self) -> Stopped {
        self.kill_on_drop = true;
        self
    }

    pub fn stop_kind(&self) -> StopKind {
        self.stop
    }

    fn err(&self, call: &'static str) -> impl FnOnce(Errno) -> SysError {
        let pid = self.pid;
        move |errno| match errno {
            Errno::ESRCH => SysError::Died { pid, during: call.into() },
            errno => SysError::Pid { call, pid, errno },
        }
    }

    fn request(&self, call: &'static str, req: u32, addr: usize, data: usize) -> SysResult<i64> {
        ptrace_raw(req, self.pid, addr, data).map_err(self.err(call))
    }

    pub fn regs(&self) -> SysResult<Regs> {
        let mut r = MaybeUninit::<Regs>::zeroed();
        self.request("PTRACE_GETREGS", kernel::PTRACE_GETREGS, 0, r.as_mut_ptr() as usize)?;
        // SAFETY: the kernel filled the whole struct (and it was zeroed before).
        Ok(unsafe { r.assume_init() })
    }

    pub fn set_regs(&self, r: &Regs) -> SysResult<()> {
        self.request("PTRACE_SETREGS", kernel::PTRACE_SETREGS, 0, r as *const Regs as usize).map(drop)
    }

    /// The XSAVE area (x87, SSE, AVX, PKRU, ...) at the size the CPU reports.
    pub fn xstate(&self) -> SysResult<Vec<u8>> {
        let mut buf = vec![0u8; 16384];
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        self.request(
            "PTRACE_GETREGSET(NT_X86_XSTATE)",
            kernel::PTRACE_GETREGSET,
            kernel::NT_X86_XSTATE as usize,
            &mut iov as *mut _ as usize,
        )?;
        buf.truncate(iov.iov_len);
        Ok(buf)
    }

    pub fn set_xstate(&self, xs: &[u8]) -> SysResult<()> {
        let mut copy = xs.to_vec();
        let mut iov = libc::iovec { iov_base: copy.as_mut_ptr().cast(), iov_len: copy.len() };
        self.request(
            "PTRACE_SETREGSET(NT_X86_XSTATE)",
            kernel::PTRACE_SETREGSET,
            kernel::NT_X86_XSTATE as usize,
            &mut iov as *mut _ as usize,
        )
        .map(drop)
    }

    pub fn sigmask(&self) -> SysResult<u64> {
        let mut m: u64 = 0;
        self.request("PTRACE_GETSIGMASK", kernel::PTRACE_GETSIGMASK, 8, &mut m as *mut u64 as usize)?;
        Ok(m)
    }

    pub fn set_sigmask(&self, m: u64) -> SysResult<()> {
        self.request("PTRACE_SETSIGMASK", kernel::PTRACE_SETSIGMASK, 8, &m as *const u64 as usize).map(drop)
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
            let n = self.request(
                "PTRACE_PEEKSIGINFO",
                kernel::PTRACE_PEEKSIGINFO,
                &args as *const _ as usize,
                buf.as_mut_ptr() as usize,
            )?;
            if n <= 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
    }

    /// The task's rseq registration, if any.
    pub fn rseq(&self) -> SysResult<Option<kernel::ptrace_rseq_configuration>> {
        let mut c = kernel::ptrace_rseq_configuration::default();
        self.request(
            "PTRACE_GET_RSEQ_CONFIGURATION",
            kernel::PTRACE_GET_RSEQ_CONFIGURATION,
            std::mem::size_of_val(&c),
            &mut c as *mut _ as usize,
        )?;
        Ok((c.rseq_abi_pointer != 0).then_some(c))
    }

    /// Whether the calls ccr makes in the task pass its seccomp filters by.
    pub fn seccomp_suspended(&self) -> bool {
        self.opts & kernel::PTRACE_O_SUSPEND_SECCOMP != 0
    }

    /// The thread's seccomp filter `index` (0: the one installed last) as raw
    /// sock_filter instructions and its flags (SECCOMP_FILTER_FLAG_LOG); None
    /// past the first one, or when the thread has none (not in filter mode).
    pub fn seccomp_filter(&self, index: u32) -> SysResult<Option<(Vec<u8>, u64)>> {
        let req = kernel::PTRACE_SECCOMP_GET_FILTER;
        let n = match ptrace_raw(req, self.pid, index as usize, 0) {
            Ok(n) => n as usize,
            Err(Errno::ENOENT | Errno::EINVAL) => return Ok(None),
            Err(e) => return Err(self.err("PTRACE_SECCOMP_GET_FILTER")(e)),
        };
        let insn = std::mem::size_of::<kernel::sock_filter>();
        let mut prog = vec![0u8; n * insn];
        self.request("PTRACE_SECCOMP_GET_FILTER", req, index as usize, prog.as_mut_ptr() as usize)?;
        let mut meta = kernel::seccomp_metadata { filter_off: index as u64, flags: 0 };
        self.request(
            "PTRACE_SECCOMP_GET_METADATA",
            kernel::PTRACE_SECCOMP_GET_METADATA,
            std::mem::size_of_val(&meta),
            &mut meta as *mut _ as usize,
        )?;
        Ok(Some((prog, meta.flags)))
    }

    /// Reports threads the task clones (PTRACE_O_TRACECLONE) while `on`.
    pub fn trace_clones(&mut self, on: bool) -> SysResult<()> {
        let opts = if on { self.opts | kernel::PTRACE_O_TRACECLONE } else { self.opts & !kernel::PTRACE_O_TRACECLONE };
        self.request("PTRACE_SETOPTIONS", kernel::PTRACE_SETOPTIONS, 0, opts as usize)?;
        self.opts = opts;
        Ok(())
    }

    /// The thread a PTRACE_EVENT_CLONE stop reports, attached and stopped.
    fn cloned_thread(&self) -> SysResult<Stopped> {
        let mut tid: libc::c_ulong = 0;
        self.request("PTRACE_GETEVENTMSG", kernel::PTRACE_GETEVENTMSG, 0, &mut tid as *mut _ as usize)?;
        let t = Stopped::adopt_clone(tid as i32, self.opts & !kernel::PTRACE_O_TRACECLONE)?;
        Ok(if self.kill_on_drop { t.kill_on_drop() } else { t })
    }

    /// Resumes with `req` (PTRACE_SYSCALL or PTRACE_SINGLESTEP) until `done` accepts
    /// a stop. A task seized in a job-control stop re-reports that stop
    /// (PTRACE_EVENT_STOP) the first time it is resumed, and a clone event stops it
    /// in the middle of clone3: both are resumed again.
    fn resume_until(&self, call: &'static str, req: u32, done: impl Fn(Status) -> bool) -> SysResult<StepEvents> {
        let mut ev = StepEvents::default();
        for _ in 0..8 {
            self.request(call, req, 0, 0)?;
            let st = wait::wait(self.pid).map_err(self.err("waitpid"))?;
            match st {
                _ if done(st) => return Ok(ev),
                Status::Exited(_) | Status::Signaled(_) => {
                    return Err(SysError::Died { pid: self.pid, during: format!("a remote syscall ({st:?})") })
                }
                Status::Stopped { event, .. } if event == kernel::PTRACE_EVENT_CLONE => {
                    ev.cloned = Some(self.cloned_thread()?);
                }
                Status::Stopped { event, .. } if event == kernel::PTRACE_EVENT_STOP => {}
                other => return Err(self.unexpected(other)),
            }
        }
        Err(SysError::Task { pid: self.pid, detail: "keeps stopping instead of running a remote syscall".into() })
    }

    /// Resumes to the next syscall entry or exit stop (PTRACE_SYSCALL). Other stops
    /// are errors: the caller blocks signals around remote calls.
    pub(crate) fn syscall_step(&self) -> SysResult<StepEvents> {
        let sysgood = libc::SIGTRAP | 0x80;
        self.resume_until(
            "PTRACE_SYSCALL",
            kernel::PTRACE_SYSCALL,
            |st| matches!(st, Status::Stopped { sig, .. } if sig == sysgood),
        )
    }

    /// Resumes for exactly one instruction (the `syscall` we pointed it at) and waits
    /// for the trap after it (PTRACE_SINGLESTEP): one stop instead of two. The trap
    /// is a SIGTRAP the next resume discards; see `remote` for when this is safe.
    pub(crate) fn step(&self) -> SysResult<StepEvents> {
        self.resume_until("PTRACE_SINGLESTEP", kernel::PTRACE_SINGLESTEP, |st| {
            st == Status::Stopped { sig: libc::SIGTRAP, event: 0 }
        })
    }

    fn unexpected(&self, st: Status) -> SysError {
        SysError::Task { pid: self.pid, detail: format!("unexpected stop during a remote syscall ({st:?})") }
    }

    fn detach_with(mut self, sig: i32) -> SysResult<()> {
        self.held = false;
        ptrace_raw(kernel::PTRACE_DETACH, self.pid, 0, sig as usize).map_err(self.err("PTRACE_DETACH"))?;
        Ok(())
    }

    /// Detaches, letting the task run on (the kernel resumes it from our stop).
    pub fn detach(self) -> SysResult<()> {
        self.detach_with(0)
    }

    /// Detaches and leaves the task in a job-control stop (`sig`: SIGSTOP, SIGTSTP, ...).
    pub fn detach_stopped(self, sig: i32) -> SysResult<()> {
        self.detach_with(sig)
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
        self.held = false;
        let _ = crate::sys::process::kill(self.pid, libc::SIGKILL);
        crate::sys::wait::reap(self.pid).map(drop)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if self.held && self.kill_on_drop {
            let _ = crate::sys::process::kill(self.pid, libc::SIGKILL);
        }
        if self.held {
            let sig = match self.stop {
                StopKind::Interrupted => 0,
                StopKind::GroupStop(sig) => sig,
            };
            let _ = ptrace_raw(kernel::PTRACE_DETACH, self.pid, 0, sig as usize);
        }
    }
}
