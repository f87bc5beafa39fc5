//! Stop requests: SIGINT, SIGTERM and SIGHUP (and, in a helper, its parent's
//! death) do not end ccr where it stands: the signal is only noted here, and the
//! engine looks at the note at its safe points (between stages and tasks), undoes
//! what it holds (tracees, a frozen cgroup, partial images) and says why.
//!
//! The `ccr` command runs a dump in a helper process and forwards these signals to
//! it: SIGKILL of the command then kills only the waiting parent, and the helper,
//! told by its parent-death signal, undoes the dump and exits. SIGKILL of the
//! helper itself, the tracer, cannot be caught: the threads it drives then put
//! themselves back (`remote::landing`), and the command gives the freeze cgroup
//! back its state.

use std::sync::atomic::{AtomicI32, Ordering};

/// The stop signal received, 0 for none.
static STOP: AtomicI32 = AtomicI32::new(0);
/// The helper this process waits for, to forward stop signals to (0: none).
static HELPER: AtomicI32 = AtomicI32::new(0);

const STOP_SIGNALS: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

extern "C" fn note(sig: i32) {
    STOP.store(sig, Ordering::SeqCst);
    let helper = HELPER.load(Ordering::SeqCst);
    if helper > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(helper, sig) };
    }
}

/// The actions `catch_stop_signals` replaced, for `restore_stop_signals`.
static SAVED: std::sync::Mutex<Vec<(i32, libc::sigaction)>> = std::sync::Mutex::new(Vec::new());

fn current(sig: i32) -> libc::sigaction {
    // SAFETY: an all-zero sigaction is a valid out buffer; a null new action only reads.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old);
        old
    }
}

fn ours(a: &libc::sigaction) -> bool {
    a.sa_sigaction == note as extern "C" fn(i32) as usize
}

/// From now on SIGINT, SIGTERM and SIGHUP are noted (and forwarded to a helper
/// being waited for) instead of ending the process. SA_RESTART: no call of the
/// engine sees EINTR because of them. A signal the caller ignores (nohup) stays
/// ignored.
pub fn catch_stop_signals() {
    let mut saved = SAVED.lock().unwrap_or_else(|e| e.into_inner());
    for sig in STOP_SIGNALS {
        let old = current(sig);
        if old.sa_sigaction == libc::SIG_IGN || ours(&old) {
            continue;
        }
        saved.push((sig, old));
        // SAFETY: an all-zero sigaction is valid; the handler only stores atomics and
        // calls kill.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = note as extern "C" fn(i32) as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// The actions `catch_stop_signals` replaced come back.
pub fn restore_stop_signals() {
    let mut saved = SAVED.lock().unwrap_or_else(|e| e.into_inner());
    for (sig, old) in saved.drain(..) {
        // SAFETY: reinstalling an action read from the kernel.
        unsafe { libc::sigaction(sig, &old, std::ptr::null_mut()) };
    }
}

/// SIGINT, SIGTERM and SIGHUP end the process again where ccr had caught them (a
/// holder, whose end lets its tree go, must not outlive them); ignored ones stay so.
pub fn default_stop_signals() {
    for sig in STOP_SIGNALS {
        if ours(&current(sig)) {
            // SAFETY: restoring the default disposition.
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        }
    }
}

/// In a helper: the parent's death arrives as SIGTERM, noted like the others. A
/// parent that died before this call is noted at once.
pub fn stop_when_parent_dies(parent: i32) {
    catch_stop_signals();
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0) };
    // SAFETY: getppid cannot fail.
    if unsafe { libc::getppid() } != parent {
        STOP.store(libc::SIGTERM, Ordering::SeqCst);
    }
}

/// While `pid` runs an operation for us, stop signals we get go to it as well
/// (one that came before it existed too).
pub fn forward_to(pid: i32) {
    HELPER.store(pid, Ordering::SeqCst);
    let sig = STOP.load(Ordering::SeqCst);
    if pid > 0 && sig != 0 {
        // SAFETY: kill with integer arguments.
        unsafe { libc::kill(pid, sig) };
    }
}

/// The stop signal noted so far, if any.
pub fn pending() -> Option<i32> {
    match STOP.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// A signal's name for messages ("SIGTERM").
pub fn name(sig: i32) -> String {
    match sig {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGHUP => "SIGHUP".into(),
        n => format!("signal {n}"),
    }
}
