//! freeze / thaw on the v1 freezer and on cgroup2 (needs root).

mod cgroup_util;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ccr::cgroup::{api, freeze, freeze_for_dump, tasks_of, CgroupError};
use ccr::opts::FreezeOpts;
use cgroup_util::*;

const BUSY: &str = "while :; do /bin/true; done";

/// A group `ccrtest-PID-TAG` with a sub-group, a forking shell loop in the group and
/// a sleep in the sub-group.
fn group(ctl: &str, tag: &str) -> (Guard, PathBuf) {
    let mut g = Guard::default();
    let d = hier(ctl).mount_point.join(unique(tag));
    g.mkdir(&d);
    g.mkdir(&d.join("sub"));
    let busy = g.spawn("sh", &["-c", BUSY]);
    write(&d, "cgroup.procs", &busy.to_string());
    let sleep = g.spawn("sleep", &["1000"]);
    write(&d.join("sub"), "cgroup.procs", &sleep.to_string());
    (g, d)
}

fn opts(d: &Path) -> FreezeOpts {
    FreezeOpts { freeze_cgroup: Some(d.to_path_buf()), ..Default::default() }
}

fn frozen(d: &Path) -> bool {
    if d.join("freezer.state").exists() {
        read(d, "freezer.state") == "FROZEN"
    } else {
        read(d, "cgroup.events").contains("frozen 1")
    }
}

fn freeze_and_thaw(ctl: &str, tag: &str) {
    let (_g, d) = group(ctl, tag);
    // The loop is forking: the task set keeps changing while it runs.
    let before = tasks_of(&d).unwrap();
    assert!(before.len() >= 2, "{before:?}");
    assert!(wait_for(5, || tasks_of(&d).unwrap() != before), "the busy loop forks");

    api::freeze(&opts(&d)).expect("freeze");
    assert!(frozen(&d));
    assert!(frozen(&d.join("sub")), "descendants are frozen too");
    let a = tasks_of(&d).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(tasks_of(&d).unwrap(), a, "nothing forks while frozen");

    api::thaw(&opts(&d)).expect("thaw");
    assert!(!frozen(&d));
    assert!(wait_for(5, || tasks_of(&d).unwrap() != a), "it runs again after thaw");
}

#[test]
fn v1_freezer_freezes_a_forking_workload() {
    need_root!();
    freeze_and_thaw("freezer", "fz1");
}

#[test]
fn v2_freeze_freezes_a_forking_workload() {
    need_root!();
    freeze_and_thaw("unified", "fz2");
}

fn owner_frozen_stays_frozen(ctl: &str, tag: &str) {
    let (_g, d) = group(ctl, tag);
    // Not frozen before: the guard thaws it back.
    let mut guard = freeze_for_dump(&d).unwrap();
    assert!(!guard.was_frozen() && frozen(&d));
    guard.restore_state().unwrap();
    assert!(!frozen(&d));
    // Dropping the guard thaws as well.
    drop(freeze_for_dump(&d).unwrap());
    assert!(!frozen(&d));
    // Frozen by its owner: stays frozen after the dump.
    api::freeze(&opts(&d)).unwrap();
    let guard = freeze_for_dump(&d).unwrap();
    assert!(guard.was_frozen());
    drop(guard);
    assert!(frozen(&d), "the owner's freeze is kept");
    // keep_frozen (--leave-stopped) leaves it frozen whatever it was.
    api::thaw(&opts(&d)).unwrap();
    freeze_for_dump(&d).unwrap().keep_frozen();
    assert!(frozen(&d));
}

#[test]
fn v1_already_frozen_group_stays_frozen() {
    need_root!();
    owner_frozen_stays_frozen("freezer", "of1");
}

#[test]
fn v2_already_frozen_group_stays_frozen() {
    need_root!();
    owner_frozen_stays_frozen("unified", "of2");
}

#[test]
fn thaw_under_a_frozen_parent_times_out_clearly() {
    need_root!();
    let (_g, d) = group("freezer", "tt");
    api::freeze(&opts(&d)).unwrap();
    let e = freeze::thaw(&d.join("sub"), 1).unwrap_err();
    assert!(matches!(e, CgroupError::ThawTimeout { ref state, .. } if state == "FROZEN"), "{e}");
    assert!(e.to_string().contains("parent"), "{e}");
    api::thaw(&opts(&d)).unwrap();
}

#[test]
fn bad_targets_are_named() {
    need_root!();
    let e = api::freeze(&FreezeOpts { pid: Some(1), ..Default::default() }).unwrap_err();
    assert!(matches!(e, ccr::Error::Cgroup(CgroupError::FreezeNeedsCgroup { pid: 1 })), "{e}");
    assert!(e.to_string().contains("freeze cgroup"));
    let e = api::freeze(&FreezeOpts::default()).unwrap_err();
    assert!(matches!(e, ccr::Error::Cgroup(CgroupError::NoFreezeCgroup)), "{e}");
    let mut g = Guard::default();
    let cpu = g.mkdir(&hier("cpu").mount_point.join(unique("nf")));
    let e = api::freeze(&opts(&cpu)).unwrap_err();
    assert!(matches!(e, ccr::Error::Cgroup(CgroupError::NotFreezable { .. })), "{e}");
}
