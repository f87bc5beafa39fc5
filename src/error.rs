//! The top-level error: every module's error, plus the errno the C ABI returns.

use crate::{
    action::HookError, cgroup::CgroupError, dump::DumpError, image::ImageError, mounts::MountError, netns::NetError,
    restore::RestoreError, sys::SysError,
};

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error(transparent)]
    Sys(#[from] SysError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Dump(#[from] DumpError),
    #[error(transparent)]
    Restore(#[from] RestoreError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Net(#[from] NetError),
    /// A failure reported by the helper process that ran the operation.
    #[error("{message}")]
    Helper { errno: i32, message: String },
}

impl Error {
    /// The positive errno that best describes this failure (the C ABI negates it).
    pub fn errno(&self) -> i32 {
        match self {
            Error::InvalidArgument(_) => libc::EINVAL,
            Error::Sys(e) => e.errno(),
            Error::Image(e) => e.errno(),
            Error::Dump(e) => e.errno(),
            Error::Restore(e) => e.errno(),
            Error::Cgroup(e) => e.errno(),
            Error::Mount(e) => e.errno(),
            Error::Hook(e) => e.errno(),
            Error::Net(e) => e.errno(),
            Error::Helper { errno, .. } => *errno,
        }
    }
}
