//! Another task's memory: process_vm_readv/writev, with /proc/PID/mem as the
//! fallback for pages those refuse (read-only or special mappings).

use std::os::unix::fs::FileExt;

use crate::sys::{Errno, SysError, SysResult};

/// Reads `buf.len()` bytes at `addr` of `pid`.
pub fn read(pid: i32, addr: u64, buf: &mut [u8]) -> SysResult<()> {
    let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: buf.len() };
    // SAFETY: one local iovec covering `buf`, one remote iovec (checked by the kernel).
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    if n == buf.len() as isize {
        return Ok(());
    }
    proc_mem(pid).and_then(|f| {
        f.read_exact_at(buf, addr)
            .map_err(|e| SysError::Task { pid, detail: format!("reading {} bytes at {addr:#x}: {e}", buf.len()) })
    })
}

/// Reads into several local buffers from several remote ranges in one call
/// (process_vm_readv). Returns the bytes read.
pub fn readv(pid: i32, local: &mut [libc::iovec], remote: &[libc::iovec]) -> SysResult<usize> {
    // SAFETY: the iovec arrays are valid for their lengths; the local ones point
    // into buffers owned by the caller for the duration of the call.
    let n = unsafe {
        libc::process_vm_readv(pid, local.as_ptr(), local.len() as u64, remote.as_ptr(), remote.len() as u64, 0)
    };
    if n < 0 {
        return Err(SysError::Pid { call: "process_vm_readv", pid, errno: Errno::last() });
    }
    Ok(n as usize)
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
    proc_mem(pid).and_then(|f| {
        f.write_all_at(data, addr)
            .map_err(|e| SysError::Task { pid, detail: format!("writing {} bytes at {addr:#x}: {e}", data.len()) })
    })
}

fn proc_mem(pid: i32) -> SysResult<std::fs::File> {
    let p = format!("/proc/{pid}/mem");
    std::fs::OpenOptions::new().read(true).write(true).open(&p).map_err(SysError::path("open", p))
}
