//! What the socket kinds made again by their task (inet, packet, netlink) share:
//! the check that a socket is of its task's network namespace, the type a raw or
//! datagram socket has, integer options read from a list and set where a fresh
//! socket differs, classic BPF filters, and how a restore step's failure names
//! the socket.

use std::os::fd::BorrowedFd;
use std::os::unix::fs::MetadataExt;

use nix::errno::Errno;

use super::{FdProbe, FileDesc};
use crate::error::Result;
use crate::image::pb::{self, SockType};
use crate::restore::RestoreError;
use crate::sys::{sock, unix_sock};

/// An integer option a kind keeps: level, name, the family it applies to (0 all,
/// else AF_INET or AF_INET6), the protocol (0 any, else IPPROTO_TCP or
/// IPPROTO_UDP) and its name for errors.
pub type Opt = (i32, i32, i32, i32, &'static str);

/// Refuses a socket made in a network namespace other than its task's: its task
/// makes it again, in its own.
pub fn check_task_netns(p: &FdProbe, fd: BorrowedFd<'_>, shown: &str) -> Result<()> {
    let ns = unix_sock::net_ns_of(fd)?;
    let ns = std::fs::File::from(ns).metadata().map_err(crate::sys::SysError::path("fstat", "SIOCGSKNS"))?;
    let task_ns = format!("/proc/{}/ns/net", p.pid);
    let task_ns = std::fs::metadata(&task_ns).map_err(crate::sys::SysError::path("stat", task_ns))?;
    if (ns.dev(), ns.ino()) != (task_ns.dev(), task_ns.ino()) {
        return Err(p.refuse(&format!("{shown} of a network namespace other than its task's")));
    }
    Ok(())
}

/// The values of the options `list` of the socket; one this kernel does not have
/// for the socket's kind is not the socket's.
pub fn read_opts<'o>(fd: BorrowedFd<'_>, list: impl Iterator<Item = &'o Opt>) -> Result<Vec<pb::SockOpt>> {
    let mut out = Vec::new();
    for o in list {
        let value = match sock::get_int(fd, o.0, o.1, o.4) {
            Err(crate::sys::SysError::Call { errno: Errno::ENOPROTOOPT | Errno::EOPNOTSUPP, .. }) => continue,
            v => v?,
        };
        out.push(pb::SockOpt { level: o.0, name: o.1, value });
    }
    Ok(out)
}

/// How a restore step's failure becomes the restore's error: (step, cause).
pub type Fail<'a> = dyn Fn(&str, crate::sys::SysError) -> crate::Error + 'a;

/// Sets the saved options a fresh socket reads differently (`names` names them
/// in errors).
pub fn set_opts(fd: BorrowedFd<'_>, opts: &[pb::SockOpt], names: &[Opt], fail: &Fail<'_>) -> Result<()> {
    for o in opts {
        let name = opt_name(o, names);
        let fresh = sock::get_int(fd, o.level, o.name, "getsockopt").map_err(|e| fail(&name, e))?;
        if fresh == o.value {
            continue;
        }
        let set = match (o.level, o.name) {
            // The kernel doubles what it is given, and caps it unless forced.
            (libc::SOL_SOCKET, libc::SO_RCVBUF) => sock::set_int(fd, o.level, libc::SO_RCVBUFFORCE, o.value / 2),
            (libc::SOL_SOCKET, libc::SO_SNDBUF) => sock::set_int(fd, o.level, libc::SO_SNDBUFFORCE, o.value / 2),
            _ => sock::set_int(fd, o.level, o.name, o.value),
        };
        set.map_err(|e| fail(&name, e))?;
    }
    Ok(())
}

/// An option and its value for errors.
fn opt_name(o: &pb::SockOpt, names: &[Opt]) -> String {
    match names.iter().find(|k| k.0 == o.level && k.1 == o.name) {
        Some(k) => format!("{} = {}", k.4, o.value),
        None => format!("socket option {} at level {} = {}", o.name, o.level, o.value),
    }
}

/// The socket's classic BPF filter, if any.
pub fn read_filter(fd: BorrowedFd<'_>) -> Result<Option<pb::SockFilter>> {
    let insns = sock::filter(fd)?;
    if insns.is_empty() {
        return Ok(None);
    }
    let locked = sock::get_int(fd, libc::SOL_SOCKET, libc::SO_LOCK_FILTER, "getsockopt(SO_LOCK_FILTER)")? != 0;
    Ok(Some(pb::SockFilter { insns: sock::filter_bytes(&insns), locked }))
}

pub fn set_filter(fd: BorrowedFd<'_>, filter: Option<&pb::SockFilter>, fail: &Fail<'_>) -> Result<()> {
    let Some(f) = filter else { return Ok(()) };
    let bad = crate::sys::SysError::Call { call: "a filter of the images", errno: Errno::EINVAL };
    let insns = sock::filter_from_bytes(&f.insns).ok_or_else(|| fail("SO_ATTACH_FILTER", bad))?;
    sock::attach_filter(fd, &insns).map_err(|e| fail("SO_ATTACH_FILTER", e))?;
    if f.locked {
        sock::set_int(fd, libc::SOL_SOCKET, libc::SO_LOCK_FILTER, 1).map_err(|e| fail("SO_LOCK_FILTER", e))?;
    }
    Ok(())
}

/// SOCK_RAW or SOCK_DGRAM, the types packet and netlink sockets have; any other
/// is refused naming the socket as `shown`.
pub fn raw_or_dgram(p: &FdProbe, fd: BorrowedFd<'_>, shown: &str) -> Result<SockType> {
    match sock::get_int(fd, libc::SOL_SOCKET, libc::SO_TYPE, "getsockopt(SO_TYPE)")? {
        libc::SOCK_RAW => Ok(SockType::Raw),
        libc::SOCK_DGRAM => Ok(SockType::Dgram),
        t => Err(p.refuse(&format!("{shown} of type {t}"))),
    }
}

/// The socket(2) type of a saved raw or datagram socket.
pub fn raw_or_dgram_type(ty: i32) -> i32 {
    if ty == SockType::Raw as i32 {
        libc::SOCK_RAW
    } else {
        libc::SOCK_DGRAM
    }
}

/// A restore step's failure on file `f`, the socket `what`, as the restore's error.
pub fn step_failed(f: &FileDesc, what: String) -> impl Fn(&str, crate::sys::SysError) -> crate::Error + '_ {
    move |step, e| {
        let what = format!("file {}: {what}: {step}: {e}", f.id);
        RestoreError::Unsupported { pid: f.owner_pid, what }.into()
    }
}
