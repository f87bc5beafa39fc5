//! Everything that talks to the kernel. All `unsafe` of the engine lives in this room
//! (and in `ffi/`); the rest of ccr calls the safe wrappers here. Local fds are
//! `OwnedFd`/`BorrowedFd`; a bare `i32` fd is a number in another task's table.

pub mod anonfd;
pub mod cgroupfs;
pub mod fd;
pub mod fdpass;
pub mod features;
pub mod helper;
pub mod inotify;
pub mod interrupt;
pub mod kernel;
pub mod mem;
pub mod mount;
pub mod mqueue;
pub mod netlink;
pub mod pagemap;
pub mod pidfd;
pub mod pipe;
pub mod proc;
pub mod process;
pub mod ptrace;
pub mod remote;
pub mod signal;
pub mod sock;
pub mod sysv_ipc;
pub mod sysv_shm;
pub mod tcp_repair;
pub mod trampoline;
pub mod tty;
pub mod unix_sock;
pub mod userns;
pub mod wait;

use std::path::PathBuf;

pub use nix::errno::Errno;

#[derive(Debug, thiserror::Error)]
pub enum SysError {
    #[error("{call} on pid {pid}: {errno}")]
    Pid { call: &'static str, pid: i32, errno: Errno },
    #[error("{call} {path}: {source}")]
    Path { call: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{call}: {errno}")]
    Call { call: &'static str, errno: Errno },
    #[error("remote {call} in pid {pid} failed: {errno}")]
    Remote { call: &'static str, pid: i32, errno: Errno },
    #[error("parsing {path}: {detail}")]
    Parse { path: PathBuf, detail: String },
    #[error("pid {pid}: {detail}")]
    Task { pid: i32, detail: String },
    /// A stopped tracee is gone (ESRCH from ptrace, or its exit was reported).
    #[error("pid {pid} died ({during})")]
    Died { pid: i32, during: String },
}

impl SysError {
    pub fn errno(&self) -> i32 {
        match self {
            SysError::Pid { errno, .. } | SysError::Call { errno, .. } | SysError::Remote { errno, .. } => {
                *errno as i32
            }
            SysError::Path { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
            SysError::Parse { .. } => libc::EINVAL,
            SysError::Task { .. } | SysError::Died { .. } => libc::ESRCH,
        }
    }

    pub fn path(call: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SysError {
        let path = path.into();
        move |source| SysError::Path { call, path, source }
    }

    /// The error of the libc call that just failed.
    pub(crate) fn last(call: &'static str) -> SysError {
        SysError::Call { call, errno: Errno::last() }
    }
}

pub type SysResult<T> = std::result::Result<T, SysError>;

/// The bytes of a plain kernel struct (bindgen output: integers only, no padding
/// holes that matter), for copying it into another task's memory.
pub fn bytes_of<T: Copy>(v: &T) -> Vec<u8> {
    let n = std::mem::size_of::<T>();
    let mut out = vec![0u8; n];
    // SAFETY: `v` is a valid `T` of `n` bytes; `out` has room for `n` bytes; the
    // regions do not overlap. Padding bytes (if any) were zeroed by Default.
    unsafe { std::ptr::copy_nonoverlapping(v as *const T as *const u8, out.as_mut_ptr(), n) };
    out
}

/// A plain kernel struct read back from bytes (another task's memory). Short input
/// is zero-filled.
pub fn from_bytes<T: Copy + Default>(b: &[u8]) -> T {
    let mut v = T::default();
    let n = std::mem::size_of::<T>().min(b.len());
    // SAFETY: `v` is a valid `T`; at most size_of::<T>() bytes are copied into it and
    // bindgen structs of integers accept any bit pattern.
    unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), &mut v as *mut T as *mut u8, n) };
    v
}
