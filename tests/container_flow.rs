//! The container manager's flow end to end, through the `ccr` command:
//! freeze the cgroup → cgroup-save → dump → the cgroups are deleted →
//! cgroup-restore → restore. The task comes back inside its cgroups, with their
//! limits, and its own state intact. Also: a tree that is its own PID namespace.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{assert_exit, assert_killed, assert_running_untraced, Case};
use nix::sys::signal::Signal;

/// Test cgroups on v1 hierarchies of this machine, removed on drop.
struct Cgroups {
    dirs: Vec<PathBuf>,
}

impl Cgroups {
    fn new(name: &str, controllers: &[&str]) -> Cgroups {
        let dirs: Vec<PathBuf> =
            controllers.iter().map(|c| PathBuf::from(format!("/sys/fs/cgroup/{c}/{name}"))).collect();
        for d in &dirs {
            fs::create_dir_all(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        }
        Cgroups { dirs }
    }

    fn dir(&self, controller: &str) -> PathBuf {
        self.dirs.iter().find(|d| d.starts_with(format!("/sys/fs/cgroup/{controller}/"))).expect("controller").clone()
    }

    fn remove(&self) {
        for d in &self.dirs {
            // A test that failed with the group frozen: its tasks must die first.
            let _ = fs::write(d.join("freezer.state"), "THAWED");
            let _ = fs::remove_dir(d);
        }
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        self.remove();
    }
}

fn read(p: PathBuf) -> String {
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())).trim().to_string()
}

#[test]
fn freeze_save_dump_restore_into_cgroups() {
    let name = format!("ccrtest-{}-flow", std::process::id());
    let cg = Cgroups::new(&name, &["freezer", "pids", "memory"]);
    fs::write(cg.dir("pids").join("pids.max"), "57").unwrap();
    fs::write(cg.dir("memory").join("memory.limit_in_bytes"), "268435456").unwrap();

    let mut case = Case::new("container-flow");
    let pid = case.start_workload("wl_counter", &[]);
    for c in ["freezer", "pids", "memory"] {
        fs::write(cg.dir(c).join("cgroup.procs"), pid.to_string()).unwrap();
    }
    case.wait_ready(pid, Duration::from_secs(10));
    let images = case.images.display().to_string();
    let freezer = cg.dir("freezer").display().to_string();

    let out = case.ccr(&["freeze", "--freeze-cgroup", &freezer]);
    assert!(out.status.success(), "freeze: {}", common::stderr(&out));
    assert_eq!(read(cg.dir("freezer").join("freezer.state")), "FROZEN");
    let out = case.ccr(&["cgroup-save", "--freeze-cgroup", &freezer, "-D", &images]);
    assert!(out.status.success(), "cgroup-save: {}", common::stderr(&out));
    case.dump_ok(pid, &["--freeze-cgroup", &freezer]);
    assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "original after dump");

    // The other side: no cgroups at all until cgroup-restore makes them again.
    let out = case.ccr(&["thaw", "--freeze-cgroup", &freezer]);
    assert!(out.status.success(), "thaw: {}", common::stderr(&out));
    cg.remove();
    assert!(!cg.dir("pids").exists(), "test cgroup still there");
    let out = case.ccr(&["cgroup-restore", "-D", &images, "--manage-cgroups", "full"]);
    assert!(out.status.success(), "cgroup-restore: {}", common::stderr(&out));
    assert_eq!(read(cg.dir("pids").join("pids.max")), "57", "pids.max after cgroup-restore");
    assert_eq!(read(cg.dir("memory").join("memory.limit_in_bytes")), "268435456", "memory limit after cgroup-restore");

    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    assert_running_untraced(pid, "restored task");
    let cgroups = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for c in ["freezer", "pids", "memory"] {
        let want = format!(":{c}:/{name}");
        assert!(cgroups.lines().any(|l| l.ends_with(&want)), "restored task not in {want}:\n{cgroups}");
    }
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(30)), 0, "ccr restore");
    case.assert_pass(1);
}

/// A dump through a freeze cgroup whose helper (the tracer) is killed by SIGKILL
/// in the middle: the command gives the cgroup back its state (thawed, or still
/// frozen when its owner had frozen it), and the task runs on unharmed.
#[test]
fn a_killed_dump_gives_the_freeze_cgroup_back() {
    let name = format!("ccrtest-{}-killfreeze", std::process::id());
    let cg = Cgroups::new(&name, &["freezer"]);
    let mut case = Case::new("kill-freeze");
    // Dropped before `case`, whose tasks cannot die while frozen.
    struct Thaw(PathBuf);
    impl Drop for Thaw {
        fn drop(&mut self) {
            let _ = fs::write(self.0.join("freezer.state"), "THAWED");
        }
    }
    let _thaw = Thaw(cg.dir("freezer"));
    let pid = case.start_workload("wl_threads", &[]);
    fs::write(cg.dir("freezer").join("cgroup.procs"), pid.to_string()).unwrap();
    case.wait_ready(pid, Duration::from_secs(20));
    let freezer = cg.dir("freezer").display().to_string();
    let state = || read(cg.dir("freezer").join("freezer.state"));
    // Killed between Freeze and Seize (the group is frozen: ccr's command must thaw
    // it), in a session, and in a session of a group its owner had frozen.
    for (owner_froze, fault) in [(false, "dump.stage:2"), (false, "remote.call:40"), (true, "remote.start:7")] {
        if owner_froze {
            let out = case.ccr(&["freeze", "--freeze-cgroup", &freezer]);
            assert!(out.status.success(), "freeze: {}", common::stderr(&out));
        }
        let out = Command::new(&common::env().ccr)
            .args(["dump", "-t", &pid.to_string(), "-D"])
            .arg(case.dir.join(format!("images-{fault}")))
            .args(["--leave-running", "--freeze-cgroup", &freezer])
            .env("CCR_FAULT", fault)
            .output()
            .unwrap();
        let err = common::stderr(&out);
        assert!(!out.status.success() && err.contains("killed by SIGKILL"), "{fault}: not the injected kill: {err}");
        let want = if owner_froze { "FROZEN" } else { "THAWED" };
        assert_eq!(state(), want, "{fault}: the freeze cgroup after a killed dump");
        if owner_froze {
            let out = case.ccr(&["thaw", "--freeze-cgroup", &freezer]);
            assert!(out.status.success(), "thaw: {}", common::stderr(&out));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while common::tracer_pid(pid) != Some(0) {
            assert!(std::time::Instant::now() < deadline, "{fault}: pid {pid} is still traced");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_running_untraced(pid, fault);
    }
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(30)), 0, "wl_threads after killed dumps");
    case.assert_pass(1);
}

#[test]
fn tree_in_its_own_pid_namespace() {
    in_own_pid_namespace("pid-namespace", "wl_tree");
}

/// Timers that signal a thread name it by its TID inside the namespace.
#[test]
fn posix_timers_in_a_pid_namespace() {
    in_own_pid_namespace("pid-namespace-timers", "wl_posix_timers");
}

fn in_own_pid_namespace(name: &str, workload: &str) {
    let mut case = Case::new(name);
    let mut cmd = Command::new("unshare");
    // The namespace's init is in unshare's session, outside its namespace: as seen
    // from inside (NSsid 0) nothing to let go of, and it comes back in ccr's.
    cmd.args(["--pid", "--fork"]).arg(Case::workload_path(workload)).arg(case.dir.join("scratch"));
    let unshare = case.start(cmd);
    case.wait_ready(unshare, Duration::from_secs(10));
    let root: i32 = fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
        .unwrap()
        .split_whitespace()
        .next()
        .expect("unshare's child")
        .parse()
        .unwrap();
    let ns_pid = |p: i32| -> String {
        let st = fs::read_to_string(format!("/proc/{p}/status")).unwrap();
        st.lines().find(|l| l.starts_with("NSpid:")).unwrap().split_whitespace().last().unwrap().to_string()
    };
    assert_eq!(ns_pid(root), "1", "the tree's root is not PID 1 of its namespace");
    case.track(root);
    case.dump_ok(root, &[]);
    case.wait_exit(unshare, Duration::from_secs(20));

    let rp = case.spawn_restore(&[]);
    let restored = case.wait_pidfile(rp, Duration::from_secs(30));
    case.track(restored);
    assert_eq!(ns_pid(restored), "1", "restored root is not PID 1 of a new PID namespace");
    let ours = fs::read_link("/proc/self/ns/pid").unwrap();
    assert_ne!(fs::read_link(format!("/proc/{restored}/ns/pid")).unwrap(), ours, "restored in our own PID namespace");
    case.signal(restored, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(60)), 0, "ccr restore (the restored tree's status)");
    case.assert_pass(1);
}

/// Thaws a tree frozen by ptrace when a test ends, also when it fails (its holder
/// would keep the tasks stopped, and the test run waiting).
struct Thaw(i32);

impl Drop for Thaw {
    fn drop(&mut self) {
        let _ = Command::new(&common::env().ccr).args(["thaw", "-t", &self.0.to_string()]).output();
    }
}

/// Freezing a bare PID by ptrace: the tree stops (traced, not running) until
/// thawed; a dump while frozen is done by the holder without letting it run; the
/// restored task passes its own checks.
#[test]
fn ptrace_freeze_thaw_and_dump() {
    let mut case = Case::new("ptrace-freeze");
    let pid = case.start_workload("wl_counter", &[]);
    case.wait_ready(pid, Duration::from_secs(10));
    let p = pid.to_string();
    let _thaw = Thaw(pid);

    let out = case.ccr(&["freeze", "-t", &p]);
    assert!(out.status.success(), "freeze: {}", common::stderr(&out));
    assert_eq!(common::state(pid), Some('t'), "frozen task is not in a tracing stop");
    assert_ne!(common::tracer_pid(pid), Some(0), "frozen task is not held by ptrace");
    let out = case.ccr(&["thaw", "-t", &p]);
    assert!(out.status.success(), "thaw: {}", common::stderr(&out));
    std::thread::sleep(Duration::from_millis(100));
    assert_running_untraced(pid, "task after thaw");

    let out = case.ccr(&["freeze", "-t", &p]);
    assert!(out.status.success(), "second freeze: {}", common::stderr(&out));
    case.dump_ok(pid, &[]);
    assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "original after dump");
    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(30)), 0, "ccr restore");
    case.assert_pass(1);
}

/// A dump of a tree frozen by ptrace is done by the holder with every option the
/// caller gave: here the log file and level, and --leave-running (the tree stays
/// held until thawed, then runs on and passes its checks). The paths are relative
/// to the caller's directory, not the holder's.
#[test]
fn ptrace_freeze_dump_options_reach_the_holder() {
    let mut case = Case::new("ptrace-freeze-opts");
    let pid = case.start_workload("wl_counter", &[]);
    case.wait_ready(pid, Duration::from_secs(10));
    let p = pid.to_string();
    let _thaw = Thaw(pid);
    // The holder starts in / (where this freeze runs); the dump runs in the case's
    // directory with paths relative to it.
    let out = Command::new(&common::env().ccr).args(["freeze", "-t", &p]).current_dir("/").output().unwrap();
    assert!(out.status.success(), "freeze: {}", common::stderr(&out));
    let out = case.ccr(&["dump", "-t", &p, "-D", "images", "-o", "dump.log", "-v4", "--leave-running"]);
    assert!(out.status.success(), "dump through the holder: {}", common::stderr(&out));
    let log = fs::read_to_string(case.dir.join("dump.log")).unwrap_or_default();
    assert!(log.contains("Debug: ") && log.contains(&format!("dump of pid {pid} done")), "holder log: {log}");
    assert!(case.images.join("inventory.img").exists(), "no checkpoint written by the holder");
    assert_eq!(common::state(pid), Some('t'), "a --leave-running dump by the holder let the tree run");
    let out = case.ccr(&["thaw", "-t", &p]);
    assert!(out.status.success(), "thaw: {}", common::stderr(&out));
    std::thread::sleep(Duration::from_millis(100));
    assert_running_untraced(pid, "task after thaw");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, "original");
    case.assert_pass(1);
}

/// A group its owner had frozen stays frozen after a dump that froze it again and
/// let the tasks go (--leave-running): they are untraced but still frozen, and run
/// on (and pass their checks) once the owner thaws the group.
#[test]
fn owner_frozen_group_stays_frozen_after_dump() {
    let name = format!("ccrtest-{}-ownerfrozen", std::process::id());
    let cg = Cgroups::new(&name, &["freezer"]);
    let mut case = Case::new("owner-frozen");
    let pid = case.start_workload("wl_counter", &[]);
    fs::write(cg.dir("freezer").join("cgroup.procs"), pid.to_string()).unwrap();
    case.wait_ready(pid, Duration::from_secs(10));
    let freezer = cg.dir("freezer").display().to_string();
    let out = case.ccr(&["freeze", "--freeze-cgroup", &freezer]);
    assert!(out.status.success(), "freeze: {}", common::stderr(&out));

    case.dump_ok(pid, &["--leave-running", "--freeze-cgroup", &freezer]);
    assert_eq!(read(cg.dir("freezer").join("freezer.state")), "FROZEN", "the owner's freeze was lost");
    assert_eq!(common::tracer_pid(pid), Some(0), "task still traced after the dump");
    assert!(common::exists(pid), "task gone after a --leave-running dump");

    let out = case.ccr(&["thaw", "--freeze-cgroup", &freezer]);
    assert!(out.status.success(), "thaw: {}", common::stderr(&out));
    std::thread::sleep(Duration::from_millis(100));
    assert_running_untraced(pid, "task after the owner's thaw");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, "original");
    case.assert_pass(1);
}

/// A tree with a UTS namespace of its own comes back in a new one with its host
/// and domain names (wl_namespaces checks them), not in ccr's.
#[test]
fn uts_namespace_comes_back() {
    fn other_uts(_case: &mut Case, pid: i32) {
        let ours = fs::read_link("/proc/self/ns/uts").unwrap();
        assert_ne!(fs::read_link(format!("/proc/{pid}/ns/uts")).unwrap(), ours, "restored into ccr's UTS namespace");
    }
    common::cycle("uts-namespace", "wl_namespaces", &[("WL_NS", "uts")], Some(other_uts));
}

/// A tree with an IPC namespace of its own comes back in a new one holding its
/// SysV segment (contents), semaphore set (value) and message queue (the queued
/// message), all under their ids — with its UTS namespace too.
#[test]
fn ipc_namespace_comes_back() {
    fn other_ipc(_case: &mut Case, pid: i32) {
        let ours = fs::read_link("/proc/self/ns/ipc").unwrap();
        assert_ne!(fs::read_link(format!("/proc/{pid}/ns/ipc")).unwrap(), ours, "restored into ccr's IPC namespace");
    }
    common::cycle("ipc-namespace", "wl_namespaces", &[("WL_NS", "ipc")], Some(other_ipc));
    common::cycle("uts-ipc-namespaces", "wl_namespaces", &[("WL_NS", "uts,ipc")], Some(other_ipc));
}

/// A tree with a time namespace of its own comes back in a new one whose clocks go
/// on from where the tasks left them: CLOCK_MONOTONIC and CLOCK_BOOTTIME keep the
/// offsets they had (here 1e6 and 2e6 s ahead of the host's) less the time
/// between dump and restore, which the tasks do not see pass.
#[test]
fn time_namespace_comes_back() {
    let mut case = Case::new("time-namespace");
    let mut cmd = Command::new("unshare");
    cmd.args(["--time", "--monotonic", "1000000", "--boottime", "2000000", "--fork", "setsid"])
        .arg(Case::workload_path("wl_timens"))
        .arg(case.dir.join("scratch"));
    let unshare = case.start(cmd);
    case.wait_ready(unshare, Duration::from_secs(10));
    let root = common::children_of(unshare)[0];
    case.track(root);
    case.dump_ok(root, &[]);
    let _ = case.wait_exit(unshare, Duration::from_secs(10));
    common::reap_gone(&[root], "the dumped tree");
    std::thread::sleep(Duration::from_millis(1500));
    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), root, "restored root");
    let ours = fs::read_link("/proc/self/ns/time").unwrap();
    assert_ne!(fs::read_link(format!("/proc/{root}/ns/time")).unwrap(), ours, "restored into ccr's time namespace");
    let offsets = fs::read_to_string(format!("/proc/{root}/timens_offsets")).unwrap();
    let secs = |clock: &str| -> i64 {
        let line = offsets.lines().find(|l| l.starts_with(clock)).unwrap_or_else(|| panic!("{offsets}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    // The offsets lose the time the tasks did not run (1.5 s and the dump).
    assert!((999_900..1_000_000).contains(&secs("monotonic")), "monotonic offset: {offsets}");
    assert!((1_999_900..2_000_000).contains(&secs("boottime")), "boottime offset: {offsets}");
    case.signal(root, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(30)), 0, "ccr restore (the workload's status)");
    case.assert_pass(1);
    let out = case.output();
    let lag: i64 = out
        .lines()
        .find_map(|l| l.strip_prefix("info: lag ")?.strip_suffix(" ms")?.parse().ok())
        .unwrap_or_else(|| panic!("no lag line: {out}"));
    assert!(lag >= 1400, "the clocks went on while the tasks were not running (lag {lag} ms)");
}

/// A tree with a network namespace of its own comes back in a new one: lo up with
/// the addresses the workload added (a labelled IPv4 one, an IPv6 one) and
/// without the ::1 it removed, and the sysctls it changed (ip_default_ttl,
/// somaxconn, ip_local_port_range); wl_namespaces checks them.
#[test]
fn net_namespace_comes_back() {
    fn other_net(_case: &mut Case, pid: i32) {
        let ours = fs::read_link("/proc/self/ns/net").unwrap();
        assert_ne!(
            fs::read_link(format!("/proc/{pid}/ns/net")).unwrap(),
            ours,
            "restored into ccr's network namespace"
        );
    }
    common::cycle("net-namespace", "wl_namespaces", &[("WL_NS", "net")], Some(other_net));
    // With its UTS and mount namespaces too (the mounts are built in the new one).
    common::cycle("net-uts-mnt-namespaces", "wl_namespaces", &[("WL_NS", "net,uts,mnt")], Some(other_net));
}

/// Runs `args` in the network namespace of `pid` (nsenter, ip from iproute2:
/// scripts/install-deps.sh installs it); a missing tool fails the test.
fn in_net_ns(pid: i32, args: &[&str]) {
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("nsenter {args:?}: {e} (install util-linux and iproute2)"));
    assert!(out.status.success(), "nsenter {args:?}: {}", common::stderr(&out));
}

/// What ccr cannot save of a network namespace is refused by name, and the tree
/// runs on with its own state: a device other than lo (a bridge: this kernel
/// has no dummy), a route nobody's address made through lo, a policy rule of its own, a default rule removed
/// (or made again by hand).
#[test]
fn net_namespaces_ccr_cannot_save_are_refused_by_name() {
    let mut case = Case::new("net-refused");
    let pid = case.start_workload("wl_namespaces", &[("WL_NS", "net")]);
    case.wait_ready(pid, Duration::from_secs(10));
    let refused = |case: &Case, pid: i32, want: &str| {
        let out = case.dump(pid, &[]);
        let err = common::stderr(&out);
        assert!(!out.status.success(), "a dump with {want} succeeded");
        assert!(err.contains(want) && err.contains(&format!("pid {pid}")), "the error does not name {want}: {err}");
        assert!(!case.images.join("inventory.img").exists(), "a refused dump wrote an inventory");
        assert_running_untraced(pid, want);
    };
    in_net_ns(pid, &["ip", "link", "add", "ccr-br0", "type", "bridge"]);
    refused(&case, pid, "its network namespace has device ccr-br0 (bridge), which ccr cannot save yet");
    in_net_ns(pid, &["ip", "link", "del", "ccr-br0"]);
    in_net_ns(pid, &["ip", "route", "add", "10.99.0.0/16", "dev", "lo"]);
    refused(&case, pid, "a route to 10.99.0.0/16");
    in_net_ns(pid, &["ip", "route", "del", "10.99.0.0/16", "dev", "lo"]);
    in_net_ns(pid, &["ip", "rule", "add", "from", "10.99.0.0/16", "table", "100", "priority", "100"]);
    refused(&case, pid, "a policy routing rule of family 2 at priority 100 to table 100");
    in_net_ns(pid, &["ip", "rule", "del", "priority", "100"]);
    in_net_ns(pid, &["ip", "-6", "rule", "del", "priority", "32766"]);
    refused(&case, pid, "no policy routing rule of family 10 at priority 32766 to table 254");
    in_net_ns(pid, &["ip", "-6", "rule", "add", "priority", "32766", "table", "main"]);
    refused(&case, pid, "a policy routing rule of family 10 at priority 32766 to table 254 (protocol");
    in_net_ns(pid, &["ip", "-6", "rule", "del", "priority", "32766"]);
    in_net_ns(pid, &["ip", "-6", "rule", "add", "priority", "32766", "table", "main", "protocol", "kernel"]);
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, "the refused tree");
    case.assert_pass(1);
}

/// Unix sockets of a tree's own network namespace come back in the new one
/// (c-tests/wl_netunix: a syslog-style datagram socket bound in a tmpfs /dev with
/// its queue, an abstract listener, a stale socket file, a pair shared with a
/// child), a pair made before the unshare in the namespace it was made in, and
/// wl_fdkinds' pairs under `unshare --net` in the tree's. A leave-running dump
/// leaves the queues as they were.
#[test]
fn unix_sockets_of_a_trees_own_network_namespace_come_back() {
    fn abstract_name_is_not_ccrs(_case: &mut Case, pid: i32) {
        let name = format!("ccr-wl-netunix-{pid}");
        let seen = fs::read_to_string("/proc/net/unix").unwrap();
        assert!(!seen.contains(&name), "the tree's listener @{name} came back in ccr's network namespace");
    }
    common::cycle("net-unix", "wl_netunix", &[], Some(abstract_name_is_not_ccrs));
    common::leave_running("net-unix-leave-running", "wl_netunix");

    let mut case = Case::new("net-unix-fdkinds");
    let mut cmd = Command::new("unshare");
    cmd.arg("--net").arg(Case::workload_path("wl_fdkinds")).arg(case.dir.join("scratch"));
    let pid = case.start(cmd);
    case.wait_ready(pid, Duration::from_secs(10));
    case.track(pid);
    case.dump_ok(pid, &[]);
    assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "wl_fdkinds after dump");
    common::reap_gone(&[pid], "wl_fdkinds");
    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(30)), 0, "wl_fdkinds restored in its own network namespace");
    case.assert_pass(1);
}

/// What ccr cannot bring back of a tree's unix sockets is refused by name and
/// the tree runs on: a socket bound in the namespace the tree's root left (its
/// task would bind it again in its own), and a socket file in the tree's tmpfs
/// that a process outside the tree is bound to.
#[test]
fn unix_sockets_ccr_cannot_bring_back_are_refused() {
    for (env, want) in [
        ("WL_NETUNIX_HOSTBOUND", "bound in a network namespace other than its task's"),
        ("WL_NETUNIX_OUTSIDE", "a socket file a process outside the checkpoint is bound to"),
    ] {
        let mut case = Case::new("net-unix-refused");
        let pid = case.start_workload("wl_netunix", &[(env, "1")]);
        case.wait_ready(pid, Duration::from_secs(10));
        let outside = fs::read_to_string(case.dir.join("scratch/outside.pid")).ok();
        let outside = outside.map(|p| p.trim().parse::<i32>().expect("outside.pid"));
        if let Some(o) = outside {
            case.track(o);
        }
        let out = case.dump(pid, &[]);
        let err = common::stderr(&out);
        assert!(!out.status.success(), "a dump with {env} succeeded");
        assert!(err.contains(want), "the error does not say {want:?}: {err}");
        assert!(!case.images.join("inventory.img").exists(), "a refused dump wrote an inventory");
        assert_running_untraced(pid, env);
        if let Some(o) = outside {
            case.signal(o, Signal::SIGKILL);
        }
        case.signal(pid, Signal::SIGTERM);
        assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, env);
        case.assert_pass(1);
    }
}

/// Network devices of ccr's namespace a test made (or a restore under test may
/// have left), deleted on drop, whatever the test's outcome.
struct HostDevices(Vec<String>);

impl Drop for HostDevices {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = Command::new("ip").args(["link", "del", d]).stderr(std::process::Stdio::null()).status();
        }
    }
}

/// `ip ARGS` in ccr's namespace: its stdout, or why it failed.
fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip {args:?}: {e} (install iproute2)"))?;
    if !out.status.success() {
        return Err(format!("ip {args:?}: {}", common::stderr(&out)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn link_exists(name: &str) -> bool {
    ip(&["link", "show", "dev", name]).is_ok()
}

/// Makes bridge `name` with the gateway addresses of wl_veth's `subnet`, up;
/// false (a skip, a failure under CI=1) when this machine cannot.
fn test_bridge(name: &str, subnet: &str) -> bool {
    let made = ip(&["link", "add", name, "type", "bridge"])
        .and_then(|_| ip(&["addr", "add", &format!("10.213.{subnet}.1/24"), "dev", name]))
        .and_then(|_| ip(&["-6", "addr", "add", &format!("fd00:cc:{subnet}::1/64"), "dev", name, "nodad"]))
        .and_then(|_| ip(&["link", "set", name, "up"]));
    if let Err(e) = made {
        assert!(std::env::var_os("CI").is_none(), "cannot make a bridge ({e}); CI=1 makes a skip a failure");
        eprintln!("skipped: cannot make a bridge: {e}");
        return false;
    }
    true
}

/// The same through the C ABI (c-tests/api_veth.c): ccr_opts_add_veth_pair()
/// refuses bad names, a restore without it fails naming eth0 and the call, one
/// with it brings the container back with its host end in the bridge.
#[test]
fn c_api_veth_pair() {
    let tag = std::process::id();
    let (bridge, old_host, new_host) = (format!("ccrt{tag}c"), format!("ccrt{tag}o"), format!("ccrt{tag}p"));
    let _devices = HostDevices(vec![new_host.clone(), old_host.clone(), bridge.clone()]);
    let subnet = ((tag + 1) % 200 + 20).to_string();
    if !test_bridge(&bridge, &subnet) {
        return;
    }
    let mut case = Case::new("api-veth");
    let env = common::env();
    let mut cmd = Command::new(env.bin.join("api_veth"));
    cmd.arg(Case::workload_path("wl_veth"))
        .arg(case.dir.join("api"))
        .args([&old_host, &new_host, &bridge, &subnet])
        .env("LD_LIBRARY_PATH", &env.lib);
    let pid = case.start(cmd);
    assert_exit(case.wait_exit(pid, Duration::from_secs(90)), 0, "api_veth");
    case.assert_pass(1);
}

/// A UDP datagram sent from ccr's namespace (from `from`, the bridge's address)
/// reaches a socket bound to `to` in the network namespace of `pid`.
fn datagram_reaches(pid: i32, from: &str, to: &str) -> Result<(), String> {
    use std::net::UdpSocket;
    let ns = fs::File::open(format!("/proc/{pid}/ns/net")).map_err(|e| format!("pid {pid}'s netns: {e}"))?;
    let to = format!("{to}:47123");
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    let bind_at = to.clone();
    let receiver = std::thread::spawn(move || -> Result<String, String> {
        // This thread alone enters the container's namespace.
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns: {e}"))?;
        let sock = UdpSocket::bind(&bind_at).map_err(|e| format!("bind {bind_at} inside: {e}"))?;
        sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = bound_tx.send(());
        let mut buf = [0u8; 64];
        let (n, src) = sock.recv_from(&mut buf).map_err(|e| format!("no datagram at {bind_at}: {e}"))?;
        Ok(format!("{} from {src}", String::from_utf8_lossy(&buf[..n])))
    });
    let sender = UdpSocket::bind(format!("{from}:0")).map_err(|e| format!("bind {from}: {e}"))?;
    if bound_rx.recv_timeout(Duration::from_secs(10)).is_ok() {
        // The first may wait on neighbour discovery: a few, until one arrives.
        while !receiver.is_finished() {
            let _ = sender.send_to(b"through the bridge", &to);
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let got = receiver.join().map_err(|_| "the receiver panicked".to_string())??;
    assert!(got.starts_with("through the bridge from "), "{got}");
    assert!(got.contains(from), "the datagram did not come from the bridge's address: {got}");
    Ok(())
}

/// A container's eth0, one end of a veth pair whose other end is on the host in
/// a bridge, comes back as a new pair: the tree's end with its MAC, MTU 1400,
/// IPv4 and IPv6 addresses, up, and its default routes (wl_veth checks them);
/// the host end under the name the caller gives (`--veth-pair eth0=NEW@BRIDGE`,
/// or `--external veth[eth0]:NEW@BRIDGE`),
/// up and a port of the bridge, and a datagram from the host through the bridge
/// reaches the container's address. A second pair with both ends inside
/// (in0/in1) is made inside again, and every device keeps its ifindex. Without
/// --veth-pair, or with a host name in
/// use, the restore fails naming it and leaves no task and no device; one that
/// fails after the pair is made (a setup-namespaces hook) deletes its host end,
/// and what a ccr killed right after making it leaves, `ccr cleanup` deletes.
#[test]
fn a_containers_veth_comes_back_with_its_host_end_in_a_bridge() {
    let tag = std::process::id();
    let (bridge, old_host, new_host) = (format!("ccrt{tag}b"), format!("ccrt{tag}h"), format!("ccrt{tag}n"));
    let _devices = HostDevices(vec![new_host.clone(), old_host.clone(), bridge.clone()]);
    let subnet = (tag % 200 + 20).to_string();
    let gw = format!("10.213.{subnet}.1");
    if !test_bridge(&bridge, &subnet) {
        return;
    }
    let mut case = Case::new("veth");
    let envs = [("WL_VETH_HOST", old_host.as_str()), ("WL_VETH_BRIDGE", &bridge), ("WL_VETH_SUBNET", &subnet)];
    let pid = case.start_workload("wl_veth", &envs);
    case.wait_ready(pid, Duration::from_secs(10));
    assert!(ip(&["link", "show", "master", &bridge]).unwrap().contains(&old_host), "the workload's host end");
    // A route through eth0 with what ccr does not save (a metric) is refused by
    // name, and the container runs on.
    in_net_ns(pid, &["ip", "route", "add", "10.215.0.0/16", "via", &gw, "mtu", "1300"]);
    let out = case.dump(pid, &[]);
    let err = common::stderr(&out);
    assert!(!out.status.success() && err.contains("a route to 10.215.0.0/16 through eth0 with metrics"), "{err}");
    assert_running_untraced(pid, "the container after a refused dump");
    in_net_ns(pid, &["ip", "route", "del", "10.215.0.0/16"]);
    case.dump_ok(pid, &[]);
    assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "original after dump");
    common::reap_gone(&[pid], "the dumped tree");

    let images = case.images.display().to_string();
    let refused = |case: &Case, extra: &[&str], want: &str| {
        let mut args = vec!["restore", "-D", &images, "-d"];
        args.extend(extra);
        let out = case.ccr(&args);
        let err = common::stderr(&out);
        assert!(!out.status.success(), "a restore with {extra:?} succeeded");
        assert!(err.contains(want), "the error does not say {want:?}: {err}");
        assert!(!common::exists(pid), "a failed restore left pid {pid}");
        assert!(!link_exists(&new_host), "a failed restore left {new_host}");
    };
    refused(&case, &[], "veth eth0, whose peer was outside it: name its new host end with --veth-pair eth0=");
    let taken = format!("eth0={bridge}");
    refused(&case, &["--veth-pair", &taken], &format!("veth host end {bridge}: the name is in use"));
    refused(&case, &["--veth-pair", "eth1=ccrtx"], "the checkpoint has no veth eth1");
    refused(
        &case,
        &["--veth-pair", "in0=ccrtx"],
        "no veth in0 whose peer was outside (its peer is in the namespace too)",
    );
    // Made, then undone: a hook after the fork fails the restore.
    let seen = case.dir.join("seen");
    let hook = case.dir.join("fail.sh");
    let script = format!(
        "#!/bin/sh\n[ \"$CRTOOLS_SCRIPT_ACTION\" = setup-namespaces ] || exit 0\nip -o link show {new_host} > {}\nexit 1\n",
        seen.display()
    );
    fs::write(&hook, script).unwrap();
    fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let pair = format!("eth0={new_host}@{bridge}");
    refused(&case, &["--veth-pair", &pair, "--action-script", &hook.display().to_string()], "setup-namespaces");
    let seen = fs::read_to_string(&seen).unwrap_or_default();
    assert!(seen.contains(&format!("master {bridge}")), "the hook did not see {new_host} in {bridge}: {seen:?}");

    // A ccr killed once the pair is made, before the tree has its end: the
    // journal names the pair, and `ccr cleanup` deletes it.
    let killed = Command::new(&common::env().ccr)
        .args(["restore", "-D", &images, "-d", "--veth-pair", &pair])
        .env("CCR_FAULT", "restore.veth:1")
        .output()
        .unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&killed.status), Some(libc::SIGKILL), "the injected kill");
    assert!(link_exists(&new_host), "the killed restore had not made {new_host} yet");
    let out = case.ccr(&["cleanup", "-D", &images]);
    assert!(out.status.success(), "ccr cleanup: {}", common::stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("removed veth pair {new_host}")), "ccr cleanup said: {said}");
    assert!(!link_exists(&new_host), "ccr cleanup left {new_host}");
    assert!(!common::exists(pid), "the killed restore left pid {pid}");

    // As LXC names it for a criu of 2.8 on: --external veth[IN]:OUT@BRIDGE.
    let external = format!("veth[eth0]:{new_host}@{bridge}");
    let rp = case.spawn_restore(&["--external", &external]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid, "restored root");
    assert_running_untraced(pid, "the restored container");
    let link = ip(&["-o", "link", "show", "dev", &new_host]).unwrap();
    let flags = link.split(['<', '>']).nth(1).unwrap_or_default();
    assert!(link.contains(&format!("master {bridge}")), "{new_host} is not in {bridge}: {link}");
    assert!(flags.split(',').any(|f| f == "UP"), "{new_host} is down: {link}");
    assert!(link.contains("mtu 1400"), "{new_host} has not the container's MTU: {link}");
    datagram_reaches(pid, &gw, &format!("10.213.{subnet}.2")).unwrap();
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(30)), 0, "ccr restore (the workload's status)");
    case.assert_pass(1);
}

/// Until ccr saves a namespace type, a tree with a namespace of that type of its
/// own (in any thread, or unshared for its children) is refused by name: restore
/// would put it into ccr's namespace and lose its hostname, mounts, IPC objects or
/// cgroups. The tree runs on untouched and keeps its state.
#[test]
fn own_namespaces_are_refused_by_name() {
    // (case, what the error names, unshare's options, the workload's environment)
    type NsCase = (&'static str, &'static str, &'static [&'static str], &'static [(&'static str, &'static str)]);
    let cases: [NsCase; 8] = [
        (
            "mqueue-full",
            "POSIX message queue /ccr-wl-mq holding 1 messages",
            &[],
            &[("WL_NS", "ipc"), ("WL_MQ_FULL", "1")],
        ),
        ("net-thread", "its own net namespace", &[], &[("WL_NS_THREAD", "net")]),
        ("cgroup-thread", "its own cgroup namespace", &[], &[("WL_NS_THREAD", "cgroup")]),
        ("uts-thread", "its own uts namespace", &[], &[("WL_NS_THREAD", "uts")]),
        // A user namespace below one of the tree's own (one level comes back).
        (
            "user-nested",
            "nested below another one",
            &["--user", "--map-root-user", "unshare", "--user", "--map-root-user"],
            &[("WL_NS", "")],
        ),
        // The tree's own network namespace, owned by ccr's user namespace, not the
        // tree's: the one restore makes would be the tree's.
        (
            "user-owns-not-net",
            "a net namespace (net:[",
            &["--net", "unshare", "--user", "--map-root-user"],
            &[("WL_NS", "")],
        ),
        ("time-children", "a time namespace unshared for its future children", &[], &[("WL_NS", "time_children")]),
        ("pid-children", "a pid namespace unshared for its future children", &[], &[("WL_NS", "pid_children")]),
    ];
    for (name, want, unshare, envs) in cases {
        let mut case = Case::new(&format!("own-ns-{name}"));
        let mut cmd =
            Command::new(if unshare.is_empty() { Case::workload_path("wl_namespaces") } else { "unshare".into() });
        if !unshare.is_empty() {
            cmd.args(unshare).arg(Case::workload_path("wl_namespaces"));
        }
        cmd.arg(case.dir.join("scratch")).envs(envs.iter().copied());
        let started = case.start(cmd);
        case.wait_ready(started, Duration::from_secs(10));
        let pid = if unshare.contains(&"--fork") { common::children_of(started)[0] } else { started };
        case.track(pid);
        let named = if name.ends_with("-thread") {
            let tids = fs::read_dir(format!("/proc/{pid}/task")).unwrap();
            let tid = tids.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()).find(|t| *t != pid);
            format!("thread {}", tid.expect("the workload's second thread"))
        } else {
            format!("pid {pid}")
        };
        let out = case.dump(pid, &[]);
        let err = common::stderr(&out);
        assert!(!out.status.success(), "{name}: dump of a tree in {want} succeeded");
        assert!(
            err.contains(want) && err.contains(&named),
            "{name}: the error does not name {named} and {want}: {err}"
        );
        assert!(!case.images.join("inventory.img").exists(), "{name}: a refused dump wrote an inventory");
        assert_running_untraced(pid, name);
        case.signal(pid, Signal::SIGTERM);
        assert_exit(case.wait_exit(started, Duration::from_secs(20)), 0, name);
        case.assert_pass(1);
    }
}

/// A tree whose root has a user namespace of its own (uid and gid maps
/// "0 100000 65536", as an unprivileged LXC container has) comes back in a new
/// one with the same maps, owning the tree's new mount, UTS, PID, network,
/// cgroup, IPC and time namespaces; the root is uid 0 and its child uid 1000 of
/// the namespace (host 100000 and 101000), its tmpfs file is owned by 1000:1001
/// inside, its SysV objects and POSIX queue are back owned by its root, its clock
/// is still a day ahead, and it still has its capabilities there (wl_userns
/// checks from inside). The restored tree is checkpointed and restored once
/// more. Then the same with the user namespace alone, with setgroups allowed and
/// denied.
#[test]
fn user_namespace_comes_back() {
    userns_cycle("user-namespace", &[], &["mnt", "uts", "pid", "net", "cgroup", "ipc", "time"]);
    userns_cycle("user-namespace-bare", &[("WL_USERNS", "bare")], &[]);
    // Setgroups denied: the root keeps the host groups it had (ccr takes them for the fork).
    userns_cycle("user-namespace-deny", &[("WL_USERNS", "bare-deny")], &[]);
}

/// Our children, with whether each has exited and waits to be reaped.
fn our_children() -> Vec<(i32, bool)> {
    let us = std::process::id().to_string();
    let pids = fs::read_dir("/proc").unwrap().flatten().filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok());
    pids.filter_map(|p| {
        let stat = fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
        let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
        let f: Vec<&str> = after.split_whitespace().collect();
        (f.get(1) == Some(&us.as_str())).then(|| (p, f.first() == Some(&"Z")))
    })
    .collect()
}

fn userns_cycle(name: &str, envs: &[(&str, &str)], owned: &[&str]) {
    use std::os::unix::fs::MetadataExt;
    let mut case = Case::new(name);
    let mut cmd = Command::new(Case::workload_path("wl_userns"));
    cmd.arg(case.dir.join("scratch")).envs(envs.iter().copied());
    let launcher = case.start(cmd);
    case.wait_ready(launcher, Duration::from_secs(10));
    let root = common::children_of(launcher)[0];
    case.track(root);
    let ids = |p: i32, what: &str| -> String {
        let st = fs::read_to_string(format!("/proc/{p}/status")).unwrap();
        st.lines().find(|l| l.starts_with(what)).unwrap().split_whitespace().nth(1).unwrap().to_string()
    };
    assert_eq!(ids(root, "Uid:"), "100000", "{name}: the workload's root is not its namespace's root");
    case.dump_ok(root, &[]);
    case.wait_exit(launcher, Duration::from_secs(20));

    // No namespace of the host can be joined from inside the tree's.
    let images = case.images.display().to_string();
    let ours = format!("uts:{}", std::process::id());
    let out = case.ccr(&["restore", "-D", &images, "-d", "--join-ns", &ours]);
    let err = common::stderr(&out);
    assert!(!out.status.success() && err.contains("--join-ns uts") && err.contains("user namespace"), "{name}: {err}");
    // A restore killed once the tree is forked in its new user namespace (before
    // and after ccr seized it) leaves no task of it behind.
    let workload = fs::canonicalize(Case::workload_path("wl_userns")).unwrap();
    for stage in [6, 9] {
        let st = Command::new(&common::env().ccr)
            .args(["restore", "-D", &images, "-d", "-o"])
            .arg(case.dir.join(format!("restore-killed-{stage}.log")))
            .env("CCR_FAULT", format!("restore.stage:{stage}"))
            .stdin(std::process::Stdio::null())
            .status()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(st.signal(), Some(libc::SIGKILL), "{name}: the restore killed at stage {stage}: {st}");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let left = || -> Vec<i32> {
            let pids = fs::read_dir("/proc").unwrap().flatten().filter_map(|e| e.file_name().to_str()?.parse().ok());
            pids.filter(|p: &i32| fs::read_link(format!("/proc/{p}/exe")).is_ok_and(|e| e == workload)).collect()
        };
        // A detached restore makes the root our child (CLONE_PARENT): it is ours to
        // reap, and its pid is free again only then.
        loop {
            let kids = our_children();
            for &(p, _) in kids.iter().filter(|(_, zombie)| *zombie) {
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(p), None);
            }
            if (kids.is_empty() && left().is_empty()) || std::time::Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(left(), Vec::<i32>::new(), "{name}: a restore killed at stage {stage} left tasks");
        assert_eq!(our_children(), vec![], "{name}: a restore killed at stage {stage} left its root");
    }

    let check = |restored: i32| {
        let ours = fs::read_link("/proc/self/ns/user").unwrap();
        assert_ne!(
            fs::read_link(format!("/proc/{restored}/ns/user")).unwrap(),
            ours,
            "{name}: in ccr's user namespace"
        );
        for map in ["uid_map", "gid_map"] {
            let text = fs::read_to_string(format!("/proc/{restored}/{map}")).unwrap();
            let lines: Vec<String> = text.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
            assert_eq!(lines, ["0 100000 65536"], "{name}: {map}");
        }
        assert_eq!(ids(restored, "Uid:"), "100000", "{name}: the restored root's uid as the host sees it");
        assert_eq!(ids(restored, "Gid:"), "100000", "{name}: the restored root's gid as the host sees it");
        let groups = |p: i32| {
            let st = fs::read_to_string(format!("/proc/{p}/status")).unwrap();
            st.lines()
                .find(|l| l.starts_with("Groups:"))
                .unwrap()
                .split_whitespace()
                .skip(1)
                .collect::<Vec<_>>()
                .join(" ")
        };
        let want = if envs.contains(&("WL_USERNS", "bare-deny")) { "0 1234" } else { "" };
        assert_eq!(groups(restored), want, "{name}: the restored root's groups as the host sees them");
        if let Some(&kid) = common::children_of(restored).first() {
            assert_eq!(ids(kid, "Uid:"), "101000", "{name}: the restored child's uid as the host sees it");
        }
        // Each namespace of its own is owned by its user namespace (lsns: TYPE ONS).
        let user_ino = fs::metadata(format!("/proc/{restored}/ns/user")).unwrap().ino().to_string();
        let out = Command::new("lsns").args(["-n", "-p", &restored.to_string(), "-o", "TYPE,ONS"]).output().unwrap();
        let lsns = String::from_utf8_lossy(&out.stdout).to_string();
        for kind in owned {
            let line = lsns.lines().find(|l| l.split_whitespace().next() == Some(kind));
            let owner = line.and_then(|l| l.split_whitespace().nth(1));
            assert_eq!(owner, Some(user_ino.as_str()), "{name}: owner of its {kind} namespace (lsns: {lsns})");
            let ns_ours = fs::read_link(format!("/proc/self/ns/{kind}")).unwrap();
            assert_ne!(fs::read_link(format!("/proc/{restored}/ns/{kind}")).unwrap(), ns_ours, "{name}: ccr's {kind}");
        }
    };
    let rp = case.spawn_restore(&[]);
    let restored = case.wait_pidfile(rp, Duration::from_secs(30));
    case.track(restored);
    assert_running_untraced(restored, name);
    check(restored);
    // The restored tree, in namespaces ccr made, is checkpointed and restored again.
    case.dump_ok(restored, &[]);
    assert_exit(case.wait_exit(rp, Duration::from_secs(20)), 128 + libc::SIGKILL, "ccr restore of the first restore");
    let rp = case.spawn_restore(&[]);
    let restored = case.wait_pidfile(rp, Duration::from_secs(30));
    case.track(restored);
    assert_running_untraced(restored, name);
    check(restored);
    case.signal(restored, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(60)), 0, "ccr restore (the restored tree's status)");
    case.assert_pass(1);
}

/// What a tree in a user namespace of its own holds that restore could not make
/// from inside it is refused by name at dump, and the tree runs on and passes its
/// checks: a device node in its tmpfs (mknod needs the host's CAP_MKNOD), a
/// tmpfs the host mounted into its mount namespace, owned by host root (no id of
/// the namespace), a second task without a PID namespace of its own (its pid could
/// not be set from inside).
#[test]
fn user_namespace_trees_ccr_cannot_restore_are_refused_by_name() {
    // (case, what the error names, the workload's environment, the set-up giving the pid named)
    type Setup = fn(&Case, i32) -> i32;
    type RefusedCase = (&'static str, &'static str, &'static [(&'static str, &'static str)], Setup);
    // A tmpfs the host mounts into the tree's mount namespace is the host's (owned
    // by ccr's user namespace): only there can a device node be made.
    fn host_tmpfs(case: &Case, root: i32, then: &str) {
        let at = case.dir.join("scratch/hostfs");
        fs::create_dir(&at).unwrap();
        let script = format!("mount -t tmpfs -o uid=100000,gid=100000 ccr-host-tmpfs {0} {then}", at.display());
        let st = Command::new("nsenter").args(["-t", &root.to_string(), "-m", "sh", "-c", &script]).status().unwrap();
        assert!(st.success(), "nsenter {script}: {st}");
    }
    fn device_node(case: &Case, root: i32) -> i32 {
        let at = case.dir.join("scratch/hostfs/null");
        host_tmpfs(case, root, &format!("&& mknod {0} c 1 3 && chown 100000:100000 {0}", at.display()));
        root
    }
    fn unmapped_owner(case: &Case, root: i32) -> i32 {
        host_tmpfs(case, root, &format!("&& touch {}", case.dir.join("scratch/hostfs/f").display()));
        root
    }
    fn second_task(_case: &Case, root: i32) -> i32 {
        common::children_of(root)[0]
    }
    let cases: [RefusedCase; 3] = [
        ("device-node", "a device node, which cannot be made inside", &[], device_node),
        ("unmapped-owner", "owned by uid 0, which the tree's user namespace does not map", &[], unmapped_owner),
        ("second-task", "a task besides the root", &[("WL_USERNS", "bare-fork")], second_task),
    ];
    for (name, want, envs, setup) in cases {
        let mut case = Case::new(&format!("userns-refused-{name}"));
        let mut cmd = Command::new(Case::workload_path("wl_userns"));
        cmd.arg(case.dir.join("scratch")).envs(envs.iter().copied());
        let launcher = case.start(cmd);
        case.wait_ready(launcher, Duration::from_secs(10));
        let root = common::children_of(launcher)[0];
        case.track(root);
        let named = setup(&case, root);
        let out = case.dump(root, &[]);
        let err = common::stderr(&out);
        assert!(!out.status.success(), "{name}: the dump succeeded");
        assert!(
            err.contains(want) && err.contains(&format!("pid {named}")),
            "{name}: the error does not name pid {named} and {want}: {err}"
        );
        assert!(!case.images.join("inventory.img").exists(), "{name}: a refused dump wrote an inventory");
        assert_running_untraced(root, name);
        case.signal(root, Signal::SIGTERM);
        assert_exit(case.wait_exit(launcher, Duration::from_secs(20)), 0, name);
        case.assert_pass(1);
    }
}

/// A tree with a cgroup namespace of its own comes back in a new one rooted at
/// the cgroups it was rooted at, which cgroup-restore makes again: from outside
/// the task is in its test cgroups, from inside (wl_namespaces checks) it sees
/// what it saw, "/" there, or "/sub" after moving below the namespace root; also
/// when the cgroups come back elsewhere (--cgroup-root), the root moving with them.
#[test]
fn cgroup_namespace_comes_back() {
    cgroup_namespace_cycle("cgns", false, false);
    cgroup_namespace_cycle("cgns-sub", true, false);
    cgroup_namespace_cycle("cgns-moved", false, true);
}

fn cgroup_namespace_cycle(tag: &str, below_root: bool, moved: bool) {
    const HIERS: [&str; 2] = ["pids", "unified"];
    let name = format!("ccrtest-{}-{tag}", std::process::id());
    let new_name = if moved { format!("{name}-elsewhere") } else { name.clone() };
    // Made by cgroup-restore; removed (after `sub` and `cg`, below) on drop.
    let new_cg =
        Cgroups { dirs: HIERS.iter().map(|h| PathBuf::from(format!("/sys/fs/cgroup/{h}/{new_name}"))).collect() };
    let new_sub = Cgroups { dirs: new_cg.dirs.iter().map(|d| d.join("sub")).collect() };
    let cg = Cgroups::new(&name, &HIERS);
    // Declared after `cg`: dropped (removed) first.
    let sub = below_root.then(|| Cgroups::new(&format!("{name}/sub"), &HIERS));
    let mut case = Case::new(&format!("cgroup-namespace-{tag}"));
    // The workload unshares in the test cgroups (its namespace root), then moves
    // into `sub` when there is one.
    let join: Vec<String> = HIERS.iter().map(|h| format!("echo $$ > {}/cgroup.procs", cg.dir(h).display())).collect();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{} && exec \"$0\" \"$1\"", join.join(" && ")))
        .arg(Case::workload_path("wl_namespaces"))
        .arg(case.dir.join("scratch"))
        .env("WL_NS", "cgroup");
    if let Some(sub) = &sub {
        let dirs: Vec<String> = HIERS.iter().map(|h| sub.dir(h).display().to_string()).collect();
        cmd.env("WL_CGROUP_MOVE", dirs.join(":"));
    }
    let pid = case.start(cmd);
    case.wait_ready(pid, Duration::from_secs(10));
    let leaf_of = |n: &str| if below_root { format!("/{n}/sub") } else { format!("/{n}") };
    let mut leaf = leaf_of(&name);
    let in_leaf = |what: &str, leaf: &str| {
        let cgroups = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        for want in [format!(":pids:{leaf}"), format!("0::{leaf}")] {
            assert!(cgroups.lines().any(|l| l.ends_with(&want)), "{what} not in {want}:\n{cgroups}");
        }
    };
    in_leaf("the workload", &leaf);
    let images = case.images.display().to_string();
    let out = case.ccr(&["cgroup-save", "-t", &pid.to_string(), "-D", &images]);
    assert!(out.status.success(), "cgroup-save: {}", common::stderr(&out));
    case.dump_ok(pid, &[]);
    assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "original after dump");
    common::reap_gone(&[pid], "the dumped task");

    // Gone, then made again by cgroup-restore, as on another machine.
    if let Some(sub) = &sub {
        sub.remove();
    }
    cg.remove();
    assert!(!cg.dir("pids").exists() && !cg.dir("unified").exists(), "test cgroups still there");
    let root = format!("/{new_name}");
    let elsewhere: &[&str] = if moved { &["--cgroup-root", &root] } else { &[] };
    let out = case.ccr(&[&["cgroup-restore", "-D", &images, "--manage-cgroups", "full"], elsewhere].concat());
    assert!(out.status.success(), "cgroup-restore: {}", common::stderr(&out));
    assert!(new_cg.dir("pids").is_dir() && new_cg.dir("unified").is_dir(), "cgroup-restore made no test cgroups");
    assert!(!moved || !cg.dir("pids").exists(), "restored at the old place");
    leaf = leaf_of(&new_name);

    let rp = case.spawn_restore(elsewhere);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    assert_running_untraced(pid, "restored task");
    let ours = fs::read_link("/proc/self/ns/cgroup").unwrap();
    assert_ne!(fs::read_link(format!("/proc/{pid}/ns/cgroup")).unwrap(), ours, "restored into ccr's cgroup namespace");
    in_leaf("the restored task", &leaf);
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(30)), 0, "ccr restore (the workload's status)");
    case.assert_pass(1);
    drop(case);
    new_sub.remove();
}

/// The mounts ccr's own namespace has, one line each (mount ids left out: they
/// are reused).
fn our_mounts() -> Vec<String> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut v: Vec<String> = text.lines().map(|l| l.split_once(' ').map_or(l, |(_, r)| r).to_string()).collect();
    v.sort();
    v
}

/// A tree with a mount namespace of its own comes back in a new one with its
/// whole mount tree: wl_mounts checks its tmpfs's files (contents, an fd's
/// offset, a shared mapping, links, a FIFO, modes, times), a nested tmpfs whose
/// peer group still propagates to its bind, a bind of a directory of the tmpfs,
/// and a read-only bind from the host. The second run pivots into a bind of the
/// whole host tree and mounts a proc of its own first, as a container does.
/// Nothing of it shows in ccr's namespace, before or after.
#[test]
fn mount_namespace_comes_back() {
    fn other_mnt(_case: &mut Case, pid: i32) {
        let ours = fs::read_link("/proc/self/ns/mnt").unwrap();
        assert_ne!(fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap(), ours, "restored into ccr's mount namespace");
        let theirs = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
        let tm = theirs.lines().find(|l| l.contains("/scratch/tm ")).unwrap_or_else(|| panic!("no tm mount: {theirs}"));
        assert!(tm.contains("tmpfs wl-tm") && tm.contains("size=4096k"), "tm came back as {tm}");
        let ro = theirs.lines().find(|l| l.contains("/scratch/robind ")).expect("the read-only bind");
        assert!(ro.split(' ').nth(5).unwrap().starts_with("ro"), "robind came back as {ro}");
        let group = |what: &str| {
            let l = theirs.lines().find(|l| l.contains(what)).unwrap_or_else(|| panic!("no {what}: {theirs}"));
            l.split(' ').find(|f| f.starts_with("shared:")).map(str::to_string)
        };
        let inner = group("/scratch/tm/inner ");
        assert!(
            inner.is_some() && inner == group("/scratch/peer "),
            "tm/inner and peer are not one peer group: {theirs}"
        );
    }
    let before = our_mounts();
    common::cycle("mount-namespace", "wl_mounts", &[], Some(other_mnt));
    fn shared_root(case: &mut Case, pid: i32) {
        other_mnt(case, pid);
        let theirs = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
        let root = theirs.lines().find(|l| l.split(' ').nth(4) == Some("/")).expect("a root mount");
        assert!(root.contains(" shared:"), "the shared root came back as {root}");
    }
    common::cycle("mount-namespace-pivot", "wl_mounts", &[("WL_MNT", "pivot")], Some(shared_root));
    assert_eq!(our_mounts(), before, "ccr's mount namespace changed");
    // A dump that leaves the tree running leaves its tmpfs as it was: reading its
    // files did not count as accesses (wl_mounts checks an atime).
    let mut case = Case::new("mount-namespace-leave-running");
    let pid = case.start_workload("wl_mounts", &[]);
    case.wait_ready(pid, Duration::from_secs(10));
    case.dump_ok(pid, &["--leave-running"]);
    assert_running_untraced(pid, "after a --leave-running dump");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, "wl_mounts after a --leave-running dump");
    case.assert_pass(1);
    drop(case);
    // The namespace of wl_namespaces (a tmpfs with a file) too, with its UTS one.
    common::cycle("mnt-uts-namespaces", "wl_namespaces", &[("WL_NS", "mnt,uts")], Some(other_mnt_only));
    fn other_mnt_only(_case: &mut Case, pid: i32) {
        let ours = fs::read_link("/proc/self/ns/mnt").unwrap();
        assert_ne!(fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap(), ours, "restored into ccr's mount namespace");
    }
}

/// What ccr cannot make again in a mount tree is refused by name and the tree
/// runs on (a slave mount); a restore that cannot make a mount (its root bound
/// from a path that does not exist, `--root`) fails naming it and leaves
/// nothing: no task, no mount in ccr's namespace.
#[test]
fn mount_trees_ccr_cannot_make_are_refused_by_name() {
    let before = our_mounts();
    let mut case = Case::new("mnt-slave");
    let pid = case.start_workload("wl_mounts", &[("WL_MNT", "slave")]);
    case.wait_ready(pid, Duration::from_secs(10));
    let out = case.dump(pid, &[]);
    let err = common::stderr(&out);
    assert!(!out.status.success(), "a dump of a slave mount succeeded");
    assert!(
        err.contains("a slave mount") && err.contains("/scratch/slave") && err.contains(&format!("pid {pid}")),
        "{err}"
    );
    assert_running_untraced(pid, "after a refused dump");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, "wl_mounts after a refused dump");
    case.assert_pass(1);
    drop(case);

    // A peer group the tree shares with a third mount namespace (one made from
    // the tree's, outside the tree): restored, the tree's mounts would no longer
    // propagate there.
    let mut case = Case::new("mnt-shared-elsewhere");
    let pid = case.start_workload("wl_mounts", &[("WL_MNT", "pivot")]);
    case.wait_ready(pid, Duration::from_secs(10));
    let mut third = Command::new("nsenter");
    third.args(["-t", &pid.to_string(), "-m", "unshare", "-m", "--propagation", "unchanged", "sleep", "60"]);
    let sleeper = case.start(third);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while fs::read_link(format!("/proc/{sleeper}/exe")).map(|e| !e.ends_with("sleep")).unwrap_or(true) {
        assert!(std::time::Instant::now() < deadline, "the third namespace's sleep did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = case.dump(pid, &[]);
    let err = common::stderr(&out);
    assert!(!out.status.success(), "a dump of a mount shared with a third namespace succeeded");
    assert!(err.contains("shared with another mount namespace") && err.contains(&format!("pid {sleeper}'s")), "{err}");
    assert_running_untraced(pid, "after a refused dump");
    case.signal(sleeper, Signal::SIGKILL);
    let _ = case.wait_exit(sleeper, Duration::from_secs(10));
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, "wl_mounts after a refused dump");
    case.assert_pass(1);
    drop(case);

    let mut case = Case::new("mnt-bad-root");
    let pid = case.start_workload("wl_mounts", &[("WL_MNT", "pivot")]);
    case.wait_ready(pid, Duration::from_secs(10));
    case.dump_ok(pid, &[]);
    let _ = case.wait_exit(pid, Duration::from_secs(10));
    common::reap_gone(&[pid], "the dumped tree");
    let missing = case.dir.join("no-such-root");
    let out = case.ccr(&[
        "restore",
        "-D",
        &case.images.display().to_string(),
        "-d",
        "--root",
        &missing.display().to_string(),
    ]);
    let err = common::stderr(&out);
    assert!(!out.status.success(), "a restore with a missing root succeeded");
    assert!(err.contains("mount") && err.contains(" at / ") && err.contains("no-such-root"), "{err}");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "a task was left at pid {pid}");
    assert_eq!(our_mounts(), before, "a failed restore left mounts in ccr's namespace");
    // The checkpoint itself is fine: without --root it comes back.
    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    case.track(pid);
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(30)), 0, "the restored workload");
    case.assert_pass(1);
}

/// An external bind mount (`--external mnt[PATH]:KEY`): wl_mounts binds a
/// directory of the host made here (with a marker) on scratch/ext; the dump
/// records it by its key, and the restore binds the key from another directory
/// (another marker), named through a symlink as Debian's /lib is, which the
/// workload must see there; the same for a bind of a file. A dump naming a path that is no mount fails naming
/// it and the tree runs on; a restore without the mapping fails naming the key,
/// one mapping a directory's key to a file (or a file's to a directory) fails
/// naming what the dump saw, and none leaves a task or a mount behind.
#[test]
fn external_bind_mounts_come_back_from_where_their_key_is_mapped() {
    let before = our_mounts();
    let mut case = Case::new("mnt-external");
    let (first, second) = (case.dir.join("ext-a"), case.dir.join("ext-b"));
    for (d, marker) in [(&first, "first"), (&second, "second")] {
        fs::create_dir(d).unwrap();
        fs::write(d.join("marker"), marker).unwrap();
    }
    let link = case.dir.join("ext-link");
    std::os::unix::fs::symlink("ext-b", &link).unwrap();
    let a_file = case.dir.join("a-file");
    fs::write(&a_file, "").unwrap();
    let (src, src_file) = (first.display().to_string(), first.join("marker").display().to_string());
    let pid = case.start_workload("wl_mounts", &[("WL_MNT", "ext"), ("WL_EXT_SRC", &src), ("WL_EXT_FILE", &src_file)]);
    case.wait_ready(pid, Duration::from_secs(10));
    let scratch = case.dir.join("scratch").display().to_string();

    let not_a_mount = format!("{scratch}/tm/dir");
    let out = case.dump(pid, &["--external", &format!("mnt[{not_a_mount}]:nope")]);
    let err = common::stderr(&out);
    assert!(!out.status.success(), "a dump naming {not_a_mount} external succeeded");
    assert!(err.contains(&not_a_mount) && err.contains("no mount point"), "{err}");
    assert_running_untraced(pid, "after a refused dump");

    let (ext, extfile) = (format!("mnt[{scratch}/ext]:extkey"), format!("mnt[{scratch}/extfile]:filekey"));
    case.dump_ok(pid, &["--external", &ext, "--external", &extfile]);
    assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "the dumped workload");
    common::reap_gone(&[pid], "the dumped tree");
    let images = case.images.display().to_string();
    let shown = case.ccr(&["show", &images]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("extkey"), "the image has no key extkey");

    let out = case.ccr(&["restore", "-D", &images, "-d"]);
    let err = common::stderr(&out);
    assert!(!out.status.success(), "a restore without the key's mapping succeeded");
    assert!(err.contains("extkey") && err.contains("--external mnt[extkey]:PATH"), "{err}");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "a failed restore left a task at {pid}");
    assert_eq!(our_mounts(), before, "a failed restore left mounts in ccr's namespace");

    let to_file = format!("mnt[extkey]:{}", a_file.display());
    let out = case.ccr(&["restore", "-D", &images, "-d", "--external", &to_file]);
    let err = common::stderr(&out);
    assert!(!out.status.success(), "a restore mapping a directory's key to a file succeeded");
    assert!(err.contains("is a regular file") && err.contains("showed a directory"), "{err}");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "a failed restore left a task at {pid}");
    let (dir_for_dir, dir_for_file) = (format!("mnt[extkey]:{}", link.display()), format!("mnt[filekey]:{src}"));
    let out = case.ccr(&["restore", "-D", &images, "-d", "--external", &dir_for_dir, "--external", &dir_for_file]);
    let err = common::stderr(&out);
    assert!(!out.status.success(), "a restore mapping a file's key to a directory succeeded");
    assert!(err.contains("is a directory") && err.contains("showed a regular file"), "{err}");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "a failed restore left a task at {pid}");
    assert_eq!(our_mounts(), before, "a failed restore left mounts in ccr's namespace");

    fs::write(case.dir.join("scratch/ext-want"), "second").unwrap();
    let file_for_file = format!("mnt[filekey]:{}", second.join("marker").display());
    let rp = case.spawn_restore(&["--external", &dir_for_dir, "--external", &file_for_file]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    let theirs = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let ext = theirs.lines().find(|l| l.contains("/scratch/ext ")).unwrap_or_else(|| panic!("no ext: {theirs}"));
    assert!(ext.split(' ').nth(3).is_some_and(|r| r.ends_with("/ext-b")), "ext came back as {ext}");
    let file = theirs.lines().find(|l| l.contains("/scratch/extfile ")).unwrap_or_else(|| panic!("{theirs}"));
    assert!(file.split(' ').nth(3).is_some_and(|r| r.ends_with("/ext-b/marker")), "extfile came back as {file}");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(30)), 0, "the restored workload");
    case.assert_pass(1);
    drop(case);

    // A bind of a directory the host no longer shows (removed since): ccr cannot
    // find it by path and refuses it, but named with a key it is dumpable.
    let mut case = Case::new("mnt-external-gone");
    let (gone, second) = (case.dir.join("ext-gone"), case.dir.join("ext-b"));
    fs::create_dir(&gone).unwrap();
    fs::create_dir(&second).unwrap();
    fs::write(second.join("marker"), "second").unwrap();
    let pid = case.start_workload("wl_mounts", &[("WL_MNT", "ext"), ("WL_EXT_SRC", &gone.display().to_string())]);
    case.wait_ready(pid, Duration::from_secs(10));
    fs::remove_dir(&gone).unwrap();
    let scratch = case.dir.join("scratch").display().to_string();
    let out = case.dump(pid, &[]);
    assert!(!out.status.success(), "a dump of a bind of a removed directory succeeded");
    assert!(common::stderr(&out).contains(&format!("{scratch}/ext ")), "{}", common::stderr(&out));
    assert_running_untraced(pid, "after a refused dump");
    // Through criu's command line, in its older spelling (PATH:KEY).
    let images = case.images.display().to_string();
    let mapped = format!("{scratch}/ext:gone");
    let out = case.ccr(&["criu", "dump", "-t", &pid.to_string(), "-D", &images, "--ext-mount-map", &mapped]);
    assert!(out.status.success(), "criu dump --ext-mount-map {mapped}: {}", common::stderr(&out));
    assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "the dumped workload");
    common::reap_gone(&[pid], "the dumped tree");
    fs::write(case.dir.join("scratch/ext-want"), "second").unwrap();
    let rp = case.spawn_restore(&["--external", &format!("mnt[gone]:{}", second.display())]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(30)), 0, "the restored workload");
    case.assert_pass(1);
    drop(case);
    assert_eq!(our_mounts(), before, "ccr's mount namespace changed");
}

/// The same through the C ABI (c-tests/api_extmnt.c): ccr_opts_add_ext_mount()
/// names the mount point's key on a dump and the key's path on a restore.
#[test]
fn c_api_external_bind_mounts() {
    let before = our_mounts();
    let mut case = Case::new("api-extmnt");
    let env = common::env();
    let mut cmd = Command::new(env.bin.join("api_extmnt"));
    cmd.arg(Case::workload_path("wl_mounts")).arg(case.dir.join("api")).env("LD_LIBRARY_PATH", &env.lib);
    let pid = case.start(cmd);
    assert_exit(case.wait_exit(pid, Duration::from_secs(90)), 0, "api_extmnt");
    case.assert_pass(1);
    drop(case);
    assert_eq!(our_mounts(), before, "ccr's mount namespace changed");
}

/// `--join-ns NS:PID|PATH`: the restored tree enters namespaces the caller made
/// (a net, uts and mnt namespace held by a process started here) instead of ccr's,
/// and still finds its files and keeps its state. Kinds it cannot join, and a
/// path that is no namespace of the kind named, are refused by name before
/// anything is made.
#[test]
fn a_restored_tree_joins_the_namespaces_it_is_given() {
    let mut holder = Command::new("unshare")
        .args(["--net", "--uts", "--mount", "--propagation", "private", "sleep", "300"])
        .spawn()
        .expect("unshare is needed (util-linux)");
    let hp = holder.id() as i32;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let ns = |pid: i32, k: &str| fs::read_link(format!("/proc/{pid}/ns/{k}")).ok();
    while ns(hp, "net") == ns(std::process::id() as i32, "net") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut case = Case::new("join-ns");
    let pid = case.start_workload("wl_counter", &[]);
    case.wait_ready(pid, Duration::from_secs(10));
    case.dump_ok(pid, &[]);
    let _ = case.wait_exit(pid, Duration::from_secs(10));
    common::reap_gone(&[pid], "the dumped task");
    let images = case.images.display().to_string();
    for (opt, bad, want) in [
        ("--join-ns", "ipc:1", "joining a ipc namespace is not supported"),
        ("--join-ns", "net:/etc/hostname", "is not a net namespace"),
        ("--root", "/", "has no mount namespace of its own"),
    ] {
        let out = case.ccr(&["restore", "-D", &images, "-d", opt, bad]);
        assert!(!out.status.success(), "restore with {opt} {bad} succeeded");
        assert!(common::stderr(&out).contains(want), "{opt} {bad}: {}", common::stderr(&out));
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "{opt} {bad} left a task");
    }
    let net = format!("net:{hp}");
    let uts = format!("uts:/proc/{hp}/ns/uts");
    let mnt = format!("mnt:{hp}");
    let rp = case.spawn_restore(&["--join-ns", &net, "--join-ns", &uts, "--join-ns", &mnt]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    case.track(pid);
    for k in ["net", "uts", "mnt"] {
        assert_eq!(ns(pid, k), ns(hp, k), "the restored task is not in the {k} namespace it was given");
    }
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(30)), 0, "the restored workload");
    case.assert_pass(1);
    let _ = holder.kill();
    let _ = holder.wait();
}

/// A pty: (master, slave path, `tty[RDEV:DEV]` key of the slave).
fn host_pty() -> (std::os::fd::OwnedFd, String, String) {
    use std::os::fd::FromRawFd;
    use std::os::unix::fs::MetadataExt;
    // SAFETY: posix_openpt returns a new fd or -1; the others take that fd.
    let (master, path) = unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(m >= 0 && libc::grantpt(m) == 0 && libc::unlockpt(m) == 0, "posix_openpt");
        let mut name = [0 as libc::c_char; 64];
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0, "ptsname_r");
        let name = std::ffi::CStr::from_ptr(name.as_ptr()).to_string_lossy().into_owned();
        (std::os::fd::OwnedFd::from_raw_fd(m), std::path::PathBuf::from(name))
    };
    let md = fs::metadata(&path).unwrap();
    let key = format!("tty[{:x}:{:x}]", md.rdev(), md.dev());
    (master, path.display().to_string(), key)
}

/// Reads from a pty master until `want` shows or 10 s pass.
fn read_until(master: &std::os::fd::OwnedFd, want: &str) -> String {
    use std::os::fd::AsRawFd;
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&got).contains(want) && std::time::Instant::now() < deadline {
        let mut buf = [0u8; 256];
        // SAFETY: a read into a live buffer from an open fd (made non-blocking below).
        let n = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            got.extend_from_slice(&buf[..n as usize]);
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// The console problem: a session leader whose controlling terminal is a pty of
/// the host (the test holds its master, as a container manager holds the
/// console's). Dumped with `--external tty[RDEV:DEV]`, it lets the tty go; restored
/// with `--inherit-fd fd[N]:KEY` and a new pty, its fds are on the new one, which
/// is its controlling terminal again with its foreground group, termios and window
/// size; what it writes reaches the new master and a line typed there reaches it.
/// Without --external the dump is refused by name.
#[test]
fn a_host_tty_is_let_go_and_handed_back() {
    host_tty_cycle(false);
}

/// As above, with the tty bound by the workload on a file in a mount namespace of
/// its own (as LXC binds the console on /dev/console): the bind mount comes back
/// on the new tty too.
#[test]
fn a_host_tty_bound_in_a_mount_namespace_is_bound_again() {
    host_tty_cycle(true);
}

fn host_tty_cycle(mount: bool) {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let mut case = Case::new(if mount { "host-tty-mount" } else { "host-tty" });
    let (master, slave, key) = host_pty();
    let mut envs = vec![("WL_TTY", slave.as_str())];
    if mount {
        envs.push(("WL_TTY_MOUNT", "1"));
    }
    let pid = case.start_workload("wl_tty", &envs);
    case.wait_ready(pid, Duration::from_secs(10));
    let tree = common::tree_pids(pid);
    let out = case.dump(pid, &["--leave-running"]);
    assert!(!out.status.success(), "a dump of a task with a host tty as its terminal succeeded");
    // Refused with the key that lets it go.
    let err = common::stderr(&out);
    assert!(err.contains("pty slave whose master is not in the tree") && err.contains(&key), "{err}");
    assert_running_untraced(pid, "after a refused dump");
    case.dump_ok(pid, &["--external", &key]);
    let _ = case.wait_exit(pid, Duration::from_secs(10));
    common::reap_gone(&tree, "the dumped tree");
    drop(master);
    let (master, slave, _) = host_pty();
    // SAFETY: makes the test's own master non-blocking.
    unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    if !mount {
        // The master handed over instead of the slave is refused by name.
        let raw_master = master.as_raw_fd();
        let mut cmd = Command::new(&common::env().ccr);
        cmd.args(["restore", "-d", "-D"])
            .arg(&case.images)
            .args(["--inherit-fd", &format!("fd[7]:{key}")])
            .stdin(std::process::Stdio::null());
        // SAFETY: dup2 is async-signal-safe and touches only the child.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                if libc::dup2(raw_master, 7) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        if out.status.success() {
            case.track(pid);
        }
        assert!(!out.status.success(), "a restore given a pty master for {key} succeeded");
        assert!(common::stderr(&out).contains("is a pty master"), "{}", common::stderr(&out));
        assert!(!common::exists(pid), "a refused restore left pid {pid}");
    }
    let new_tty = fs::OpenOptions::new().read(true).write(true).open(&slave).unwrap();
    let raw = new_tty.as_raw_fd();
    let log = fs::File::create(case.dir.join("restore.out")).unwrap();
    let mut cmd = Command::new(&common::env().ccr);
    cmd.args(["restore", "-D"])
        .arg(&case.images)
        .args(["-o"])
        .arg(case.dir.join("restore.log"))
        .args(["-v", "4", "--pidfile"])
        .arg(&case.pidfile)
        .args(["--inherit-fd", &format!("fd[7]:{key}")])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    // SAFETY: dup2 is async-signal-safe and touches only the child.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            if libc::dup2(raw, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut ccr = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !case.pidfile.exists() && std::time::Instant::now() < deadline && ccr.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let restored = fs::read_to_string(&case.pidfile).unwrap_or_default();
    let log = fs::read_to_string(case.dir.join("restore.out")).unwrap_or_default();
    assert_eq!(restored.trim(), pid.to_string(), "restore: {log}");
    case.track(pid);
    drop(new_tty);
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let rdev = fs::metadata(&slave).unwrap().rdev();
    assert_eq!(f[4].parse::<u64>().unwrap(), rdev, "the controlling terminal is not the new pty: {stat}");
    assert_ne!(f[5], pid.to_string(), "the foreground group is the leader's, not its child's: {stat}");
    if mount {
        let console = format!("/proc/{pid}/root{}", case.dir.join("scratch/console").display());
        let md = fs::metadata(&console).unwrap();
        assert_eq!(md.rdev(), rdev, "{console} is not bound to the new pty");
    }
    // SAFETY: a write of a live buffer to the test's open master.
    unsafe { libc::write(master.as_raw_fd(), b"typed\n".as_ptr().cast(), 6) };
    case.signal(pid, Signal::SIGTERM);
    let said = read_until(&master, "hello from wl_tty");
    assert!(said.contains("hello from wl_tty"), "nothing reached the new master: {said:?}");
    let st = ccr.wait().unwrap();
    assert!(st.success(), "the restored workload: {st:?}");
    case.assert_pass(1);
}

/// Ptys of a devpts instance of the tree's own (as an sshd or a tmux inside a
/// container makes them): the instance is made anew and each pty comes back at
/// its index in it, with everything wl_pty checks.
#[test]
fn ptys_of_the_trees_own_devpts_instance() {
    common::cycle("own-devpts", "wl_pty", &[("WL_PTY_NS", "1")], None);
}

/// A pty of the tree's own devpts instance that no task of the tree holds, its
/// master outside (here: the test's), is made again with the instance all the
/// same: the others keep their indexes, and its new master goes to a keeper.
#[test]
fn a_pty_of_its_own_instance_nobody_in_the_tree_holds_comes_back_too() {
    let mut case = Case::new("own-devpts-outside");
    let pid = case.start_workload("wl_pty", &[("WL_PTY_NS", "1")]);
    case.wait_ready(pid, Duration::from_secs(10));
    let pts = case.dir.join("scratch/pts");
    let ptmx = format!("/proc/{pid}/root{}/ptmx", pts.display());
    let outside = fs::OpenOptions::new().read(true).write(true).open(&ptmx).expect("open the tree's ptmx");
    let tree = common::tree_pids(pid);
    case.dump_ok(pid, &[]);
    assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "the dumped workload");
    common::reap_gone(&tree, "the dumped tree");
    drop(outside);
    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    let log = fs::read_to_string(case.dir.join("restore.log")).unwrap_or_default();
    assert!(log.contains(&format!("new pty masters of {}/2 kept by pid", pts.display())), "{log}");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(20)), 0, "wl_pty");
    case.assert_pass(1);
    let _ = fs::remove_dir_all(format!("/run/ccr/ptys-{pid}"));
}

/// The container's init of c-tests/wl_ttyhost.c (the manager is the workload).
fn ttyhost_container(case: &mut Case, envs: &[(&str, &str)]) -> (i32, i32) {
    let monitor = case.start_workload("wl_ttyhost", envs);
    case.wait_ready(monitor, Duration::from_secs(10));
    let pid = fs::read_to_string(case.dir.join("scratch/container.pid")).expect("container.pid");
    let c: i32 = pid.trim().parse().expect("a pid");
    case.track(c);
    let tree = common::tree_pids(c);
    case.dump_ok(c, &[]);
    common::reap_gone(&tree, "the dumped container");
    (monitor, c)
}

/// LXC's ttys (lxc.tty.max > 0): /dev/tty1 and tty2 are binds of ptys of the
/// container's own devpts instance whose masters the manager holds outside, a
/// getty has tty1 as its controlling terminal. They come back at their indexes in
/// the new instance, bound again, with the getty's settings and terminal, and the
/// new masters reach the manager over its socket, where a line typed is answered.
#[test]
fn a_containers_ttys_whose_masters_the_manager_holds() {
    let mut case = Case::new("tty-host-masters");
    let (monitor, c) = ttyhost_container(&mut case, &[("WL_TTYHOST_RESTORED", "1")]);
    let sock = case.dir.join("scratch/masters.sock");
    let rp = case.spawn_restore(&["--pty-master-socket", sock.to_str().unwrap()]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), c);
    case.signal(monitor, Signal::SIGTERM);
    assert_exit(
        case.wait_exit(monitor, Duration::from_secs(20)),
        0,
        "the manager (its checks through the new masters)",
    );
    case.assert_pass(1);
    assert_exit(case.wait_exit(rp, Duration::from_secs(20)), 0, "ccr restore (the container's init)");
}

/// Without a socket for them, a keeper holds the new masters (the getty gets no
/// hangup) and appends what the ttys write to /run/ccr/ptys-ROOT/; it goes when
/// the container does.
#[test]
fn a_keeper_holds_the_new_masters_nobody_takes() {
    let mut case = Case::new("tty-host-keeper");
    let (monitor, c) = ttyhost_container(&mut case, &[("WL_TTYHOST_RESTORED", "1")]);
    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), c);
    let log = fs::read_to_string(case.dir.join("restore.log")).unwrap_or_default();
    let keeper: i32 = log
        .split("kept by pid ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no keeper in the restore log:\n{log}"));
    case.track(keeper);
    let getty = common::children_of(c);
    assert_eq!(getty.len(), 1, "the container's getty: {getty:?}");
    case.track(getty[0]);
    case.signal(getty[0], Signal::SIGUSR1);
    let key = case.dir.join("scratch/pts/0");
    let name = format!("{}.out", key.to_str().unwrap().trim_start_matches('/').replace('/', "_"));
    let out = std::path::Path::new(&format!("/run/ccr/ptys-{c}")).join(name);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !fs::read_to_string(&out).unwrap_or_default().contains("hello from tty1") {
        assert!(std::time::Instant::now() < deadline, "nothing from tty1 in {}", out.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    case.signal(c, Signal::SIGKILL);
    let _ = case.wait_exit(rp, Duration::from_secs(20));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    // Orphaned, it is reaped here (the tests are a subreaper): a zombie is gone.
    while common::state(keeper).is_some_and(|s| s != 'Z') {
        assert!(std::time::Instant::now() < deadline, "the keeper {keeper} outlived the container");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = fs::remove_dir_all(format!("/run/ccr/ptys-{c}"));
    case.signal(monitor, Signal::SIGKILL);
    let _ = case.wait_exit(monitor, Duration::from_secs(10));
}

/// A socket for the new masters that nobody listens on fails the restore before
/// the container runs, and leaves nothing of it.
#[test]
fn a_pty_master_socket_nobody_listens_on_fails_the_restore() {
    let mut case = Case::new("tty-host-no-listener");
    let (monitor, c) = ttyhost_container(&mut case, &[("WL_TTYHOST_RESTORED", "1")]);
    let images = case.images.to_str().unwrap().to_string();
    let missing = case.dir.join("nobody.sock");
    let out = case.ccr(&["restore", "-D", &images, "-d", "--pty-master-socket", missing.to_str().unwrap()]);
    let err = common::stderr(&out);
    assert!(!out.status.success(), "restored with nobody to take the masters");
    assert!(err.contains("nobody.sock"), "the error does not name the socket: {err}");
    common::reap_gone(&[c], "the container of the failed restore");
    case.signal(monitor, Signal::SIGKILL);
    let _ = case.wait_exit(monitor, Duration::from_secs(10));
}

/// The new masters handed to a function of the C caller
/// (`ccr_opts_set_pty_master_fn`), in the caller's process: c-tests/api_ptymaster.c
/// refuses them once (the restore fails and leaves nothing), then takes them and
/// passes them on to the manager of c-tests/wl_ttyhost.c, whose checks pass.
#[test]
fn a_containers_new_pty_masters_go_to_the_callers_function() {
    let mut case = Case::new("tty-host-fn");
    let env = common::env();
    let bin = env.bin.join("api_ptymaster");
    assert!(bin.exists(), "{} not built (make ctests PROFILE=debug)", bin.display());
    let mut cmd = std::process::Command::new(&bin);
    cmd.arg(Case::workload_path("wl_ttyhost")).arg(case.dir.join("api")).env("LD_LIBRARY_PATH", &env.lib);
    let pid = case.start(cmd);
    let st = case.wait_exit(pid, Duration::from_secs(120));
    assert_exit(st, 0, &format!("api_ptymaster:\n{}", case.output()));
    case.assert_pass(1);
}
