//! The restore journal (`DIR/restore.journal`): what a restore or cgroup-restore
//! makes that would outlive a ccr killed with SIGKILL (SysV segments, cgroup
//! directories). Each object is written down before it is made; the file goes
//! when the run ends, kept or undone. A journal whose writer is gone names
//! leftovers: the next restore of the directory, or `ccr cleanup -D DIR`, removes
//! them first. Tasks need no entry: restore tracees die with their tracer
//! (PTRACE_O_EXITKILL) and restore children exit when ccr's pipe closes.
//!
//! Lines: `owner PID STARTTIME` first (the writer; a pid reused since is told
//! apart by its start time), then `sysv-shm ID` and `cgroup PATH`.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::sys::{proc, sysv_shm, SysError, SysResult};

const NAME: &str = "restore.journal";

/// An open journal. Dropping the first handle (the run is over: what it made is
/// kept, or its own undo removed it) removes the file; a ccr killed outright
/// leaves it.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: std::fs::File,
    primary: bool,
}

/// What `cleanup` removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cleaned {
    pub sysv_shm: Vec<i32>,
    pub cgroups: Vec<PathBuf>,
}

fn self_start() -> u64 {
    proc::stat::read(proc::SELF).map(|s| s.start_time).unwrap_or(0)
}

/// Whether the journal's writer still runs.
fn owner_alive(pid: i32, start: u64) -> bool {
    proc::stat::read(pid).is_ok_and(|s| s.start_time == start && !s.is_zombie())
}

impl Journal {
    /// Starts the journal of a run in `dir`, after cleaning up what an earlier,
    /// killed run left. Refused while another run of the directory is alive.
    pub fn start(dir: &Path) -> Result<Journal> {
        cleanup(dir)?;
        Ok(Journal::create(dir)?)
    }

    /// Like `start`, but a directory ccr cannot write to (read-only images) gives
    /// no journal rather than an error: the run then goes without.
    /// Also says what the cleanup removed.
    pub fn start_if_writable(dir: &Path) -> Result<(Option<Journal>, Cleaned)> {
        let cleaned = cleanup(dir)?;
        match Journal::create(dir) {
            Ok(j) => Ok((Some(j), cleaned)),
            Err(SysError::Path { source, .. })
                if matches!(source.raw_os_error(), Some(libc::EROFS | libc::EACCES | libc::EPERM)) =>
            {
                Ok((None, cleaned))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn create(dir: &Path) -> SysResult<Journal> {
        let path = dir.join(NAME);
        let mut file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&path)
                .map_err(SysError::path("create", &path))?
        };
        let line = format!("owner {} {}\n", std::process::id(), self_start());
        file.write_all(line.as_bytes()).map_err(SysError::path("write", &path))?;
        Ok(Journal { path, file, primary: true })
    }

    /// A second handle on the same journal (for the cgroup plan), which leaves
    /// the file when dropped.
    pub fn handle(&self) -> Result<Journal> {
        let file = self.file.try_clone().map_err(SysError::path("dup", &self.path))?;
        Ok(Journal { path: self.path.clone(), file, primary: false })
    }

    fn note(&mut self, line: String) -> SysResult<()> {
        self.file.write_all(line.as_bytes()).map_err(SysError::path("write", &self.path))
    }

    /// Before SysV segment `id` is created.
    pub fn sysv_shm(&mut self, id: i32) -> SysResult<()> {
        self.note(format!("sysv-shm {id}\n"))
    }

    /// Before cgroup directory `path` is created.
    pub fn cgroup(&mut self, path: &Path) -> SysResult<()> {
        self.note(format!("cgroup {}\n", path.display()))
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if self.primary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes what a killed run of `dir` left behind, per its journal: the SysV
/// segments it created (only those the dead writer created, by cpid), and its
/// cgroup directories that are empty, deepest first.
pub fn cleanup(dir: &Path) -> Result<Cleaned> {
    let path = dir.join(NAME);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Cleaned::default()),
        Err(e) => return Err(SysError::Path { call: "read", path, source: e }.into()),
    };
    let mut lines = text.lines();
    let owner = lines.next().and_then(|l| {
        let mut w = l.strip_prefix("owner ")?.split_whitespace();
        Some((w.next()?.parse::<i32>().ok()?, w.next()?.parse::<u64>().ok()?))
    });
    let Some((pid, start)) = owner else {
        return Err(Error::InvalidArgument(format!("{}: not a ccr restore journal", path.display())));
    };
    if owner_alive(pid, start) {
        return Err(Error::InvalidArgument(format!(
            "{}: a restore of this directory is running (pid {pid})",
            dir.display()
        )));
    }
    let mut cleaned = Cleaned::default();
    let segments = proc::sysvipc::shm().unwrap_or_default();
    let mut cgroups = Vec::new();
    for l in lines {
        if let Some(id) = l.strip_prefix("sysv-shm ").and_then(|v| v.parse::<i32>().ok()) {
            if segments.iter().any(|s| s.id == id && s.cpid == pid) {
                sysv_shm::remove(id);
                cleaned.sysv_shm.push(id);
            }
        } else if let Some(p) = l.strip_prefix("cgroup ") {
            cgroups.push(PathBuf::from(p));
        }
    }
    // The writer's tasks may still be dying: a cgroup empties when they are gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    for d in cgroups.into_iter().rev() {
        while crate::sys::cgroupfs::is_dir(&d) {
            if crate::sys::cgroupfs::rmdir(&d).is_ok() {
                cleaned.cgroups.push(d.clone());
            } else if std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
            break;
        }
    }
    let _ = std::fs::remove_file(&path);
    Ok(cleaned)
}
