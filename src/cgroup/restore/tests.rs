//! Restore logic on fake trees: write order, modes, absent files, rollback.

use super::*;
use std::collections::HashMap;
use std::fs;

fn prop(name: &str, value: &str) -> pb::CgroupProp {
    pb::CgroupProp { name: name.into(), value: value.into(), mode: 0o644, ..Default::default() }
}

fn absent(name: &str) -> pb::CgroupProp {
    pb::CgroupProp { name: name.into(), absent: true, ..Default::default() }
}

type Pairs = Vec<(String, String)>;

fn plan(props: &[pb::CgroupProp], cur: &[(&str, &str)]) -> (Pairs, Pairs) {
    let cur: HashMap<String, String> = cur.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    let (steps, fz) = plan_writes(props, &mut |f| Ok(cur.get(f).cloned())).unwrap();
    (steps.into_iter().map(|s| (s.file, s.value)).collect(), fz)
}

fn s(a: &str, b: &str) -> (String, String) {
    (a.into(), b.into())
}

#[test]
fn memsw_goes_first_when_the_limit_grows_past_it() {
    let props = [prop("memory.limit_in_bytes", "200"), prop("memory.memsw.limit_in_bytes", "300")];
    let (w, _) = plan(&props, &[("memory.limit_in_bytes", "100"), ("memory.memsw.limit_in_bytes", "150")]);
    assert_eq!(w, vec![s("memory.memsw.limit_in_bytes", "300"), s("memory.limit_in_bytes", "200")]);
    // Shrinking: memory limit first, then memsw.
    let props = [prop("memory.limit_in_bytes", "50"), prop("memory.memsw.limit_in_bytes", "60")];
    let (w, _) = plan(&props, &[("memory.limit_in_bytes", "100"), ("memory.memsw.limit_in_bytes", "150")]);
    assert_eq!(w, vec![s("memory.limit_in_bytes", "50"), s("memory.memsw.limit_in_bytes", "60")]);
    // From unlimited (a fresh cgroup): limit below memsw's "unlimited", limit first.
    let big = "9223372036854771712";
    let props = [prop("memory.limit_in_bytes", "200"), prop("memory.memsw.limit_in_bytes", "300")];
    let (w, _) = plan(&props, &[("memory.limit_in_bytes", big), ("memory.memsw.limit_in_bytes", big)]);
    assert_eq!(w, vec![s("memory.limit_in_bytes", "200"), s("memory.memsw.limit_in_bytes", "300")]);
}

#[test]
fn special_files() {
    let props = [
        prop("cgroup.type", "threaded"),
        prop("devices.list", "c 1:3 rwm\nb 8:0 r"),
        prop("memory.oom_control", "oom_kill_disable 1\nunder_oom 0\noom_kill 0"),
        prop("cgroup.subtree_control", "cpu memory"),
        prop("io.max", "8:0 rbps=100 wbps=max riops=max wiops=max\n8:16 rbps=5 wbps=max riops=max wiops=max"),
        prop("freezer.state", "FROZEN"),
    ];
    let (w, fz) = plan(
        &props,
        &[
            ("cgroup.type", "domain"),
            ("devices.list", "a *:* rwm"),
            ("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3"),
            ("cgroup.subtree_control", "cpu"),
            ("io.max", "8:0 rbps=100 wbps=max riops=max wiops=max"),
            ("freezer.state", "THAWED"),
        ],
    );
    assert_eq!(
        w,
        vec![
            s("cgroup.type", "threaded"),
            s("devices.deny", "a"),
            s("devices.allow", "b 8:0 r"),
            s("devices.allow", "c 1:3 rwm"),
            s("memory.oom_control", "1"),
            s("cgroup.subtree_control", "+memory"),
            s("io.max", "8:16 rbps=5 wbps=max riops=max wiops=max"),
        ]
    );
    assert_eq!(fz, vec![s("freezer.state", "FROZEN")]);
}

#[test]
fn device_rules_change_without_switching_the_default() {
    let (w, _) = plan(&[prop("devices.list", "c 1:3 rwm\nc 1:9 rw")], &[("devices.list", "c 1:3 rwm\nc 1:5 rwm")]);
    assert_eq!(w, vec![s("devices.deny", "c 1:5 rwm"), s("devices.allow", "c 1:9 rw")]);
    let (w, _) = plan(&[prop("devices.list", "a *:* rwm")], &[("devices.list", "c 1:3 rwm")]);
    assert_eq!(w, vec![s("devices.allow", "a")]);
}

#[test]
fn equal_absent_and_missing_files_are_not_written() {
    // The v2 files this machine lacks (memory.*, cpu.max, io.max, cpuset.*): recorded
    // absent when saved, or missing from the kernel at restore — both skipped.
    let props = [
        absent("memory.max"),
        prop("cpu.max", "50000 100000"),
        prop("cpuset.cpus", "0"),
        prop("pids.max", "10"),
        prop("cgroup.type", "domain"),
    ];
    let (w, _) = plan(&props, &[("pids.max", "10"), ("cgroup.type", "domain invalid")]);
    assert!(w.is_empty(), "{w:?}");
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ccr-restore-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn fake_hier(mount: &Path) -> Vec<Hierarchy> {
    vec![Hierarchy { version: 2, controllers: vec![], mount_point: mount.into(), mount_root: "/".into() }]
}

fn image(root: &str) -> pb::CgroupImage {
    let leaf = pb::CgroupDir {
        name: "b".into(),
        origin: pb::CgroupOrigin::Internal as i32,
        mode: 0o755,
        props: vec![prop("pids.max", "5"), prop("cgroup.freeze", "1")],
        ..Default::default()
    };
    let root_dir = pb::CgroupDir {
        name: "".into(),
        origin: pb::CgroupOrigin::External as i32,
        mode: 0o755,
        props: vec![prop("cgroup.max.depth", "3"), absent("memory.max"), prop("cgroup.subtree_control", "pids")],
        children: vec![leaf],
        ..Default::default()
    };
    pb::CgroupImage {
        hierarchies: vec![pb::CgroupHierarchy {
            id: 7,
            version: 2,
            root: root.into(),
            tree: Some(root_dir),
            ..Default::default()
        }],
        sets: vec![pb::CgroupSet {
            id: 0,
            members: vec![pb::CgroupMember { hierarchy: 7, path: "b".into(), outside_root: false }],
        }],
        tasks: vec![pb::CgroupTask { pid: 42, set: 0 }],
    }
}

fn opts(mode: ManageCgroups) -> CgroupRestoreOpts {
    CgroupRestoreOpts { manage: mode, ..Default::default() }
}

/// Makes the fake root `mount/ct` exist with its files.
fn fake_existing(mount: &Path) {
    fs::create_dir_all(mount.join("ct/b")).unwrap();
    fs::write(mount.join("ct/cgroup.max.depth"), "max\n").unwrap();
    fs::write(mount.join("ct/cgroup.subtree_control"), "\n").unwrap();
    fs::write(mount.join("ct/b/pids.max"), "max\n").unwrap();
    fs::write(mount.join("ct/b/cgroup.procs"), "").unwrap();
}

#[test]
fn props_mode_needs_existing_and_configures_them() {
    let m = tmp("props");
    let hs = fake_hier(&m);
    let e = CgroupRestorePlan::create(&image("/ct"), &opts(ManageCgroups::Props), &hs, None).unwrap_err();
    assert!(matches!(e, CgroupError::Missing { .. }), "{e}");
    fake_existing(&m);
    let p = CgroupRestorePlan::create(&image("/ct"), &opts(ManageCgroups::Props), &hs, None).unwrap();
    assert!(p.created().is_empty());
    assert_eq!(fs::read_to_string(m.join("ct/cgroup.max.depth")).unwrap(), "3");
    assert_eq!(fs::read_to_string(m.join("ct/cgroup.subtree_control")).unwrap(), "+pids");
    assert_eq!(fs::read_to_string(m.join("ct/b/pids.max")).unwrap(), "5");
    p.place_task(1234, 42).unwrap();
    assert_eq!(fs::read_to_string(m.join("ct/b/cgroup.procs")).unwrap(), "1234");
    assert!(matches!(p.place_task(1, 41), Err(CgroupError::NoSavedSet { saved_pid: 41 })));
    p.commit();
    fs::remove_dir_all(&m).unwrap();
}

#[test]
fn soft_configures_only_what_it_created_full_everything() {
    let m = tmp("soft");
    let hs = fake_hier(&m);
    fake_existing(&m);
    let p = CgroupRestorePlan::create(&image("/ct"), &opts(ManageCgroups::Soft), &hs, None).unwrap();
    assert_eq!(fs::read_to_string(m.join("ct/cgroup.max.depth")).unwrap(), "max\n");
    p.commit();
    let p = CgroupRestorePlan::create(&image("/ct"), &opts(ManageCgroups::Full), &hs, None).unwrap();
    assert_eq!(fs::read_to_string(m.join("ct/cgroup.max.depth")).unwrap(), "3");
    p.commit();
    let e = CgroupRestorePlan::create(&image("/ct"), &opts(ManageCgroups::Strict), &hs, None).unwrap_err();
    assert!(matches!(e, CgroupError::Exists { .. }), "{e}");
    fs::remove_dir_all(&m).unwrap();
}

#[test]
fn relocation_creates_parents_and_drop_removes_them_deepest_first() {
    let m = tmp("reloc");
    let hs = fake_hier(&m);
    let mut o = opts(ManageCgroups::Strict);
    o.roots = vec![(None, PathBuf::from("/new/place/ct2"))];
    let p = CgroupRestorePlan::create(&image("/ct"), &o, &hs, None).unwrap();
    assert_eq!(p.created(), &[m.join("new"), m.join("new/place"), m.join("new/place/ct2"), m.join("new/place/ct2/b")]);
    assert_eq!(p.dirs_of(42).unwrap(), &[m.join("new/place/ct2/b")]);
    drop(p); // not committed: everything it made goes
    assert!(!m.join("new").exists());
    // A root for this hierarchy's name wins over the one for all.
    o.roots = vec![(None, "/x".into()), (Some("unified".into()), m.join("y"))];
    assert_eq!(relocated_root(&hs[0], "/ct", &o.roots), "/y");
    fs::remove_dir_all(&m).unwrap();
}

/// A cgroup namespace's root moves as the tree's root does: one at or below the
/// saved root with it; one above it by as many levels, when the restored root
/// ends as the saved one did; anything else is where it was.
#[test]
fn saved_paths_move_with_the_root() {
    let m = tmp("nsroot");
    let hs = fake_hier(&m);
    let mut o = opts(ManageCgroups::Full);
    o.roots = vec![(None, PathBuf::from("/new/ct"))];
    let mut img = image("/old/ct");
    let p = CgroupRestorePlan::create(&img, &o, &hs, None).unwrap();
    assert_eq!(p.relocated(2, &[], "/old/ct").unwrap(), Some(m.join("new/ct")));
    assert_eq!(p.relocated(2, &[], "/old/ct/b").unwrap(), Some(m.join("new/ct/b")));
    assert_eq!(p.relocated(2, &[], "/old").unwrap(), Some(m.join("new")));
    assert_eq!(p.relocated(2, &[], "/").unwrap(), None, "the hierarchy's root stays");
    assert_eq!(p.relocated(2, &[], "/elsewhere").unwrap(), None);
    assert_eq!(p.relocated(1, &["pids".into()], "/old/ct").unwrap(), None, "a hierarchy it did not restore");
    drop(p);
    o.roots = vec![(None, PathBuf::from("/new/ct2"))];
    let p = CgroupRestorePlan::create(&img, &o, &hs, None).unwrap();
    let e = p.relocated(2, &[], "/old").unwrap_err();
    assert!(matches!(e, CgroupError::AncestorMoved { .. }), "{e}");
    drop(p);
    img.hierarchies[0].root = "/".into();
    o.roots.clear();
    let p = CgroupRestorePlan::create(&img, &o, &hs, None).unwrap();
    assert_eq!(p.relocated(2, &[], "/b").unwrap(), Some(m.join("b")));
    drop(p);
    fs::remove_dir_all(&m).unwrap();
}

#[test]
fn failure_midway_rolls_back_and_missing_hierarchy_is_named() {
    let m = tmp("fail");
    let hs = fake_hier(&m);
    let mut img = image("/ct");
    // A new child "a" is made, then existing "b" has a limit below its usage.
    let tree = img.hierarchies[0].tree.as_mut().unwrap();
    tree.children[0].props.push(prop("memory.max", "100"));
    let a = pb::CgroupDir { name: "a".into(), mode: 0o755, ..Default::default() };
    tree.children.insert(0, a);
    fs::create_dir_all(m.join("ct/b")).unwrap();
    fs::write(m.join("ct/b/memory.max"), "max\n").unwrap();
    fs::write(m.join("ct/b/memory.current"), "4096\n").unwrap();
    let mut o = opts(ManageCgroups::Full);
    let e = CgroupRestorePlan::create(&img, &o, &hs, None).unwrap_err();
    match e {
        CgroupError::LimitBelowUsage { file, value, usage, .. } => {
            assert_eq!((file.as_str(), value.as_str(), usage.as_str()), ("memory.max", "100", "4096"))
        }
        e => panic!("{e}"),
    }
    assert!(m.join("ct/b").exists(), "existing cgroup kept");
    assert!(!m.join("ct/a").exists(), "nothing created was left behind");
    img.hierarchies[0].version = 1;
    img.hierarchies[0].controllers = vec!["name=nothere".into()];
    o.manage = ManageCgroups::Soft;
    let e = CgroupRestorePlan::create(&img, &o, &hs, None).unwrap_err();
    assert!(e.to_string().contains("name=nothere"), "{e}");
    fs::remove_dir_all(&m).unwrap();
}

/// The v2 files this machine lacks (cpuset.*, memory.*, cpu.max, io.max in cgroup2):
/// saved from a fake tree, then planned back in the order the kernel needs.
#[test]
fn v2_controller_files_round_trip_in_kernel_order_on_a_fake_tree() {
    let m = tmp("v2order");
    let files: &[(&str, &str)] = &[
        ("cgroup.controllers", "cpuset cpu io memory pids"),
        ("cgroup.type", "threaded"),
        ("cgroup.max.depth", "4"),
        ("cgroup.max.descendants", "max"),
        ("cgroup.subtree_control", "cpu memory"),
        ("cgroup.freeze", "0"),
        ("cpuset.cpus", "0-1"),
        ("cpuset.mems", "0"),
        ("cpuset.cpus.partition", "root"),
        ("cpu.weight", "50"),
        ("cpu.max", "20000 100000"),
        ("memory.high", "300000000"),
        ("memory.max", "400000000"),
        ("memory.current", "0"),
        ("memory.swap.max", "0"),
        ("io.max", "8:0 rbps=1000 wbps=max riops=max wiops=max"),
        ("pids.max", "33"),
    ];
    for (f, v) in files {
        fs::write(m.join(f), format!("{v}\n")).unwrap();
    }
    let props = crate::cgroup::save::props_for(2, &[], &m).unwrap();
    let saved: Vec<pb::CgroupProp> = props
        .iter()
        .map(|p| {
            let v = crate::sys::cgroupfs::read(&m, p.file).unwrap();
            pb::CgroupProp {
                name: p.file.into(),
                absent: v.is_none(),
                value: v.unwrap_or_default(),
                ..Default::default()
            }
        })
        .collect();
    assert!(saved.iter().any(|p| p.name == "memory.min" && p.absent));
    assert!(saved.iter().all(|p| p.name != "memory.current"));
    // A fresh cgroup: defaults everywhere.
    let fresh: HashMap<&str, &str> = [
        ("cgroup.type", "domain"),
        ("cgroup.max.depth", "max"),
        ("cgroup.max.descendants", "max"),
        ("cgroup.subtree_control", ""),
        ("cpuset.cpus", ""),
        ("cpuset.mems", ""),
        ("cpuset.cpus.partition", "member"),
        ("cpu.weight", "100"),
        ("cpu.max", "max 100000"),
        ("memory.high", "max"),
        ("memory.max", "max"),
        ("memory.swap.max", "max"),
        ("io.max", ""),
        ("pids.max", "max"),
    ]
    .into_iter()
    .collect();
    let (steps, fz) = plan_writes(&saved, &mut |f| Ok(fresh.get(f).map(|v| v.to_string()))).unwrap();
    let order: Vec<&str> = steps.iter().map(|s| s.file.as_str()).collect();
    assert_eq!(
        order,
        vec![
            "cgroup.type",
            "cgroup.max.depth",
            "cpuset.cpus",
            "cpuset.mems",
            "cpuset.cpus.partition",
            "cpu.weight",
            "cpu.max",
            "memory.high",
            "memory.max",
            "memory.swap.max",
            "io.max",
            "pids.max",
            "cgroup.subtree_control",
        ]
    );
    assert_eq!(steps.last().unwrap().value, "+cpu +memory");
    assert_eq!(steps.iter().find(|s| s.file == "memory.max").unwrap().usage, Some("memory.current"));
    // Freezer states are always queued; the plan applies them after placing tasks.
    assert_eq!(fz, vec![s("cgroup.freeze", "0")]);
    fs::remove_dir_all(&m).unwrap();
}

#[test]
fn cpu_and_node_lists_within_a_parent() {
    assert_eq!(id_list_within("1", "0-1"), Some(true));
    assert_eq!(id_list_within("0,2-3", "0-3,7"), Some(true));
    assert_eq!(id_list_within("1", "0"), Some(false));
    assert_eq!(id_list_within("3-5", "0-4"), Some(false));
    assert_eq!(id_list_within("", "0"), Some(true), "an empty set lies within any");
    assert_eq!(id_list_within("1", ""), Some(false));
    assert_eq!(id_list_within("x", "0"), None);
}
