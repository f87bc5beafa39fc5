//! The container manager of c-tests/api_container.c, on libccr: a busybox
//! container with every namespace but user, its own mounts, cgroups, and a console
//! and tty1 from the host, whose PID 1 is busybox init reading /etc/inittab (a
//! sysinit setting the hostname, a respawned counter loop, a real getty on tty1
//! and an askfirst login shell on the console), checkpointed and restored ten
//! times in a row (freeze → cgroup-save → dump → cgroups deleted, new ptys →
//! cgroup-restore → restore). After each it checks that it counts on; that init's
//! children are the same processes (init respawned nothing: no process was lost)
//! with the same signal masks, each asleep in the syscall it was in; the
//! hostname, SysV segment and POSIX queue; every process in its new cgroups with
//! their limit; getty's and the shell's sessions, controlling terminals and
//! foreground groups on the new ttys; tty1's termios and window size as the
//! manager set them before the dump; that a command typed on the new console
//! master is run by the shell; and that getty on the new tty1 answers an empty
//! line with the issue and its login prompt. At the end init still respawns a
//! child that dies.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{assert_exit, Case};

#[test]
fn a_container_goes_through_ten_checkpoints_and_restores() {
    assert!(
        std::path::Path::new("/bin/busybox").exists(),
        "busybox-static is needed (scripts/install-deps.sh installs it)"
    );
    let mut case = Case::new("container-manager");
    let env = common::env();
    let bin = env.bin.join("api_container");
    assert!(bin.exists(), "{} not built (make ctests PROFILE=debug)", bin.display());
    let mut cmd = Command::new(&bin);
    cmd.arg(case.dir.join("manager")).arg("10").env("LD_LIBRARY_PATH", &env.lib);
    let pid = case.start(cmd);
    let st = case.wait_exit(pid, Duration::from_secs(240));
    let out = case.output();
    assert_exit(st, 0, &format!("api_container:\n{out}"));
    assert_eq!(out.lines().filter(|l| l.ends_with("getty on tty1 answers")).count(), 10, "{out}");
    assert!(out.contains("init respawns the counter after 10 restores"), "{out}");
    case.assert_pass(1);
}
