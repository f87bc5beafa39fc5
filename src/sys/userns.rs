//! User namespaces: who owns a namespace (the nsfs ioctls NS_GET_USERNS and
//! NS_GET_OWNER_UID), a namespace's id maps and setgroups setting as
//! /proc/PID/{uid_map,gid_map,setgroups} show them, and writing them for a
//! child made in a new user namespace.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::sys::{fd, proc, Errno, SysError, SysResult};

/// One line of an id map: `count` ids from `inside` (in the namespace) are the
/// ids from `outside` (in the namespace of the reader, ccr's: the host's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// The id `outside` (host) as the namespace with `map` sees it; None when the map
/// does not hold it.
pub fn to_inside(map: &[Extent], outside: u32) -> Option<u32> {
    map.iter().find_map(|e| {
        let off = outside.checked_sub(e.outside)?;
        (off < e.count).then(|| e.inside + off)
    })
}

/// Parses the text of a uid_map or gid_map file (`path` names it in errors).
pub fn parse_map(path: &Path, text: &str) -> SysResult<Vec<Extent>> {
    let bad = |detail: String| SysError::Parse { path: path.into(), detail };
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [a, b, c] = f[..] else { return Err(bad(format!("line {line:?} is not three numbers"))) };
        let num = |s: &str| s.parse::<u32>().map_err(|_| bad(format!("{s:?} in line {line:?} is not an id")));
        out.push(Extent { inside: num(a)?, outside: num(b)?, count: num(c)? });
    }
    Ok(out)
}

/// The text a uid_map or gid_map file takes for `map`.
pub fn map_text(map: &[Extent]) -> String {
    map.iter().map(|e| format!("{} {} {}\n", e.inside, e.outside, e.count)).collect()
}

/// The uid map (`"uid_map"`) or gid map (`"gid_map"`) of `pid`'s user namespace.
pub fn read_map(pid: i32, which: &str) -> SysResult<Vec<Extent>> {
    let p = proc::path(pid, which);
    let text = std::fs::read_to_string(&p).map_err(SysError::path("read", &p))?;
    parse_map(&p, &text)
}

/// Whether `pid`'s user namespace denies setgroups (/proc/PID/setgroups "deny").
pub fn setgroups_denied(pid: i32) -> SysResult<bool> {
    let p = proc::path(pid, "setgroups");
    let text = std::fs::read_to_string(&p).map_err(SysError::path("read", &p))?;
    match text.trim() {
        "allow" => Ok(false),
        "deny" => Ok(true),
        other => Err(SysError::Parse { path: p, detail: format!("{other:?} is neither allow nor deny") }),
    }
}

/// Writes the maps of the new user namespace child `pid` is in, in the order the
/// kernel demands: setgroups before gid_map (writing "deny" is only allowed
/// while no gid map is set), and each map once.
pub fn write_maps(pid: i32, uid_map: &[Extent], gid_map: &[Extent], setgroups_deny: bool) -> SysResult<()> {
    let write = |file: &str, text: &str| {
        let p = proc::path(pid, file);
        std::fs::write(&p, text).map_err(SysError::path("write", p))
    };
    write("setgroups", if setgroups_deny { "deny" } else { "allow" })?;
    write("gid_map", &map_text(gid_map))?;
    write("uid_map", &map_text(uid_map))
}

/// The inode number of a namespace file (what tells two namespaces apart).
fn ns_inode(f: &OwnedFd) -> SysResult<u64> {
    use std::os::fd::AsFd;
    Ok(fd::stat(f.as_fd())?.st_ino)
}

fn open_ns(pid: i32, kind: &str) -> SysResult<OwnedFd> {
    let p = proc::path(pid, &format!("ns/{kind}"));
    fd::open(&p, libc::O_RDONLY | libc::O_CLOEXEC, 0)
}

/// The inode of the user namespace that owns `pid`'s namespace of `kind`
/// (ioctl NS_GET_USERNS on /proc/PID/ns/KIND), to compare with [`user_ns_of`].
pub fn owner_of(pid: i32, kind: &str) -> SysResult<u64> {
    let ns = open_ns(pid, kind)?;
    // NS_GET_USERNS: _IO(0xb7, 0x1); returns a new fd on the owning user namespace.
    let req = nix::request_code_none!(0xb7, 0x1);
    // SAFETY: the ioctl takes no argument and returns an fd or -1.
    let r = unsafe { libc::ioctl(ns.as_raw_fd(), req as _) };
    if r < 0 {
        return Err(SysError::Pid { call: "ioctl(NS_GET_USERNS)", pid, errno: Errno::last() });
    }
    // SAFETY: the kernel just gave us this fd; nothing else owns it.
    let owner = unsafe { OwnedFd::from_raw_fd(r) };
    ns_inode(&owner)
}

/// The inode of the parent of `pid`'s user namespace (ioctl NS_GET_PARENT).
pub fn parent_of_user_ns(pid: i32) -> SysResult<u64> {
    let ns = open_ns(pid, "user")?;
    // NS_GET_PARENT: _IO(0xb7, 0x2); returns a new fd on the parent namespace.
    let req = nix::request_code_none!(0xb7, 0x2);
    // SAFETY: the ioctl takes no argument and returns an fd or -1.
    let r = unsafe { libc::ioctl(ns.as_raw_fd(), req as _) };
    if r < 0 {
        return Err(SysError::Pid { call: "ioctl(NS_GET_PARENT)", pid, errno: Errno::last() });
    }
    // SAFETY: the kernel just gave us this fd; nothing else owns it.
    let parent = unsafe { OwnedFd::from_raw_fd(r) };
    ns_inode(&parent)
}

/// The inode of `pid`'s user namespace.
pub fn user_ns_of(pid: i32) -> SysResult<u64> {
    ns_inode(&open_ns(pid, "user")?)
}

/// The uid (as ccr sees it) of the user that created `pid`'s user namespace
/// (ioctl NS_GET_OWNER_UID).
pub fn owner_uid(pid: i32) -> SysResult<u32> {
    let ns = open_ns(pid, "user")?;
    // NS_GET_OWNER_UID: _IO(0xb7, 0x4); writes a uid_t to the argument.
    let req = nix::request_code_none!(0xb7, 0x4);
    let mut uid: libc::uid_t = 0;
    // SAFETY: the kernel writes one uid_t through the pointer.
    if unsafe { libc::ioctl(ns.as_raw_fd(), req as _, &mut uid as *mut libc::uid_t) } < 0 {
        return Err(SysError::Pid { call: "ioctl(NS_GET_OWNER_UID)", pid, errno: Errno::last() });
    }
    Ok(uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_parse_and_translate() {
        let p = Path::new("/proc/1/uid_map");
        let m = parse_map(p, "         0     100000      65536\n    70000       5000          1\n").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(to_inside(&m, 100000), Some(0));
        assert_eq!(to_inside(&m, 101000), Some(1000));
        assert_eq!(to_inside(&m, 165535), Some(65535));
        assert_eq!(to_inside(&m, 165536), None);
        assert_eq!(to_inside(&m, 5000), Some(70000));
        assert_eq!(to_inside(&m, 0), None);
        assert_eq!(map_text(&m), "0 100000 65536\n70000 5000 1\n");
        // The initial namespace's map holds every id.
        let all = parse_map(p, "0 0 4294967295\n").unwrap();
        assert_eq!(to_inside(&all, 4294967294), Some(4294967294));
        assert!(parse_map(p, "0 1\n").is_err());
        assert!(parse_map(p, "0 x 1\n").is_err());
    }
}
