//! The container manager of c-tests/api_container.c, on libccr: a busybox
//! container with every namespace but user, its own mounts, cgroups, and a console
//! and tty1 from the host, whose PID 1 is busybox init reading /etc/inittab (a
//! sysinit setting the hostname, syslogd on /dev/log, a respawned counter loop, a
//! real getty on tty1 and an askfirst login shell on the console), checkpointed
//! and restored ten
//! times in a row (freeze → cgroup-save → dump → cgroups deleted, new ptys →
//! cgroup-restore → restore). After each it checks that it counts on; that init's
//! children are the same processes (init respawned nothing: no process was lost)
//! with the same signal masks, each asleep in the syscall it was in; the
//! hostname, SysV segment and POSIX queue; every process in its new cgroups with
//! their limit; getty's and the shell's sessions, controlling terminals and
//! foreground groups on the new ttys; tty1's termios and window size as the
//! manager set them before the dump; that a command typed on the new console
//! master is run by the shell and what it logs reaches syslogd; and that getty on the new tty1 answers an empty
//! line with the issue and its login prompt. At the end init still respawns a
//! child that dies.
//!
//! The second test runs the same container unprivileged, as LXC does (issue 9):
//! a user namespace of its own owning the others (uid_map and gid_map `0 100000
//! 65536`), init uid 0 inside and 100000 on the host (a daemon of init's uid 1000
//! inside, 101000 on the host), the rootfs and the ptys the
//! mapped root's, /dev entries binds of the host's nodes; the same checks, and
//! after each restore the maps, the ids (read from inside and from the host), the
//! namespaces owned by the user namespace, /dev's entries the host's devices, the
//! cgroups delegated to its root as LXC does (and used by it: a child made and
//! removed from inside, and one it made with a limit kept), and the host's mount flags still locked on its "/" and
//! /dev/null. Both variants check that init's mount table is the same after each
//! restore.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{assert_exit, Case};

/// Runs api_container for `cycles` cycles (`userns`: the unprivileged variant)
/// and checks every cycle passed; returns its output.
fn run_manager(name: &str, cycles: u32, userns: bool, timeout: Duration) -> String {
    assert!(
        std::path::Path::new("/bin/busybox").exists(),
        "busybox-static is needed (scripts/install-deps.sh installs it)"
    );
    let mut case = Case::new(name);
    let env = common::env();
    let bin = env.bin.join("api_container");
    assert!(bin.exists(), "{} not built (make ctests PROFILE=debug)", bin.display());
    let mut cmd = Command::new(&bin);
    cmd.arg(case.dir.join("manager")).arg(cycles.to_string()).env("LD_LIBRARY_PATH", &env.lib);
    if userns {
        cmd.arg("userns");
    }
    let pid = case.start(cmd);
    let st = case.wait_exit(pid, timeout);
    let out = case.output();
    if !st.success() {
        print_last_logs(&case.dir.join("manager"));
    }
    assert_exit(st, 0, &format!("api_container:\n{out}"));
    let answered = out.lines().filter(|l| l.ends_with("getty on tty1 answers"));
    assert_eq!(answered.count(), cycles as usize, "{out}");
    assert!(out.contains(&format!("init respawns the counter after {cycles} restores")), "{out}");
    case.assert_pass(1);
    out
}

/// Prints the logs of the last dump and restore the manager made (its cycles log
/// into dump-N.log and restore-N.log), the place a failure's cause shows.
fn print_last_logs(dir: &std::path::Path) {
    let mut logs: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name.strip_suffix(".log")?.rsplit('-').next()?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    logs.sort();
    let last = logs.last().map(|(n, _)| *n);
    for (_, p) in logs.iter().filter(|(n, _)| Some(*n) == last) {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(80).collect();
        eprintln!("---- {} (last 80 lines)", p.display());
        for l in tail.iter().rev() {
            eprintln!("{l}");
        }
    }
}

#[test]
fn a_container_goes_through_ten_checkpoints_and_restores() {
    run_manager("container-manager", 10, false, Duration::from_secs(240));
}

#[test]
fn an_unprivileged_container_goes_through_checkpoints_and_restores() {
    let out = run_manager("container-manager-userns", 4, true, Duration::from_secs(120));
    assert!(
        out.contains("user namespace: uid_map 0 100000 65536; gid_map 0 100000 65536; setgroups allow; ids 0 inside, 100000 on the host"),
        "{out}"
    );
    let back = out.lines().filter(|l| l.contains("user namespace and ids back"));
    assert_eq!(back.count(), 4, "{out}");
}
