//! Container cgroups: freeze, thaw, save and restore.

pub mod api;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup {path}: {detail}")]
    Other {
        path: std::path::PathBuf,
        detail: String,
    },
}

impl CgroupError {
    pub fn errno(&self) -> i32 {
        libc::EINVAL
    }
}
