//! Local file descriptors: open, duplicate, move to exact numbers, read and write.
//! Every fd this module creates comes back as an `OwnedFd`; what it uses is borrowed.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use crate::sys::{Errno, SysError, SysResult};

fn cpath(p: &Path) -> SysResult<CString> {
    CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| SysError::Parse { path: p.into(), detail: "NUL in path".into() })
}

/// Takes ownership of an fd the kernel just returned (or reports `call`'s error).
fn owned(call: &'static str, path: Option<&Path>, r: libc::c_int) -> SysResult<OwnedFd> {
    if r < 0 {
        return Err(match path {
            Some(p) => SysError::Path { call, path: p.into(), source: std::io::Error::last_os_error() },
            None => SysError::last(call),
        });
    }
    // SAFETY: a non-negative return of an fd-creating call is a new fd nobody owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// Wraps a new fd from a syscall wrapper elsewhere in `sys`.
pub(crate) fn from_ret(call: &'static str, r: libc::c_int) -> SysResult<OwnedFd> {
    owned(call, None, r)
}

/// open(2) with raw flags and mode.
pub fn open(path: &Path, flags: i32, mode: u32) -> SysResult<OwnedFd> {
    let c = cpath(path)?;
    // SAFETY: `c` is a valid NUL-terminated string.
    owned("open", Some(path), unsafe { libc::open(c.as_ptr(), flags, mode) })
}

/// Opens the file behind one of our own fds again (a new open file description).
pub fn reopen(fd: BorrowedFd<'_>, flags: i32) -> SysResult<OwnedFd> {
    crate::sys::proc::fd::reopen(crate::sys::proc::SELF, fd.as_raw_fd(), flags)
}

/// Duplicates `fd` onto exactly `target` (dup3). The new fd belongs to the task
/// image being built, not to a Rust owner.
pub fn dup_to(fd: BorrowedFd<'_>, target: RawFd, cloexec: bool) -> SysResult<()> {
    // SAFETY: dup3 on an fd we hold; `target` is a number this process reserves.
    if unsafe { libc::dup3(fd.as_raw_fd(), target, if cloexec { libc::O_CLOEXEC } else { 0 }) } < 0 {
        return Err(SysError::last("dup3"));
    }
    Ok(())
}

/// Duplicates `fd` to the lowest free number ≥ `min` (close-on-exec).
pub fn dup_at_least(fd: BorrowedFd<'_>, min: RawFd) -> SysResult<OwnedFd> {
    // SAFETY: fcntl on a borrowed fd with integer arguments.
    owned("fcntl(F_DUPFD_CLOEXEC)", None, unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) })
}

pub fn lseek(fd: BorrowedFd<'_>, pos: u64) -> SysResult<()> {
    // SAFETY: lseek with integer arguments.
    if unsafe { libc::lseek(fd.as_raw_fd(), pos as libc::off_t, libc::SEEK_SET) } < 0 {
        return Err(SysError::last("lseek"));
    }
    Ok(())
}

/// Where the next data at or after `off` starts (SEEK_DATA): u64::MAX when only a
/// hole follows; None when the file system cannot tell.
pub fn next_data(f: &std::fs::File, off: u64) -> Option<u64> {
    // SAFETY: lseek on an fd we borrow; it only moves the file offset.
    let r = unsafe { libc::lseek(f.as_raw_fd(), off as libc::off_t, libc::SEEK_DATA) };
    match r {
        r if r >= 0 => Some(r as u64),
        _ if Errno::last() == Errno::ENXIO => Some(u64::MAX),
        _ => None,
    }
}

/// Where the hole at or after `off` starts (SEEK_HOLE; the end of the file counts
/// as one); None when the file system cannot tell.
pub fn next_hole(f: &std::fs::File, off: u64) -> Option<u64> {
    // SAFETY: lseek on an fd we borrow; it only moves the file offset.
    let r = unsafe { libc::lseek(f.as_raw_fd(), off as libc::off_t, libc::SEEK_HOLE) };
    (r >= 0).then_some(r as u64)
}

/// Marks every fd of this process in [from, to] close-on-exec (async-signal-safe:
/// for a child between fork and exec).
pub fn cloexec_range(from: u32, to: u32) {
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    // SAFETY: close_range with integer arguments; it only sets a flag on our fds.
    unsafe { libc::syscall(libc::SYS_close_range, from, to, CLOSE_RANGE_CLOEXEC) };
}

/// Closes every fd of the calling process but those in `keep` (any order).
pub fn close_all_but(mut keep: Vec<RawFd>) {
    keep.sort_unstable();
    keep.dedup();
    let mut from = 0u32;
    for k in keep {
        if k as u32 > from {
            close_range(from, k as u32 - 1);
        }
        from = k as u32 + 1;
    }
    close_range(from, u32::MAX);
}

/// Closes every fd of this process in [from, to] (the restore child's clean-up).
pub fn close_range(from: u32, to: u32) {
    if from > to {
        return;
    }
    // SAFETY: close_range with integer arguments; only this process's fds, and the
    // callers own none of them any more.
    unsafe { libc::syscall(libc::SYS_close_range, from, to, 0) };
}

/// Sets the file status flags (O_NONBLOCK, O_APPEND, ...) of an open file.
pub fn set_status_flags(fd: BorrowedFd<'_>, flags: i32) -> SysResult<()> {
    // SAFETY: fcntl with integer arguments.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) } < 0 {
        return Err(SysError::last("fcntl(F_SETFL)"));
    }
    Ok(())
}

/// flock(2) without waiting: a shared or an exclusive lock of the description.
pub fn flock(fd: BorrowedFd<'_>, exclusive: bool) -> SysResult<()> {
    let op = if exclusive { libc::LOCK_EX } else { libc::LOCK_SH };
    // SAFETY: flock on a borrowed fd.
    if unsafe { libc::flock(fd.as_raw_fd(), op | libc::LOCK_NB) } < 0 {
        return Err(SysError::last("flock"));
    }
    Ok(())
}

/// A record lock without waiting: POSIX (owned by this process) or OFD (owned by
/// the description), on `len` bytes from `start` (0: to the end of the file).
pub fn set_record_lock(fd: BorrowedFd<'_>, ofd: bool, write: bool, start: u64, len: u64) -> SysResult<()> {
    let fl = record_lock(write, start, len);
    let (cmd, call) = if ofd { (libc::F_OFD_SETLK, "fcntl(F_OFD_SETLK)") } else { (libc::F_SETLK, "fcntl(F_SETLK)") };
    // SAFETY: fcntl with a pointer to a live, initialised flock.
    if unsafe { libc::fcntl(fd.as_raw_fd(), cmd, &fl) } < 0 {
        return Err(SysError::last(call));
    }
    Ok(())
}

/// The `struct flock` of a record lock on `len` bytes from `start` (l_pid 0, as
/// OFD locks require).
pub(crate) fn record_lock(write: bool, start: u64, len: u64) -> libc::flock {
    // SAFETY: an all-zero flock is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = if write { libc::F_WRLCK } else { libc::F_RDLCK } as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = start as libc::off_t;
    fl.l_len = len as libc::off_t;
    fl
}

/// fcntl(F_SETLEASE): a read or a write lease on the description.
pub fn set_lease(fd: BorrowedFd<'_>, write: bool) -> SysResult<()> {
    let t = if write { libc::F_WRLCK } else { libc::F_RDLCK };
    // SAFETY: fcntl with integer arguments.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETLEASE, t) } < 0 {
        return Err(SysError::last("fcntl(F_SETLEASE)"));
    }
    Ok(())
}

/// Raises the soft RLIMIT_NOFILE of this process to at least `n` (up to the hard limit).
pub fn ensure_nofile(n: u64) -> SysResult<()> {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: valid out pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    if rl.rlim_cur >= n {
        return Ok(());
    }
    if rl.rlim_max < n {
        return Err(SysError::Call {
            call: "setrlimit(RLIMIT_NOFILE): fd number above the hard limit",
            errno: Errno::EMFILE,
        });
    }
    rl.rlim_cur = n;
    // SAFETY: valid in pointer.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) } != 0 {
        return Err(SysError::last("setrlimit(RLIMIT_NOFILE)"));
    }
    Ok(())
}

/// Blocks in read(2) on `fd` until something arrives or it reaches EOF.
pub fn wait_readable(fd: BorrowedFd<'_>) {
    let mut b = [0u8; 1];
    // SAFETY: reading into a local buffer.
    unsafe { libc::read(fd.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
}

/// Waits up to `ms` for `fd` to become readable; false on timeout.
pub fn poll_readable(fd: BorrowedFd<'_>, ms: i32) -> bool {
    // A caught signal ends poll early whatever SA_RESTART says: wait out the rest.
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(ms.max(0) as u64);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now()).as_millis() as i32;
        let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, left) };
        if r < 0 && Errno::last() == Errno::EINTR && left > 0 {
            continue;
        }
        return r > 0;
    }
}

pub fn write_all(fd: BorrowedFd<'_>, data: &[u8]) -> SysResult<()> {
    let mut off = 0;
    while off < data.len() {
        // SAFETY: writing from a live slice.
        let n = unsafe { libc::write(fd.as_raw_fd(), data[off..].as_ptr().cast(), data.len() - off) };
        if n < 0 && Errno::last() == Errno::EINTR {
            continue;
        }
        if n <= 0 {
            return Err(SysError::last("write"));
        }
        off += n as usize;
    }
    Ok(())
}

/// The borrowed fd as a `File`, for std's positional I/O; never closed by it.
fn as_file(fd: BorrowedFd<'_>) -> std::mem::ManuallyDrop<std::fs::File> {
    // SAFETY: the File is never dropped (ManuallyDrop), so it does not close the
    // fd it borrows, and it does not outlive the borrow (it is used in place).
    std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd.as_raw_fd()) })
}

/// pwrite of all of `data` at `off`.
pub fn write_at(fd: BorrowedFd<'_>, data: &[u8], off: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    as_file(fd).write_all_at(data, off)
}

/// pread into all of `buf` from `off`; fewer bytes only at end of file.
pub fn read_at(fd: BorrowedFd<'_>, buf: &mut [u8], off: u64) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let f = as_file(fd);
    let mut done = 0;
    while done < buf.len() {
        match f.read_at(&mut buf[done..], off + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// fcntl(2) with an integer result (F_GETPIPE_SZ, F_GET_SEALS, ...).
pub fn fcntl_int(fd: BorrowedFd<'_>, call: &'static str, cmd: i32) -> SysResult<i32> {
    // SAFETY: fcntl with integer arguments on a borrowed fd.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), cmd) };
    if r < 0 {
        return Err(SysError::last(call));
    }
    Ok(r)
}

/// stat(2) of `path` (following links, /proc's magic ones included).
pub fn stat_path(path: &Path) -> SysResult<std::fs::Metadata> {
    std::fs::metadata(path).map_err(SysError::path("stat", path))
}

/// Whether `path` lies on a filesystem the kernel makes up as it is read (procfs,
/// sysfs, cgroupfs, ...): its inodes, sizes and times say nothing about content.
pub fn on_pseudo_fs(path: &Path) -> SysResult<bool> {
    use nix::sys::statfs::{self, FsType};
    const PSEUDO: &[i64] = &[
        0x9fa0,      // proc
        0x6265_6572, // sysfs
        0x0027_e0eb, // cgroup
        0x6367_7270, // cgroup2
        0x6462_6720, // debugfs
        0x7472_6163, // tracefs
        0x7363_6673, // securityfs
        0xcafe_4a11, // bpf
        0x6265_6570, // configfs
        0x6165_676c, // pstore
        0xde5e_81e4, // efivarfs
        0x4249_4e4d, // binfmt_misc
        0xf97c_ff8c, // selinuxfs
        0x6573_5546, // fusectl
    ];
    let st =
        statfs::statfs(path).map_err(|e| SysError::Path { call: "statfs", path: path.into(), source: e.into() })?;
    let FsType(t) = st.filesystem_type();
    Ok(PSEUDO.contains(&t))
}

/// Whether `fd` is open on a devpts filesystem.
pub fn on_devpts(fd: BorrowedFd<'_>) -> SysResult<bool> {
    let st = nix::sys::statfs::fstatfs(fd).map_err(|e| SysError::Call { call: "fstatfs", errno: e })?;
    Ok(st.filesystem_type() == nix::sys::statfs::DEVPTS_SUPER_MAGIC)
}

/// fstat(2).
pub fn stat(fd: BorrowedFd<'_>) -> SysResult<libc::stat> {
    // SAFETY: an all-zero stat is a valid out buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat fills `st`.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 {
        return Err(SysError::last("fstat"));
    }
    Ok(st)
}

/// Truncates or extends a file to `size`.
pub fn set_len(fd: BorrowedFd<'_>, size: u64) -> SysResult<()> {
    // SAFETY: ftruncate with integer arguments.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), size as libc::off_t) } != 0 {
        return Err(SysError::last("ftruncate"));
    }
    Ok(())
}

/// A new memfd of `size` bytes (`flags`: MFD_*; close-on-exec is the caller's).
pub fn memfd(name: &str, size: u64, flags: u32) -> SysResult<OwnedFd> {
    let c = CString::new(name).map_err(|_| SysError::Parse { path: name.into(), detail: "NUL in name".into() })?;
    // SAFETY: valid C string.
    let fd = owned("memfd_create", None, unsafe { libc::memfd_create(c.as_ptr(), flags) })?;
    set_len(fd.as_fd(), size)?;
    Ok(fd)
}

/// The seals of a memfd (F_GET_SEALS).
pub fn seals(fd: BorrowedFd<'_>) -> SysResult<u32> {
    Ok(fcntl_int(fd, "fcntl(F_GET_SEALS)", libc::F_GET_SEALS)? as u32)
}

pub fn add_seals(fd: BorrowedFd<'_>, seals: u32) -> SysResult<()> {
    // SAFETY: fcntl with integer arguments.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals as libc::c_int) } < 0 {
        return Err(SysError::last("fcntl(F_ADD_SEALS)"));
    }
    Ok(())
}

/// fd number `n` of this process as a borrowed fd. For the numbers a restore child
/// put in place for the task it becomes: they belong to that task image, which
/// closes nothing before ccr takes it over.
pub fn installed(n: RawFd) -> BorrowedFd<'static> {
    // SAFETY: `n` was installed with `dup_to` in this process and stays open for
    // the rest of the restore child's life (see above); callers only pass such fds.
    unsafe { BorrowedFd::borrow_raw(n) }
}

/// openat(2) relative to directory `dir`.
pub fn openat(dir: BorrowedFd<'_>, name: &Path, flags: i32, mode: u32) -> SysResult<OwnedFd> {
    let c = cpath(name)?;
    // SAFETY: `c` is a valid NUL-terminated string; `dir` is a borrowed fd.
    owned("openat", Some(name), unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags, mode) })
}

/// An fd the caller of ccr handed over (`--inherit-fd`), checked to be open.
pub fn inherited(n: RawFd) -> SysResult<BorrowedFd<'static>> {
    // SAFETY: F_GETFD only reads the fd's flags.
    if n < 0 || unsafe { libc::fcntl(n, libc::F_GETFD) } < 0 {
        return Err(SysError::Call { call: "inherited fd is not open", errno: Errno::EBADF });
    }
    // SAFETY: the caller handed the fd to ccr for the whole run; ccr never closes it.
    Ok(unsafe { BorrowedFd::borrow_raw(n) })
}

/// The highest fd number this process has open (-1 when none).
pub fn highest_open() -> RawFd {
    crate::sys::proc::fd::list(crate::sys::proc::SELF).ok().and_then(|v| v.into_iter().max()).unwrap_or(-1)
}

/// Whether the file `fd` is open on has extended attributes (of any namespace
/// the caller can list).
pub fn has_xattrs(fd: BorrowedFd<'_>) -> SysResult<bool> {
    // SAFETY: a size query (NULL buffer, size 0) writes nothing.
    let n = unsafe { libc::flistxattr(fd.as_raw_fd(), std::ptr::null_mut(), 0) };
    if n < 0 {
        let errno = Errno::last();
        // A filesystem without xattrs has none to lose.
        if errno == Errno::EOPNOTSUPP {
            return Ok(false);
        }
        return Err(SysError::Call { call: "flistxattr", errno });
    }
    Ok(n > 0)
}

/// The names in directory `dir` (without "." and ".."), sorted; a read error is an
/// error, never a shorter list.
pub fn dir_names(dir: BorrowedFd<'_>) -> SysResult<Vec<std::ffi::OsString>> {
    use std::os::unix::ffi::OsStrExt;
    let flags = nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC;
    let mut d = nix::dir::Dir::openat(Some(dir.as_raw_fd()), ".", flags, nix::sys::stat::Mode::empty())
        .map_err(|errno| SysError::Call { call: "opendir", errno })?;
    let mut out = Vec::new();
    for e in d.iter() {
        let e = e.map_err(|errno| SysError::Call { call: "readdir", errno })?;
        let n = std::ffi::OsStr::from_bytes(e.file_name().to_bytes());
        if n != "." && n != ".." {
            out.push(n.to_os_string());
        }
    }
    out.sort();
    Ok(out)
}

/// Waits up to `ms` for `first` to be readable (None) or any of `others` to be
/// readable or hung up (their indexes).
pub fn poll_in(first: BorrowedFd<'_>, others: &[BorrowedFd<'_>], ms: i32) -> Option<Vec<usize>> {
    let mut p: Vec<libc::pollfd> = std::iter::once(first)
        .chain(others.iter().copied())
        .map(|f| libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLIN, revents: 0 })
        .collect();
    // SAFETY: a live array of pollfds of that length.
    let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, ms) };
    if r > 0 && p[0].revents != 0 {
        return None;
    }
    Some((1..p.len()).filter(|&i| r > 0 && p[i].revents != 0).map(|i| i - 1).collect())
}

/// One read(2) into `buf`: how many bytes, or None on an error.
pub fn read_some(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: reading into the live buffer `buf`.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    (n >= 0).then_some(n as usize)
}
