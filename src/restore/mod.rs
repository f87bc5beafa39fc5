//! Restore: images directory → live tasks.

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("pid {pid}: {detail}")]
    Failed { pid: i32, detail: String },
}

impl RestoreError {
    pub fn errno(&self) -> i32 {
        libc::EINVAL
    }
}

/// Restores; with `child_of_caller` the root task becomes a child of our parent
/// (CLONE_PARENT), as the C ABI promises.
pub fn run(opts: &crate::Opts, child_of_caller: bool) -> crate::Result<i32> {
    let _ = child_of_caller;
    Err(crate::Error::InvalidArgument(format!("restore not implemented ({:?})", opts.images_dir)))
}

/// Waits for a restored child and returns its exit status as a shell would
/// (128 + signal when it was killed).
pub fn wait_restored(pid: i32) -> crate::Result<u8> {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, c)) => return Ok(c as u8),
            Ok(WaitStatus::Signaled(_, s, _)) => return Ok(128 + s as u8),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(crate::sys::SysError::Pid { call: "waitpid", pid, errno }.into()),
        }
    }
}
