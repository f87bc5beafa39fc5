//! Shared harness of the end-to-end tests: builds libccr, the ccr binary and the C
//! workloads once, runs each test case in a temporary directory of its own,
//! starts workloads, drives `ccr dump` / `ccr restore` and cleans up.
//!
//! Every process a case starts is tracked by PID; when a case ends (or panics) it
//! kills only those, and only while they are still ours (a child of this test
//! process, or a child of a `ccr restore` it started). The test process is a child
//! subreaper, so a restored task whose `ccr restore` died is reparented here and
//! reaped too. On a panic the case prints the workload output and the ccr logs.
//! `CCR_KEEP_TMP=1` keeps the temporary directories.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::{getpgid, Pid};

/// Paths of what the tests run.
pub struct Env {
    pub repo: PathBuf,
    pub ccr: PathBuf,
    pub bin: PathBuf,
    pub lib: PathBuf,
}

static ENV: OnceLock<Env> = OnceLock::new();
/// Cases of one test binary run one at a time: they watch PIDs and children.
static SERIAL: Mutex<()> = Mutex::new(());
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Builds everything once per test binary (`make lib ctests PROFILE=debug`).
/// `CCR_TEST_NO_BUILD=1` skips the build (CI ran make already).
pub fn env() -> &'static Env {
    ENV.get_or_init(|| {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        if std::env::var_os("CCR_TEST_NO_BUILD").is_none() {
            let out = Command::new("make")
                .arg("-C")
                .arg(&repo)
                .args(["lib", "ctests", "PROFILE=debug"])
                .stdin(Stdio::null())
                .output()
                .expect("cannot run make");
            assert!(
                out.status.success(),
                "make lib ctests failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
        Env {
            ccr: PathBuf::from(env!("CARGO_BIN_EXE_ccr")),
            bin: repo.join("c-tests/bin"),
            lib: repo.join("build/lib"),
            repo,
        }
    })
}

/// One test case: a temporary directory and the processes started in it.
pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    pub images: PathBuf,
    /// stdout and stderr of the workload (opened O_APPEND, so a restored task
    /// appends after what the original wrote).
    pub out: PathBuf,
    pub pidfile: PathBuf,
    children: Vec<Child>,
    /// Tasks we started or restored (PIDs), killed at the end if still ours.
    tasks: Vec<i32>,
    _serial: MutexGuard<'static, ()>,
}

impl Case {
    pub fn new(name: &str) -> Case {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        env();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ccr-test-{name}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create test dir");
        Case {
            name: name.to_string(),
            images: dir.join("images"),
            out: dir.join("wl.out"),
            pidfile: dir.join("restore.pid"),
            dir,
            children: Vec::new(),
            tasks: Vec::new(),
            _serial: serial,
        }
    }

    /// `c-tests/bin/NAME`.
    pub fn workload_path(name: &str) -> PathBuf {
        env().bin.join(name)
    }

    /// Starts a C workload with the case's scratch directory as argv[1].
    pub fn start_workload(&mut self, name: &str, envs: &[(&str, &str)]) -> i32 {
        let scratch = self.dir.join("scratch");
        let mut cmd = Command::new(Self::workload_path(name));
        cmd.arg(&scratch);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        self.start(cmd)
    }

    /// Starts any program with stdin /dev/null and stdout+stderr to `self.out`, in
    /// a session of its own.
    pub fn start(&mut self, cmd: Command) -> i32 {
        self.start_in(cmd, true)
    }

    /// Starts a program as a shell starts a job: in our session and process group.
    pub fn start_job(&mut self, cmd: Command) -> i32 {
        self.start_in(cmd, false)
    }

    fn start_in(&mut self, mut cmd: Command, own_session: bool) -> i32 {
        let out = OpenOptions::new().create(true).append(true).open(&self.out).expect("open wl.out");
        let err = out.try_clone().expect("dup wl.out");
        cmd.stdin(Stdio::null()).stdout(out).stderr(err).current_dir(&self.dir);
        // Whatever started the tests may leak fds (pipes) into us; a workload starts
        // with stdio only, as the tests assume. It leads a session of its own, as a
        // daemon or a container's init does (a shell's job is tests/shell_job.rs).
        // SAFETY: close_range and setsid are async-signal-safe and touch only the child.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                if own_session {
                    libc::setsid();
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let pid = child.id() as i32;
        self.children.push(child);
        self.tasks.push(pid);
        pid
    }

    /// The workload output so far.
    pub fn output(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits until the workload printed the line `ready` (and then `settle`).
    pub fn wait_ready(&mut self, pid: i32, timeout: Duration) {
        let start = Instant::now();
        while !self.output().lines().any(|l| l == "ready") {
            if let Some(st) = self.try_wait(pid) {
                panic!("{}: pid {pid} exited ({st}) before ready", self.name);
            }
            assert!(start.elapsed() < timeout, "{}: pid {pid} not ready after {timeout:?}", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    /// Runs `ccr ARGS` to completion; stdout/stderr captured and kept in ccr.log.
    pub fn ccr<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        let mut cmd = Command::new(&env().ccr);
        cmd.args(args).stdin(Stdio::null()).current_dir(&self.dir);
        let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let mut log = OpenOptions::new().create(true).append(true).open(self.dir.join("ccr.log")).unwrap();
        use std::io::Write;
        let _ = writeln!(
            log,
            "$ {cmd:?}\n{}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `ccr dump -t PID -D images -o dump.log -v 4 EXTRA...`
    pub fn dump(&self, pid: i32, extra: &[&str]) -> Output {
        let mut args: Vec<String> = vec!["dump".into(), "-t".into(), pid.to_string(), "-D".into()];
        args.push(self.images.display().to_string());
        args.extend(["-o".into(), self.dir.join("dump.log").display().to_string(), "-v".into(), "4".into()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        self.ccr(&args)
    }

    /// Dumps and asserts success.
    pub fn dump_ok(&self, pid: i32, extra: &[&str]) {
        let out = self.dump(pid, extra);
        assert!(out.status.success(), "{}: ccr dump of pid {pid} failed ({}): {}", self.name, out.status, stderr(&out));
    }

    /// Starts `ccr restore -D images -o restore.log -v 4 --pidfile restore.pid
    /// EXTRA...` in the background; returns its PID.
    pub fn spawn_restore(&mut self, extra: &[&str]) -> i32 {
        let _ = fs::remove_file(&self.pidfile);
        let log = File::create(self.dir.join("restore.out")).expect("restore.out");
        let mut cmd = Command::new(&env().ccr);
        cmd.arg("restore")
            .arg("-D")
            .arg(&self.images)
            .arg("-o")
            .arg(self.dir.join("restore.log"))
            .args(["-v", "4", "--pidfile"])
            .arg(&self.pidfile)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .current_dir(&self.dir);
        let child = cmd.spawn().expect("cannot start ccr restore");
        let pid = child.id() as i32;
        self.children.push(child);
        pid
    }

    /// Waits for the pidfile of a `ccr restore` and returns the restored PID.
    pub fn wait_pidfile(&mut self, restore_pid: i32, timeout: Duration) -> i32 {
        let start = Instant::now();
        loop {
            if let Ok(s) = fs::read_to_string(&self.pidfile) {
                if let Ok(pid) = s.trim().parse::<i32>() {
                    self.tasks.push(pid);
                    return pid;
                }
            }
            if let Some(st) = self.try_wait(restore_pid) {
                panic!("{}: ccr restore exited ({st}) without writing {}", self.name, self.pidfile.display());
            }
            assert!(start.elapsed() < timeout, "{}: no pidfile after {timeout:?}", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn child_index(&self, pid: i32) -> usize {
        self.children
            .iter()
            .position(|c| c.id() as i32 == pid)
            .unwrap_or_else(|| panic!("pid {pid} is not a child this case started"))
    }

    /// Non-blocking wait for one of our children.
    pub fn try_wait(&mut self, pid: i32) -> Option<ExitStatus> {
        let i = self.child_index(pid);
        self.children[i].try_wait().expect("try_wait")
    }

    /// Waits for one of our children to exit; panics after `timeout`.
    pub fn wait_exit(&mut self, pid: i32, timeout: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(st) = self.try_wait(pid) {
                return st;
            }
            assert!(start.elapsed() < timeout, "{}: pid {pid} still running after {timeout:?}", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal to a task this case started or restored.
    pub fn signal(&self, pid: i32, sig: Signal) {
        assert!(self.tasks.contains(&pid), "pid {pid} is not a task of this case");
        kill(Pid::from_raw(pid), sig).unwrap_or_else(|e| panic!("{}: kill({pid}, {sig}): {e}", self.name));
    }

    /// Asserts the workload printed `PASS` at least `n` times and no FAIL line.
    pub fn assert_pass(&self, n: usize) {
        let out = self.output();
        let fails: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
        assert!(fails.is_empty(), "{}: workload failed:\n{}", self.name, fails.join("\n"));
        let passes = out.lines().filter(|l| *l == "PASS").count();
        assert!(passes >= n, "{}: {passes} PASS lines, want {n}", self.name);
    }

    fn read_log(&self, name: &str) -> String {
        fs::read_to_string(self.dir.join(name)).unwrap_or_else(|e| format!("({e})"))
    }

    /// Prints everything that helps to see why a case failed.
    pub fn diagnostics(&self) {
        eprintln!("==== {}: test dir {}", self.name, self.dir.display());
        for f in ["wl.out", "ccr.log", "dump.log", "restore.out", "restore.log"] {
            eprintln!("---- {f}\n{}", self.read_log(f));
        }
    }

    /// Whether `pid` is still a process of ours: our child, or a child of a
    /// process we started.
    fn is_ours(&self, pid: i32) -> bool {
        let me = std::process::id() as i32;
        match ppid(pid) {
            Some(p) if p == me => true,
            Some(p) => self.children.iter().any(|c| c.id() as i32 == p) || is_descendant(p, me),
            None => false,
        }
    }

    /// Tracks a task of a tree (a descendant of something we started): killed at
    /// the end while it is still a descendant of this test process.
    pub fn track(&mut self, pid: i32) {
        if !self.tasks.contains(&pid) {
            self.tasks.push(pid);
        }
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.diagnostics();
        }
        // Restored and started tasks first (their parent may be a ccr restore).
        for &pid in &self.tasks {
            if self.is_ours(pid) {
                // A workload leads its own session and group: its children go too.
                if getpgid(Some(Pid::from_raw(pid))).ok() == Some(Pid::from_raw(pid)) {
                    let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
                }
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        for c in &mut self.children {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        // Tasks reparented to us (we are a subreaper) are reaped here.
        for &pid in &self.tasks {
            let deadline = Instant::now() + Duration::from_secs(2);
            while ppid(pid) == Some(std::process::id() as i32) && Instant::now() < deadline {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if std::env::var_os("CCR_KEEP_TMP").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Fields of /proc/PID/stat after the command name: [state, ppid, ...].
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// The state letter of a task (R, S, D, T, t, Z, ...).
pub fn state(pid: i32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

pub fn ppid(pid: i32) -> Option<i32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// TracerPid from /proc/PID/status.
pub fn tracer_pid(pid: i32) -> Option<i32> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| l.strip_prefix("TracerPid:")).and_then(|v| v.trim().parse().ok())
}

/// Whether `ancestor` is `pid` or one of its ancestors (walking /proc ppids).
pub fn is_descendant(pid: i32, ancestor: i32) -> bool {
    let mut p = pid;
    for _ in 0..4096 {
        if p == ancestor {
            return true;
        }
        match ppid(p) {
            Some(q) if q > 0 => p = q,
            _ => return false,
        }
    }
    false
}

/// Whether a process with this PID exists (zombies included).
pub fn exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// PIDs whose parent is `parent`.
pub fn children_of(parent: i32) -> Vec<i32> {
    let mut v = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) {
            if ppid(pid) == Some(parent) {
                v.push(pid);
            }
        }
    }
    v
}

/// A PID no process has now (below pid_max, so it is a plausible PID).
pub fn free_pid() -> i32 {
    let max: i32 =
        fs::read_to_string("/proc/sys/kernel/pid_max").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(32768);
    (300..max).rev().find(|p| !exists(*p)).expect("no free pid")
}

/// Asserts a task is running normally: exists, not traced, not stopped, not a zombie.
pub fn assert_running_untraced(pid: i32, what: &str) {
    let st = state(pid).unwrap_or_else(|| panic!("{what}: pid {pid} is gone"));
    assert!(!matches!(st, 'T' | 't' | 'Z' | 'X'), "{what}: pid {pid} is in state {st}");
    assert_eq!(tracer_pid(pid), Some(0), "{what}: pid {pid} is still traced");
}

/// Asserts an exit status is a normal exit with `code`.
pub fn assert_exit(st: ExitStatus, code: i32, what: &str) {
    assert_eq!(st.code(), Some(code), "{what}: exit status {st}, want exit code {code}");
}

/// Asserts a child was killed by `sig`.
pub fn assert_killed(st: ExitStatus, sig: Signal, what: &str) {
    assert_eq!(st.signal(), Some(sig as i32), "{what}: exit status {st}, want killed by {sig}");
}

/// What a standard cycle does between restore and SIGTERM.
pub type Hook = fn(&mut Case, i32);

/// `root` and every process below it (one pass over /proc).
pub fn tree_pids(root: i32) -> Vec<i32> {
    let all: Vec<(i32, i32)> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|p| Some((p, ppid(p)?)))
        .collect();
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(all.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out
}

/// Waits until none of `pids` exists, reaping those reparented to us (the test
/// process is a child subreaper).
pub fn reap_gone(pids: &[i32], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive: Vec<i32> = pids
            .iter()
            .copied()
            .filter(|&p| {
                if ppid(p) == Some(std::process::id() as i32) {
                    let _ = waitpid(Pid::from_raw(p), Some(WaitPidFlag::WNOHANG));
                }
                exists(p)
            })
            .collect();
        if alive.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: tasks still exist: {alive:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A dump that leaves the workload running: it peeked at queues, counters and
/// contents, and the original must not notice.
pub fn leave_running(name: &str, workload: &str) {
    let mut case = Case::new(name);
    let pid = case.start_workload(workload, &[]);
    case.wait_ready(pid, Duration::from_secs(10));
    case.dump_ok(pid, &["--leave-running"]);
    assert_running_untraced(pid, "original after dump --leave-running");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, "original");
    case.assert_pass(1);
}

/// The standard cycle: start, ready, dump (kills), restore (same PID), `hook`,
/// SIGTERM, `ccr restore` exits 0, the workload printed PASS.
pub fn cycle(name: &str, workload: &str, envs: &[(&str, &str)], hook: Option<Hook>) -> Case {
    cycle_with(name, workload, envs, &[], hook)
}

/// [`cycle`] with `dump_args` given to the dump.
pub fn cycle_with(name: &str, workload: &str, envs: &[(&str, &str)], dump_args: &[&str], hook: Option<Hook>) -> Case {
    let mut case = Case::new(name);
    let pid = case.start_workload(workload, envs);
    case.wait_ready(pid, Duration::from_secs(10));
    let tree = tree_pids(pid);
    case.dump_ok(pid, dump_args);
    let st = case.wait_exit(pid, Duration::from_secs(10));
    assert_killed(st, Signal::SIGKILL, "original after dump");
    reap_gone(&tree, "the dumped tree");
    let rp = case.spawn_restore(&[]);
    let restored = case.wait_pidfile(rp, Duration::from_secs(30));
    assert_eq!(restored, pid, "restored under another PID");
    assert_running_untraced(pid, "restored task");
    if let Some(h) = hook {
        h(&mut case, pid);
    }
    case.signal(pid, Signal::SIGTERM);
    let st = case.wait_exit(rp, Duration::from_secs(60));
    assert_exit(st, 0, "ccr restore (the restored workload's status)");
    case.assert_pass(1);
    case
}

/// Whether `text` contains `n` as a whole number (not inside a longer one).
pub fn mentions_number(text: &str, n: i64) -> bool {
    text.split(|c: char| !c.is_ascii_digit()).any(|w| w == n.to_string())
}

/// Whether a JSON value holds `n` anywhere (as a number or a decimal string).
pub fn json_has_number(v: &serde_json::Value, n: i64) -> bool {
    match v {
        serde_json::Value::Number(x) => x.as_i64() == Some(n),
        serde_json::Value::String(s) => s == &n.to_string(),
        serde_json::Value::Array(a) => a.iter().any(|x| json_has_number(x, n)),
        serde_json::Value::Object(o) => o.values().any(|x| json_has_number(x, n)),
        _ => false,
    }
}
