//! Freezing a cgroup and its descendants: v1 `freezer.state`, v2 `cgroup.freeze`.
//!
//! v1: write FROZEN, then poll `freezer.state` until it reads FROZEN (it passes
//! through FREEZING while tasks are caught; the write is repeated while polling so a
//! task forked meanwhile is caught too). v2: write 1 to `cgroup.freeze`, then poll
//! `cgroup.events` until it says `frozen 1`. A freeze that does not complete in time
//! is undone (the group is put back as it was) and reported.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::CgroupError;
use crate::sys::{cgroupfs, SysError};

pub const DEFAULT_TIMEOUT_S: u32 = crate::opts::DEFAULT_FREEZE_TIMEOUT_S;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    V1,
    V2,
}

/// Which freezer `dir` has.
pub fn flavor(dir: &Path) -> Result<Flavor, CgroupError> {
    if cgroupfs::exists(&dir.join("freezer.state")) {
        Ok(Flavor::V1)
    } else if cgroupfs::exists(&dir.join("cgroup.freeze")) {
        Ok(Flavor::V2)
    } else {
        Err(CgroupError::NotFreezable { path: dir.to_path_buf() })
    }
}

fn read_state(dir: &Path, fl: Flavor) -> Result<String, SysError> {
    match fl {
        Flavor::V1 => Ok(cgroupfs::read(dir, "freezer.state")?.unwrap_or_default()),
        // The group counts as frozen once it and every descendant say so: its own
        // `frozen 1` has been seen ahead of a child's on this kernel.
        Flavor::V2 => {
            let mut stack = vec![dir.to_path_buf()];
            let mut all = true;
            while let Some(d) = stack.pop() {
                let ev = match cgroupfs::read(&d, "cgroup.events") {
                    Ok(ev) => ev.unwrap_or_default(),
                    // A child removed meanwhile does not count.
                    Err(_) if d != dir && !cgroupfs::is_dir(&d) => continue,
                    Err(e) => return Err(e),
                };
                let f = ev.lines().find_map(|l| l.strip_prefix("frozen ")).unwrap_or("0").trim() == "1";
                all &= f;
                if let Ok(subs) = cgroupfs::subdirs(&d) {
                    stack.extend(subs.into_iter().map(|n| d.join(n)));
                }
            }
            // Thawed means the group itself says so (a child may be frozen by its owner).
            let own = cgroupfs::read(dir, "cgroup.events")?.unwrap_or_default();
            let own = own.lines().find_map(|l| l.strip_prefix("frozen ")).unwrap_or("0").trim() == "1";
            Ok(if all {
                "1"
            } else if own {
                "partial"
            } else {
                "0"
            }
            .to_string())
        }
    }
}

/// Whether `state` is the one a freeze (`frozen`) or a thaw waits for.
fn reached(fl: Flavor, state: &str, frozen: bool) -> bool {
    match (fl, frozen) {
        (Flavor::V1, true) => state == "FROZEN",
        (Flavor::V1, false) => state == "THAWED",
        (Flavor::V2, true) => state == "1",
        (Flavor::V2, false) => state == "0",
    }
}

/// Whether the group's owner asked for it to be frozen (not a parent, not FREEZING).
pub fn frozen_by_self(dir: &Path) -> Result<bool, CgroupError> {
    let fl = flavor(dir)?;
    let rd = |f: &str| {
        cgroupfs::read(dir, f).map_err(|source| CgroupError::Freeze { path: dir.into(), source: Box::new(source) })
    };
    Ok(match fl {
        Flavor::V1 => match rd("freezer.self_freezing")? {
            Some(s) => s.trim() == "1",
            None => rd("freezer.state")?.as_deref() == Some("FROZEN"),
        },
        Flavor::V2 => rd("cgroup.freeze")?.as_deref().map(str::trim) == Some("1"),
    })
}

fn request(dir: &Path, fl: Flavor, frozen: bool) -> Result<(), SysError> {
    match (fl, frozen) {
        (Flavor::V1, true) => cgroupfs::write(dir, "freezer.state", "FROZEN"),
        (Flavor::V1, false) => cgroupfs::write(dir, "freezer.state", "THAWED"),
        (Flavor::V2, true) => cgroupfs::write(dir, "cgroup.freeze", "1"),
        (Flavor::V2, false) => cgroupfs::write(dir, "cgroup.freeze", "0"),
    }
}

/// Polls until the state is `frozen` (true) or thawed (false); Err(last state) on timeout.
fn wait(dir: &Path, fl: Flavor, frozen: bool, timeout: Duration) -> Result<Result<(), String>, SysError> {
    let start = Instant::now();
    let mut nap = Duration::from_millis(1);
    loop {
        let st = read_state(dir, fl)?;
        if reached(fl, &st, frozen) {
            return Ok(Ok(()));
        }
        if start.elapsed() >= timeout {
            return Ok(Err(st));
        }
        if frozen && fl == Flavor::V1 {
            request(dir, fl, true)?;
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(50));
    }
}

/// Freezes `dir` and every descendant; waits until the kernel reports it frozen.
pub fn freeze(dir: &Path, timeout_s: u32) -> Result<(), CgroupError> {
    let fl = flavor(dir)?;
    let was = frozen_by_self(dir)?;
    freeze_flavor(dir, fl, was, timeout_s)
}

fn freeze_flavor(dir: &Path, fl: Flavor, was_frozen: bool, timeout_s: u32) -> Result<(), CgroupError> {
    let err = |source| CgroupError::Freeze { path: dir.into(), source: Box::new(source) };
    request(dir, fl, true).map_err(err)?;
    match wait(dir, fl, true, Duration::from_secs(timeout_s.into())).map_err(err)? {
        Ok(()) => Ok(()),
        Err(state) => {
            if !was_frozen {
                // Put it back as it was; the timeout is the error worth reporting.
                let _ = request(dir, fl, false);
            }
            Err(CgroupError::FreezeTimeout { path: dir.into(), secs: timeout_s, state })
        }
    }
}

/// Thaws `dir`; waits until the kernel reports it thawed.
pub fn thaw(dir: &Path, timeout_s: u32) -> Result<(), CgroupError> {
    let fl = flavor(dir)?;
    let err = |source| CgroupError::Thaw { path: dir.into(), source: Box::new(source) };
    request(dir, fl, false).map_err(err)?;
    match wait(dir, fl, false, Duration::from_secs(timeout_s.into())).map_err(err)? {
        Ok(()) => Ok(()),
        Err(state) => Err(CgroupError::ThawTimeout { path: dir.into(), secs: timeout_s, state }),
    }
}

/// A cgroup frozen for a dump. `restore_state()` (or drop) gives it back the state it
/// had: a group its owner had frozen stays (or is again) frozen, any other is thawed.
#[derive(Debug)]
pub struct FreezeGuard {
    path: PathBuf,
    was_frozen: bool,
    timeout_s: u32,
    done: bool,
    /// Thawed by ccr once its tasks were attached (they stop for ptrace as they wake).
    thawed: bool,
}

impl FreezeGuard {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long a freeze or thaw of it may take.
    pub fn timeout(&self) -> u32 {
        self.timeout_s
    }

    /// Whether the group was frozen by its owner before ccr froze it.
    pub fn was_frozen(&self) -> bool {
        self.was_frozen
    }

    /// Thaws the group while its tasks are attached, so they stop for ptrace.
    pub fn thaw_attached(&mut self) -> Result<(), CgroupError> {
        self.thawed = true;
        thaw(&self.path, self.timeout_s)
    }

    /// Gives the group back its prior state: thawed, unless its owner froze it.
    pub fn restore_state(&mut self) -> Result<(), CgroupError> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        match (self.was_frozen, self.thawed) {
            (true, true) => freeze(&self.path, self.timeout_s),
            (true, false) => Ok(()),
            (false, _) => thaw(&self.path, self.timeout_s),
        }
    }

    /// Leaves the group frozen whatever it was before (`--leave-stopped`).
    pub fn keep_frozen(mut self) {
        self.done = true;
    }
}

impl Drop for FreezeGuard {
    fn drop(&mut self) {
        let _ = self.restore_state();
    }
}

/// Freezes `path` for a dump, remembering its prior state (default timeout).
pub fn freeze_for_dump(path: &Path) -> Result<FreezeGuard, CgroupError> {
    freeze_for_dump_timeout(path, DEFAULT_TIMEOUT_S)
}

pub fn freeze_for_dump_timeout(path: &Path, timeout_s: u32) -> Result<FreezeGuard, CgroupError> {
    let fl = flavor(path)?;
    let was_frozen = frozen_by_self(path)?;
    freeze_flavor(path, fl, was_frozen, timeout_s)?;
    Ok(FreezeGuard { path: path.to_path_buf(), was_frozen, timeout_s, done: false, thawed: false })
}

/// Every PID in cgroup `path` and its descendants (from `cgroup.procs`), sorted.
pub fn tasks_of(path: &Path) -> Result<Vec<i32>, CgroupError> {
    let err = |source| CgroupError::ListTasks { path: path.into(), source: Box::new(source) };
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(d) = stack.pop() {
        match cgroupfs::procs(&d) {
            Ok(p) => out.extend(p),
            // A child removed while walking is no error.
            Err(_) if d != path && !cgroupfs::is_dir(&d) => continue,
            Err(e) => return Err(err(e)),
        }
        match cgroupfs::subdirs(&d) {
            Ok(s) => stack.extend(s.into_iter().map(|n| d.join(n))),
            Err(_) if d != path && !cgroupfs::is_dir(&d) => {}
            Err(e) => return Err(err(e)),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ccr-freeze-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn flavor_and_prior_state() {
        let d = tmp("flavor");
        assert!(matches!(flavor(&d), Err(CgroupError::NotFreezable { .. })));
        fs::write(d.join("cgroup.freeze"), "1\n").unwrap();
        assert_eq!(flavor(&d).unwrap(), Flavor::V2);
        assert!(frozen_by_self(&d).unwrap());
        fs::write(d.join("freezer.state"), "FROZEN\n").unwrap();
        fs::write(d.join("freezer.self_freezing"), "0\n").unwrap();
        assert_eq!(flavor(&d).unwrap(), Flavor::V1);
        assert!(!frozen_by_self(&d).unwrap(), "frozen by a parent is not self-frozen");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn timeout_thaws_back_on_a_tree_that_never_freezes() {
        // A fake v2 group whose cgroup.events never reports frozen.
        let d = tmp("timeout");
        fs::write(d.join("cgroup.freeze"), "0\n").unwrap();
        fs::write(d.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        let e = freeze(&d, 0).unwrap_err();
        assert!(matches!(e, CgroupError::FreezeTimeout { .. }), "{e}");
        assert_eq!(fs::read_to_string(d.join("cgroup.freeze")).unwrap(), "0");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn v2_frozen_needs_every_descendant_frozen() {
        let d = tmp("partial");
        fs::create_dir_all(d.join("sub")).unwrap();
        fs::write(d.join("cgroup.freeze"), "1\n").unwrap();
        fs::write(d.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        fs::write(d.join("sub/cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        assert_eq!(read_state(&d, Flavor::V2).unwrap(), "partial");
        assert!(matches!(freeze(&d, 0), Err(CgroupError::FreezeTimeout { .. })));
        fs::write(d.join("sub/cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        freeze(&d, 0).unwrap();
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn tasks_of_walks_descendants() {
        let d = tmp("tasks");
        fs::create_dir_all(d.join("a/b")).unwrap();
        fs::write(d.join("cgroup.procs"), "3\n1\n").unwrap();
        fs::write(d.join("a/cgroup.procs"), "").unwrap();
        fs::write(d.join("a/b/cgroup.procs"), "2\n3\n").unwrap();
        assert_eq!(tasks_of(&d).unwrap(), vec![1, 2, 3]);
        fs::remove_dir_all(&d).unwrap();
    }
}
