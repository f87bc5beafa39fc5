//! The typed remote calls: one method per syscall (or prctl option) the engine
//! runs in a task. Arguments that live in memory go through the session's scratch
//! area; kernel structs come from `sys::kernel` (bindgen).

use std::borrow::Borrow;

use super::{Remote, Scratch};
use crate::sys::kernel;
use crate::sys::ptrace::Stopped;
use crate::sys::signal::{self, AltStack, ITimerSpec, ITimerVal, SigAction, SigEvent, SIGSET_SIZE};
use crate::sys::{bytes_of, from_bytes, SysError, SysResult};

/// Which interval timer (getitimer/setitimer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItimerWhich {
    Real = libc::ITIMER_REAL as isize,
    Virtual = libc::ITIMER_VIRTUAL as isize,
    Prof = libc::ITIMER_PROF as isize,
}

impl ItimerWhich {
    pub const ALL: [ItimerWhich; 3] = [ItimerWhich::Real, ItimerWhich::Virtual, ItimerWhich::Prof];

    pub fn from_raw(v: u32) -> Option<ItimerWhich> {
        Self::ALL.into_iter().find(|w| *w as u32 == v)
    }
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

fn cstring(s: &str) -> Vec<u8> {
    let mut b = s.as_bytes().to_vec();
    b.push(0);
    b
}

/// SIG_IGN as a handler address.
const SIG_IGN: u64 = 1;

/// The size of one iovec (address, length).
const IOVEC_SIZE: usize = 16;

impl<T: Borrow<Stopped>> Remote<T> {
    fn prctl(&mut self, name: &'static str, op: u32, args: [u64; 4]) -> SysResult<u64> {
        self.call(name, libc::SYS_prctl, [op as u64, args[0], args[1], args[2], args[3], 0])
    }

    /// prctl(op, &out): a 4- or 8-byte value the kernel writes into scratch.
    fn prctl_get(&mut self, name: &'static str, op: u32, len: usize) -> SysResult<Vec<u8>> {
        let s = self.scratch_addr(0)?;
        self.prctl(name, op, [s, 0, 0, 0])?;
        self.get(0, len)
    }

    // --- memory -----------------------------------------------------------------

    /// mmap(2). `fd` is a number in the task's fd table (None: anonymous).
    pub fn mmap(&mut self, addr: u64, len: u64, prot: i32, flags: i32, fd: Option<i32>, off: u64) -> SysResult<u64> {
        let fd = fd.map_or(u64::MAX, |f| f as u64);
        self.call("mmap", libc::SYS_mmap, [addr, len, prot as u64, flags as u64, fd, off])
    }

    /// A page of anonymous shared memory for arguments and results.
    pub fn map_scratch(&mut self) -> SysResult<Scratch> {
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let addr = self.mmap(0, 4096, prot, libc::MAP_SHARED | libc::MAP_ANONYMOUS, None, 0)?;
        Ok(Scratch { addr, len: 4096 })
    }

    pub fn munmap(&mut self, addr: u64, len: u64) -> SysResult<()> {
        self.call("munmap", libc::SYS_munmap, [addr, len, 0, 0, 0, 0]).map(drop)
    }

    pub fn mprotect(&mut self, addr: u64, len: u64, prot: i32) -> SysResult<()> {
        self.call("mprotect", libc::SYS_mprotect, [addr, len, prot as u64, 0, 0, 0]).map(drop)
    }

    pub fn madvise(&mut self, addr: u64, len: u64, advice: i32) -> SysResult<()> {
        self.call("madvise", libc::SYS_madvise, [addr, len, advice as u64, 0, 0, 0]).map(drop)
    }

    /// Faults a range in, writable, with one call (MADV_POPULATE_WRITE).
    pub fn populate_write(&mut self, addr: u64, len: u64) -> SysResult<()> {
        let advice = libc::MADV_POPULATE_WRITE as u64;
        self.call("madvise(MADV_POPULATE_WRITE)", libc::SYS_madvise, [addr, len, advice, 0, 0, 0]).map(drop)
    }

    pub fn mlock(&mut self, addr: u64, len: u64) -> SysResult<()> {
        self.call("mlock", libc::SYS_mlock, [addr, len, 0, 0, 0, 0]).map(drop)
    }

    /// The current program break (brk(0)).
    pub fn brk_current(&mut self) -> SysResult<u64> {
        self.call("brk", libc::SYS_brk, [0; 6])
    }

    /// shmat(2) of SysV segment `id` at `addr`; returns where it landed.
    pub fn shmat(&mut self, id: i32, addr: u64, flags: i32) -> SysResult<u64> {
        self.call("shmat", libc::SYS_shmat, [id as u64, addr, flags as u64, 0, 0, 0])
    }

    /// arch_prctl(ARCH_MAP_VDSO_64): vvar and vdso at `addr` (refused while any
    /// vdso is mapped).
    pub fn map_vdso(&mut self, addr: u64) -> SysResult<()> {
        let op = kernel::ARCH_MAP_VDSO_64 as u64;
        self.call("arch_prctl(ARCH_MAP_VDSO_64)", libc::SYS_arch_prctl, [op, addr, 0, 0, 0, 0]).map(drop)
    }

    /// prctl(PR_SET_MM, PR_SET_MM_MAP) with `map` and the auxiliary vector `auxv`.
    pub fn set_mm_map(&mut self, mut map: kernel::prctl_mm_map, auxv: &[u8]) -> SysResult<()> {
        // Layout in scratch: the struct at 0, auxv at 4096.
        map.auxv = self.put(4096, auxv)? as *mut u64;
        map.auxv_size = auxv.len() as u32;
        let bytes = bytes_of(&map);
        let p = self.put(0, &bytes)?;
        let args = [kernel::PR_SET_MM_MAP as u64, p, bytes.len() as u64, 0];
        self.prctl("prctl(PR_SET_MM_MAP)", kernel::PR_SET_MM, args).map(drop)
    }

    // --- files ------------------------------------------------------------------

    /// openat(AT_FDCWD, path, flags | O_CLOEXEC); the fd number in the task.
    pub fn open(&mut self, path: &str, flags: i32) -> SysResult<i32> {
        let p = self.put(0, &cstring(path))?;
        let flags = (flags | libc::O_CLOEXEC) as u64;
        Ok(self.call("openat", libc::SYS_openat, [libc::AT_FDCWD as u64, p, flags, 0, 0, 0])? as i32)
    }

    /// fcntl(fd, F_SETLK): a POSIX record lock owned by the task, without waiting.
    pub fn set_posix_lock(&mut self, fd: i32, write: bool, start: u64, len: u64) -> SysResult<()> {
        let p = self.put(0, &bytes_of(&crate::sys::fd::record_lock(write, start, len)))?;
        self.call("fcntl(F_SETLK)", libc::SYS_fcntl, [fd as u64, libc::F_SETLK as u64, p, 0, 0, 0]).map(drop)
    }

    /// fcntl(fd, F_SETLEASE): a read or write lease taken by the task.
    pub fn set_lease(&mut self, fd: i32, write: bool) -> SysResult<()> {
        let t = if write { libc::F_WRLCK } else { libc::F_RDLCK } as u64;
        self.call("fcntl(F_SETLEASE)", libc::SYS_fcntl, [fd as u64, libc::F_SETLEASE as u64, t, 0, 0, 0]).map(drop)
    }

    /// The task writes `text` into its own /proc file `name` (/proc/self/NAME):
    /// some, like loginuid, take writes from their own task only.
    pub fn write_own_proc(&mut self, name: &str, text: &str) -> SysResult<()> {
        let fd = self.open(&format!("/proc/self/{name}"), libc::O_WRONLY)?;
        let p = self.put(0, text.as_bytes())?;
        let wrote = self.call("write", libc::SYS_write, [fd as u64, p, text.len() as u64, 0, 0, 0]);
        self.close(fd)?;
        wrote.map(drop)
    }

    /// F_GETOWN_EX and F_GETSIG of the task's fd: (owner type, owner pid as the task
    /// sees it, signal; 0 = SIGIO).
    pub fn fd_owner(&mut self, fd: i32) -> SysResult<(i32, i32, i32)> {
        let s = self.scratch_addr(0)?;
        self.call("fcntl(F_GETOWN_EX)", libc::SYS_fcntl, [fd as u64, kernel::F_GETOWN_EX as u64, s, 0, 0, 0])?;
        let o: kernel::f_owner_ex = from_bytes(&self.get(0, std::mem::size_of::<kernel::f_owner_ex>())?);
        let sig = self.call("fcntl(F_GETSIG)", libc::SYS_fcntl, [fd as u64, kernel::F_GETSIG as u64, 0, 0, 0, 0])?;
        Ok((o.type_, o.pid, sig as i32))
    }

    /// O_ASYNC on the task's fd (F_GETFL, F_SETFL): signals then name this fd.
    pub fn set_async(&mut self, fd: i32) -> SysResult<()> {
        let fl = self.call("fcntl(F_GETFL)", libc::SYS_fcntl, [fd as u64, libc::F_GETFL as u64, 0, 0, 0, 0])?;
        let fl = fl | libc::O_ASYNC as u64;
        self.call("fcntl(F_SETFL)", libc::SYS_fcntl, [fd as u64, libc::F_SETFL as u64, fl, 0, 0, 0]).map(drop)
    }

    /// F_SETOWN_EX and F_SETSIG of the task's fd.
    pub fn set_fd_owner(&mut self, fd: i32, owner_type: i32, pid: i32, sig: i32) -> SysResult<()> {
        let o = kernel::f_owner_ex { type_: owner_type, pid };
        let p = self.put(0, &bytes_of(&o))?;
        self.call("fcntl(F_SETOWN_EX)", libc::SYS_fcntl, [fd as u64, kernel::F_SETOWN_EX as u64, p, 0, 0, 0])?;
        self.call("fcntl(F_SETSIG)", libc::SYS_fcntl, [fd as u64, kernel::F_SETSIG as u64, sig as u64, 0, 0, 0])
            .map(drop)
    }

    pub fn close(&mut self, fd: i32) -> SysResult<()> {
        self.call("close", libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0]).map(drop)
    }

    /// preadv(fd, segments, off) into the task's memory: (address, length) each.
    /// Returns the bytes read (one call moves at most 2 GiB - 4 KiB).
    pub fn preadv(&mut self, fd: i32, segs: &[(u64, u64)], off: u64) -> SysResult<u64> {
        let mut iov = Vec::with_capacity(segs.len() * IOVEC_SIZE);
        for &(addr, len) in segs {
            iov.extend_from_slice(&addr.to_le_bytes());
            iov.extend_from_slice(&len.to_le_bytes());
        }
        let p = self.put(0, &iov)?;
        self.call("preadv", libc::SYS_preadv, [fd as u64, p, segs.len() as u64, off, 0, 0])
    }

    /// How many (address, length) segments one `preadv` can take here.
    pub fn preadv_capacity(&self) -> usize {
        self.scratch().map(|s| s.len / IOVEC_SIZE).unwrap_or(0).min(1024)
    }

    // --- signals ----------------------------------------------------------------

    pub fn sigaction(&mut self, sig: i32) -> SysResult<SigAction> {
        let s = self.scratch_addr(0)?;
        self.call("rt_sigaction", libc::SYS_rt_sigaction, [sig as u64, 0, s, SIGSET_SIZE, 0, 0])?;
        Ok(from_bytes(&self.get(0, std::mem::size_of::<SigAction>())?))
    }

    pub fn set_sigaction(&mut self, sig: i32, a: &SigAction) -> SysResult<()> {
        if sig == libc::SIGTRAP && a.handler == SIG_IGN {
            self.use_syscall_stops()?;
        }
        let p = self.put(0, &bytes_of(a))?;
        self.call("rt_sigaction", libc::SYS_rt_sigaction, [sig as u64, p, 0, SIGSET_SIZE, 0, 0]).map(drop)
    }

    /// uname: the (hostname, domainname) of the task's UTS namespace.
    pub fn uts_names(&mut self) -> SysResult<(String, String)> {
        const FIELD: usize = 65;
        let s = self.scratch_addr(0)?;
        self.call("uname", libc::SYS_uname, [s, 0, 0, 0, 0, 0])?;
        let b = self.get(0, 6 * FIELD)?;
        let field = |i: usize| {
            let f = &b[i * FIELD..(i + 1) * FIELD];
            String::from_utf8_lossy(&f[..f.iter().position(|&c| c == 0).unwrap_or(FIELD)]).into_owned()
        };
        // struct new_utsname: sysname, nodename, release, version, machine, domainname.
        Ok((field(1), field(5)))
    }

    /// setpriority(PRIO_PROCESS, 0, nice): the calling thread's niceness.
    pub fn set_nice(&mut self, nice: i32) -> SysResult<()> {
        let args = [libc::PRIO_PROCESS as u64, 0, nice as i64 as u64, 0, 0, 0];
        self.call("setpriority", libc::SYS_setpriority, args).map(drop)
    }

    /// sched_setscheduler(0, policy, {priority}) for the calling thread.
    pub fn set_scheduler(&mut self, policy: u32, priority: u32) -> SysResult<()> {
        let p = self.put(0, &(priority as i32).to_ne_bytes())?;
        self.call("sched_setscheduler", libc::SYS_sched_setscheduler, [0, policy as u64, p, 0, 0, 0]).map(drop)
    }

    pub fn sigaltstack(&mut self) -> SysResult<AltStack> {
        let s = self.scratch_addr(0)?;
        self.call("sigaltstack", libc::SYS_sigaltstack, [0, s, 0, 0, 0, 0])?;
        Ok(from_bytes(&self.get(0, std::mem::size_of::<AltStack>())?))
    }

    pub fn set_sigaltstack(&mut self, ss: &AltStack) -> SysResult<()> {
        let p = self.put(0, &bytes_of(ss))?;
        self.call("sigaltstack", libc::SYS_sigaltstack, [p, 0, 0, 0, 0, 0]).map(drop)
    }

    pub fn getitimer(&mut self, which: ItimerWhich) -> SysResult<ITimerVal> {
        let s = self.scratch_addr(0)?;
        self.call("getitimer", libc::SYS_getitimer, [which as u64, s, 0, 0, 0, 0])?;
        Ok(from_bytes(&self.get(0, std::mem::size_of::<ITimerVal>())?))
    }

    pub fn setitimer(&mut self, which: ItimerWhich, v: &ITimerVal) -> SysResult<()> {
        let p = self.put(0, &bytes_of(v))?;
        self.call("setitimer", libc::SYS_setitimer, [which as u64, p, 0, 0, 0, 0]).map(drop)
    }

    /// timer_gettime: the POSIX timer's (time left, interval) in nanoseconds.
    pub fn timer_gettime(&mut self, id: i32) -> SysResult<(u64, u64)> {
        let s = self.scratch_addr(0)?;
        self.call("timer_gettime", libc::SYS_timer_gettime, [id as u64, s, 0, 0, 0, 0])?;
        Ok(signal::itimerspec_ns(&from_bytes::<ITimerSpec>(&self.get(0, std::mem::size_of::<ITimerSpec>())?)))
    }

    pub fn timer_getoverrun(&mut self, id: i32) -> SysResult<i32> {
        Ok(self.call("timer_getoverrun", libc::SYS_timer_getoverrun, [id as u64, 0, 0, 0, 0, 0])? as i32)
    }

    /// PR_TIMER_CREATE_RESTORE_IDS: while on, timer_create gives the ID its
    /// out-argument holds (Linux 6.15+).
    pub fn set_timer_restore_ids(&mut self, on: bool) -> SysResult<()> {
        let op = crate::sys::features::PR_TIMER_CREATE_RESTORE_IDS;
        self.prctl("prctl(PR_TIMER_CREATE_RESTORE_IDS)", op, [on as u64, 0, 0, 0]).map(drop)
    }

    /// timer_create(clock, ev, &id) asking for `id` (with restore IDs on); the ID
    /// the kernel gave.
    pub fn timer_create_with_id(&mut self, clock: i32, ev: &SigEvent, id: i32) -> SysResult<i32> {
        let pe = self.put(0, &bytes_of(ev))?;
        let pid = self.put(128, &id.to_ne_bytes())?;
        self.call("timer_create", libc::SYS_timer_create, [clock as i64 as u64, pe, pid, 0, 0, 0])?;
        Ok(i32::from_ne_bytes(self.get(128, 4)?.try_into().expect("4 bytes")))
    }

    pub fn timer_settime(&mut self, id: i32, value_ns: u64, interval_ns: u64) -> SysResult<()> {
        let p = self.put(0, &bytes_of(&signal::itimerspec(value_ns, interval_ns)))?;
        self.call("timer_settime", libc::SYS_timer_settime, [id as u64, 0, p, 0, 0, 0]).map(drop)
    }

    /// Queues a signal for the process `tgid` (ids as the task sees them).
    pub fn queue_signal(&mut self, tgid: i32, sig: u32, siginfo: &[u8]) -> SysResult<()> {
        if sig == libc::SIGTRAP as u32 {
            self.use_syscall_stops()?;
        }
        let p = self.put(0, siginfo)?;
        self.call("rt_sigqueueinfo", libc::SYS_rt_sigqueueinfo, [tgid as u64, sig as u64, p, 0, 0, 0]).map(drop)
    }

    /// Queues a signal for thread `tid` of process `tgid` (ids as the task sees them).
    pub fn queue_thread_signal(&mut self, tgid: i32, tid: i32, sig: u32, siginfo: &[u8]) -> SysResult<()> {
        if sig == libc::SIGTRAP as u32 {
            self.use_syscall_stops()?;
        }
        let p = self.put(0, siginfo)?;
        let args = [tgid as u64, tid as u64, sig as u64, p, 0, 0];
        self.call("rt_tgsigqueueinfo", libc::SYS_rt_tgsigqueueinfo, args).map(drop)
    }

    // --- threads ----------------------------------------------------------------

    /// The thread's clear_child_tid address (PR_GET_TID_ADDRESS).
    pub fn tid_address(&mut self) -> SysResult<u64> {
        Ok(u64_at(&self.prctl_get("prctl(PR_GET_TID_ADDRESS)", kernel::PR_GET_TID_ADDRESS, 8)?, 0))
    }

    pub fn set_tid_address(&mut self, addr: u64) -> SysResult<()> {
        self.call("set_tid_address", libc::SYS_set_tid_address, [addr, 0, 0, 0, 0, 0]).map(drop)
    }

    /// (head, len) of the thread's robust futex list.
    pub fn robust_list(&mut self) -> SysResult<(u64, u64)> {
        let s = self.scratch_addr(0)?;
        self.call("get_robust_list", libc::SYS_get_robust_list, [0, s, s + 8, 0, 0, 0])?;
        let b = self.get(0, 16)?;
        Ok((u64_at(&b, 0), u64_at(&b, 8)))
    }

    pub fn set_robust_list(&mut self, head: u64, len: u64) -> SysResult<()> {
        self.call("set_robust_list", libc::SYS_set_robust_list, [head, len, 0, 0, 0, 0]).map(drop)
    }

    pub fn rseq_register(&mut self, area: u64, len: u32, signature: u32) -> SysResult<()> {
        let args = [area, len as u64, 0, signature as u64, 0, 0];
        self.call("rseq(register)", libc::SYS_rseq, args).map(drop)
    }

    pub fn rseq_unregister(&mut self, area: u64, len: u32, signature: u32) -> SysResult<()> {
        let args = [area, len as u64, kernel::rseq_flags_RSEQ_FLAG_UNREGISTER as u64, signature as u64, 0, 0];
        self.call("rseq(unregister)", libc::SYS_rseq, args).map(drop)
    }

    pub fn set_name(&mut self, name: &str) -> SysResult<()> {
        let mut comm = name.as_bytes().to_vec();
        comm.truncate(15);
        comm.push(0);
        let p = self.put(0, &comm)?;
        self.prctl("prctl(PR_SET_NAME)", kernel::PR_SET_NAME, [p, 0, 0, 0]).map(drop)
    }

    /// A thread with id `tid` (as the task sees it) in the task, through clone3 with
    /// set_tid, sharing everything a pthread shares. The leader must trace clones
    /// (`Stopped::trace_clones`): the new thread comes back attached and stopped.
    pub fn clone_thread(&mut self, tid: i32) -> SysResult<(i32, Stopped)> {
        let tid_addr = self.put(512, &(tid as u64).to_le_bytes())?;
        let flags = libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM;
        let args = kernel::clone_args { flags: flags as u64, set_tid: tid_addr, set_tid_size: 1, ..Default::default() };
        let b = bytes_of(&args);
        let p = self.put(0, &b)?;
        let (got, ev) = self.call_ev("clone3(thread)", libc::SYS_clone3, [p, b.len() as u64, 0, 0, 0, 0])?;
        let t = ev.cloned.ok_or_else(|| SysError::Task {
            pid: self.pid(),
            detail: format!("clone3 made thread {got} without a clone event (is PTRACE_O_TRACECLONE set?)"),
        })?;
        Ok((got as i32, t))
    }

    // --- process ----------------------------------------------------------------

    pub fn pdeath_signal(&mut self) -> SysResult<i32> {
        let b = self.prctl_get("prctl(PR_GET_PDEATHSIG)", kernel::PR_GET_PDEATHSIG, 4)?;
        Ok(i32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    pub fn set_pdeath_signal(&mut self, sig: i32) -> SysResult<()> {
        self.prctl("prctl(PR_SET_PDEATHSIG)", kernel::PR_SET_PDEATHSIG, [sig as u64, 0, 0, 0]).map(drop)
    }

    pub fn timer_slack(&mut self) -> SysResult<u64> {
        self.prctl("prctl(PR_GET_TIMERSLACK)", kernel::PR_GET_TIMERSLACK, [0; 4])
    }

    pub fn set_timer_slack(&mut self, ns: u64) -> SysResult<()> {
        self.prctl("prctl(PR_SET_TIMERSLACK)", kernel::PR_SET_TIMERSLACK, [ns, 0, 0, 0]).map(drop)
    }

    pub fn dumpable(&mut self) -> SysResult<i32> {
        Ok(self.prctl("prctl(PR_GET_DUMPABLE)", kernel::PR_GET_DUMPABLE, [0; 4])? as i32)
    }

    pub fn set_dumpable(&mut self, v: i32) -> SysResult<()> {
        self.prctl("prctl(PR_SET_DUMPABLE)", kernel::PR_SET_DUMPABLE, [v as u64, 0, 0, 0]).map(drop)
    }

    pub fn child_subreaper(&mut self) -> SysResult<bool> {
        let b = self.prctl_get("prctl(PR_GET_CHILD_SUBREAPER)", kernel::PR_GET_CHILD_SUBREAPER, 4)?;
        Ok(b != [0, 0, 0, 0])
    }

    pub fn set_child_subreaper(&mut self, on: bool) -> SysResult<()> {
        self.prctl("prctl(PR_SET_CHILD_SUBREAPER)", kernel::PR_SET_CHILD_SUBREAPER, [on as u64, 0, 0, 0]).map(drop)
    }

    /// PR_GET_THP_DISABLE: whether transparent huge pages are off for the process.
    pub fn thp_disabled(&mut self) -> SysResult<bool> {
        Ok(self.prctl("prctl(PR_GET_THP_DISABLE)", kernel::PR_GET_THP_DISABLE, [0; 4])? != 0)
    }

    pub fn set_thp_disabled(&mut self, on: bool) -> SysResult<()> {
        self.prctl("prctl(PR_SET_THP_DISABLE)", kernel::PR_SET_THP_DISABLE, [on as u64, 0, 0, 0]).map(drop)
    }

    pub fn personality(&mut self, persona: u32) -> SysResult<()> {
        self.call("personality", libc::SYS_personality, [persona as u64, 0, 0, 0, 0, 0]).map(drop)
    }

    pub fn prlimit(&mut self, resource: u32, cur: u64, max: u64) -> SysResult<()> {
        let mut b = cur.to_le_bytes().to_vec();
        b.extend_from_slice(&max.to_le_bytes());
        let p = self.put(0, &b)?;
        self.call("prlimit64", libc::SYS_prlimit64, [0, resource as u64, p, 0, 0, 0]).map(drop)
    }

    pub fn getpgid(&mut self) -> SysResult<i32> {
        Ok(self.call("getpgid", libc::SYS_getpgid, [0; 6])? as i32)
    }

    pub fn setpgid(&mut self, pgid: i32) -> SysResult<()> {
        self.call("setpgid", libc::SYS_setpgid, [0, pgid as u64, 0, 0, 0, 0]).map(drop)
    }

    // --- credentials ------------------------------------------------------------

    pub fn securebits(&mut self) -> SysResult<u32> {
        Ok(self.prctl("prctl(PR_GET_SECUREBITS)", kernel::PR_GET_SECUREBITS, [0; 4])? as u32)
    }

    pub fn set_securebits(&mut self, bits: u32) -> SysResult<()> {
        self.prctl("prctl(PR_SET_SECUREBITS)", kernel::PR_SET_SECUREBITS, [bits as u64, 0, 0, 0]).map(drop)
    }

    pub fn set_keepcaps(&mut self, on: bool) -> SysResult<()> {
        self.prctl("prctl(PR_SET_KEEPCAPS)", kernel::PR_SET_KEEPCAPS, [on as u64, 0, 0, 0]).map(drop)
    }

    pub fn capbset_drop(&mut self, cap: u64) -> SysResult<()> {
        self.prctl("prctl(PR_CAPBSET_DROP)", kernel::PR_CAPBSET_DROP, [cap, 0, 0, 0]).map(drop)
    }

    pub fn cap_ambient_raise(&mut self, cap: u64) -> SysResult<()> {
        let args = [kernel::PR_CAP_AMBIENT_RAISE as u64, cap, 0, 0];
        self.prctl("prctl(PR_CAP_AMBIENT_RAISE)", kernel::PR_CAP_AMBIENT, args).map(drop)
    }

    /// Installs one seccomp filter `program` (sock_filter instructions) with
    /// `flags`. The program goes in the scratch area when it fits, else in a
    /// mapping made for the call and removed after.
    pub fn seccomp_filter(&mut self, program: &[u8], flags: u64) -> SysResult<()> {
        let insns = program.len() / std::mem::size_of::<kernel::sock_filter>();
        // struct sock_fprog: the instruction count, then (aligned) the pointer;
        // written by hand, as its padding has no defined bytes.
        let hdr = std::mem::size_of::<kernel::sock_fprog>();
        let at = std::mem::offset_of!(kernel::sock_fprog, filter);
        let (addr, temp) = if hdr + program.len() <= self.scratch()?.len {
            (self.put(hdr, program)?, None)
        } else {
            let len = program.len().div_ceil(4096) as u64 * 4096;
            let prot = libc::PROT_READ | libc::PROT_WRITE;
            let a = self.mmap(0, len, prot, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, None, 0)?;
            crate::sys::mem::write(self.pid(), a, program)?;
            (a, Some((a, len)))
        };
        let mut fprog = vec![0u8; hdr];
        fprog[..2].copy_from_slice(&(insns as u16).to_ne_bytes());
        fprog[at..at + 8].copy_from_slice(&addr.to_ne_bytes());
        let p = self.put(0, &fprog)?;
        let mode = kernel::SECCOMP_SET_MODE_FILTER as u64;
        let r = self.call("seccomp(SECCOMP_SET_MODE_FILTER)", libc::SYS_seccomp, [mode, flags, p, 0, 0, 0]);
        if let Some((a, len)) = temp {
            self.munmap(a, len)?;
        }
        r.map(drop)
    }

    /// The thread's seccomp mode (PR_GET_SECCOMP: SECCOMP_MODE_*). Only with
    /// the tracee's seccomp suspended: in strict mode the call itself kills.
    pub fn seccomp_mode(&mut self) -> SysResult<u32> {
        Ok(self.prctl("prctl(PR_GET_SECCOMP)", kernel::PR_GET_SECCOMP, [0; 4])? as u32)
    }

    /// Puts the thread in seccomp strict mode.
    pub fn seccomp_strict(&mut self) -> SysResult<()> {
        let mode = kernel::SECCOMP_SET_MODE_STRICT as u64;
        self.call("seccomp(SECCOMP_SET_MODE_STRICT)", libc::SYS_seccomp, [mode, 0, 0, 0, 0, 0]).map(drop)
    }

    pub fn set_no_new_privs(&mut self) -> SysResult<()> {
        self.prctl("prctl(PR_SET_NO_NEW_PRIVS)", kernel::PR_SET_NO_NEW_PRIVS, [1, 0, 0, 0]).map(drop)
    }

    pub fn setgroups(&mut self, groups: &[u32]) -> SysResult<()> {
        let b: Vec<u8> = groups.iter().flat_map(|g| g.to_le_bytes()).collect();
        let p = if b.is_empty() { self.scratch_addr(0)? } else { self.put(0, &b)? };
        self.call("setgroups", libc::SYS_setgroups, [groups.len() as u64, p, 0, 0, 0, 0]).map(drop)
    }

    pub fn setresuid(&mut self, r: u32, e: u32, s: u32) -> SysResult<()> {
        self.call("setresuid", libc::SYS_setresuid, [r as u64, e as u64, s as u64, 0, 0, 0]).map(drop)
    }

    pub fn setresgid(&mut self, r: u32, e: u32, s: u32) -> SysResult<()> {
        self.call("setresgid", libc::SYS_setresgid, [r as u64, e as u64, s as u64, 0, 0, 0]).map(drop)
    }

    pub fn setfsuid(&mut self, id: u32) -> SysResult<()> {
        self.call("setfsuid", libc::SYS_setfsuid, [id as u64, 0, 0, 0, 0, 0]).map(drop)
    }

    pub fn setfsgid(&mut self, id: u32) -> SysResult<()> {
        self.call("setfsgid", libc::SYS_setfsgid, [id as u64, 0, 0, 0, 0, 0]).map(drop)
    }

    /// capset(2), version 3: (effective, permitted, inheritable), 64 bits each.
    pub fn capset(&mut self, eff: u64, prm: u64, inh: u64) -> SysResult<()> {
        let hdr = kernel::__user_cap_header_struct { version: kernel::_LINUX_CAPABILITY_VERSION_3, pid: 0 };
        let half = |shift: u32| kernel::__user_cap_data_struct {
            effective: (eff >> shift) as u32,
            permitted: (prm >> shift) as u32,
            inheritable: (inh >> shift) as u32,
        };
        let data = [half(0), half(32)];
        let hp = self.put(0, &bytes_of(&hdr))?;
        let dp = self.put(64, &bytes_of(&data))?;
        self.call("capset", libc::SYS_capset, [hp, dp, 0, 0, 0, 0]).map(drop)
    }
}
