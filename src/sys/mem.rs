//! Another task's memory: process_vm_readv/writev, with /proc/PID/mem as the
//! fallback for pages those refuse (read-only or special mappings).

use std::os::unix::fs::FileExt;

use crate::sys::{Errno, SysError, SysResult};

/// Reads as much of `buf.len()` bytes at `addr` of `pid` as process_vm_readv gives
/// in one call; the count read.
pub fn read_some(pid: i32, addr: u64, buf: &mut [u8]) -> SysResult<usize> {
    let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: buf.len() };
    // SAFETY: one local iovec covering `buf`, one remote iovec (checked by the kernel).
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    if n < 0 {
        return Err(SysError::Pid { call: "process_vm_readv", pid, errno: Errno::last() });
    }
    Ok(n as usize)
}

/// Reads `buf.len()` bytes at `addr` of `pid`.
pub fn read(pid: i32, addr: u64, buf: &mut [u8]) -> SysResult<()> {
    if read_some(pid, addr, buf).ok() == Some(buf.len()) {
        return Ok(());
    }
    read_proc_mem(pid, addr, buf)
}

/// Reads through /proc/PID/mem, which also reads pages the task cannot (PROT_NONE).
pub fn read_proc_mem(pid: i32, addr: u64, buf: &mut [u8]) -> SysResult<()> {
    crate::sys::proc::mem::open(pid)?
        .read_exact_at(buf, addr)
        .map_err(|e| SysError::Task { pid, detail: format!("reading {} bytes at {addr:#x}: {e}", buf.len()) })
}

/// Writes `data` at `addr` of `pid`.
pub fn write(pid: i32, addr: u64, data: &[u8]) -> SysResult<()> {
    let local = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: data.len() };
    // SAFETY: one local iovec covering `data` (only read), one remote iovec.
    let n = unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) };
    if n == data.len() as isize {
        return Ok(());
    }
    crate::sys::proc::mem::open(pid)?
        .write_all_at(data, addr)
        .map_err(|e| SysError::Task { pid, detail: format!("writing {} bytes at {addr:#x}: {e}", data.len()) })
}
