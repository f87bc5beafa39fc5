//! The restore journal (`DIR/restore.journal.PID`, one per run): what a restore or cgroup-restore
//! makes that would outlive a ccr killed with SIGKILL (SysV segments, cgroup
//! directories, veth pairs not yet moved into the tree's namespace). Each object is written down before it is made; the file goes
//! when the run ends, kept or undone. A journal whose writer is gone names
//! leftovers: the next restore of the directory, or `ccr cleanup -D DIR`, removes
//! them first. Tasks need no entry: restore tracees die with their tracer
//! (PTRACE_O_EXITKILL) and restore children exit when ccr's pipe closes.
//!
//! Lines: `owner PID STARTTIME BOOT_ID` first (the writer; a pid reused since is
//! told apart by its start time, a journal from before a reboot names nothing
//! left), then `sysv-shm ID`, `cgroup PATH` and `veth HOST-NAME`.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::sys::{proc, sysv_shm, SysError, SysResult};

const PREFIX: &str = "restore.journal.";

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default().trim().to_string()
}

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
    /// Host ends of veth pairs (both ends still in ccr's namespace).
    pub veths: Vec<String>,
}

fn self_start() -> u64 {
    proc::stat::read(proc::SELF).map(|s| s.start_time).unwrap_or(0)
}

/// Whether the journal's writer still runs.
fn owner_alive(pid: i32, start: u64) -> bool {
    proc::stat::read(pid).is_ok_and(|s| s.start_time == start && !s.is_zombie())
}

impl Journal {
    /// Starts the journal of a run in `dir`, after cleaning up what earlier,
    /// killed runs left (runs still alive are left alone).
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
        let path = dir.join(format!("{PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
                .map_err(SysError::path("create", &path))?
        };
        let line = format!("owner {} {} {}\n", std::process::id(), self_start(), boot_id());
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

    /// Before the veth pair whose host end is `host` is made.
    pub fn veth(&mut self, host: &str) -> SysResult<()> {
        self.note(format!("veth {host}\n"))
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

/// Removes what killed runs of `dir` left behind, per their journals: the SysV
/// segments each created (only those the dead writer created, by cpid, and that
/// nothing has attached), and its cgroup directories (under /sys/fs/cgroup) that
/// are empty, deepest first. Journals of runs still alive are left alone.
pub fn cleanup(dir: &Path) -> Result<Cleaned> {
    crate::image::check_private(dir, "the images directory")?;
    let mut cleaned = Cleaned::default();
    let entries = std::fs::read_dir(dir).map_err(SysError::path("readdir", dir))?;
    let mut journals: Vec<PathBuf> =
        entries.flatten().filter(|e| e.file_name().to_string_lossy().starts_with(PREFIX)).map(|e| e.path()).collect();
    journals.sort();
    for path in journals {
        clean_one(&path, &mut cleaned)?;
    }
    Ok(cleaned)
}

fn clean_one(path: &Path, cleaned: &mut Cleaned) -> Result<()> {
    let text = std::fs::read_to_string(path).map_err(SysError::path("read", path))?;
    let mut lines = text.lines();
    let owner = lines.next().and_then(|l| {
        let mut w = l.strip_prefix("owner ")?.split_whitespace();
        Some((w.next()?.parse::<i32>().ok()?, w.next()?.parse::<u64>().ok()?, w.next().unwrap_or("").to_string()))
    });
    let Some((pid, start, boot)) = owner else {
        return Err(Error::InvalidArgument(format!("{}: not a ccr restore journal", path.display())));
    };
    let same_boot = boot == boot_id();
    if same_boot && owner_alive(pid, start) {
        return Ok(());
    }
    let segments = if same_boot { proc::sysvipc::shm().unwrap_or_default() } else { Vec::new() };
    let mut cgroups = Vec::new();
    for l in lines.filter(|_| same_boot) {
        if let Some(id) = l.strip_prefix("sysv-shm ").and_then(|v| v.parse::<i32>().ok()) {
            if segments.iter().any(|s| s.id == id && s.cpid == pid && s.nattch == 0) {
                sysv_shm::remove(id);
                cleaned.sysv_shm.push(id);
            }
        } else if let Some(p) = l.strip_prefix("cgroup ").filter(|p| p.starts_with("/sys/fs/cgroup/")) {
            cgroups.push(PathBuf::from(p));
        } else if let Some(host) = l.strip_prefix("veth ") {
            // Only a pair whose other end is still the writer's own: once moved
            // into the tree's namespace it went with that namespace.
            if crate::netns::veth::remove_leftover(host, pid) {
                cleaned.veths.push(host.to_string());
            }
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
    let _ = std::fs::remove_file(path);
    Ok(())
}
