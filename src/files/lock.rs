//! File locks: flock, POSIX and OFD record locks, leases. The kernel shows, in the
//! fdinfo of an fd, the locks its description holds (flock, OFD, lease: they go
//! with the description, so every holder shows them) and the POSIX locks the task
//! took through it (they belong to the task's fd table).
//!
//! Restore takes each lock again without waiting: flock and OFD locks right after
//! the description is opened; a task's POSIX locks, and a lease, in the task
//! itself once its fd table is final (closing any fd of a file drops the task's
//! POSIX locks on it; a lease's break signal goes to the process that took it,
//! naming the fd it was taken through). A lock someone else took meanwhile fails
//! the restore, naming it.

use std::os::fd::BorrowedFd;

use super::FdProbe;
use crate::error::Result;
use crate::image::pb;
use crate::restore::RestoreError;
use crate::sys::remote::Remote;
use crate::sys::{fd, SysError};

/// The locks seen through one fd.
#[derive(Default)]
pub struct Seen {
    /// flock and OFD locks of the description.
    pub description: Vec<pb::FileLock>,
    /// POSIX locks of the task.
    pub posix: Vec<pb::FileLock>,
    /// Leases of the description, with the pid that took each.
    pub leases: Vec<(i32, pb::FileLock)>,
}

/// The locks fd `p` shows; what ccr cannot take again is refused by name.
pub fn dump(p: &FdProbe) -> Result<Seen> {
    let lines = p.need(p.info.locks(), "lock line of a known format")?;
    let mut seen = Seen::default();
    for l in lines {
        let refuse = |what: &str| p.refuse(&format!("{what} ({})", l.text));
        let write = match l.mode.as_str() {
            "READ" => false,
            "WRITE" => true,
            _ => return Err(refuse("a lock being broken or released")),
        };
        let (start, len) = match l.end {
            None => (l.start, 0),
            Some(end) if end >= l.start => (l.start, end - l.start + 1),
            Some(_) => return Err(refuse("a lock with an empty range")),
        };
        let kind = match (l.class.as_str(), l.state.as_str()) {
            ("FLOCK", "ADVISORY") => pb::LockKind::Flock,
            ("POSIX", "ADVISORY") => pb::LockKind::Posix,
            ("OFDLCK", "ADVISORY") => pb::LockKind::Ofd,
            ("LEASE", "ACTIVE") => pb::LockKind::Lease,
            ("LEASE", _) => return Err(refuse("a file lease being broken")),
            _ => return Err(refuse("a kind of file lock ccr does not know")),
        };
        let lock = pb::FileLock { kind: kind as i32, write, start, len };
        match kind {
            pb::LockKind::Posix => seen.posix.push(lock),
            pb::LockKind::Lease => seen.leases.push((l.pid, lock)),
            _ => seen.description.push(lock),
        }
    }
    Ok(seen)
}

/// What a lock is, for logs and errors ("POSIX write lock on bytes 5-14").
pub fn describe(l: &pb::FileLock) -> String {
    let mode = if l.write { "write" } else { "read" };
    let range = match (l.start, l.len) {
        (0, 0) => "the whole file".to_string(),
        (s, 0) => format!("bytes {s} to the end"),
        (s, n) => format!("bytes {s}-{}", s + n - 1),
    };
    match pb::LockKind::try_from(l.kind).unwrap_or(pb::LockKind::Unspecified) {
        pb::LockKind::Flock => format!("flock {mode} lock"),
        pb::LockKind::Lease => format!("{mode} lease"),
        pb::LockKind::Posix => format!("POSIX {mode} lock on {range}"),
        pb::LockKind::Ofd => format!("OFD {mode} lock on {range}"),
        pb::LockKind::Unspecified => "lock of no kind".into(),
    }
}

fn take_one(fd: BorrowedFd<'_>, l: &pb::FileLock) -> std::result::Result<(), SysError> {
    match pb::LockKind::try_from(l.kind).unwrap_or(pb::LockKind::Unspecified) {
        pb::LockKind::Flock => fd::flock(fd, l.write),
        pb::LockKind::Posix => fd::set_record_lock(fd, false, l.write, l.start, l.len),
        pb::LockKind::Ofd => fd::set_record_lock(fd, true, l.write, l.start, l.len),
        pb::LockKind::Lease => fd::set_lease(fd, l.write),
        // The image conversion lets no other value through.
        pb::LockKind::Unspecified => unreachable!("validated when the image was read"),
    }
}

/// Takes a description's `locks` again through `fd`, its fresh open (file
/// `file_id` of kind `what`, first held by `pid`).
pub fn take(fd: BorrowedFd<'_>, locks: &[pb::FileLock], pid: i32, file_id: u32, what: &str) -> Result<()> {
    for l in locks {
        take_one(fd, l).map_err(|e| refused(pid, file_id, what, l, e))?;
    }
    Ok(())
}

/// Takes a task's own locks again, in the task (POSIX locks, a lease): through
/// its fd `fd` of file `file_id`, once nothing will close an fd of the task any more.
pub fn take_in_task(r: &mut Remote, pid: i32, fd: i32, file_id: u32, locks: &[pb::FileLock]) -> Result<()> {
    for l in locks {
        let taken = if l.kind == pb::LockKind::Lease as i32 {
            r.set_lease(fd, l.write)
        } else {
            r.set_posix_lock(fd, l.write, l.start, l.len)
        };
        taken.map_err(|e| refused(pid, file_id, &format!("fd {fd}"), l, e))?;
    }
    Ok(())
}

fn refused(pid: i32, file_id: u32, what: &str, l: &pb::FileLock, e: SysError) -> crate::Error {
    RestoreError::Lock {
        pid,
        file_id,
        what: what.to_string(),
        lock: describe(l),
        detail: match e.errno() {
            libc::EAGAIN | libc::EACCES => "another process holds a conflicting lock or open".into(),
            _ => e.to_string(),
        },
    }
    .into()
}
