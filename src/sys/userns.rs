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

/// The user namespace's own sysctls (/proc/sys/user/*: the limits on namespaces
/// and inotify/fanotify objects its users may make), by name.
pub fn sysctl_names() -> SysResult<Vec<String>> {
    let dir = Path::new("/proc/sys/user");
    let rd = std::fs::read_dir(dir).map_err(SysError::path("readdir", dir))?;
    let mut names: Vec<String> = rd.flatten().filter_map(|e| e.file_name().into_string().ok()).collect();
    names.sort();
    Ok(names)
}

/// Bytes a value of /proc/sys/user/NAME may have (an int).
const VALUE_MAX: usize = 31;

/// The values of /proc/sys/user/NAME for each of `names` as `pid`'s user
/// namespace has them (None: no such file there). The kernel shows a reader its
/// own namespace's values, so a forked child of ccr enters that namespace and
/// reads them; a thread could not (setns to a user namespace takes a
/// single-threaded process), and ccr may have threads: between fork and exit the
/// child makes only system calls, into buffers made before the fork.
pub fn sysctls_inside(pid: i32, names: &[String]) -> SysResult<Vec<Option<String>>> {
    use std::io::Read;
    let ns = open_ns(pid, "user")?;
    let paths: Vec<std::ffi::CString> = names
        .iter()
        .map(|n| std::ffi::CString::new(format!("/proc/sys/user/{n}")))
        .collect::<Result<_, _>>()
        .map_err(|_| SysError::Task { pid, detail: "a sysctl name with a NUL".into() })?;
    let rec = VALUE_MAX + 1;
    let mut buf = vec![0u8; rec * names.len()];
    let (rd, wr) = crate::sys::pipe::pipe()?;
    // SAFETY: the child makes only system calls (setns, open, read, close, write,
    // _exit) on fds, C strings and a buffer that exist before the fork; it
    // allocates nothing and takes no lock another thread might hold.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(SysError::last("fork"));
    }
    if child == 0 {
        // SAFETY: see above; each record is `rec` bytes of `buf`: a length (255: no
        // such file) and up to VALUE_MAX bytes.
        unsafe {
            if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWUSER) < 0 {
                libc::_exit(2);
            }
            for (i, p) in paths.iter().enumerate() {
                let r = buf.as_mut_ptr().add(i * rec);
                let fd = libc::open(p.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                let n = if fd < 0 { -1 } else { libc::read(fd, r.add(1).cast(), VALUE_MAX) };
                if fd >= 0 {
                    libc::close(fd);
                }
                *r = if n < 0 { 255 } else { n as u8 };
            }
            let n = libc::write(wr.as_raw_fd(), buf.as_ptr().cast(), buf.len());
            libc::_exit(if n == buf.len() as isize { 0 } else { 3 });
        }
    }
    drop(wr);
    let got = std::fs::File::from(rd).read_exact(&mut buf);
    let status = crate::sys::wait::reap(child)?;
    if got.is_err() || status.is_none_or(|s| s.shell_code() != 0) {
        return Err(SysError::Task {
            pid,
            detail: format!("reading its user namespace's /proc/sys/user from inside it failed ({status:?})"),
        });
    }
    Ok(buf
        .chunks(rec)
        .map(|r| match r[0] as usize {
            255 => None,
            n => Some(String::from_utf8_lossy(&r[1..1 + n.min(VALUE_MAX)]).trim().to_string()),
        })
        .collect())
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
