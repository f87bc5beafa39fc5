//! /proc/PID/ns/*: which namespace of each type a task is in.

use crate::sys::{SysError, SysResult};

/// The identity of a namespace (`pid:[4026531836]`).
pub fn id(pid: i32, kind: &str) -> SysResult<String> {
    let p = super::path(pid, &format!("ns/{kind}"));
    std::fs::read_link(&p).map(|l| l.to_string_lossy().into_owned()).map_err(SysError::path("readlink", p))
}

/// Whether this kernel has namespaces of type `kind` (time: 5.6+, CONFIG_TIME_NS).
pub fn has(kind: &str) -> bool {
    super::path(super::SELF, &format!("ns/{kind}")).exists()
}

/// Whether two tasks share the namespace of type `kind`.
pub fn same(a: i32, b: i32, kind: &str) -> SysResult<bool> {
    Ok(id(a, kind)? == id(b, kind)?)
}

/// The namespace of type `kind` (pid, time) the task's next children will be in:
/// None when it unshared one that no task is in yet (the kernel then shows no
/// link for it).
pub fn for_children(pid: i32, kind: &str) -> SysResult<Option<String>> {
    match id(pid, &format!("{kind}_for_children")) {
        Err(SysError::Path { source, .. }) if source.raw_os_error() == Some(libc::ENOENT) && super::exists(pid) => {
            Ok(None)
        }
        r => r.map(Some),
    }
}
