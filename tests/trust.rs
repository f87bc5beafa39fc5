//! Checkpoints hold a process's memory and secrets: ccr keeps them private
//! whatever the umask, never writes through a link planted in its way, works only
//! in directories no one else can write to, and lets only the freezing user order
//! a freeze holder. Each refusal leaves the tree running.

mod common;

use std::fs;
use std::os::unix::fs::{chown, symlink, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{assert_exit, assert_running_untraced, stderr, Case};
use nix::sys::signal::Signal;

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn set_mode(p: &Path, m: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
}

/// A root-only file a planted link points at; it must never change.
fn victim(case: &Case) -> std::path::PathBuf {
    let v = case.dir.join("victim");
    fs::write(&v, "root's secret\n").unwrap();
    set_mode(&v, 0o600);
    v
}

/// `ccr ARGS` as uid and gid 65534, with no capabilities.
fn as_nobody(args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"])
        .arg(&common::env().ccr)
        .args(args)
        .output()
        .expect("setpriv (util-linux)")
}

fn ccr_with_umask(case: &Case, umask: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("umask {umask}; exec \"$0\" \"$@\"")).arg(&common::env().ccr).args(args);
    cmd.current_dir(&case.dir).output().expect("run ccr")
}

#[test]
fn images_and_logs_are_private_whatever_the_umask() {
    let mut case = Case::new("private-images");
    let pid = case.start_workload("wl_memory", &[]);
    case.wait_ready(pid, Duration::from_secs(10));
    let images = case.images.display().to_string();
    let log = case.dir.join("dump.log");
    let out = ccr_with_umask(
        &case,
        "000",
        &["dump", "-t", &pid.to_string(), "-D", &images, "-o", &log.display().to_string(), "--leave-running"],
    );
    assert!(out.status.success(), "dump: {}", stderr(&out));
    assert_eq!(mode(&case.images), 0o700, "images directory");
    assert_eq!(mode(&log), 0o600, "log");
    for e in fs::read_dir(&case.images).unwrap().flatten() {
        assert_eq!(mode(&e.path()), 0o600, "{}", e.path().display());
    }
    assert_running_untraced(pid, "workload");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, "workload");
}

/// Links planted at the log path, at an image name and at a temporary name: the
/// file they point at never changes.
#[test]
fn planted_links_are_never_followed() {
    let mut case = Case::new("planted-links");
    let target = victim(&case);
    let pid = case.start_workload("wl_counter", &[]);
    case.wait_ready(pid, Duration::from_secs(10));
    fs::create_dir(&case.images).unwrap();
    set_mode(&case.images, 0o700);
    let images = case.images.display().to_string();
    let log = case.images.join("dump.log");
    symlink(&target, &log).unwrap();
    symlink(&target, case.images.join(format!("pages-{pid}.img"))).unwrap();
    symlink(&target, case.images.join("cgroup.img.tmp")).unwrap();

    let out = case.ccr(&["dump", "-t", &pid.to_string(), "-D", &images, "-o", &log.display().to_string()]);
    assert!(!out.status.success(), "a dump logged through a planted link");
    assert_running_untraced(pid, "workload after the refused dump");
    fs::remove_file(&log).unwrap();
    let out = case.ccr(&["cgroup-save", "-t", &pid.to_string(), "-D", &images]);
    assert!(out.status.success(), "cgroup-save: {}", stderr(&out));
    case.dump_ok(pid, &["--leave-running"]);
    assert_eq!(fs::read_to_string(&target).unwrap(), "root's secret\n", "a planted link was written through");
    assert!(!fs::symlink_metadata(case.images.join(format!("pages-{pid}.img"))).unwrap().file_type().is_symlink());
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, "workload");
}

/// An images directory others can write to is made private by a dump when it is
/// the caller's, and refused by restore; one of another user is refused by both;
/// a log directory others can write to is refused unless it is sticky (/tmp). The
/// tree runs on.
#[test]
fn directories_others_can_write_are_refused() {
    let mut case = Case::new("untrusted-dirs");
    let pid = case.start_workload("wl_counter", &[]);
    case.wait_ready(pid, Duration::from_secs(10));
    case.dump_ok(pid, &["--leave-running"]);
    let images = case.images.display().to_string();
    let p = pid.to_string();

    set_mode(&case.images, 0o777);
    let out = case.ccr(&["restore", "-D", &images]);
    assert!(!out.status.success() && stderr(&out).contains("can be written by others"), "restore: {}", stderr(&out));
    let out = case.ccr(&["dump", "-t", &p, "-D", &images, "--leave-running"]);
    assert!(out.status.success(), "dump into our own 0777 directory: {}", stderr(&out));
    assert_eq!(mode(&case.images), 0o700, "the dump did not make its directory private");
    chown(&case.images, Some(65534), Some(65534)).unwrap();
    let out = case.ccr(&["restore", "-D", &images]);
    assert!(!out.status.success() && stderr(&out).contains("belongs to uid 65534"), "restore: {}", stderr(&out));
    let out = case.ccr(&["dump", "-t", &p, "-D", &images, "--leave-running"]);
    assert!(!out.status.success() && stderr(&out).contains("belongs to uid 65534"), "dump: {}", stderr(&out));
    chown(&case.images, Some(0), Some(0)).unwrap();

    let logs = case.dir.join("logs");
    fs::create_dir(&logs).unwrap();
    set_mode(&logs, 0o777);
    let log = logs.join("dump.log").display().to_string();
    let out = case.ccr(&["dump", "-t", &p, "-D", &images, "-o", &log, "--leave-running"]);
    assert!(!out.status.success() && stderr(&out).contains("the log's directory"), "dump: {}", stderr(&out));
    set_mode(&logs, 0o1777);
    let out = case.ccr(&["dump", "-t", &p, "-D", &images, "-o", &log, "--leave-running"]);
    assert!(out.status.success(), "a log of ours in a sticky directory: {}", stderr(&out));
    assert_running_untraced(pid, "workload after the refusals");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, "workload");
}

/// A zombie root has nothing to checkpoint.
#[test]
fn a_zombie_root_is_refused() {
    let case = Case::new("zombie-root");
    let mut child = Command::new("true").spawn().unwrap();
    let z = child.id() as i32;
    while common::state(z) != Some('Z') {
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = case.dump(z, &["--leave-running"]);
    assert!(!out.status.success() && stderr(&out).contains("zombie"), "dump of a zombie: {}", stderr(&out));
    child.wait().unwrap();
}

/// The freeze holder's socket is 0600 in a 0700 directory, and a user other than
/// the one that froze (here uid 65534) cannot order it to thaw or dump.
#[test]
fn only_the_freezing_user_orders_a_holder() {
    let mut case = Case::new("holder-peer");
    let pid = case.start_workload("wl_counter", &[]);
    case.wait_ready(pid, Duration::from_secs(10));
    let p = pid.to_string();
    let out = case.ccr(&["freeze", "-t", &p]);
    assert!(out.status.success(), "freeze: {}", stderr(&out));
    let sock = Path::new("/run/ccr").join(format!("freeze-{pid}.sock"));
    assert_eq!(mode(&sock), 0o600, "holder socket");
    assert_eq!(mode(Path::new("/run/ccr")), 0o700, "holder directory");
    let out = as_nobody(&["thaw", "-t", &p]);
    assert!(!out.status.success(), "uid 65534 thawed root's frozen tree");
    assert_eq!(common::state(pid), Some('t'), "the tree is not frozen any more after uid 65534 asked");
    // Past the directory and the socket's mode, the holder itself asks who it is.
    set_mode(Path::new("/run/ccr"), 0o755);
    set_mode(&sock, 0o666);
    let out = as_nobody(&["thaw", "-t", &p]);
    set_mode(Path::new("/run/ccr"), 0o700);
    set_mode(&sock, 0o600);
    assert!(
        !out.status.success() && stderr(&out).contains("may not order"),
        "the holder took an order from uid 65534: {}",
        stderr(&out)
    );
    assert_eq!(common::state(pid), Some('t'), "the tree is not frozen any more after uid 65534 asked");
    let out = case.ccr(&["thaw", "-t", &p]);
    assert!(out.status.success(), "thaw: {}", stderr(&out));
    assert_running_untraced(pid, "workload after thaw");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, "workload");
}

/// `ccr check` run by a user without the privileges says so, and fails.
#[test]
fn check_as_a_plain_user_says_what_is_missing() {
    let out = as_nobody(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "ccr check as uid 65534 succeeded:\n{text}");
    let line = text.lines().find(|l| l.contains("privileges")).unwrap_or_else(|| panic!("no privileges line:\n{text}"));
    assert!(line.starts_with("MISSING") && line.contains("CAP_SYS_ADMIN"), "{line}");
}

/// A flipped byte in page data and two tasks' fds images swapped are refused by
/// name, by `ccr show --verify` and by restore, which then leaves nothing of the
/// tree behind; put back, the same checkpoint restores with the state intact.
#[test]
fn corrupt_or_swapped_images_are_refused_by_name() {
    let mut case = Case::new("corrupt-images");
    let root = case.start_workload("wl_tree", &[]);
    case.wait_ready(root, Duration::from_secs(20));
    let tree = common::tree_pids(root);
    assert!(tree.len() >= 3, "wl_tree has {tree:?}");
    case.dump_ok(root, &[]);
    common::assert_killed(case.wait_exit(root, Duration::from_secs(10)), Signal::SIGKILL, "the dumped root");
    common::reap_gone(&tree, "the dumped tree");
    let images = case.images.display().to_string();
    let verify = |case: &Case| case.ccr(&["show", "--verify", &images]);
    let out = verify(&case);
    assert!(out.status.success(), "verify of a good checkpoint: {}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("match their checksums"));

    let refused = |case: &mut Case, what: &str, needle: &str| {
        let out = verify(case);
        assert!(!out.status.success() && stderr(&out).contains(needle), "verify, {what}: {}", stderr(&out));
        let rp = case.spawn_restore(&[]);
        let st = case.wait_exit(rp, Duration::from_secs(60));
        let log = fs::read_to_string(case.dir.join("restore.out")).unwrap_or_default();
        assert!(!st.success() && log.contains(needle), "restore, {what}: {st:?}: {log}");
        common::reap_gone(&tree, &format!("the tree of a refused restore ({what})"));
    };

    let pages = case.images.join(format!("pages-{root}.img"));
    let good = fs::read(&pages).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x20;
    fs::write(&pages, &bad).unwrap();
    refused(&mut case, "a flipped byte", &format!("pages-{root}.img is corrupt"));
    fs::write(&pages, &good).unwrap();

    let (a, b) = (case.images.join(format!("fds-{}.img", tree[1])), case.images.join(format!("fds-{}.img", tree[2])));
    let tmp = case.images.join("swap");
    fs::rename(&a, &tmp).unwrap();
    fs::rename(&b, &a).unwrap();
    fs::rename(&tmp, &b).unwrap();
    refused(&mut case, "swapped fds images", "belongs to task");
    fs::rename(&a, &tmp).unwrap();
    fs::rename(&b, &a).unwrap();
    fs::rename(&tmp, &b).unwrap();

    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), root, "restored root");
    case.signal(root, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(60)), 0, "the restored tree");
    case.assert_pass(1);
}
