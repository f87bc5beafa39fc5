//! POSIX message queues of an IPC namespace: listed (through a private mqueue
//! instance of that namespace, never attached anywhere) with their attributes,
//! and made again by name. Their messages cannot be read without taking them off
//! the queue, so a dump refuses a queue that holds any rather than lose them.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::{SysError, SysResult};

/// One queue as the namespace holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Queue {
    /// Without the leading '/'.
    pub name: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub maxmsg: i64,
    pub msgsize: i64,
    /// Messages waiting in it.
    pub waiting: i64,
    /// A process is registered for notification (mq_notify).
    pub notify: bool,
}

/// Every queue of the IPC namespace the calling thread is in.
pub fn list() -> SysResult<Vec<Queue>> {
    // An mqueue instance shows the queues of the IPC namespace it is made in.
    let mnt = super::mount::new_fs("mqueue", "ccr", &[])?;
    let names = super::fd::dir_names(mnt.as_fd())?;
    names.into_iter().map(|n| queue(mnt.as_fd(), n.to_string_lossy().into_owned())).collect()
}

fn queue(dir: BorrowedFd<'_>, name: String) -> SysResult<Queue> {
    let f = super::fd::openat(dir, Path::new(&name), libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC, 0)?;
    let st = super::fd::stat(f.as_fd())?;
    // SAFETY: mq_attr is a plain C struct mq_getattr fills.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    // SAFETY: an fd of a queue's inode is its message queue descriptor.
    if unsafe { libc::mq_getattr(f.as_raw_fd(), &mut attr) } < 0 {
        return Err(SysError::last("mq_getattr"));
    }
    // "QSIZE:n NOTIFY:n SIGNO:n NOTIFY_PID:n"
    let mut buf = [0u8; 256];
    let n = super::fd::read_at(f.as_fd(), &mut buf, 0).map_err(SysError::path("read", name.clone()))?;
    let text = String::from_utf8_lossy(&buf[..n]);
    let notify_pid = text.split_whitespace().find_map(|w| w.strip_prefix("NOTIFY_PID:")?.parse::<i64>().ok());
    Ok(Queue {
        name,
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        maxmsg: attr.mq_maxmsg,
        msgsize: attr.mq_msgsize,
        waiting: attr.mq_curmsgs,
        notify: notify_pid.unwrap_or(0) != 0,
    })
}

/// Makes queue `q` (empty) in the calling thread's IPC namespace.
pub fn create(q: &Queue) -> SysResult<()> {
    let path = CString::new(format!("/{}", q.name))
        .map_err(|_| SysError::Task { pid: 0, detail: "a NUL in a queue name".into() })?;
    // SAFETY: mq_attr is a plain C struct.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    attr.mq_maxmsg = q.maxmsg;
    attr.mq_msgsize = q.msgsize;
    let flags = libc::O_CREAT | libc::O_EXCL | libc::O_RDONLY | libc::O_CLOEXEC;
    // SAFETY: mq_open with a NUL-terminated name, a mode and a live attr.
    let fd = unsafe { libc::mq_open(path.as_ptr(), flags, q.mode as libc::mode_t, &attr as *const libc::mq_attr) };
    if fd < 0 {
        return Err(SysError::Path {
            call: "mq_open",
            path: format!("/{}", q.name).into(),
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: the queue descriptor mq_open just returned is an fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: fchown and fchmod on that fd (after chown: it clears set-id bits).
    if unsafe { libc::fchown(fd.as_raw_fd(), q.uid, q.gid) } < 0 || unsafe { libc::fchmod(fd.as_raw_fd(), q.mode) } < 0
    {
        return Err(SysError::Path {
            call: "fchown/fchmod",
            path: format!("/{}", q.name).into(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}
