//! cgroup-save / cgroup-restore on this machine's real hierarchies (needs root).
//!
//! Each test builds a container-like tree `ccrtest-PID-TAG/{,a,a/b,c}` on every v1
//! hierarchy and on cgroup2, sets limits on each level, puts `sleep` processes in the
//! root, a/b and c, saves it, and checks what restore makes of it, file by file.

mod cgroup_util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ccr::cgroup::controllers::{self, Kind};
use ccr::cgroup::hierarchy::{self, Hierarchy};
use ccr::cgroup::{api, CgroupError};
use ccr::image::{pb, ImageDir};
use ccr::opts::{CgroupRestoreCmdOpts, CgroupRestoreOpts, CgroupSaveOpts, ManageCgroups};
use cgroup_util::*;

const CTLS: &[&str] =
    &["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd", "unified"];
const SUBDIRS: &[&str] = &["", "a", "a/b", "c"];
const M: u64 = 1024 * 1024;

struct Ct {
    name: String,
    guard: Guard,
    /// (subdir, pid)
    pids: Vec<(&'static str, i32)>,
    images: PathBuf,
}

impl Ct {
    fn dir(&self, ctl: &str, sub: &str) -> PathBuf {
        let d = hier(ctl).mount_point.join(&self.name);
        if sub.is_empty() {
            d
        } else {
            d.join(sub)
        }
    }

    fn opts(&self) -> CgroupSaveOpts {
        CgroupSaveOpts {
            freeze_cgroup: Some(self.dir("freezer", "")),
            images_dir: Some(self.images.clone()),
            ..Default::default()
        }
    }

    fn save(&self) -> pb::CgroupImage {
        api::save(&self.opts()).expect("cgroup-save");
        ImageDir::open(&self.images).unwrap().read(None).unwrap()
    }

    fn write_image(&self, img: &pb::CgroupImage) {
        ImageDir::open(&self.images).unwrap().write(None, img).unwrap();
    }

    /// Registers every directory of the tree under `root` (a cgroup path) for cleanup.
    fn track(&mut self, root: &str) {
        for ctl in CTLS {
            let base = hier(ctl).dir_of(root).unwrap();
            for s in SUBDIRS.iter().rev() {
                self.guard.add_dir(if s.is_empty() { base.clone() } else { base.join(s) });
            }
        }
    }

    /// Kills the tasks and removes the tree.
    fn delete(&mut self) {
        self.guard.kill_all();
        for ctl in CTLS {
            remove_tree(&self.dir(ctl, ""));
            assert!(!self.dir(ctl, "").exists());
        }
    }
}

impl Drop for Ct {
    fn drop(&mut self) {
        self.guard.kill_all();
        self.guard.remove_dirs();
        let _ = std::fs::remove_dir_all(&self.images);
    }
}

fn configure(ctl: &str, d: &dyn Fn(&str) -> PathBuf) {
    let w = |sub: &str, f: &str, v: &str| write(&d(sub), f, v);
    match ctl {
        "cpu" => {
            w("", "cpu.shares", "512");
            w("", "cpu.cfs_quota_us", "50000");
            w("a", "cpu.shares", "256");
            w("a/b", "cpu.cfs_period_us", "50000");
            w("a/b", "cpu.cfs_quota_us", "10000");
            w("c", "cpu.shares", "2048");
        }
        "cpuset" => {
            for (s, cpus) in [("", "0-1"), ("a", "0"), ("a/b", "0"), ("c", "1")] {
                w(s, "cpuset.cpus", cpus);
                w(s, "cpuset.mems", "0");
            }
            w("a", "cpuset.mem_hardwall", "1");
            w("a", "cpuset.sched_load_balance", "0");
            w("a/b", "cpuset.memory_migrate", "1");
        }
        "memory" => {
            w("", "memory.limit_in_bytes", &(512 * M).to_string());
            w("", "memory.memsw.limit_in_bytes", &(1024 * M).to_string());
            w("", "memory.soft_limit_in_bytes", &(256 * M).to_string());
            w("", "memory.swappiness", "30");
            w("a", "memory.limit_in_bytes", &(256 * M).to_string());
            w("a", "memory.memsw.limit_in_bytes", &(384 * M).to_string());
            w("a", "memory.oom_control", "1");
            w("a/b", "memory.limit_in_bytes", &(64 * M).to_string());
            w("c", "memory.swappiness", "10");
        }
        // The root's rules are set in `build` (before it has children: the kernel
        // refuses "a" then).
        "devices" => w("a", "devices.deny", "c 1:5 rwm"),
        "blkio" => {
            w("", "blkio.bfq.weight", "200");
            w("a", "blkio.bfq.weight", "300");
        }
        "pids" => {
            w("", "pids.max", "100");
            w("a", "pids.max", "50");
            w("a/b", "pids.max", "10");
        }
        "unified" => {
            w("", "cgroup.max.depth", "5");
            w("a", "cgroup.max.descendants", "10");
        }
        _ => {}
    }
}

fn build(tag: &str) -> Ct {
    let name = unique(tag);
    let images = std::env::temp_dir().join(format!("{name}-img"));
    let mut ct = Ct { name, guard: Guard::default(), pids: Vec::new(), images };
    for ctl in CTLS {
        for s in SUBDIRS {
            let d = ct.dir(ctl, s);
            ct.guard.mkdir(&d);
            if *ctl == "devices" && s.is_empty() {
                write(&d, "devices.deny", "a");
                for rule in ["c 1:3 rwm", "c 1:5 rwm", "c 136:* rw", "b 7:* r"] {
                    write(&d, "devices.allow", rule);
                }
            }
        }
        let root = ct.dir(ctl, "");
        configure(ctl, &|s: &str| {
            if s.is_empty() {
                root.clone()
            } else {
                root.join(s)
            }
        });
    }
    for sub in ["", "a/b", "c"] {
        let pid = ct.guard.spawn("sleep", &["1000"]);
        for ctl in CTLS {
            write(&ct.dir(ctl, sub), "cgroup.procs", &pid.to_string());
        }
        ct.pids.push((sub, pid));
    }
    write(&ct.dir("freezer", "c"), "freezer.state", "FROZEN");
    write(&ct.dir("unified", "a/b"), "cgroup.freeze", "1");
    assert!(wait_for(5, || read(&ct.dir("freezer", "c"), "freezer.state") == "FROZEN"));
    ct
}

/// A file's value as restore must reproduce it.
fn normalize(name: &str, dir: &Path, raw: &str) -> String {
    match controllers::kind_of(name) {
        Kind::Freeze if name == "freezer.state" => {
            if read(dir, "freezer.self_freezing") == "1" { "FROZEN" } else { "THAWED" }.into()
        }
        Kind::OomControl => raw.lines().find(|l| l.starts_with("oom_kill_disable")).unwrap_or("").to_string(),
        Kind::DevicesList | Kind::Lines => {
            let mut v: Vec<&str> = raw.lines().collect();
            v.sort();
            v.join("\n")
        }
        _ => raw.to_string(),
    }
}

/// Every saved value, keyed by (hierarchy, dir, file).
fn saved_values(img: &pb::CgroupImage) -> BTreeMap<(String, String, String), String> {
    fn walk(key: &str, rel: &str, d: &pb::CgroupDir, out: &mut BTreeMap<(String, String, String), String>) {
        for p in d.props.iter().filter(|p| !p.absent) {
            out.insert((key.into(), rel.into(), p.name.clone()), p.value.clone());
        }
        for c in &d.children {
            let r = if rel.is_empty() { c.name.clone() } else { format!("{rel}/{}", c.name) };
            walk(key, &r, c, out);
        }
    }
    let mut out = BTreeMap::new();
    for h in &img.hierarchies {
        if let Some(t) = &h.tree {
            let key = if h.version == 2 { "unified".to_string() } else { h.controllers.join(",") };
            walk(&key, "", t, &mut out);
        }
    }
    out
}

fn hier_of_key(key: &str) -> Hierarchy {
    hierarchies().into_iter().find(|h| h.key() == key).unwrap()
}

/// Compares every saved file (and the owner/mode of every directory) with the tree
/// now at `root_of(hierarchy)`.
fn check_restored(img: &pb::CgroupImage, root_of: &dyn Fn(&Hierarchy) -> PathBuf) {
    let vals = saved_values(img);
    assert!(vals.len() > 60, "too few values saved: {}", vals.len());
    let mut bad = Vec::new();
    for ((key, rel, file), want) in &vals {
        let h = hier_of_key(key);
        let root = root_of(&h);
        let dir = if rel.is_empty() { root } else { root.join(rel) };
        let got = read(&dir, file);
        let (g, w) = (normalize(file, &dir, &got), normalize(file, &dir, want));
        if g != w {
            bad.push(format!("{}/{file}: saved {w:?}, now {g:?}", dir.display()));
        }
    }
    assert!(bad.is_empty(), "restored values differ:\n{}", bad.join("\n"));
}

fn expect_value(img: &pb::CgroupImage, key: &str, rel: &str, file: &str, want: &str) {
    let vals = saved_values(img);
    assert_eq!(vals.get(&(key.into(), rel.into(), file.into())).map(String::as_str), Some(want), "{key} {rel} {file}");
}

#[test]
fn save_delete_restore_compares_every_file() {
    need_root!();
    let mut ct = build("sr");
    let img = ct.save();
    // What was set is what was saved.
    expect_value(&img, "memory", "a", "memory.limit_in_bytes", &(256 * M).to_string());
    expect_value(&img, "memory", "a", "memory.memsw.limit_in_bytes", &(384 * M).to_string());
    expect_value(&img, "memory", "a", "memory.oom_control", "oom_kill_disable 1\nunder_oom 0\noom_kill 0");
    expect_value(&img, "pids", "a/b", "pids.max", "10");
    expect_value(&img, "cpu", "a/b", "cpu.cfs_quota_us", "10000");
    expect_value(&img, "cpuset", "c", "cpuset.cpus", "1");
    expect_value(&img, "cpuset", "a", "cpuset.mem_hardwall", "1");
    expect_value(&img, "blkio", "a", "blkio.bfq.weight", "300");
    expect_value(&img, "freezer", "c", "freezer.state", "FROZEN");
    expect_value(&img, "freezer", "", "freezer.state", "THAWED");
    expect_value(&img, "unified", "a/b", "cgroup.freeze", "1");
    expect_value(&img, "unified", "", "cgroup.max.depth", "5");
    let vals = saved_values(&img);
    let dev = &vals[&("devices".to_string(), "a".to_string(), "devices.list".to_string())];
    assert!(dev.contains("c 1:3 rwm") && !dev.contains("c 1:5"), "{dev}");
    // Every hierarchy, rooted at the container; origin marks external vs internal.
    assert_eq!(img.hierarchies.len(), CTLS.len());
    for h in &img.hierarchies {
        assert_eq!(h.root, format!("/{}", ct.name));
        let t = h.tree.as_ref().unwrap();
        assert_eq!(t.origin, pb::CgroupOrigin::External as i32);
        assert!(t.children.iter().all(|c| c.origin == pb::CgroupOrigin::Internal as i32));
        assert!(t.perms.iter().any(|p| p.name == "cgroup.procs"));
    }
    // `ccr show` prints images through serde.
    let json = serde_json::to_string(&img).unwrap();
    assert!(json.contains("\"memory.limit_in_bytes\"") && json.contains("\"origin\""), "{json}");
    assert_eq!(img.tasks.len(), 3);
    assert_eq!(img.sets.len(), 3);
    let saved_c = ct.pids.iter().find(|(s, _)| *s == "c").unwrap().1;

    ct.delete();
    api::restore(&CgroupRestoreCmdOpts { images_dir: Some(ct.images.clone()), ..Default::default() })
        .expect("cgroup-restore");
    let name = ct.name.clone();
    ct.track(&format!("/{name}"));
    check_restored(&img, &|h| h.mount_point.join(&name));

    // The restore engine's side: a forked task goes into its saved cgroup set.
    let plan = api::restore_plan(
        &ImageDir::open(&ct.images).unwrap(),
        &CgroupRestoreOpts { manage: ManageCgroups::Props, ..Default::default() },
        None,
    )
    .unwrap();
    let pid = ct.guard.spawn("sleep", &["1000"]);
    ccr::cgroup::place_task(&plan, pid, saved_c).unwrap();
    plan.commit();
    for ctl in CTLS {
        assert_eq!(cgroup_of(pid, &hier(ctl)), format!("/{name}/c"), "{ctl}");
    }
}

#[test]
fn restore_under_relocated_roots() {
    need_root!();
    let mut ct = build("rl");
    let img = ct.save();
    let all = format!("/{}-new", ct.name);
    let mem = format!("/{}-mem/inner", ct.name);
    ct.track(&all);
    ct.track(&mem);
    for ctl in CTLS {
        ct.guard.add_dir(hier(ctl).dir_of(&format!("/{}-mem", ct.name)).unwrap());
    }
    let o = CgroupRestoreCmdOpts {
        images_dir: Some(ct.images.clone()),
        cgroups: CgroupRestoreOpts {
            roots: vec![(None, PathBuf::from(&all)), (Some("memory".into()), PathBuf::from(&mem))],
            manage: ManageCgroups::Strict,
        },
    };
    api::restore(&o).expect("relocated restore");
    check_restored(&img, &|h| h.dir_of(if h.answers_to("memory") { &mem } else { &all }).unwrap());
    assert!(!hier("cpu").dir_of(&mem).unwrap().exists());
}

/// Restored under a root whose ancestors do not exist yet: ccr makes them, and a
/// v1 cpuset ancestor gets its parent's cpus and mems before the container's own
/// values are written (the kernel refuses a child's cpuset outside its parent's).
#[test]
fn restore_under_missing_ancestors() {
    need_root!();
    let mut ct = build("anc");
    let img = ct.save();
    let top = format!("/{}-anc", ct.name);
    let all = format!("{top}/deep/ct");
    ct.track(&all);
    for ctl in CTLS {
        let h = hier(ctl);
        ct.guard.add_dir(h.dir_of(&format!("{top}/deep")).unwrap());
        ct.guard.add_dir(h.dir_of(&top).unwrap());
    }
    let o = CgroupRestoreCmdOpts {
        images_dir: Some(ct.images.clone()),
        cgroups: CgroupRestoreOpts { roots: vec![(None, PathBuf::from(&all))], manage: ManageCgroups::Strict },
    };
    api::restore(&o).expect("restore under missing ancestors");
    check_restored(&img, &|h| h.dir_of(&all).unwrap());
    let deep = hier("cpuset").dir_of(&format!("{top}/deep")).unwrap();
    assert_eq!(read(&deep, "cpuset.mems"), read(deep.parent().unwrap().parent().unwrap(), "cpuset.mems"));
}

/// A v1 cpuset cgroup `name` holding one `sleep`, with `cpus` and mems 0, saved
/// into `images` by `ccr cgroup-save -t`; the sleep is then killed and the cgroup
/// removed. What `guard` makes it removes again, bottom-up, whatever happens.
fn saved_cpuset(guard: &mut Guard, name: &str, cpus: &str, images: &Path) {
    let dir = guard.mkdir(&hier("cpuset").mount_point.join(name));
    write(&dir, "cpuset.cpus", cpus);
    write(&dir, "cpuset.mems", "0");
    let pid = guard.spawn("sleep", &["1000"]);
    write(&dir, "cgroup.procs", &pid.to_string());
    let out = ccr_cli(&["cgroup-save", "-t", &pid.to_string(), "-D", &images.display().to_string()]);
    assert!(out.status.success(), "ccr cgroup-save: {}", String::from_utf8_lossy(&out.stderr));
    guard.kill_all();
    remove_tree(&dir);
    assert!(!dir.exists());
}

fn ccr_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ccr")).args(args).output().expect("run ccr")
}

/// The CPUs of the cpuset root, and one of them that is not all of them (the
/// tests need a second CPU to tell a child's cpus from its parent's).
fn one_cpu_of_several() -> (String, String) {
    let all = read(&hier("cpuset").mount_point, "cpuset.cpus");
    let last = all.rsplit([',', '-']).next().unwrap().to_string();
    assert!(all != last, "these tests need two CPUs in the cpuset root, it has {all:?}");
    (all, last)
}

/// `ccr cgroup-restore --cgroup-root` of a v1 cpuset under two levels of parents
/// that do not exist: they are made with their parent's cpus and mems first, so
/// the kernel takes the saved single CPU below them.
#[test]
fn cli_restore_of_a_cpuset_under_missing_parents() {
    need_root!();
    let (all_cpus, cpu) = one_cpu_of_several();
    let root = hier("cpuset").mount_point;
    let root_mems = read(&root, "cpuset.mems");
    let name = unique("cs1");
    let images = std::env::temp_dir().join(format!("{name}-img"));
    let mut g = Guard::default();
    let top = root.join(format!("{name}-new"));
    let (mid, ct) = (top.join("mid"), top.join("mid/c1"));
    for d in [&top, &mid, &ct] {
        g.add_dir(d.to_path_buf());
    }
    saved_cpuset(&mut g, &name, &cpu, &images);
    assert!(!top.exists());
    let out = ccr_cli(&[
        "cgroup-restore",
        "-D",
        &images.display().to_string(),
        "--cgroup-root",
        &format!("cpuset:/{name}-new/mid/c1"),
    ]);
    let _ = std::fs::remove_dir_all(&images);
    assert!(out.status.success(), "ccr cgroup-restore: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(read(&ct, "cpuset.cpus"), cpu);
    assert_eq!(read(&ct, "cpuset.mems"), "0");
    for d in [&top, &mid] {
        assert_eq!(read(d, "cpuset.cpus"), all_cpus, "{}", d.display());
        assert_eq!(read(d, "cpuset.mems"), root_mems, "{}", d.display());
    }
}

/// Restored under an existing parent whose cpus do not hold the saved one: the
/// kernel refuses, and the error says why (the parent and its cpus), and the
/// cgroup ccr made is gone again.
#[test]
fn cli_restore_of_a_cpuset_outside_its_parent_says_why() {
    need_root!();
    let (_, cpu) = one_cpu_of_several();
    let root = hier("cpuset").mount_point;
    let name = unique("cs2");
    let images = std::env::temp_dir().join(format!("{name}-img"));
    let mut g = Guard::default();
    saved_cpuset(&mut g, &name, &cpu, &images);
    let parent = g.mkdir(&root.join(format!("{name}-p")));
    g.add_dir(parent.join("c1"));
    let other = read(&root, "cpuset.cpus").split([',', '-']).next().unwrap().to_string();
    assert_ne!(other, cpu);
    write(&parent, "cpuset.cpus", &other);
    write(&parent, "cpuset.mems", "0");
    let out = ccr_cli(&[
        "cgroup-restore",
        "-D",
        &images.display().to_string(),
        "--cgroup-root",
        &format!("cpuset:/{name}-p/c1"),
    ]);
    let _ = std::fs::remove_dir_all(&images);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "restored cpus {cpu} under a parent with cpus {other}");
    let want = format!("{}/cpuset.cpus = \"{cpu}\"", parent.join("c1").display());
    assert!(err.contains(&want), "{err}");
    assert!(err.contains("must lie within its parent's"), "{err}");
    assert!(err.contains(&format!("{} has \"{other}\"", parent.display())), "{err}");
    assert!(!parent.join("c1").exists(), "the cgroup ccr made is left behind");
}

#[test]
fn manage_cgroups_modes() {
    need_root!();
    let mut ct = build("md");
    ct.save();
    let images = ct.images.clone();
    let o = |m| CgroupRestoreCmdOpts {
        images_dir: Some(images.clone()),
        cgroups: CgroupRestoreOpts { manage: m, ..Default::default() },
    };
    let pids_a = ct.dir("pids", "a");

    let e = api::restore(&o(ManageCgroups::Strict)).unwrap_err();
    assert!(matches!(e, ccr::Error::Cgroup(CgroupError::Exists { .. })), "{e}");

    write(&pids_a, "pids.max", "7");
    api::restore(&o(ManageCgroups::Soft)).unwrap();
    assert_eq!(read(&pids_a, "pids.max"), "7", "soft leaves existing cgroups alone");
    api::restore(&o(ManageCgroups::Props)).unwrap();
    assert_eq!(read(&pids_a, "pids.max"), "50", "props configures existing cgroups");
    write(&pids_a, "pids.max", "7");
    api::restore(&o(ManageCgroups::Full)).unwrap();
    assert_eq!(read(&pids_a, "pids.max"), "50", "full configures existing cgroups");

    ct.delete();
    api::restore(&o(ManageCgroups::Ignore)).unwrap();
    let e = api::restore(&o(ManageCgroups::Props)).unwrap_err();
    assert!(matches!(e, ccr::Error::Cgroup(CgroupError::Missing { .. })), "{e}");
    for ctl in CTLS {
        assert!(!ct.dir(ctl, "").exists(), "{ctl}: ignore/props created nothing");
    }
    let name = ct.name.clone();
    ct.track(&format!("/{name}"));
    api::restore(&o(ManageCgroups::Strict)).unwrap();
    assert_eq!(read(&pids_a, "pids.max"), "50");
    assert_eq!(read(&ct.dir("memory", "a/b"), "memory.limit_in_bytes"), (64 * M).to_string());
}

#[test]
fn limit_below_usage_fails_naming_file_and_values() {
    need_root!();
    let mut ct = build("lim");
    let mut img = ct.save();
    // A process in a/b holding ~40 MiB (under its 64 MiB limit).
    let ab = ct.dir("memory", "a/b");
    let pid = ct.guard.spawn("perl", &["-e", "sleep 1; $x = 'a' x 40_000_000; sleep 1000"]);
    write(&ab, "cgroup.procs", &pid.to_string());
    let usage = || read(&ab, "memory.usage_in_bytes").parse::<u64>().unwrap();
    assert!(wait_for(10, || usage() > 30 * M), "usage {}", usage());
    // The image says a/b was limited to 16 MiB.
    let set_limit = |d: &mut pb::CgroupDir| {
        let ab = d.children.iter_mut().find(|c| c.name == "a").unwrap().children.iter_mut().next().unwrap();
        ab.props.iter_mut().find(|p| p.name == "memory.limit_in_bytes").unwrap().value = (16 * M).to_string();
    };
    let mh = img.hierarchies.iter_mut().find(|h| h.controllers == ["memory"]).unwrap();
    set_limit(mh.tree.as_mut().unwrap());
    ct.write_image(&img);
    let e = api::restore(&CgroupRestoreCmdOpts {
        images_dir: Some(ct.images.clone()),
        cgroups: CgroupRestoreOpts { manage: ManageCgroups::Full, ..Default::default() },
    })
    .unwrap_err();
    match e {
        ccr::Error::Cgroup(CgroupError::LimitBelowUsage { path, file, value, usage: u }) => {
            assert_eq!(path, ab);
            assert_eq!(file, "memory.limit_in_bytes");
            assert_eq!(value, (16 * M).to_string());
            assert!(u.parse::<u64>().unwrap() > 30 * M, "{u}");
        }
        e => panic!("expected LimitBelowUsage, got {e}"),
    }
    assert_eq!(read(&ab, "memory.limit_in_bytes"), (64 * M).to_string(), "limit untouched");
}

#[test]
fn missing_hierarchy_is_an_error_and_creates_nothing() {
    need_root!();
    let ct = build("mh");
    let mut img = ct.save();
    img.hierarchies.iter_mut().find(|h| h.controllers == ["pids"]).unwrap().controllers =
        vec!["name=ccrnothere".into()];
    ct.write_image(&img);
    let fresh = format!("/{}-fresh", ct.name);
    let e = api::restore(&CgroupRestoreCmdOpts {
        images_dir: Some(ct.images.clone()),
        cgroups: CgroupRestoreOpts { roots: vec![(None, PathBuf::from(&fresh))], ..Default::default() },
    })
    .unwrap_err();
    assert!(
        matches!(&e, ccr::Error::Cgroup(CgroupError::HierarchyNotMounted { controllers }) if controllers == "name=ccrnothere"),
        "{e}"
    );
    for h in hierarchies() {
        assert!(!h.dir_of(&fresh).unwrap().exists());
    }
}

#[test]
fn save_needs_a_target_and_rejects_unknown_paths() {
    need_root!();
    let dir = std::env::temp_dir().join(unique("noimg"));
    let e = api::save(&CgroupSaveOpts { images_dir: Some(dir.clone()), ..Default::default() }).unwrap_err();
    assert!(matches!(e, ccr::Error::Cgroup(CgroupError::NoSaveTarget)), "{e}");
    let hs = hierarchies();
    assert!(hierarchy::locate(&hs, Path::new("/tmp")).is_none());
    let _ = std::fs::remove_dir_all(dir);
}

/// A zombie in the container (a child its shell has not reaped yet when frozen)
/// reads "/" on every hierarchy: it must not make the hierarchy's root the
/// container's, which would leave the hierarchy alone and lose its cgroups (seen
/// as a container manager's cgroup namespace root missing after a restore).
#[test]
fn a_zombie_does_not_make_the_root_cgroup_the_containers() {
    need_root!();
    let name = unique("zombie");
    let mut guard = Guard::default();
    let (pids, freezer) = (hier("pids").mount_point.join(&name), hier("freezer").mount_point.join(&name));
    guard.mkdir(&pids);
    guard.mkdir(&freezer);
    write(&pids, "pids.max", "50");
    let script = "import os, sys, time\n\
        for d in sys.argv[1:]: open(d + '/cgroup.procs', 'w').write(str(os.getpid()))\n\
        if os.fork() == 0: os._exit(0)\n\
        time.sleep(1000)";
    let pid = guard.spawn("python3", &["-c", script, pids.to_str().unwrap(), freezer.to_str().unwrap()]);
    let zombie = || {
        let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        kids.split_whitespace().filter_map(|k| k.parse::<i32>().ok()).find(|k| {
            std::fs::read_to_string(format!("/proc/{k}/stat"))
                .is_ok_and(|s| s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
        })
    };
    assert!(wait_for(5, || zombie().is_some()), "pid {pid} made no zombie");
    let images = std::env::temp_dir().join(format!("{name}-img"));
    let opts =
        CgroupSaveOpts { pid: Some(pid), freeze_cgroup: Some(freezer.clone()), images_dir: Some(images.clone()) };
    // This machine's PID 1 (process_api) now and then moves a process of its
    // own memory cgroup back to "/" on the other v1 hierarchies (seen 0.1-1 s
    // after it joined ours): a save counts only when python was in place
    // before and after it.
    let in_place = || {
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        [":pids:", ":freezer:"].iter().all(|h| cg.lines().any(|l| l.contains(h) && l.ends_with(&format!("/{name}"))))
    };
    let mut saved = false;
    for _ in 0..10 {
        write(&pids, "cgroup.procs", &pid.to_string());
        write(&freezer, "cgroup.procs", &pid.to_string());
        if !in_place() {
            continue;
        }
        let _ = std::fs::remove_dir_all(&images);
        api::save(&opts).expect("cgroup-save");
        if in_place() {
            saved = true;
            break;
        }
    }
    assert!(saved, "python {pid} never stayed in its cgroups through a save");
    let img: pb::CgroupImage = ImageDir::open(&images).unwrap().read(None).unwrap();
    let h = img.hierarchies.iter().find(|h| h.controllers.iter().any(|c| c == "pids")).expect("the pids hierarchy");
    assert_eq!(h.root, format!("/{name}"), "the container's root on pids");
    assert!(h.tree.is_some(), "the pids hierarchy was left alone");
    let limit = h.tree.as_ref().unwrap().props.iter().find(|p| p.name == "pids.max").map(|p| p.value.clone());
    assert_eq!(limit.as_deref(), Some("50"), "pids.max");
    guard.kill_all();
    guard.remove_dirs();
    let _ = std::fs::remove_dir_all(images);
}
