//! cgroupfs access (v1 and v2): owned by the cgroup work.
//!
//! The only place that reads and writes cgroup files (the /proc files that describe
//! cgroups are read by `sys::proc`). Every function takes the directory it works
//! on, so the logic above it runs on a temporary tree as well as on the kernel's.
//! Errors carry the path.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::{SysError, SysResult};

/// Owner and permission bits of a file or directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perm {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// Reads a control file, trailing newline removed; `None` when it does not exist.
pub fn read(dir: &Path, file: &str) -> SysResult<Option<String>> {
    let path = dir.join(file);
    match fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s.trim_end_matches('\n').to_string())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SysError::Path { call: "read", path, source: e }),
    }
}

/// Writes `value` to a control file in one write(2), as cgroupfs wants it.
/// The file is never created (O_TRUNC, as a shell's `>` does, keeps a fake tree honest).
pub fn write(dir: &Path, file: &str, value: &str) -> SysResult<()> {
    let path = dir.join(file);
    let mut f = fs::OpenOptions::new().write(true).truncate(true).open(&path).map_err(SysError::path("open", &path))?;
    f.write_all(value.as_bytes()).map_err(SysError::path("write", &path))
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}

pub fn is_dir(path: &Path) -> bool {
    path.is_dir()
}

/// Names of the entries of `dir` that are directories (`dirs`) or not, sorted.
fn entries(dir: &Path, dirs: bool) -> SysResult<Vec<String>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(SysError::path("readdir", dir))? {
        let e = e.map_err(SysError::path("readdir", dir))?;
        let ft = e.file_type().map_err(SysError::path("stat", e.path()))?;
        if ft.is_dir() == dirs {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    Ok(out)
}

/// Names of the sub-directories (child cgroups) of `dir`, sorted.
pub fn subdirs(dir: &Path) -> SysResult<Vec<String>> {
    entries(dir, true)
}

/// Names of the files (not directories) in `dir`, sorted.
pub fn files(dir: &Path) -> SysResult<Vec<String>> {
    entries(dir, false)
}

pub fn perm(path: &Path) -> SysResult<Perm> {
    let md = fs::metadata(path).map_err(SysError::path("stat", path))?;
    Ok(Perm { uid: md.uid(), gid: md.gid(), mode: md.mode() & 0o7777 })
}

/// Sets owner and mode of `path` when they differ from `want`.
pub fn set_perm(path: &Path, want: Perm) -> SysResult<()> {
    let have = perm(path)?;
    if (have.uid, have.gid) != (want.uid, want.gid) {
        std::os::unix::fs::chown(path, Some(want.uid), Some(want.gid)).map_err(SysError::path("chown", path))?;
    }
    if have.mode != want.mode {
        fs::set_permissions(path, fs::Permissions::from_mode(want.mode)).map_err(SysError::path("chmod", path))?;
    }
    Ok(())
}

/// Creates one cgroup directory (its parent must exist).
pub fn mkdir(path: &Path) -> SysResult<()> {
    fs::create_dir(path).map_err(SysError::path("mkdir", path))
}

/// Removes one empty cgroup directory.
pub fn rmdir(path: &Path) -> SysResult<()> {
    fs::remove_dir(path).map_err(SysError::path("rmdir", path))
}

/// The PIDs listed in `dir/cgroup.procs` (or `tasks` on a v1 fake tree without it).
pub fn procs(dir: &Path) -> SysResult<Vec<i32>> {
    let text = read(dir, "cgroup.procs")?.unwrap_or_default();
    parse_pids(&dir.join("cgroup.procs"), &text)
}

/// Moves process `pid` (all its threads) into the cgroup `dir`.
pub fn attach(dir: &Path, pid: i32) -> SysResult<()> {
    write(dir, "cgroup.procs", &pid.to_string())
}

fn parse_pids(path: &Path, text: &str) -> SysResult<Vec<i32>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim()
                .parse::<i32>()
                .map_err(|_| SysError::Parse { path: path.to_path_buf(), detail: format!("'{l}' is not a pid") })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_absent_is_none_and_write_never_creates() {
        let d = std::env::temp_dir().join(format!("ccr-cgfs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        assert_eq!(read(&d, "nope").unwrap(), None);
        let e = write(&d, "nope", "1").unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        fs::write(d.join("pids.max"), "max\n").unwrap();
        assert_eq!(read(&d, "pids.max").unwrap().as_deref(), Some("max"));
        fs::write(d.join("cgroup.procs"), "1\n22\n").unwrap();
        assert_eq!(procs(&d).unwrap(), vec![1, 22]);
        fs::write(d.join("cgroup.procs"), "x\n").unwrap();
        assert!(procs(&d).is_err());
        fs::remove_dir_all(&d).unwrap();
    }
}
