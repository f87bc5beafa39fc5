//! The command line as a user meets it: help for every command, unknown options
//! and commands named, and the criu-style command line.

mod common;

use common::{stderr, Case};

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn help_for_every_command() {
    let case = Case::new("cli-help");
    for args in [&["--help"][..], &["-h"], &["help"]] {
        let out = case.ccr(args);
        assert!(out.status.success(), "ccr {args:?} failed: {}", stderr(&out));
        for cmd in ["dump", "restore", "check", "show", "freeze", "thaw", "cgroup-save", "cgroup-restore", "cleanup"] {
            assert!(text(&out).lines().any(|l| l.trim_start().starts_with(cmd)), "ccr {args:?} does not list {cmd}");
        }
    }
    for (cmd, opt) in [
        ("dump", "--leave-running"),
        ("restore", "--inherit-fd"),
        ("check", "--help"),
        ("show", "--images-dir"),
        ("freeze", "--freeze-cgroup"),
        ("thaw", "--tree"),
        ("cgroup-save", "--freeze-cgroup"),
        ("cgroup-restore", "--manage-cgroups"),
        ("cleanup", "--images-dir"),
    ] {
        for h in ["--help", "-h"] {
            let out = case.ccr(&[cmd, h]);
            assert!(out.status.success(), "ccr {cmd} {h} failed: {}", stderr(&out));
            let t = text(&out);
            assert!(t.starts_with(&format!("usage: ccr {cmd}")), "ccr {cmd} {h}: {t}");
            assert!(t.contains(opt) && t.contains("--log-file"), "ccr {cmd} {h} does not describe {opt}: {t}");
        }
        let out = case.ccr(&["help", cmd]);
        assert!(text(&out).starts_with(&format!("usage: ccr {cmd}")), "ccr help {cmd}: {}", text(&out));
    }
}

#[test]
fn unknown_options_and_commands_are_named() {
    let case = Case::new("cli-unknown");
    let out = case.ccr(&["dump", "-t", "1", "-D", "x", "--skip-in-flight"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unknown option --skip-in-flight"), "{}", stderr(&out));
    let out = case.ccr(&["restore", "--leave-running"]);
    assert!(stderr(&out).contains("unknown option --leave-running"), "restore accepted a dump option");
    let out = case.ccr(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unknown command 'frobnicate'"), "{}", stderr(&out));
    let out = case.ccr(&["dump", "-t"]);
    assert!(stderr(&out).contains("needs a value"), "{}", stderr(&out));
    let out = case.ccr(&["dump", "-t", "x", "-D", "d"]);
    assert!(stderr(&out).contains("'x' is not a pid"), "{}", stderr(&out));
    let out = case.ccr(&["dump", "stray"]);
    assert!(stderr(&out).contains("unexpected argument 'stray'"), "{}", stderr(&out));
}

/// Run as `ccr criu ...` (or through a `criu` symlink), ccr takes criu's command
/// line; what it does not implement is refused by name, never ignored.
#[test]
fn criu_command_line() {
    let case = Case::new("cli-criu");
    let out = case.ccr(&["criu", "--version"]);
    assert!(out.status.success() && text(&out).starts_with("Version: "), "{}", text(&out));
    let link = case.dir.join("criu");
    std::os::unix::fs::symlink(&common::env().ccr, &link).unwrap();
    let out = std::process::Command::new(&link).arg("--version").output().unwrap();
    assert!(out.status.success() && text(&out).starts_with("Version: "), "as criu: {}", text(&out));
    let out = std::process::Command::new(&link).arg("check").output().unwrap();
    assert!(out.status.success(), "criu check: {}", stderr(&out));
    assert!(text(&out).trim_end().ends_with("Looks good."), "criu check: {}", text(&out));
    // What LXC's migrate(MIGRATE_FEATURE_CHECK) asks: ccr has no pre-dump yet.
    let out = std::process::Command::new(&link).args(["check", "--feature", "mem_dirty_track"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "criu check --feature mem_dirty_track: {}", stderr(&out));
    assert!(stderr(&out).contains("mem_dirty_track is not supported"), "{}", stderr(&out));
    let out = case.ccr(&["criu", "dump", "--page-server", "-t", "1", "-D", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--page-server"), "{}", stderr(&out));
    let out = case.ccr(&["criu", "lazy-pages"]);
    assert!(stderr(&out).contains("'lazy-pages' is not supported"), "{}", stderr(&out));
}

/// `criu dump` with criu's spellings checkpoints for real; the checkpoint restores.
#[test]
fn criu_dump_then_restore() {
    use nix::sys::signal::Signal;
    use std::time::Duration;
    let mut case = Case::new("cli-criu-dump");
    let pid = case.start_workload("wl_counter", &[]);
    case.wait_ready(pid, Duration::from_secs(10));
    let images = case.images.display().to_string();
    let log = case.dir.join("dump.log").display().to_string();
    let out = case.ccr(&["criu", "dump", "-t", &pid.to_string(), "-D", &images, "-o", &log, "-v4"]);
    assert!(out.status.success(), "criu dump: {}", stderr(&out));
    common::assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "original after criu dump");
    assert!(std::fs::read_to_string(&log).unwrap().contains("Debug"), "-v4 did not reach the log");
    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    case.signal(pid, Signal::SIGTERM);
    common::assert_exit(case.wait_exit(rp, Duration::from_secs(30)), 0, "ccr restore");
    case.assert_pass(1);
}
