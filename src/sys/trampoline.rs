//! The trampoline: a small mapping in a task being restored that holds a `syscall`
//! instruction (first page, executable) and scratch space for remote syscall
//! arguments (the rest). It lives in a gap of the address space being restored and
//! is the last thing unmapped.

use crate::sys::{Errno, SysError, SysResult};

pub const TRAMPOLINE_SIZE: u64 = 64 * 1024;
/// Offset of the scratch area within the trampoline.
pub const SCRATCH_OFFSET: u64 = 4096;
/// syscall; int3 (the int3 is never reached: we stop at syscall exit).
const CODE: [u8; 3] = [0x0f, 0x05, 0xcc];

/// Maps the trampoline in the calling process at the first candidate address that is
/// free here. Called in the restore child before it lets ccr seize it.
pub fn map_in_self(candidates: &[u64]) -> SysResult<u64> {
    for &addr in candidates {
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping; the new
        // mapping is private to this process and written only below.
        let p = unsafe {
            libc::mmap(
                addr as *mut libc::c_void,
                TRAMPOLINE_SIZE as usize,
                libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            continue;
        }
        if p as u64 != addr {
            // Old kernels treat the flag as a hint; give it back and go on.
            // SAFETY: unmapping the mapping we just created.
            unsafe { libc::munmap(p, TRAMPOLINE_SIZE as usize) };
            continue;
        }
        // SAFETY: `p` is a fresh writable mapping of TRAMPOLINE_SIZE bytes.
        unsafe { std::ptr::copy_nonoverlapping(CODE.as_ptr(), p as *mut u8, CODE.len()) };
        return Ok(addr);
    }
    Err(SysError::Call { call: "mmap(trampoline): no free candidate address", errno: Errno::ENOMEM })
}

/// Candidate trampoline addresses: starts of gaps between `vmas` (sorted, [start, end))
/// that can hold the trampoline, low addresses first.
pub fn candidates(vmas: &[(u64, u64)], max: usize) -> Vec<u64> {
    const LOW: u64 = 0x1000_0000;
    const HIGH: u64 = 0x7fff_f000_0000;
    let mut out = Vec::new();
    let mut prev_end = LOW;
    let gap = |from: u64, to: u64, out: &mut Vec<u64>| {
        // Keep a guard page on either side so the kernel cannot merge or grow into it.
        let start = from + 4096;
        if to > start && to - start >= TRAMPOLINE_SIZE + 4096 && out.len() < max {
            out.push(start);
        }
    };
    for &(s, e) in vmas {
        if s > prev_end {
            gap(prev_end, s.min(HIGH), &mut out);
        }
        prev_end = prev_end.max(e);
    }
    if prev_end < HIGH {
        gap(prev_end, HIGH, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn gaps() {
        let v = [(0x5000_0000, 0x5000_2000), (0x5000_3000, 0x6000_0000), (0x7fff_e000_0000, 0x7fff_f000_0000)];
        let c = super::candidates(&v, 8);
        assert_eq!(c[0], 0x1000_1000);
        assert_eq!(c[1], 0x6000_1000);
        assert_eq!(c.len(), 2);
    }
}
