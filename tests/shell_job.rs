//! A job started from a shell: its session and process group are the shell's,
//! outside the tree. A dump refuses it by name and offers --shell-job; with it,
//! the checkpoint restores (with --shell-job too) into the session and group of
//! the `ccr restore` that brings it back, here one run in a new session.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{assert_exit, assert_running_untraced, stderr, Case};
use nix::sys::signal::Signal;

/// (process group, session) of `pid`.
fn ids(pid: i32) -> (i32, i32) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split_whitespace().collect();
    (f[2].parse().unwrap(), f[3].parse().unwrap())
}

#[test]
fn a_shell_job_is_refused_by_name_and_comes_back_with_shell_job() {
    let mut case = Case::new("shell-job");
    let mut cmd = Command::new(Case::workload_path("wl_counter"));
    cmd.arg(case.dir.join("scratch"));
    let pid = case.start_job(cmd);
    case.wait_ready(pid, Duration::from_secs(10));
    let (pgid, sid) = ids(pid);
    assert_ne!(sid, pid, "the job leads no session of its own");

    let out = case.dump(pid, &[]);
    let err = stderr(&out);
    assert!(!out.status.success() && err.contains("--shell-job") && err.contains("its session"), "dump: {err}");
    assert_running_untraced(pid, "a job whose dump was refused");
    assert!(!case.images.join("inventory.img").exists(), "a refused dump left a checkpoint");

    case.dump_ok(pid, &["--shell-job"]);
    common::assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "the dumped job");

    let out = case.ccr(&["restore", "-D", &case.images.display().to_string(), "-d"]);
    let err = stderr(&out);
    assert!(!out.status.success() && err.contains("--shell-job"), "restore without --shell-job: {err}");
    assert!(!common::exists(pid), "a refused restore left pid {pid}");

    // Restored by a ccr that leads a new session of its own.
    let mut restore = Command::new(&common::env().ccr);
    restore
        .args(["restore", "--shell-job", "-D"])
        .arg(&case.images)
        .arg("--pidfile")
        .arg(&case.pidfile)
        .arg("-o")
        .arg(case.dir.join("restore.log"))
        .args(["-v", "4"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(case.dir.join("restore.out")).unwrap());
    // SAFETY: setsid is async-signal-safe and changes only the child.
    unsafe {
        restore.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut ccr = restore.spawn().expect("ccr restore");
    let ccr_pid = ccr.id() as i32;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !case.pidfile.exists() {
        if std::time::Instant::now() > deadline || ccr.try_wait().unwrap().is_some() {
            let out = std::fs::read_to_string(case.dir.join("restore.out")).unwrap_or_default();
            let log = std::fs::read_to_string(case.dir.join("restore.log")).unwrap_or_default();
            panic!("no restore: {out}\n{log}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    case.track(pid);
    assert_running_untraced(pid, "the restored job");
    let (new_pgid, new_sid) = ids(pid);
    assert_eq!((new_pgid, new_sid), ids(ccr_pid), "the job is not in the restoring ccr's group and session");
    assert_ne!((new_pgid, new_sid), (pgid, sid), "the restore was not in a session of its own");
    case.signal(pid, Signal::SIGTERM);
    let st = ccr.wait().unwrap();
    assert_exit(st, 0, "ccr restore (the restored job's status)");
    case.assert_pass(1);
}
