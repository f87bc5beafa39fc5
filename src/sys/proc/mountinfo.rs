//! /proc/PID/mountinfo: the mounts a task sees. The one parser of it: cgroup
//! discovery and inotify's handle resolution both read it through here.

use std::path::PathBuf;

use crate::sys::SysResult;

/// One mount.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mount {
    pub id: u32,
    pub parent: u32,
    pub major: u32,
    pub minor: u32,
    /// The path inside the filesystem that the mount shows at its mount point.
    pub root: String,
    pub mount_point: PathBuf,
    pub mount_options: String,
    pub fstype: String,
    pub source: String,
    pub super_options: String,
    /// Its peer group (`shared:N`), 0 when it is not shared.
    pub shared: u32,
    /// The peer group it receives from (`master:N`), 0 when it is no slave.
    pub master: u32,
    pub unbindable: bool,
}

/// Undoes the kernel's octal escapes (`\040` for a space).
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_line(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let l: Vec<&str> = left.split(' ').collect();
    let r: Vec<&str> = right.split(' ').collect();
    if l.len() < 6 || r.len() < 3 {
        return None;
    }
    let (major, minor) = l[2].split_once(':')?;
    let tagged = |tag: &str| l[6..].iter().find_map(|f| f.strip_prefix(tag)?.parse().ok()).unwrap_or(0);
    Some(Mount {
        shared: tagged("shared:"),
        master: tagged("master:"),
        unbindable: l[6..].contains(&"unbindable"),
        id: l[0].parse().ok()?,
        parent: l[1].parse().ok()?,
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        root: unescape(l[3]),
        mount_point: PathBuf::from(unescape(l[4])),
        mount_options: l[5].to_string(),
        fstype: r[0].to_string(),
        source: unescape(r[1]),
        super_options: r[2].to_string(),
    })
}

/// Every well-formed line of a mountinfo text.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

pub fn read(pid: i32) -> SysResult<Vec<Mount>> {
    Ok(parse(&super::read_text(&super::path(pid, "mountinfo"))?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines() {
        let m = super::parse(
            "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
             50 31 0:29 /lxc /mnt/my\\040cpu rw shared:5 - cgroup cgroup rw,cpu,cpuacct\nbroken\n",
        );
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].id, m[0].parent, m[0].major, m[0].minor), (31, 23, 0, 28));
        assert_eq!(m[1].mount_point, std::path::PathBuf::from("/mnt/my cpu"));
        assert_eq!((m[1].root.as_str(), m[1].fstype.as_str()), ("/lxc", "cgroup"));
        assert_eq!(m[1].super_options, "rw,cpu,cpuacct");
        assert_eq!((m[0].shared, m[1].shared, m[1].master), (0, 5, 0));
    }
}
