//! A tree's own mount namespace: its whole mount tree saved from mountinfo on
//! dump (`dump`), made again mount by mount in a new namespace on restore
//! (`restore`), with the files of the filesystems that live only in memory
//! (`fstree`).
//!
//! Each mount comes back as one of three things, chosen at dump:
//! - a bind of what ccr's own mount namespace (the host's) shows at a path, for a
//!   mount of a filesystem the host has mounted too (the root filesystem, `/lib`,
//!   sysfs, the host's `/proc`, cgroup hierarchies, ...);
//! - a new instance of its type, for a filesystem of the tree's own (its proc,
//!   devpts, mqueue; a tmpfs, whose files ccr saves);
//! - a bind of an earlier mount of the tree, for another mount of the same
//!   instance (a tmpfs bound elsewhere, a devpts's ptmx on /dev/ptmx);
//! - an external mount: a bind of something of the host the dump's caller names
//!   with a key (`--external mnt[PATH]:KEY`, also for what ccr cannot reach on
//!   the host), bound again from the path the restoring caller maps the key to
//!   (`--external mnt[KEY]:PATH`), or a tty bind handed over as an fd.
//!
//! Per-mount flags and propagation inside the tree (private, shared peer groups,
//! unbindable) come back; what ccr cannot make again is refused by name at dump.

pub mod dump;
pub mod fstree;
pub mod restore;

use crate::sys::kernel;

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("pid {pid}: {mount}: {what}, which ccr cannot save yet")]
    Unsupported { pid: i32, mount: String, what: String },
    #[error("{mount}: file {path}: {detail}")]
    Contents { mount: String, path: String, detail: String },
    #[error("{mount}: {step}: {source}")]
    Make { mount: String, step: &'static str, source: crate::sys::SysError },
    #[error("{mount}: {detail}")]
    Image { mount: String, detail: String },
    /// An external mount (`--external mnt[..]`) asked for wrongly, or mapped to
    /// nothing or to the wrong thing.
    #[error("{mount}: {detail}")]
    External { mount: String, detail: String },
}

impl MountError {
    pub fn errno(&self) -> i32 {
        match self {
            MountError::Unsupported { .. } => libc::EOPNOTSUPP,
            MountError::Make { source, .. } => source.errno(),
            MountError::External { .. } => libc::EINVAL,
            _ => libc::EIO,
        }
    }
}

/// Filesystem types restore makes a new instance of (with their options), when
/// the host has no mount of the tree's instance; an image naming another is refused.
pub const MADE_NEW: [&str; 7] = ["tmpfs", "proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2"];

/// The name of a file type (`st_mode & S_IFMT`), for messages.
pub fn kind_name(kind: u32) -> &'static str {
    match kind {
        libc::S_IFDIR => "directory",
        libc::S_IFREG => "regular file",
        libc::S_IFLNK => "symlink",
        libc::S_IFCHR => "character device",
        libc::S_IFBLK => "block device",
        libc::S_IFIFO => "FIFO",
        libc::S_IFSOCK => "socket",
        _ => "file of an unknown type",
    }
}

/// The options of a filesystem made new inside the tree's user namespace: the
/// kernel shows `uid=N` and `gid=N` (tmpfs, devpts, proc) as the initial
/// namespace's ids, and takes them as the mounter's. Err names an id the
/// namespace does not map.
pub fn options_inside(options: &[String], ids: &crate::userns::Ids) -> Result<Vec<String>, String> {
    options
        .iter()
        .map(|o| {
            let (key, v) = o.split_once('=').unwrap_or((o, ""));
            let n = v.parse::<u32>();
            match (key, n) {
                ("uid", Ok(n)) => ids.uid(n).map(|u| format!("uid={u}")).ok_or(format!("option {o}: uid {n}")),
                ("gid", Ok(n)) => ids.gid(n).map(|g| format!("gid={g}")).ok_or(format!("option {o}: gid {n}")),
                _ => Ok(o.clone()),
            }
        })
        .collect()
}

/// Whether `p` is an absolute path with no `.`, `..` or empty component.
pub fn is_plain_absolute(p: &str) -> bool {
    p == "/" || (p.starts_with('/') && p[1..].split('/').all(|c| !c.is_empty() && c != "." && c != ".."))
}

/// Per-mount flags a mount comes back with, and which of them `mount_setattr`
/// clears first.
pub const ATTR_MASK: u64 = (kernel::MOUNT_ATTR_RDONLY
    | kernel::MOUNT_ATTR_NOSUID
    | kernel::MOUNT_ATTR_NODEV
    | kernel::MOUNT_ATTR_NOEXEC
    | kernel::MOUNT_ATTR__ATIME
    | kernel::MOUNT_ATTR_NODIRATIME
    | kernel::MOUNT_ATTR_NOSYMFOLLOW) as u64;

/// MOUNT_ATTR_* of mountinfo's per-mount options ("rw,nosuid,relatime").
pub fn attrs_of(options: &str) -> u64 {
    let mut a = 0u64;
    for o in options.split(',') {
        a |= match o {
            "ro" => kernel::MOUNT_ATTR_RDONLY,
            "nosuid" => kernel::MOUNT_ATTR_NOSUID,
            "nodev" => kernel::MOUNT_ATTR_NODEV,
            "noexec" => kernel::MOUNT_ATTR_NOEXEC,
            "noatime" => kernel::MOUNT_ATTR_NOATIME,
            "strictatime" => kernel::MOUNT_ATTR_STRICTATIME,
            "nodiratime" => kernel::MOUNT_ATTR_NODIRATIME,
            "nosymfollow" => kernel::MOUNT_ATTR_NOSYMFOLLOW,
            // relatime is MOUNT_ATTR_RELATIME, which is 0.
            _ => 0,
        } as u64;
    }
    a
}

/// Whether `inner` is `outer` or below it, as paths inside one filesystem.
pub fn is_within(inner: &str, outer: &str) -> bool {
    outer == "/" || inner == outer || inner.strip_prefix(outer).is_some_and(|r| r.starts_with('/'))
}

/// `inner` relative to `outer` ("" when equal); `is_within` must hold.
pub fn below(inner: &str, outer: &str) -> String {
    inner.strip_prefix(outer).unwrap_or("").trim_start_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_mount_options() {
        let a = attrs_of("ro,nosuid,nodev,noexec,relatime");
        let want = kernel::MOUNT_ATTR_RDONLY
            | kernel::MOUNT_ATTR_NOSUID
            | kernel::MOUNT_ATTR_NODEV
            | kernel::MOUNT_ATTR_NOEXEC;
        assert_eq!(a, want as u64);
        assert_eq!(attrs_of("rw,noatime"), kernel::MOUNT_ATTR_NOATIME as u64);
    }

    #[test]
    fn paths_within() {
        assert!(is_within("/a/b", "/a") && is_within("/a", "/a") && is_within("/x", "/"));
        assert!(!is_within("/ab", "/a"));
        assert_eq!(below("/a/b/c", "/a"), "b/c");
        assert_eq!(below("/a", "/a"), "");
        assert_eq!(below("/x/y", "/"), "x/y");
    }
}
