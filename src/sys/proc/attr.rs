//! /proc/PID/attr/current: the security label (LSM profile) a task runs under.

use crate::sys::{SysError, SysResult};

/// The task's label, None when no LSM that labels tasks is active (the kernel
/// answers EINVAL) or the task runs unconfined.
pub fn current_label(pid: i32) -> SysResult<Option<String>> {
    let p = super::path(pid, "attr/current");
    match std::fs::read(&p) {
        Ok(raw) => Ok(label(&raw)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(None),
        Err(e) => Err(SysError::path("read", &p)(e)),
    }
}

/// Whether no active LSM labels tasks (reading ccr's own label gives EINVAL).
pub fn no_lsm_labels() -> bool {
    std::fs::read(super::path(super::SELF, "attr/current")).is_err_and(|e| e.raw_os_error() == Some(libc::EINVAL))
}

/// The label in the file's text: "unconfined" (AppArmor's, with or without its
/// mode) and an empty text are none.
fn label(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw).trim_end_matches(['\0', '\n']).to_string();
    let name = text.split(" (").next().unwrap_or_default();
    (!name.is_empty() && name != "unconfined").then_some(text)
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn unconfined_and_empty_are_no_label() {
        assert_eq!(label(b"unconfined\n"), None);
        assert_eq!(label(b"unconfined (unconfined)\n"), None);
        assert_eq!(label(b""), None);
        assert_eq!(label(b"lxc-c1_</var/lib/lxc> (enforce)\n").as_deref(), Some("lxc-c1_</var/lib/lxc> (enforce)"));
        assert_eq!(label(b"system_u:system_r:container_t:s0\0").as_deref(), Some("system_u:system_r:container_t:s0"));
    }
}
