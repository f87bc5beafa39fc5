//! End to end: checkpoint one running process, kill it, restore it with the same
//! PID, and let it verify its own state (the C workloads in c-tests/), plus real
//! programs and the failure paths. Run as root, one test at a time.

mod common;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{assert_exit, assert_killed, assert_running_untraced, stderr, Case};
use nix::sys::signal::Signal;

#[test]
fn memory() {
    common::cycle("memory", "wl_memory", &[], None);
}

#[test]
fn counter() {
    let case = common::cycle("counter", "wl_counter", &[], None);
    assert!(case.output().contains("counter="), "wl_counter printed no counter");
}

#[test]
fn signals() {
    fn usr1(case: &mut Case, pid: i32) {
        case.signal(pid, Signal::SIGUSR1);
        std::thread::sleep(Duration::from_millis(100));
    }
    common::cycle("signals", "wl_signals", &[], Some(usr1));
}

/// POSIX timers of every notification kind keep their IDs, clocks, targets, time
/// left and intervals, and go on firing.
#[test]
fn posix_timers() {
    common::cycle("posix-timers", "wl_posix_timers", &[], None);
}

/// A real program on a POSIX timer: coreutils `timeout 4 sleep 600` (a
/// timer_create timer and its child in a process group of its own). After a
/// restore its timer still fires where it would have, and it ends the sleep.
#[test]
fn coreutils_timeout_still_fires() {
    let mut case = Case::new("timeout");
    let started = Instant::now();
    let mut cmd = Command::new("timeout");
    cmd.args(["4", "sleep", "600"]);
    let pid = case.start(cmd);
    let deadline = Instant::now() + Duration::from_secs(5);
    while common::children_of(pid).is_empty()
        || fs::read_to_string(format!("/proc/{pid}/timers")).unwrap_or_default().is_empty()
    {
        assert!(Instant::now() < deadline, "timeout made no child or no timer");
        std::thread::sleep(Duration::from_millis(20));
    }
    let tree = common::tree_pids(pid);
    case.dump_ok(pid, &[]);
    assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "original");
    common::reap_gone(&tree, "the dumped tree");
    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    // timeout exits 124 when its timer killed the command.
    assert_exit(case.wait_exit(rp, Duration::from_secs(30)), 124, "ccr restore (timeout's status)");
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(4), "timeout fired after {took:?}, before its 4 s");
}

#[test]
fn posix_timers_leave_running() {
    common::leave_running("posix-timers-leave-running", "wl_posix_timers");
}

/// Niceness per thread, SCHED_FIFO and SCHED_BATCH threads and oom_score_adj come
/// back.
#[test]
fn scheduling_and_oom_score() {
    common::cycle("sched", "wl_sched", &[], None);
}

#[test]
fn files() {
    common::cycle("files", "wl_files", &[], None);
}

/// The restored task keeps sleeping: it sits in S until SIGTERM.
fn still_sleeping(_case: &mut Case, pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while common::state(pid) != Some('S') {
        assert!(Instant::now() < deadline, "restored pid {pid} is in state {:?}, not S", common::state(pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(common::state(pid), Some('S'), "restored pid {pid} stopped sleeping");
}

#[test]
fn sleep_absolute() {
    common::cycle("sleep-abs", "wl_sleep", &[], Some(still_sleeping));
}

#[test]
fn sleep_relative() {
    common::cycle("sleep-rel", "wl_sleep", &[("WL_SLEEP_MODE", "relative")], Some(still_sleeping));
}

/// A task in sigtimedwait with no timeout (as busybox init waits for SIGCHLD)
/// waits on after the restore: the EINTR the dump's stop left it is not seen.
#[test]
fn sleep_in_sigtimedwait() {
    common::cycle("sleep-sigwait", "wl_sleep", &[("WL_SLEEP_MODE", "sigwait")], Some(still_sleeping));
}

/// A task in epoll_wait with no timeout (a daemon's event loop) waits on after
/// the restore, as above.
#[test]
fn sleep_in_epoll_wait() {
    common::cycle("sleep-epoll", "wl_sleep", &[("WL_SLEEP_MODE", "epoll")], Some(still_sleeping));
}

/// A signal sent while ccr holds a task stopped in pause() ends that pause once
/// the task runs again, as it would have without ccr (the handler runs and pause
/// returns EINTR, not the handler and then another pause): after a dump that
/// leaves the task running (sent by the post-dump hook) and in the restored task
/// (sent by the pre-resume hook, before ccr lets it go).
#[test]
fn a_signal_sent_while_stopped_ends_a_pause() {
    let mut case = Case::new("pause-signal");
    let hook = case.dir.join("usr1.sh");
    let text =
        "#!/bin/sh\ncase \"$CRTOOLS_SCRIPT_ACTION\" in post-dump|pre-resume) kill -USR1 \"$CRTOOLS_INIT_PID\";; esac\n";
    fs::write(&hook, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    let hook = hook.display().to_string();
    let woken = |case: &Case, n: usize| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while case.output().matches("info: woke 1\n").count() < n {
            assert!(
                Instant::now() < deadline,
                "the signal sent while stopped did not end the pause:\n{}",
                case.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let pid = case.start_workload("wl_sleep", &[("WL_SLEEP_MODE", "pause")]);
    case.wait_ready(pid, Duration::from_secs(10));
    case.dump_ok(pid, &["--leave-running", "--action-script", &hook]);
    woken(&case, 1);
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, "original");
    case.assert_pass(1);

    let rp = case.spawn_restore(&["--action-script", &hook]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    woken(&case, 2);
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(20)), 0, "ccr restore");
    case.assert_pass(2);
}

/// `ccr restore -d` never kills what it restored: a root whose parent death
/// signal is SIGKILL runs on after ccr returns (its parent is ccr, which exits:
/// the signal is not armed against it, and the log says so).
#[test]
fn a_detached_restore_leaves_the_root_running() {
    let mut case = Case::new("pdeath-detached");
    let script = "import ctypes, signal\nctypes.CDLL(None).prctl(1, 9)\nstop = []\n\
        signal.signal(signal.SIGTERM, lambda *a: stop.append(1))\nprint('ready', flush=True)\n\
        while not stop:\n    signal.pause()\nprint('PASS', flush=True)\n";
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]);
    let pid = case.start(cmd);
    case.wait_ready(pid, Duration::from_secs(10));
    case.dump_ok(pid, &[]);
    assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "python after dump");
    let log = case.dir.join("restore.log");
    let images = case.images.display().to_string();
    let out = case.ccr(&["restore", "-D", &images, "-d", "-o", &log.display().to_string(), "-v", "4"]);
    assert!(out.status.success(), "ccr restore -d failed: {}", stderr(&out));
    case.track(pid);
    std::thread::sleep(Duration::from_millis(500));
    assert_running_untraced(pid, "the root after ccr restore -d returned");
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("parent death signal 9 is not armed"), "the log does not say so:\n{text}");
    case.signal(pid, Signal::SIGTERM);
    // ccr's exit left it to the test (a child subreaper) to reap.
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => break assert_eq!(code, 0, "python restored with -d"),
            Ok(WaitStatus::StillAlive) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            other => panic!("python restored with -d: {other:?}"),
        }
    }
    case.assert_pass(1);
}

#[test]
fn altstack() {
    common::cycle("altstack", "wl_altstack", &[], None);
}

#[test]
fn identity() {
    common::cycle("identity", "wl_identity", &[], None);
}

#[test]
fn avx() {
    common::cycle("avx", "wl_avx", &[], None);
}

#[test]
fn creds() {
    common::cycle("creds", "wl_creds", &[], None);
}

/// --leave-running: the original goes on (untraced, running) and passes its own
/// checks; the restore after it ended passes them again.
#[test]
fn leave_running() {
    let mut case = Case::new("leave-running");
    let pid = case.start_workload("wl_memory", &[]);
    case.wait_ready(pid, Duration::from_secs(10));
    case.dump_ok(pid, &["--leave-running"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_running_untraced(pid, "original after dump --leave-running");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, "original");
    case.assert_pass(1);

    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    assert_running_untraced(pid, "restored task");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(60)), 0, "ccr restore");
    case.assert_pass(2);
}

/// Reads an integer a program keeps rewriting (retrying while it is mid-write).
fn read_counter(path: &std::path::Path) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(n) = fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()) {
            return n;
        }
        assert!(Instant::now() < deadline, "{} holds no number", path.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A real program that counts into a file: after restore it goes on from the
/// value it had at dump time, not from 0.
fn counting_program(name: &str, program: &str, args: &[&str], term_code: i32) {
    let mut case = Case::new(name);
    let counter = case.dir.join("counter");
    let counter = counter.as_path();
    let mut cmd = Command::new(program);
    cmd.args(args).arg(counter);
    let pid = case.start(cmd);
    case.wait_ready(pid, Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(10);
    while read_counter(counter) < 20 {
        assert!(Instant::now() < deadline, "counter is not counting");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before_dump = read_counter(counter);
    case.dump_ok(pid, &[]);
    assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "original");
    // The dump may catch the program between truncating the file and writing it.
    let at_dump = fs::read_to_string(counter).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(before_dump);

    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    let deadline = Instant::now() + Duration::from_secs(10);
    let now = loop {
        let n = read_counter(counter);
        if n != at_dump {
            break n;
        }
        assert!(Instant::now() < deadline, "restored {name} does not count on from {at_dump}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(now > at_dump, "restored {name} counts from {now}, it was at {at_dump} (started over?)");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(30)), term_code, "ccr restore");
}

#[test]
fn python_counter() {
    let script = r#"
import os, signal, sys, time
path = sys.argv[1]
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
i = 0
while True:
    i += 1
    with open(path + ".tmp", "w") as f:
        f.write(str(i))
    os.replace(path + ".tmp", path)
    if i == 1:
        print("ready", flush=True)
    time.sleep(0.01)
"#;
    counting_program("python-counter", "python3", &["-c", script], 0);
}

#[test]
fn bash_counter() {
    // Builtins only, so bash never forks: one process to dump.
    let script = r#"i=0; trap 'exit 0' TERM; echo ready
while :; do i=$((i+1)); echo $i > "$1"; done"#;
    counting_program("bash-counter", "bash", &["-c", script, "bash"], 0);
}

/// `sleep 1000` comes back sleeping and dies of SIGTERM: ccr restore exits 143.
#[test]
fn coreutils_sleep() {
    let mut case = Case::new("sleep-1000");
    let mut cmd = Command::new("sleep");
    cmd.arg("1000");
    let pid = case.start(cmd);
    let deadline = Instant::now() + Duration::from_secs(5);
    while common::state(pid) != Some('S') {
        assert!(Instant::now() < deadline, "sleep 1000 never went to sleep");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    case.dump_ok(pid, &[]);
    assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "original");
    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    still_sleeping(&mut case, pid);
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(30)), 128 + 15, "ccr restore");
}

#[test]
fn dump_missing_pid() {
    let case = Case::new("dump-missing-pid");
    let pid = common::free_pid();
    let out = case.dump(pid, &[]);
    assert!(!out.status.success(), "dump of missing pid {pid} succeeded");
    let err = stderr(&out);
    assert!(common::mentions_number(&err, pid as i64), "error does not name pid {pid}: {err}");
}

/// A pipe fd makes the dump fail, naming the fd, and leaves the task as it was.
#[test]
fn dump_socket_fails_cleanly() {
    let mut case = Case::new("dump-socket");
    // python3 puts a raw IP socket (not saved yet) on fd 37, then execs the
    // workload (same PID).
    let mut cmd = Command::new("python3");
    cmd.args([
        "-c",
        "import os, socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)\nos.dup2(s.fileno(), 37)\nos.execv(sys.argv[1], sys.argv[1:])",
    ])
    .arg(Case::workload_path("wl_counter"));
    let pid = case.start(cmd);
    case.wait_ready(pid, Duration::from_secs(10));
    assert!(fs::read_link(format!("/proc/{pid}/fd/37")).unwrap().to_string_lossy().starts_with("socket:"));
    let out = case.dump(pid, &[]);
    assert!(!out.status.success(), "dump of a task with an inet socket succeeded");
    let err = stderr(&out);
    assert!(common::mentions_number(&err, 37), "error does not name the socket fd 37: {err}");
    std::thread::sleep(Duration::from_millis(200));
    assert_running_untraced(pid, "task after a failed dump");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, "task after a failed dump");
    case.assert_pass(1);
}

/// A failed restore leaves no task behind: nothing new among our children and
/// nothing reparented to us (we are a subreaper).
fn assert_restore_fails(case: &mut Case, must_name: &str, names_it: impl Fn(&str) -> bool) -> String {
    let before = common::children_of(std::process::id() as i32);
    let rp = case.spawn_restore(&[]);
    let st = case.wait_exit(rp, Duration::from_secs(30));
    assert!(!st.success(), "{}: restore succeeded", case.name);
    let err = fs::read_to_string(case.dir.join("restore.out")).unwrap_or_default();
    assert!(names_it(&err), "{}: restore error does not name {must_name}: {err}", case.name);
    std::thread::sleep(Duration::from_millis(100));
    let after = common::children_of(std::process::id() as i32);
    let left: Vec<i32> = after.into_iter().filter(|p| !before.contains(p)).collect();
    assert!(left.is_empty(), "{}: failed restore left tasks behind: {left:?}", case.name);
    assert!(!case.pidfile.exists(), "{}: failed restore wrote a pidfile", case.name);
    err
}

/// The restore error text must name `what` (a path or a word).
fn naming(what: &str) -> impl Fn(&str) -> bool + '_ {
    move |err| err.contains(what)
}

#[test]
fn restore_empty_dir() {
    let mut case = Case::new("restore-empty");
    fs::create_dir_all(&case.images).unwrap();
    let images = case.images.display().to_string();
    assert_restore_fails(&mut case, &images, naming(&images));
}

#[test]
fn restore_corrupt_core() {
    let mut case = Case::new("restore-corrupt");
    let pid = case.start_workload("wl_counter", &[]);
    case.wait_ready(pid, Duration::from_secs(10));
    case.dump_ok(pid, &[]);
    assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "original");
    let core = case.images.join(format!("core-{pid}.img"));
    let mut data = fs::read(&core).unwrap_or_else(|e| panic!("{}: {e}", core.display()));
    assert!(data.len() > 24, "core image has no body");
    let mid = 24 + (data.len() - 24) / 2;
    data[mid] ^= 0xff;
    fs::write(&core, &data).unwrap();
    let name = format!("core-{pid}.img");
    assert_restore_fails(&mut case, &name, naming(&name));
    assert!(!common::exists(pid), "pid {pid} exists after a failed restore");
}

/// Restoring while the original still holds the PID fails clearly and leaves
/// the original alone.
#[test]
fn restore_pid_taken() {
    let mut case = Case::new("restore-pid-taken");
    let pid = case.start_workload("wl_counter", &[]);
    case.wait_ready(pid, Duration::from_secs(10));
    case.dump_ok(pid, &["--leave-running"]);
    assert_restore_fails(&mut case, &format!("pid {pid}"), |err| common::mentions_number(err, pid as i64));
    assert_running_untraced(pid, "original after the failed restore");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, "original");
    case.assert_pass(1);
}

/// `ccr show` prints the images as JSON that mentions the dumped PID.
#[test]
fn show_is_json() {
    let mut case = Case::new("show");
    let pid = case.start_workload("wl_counter", &[]);
    case.wait_ready(pid, Duration::from_secs(10));
    case.dump_ok(pid, &["--leave-running"]);
    let out = case.ccr(&["show".to_string(), case.images.display().to_string()]);
    assert!(out.status.success(), "ccr show failed: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ccr show output is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    assert!(common::json_has_number(&v, pid as i64), "ccr show output does not contain pid {pid}: {v}");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, "original");
}

/// An fd handed over for an external file the checkpoint does not have is refused
/// by name (not silently ignored), and nothing is restored.
#[test]
fn restore_refuses_unmatched_inherit_fd() {
    let mut case = Case::new("inherit-fd");
    let pid = case.start_workload("wl_counter", &[]);
    case.wait_ready(pid, Duration::from_secs(10));
    case.dump_ok(pid, &["--leave-running"]);
    let images = case.images.display().to_string();
    let out = case.ccr(&["restore", "-D", &images, "--inherit-fd", "fd[0]:tty[88:1]"]);
    assert!(!out.status.success(), "restore with an unmatched --inherit-fd succeeded");
    assert!(stderr(&out).contains("tty[88:1]"), "error does not name the key: {}", stderr(&out));
    assert_running_untraced(pid, "original after the refused restore");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, "original");
    case.assert_pass(1);
}

#[test]
fn check_prints_features() {
    let case = Case::new("check");
    let out = case.ccr(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ccr check failed ({}): {text}{}", out.status, stderr(&out));
    let line = |name: &str| -> String {
        let found: Vec<&str> = text.lines().filter(|l| l.get(9..).is_some_and(|r| r.starts_with(name))).collect();
        assert_eq!(found.len(), 1, "ccr check: {} lines for {name:?}:\n{text}", found.len());
        found[0].to_string()
    };
    // What ccr needs, and this machine (and CI's, of the same kind) has.
    for name in [
        "kernel",
        "privileges",
        "CONFIG_CHECKPOINT_RESTORE",
        "clone3 with set_tid",
        "ptrace allowed",
        "kcmp",
        "pagemap",
        "pidfd_getfd",
        "POSIX timers under their IDs",
        "userfaultfd",
        "xsave",
        "namespaces",
        "mount API",
    ] {
        let l = line(name);
        assert!(l.starts_with("ok "), "ccr check says {l:?}, this machine has {name}");
    }
    // The cgroup lines say what the filesystem shows.
    let v1 = std::path::Path::new("/sys/fs/cgroup/freezer").is_dir();
    let v2 = ["/sys/fs/cgroup/unified/cgroup.controllers", "/sys/fs/cgroup/cgroup.controllers"]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
    for (name, has) in [("cgroup v1 freezer", v1), ("cgroup v2", v2)] {
        let want = if has { "ok " } else { "absent " };
        assert!(line(name).starts_with(want), "ccr check says {:?}; the filesystem says {has}", line(name));
    }
    assert_eq!(text.lines().count(), 15, "a feature line nobody checks:\n{text}");
    // The namespace line names every kind /proc/self/ns has.
    for k in ["pid", "mnt", "uts", "ipc", "net", "cgroup", "time", "user"] {
        let has = std::path::Path::new(&format!("/proc/self/ns/{k}")).exists();
        assert_eq!(
            line("namespaces").split(';').next().unwrap().split(' ').any(|w| w == k),
            has,
            "{k}: {}",
            line("namespaces")
        );
    }
    // The notes say what was found.
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert!(line("kernel").ends_with(release.trim()), "{}", line("kernel"));
    let cpu = fs::read_to_string("/proc/cpuinfo").unwrap();
    let flags = cpu.lines().find(|l| l.starts_with("flags")).unwrap().to_string();
    for f in ["avx", "avx2", "pku"] {
        let has = flags.split_whitespace().any(|x| x == f);
        let says = line("xsave").split(": ").nth(1).unwrap_or("").split_whitespace().any(|x| x == f);
        assert_eq!(has, says, "xsave note and /proc/cpuinfo disagree about {f}: {}", line("xsave"));
    }
}

/// The C ABI: a full cycle and its error paths, from c-tests/api_cycle.c.
#[test]
fn c_api_cycle() {
    let mut case = Case::new("api-cycle");
    let env = common::env();
    let mut cmd = Command::new(env.bin.join("api_cycle"));
    cmd.arg(Case::workload_path("wl_counter")).arg(case.dir.join("api")).env("LD_LIBRARY_PATH", &env.lib);
    let pid = case.start(cmd);
    let st = case.wait_exit(pid, Duration::from_secs(90));
    assert_exit(st, 0, "api_cycle");
    case.assert_pass(1);
}

/// seccomp: two filters stacked on a process (one with the LOG flag), a third
/// on one thread only, no_new_privs, and a child in strict mode all come back
/// (c-tests/wl_seccomp.c). ccr's own calls in the tasks pass them by.
#[test]
fn seccomp_filters_and_strict_mode() {
    common::cycle("seccomp", "wl_seccomp", &[], None);
}

#[test]
fn seccomp_leave_running() {
    common::leave_running("seccomp-leave-running", "wl_seccomp");
}
