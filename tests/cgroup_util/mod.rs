//! Shared by the cgroup integration tests: a container-like cgroup tree on every
//! hierarchy of this machine, with processes in it, removed again on drop.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ccr::cgroup::hierarchy::{self, Hierarchy};

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether a test that cannot run here must fail rather than skip (CI=1: CI runs
/// every test, so a missing precondition is a broken machine, not a pass).
pub fn strict() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Skips a test that needs root when not root, saying so; under CI=1 it fails.
#[macro_export]
macro_rules! need_root {
    () => {
        if !cgroup_util::is_root() {
            assert!(!cgroup_util::strict(), "this test needs root (CI=1 makes a skip a failure)");
            eprintln!("skipped: needs root");
            return;
        }
    };
}

pub fn hierarchies() -> Vec<Hierarchy> {
    hierarchy::mounted().expect("mountinfo")
}

/// The hierarchy answering to `ctl` ("memory", "systemd", "unified").
pub fn hier(ctl: &str) -> Hierarchy {
    hierarchies().into_iter().find(|h| h.answers_to(ctl)).unwrap_or_else(|| panic!("{ctl} not mounted"))
}

pub fn unique(tag: &str) -> String {
    format!("ccrtest-{}-{tag}", std::process::id())
}

pub fn write(dir: &Path, file: &str, value: &str) {
    fs::write(dir.join(file), value).unwrap_or_else(|e| panic!("write {value:?} to {}/{file}: {e}", dir.display()));
}

pub fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}/{file}: {e}", dir.display()))
        .trim_end()
        .to_string()
}

/// Cleans up on drop: thaws, kills the processes, removes the directories (deepest first).
#[derive(Default)]
pub struct Guard {
    pub dirs: Vec<PathBuf>,
    pub children: Vec<Child>,
}

impl Guard {
    pub fn add_dir(&mut self, d: PathBuf) {
        if !self.dirs.contains(&d) {
            self.dirs.push(d);
        }
    }

    /// Creates `d` (and records it).
    pub fn mkdir(&mut self, d: &Path) -> PathBuf {
        fs::create_dir(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        self.add_dir(d.to_path_buf());
        d.to_path_buf()
    }

    pub fn spawn(&mut self, cmd: &str, args: &[&str]) -> i32 {
        let c = Command::new(cmd).args(args).stdin(Stdio::null()).spawn().expect("spawn");
        let pid = c.id() as i32;
        self.children.push(c);
        pid
    }

    pub fn kill_all(&mut self) {
        self.thaw_all();
        for c in &mut self.children {
            let _ = c.kill();
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
        self.children.clear();
    }

    fn thaw_all(&self) {
        for d in &self.dirs {
            if d.join("freezer.state").exists() {
                let _ = fs::write(d.join("freezer.state"), "THAWED");
            }
            if d.join("cgroup.freeze").exists() {
                let _ = fs::write(d.join("cgroup.freeze"), "0");
            }
        }
    }

    /// Removes the directories (deepest first), retrying while exiting tasks linger.
    pub fn remove_dirs(&mut self) {
        self.dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in &self.dirs {
            remove_tree(d);
        }
        self.dirs.clear();
    }
}

/// Removes a cgroup directory and its sub-cgroups, deepest first.
pub fn remove_tree(d: &Path) {
    if !d.is_dir() {
        return;
    }
    if let Ok(rd) = fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path());
            }
        }
    }
    let start = Instant::now();
    while let Err(e) = fs::remove_dir(d) {
        if start.elapsed() > Duration::from_secs(5) {
            eprintln!("could not remove {}: {e}", d.display());
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill_all();
        self.remove_dirs();
    }
}

/// Waits until `f` holds, up to `secs`.
pub fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

/// The cgroup path of `pid` on hierarchy `h`.
pub fn cgroup_of(pid: i32, h: &Hierarchy) -> String {
    hierarchy::task_cgroups(pid)
        .unwrap()
        .into_iter()
        .find(|t| t.version == h.version && (h.version == 2 || t.controllers == h.controllers))
        .map(|t| t.path)
        .unwrap_or_default()
}
