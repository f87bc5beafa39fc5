//! File locks come back with their owners: flock, POSIX record locks (ranges, read
//! and write, per process), OFD locks and leases; checked by a fresh process that
//! asks the kernel who holds what. A lock someone else took meanwhile fails the
//! restore by name and leaves nothing behind.

mod common;

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use common::{assert_exit, assert_killed, cycle, leave_running, Case};
use nix::sys::signal::Signal;

#[test]
fn every_kind_of_lock_comes_back() {
    cycle("locks", "wl_locks", &[], None);
}

/// Reading the locks leaves them where they were.
#[test]
fn locks_leave_running() {
    leave_running("locks-leave-running", "wl_locks");
}

/// After the dump, another process takes the flock the tree held: restore fails
/// naming the lock and the file, leaves no task behind, and works once the lock
/// is free again.
#[test]
fn a_lock_taken_meanwhile_fails_the_restore_by_name() {
    let mut case = Case::new("locks-taken");
    let pid = case.start_workload("wl_locks", &[]);
    case.wait_ready(pid, Duration::from_secs(10));
    let tree = common::tree_pids(pid);
    case.dump_ok(pid, &[]);
    assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "original after dump");
    common::reap_gone(&tree, "the dumped tree");

    let thief = File::open(case.dir.join("scratch/a")).unwrap();
    // SAFETY: flock on an fd this test owns.
    assert_eq!(unsafe { libc::flock(thief.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }, 0, "take the flock");
    let rp = case.spawn_restore(&[]);
    let st = case.wait_exit(rp, Duration::from_secs(30));
    let err = fs::read_to_string(case.dir.join("restore.out")).unwrap_or_default();
    assert!(!st.success(), "restore succeeded while another process held the tree's flock: {err}");
    assert!(err.contains("flock write lock") && err.contains("conflicting"), "the error does not name the lock: {err}");
    std::thread::sleep(Duration::from_millis(200));
    for p in &tree {
        let status = fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
        assert!(!common::exists(*p), "a failed restore left pid {p} behind: {status}");
    }
    drop(thief);

    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(30)), 0, "ccr restore (the workload's status)");
    case.assert_pass(1);
}

/// A real program: python3 holding flock(LOCK_EX) on one file and lockf on part
/// of another keeps both; a second python3 cannot take either after restore.
#[test]
fn python_flock_and_lockf() {
    let mut case = Case::new("python-locks");
    let script = r#"
import fcntl, signal, sys, time
a = open(sys.argv[1] + "/a", "w"); fcntl.flock(a, fcntl.LOCK_EX)
b = open(sys.argv[1] + "/b", "w"); fcntl.lockf(b, fcntl.LOCK_EX, 10, 0)
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
print("ready", flush=True)
while not stop:
    time.sleep(0.01)
"#;
    let probe = r#"
import fcntl, sys
a = open(sys.argv[1] + "/a", "w"); b = open(sys.argv[1] + "/b", "w")
held = []
for name, take in (("flock", lambda: fcntl.flock(a, fcntl.LOCK_EX | fcntl.LOCK_NB)),
                   ("lockf 0-9", lambda: fcntl.lockf(b, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0))):
    try:
        take()
        print(name, "free")
    except OSError:
        held.append(name)
fcntl.lockf(b, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 10)
print("held:", ",".join(held))
"#;
    let dir = case.dir.clone();
    let held = || {
        let out = Command::new("python3").args(["-c", probe]).arg(&dir).output().expect("python3");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]).arg(&case.dir);
    let pid = case.start(cmd);
    case.wait_ready(pid, Duration::from_secs(10));
    assert!(held().contains("held: flock,lockf 0-9"), "before the dump: {}", held());
    case.dump_ok(pid, &[]);
    assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "original");
    assert!(held().contains("held: \n"), "the dumped program's locks outlived it: {}", held());
    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    let after = held();
    assert!(after.contains("held: flock,lockf 0-9"), "after restore the locks are free: {after}");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(30)), 0, "ccr restore (python's status)");
}
