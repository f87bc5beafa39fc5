//! Whole process trees: dump a tree (the harness's child is its root), make sure
//! every original task is gone, restore it (same PIDs, same parents), let it
//! check itself at SIGTERM. Also real programs that fork (bash pipelines, Python
//! threads and workers), a dump that fails in the middle of a tree and a restore
//! that fails in the middle of one.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{assert_exit, assert_killed, assert_running_untraced, exists, ppid, stderr, Case};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

fn me() -> i32 {
    std::process::id() as i32
}

/// Every process below `root` (not `root` itself), zombies included, with its
/// parent: one pass over /proc.
fn descendants(root: i32) -> BTreeMap<i32, i32> {
    let mut by_parent: HashMap<i32, Vec<i32>> = HashMap::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) {
            if let Some(p) = ppid(pid) {
                by_parent.entry(p).or_default().push(pid);
            }
        }
    }
    let mut out = BTreeMap::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        for &c in by_parent.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
            out.insert(c, p);
            todo.push(c);
        }
    }
    out
}

/// The tree below `root` once it has `want` descendants (waits for late forks).
fn tree_of(case: &mut Case, root: i32, want: usize) -> BTreeMap<i32, i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let t = descendants(root);
        if t.len() >= want || Instant::now() > deadline {
            for &pid in t.keys() {
                case.track(pid);
            }
            assert_eq!(t.len(), want, "{}: tree below {root} has {} tasks, want {want}: {t:?}", case.name, t.len());
            return t;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// After a dump that killed the tree: reaps what was reparented to us (we are a
/// subreaper) and asserts that none of the PIDs exists any more.
fn assert_all_gone(pids: &[i32], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut alive = Vec::new();
        for &pid in pids {
            if ppid(pid) == Some(me()) {
                let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
            }
            if exists(pid) {
                alive.push(pid);
            }
        }
        if alive.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: tasks still exist: {:?}",
            alive.iter().map(|p| (*p, common::state(*p), ppid(*p))).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts the restored tree below `root` is exactly `tree` (same PIDs, same
/// parents), every task running normally and untraced (zombies may be zombies).
fn assert_same_tree(root: i32, tree: &BTreeMap<i32, i32>, what: &str) {
    let now = descendants(root);
    assert_eq!(&now, tree, "{what}: restored tree differs (pid -> parent)");
    assert_running_untraced(root, what);
    for &pid in tree.keys() {
        if common::state(pid) != Some('Z') {
            assert_running_untraced(pid, what);
        }
    }
}

/// Dump (killing the tree), check it is all gone, restore, check the tree is
/// back as it was; returns (root, restore pid, tree).
fn dump_kill_restore(case: &mut Case, root: i32, want: usize) -> (i32, BTreeMap<i32, i32>) {
    let tree = tree_of(case, root, want);
    case.dump_ok(root, &[]);
    assert_killed(case.wait_exit(root, Duration::from_secs(20)), Signal::SIGKILL, "original root after dump");
    let mut all: Vec<i32> = tree.keys().copied().collect();
    all.push(root);
    assert_all_gone(&all, "original tree after dump");
    let rp = case.spawn_restore(&[]);
    let restored = case.wait_pidfile(rp, Duration::from_secs(60));
    assert_eq!(restored, root, "restored under another PID");
    assert_same_tree(root, &tree, "restored tree");
    (rp, tree)
}

/// The standard cycle for a tree workload with `want` tasks below the root.
fn tree_cycle(name: &str, workload: &str, want: usize) {
    let mut case = Case::new(name);
    let root = case.start_workload(workload, &[]);
    case.wait_ready(root, Duration::from_secs(20));
    let (rp, _) = dump_kill_restore(&mut case, root, want);
    case.signal(root, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(60)), 0, "ccr restore (the restored root's status)");
    case.assert_pass(1);
}

#[test]
fn tree() {
    // c1, c2, c3, g1, g2 and the zombie c4.
    tree_cycle("tree", "wl_tree", 6);
}

#[test]
fn tree100() {
    tree_cycle("tree100", "wl_tree100", 99);
}

#[test]
fn threads() {
    tree_cycle("threads", "wl_threads", 0);
}

#[test]
fn pipes() {
    tree_cycle("pipes", "wl_pipes", 1);
}

#[test]
fn shmem() {
    tree_cycle("shmem", "wl_shmem", 1);
}

#[test]
fn sharedfd() {
    tree_cycle("sharedfd", "wl_sharedfd", 1);
}

/// --leave-running: the tree goes on untraced and passes; the restore after it
/// ended passes again.
#[test]
fn tree_leave_running() {
    let mut case = Case::new("tree-leave-running");
    let root = case.start_workload("wl_tree", &[]);
    case.wait_ready(root, Duration::from_secs(20));
    let tree = tree_of(&mut case, root, 6);
    case.dump_ok(root, &["--leave-running"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_same_tree(root, &tree, "original tree after dump --leave-running");
    case.signal(root, Signal::SIGTERM);
    assert_exit(case.wait_exit(root, Duration::from_secs(30)), 0, "original");
    case.assert_pass(1);
    let all: Vec<i32> = tree.keys().copied().collect();
    assert_all_gone(&all, "original tree after it ended");

    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(60)), root);
    assert_same_tree(root, &tree, "restored tree");
    case.signal(root, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(60)), 0, "ccr restore");
    case.assert_pass(2);
}

/// `ccr show` lists every task of the tree.
#[test]
fn show_lists_every_task() {
    let mut case = Case::new("tree-show");
    let root = case.start_workload("wl_tree", &[]);
    case.wait_ready(root, Duration::from_secs(20));
    let tree = tree_of(&mut case, root, 6);
    case.dump_ok(root, &["--leave-running"]);
    let out = case.ccr(&["show".to_string(), case.images.display().to_string()]);
    assert!(out.status.success(), "ccr show failed: {}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("ccr show output is not JSON ({e}): {text}"));
    for pid in std::iter::once(root).chain(tree.keys().copied()) {
        assert!(common::json_has_number(&v, pid as i64), "ccr show does not list pid {pid}: {text}");
    }
    case.signal(root, Signal::SIGTERM);
    assert_exit(case.wait_exit(root, Duration::from_secs(30)), 0, "original");
    case.assert_pass(1);
}

/// A grandchild with an inet socket: the dump fails naming it, and every task
/// of the tree runs on untraced, not stopped, and passes its checks.
#[test]
fn dump_fails_in_the_middle_of_a_tree() {
    let mut case = Case::new("tree-dump-fails");
    let root = case.start_workload("wl_tree", &[("WL_TREE_SOCKET", "1")]);
    case.wait_ready(root, Duration::from_secs(20));
    let tree = tree_of(&mut case, root, 6);
    let g2 = pid_from_info(&case.output(), "g2");
    let out = case.dump(root, &[]);
    assert!(!out.status.success(), "dump of a tree with an inet socket in g2 ({g2}) succeeded");
    let err = stderr(&out);
    assert!(common::mentions_number(&err, g2 as i64), "dump error does not name the task with the socket, {g2}: {err}");
    std::thread::sleep(Duration::from_millis(300));
    assert_same_tree(root, &tree, "tree after a failed dump");
    case.signal(root, Signal::SIGTERM);
    assert_exit(case.wait_exit(root, Duration::from_secs(30)), 0, "tree after a failed dump");
    case.assert_pass(1);
}

/// The PID wl_tree printed for `name` in its info line.
fn pid_from_info(out: &str, name: &str) -> i32 {
    let line = out.lines().find(|l| l.starts_with("info: root ")).unwrap_or_else(|| panic!("no info line in {out}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words.iter().position(|w| *w == name).unwrap_or_else(|| panic!("{name} not in {line}"));
    words[i + 1].parse().unwrap()
}

/// Runs a restore that must fail and asserts it left nothing behind: no new
/// child of ours, none of the tree's PIDs.
fn restore_must_fail(case: &mut Case, pids: &[i32], what: &str) -> String {
    let before = common::children_of(me());
    let rp = case.spawn_restore(&[]);
    let st = case.wait_exit(rp, Duration::from_secs(60));
    let err = fs::read_to_string(case.dir.join("restore.out")).unwrap_or_default();
    assert!(!st.success(), "{what}: restore succeeded: {err}");
    std::thread::sleep(Duration::from_millis(200));
    let left: Vec<i32> = common::children_of(me()).into_iter().filter(|p| !before.contains(p)).collect();
    for &p in &left {
        case.track(p);
    }
    assert!(left.is_empty(), "{what}: tasks left behind: {left:?}");
    let alive: Vec<i32> = pids.iter().copied().filter(|p| exists(*p)).collect();
    assert!(alive.is_empty(), "{what}: tree PIDs exist: {alive:?}");
    assert!(!case.pidfile.exists(), "{what}: pidfile written");
    err
}

fn dumped_tree(case: &mut Case) -> (i32, Vec<i32>) {
    let root = case.start_workload("wl_tree", &[]);
    case.wait_ready(root, Duration::from_secs(20));
    let tree = tree_of(case, root, 6);
    case.dump_ok(root, &[]);
    assert_killed(case.wait_exit(root, Duration::from_secs(20)), Signal::SIGKILL, "original root");
    let mut all: Vec<i32> = tree.keys().copied().collect();
    all.push(root);
    assert_all_gone(&all, "original tree after dump");
    (root, all)
}

#[test]
fn restore_fails_on_garbage_core_of_a_grandchild() {
    let mut case = Case::new("tree-restore-garbage-core");
    let (_, all) = dumped_tree(&mut case);
    let g1 = pid_from_info(&case.output(), "g1");
    let core = case.images.join(format!("core-{g1}.img"));
    assert!(core.exists(), "no {}", core.display());
    fs::write(&core, b"garbage").unwrap();
    let name = format!("core-{g1}.img");
    let err = restore_must_fail(&mut case, &all, "garbage core of g1");
    assert!(
        err.contains(&name) || common::mentions_number(&err, g1 as i64),
        "restore error names neither {name} nor pid {g1}: {err}"
    );
}

#[test]
fn restore_fails_on_truncated_pages_of_a_grandchild() {
    let mut case = Case::new("tree-restore-short-pages");
    let (_, all) = dumped_tree(&mut case);
    let g2 = pid_from_info(&case.output(), "g2");
    let pages = case.images.join(format!("pages-{g2}.img"));
    let len = fs::metadata(&pages).unwrap_or_else(|e| panic!("{}: {e}", pages.display())).len();
    assert!(len > 8192, "pages image of g2 is only {len} bytes");
    fs::OpenOptions::new().write(true).open(&pages).unwrap().set_len(len / 2).unwrap();
    let err = restore_must_fail(&mut case, &all, "truncated pages of g2");
    assert!(
        err.contains(&format!("pages-{g2}.img")) || common::mentions_number(&err, g2 as i64),
        "restore error names neither pages-{g2}.img nor pid {g2}: {err}"
    );
}

/// Reads an integer a program keeps rewriting (retrying while it is mid-write).
fn read_counter(path: &std::path::Path) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(n) = fs::read_to_string(path).ok().and_then(|s| s.split_whitespace().next()?.parse().ok()) {
            return n;
        }
        assert!(Instant::now() < deadline, "{} holds no number", path.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A real forking program that counts into `counter`: dumped with `want` tasks
/// below the root once the count passed 20, restored, then it must count on
/// from where it was. Then SIGTERM to the root; ccr restore exits `term_code`.
fn counting_tree(name: &str, mut cmd: Command, want: usize, term_code: i32) -> Case {
    let mut case = Case::new(name);
    let counter = case.dir.join("counter");
    cmd.arg(&counter);
    let root = case.start(cmd);
    case.wait_ready(root, Duration::from_secs(20));
    let deadline = Instant::now() + Duration::from_secs(20);
    while read_counter(&counter) < 20 {
        assert!(Instant::now() < deadline, "{name}: counter is not counting");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (rp, _) = dump_kill_restore(&mut case, root, want);
    let at_dump = read_counter(&counter);
    let deadline = Instant::now() + Duration::from_secs(20);
    let now = loop {
        let n = read_counter(&counter);
        if n > at_dump + 10 {
            break n;
        }
        assert!(Instant::now() < deadline, "{name}: restored tree does not count on from {at_dump} (now {n})");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(now > at_dump);
    case.signal(root, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(60)), term_code, "ccr restore");
    case
}

/// A bash pipeline of three processes: a producer, a line counter, and the
/// waiting shell. The count goes on after restore.
#[test]
fn bash_pipeline_counts_on() {
    let script = r#"trap 'kill $!; exit 0' TERM
(i=0; while :; do i=$((i+1)); echo $i; done) | (n=0; while read l; do n=$((n+1)); [ "$l" = "$n" ] || { echo "FAIL: line $n is $l"; exit 1; }; echo $n > "$1"; done) &
echo ready
wait"#;
    let mut cmd = Command::new("bash");
    cmd.args(["-c", script, "bash"]);
    let case = counting_tree("bash-pipeline", cmd, 2, 0);
    let out = case.output();
    assert!(!out.contains("FAIL"), "pipeline lost or repeated lines: {out}");
}

/// `for ... echo | awk` of a known length: the exact line count and checksum
/// come out after a restore in the middle (no byte lost or doubled in a pipe).
#[test]
fn bash_awk_pipeline_exact_result() {
    const N: u64 = 3_000_000;
    let mut case = Case::new("bash-awk");
    let result = case.dir.join("result");
    let script = format!(
        r#"echo ready; for ((i=1;i<={N};i++)); do echo $i; done | awk '{{s=(s+$1)%1000003}} END {{print NR, s}}' > "$1.tmp"; mv "$1.tmp" "$1""#
    );
    let mut cmd = Command::new("bash");
    cmd.args(["-c", &script, "bash"]).arg(&result);
    let root = case.start(cmd);
    case.wait_ready(root, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
    let (rp, _) = dump_kill_restore(&mut case, root, 2);
    assert!(!result.exists(), "the pipeline ended before the dump");
    assert_exit(case.wait_exit(rp, Duration::from_secs(300)), 0, "ccr restore (bash)");
    let sum = (1..=N).fold(0u64, |s, i| (s + i) % 1_000_003);
    let got = fs::read_to_string(&result).unwrap_or_default();
    assert_eq!(got.trim(), format!("{N} {sum}"), "pipeline result");
}

/// Python: four threads counting and a multiprocessing child (fork context)
/// answering over pipes; both go on after restore and the answers stay right.
#[test]
fn python_threads_and_multiprocessing() {
    let script = r#"
import multiprocessing as mp, os, signal, sys, threading
path = sys.argv[1]
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
def echo(rx, tx):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        n = rx.recv()
        if n is None:
            return
        tx.send(n * 2 + 1)
counts = [0] * 4
def count(i):
    while not stop.is_set():
        counts[i] += 1
ctx = mp.get_context("fork")
rx1, tx1 = ctx.Pipe(duplex=False)
rx2, tx2 = ctx.Pipe(duplex=False)
child = ctx.Process(target=echo, args=(rx1, tx2))
child.start()
threads = [threading.Thread(target=count, args=(i,)) for i in range(4)]
for t in threads:
    t.start()
print("ready", flush=True)
n = 0
ok = True
while not stop.is_set():
    n += 1
    tx1.send(n)
    r = rx2.recv()
    if r != n * 2 + 1:
        print(f"FAIL: sent {n}, got {r}", flush=True)
        ok = False
    with open(path + ".tmp", "w") as f:
        f.write(f"{n} {sum(counts)}")
    os.replace(path + ".tmp", path)
    stop.wait(0.005)
tx1.send(None)
child.join()
for t in threads:
    t.join()
if child.exitcode != 0 or min(counts) == 0:
    print(f"FAIL: child exit {child.exitcode}, counts {counts}", flush=True)
    ok = False
print("PASS" if ok else "FAIL", flush=True)
sys.exit(0 if ok else 1)
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]);
    let case = counting_tree("python-mp", cmd, 1, 0);
    case.assert_pass(1);
}

/// A pre-forking server from the standard library's os.fork: three workers,
/// each with a request pipe and a reply pipe; the master hands out jobs and
/// checks the answers. It goes on after restore.
#[test]
fn python_forking_workers() {
    let script = r#"
import os, signal, sys
path = sys.argv[1]
stop = False
def term(*a):
    global stop
    stop = True
signal.signal(signal.SIGTERM, term)
workers = []
for w in range(3):
    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        os.close(req_w); os.close(rep_r)
        # The parent's ends for the earlier workers came along with fork: without
        # closing them, those workers would never see EOF at shutdown.
        for _, owf, orf in workers:
            owf.close(); orf.close()
        rf = os.fdopen(req_r, "r"); wf = os.fdopen(rep_w, "w")
        for line in rf:
            n = int(line)
            wf.write(f"{n * n + w}\n"); wf.flush()
        os._exit(0)
    os.close(req_r); os.close(rep_w)
    workers.append((pid, os.fdopen(req_w, "w"), os.fdopen(rep_r, "r")))
print("ready", flush=True)
n = 0
ok = True
while not stop:
    for w, (pid, wf, rf) in enumerate(workers):
        n += 1
        wf.write(f"{n}\n"); wf.flush()
        r = int(rf.readline())
        if r != n * n + w:
            print(f"FAIL: worker {w} answered {r} for {n}", flush=True)
            ok = False
    with open(path + ".tmp", "w") as f:
        f.write(str(n))
    os.replace(path + ".tmp", path)
for pid, wf, rf in workers:
    wf.close()
    _, st = os.waitpid(pid, 0)
    if st != 0:
        print(f"FAIL: worker {pid} status {st}", flush=True)
        ok = False
print("PASS" if ok else "FAIL", flush=True)
sys.exit(0 if ok else 1)
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]);
    let case = counting_tree("python-workers", cmd, 3, 0);
    case.assert_pass(1);
}

/// A double-forking daemon's leftovers: processes in a session whose leader has
/// exited, adopted by a subreaper. They come back in that session, under the same
/// parent, and the subreaper stays one.
#[test]
fn session_whose_leader_is_gone() {
    tree_cycle("session-orphan", "wl_session", 2);
}

/// SysV shared memory: a keyed segment shared by parent and child, and a private
/// one removed while attached, come back shared, with their contents and ids.
#[test]
fn sysv_shared_memory() {
    tree_cycle("sysv-shm", "wl_sysvshm", 1);
}

/// Processes that share an fd table, fs (cwd, root, umask) or address space and
/// signal handlers without being threads would each come back with a copy of its
/// own: the dump refuses them by name and both run on with the sharing intact.
#[test]
fn shared_tables_between_processes_are_refused_by_name() {
    for (share, want) in [
        ("files", "file descriptor table shared with process"),
        ("fs", "cwd, root and umask shared with process"),
        ("vm", "address space shared with process"),
    ] {
        let mut case = Case::new(&format!("shared-{share}"));
        let pid = case.start_workload("wl_shared_tables", &[("WL_SHARE", share)]);
        case.wait_ready(pid, Duration::from_secs(10));
        let tree = common::tree_pids(pid);
        assert_eq!(tree.len(), 2, "{share}: {tree:?}");
        let out = case.dump(pid, &[]);
        let err = stderr(&out);
        assert!(!out.status.success() && err.contains(want), "{share}: dump: {err}");
        for &p in &tree {
            assert_running_untraced(p, share);
        }
        case.signal(pid, Signal::SIGTERM);
        assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, share);
        case.assert_pass(1);
    }
}
