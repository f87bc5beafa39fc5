//! The symbolic links of /proc/PID: cwd, root, exe. The path they show is as seen
//! from ccr's own root.

use crate::sys::{SysError, SysResult};

fn link(pid: i32, name: &str) -> SysResult<String> {
    let p = super::path(pid, name);
    let target = std::fs::read_link(&p).map_err(SysError::path("readlink", &p))?;
    Ok(target.to_string_lossy().into_owned())
}

pub fn cwd(pid: i32) -> SysResult<String> {
    link(pid, "cwd")
}

pub fn root(pid: i32) -> SysResult<String> {
    link(pid, "root")
}

pub fn exe(pid: i32) -> SysResult<String> {
    link(pid, "exe")
}

/// The link to the task's executable: stat(2) through it reaches that file.
pub fn exe_link(pid: i32) -> std::path::PathBuf {
    super::path(pid, "exe")
}

/// `path` (as task `pid` sees it) reached through the task's root, so it resolves
/// in the task's mount namespace.
pub fn under_root(pid: i32, path: &std::path::Path) -> std::path::PathBuf {
    let rel = path.strip_prefix("/").unwrap_or(path);
    super::path(pid, "root").join(rel)
}
