//! Where a dumped thread lands if ccr dies while it drives the thread.
//!
//! When the tracer dies, the kernel detaches its tracees and they run on from
//! whatever registers they hold. In a remote-syscall session those are ccr's: an
//! instruction pointer in the vdso, ccr's arguments, every signal blocked. So a
//! dump session arranges, before it changes anything, that running on from any of
//! its moments puts the thread back exactly as it was:
//!
//! - ccr's syscall is issued from a vdso `syscall` that is followed only by
//!   register clearing and `ret` (a fallback path of a vdso function);
//! - the stack pointer of every call is a frame ccr wrote: its first word is the
//!   address of a `mov $15, %eax; syscall` (rt_sigreturn) in the task's own code
//!   (libc's signal restorer), the rest an rt_sigreturn frame holding the
//!   thread's registers, signal mask and xsave area;
//! - before the first call the thread is parked on that restorer, with the stack
//!   pointer just past the frame's first word; after each call it stands at the
//!   syscall's exit in the vdso, on the frame.
//!
//! So an orphaned thread completes ccr's call (dump calls only read), returns into
//! the restorer, and rt_sigreturn puts back every register, the FPU/AVX/PKRU
//! state and the signal mask at once; the altstack in the frame is made invalid
//! on purpose, which rt_sigreturn ignores, so the altstack stays as it is.
//! Nothing is single-stepped: a trap flag left set would kill the thread with
//! SIGTRAP.
//!
//! The frame and the scratch area for call arguments lie in the process's
//! `[stack]` mapping, at least MIN_ROOM above its bottom and SLACK below every
//! stack pointer in it (or just below it): memory no code uses (the ABI gives what lies below a
//! stack pointer to whoever comes next), already mapped, so the memory map never
//! changes. Their old bytes are put back at the end of each session; pages of it
//! never touched before become resident. ROOM is for a signal handler: between
//! PTRACE_SETSIGMASK and PTRACE_SETREGS (two requests, no atomic pair) a thread
//! orphaned at that instant may take a pending signal on the frame's stack first.
//!
//! What an orphan cannot get back exactly:
//! - rt_sigreturn drops the kernel's restart block, so an interrupted sleep that
//!   would have resumed with `restart_syscall` starts again from its original
//!   arguments (a relative timeout starts again), and one already inside
//!   `restart_syscall` (resumed before, e.g. by an earlier dump) returns EINTR;
//! - the frame carries the kernel's default xsave layout: on a CPU with AMX, a
//!   thread using tile registers gets them back initialised.

use std::collections::HashMap;
use std::mem::{offset_of, size_of};

use crate::sys::kernel::{
    _fpx_sw_bytes, sigcontext, stack_t, ucontext, FP_XSTATE_MAGIC1, FP_XSTATE_MAGIC2, UC_FP_XSTATE, UC_SIGCONTEXT_SS,
    UC_STRICT_RESTORE_SS,
};
use crate::sys::proc::MapEntry;
use crate::sys::ptrace::Regs;
use crate::sys::{mem, SysResult};

/// Bytes for call arguments and results at the start of the area.
pub const SCRATCH_LEN: usize = 4096;
/// How far the area stays below the lowest stack pointer in `[stack]`, so a
/// thread that runs on when ccr dies cannot reach it before the orphan has used it.
const SLACK: u64 = 32 << 10;
/// Stack left below the area for a signal handler an orphan may run first: at
/// least MIN_ROOM, up to ROOM when the mapping has it.
const MIN_ROOM: u64 = 16 << 10;
const ROOM: u64 = 64 << 10;
/// The x86-64 red zone below a stack pointer, which leaf code may use.
const RED_ZONE: u64 = 128;
/// The kernel's rt_sigframe starts with the return address (`pretcode`); the
/// ucontext follows, then a siginfo rt_sigreturn does not read.
const UC_OFFSET: usize = size_of::<u64>();
const SIGINFO_LEN: usize = 128;
/// An altstack mode rt_sigreturn's sigaltstack rejects (neither 0, SS_ONSTACK nor
/// SS_DISABLE): the kernel ignores that error, and the altstack is left alone.
const SS_INVALID: i32 = 3;

const SYSCALL: [u8; 2] = [0x0f, 0x05];
/// Instructions allowed between the `syscall` and the `ret` of the landing: they
/// only clear registers, which rt_sigreturn puts back.
const CLEARS: &[&[u8]] = &[
    &[0x31, 0xc0],
    &[0x31, 0xd2],
    &[0x31, 0xc9],
    &[0x31, 0xf6],
    &[0x31, 0xff],
    &[0x45, 0x31, 0xc0],
    &[0x45, 0x31, 0xc9],
    &[0x45, 0x31, 0xd2],
    &[0x45, 0x31, 0xdb],
    &[0x90],
];
const RET: u8 = 0xc3;
/// `mov $15, %rax; syscall` and `mov $15, %eax; syscall`: rt_sigreturn.
const RESTORERS: &[&[u8]] = &[&[0x48, 0xc7, 0xc0, 0x0f, 0, 0, 0, 0x0f, 0x05], &[0xb8, 0x0f, 0, 0, 0, 0x0f, 0x05]];

/// A process's landing: found once per process, used by every session on its threads.
#[derive(Clone, Copy, Debug)]
pub struct Landing {
    /// A `syscall` followed by register clearing and `ret`.
    pub syscall_ret: u64,
    /// `mov $15, %eax; syscall` in the task's code.
    pub restorer: u64,
    /// The scratch area (SCRATCH_LEN bytes), the frame right after it.
    pub area: u64,
    /// Bytes of the frame: rt_sigframe head, then the xsave area and its end magic.
    frame_len: usize,
}

/// Offset of the xsave area in the frame (xrstor wants 64-byte alignment; the
/// frame starts page aligned).
fn fpstate_offset() -> usize {
    (UC_OFFSET + size_of::<ucontext>() + SIGINFO_LEN).next_multiple_of(64)
}

fn frame_len(xstate_len: usize) -> usize {
    fpstate_offset() + xstate_len + size_of::<u32>()
}

/// Whether the code after `at` in `code` is register clearing up to a `ret`.
fn lands_on_ret(code: &[u8], mut at: usize) -> bool {
    for _ in 0..16 {
        if at >= code.len() {
            return false;
        }
        match code.get(at) {
            Some(&RET) => return true,
            _ => match CLEARS.iter().find(|c| code[at..].starts_with(c)) {
                Some(c) => at += c.len(),
                None => return false,
            },
        }
    }
    false
}

fn read_map(pid: i32, m: &MapEntry, limit: u64) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; (m.end - m.start).min(limit) as usize];
    mem::read(pid, m.start, &mut buf).ok().map(|_| buf)
}

fn find_syscall_ret(pid: i32, maps: &[MapEntry]) -> Option<u64> {
    let vdso = maps.iter().find(|m| m.name == "[vdso]")?;
    let code = read_map(pid, vdso, 1 << 16)?;
    let i = (0..code.len().saturating_sub(2))
        .find(|&i| code[i..].starts_with(&SYSCALL) && lands_on_ret(&code, i + SYSCALL.len()))?;
    Some(vdso.start + i as u64)
}

/// The file mappings searched for a restorer: libc first (glibc's and musl's
/// `__restore_rt` are one), then the program and the other libraries.
fn restorer_candidates(maps: &[MapEntry]) -> Vec<&MapEntry> {
    let code = |m: &&MapEntry| m.exec && m.read && m.inode != 0;
    let libc =
        |m: &&MapEntry| m.name.rsplit('/').next().is_some_and(|f| f.starts_with("libc.") || f.starts_with("libc-"));
    let mut out: Vec<&MapEntry> = maps.iter().filter(code).filter(libc).collect();
    out.extend(maps.iter().filter(code).filter(|m| !libc(m)));
    out
}

/// The offset of the first restorer in mapping `m`, read a chunk at a time: libc's
/// lies near the start of its text.
fn scan(pid: i32, m: &MapEntry) -> Option<usize> {
    const CHUNK: usize = 64 << 10;
    let overlap = RESTORERS.iter().map(|p| p.len()).max().unwrap_or(0) - 1;
    let len = (m.end - m.start) as usize;
    let mut buf = vec![0u8; CHUNK + overlap];
    let mut at = 0;
    while at < len {
        let n = (CHUNK + overlap).min(len - at);
        mem::read(pid, m.start + at as u64, &mut buf[..n]).ok()?;
        let code = &buf[..n];
        if let Some(i) = RESTORERS.iter().filter_map(|p| code.windows(p.len()).position(|w| w == *p)).min() {
            return Some(at + i);
        }
        at += CHUNK;
    }
    None
}

/// Finds restorers, remembering where one lies in each file's mapping: the
/// processes of a tree mostly share one libc.
#[derive(Default)]
pub struct Restorers {
    /// (device, inode, file offset of the mapping) → offset of a restorer in it.
    known: HashMap<(u32, u32, u64, u64), Option<usize>>,
}

impl Restorers {
    fn find(&mut self, pid: i32, maps: &[MapEntry]) -> Option<u64> {
        for m in restorer_candidates(maps) {
            let key = (m.dev_major, m.dev_minor, m.inode, m.offset);
            match self.known.get(&key) {
                Some(&Some(i)) => {
                    // The same file, unless its text was changed in this process.
                    let mut code = [0u8; 9];
                    let n = RESTORERS.iter().find(|p| {
                        mem::read(pid, m.start + i as u64, &mut code[..p.len()]).is_ok_and(|_| code.starts_with(p))
                    });
                    if n.is_some() {
                        return Some(m.start + i as u64);
                    }
                    continue;
                }
                Some(None) => continue,
                None => {}
            }
            let at = scan(pid, m);
            self.known.insert(key, at);
            if let Some(i) = at {
                // The syscall is the pattern's last two bytes; the mov comes first.
                return Some(m.start + i as u64);
            }
        }
        None
    }
}

impl Landing {
    /// The landing for process `pid` whose threads' stack pointers are `sps`, or
    /// why there is none (the caller then runs its sessions without one).
    /// `xstate_len`: the size of a thread's xsave area (PTRACE_GETREGSET).
    /// `shadow_stack`: whether a thread has a user shadow stack, which rt_sigreturn
    /// would check against a token ccr cannot place.
    pub fn find(
        pid: i32,
        maps: &[MapEntry],
        sps: &[u64],
        xstate_len: usize,
        shadow_stack: bool,
        restorers: &mut Restorers,
    ) -> Result<Landing, &'static str> {
        if shadow_stack {
            return Err("a thread has a user shadow stack");
        }
        let i = maps.iter().position(|m| m.name == "[stack]").ok_or("no [stack] mapping")?;
        let stack = &maps[i];
        // A stack pointer moved below the mapping, where it grows on first touch, counts.
        let floor = if i > 0 { maps[i - 1].end } else { 0 };
        let frame_len = frame_len(xstate_len);
        let need = (SCRATCH_LEN + frame_len) as u64;
        let lowest = sps.iter().copied().filter(|sp| (floor..stack.end).contains(sp)).min().unwrap_or(stack.end);
        let highest = lowest.saturating_sub(RED_ZONE + SLACK + need) & !4095;
        if highest < stack.start + MIN_ROOM {
            return Err("too little of [stack] below the stack pointers");
        }
        let area = highest.min(stack.start + ROOM);
        let syscall_ret = find_syscall_ret(pid, maps).ok_or("no `syscall; ret` in the vdso")?;
        let restorer = restorers.find(pid, maps).ok_or("no rt_sigreturn restorer in the task's code")?;
        Ok(Landing { syscall_ret, restorer, area, frame_len })
    }

    /// Where the frame starts: the stack pointer of every call.
    pub fn frame(&self) -> u64 {
        self.area + SCRATCH_LEN as u64
    }

    pub fn area_len(&self) -> usize {
        SCRATCH_LEN + self.frame_len
    }

    /// Registers that park a thread on the restorer, as if it had just returned
    /// into it from a call.
    pub fn parked(&self, regs: &Regs) -> Regs {
        Regs { rip: self.restorer, rsp: self.frame() + UC_OFFSET as u64, orig_rax: u64::MAX, ..*regs }
    }

    /// The frame that puts back `regs`, `mask` and `xstate` (as PTRACE_GETREGSET
    /// returned it), or None when the xsave area does not fit the frame.
    pub fn frame_bytes(&self, regs: &Regs, mask: u64, xstate: &[u8]) -> Option<Vec<u8>> {
        if frame_len(xstate.len()) > self.frame_len || xstate.len() < 576 {
            return None;
        }
        let mut f = vec![0u8; self.frame_len];
        let fpstate = fpstate_offset();
        put(&mut f, 0, self.restorer);
        let uc = UC_OFFSET;
        put(
            &mut f,
            uc + offset_of!(ucontext, uc_flags),
            (UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS).into(),
        );
        put32(&mut f, uc + offset_of!(ucontext, uc_stack) + offset_of!(stack_t, ss_flags), SS_INVALID as u32);
        let sc = uc + offset_of!(ucontext, uc_mcontext);
        for (off, v) in [
            (offset_of!(sigcontext, r8), regs.r8),
            (offset_of!(sigcontext, r9), regs.r9),
            (offset_of!(sigcontext, r10), regs.r10),
            (offset_of!(sigcontext, r11), regs.r11),
            (offset_of!(sigcontext, r12), regs.r12),
            (offset_of!(sigcontext, r13), regs.r13),
            (offset_of!(sigcontext, r14), regs.r14),
            (offset_of!(sigcontext, r15), regs.r15),
            (offset_of!(sigcontext, rdi), regs.rdi),
            (offset_of!(sigcontext, rsi), regs.rsi),
            (offset_of!(sigcontext, rbp), regs.rbp),
            (offset_of!(sigcontext, rbx), regs.rbx),
            (offset_of!(sigcontext, rdx), regs.rdx),
            (offset_of!(sigcontext, rax), regs.rax),
            (offset_of!(sigcontext, rcx), regs.rcx),
            (offset_of!(sigcontext, rsp), regs.rsp),
            (offset_of!(sigcontext, rip), regs.rip),
            (offset_of!(sigcontext, eflags), regs.eflags),
            (offset_of!(sigcontext, fpstate), self.frame() + fpstate as u64),
        ] {
            put(&mut f, sc + off, v);
        }
        put16(&mut f, sc + offset_of!(sigcontext, cs), regs.cs as u16);
        put16(&mut f, sc + offset_of!(sigcontext, __bindgen_anon_1), regs.ss as u16);
        put(&mut f, uc + offset_of!(ucontext, uc_sigmask), mask);
        f[fpstate..fpstate + xstate.len()].copy_from_slice(xstate);
        // The software bytes live in the fxsave area's reserved tail (byte 464).
        // PTRACE_GETREGSET fills them with the kernel's default signal-frame layout
        // (the buffer itself may be longer, up to the largest layout); rt_sigreturn
        // looks for the end magic right after the size they name.
        let sw = fpstate + 464;
        let size_at = sw + offset_of!(_fpx_sw_bytes, xstate_size);
        let named = u32::from_le_bytes(f[size_at..size_at + 4].try_into().expect("4 bytes")) as usize;
        let size = if f[sw..sw + 4] == FP_XSTATE_MAGIC1.to_le_bytes() && (576..=xstate.len()).contains(&named) {
            named
        } else {
            put32(&mut f, sw + offset_of!(_fpx_sw_bytes, magic1), FP_XSTATE_MAGIC1);
            put(&mut f, sw + offset_of!(_fpx_sw_bytes, xfeatures), xfeatures(xstate));
            xstate.len()
        };
        put32(&mut f, size_at, size as u32);
        put32(&mut f, sw + offset_of!(_fpx_sw_bytes, extended_size), (size + 4) as u32);
        put32(&mut f, fpstate + size, FP_XSTATE_MAGIC2);
        Some(f)
    }

    /// Writes the frame for a session; returns the bytes it covered, for `put_back`.
    pub fn install(&self, pid: i32, frame: &[u8]) -> SysResult<Vec<u8>> {
        let mut old = vec![0u8; self.area_len()];
        mem::read(pid, self.area, &mut old)?;
        mem::write(pid, self.frame(), frame)?;
        Ok(old)
    }

    pub fn put_back(&self, pid: i32, old: &[u8]) -> SysResult<()> {
        mem::write(pid, self.area, old)
    }
}

/// The features present in an xsave area (its header's xstate_bv, at byte 512).
fn xfeatures(xstate: &[u8]) -> u64 {
    xstate.get(512..520).map_or(3, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

fn put(f: &mut [u8], off: usize, v: u64) {
    f[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

fn put32(f: &mut [u8], off: usize, v: u32) {
    f[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn put16(f: &mut [u8], off: usize, v: u16) {
    f[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landing_code_is_recognised() {
        // The vdso's clock_getres fallback on Linux 6.18.
        let code = [0x0f, 0x05, 0x31, 0xd2, 0x31, 0xc9, 0x31, 0xf6, 0x31, 0xff, 0x45, 0x31, 0xdb, 0xc3];
        assert!(lands_on_ret(&code, 2));
        // clock_gettime's: `leave` moves the stack pointer.
        assert!(!lands_on_ret(&[0x0f, 0x05, 0xc9, 0x31, 0xd2, 0xc3], 2));
        assert!(!lands_on_ret(&[0x0f, 0x05, 0x31], 2));
    }

    #[test]
    fn frame_layout() {
        let l = Landing { syscall_ret: 0x1000, restorer: 0x2000, area: 0x10000, frame_len: frame_len(2440) };
        let regs = Regs { rip: 0x4444, rsp: 0x5555, cs: 0x33, ss: 0x2b, eflags: 0x246, ..Default::default() };
        let xs = vec![0u8; 2440];
        let f = l.frame_bytes(&regs, 0xabcd, &xs).unwrap();
        let word = |off: usize| u64::from_le_bytes(f[off..off + 8].try_into().unwrap());
        let sc = UC_OFFSET + offset_of!(ucontext, uc_mcontext);
        assert_eq!(word(0), 0x2000);
        assert_eq!(word(sc + offset_of!(sigcontext, rip)), 0x4444);
        assert_eq!(word(sc + offset_of!(sigcontext, rsp)), 0x5555);
        assert_eq!(word(UC_OFFSET + offset_of!(ucontext, uc_sigmask)), 0xabcd);
        let fp = word(sc + offset_of!(sigcontext, fpstate));
        assert_eq!(fp % 64, 0);
        let fp_off = (fp - l.frame()) as usize;
        assert_eq!(&f[fp_off + 464..fp_off + 468], &FP_XSTATE_MAGIC1.to_le_bytes());
        assert_eq!(&f[fp_off + 2440..fp_off + 2444], &FP_XSTATE_MAGIC2.to_le_bytes());
        assert!(l.area_len() <= 2 * 4096);
    }
}
