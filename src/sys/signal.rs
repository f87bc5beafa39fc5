//! Signals: the kernel's struct sigaction (what rt_sigaction reads and writes, not
//! libc's), sigaltstack's stack_t and itimerval, and the restore child's own
//! signal set-up.

use crate::sys::kernel;

/// rt_sigaction's struct (the kernel's, not libc's): handler, flags, restorer and
/// mask. bindgen makes the handler and restorer function pointers; they are
/// addresses in another task here, so the struct is written once with integers and
/// its layout checked against bindgen's.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<SigAction>() == size_of::<kernel::sigaction>());
    assert!(offset_of!(SigAction, handler) == offset_of!(kernel::sigaction, sa_handler));
    assert!(offset_of!(SigAction, flags) == offset_of!(kernel::sigaction, sa_flags));
    assert!(offset_of!(SigAction, restorer) == offset_of!(kernel::sigaction, sa_restorer));
    assert!(offset_of!(SigAction, mask) == offset_of!(kernel::sigaction, sa_mask));
};
/// sigaltstack's struct.
pub type AltStack = kernel::stack_t;
/// getitimer/setitimer's struct (seconds and microseconds).
pub type ITimerVal = kernel::__kernel_old_itimerval;

/// timer_settime/timer_gettime's struct (seconds and nanoseconds).
pub type ITimerSpec = kernel::__kernel_itimerspec;
/// timer_create's struct.
pub type SigEvent = kernel::sigevent;

const _: () = assert!(std::mem::size_of::<ITimerSpec>() == 32);
const _: () = assert!(std::mem::size_of::<SigEvent>() == 64);

const NS: u64 = 1_000_000_000;

/// A time left and an interval, in nanoseconds, as an itimerspec.
pub fn itimerspec(value_ns: u64, interval_ns: u64) -> ITimerSpec {
    let ts = |ns: u64| kernel::__kernel_timespec { tv_sec: (ns / NS) as i64, tv_nsec: (ns % NS) as i64 };
    ITimerSpec { it_value: ts(value_ns), it_interval: ts(interval_ns) }
}

/// An itimerspec's (time left, interval) in nanoseconds.
pub fn itimerspec_ns(v: &ITimerSpec) -> (u64, u64) {
    let ns = |t: &kernel::__kernel_timespec| t.tv_sec.max(0) as u64 * NS + t.tv_nsec.max(0) as u64;
    (ns(&v.it_value), ns(&v.it_interval))
}

/// The sigevent of a timer: how it notifies (SIGEV_*), which signal with which
/// value, and for SIGEV_THREAD_ID the thread.
pub fn sigevent(notify: i32, signo: i32, value: u64, tid: i32) -> SigEvent {
    let mut ev = SigEvent {
        sigev_value: kernel::sigval { sival_ptr: value as *mut libc::c_void },
        sigev_signo: signo,
        sigev_notify: notify,
        _sigev_un: kernel::sigevent__bindgen_ty_1 { _pad: [0; 12] },
    };
    ev._sigev_un._tid = tid;
    ev
}

/// The size of the kernel's sigset_t (rt_sigaction's last argument).
pub const SIGSET_SIZE: u64 = 8;

const _: () = assert!(std::mem::size_of::<AltStack>() == 24);
const _: () = assert!(std::mem::size_of::<ITimerVal>() == 32);

/// The bit of signal `sig` in a kernel sigset.
pub const fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// Every signal but SIGKILL and SIGSTOP (which cannot be blocked anyway).
pub const ALL: u64 = !(bit(libc::SIGKILL) | bit(libc::SIGSTOP));

/// Every signal number rt_sigaction accepts an action for (not SIGKILL, SIGSTOP).
pub fn catchable() -> impl Iterator<Item = i32> {
    (1..=64).filter(|&s| s != libc::SIGKILL && s != libc::SIGSTOP)
}

/// An all-default action (SIG_DFL, no flags, no mask).
pub fn default_action() -> SigAction {
    SigAction::default()
}

/// Whether an action is anything but the plain default.
pub fn is_default(a: &SigAction) -> bool {
    a.handler == 0 && a.flags == 0 && a.mask == 0
}

/// SIGCHLD back to its default action and unblocked, so the children a restore
/// child creates are neither reaped automatically (SIG_IGN) nor signalled to it.
pub fn default_sigchld() {
    // SAFETY: plain signal-disposition calls with valid arguments.
    unsafe {
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}

/// Every signal action of this process back to the default (the restore child must
/// not hand ccr's own actions to the task it becomes).
pub fn reset_all_actions() {
    let dfl = default_action();
    for sig in catchable() {
        // SAFETY: rt_sigaction reads one kernel sigaction from a live struct.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const SigAction,
                std::ptr::null_mut::<u8>(),
                SIGSET_SIZE,
            )
        };
    }
}
