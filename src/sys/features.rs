//! Probes of kernel features, for `ccr check`. Each probe is cheap and side-effect free.

use crate::sys::kernel;

/// CONFIG_CHECKPOINT_RESTORE: PR_GET_TID_ADDRESS only exists with it.
pub fn checkpoint_restore() -> bool {
    let mut addr: u64 = 0;
    // SAFETY: prctl writes one pointer-sized value into `addr`.
    unsafe { libc::prctl(kernel::PR_GET_TID_ADDRESS as i32, &mut addr as *mut u64, 0, 0, 0) == 0 }
}

/// pidfd_open + pidfd_getfd on ourselves.
pub fn pidfd_getfd() -> bool {
    // SAFETY: pidfd_open with our own pid; the fds returned are closed below.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
    if pidfd < 0 {
        return false;
    }
    // SAFETY: duplicating our own stdin-or-whatever fd 0 (or failing with EBADF).
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, 0, 0) };
    // SAFETY: closing fds we own.
    unsafe {
        if fd >= 0 {
            libc::close(fd as i32);
        }
        libc::close(pidfd as i32);
    }
    fd >= 0 || nix::errno::Errno::last() == nix::errno::Errno::EBADF
}

/// clone3 exists (ENOSYS otherwise); a zero-sized args struct gives EINVAL.
pub fn clone3() -> bool {
    // SAFETY: size 0 is rejected before anything is read or created.
    let r = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) };
    r < 0 && nix::errno::Errno::last() != nix::errno::Errno::ENOSYS
}

/// userfaultfd, user-mode faults only (what an unprivileged lazy restore would need).
pub fn userfaultfd() -> bool {
    // SAFETY: creates an fd (closed at once) or fails.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | 1) };
    if fd >= 0 {
        // SAFETY: closing our own fd.
        unsafe { libc::close(fd as i32) };
        return true;
    }
    false
}

/// prctl option of Linux 6.15 (newer than the uapi headers bindgen reads here):
/// timer_create gives the ID its out-argument holds. Its GET sub-option is 2.
pub(crate) const PR_TIMER_CREATE_RESTORE_IDS: u32 = 77;

/// Whether timer_create can be asked for an ID (what restoring POSIX timers needs).
pub fn timer_restore_ids() -> bool {
    // SAFETY: the GET sub-option only reads this process's setting.
    unsafe { libc::prctl(PR_TIMER_CREATE_RESTORE_IDS as i32, 2, 0, 0, 0) >= 0 }
}

/// kcmp(KCMP_FILE) on two of our own fds.
pub fn kcmp() -> bool {
    let Ok((r, _w)) = crate::sys::pipe::pipe() else { return false };
    let me = std::process::id() as i32;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&r);
    crate::sys::process::same_file(me, fd, me, fd).unwrap_or(false)
}

/// /proc/self/pagemap reads, with frame numbers (root).
pub fn pagemap() -> bool {
    crate::sys::pagemap::zero_pfn() != 0
}

/// The fd-based mount API restore builds a mount namespace with (fsopen, fsmount,
/// open_tree, move_mount, mount_setattr: Linux 5.12) and openat2 (5.6).
pub fn mount_api() -> bool {
    let fs = super::mount::new_fs("tmpfs", "ccr-check", &[]);
    let beneath = fs.as_ref().is_ok_and(|m| {
        use std::os::fd::AsFd;
        super::mount::path_beneath(m.as_fd(), std::path::Path::new("")).is_ok()
            && super::mount::set_attrs(m.as_fd(), 0, 0, 0).is_ok()
    });
    fs.is_ok() && beneath
}
