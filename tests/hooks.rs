//! Hooks: action scripts run at every named stage of a dump and a restore, in
//! order, with the stage, the root's pid and the images directory; one that fails
//! fails the operation naming it, and the operation's error path then leaves the
//! tree as it was (dump) or nothing at all (restore). The C callback
//! (`ccr_opts_set_hook`) is driven by c-tests/api_hooks.c.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{assert_exit, assert_killed, assert_running_untraced, exists, reap_gone, stderr, Case};
use nix::sys::signal::Signal;

const DUMP_STAGES: [&str; 3] = ["pre-dump", "network-lock", "post-dump"];
const RESTORE_STAGES: [&str; 7] = [
    "pre-restore",
    "setup-namespaces",
    "post-setup-namespaces",
    "post-restore",
    "network-unlock",
    "pre-resume",
    "post-resume",
];

macro_rules! need_root {
    () => {
        if !nix::unistd::geteuid().is_root() {
            assert!(std::env::var_os("CI").is_none(), "hooks tests need root (CI=1 makes a skip a failure)");
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// Writes an executable script `NAME.sh` into the case directory that appends
/// "$CRTOOLS_SCRIPT_ACTION $CRTOOLS_INIT_PID $CRTOOLS_IMAGE_DIR" (the pid as
/// "unset" when it is) to `log`, then at stage `fail_at` runs `fail` (e.g.
/// "exit 3").
fn script(case: &Case, name: &str, log: &Path, fail_at: Option<&str>, fail: &str) -> PathBuf {
    let path = case.dir.join(format!("{name}.sh"));
    let fail_line = match fail_at {
        Some(stage) => format!("[ \"$CRTOOLS_SCRIPT_ACTION\" = {stage} ] && {fail}\n"),
        None => String::new(),
    };
    let text = format!(
        "#!/bin/sh\necho \"$CRTOOLS_SCRIPT_ACTION ${{CRTOOLS_INIT_PID-unset}} $CRTOOLS_IMAGE_DIR\" >> {log}\n\
         {fail_line}exit 0\n",
        log = log.display()
    );
    std::fs::write(&path, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The lines the scripts appended, and none if there is no file.
fn calls(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log).unwrap_or_default().lines().map(str::to_string).collect()
}

/// What the recording script writes for these stages with this pid and images dir.
fn expected(stages: &[&str], pid: i32, images: &Path) -> Vec<String> {
    let pid = |s: &str| if s == "pre-restore" { "unset".to_string() } else { pid.to_string() };
    stages.iter().map(|s| format!("{s} {} {}", pid(s), images.display())).collect()
}

fn dump_args(case: &Case, pid: i32, images: &Path, log: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec!["dump".into(), "-t".into(), pid.to_string(), "-D".into()];
    a.push(images.display().to_string());
    a.extend(["-o".into(), case.dir.join(log).display().to_string(), "-v".into(), "4".into()]);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// A field of /proc/self/status of the test process, as the scripts should see
/// their own (ccr's CPU pin must not reach them).
fn own_status(key: &str) -> String {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines().find_map(|l| l.strip_prefix(key)).unwrap_or("").trim().to_string()
}

/// Dump (leaving it running, then killing it) and restore with a recording script:
/// every stage in order, with the root's pid and the images directory; the scripts
/// start clean of ccr's state; the restored workload passes its own check.
#[test]
fn scripts_see_every_stage_in_order() {
    need_root!();
    let mut case = Case::new("hooks-order");
    for (cmd, stage) in [("dump", "network-lock"), ("restore", "setup-namespaces")] {
        let help = String::from_utf8_lossy(&case.ccr(&[cmd, "--help"]).stdout).into_owned();
        assert!(help.contains("--action-script PATH") && help.contains(stage), "ccr {cmd} --help:\n{help}");
    }
    let log = case.dir.join("hooks.log");
    let rec = script(&case, "rec", &log, None, "");
    // What a script sees of its own state, at a stage where ccr holds the tree:
    // read by what it runs (grep's own status; the shell itself blocks every
    // signal for a moment around each fork, which a read of its status can meet).
    let state = case.dir.join("state.log");
    let probe = case.dir.join("probe.sh");
    std::fs::write(
        &probe,
        format!(
            "#!/bin/sh\n[ \"$CRTOOLS_SCRIPT_ACTION\" = network-lock ] || exit 0\n\
             grep -E '^(SigBlk|SigIgn|Cpus_allowed_list|TracerPid):' /proc/self/status >> {}\n",
            state.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (rec_s, probe_s) = (rec.display().to_string(), probe.display().to_string());

    let pid = case.start_workload("wl_counter", &[]);
    case.wait_ready(pid, Duration::from_secs(10));
    let lr = case.dir.join("images-lr");
    let args = ["--leave-running", "--action-script", &rec_s, "--action-script", &probe_s];
    let out = case.ccr(&dump_args(&case, pid, &lr, "dump-lr.log", &args));
    assert!(out.status.success(), "dump --leave-running: {}", stderr(&out));
    assert_running_untraced(pid, "workload after dump --leave-running");
    let mut want = expected(&DUMP_STAGES, pid, &lr);
    want.extend(expected(&["network-unlock"], pid, &lr));
    assert_eq!(calls(&log), want, "dump --leave-running");
    let seen = std::fs::read_to_string(&state).unwrap();
    let field = |k: &str| seen.lines().find_map(|l| l.strip_prefix(k)).unwrap_or("").trim().to_string();
    assert_eq!(field("SigBlk:"), "0000000000000000", "a script got ccr's signal mask:\n{seen}");
    assert_eq!(field("SigIgn:"), "0000000000000000", "a script kept ignored signals:\n{seen}");
    assert_eq!(field("TracerPid:"), "0", "{seen}");
    assert_eq!(field("Cpus_allowed_list:"), own_status("Cpus_allowed_list:"), "a script got ccr's CPU pin");

    std::fs::remove_file(&log).unwrap();
    case.dump_ok(pid, &["--action-script", &rec_s]);
    assert_eq!(calls(&log), expected(&DUMP_STAGES, pid, &case.images), "dump");
    assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "original after dump");
    reap_gone(&[pid], "the dumped workload");

    std::fs::remove_file(&log).unwrap();
    let rp = case.spawn_restore(&["--action-script", &rec_s]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    assert_eq!(calls(&log), expected(&RESTORE_STAGES, pid, &case.images), "restore");
    assert_running_untraced(pid, "restored workload");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(60)), 0, "ccr restore (the restored workload)");
    case.assert_pass(1);
}

/// A running wl_counter in a case of its own.
fn counting(name: &str) -> (Case, i32) {
    let mut case = Case::new(name);
    let pid = case.start_workload("wl_counter", &[]);
    case.wait_ready(pid, Duration::from_secs(10));
    (case, pid)
}

/// Ends the workload `pid`, which ccr never took away: it must pass its check.
fn end_untouched(case: &mut Case, pid: i32, what: &str) {
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, what);
    case.assert_pass(1);
}

/// A script failing at each dump stage fails the dump with an error naming the
/// script, the stage and the status; the workload runs on untouched (untraced,
/// not stopped) and passes its own check at the end. network-unlock follows a
/// failure once network-lock ran; after a post-dump failure the images stay.
#[test]
fn a_failing_script_fails_the_dump_and_leaves_the_tree_running() {
    need_root!();
    let (mut case, pid) = counting("hooks-dump-fail");
    let cases: [(&str, bool, &[&str]); 4] = [
        ("pre-dump", false, &["pre-dump"]),
        ("network-lock", false, &["pre-dump", "network-lock", "network-unlock"]),
        ("post-dump", false, &["pre-dump", "network-lock", "post-dump", "network-unlock"]),
        ("network-unlock", true, &["pre-dump", "network-lock", "post-dump", "network-unlock"]),
    ];
    for (stage, leave_running, want) in cases {
        let log = case.dir.join(format!("{stage}.log"));
        let s = script(&case, &format!("fail-{stage}"), &log, Some(stage), "exit 3");
        let images = case.dir.join(format!("images-{stage}"));
        let s_arg = s.display().to_string();
        let mut extra = vec!["--action-script", s_arg.as_str()];
        if leave_running {
            extra.push("--leave-running");
        }
        let out = case.ccr(&dump_args(&case, pid, &images, &format!("dump-{stage}.log"), &extra));
        assert!(!out.status.success(), "dump with a script failing at {stage} succeeded");
        let msg = format!("action script {} failed at stage {stage}: exit status 3", s.display());
        assert!(stderr(&out).contains(&msg), "want '{msg}' in: {}", stderr(&out));
        assert_running_untraced(pid, &format!("workload after a failure at {stage}"));
        assert_eq!(calls(&log), expected(want, pid, &images), "stages run by a dump failing at {stage}");
    }
    assert!(case.dir.join("images-post-dump/inventory.img").exists(), "post-dump failure removed the images");
    // Killed by a signal, and a script that cannot be run at all.
    let log = case.dir.join("killed.log");
    let s = script(&case, "killed", &log, Some("pre-dump"), "kill -KILL $$");
    let out =
        case.ccr(&dump_args(&case, pid, &case.images, "dump-killed.log", &["--action-script", &s.to_string_lossy()]));
    let msg = format!("action script {} failed at stage pre-dump: killed by SIGKILL", s.display());
    assert!(!out.status.success() && stderr(&out).contains(&msg), "want '{msg}' in: {}", stderr(&out));
    let missing = case.dir.join("no-such-hook");
    let out = case.ccr(&dump_args(
        &case,
        pid,
        &case.images,
        "dump-missing.log",
        &["--action-script", &missing.to_string_lossy()],
    ));
    let msg = format!("action script {} could not be run at stage pre-dump", missing.display());
    assert!(!out.status.success() && stderr(&out).contains(&msg), "want '{msg}' in: {}", stderr(&out));
    assert_running_untraced(pid, "workload after every failed dump");
    end_untouched(&mut case, pid, "the workload, never dumped");
}

/// A script failing at each restore stage before the tree runs fails the restore
/// naming the stage, and leaves no task and no pidfile; a restore without it then
/// works. A failure at post-resume is only logged: the tree runs.
#[test]
fn a_failing_script_fails_the_restore_and_leaves_nothing() {
    need_root!();
    let (mut case, pid) = counting("hooks-restore-fail");
    case.dump_ok(pid, &[]);
    assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "original after dump");
    reap_gone(&[pid], "the dumped workload");
    for (i, stage) in RESTORE_STAGES[..6].iter().enumerate() {
        let log = case.dir.join(format!("{stage}.log"));
        let s = script(&case, &format!("fail-{stage}"), &log, Some(stage), "exit 4");
        let rlog = case.dir.join(format!("restore-{stage}.log"));
        let out = case.ccr(&[
            "restore".as_ref(),
            "-D".as_ref(),
            case.images.as_os_str(),
            "--pidfile".as_ref(),
            case.pidfile.as_os_str(),
            "--action-script".as_ref(),
            s.as_os_str(),
            "-o".as_ref(),
            rlog.as_os_str(),
            "-v4".as_ref(),
        ]);
        assert!(!out.status.success(), "restore with a script failing at {stage} succeeded");
        let msg = format!("action script {} failed at stage {stage}: exit status 4", s.display());
        assert!(stderr(&out).contains(&msg), "want '{msg}' in: {}", stderr(&out));
        assert!(!exists(pid), "pid {pid} exists after a restore failed at {stage}");
        assert!(!case.pidfile.exists(), "a pidfile after a restore failed at {stage}");
        assert_eq!(calls(&log), expected(&RESTORE_STAGES[..=i], pid, &case.images), "failing at {stage}");
    }
    let log = case.dir.join("post-resume.log");
    let s = script(&case, "fail-post-resume", &log, Some("post-resume"), "exit 5");
    let rp = case.spawn_restore(&["--action-script", &s.to_string_lossy()]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    assert_running_untraced(pid, "restored workload after a post-resume failure");
    assert_eq!(calls(&log), expected(&RESTORE_STAGES, pid, &case.images));
    let rlog = std::fs::read_to_string(case.dir.join("restore.log")).unwrap();
    assert!(rlog.contains("failed at stage post-resume: exit status 5"), "post-resume failure not logged:\n{rlog}");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(60)), 0, "ccr restore (the restored workload)");
    case.assert_pass(1);
}

/// SIGTERM to `ccr dump` while a script runs kills the script's whole process
/// group at once and stops the dump as usual; network-unlock still runs (to its
/// end) and the tree runs on untouched.
#[test]
fn a_stop_request_kills_a_running_script() {
    need_root!();
    let (mut case, pid) = counting("hooks-stop");
    let log = case.dir.join("hooks.log");
    let sleeper = case.dir.join("sleep.pid");
    let s = script(
        &case,
        "slow",
        &log,
        Some("network-lock"),
        &format!("{{ sleep 60 & echo $! > {}; wait; }}", sleeper.display()),
    );
    let args = dump_args(&case, pid, &case.images, "dump.log", &["--action-script", &s.to_string_lossy()]);
    let ccr = Command::new(&common::env().ccr)
        .args(&args)
        .current_dir(&case.dir)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&sleeper).is_ok_and(|t| t.ends_with('\n')) {
        assert!(Instant::now() < deadline, "the script never reached its sleep");
        std::thread::sleep(Duration::from_millis(10));
    }
    let sleep_pid: i32 = std::fs::read_to_string(&sleeper).unwrap().trim().parse().unwrap();
    let asked = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(ccr.id() as i32), Signal::SIGTERM).unwrap();
    let out = ccr.wait_with_output().unwrap();
    assert!(asked.elapsed() < Duration::from_secs(10), "ccr waited for the script");
    assert!(!out.status.success());
    let msg = format!("action script {} was killed at stage network-lock: ccr was stopped by SIGTERM", s.display());
    assert!(stderr(&out).contains(&msg), "want '{msg}' in: {}", stderr(&out));
    reap_gone(&[sleep_pid], "the script's own child");
    assert_running_untraced(pid, "workload after a stopped dump");
    assert_eq!(calls(&log), expected(&["pre-dump", "network-lock", "network-unlock"], pid, &case.images));
    end_untouched(&mut case, pid, "the workload");
}

/// A tree frozen by ptrace (`ccr freeze -t`) is dumped by its holder: the scripts
/// run there, at the same stages.
#[test]
fn scripts_run_in_the_freeze_holder() {
    need_root!();
    let (mut case, pid) = counting("hooks-holder");
    let log = case.dir.join("hooks.log");
    let rec = script(&case, "rec", &log, None, "");
    let p = pid.to_string();
    let out = case.ccr(&["freeze", "-t", &p]);
    assert!(out.status.success(), "freeze -t: {}", stderr(&out));
    let out =
        case.ccr(&dump_args(&case, pid, &case.images, "dump.log", &["-R", "--action-script", &rec.to_string_lossy()]));
    let thawed = case.ccr(&["thaw", "-t", &p]);
    assert!(out.status.success(), "dump of a held tree: {}", stderr(&out));
    assert!(thawed.status.success(), "thaw -t: {}", stderr(&thawed));
    let mut want = expected(&DUMP_STAGES, pid, &case.images);
    want.extend(expected(&["network-unlock"], pid, &case.images));
    assert_eq!(calls(&log), want);
    assert_running_untraced(pid, "workload after thaw");
    end_untouched(&mut case, pid, "the workload");
}

/// The C callback through libccr: c-tests/api_hooks.c records every stage of a
/// dump and a restore, and aborts one of each.
#[test]
fn c_api_hook_callback() {
    need_root!();
    let mut case = Case::new("hooks-capi");
    let env = common::env();
    let bin = env.bin.join("api_hooks");
    assert!(bin.exists(), "{} not built (make ctests PROFILE=debug)", bin.display());
    let mut cmd = Command::new(&bin);
    cmd.arg(Case::workload_path("wl_counter")).arg(case.dir.join("api")).env("LD_LIBRARY_PATH", &env.lib);
    let pid = case.start(cmd);
    let st = case.wait_exit(pid, Duration::from_secs(120));
    assert_exit(st, 0, "api_hooks");
    case.assert_pass(1);
}
