//! The container manager of c-tests/api_container.c, on libccr: a busybox
//! container with every namespace but user, its own mounts, cgroups, and a console
//! and tty1 from the host, checkpointed and restored ten times in a row (freeze →
//! cgroup-save → dump → cgroups deleted, new ptys → cgroup-restore → restore),
//! checking after each that it counts on, keeps its hostname, SysV segment and
//! POSIX queue, is back in its cgroups with their limit, and that a line typed on
//! the new tty1 comes back answered.

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
    assert_eq!(out.lines().filter(|l| l.ends_with("tty1 answers")).count(), 10, "{out}");
    case.assert_pass(1);
}
