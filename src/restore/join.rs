//! Namespaces the caller names for the restored tree to join (`--join-ns
//! NS:PID|PATH`, `ccr_opts_join_ns`) instead of the ones restore would make or
//! leave it in: the root's restore child enters them first, and what the images
//! hold of such a namespace (a hostname, a mount tree) is the caller's now.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::opts::JoinNs;
use crate::sys::{fd, process};

/// The kinds a tree can join. The others would split what restore makes before
/// the tree exists from the tree: SysV objects (ipc), the clock offsets (time),
/// the PIDs (pid), the ids everything is owned by (user).
pub const JOINABLE: [&str; 4] = ["net", "uts", "mnt", "cgroup"];

/// One namespace to join, open.
pub struct Joined {
    pub kind: &'static str,
    pub flag: i32,
    fd: OwnedFd,
    from: PathBuf,
}

impl Joined {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Where `NS:PID|PATH` points: /proc/PID/ns/NS for a pid, else the path.
fn target(kind: &str, t: &str) -> PathBuf {
    match t.parse::<u32>() {
        Ok(pid) => PathBuf::from(format!("/proc/{pid}/ns/{kind}")),
        Err(_) => PathBuf::from(t),
    }
}

/// Opens every namespace of `asked`, checked to be of its kind.
pub fn open(asked: &[JoinNs]) -> Result<Vec<Joined>> {
    let mut out: Vec<Joined> = Vec::new();
    for j in asked {
        let Some((kind, flag)) = JOINABLE.iter().find(|k| **k == j.kind).and_then(|&k| Some((k, process::ns_flag(k)?)))
        else {
            return Err(Error::InvalidArgument(format!(
                "--join-ns {}: joining a {} namespace is not supported (only net, uts, mnt, cgroup)",
                j.kind, j.kind
            )));
        };
        if out.iter().any(|o| o.kind == kind) {
            return Err(Error::InvalidArgument(format!("--join-ns {kind} given twice")));
        }
        let from = target(kind, &j.target);
        // A path that is a FIFO or a tty must not block or become a terminal (setns
        // takes no O_PATH fd).
        let f = fd::open(&from, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC, 0)?;
        // An nsfs file reads as "KIND:[inode]".
        let link =
            std::fs::read_link(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&f))).unwrap_or_default();
        if !link.to_string_lossy().starts_with(&format!("{kind}:[")) {
            return Err(Error::InvalidArgument(format!(
                "--join-ns {kind}:{}: {} is not a {kind} namespace ({})",
                j.target,
                from.display(),
                link.display()
            )));
        }
        out.push(Joined { kind, flag, fd: f, from });
    }
    Ok(out)
}

/// Enters every namespace of `joined` (in the root's restore child).
pub fn enter(joined: &[Joined]) -> Result<()> {
    for j in joined {
        process::set_ns(j.fd(), j.flag).map_err(|e| {
            Error::InvalidArgument(format!("joining the {} namespace {}: {e}", j.kind, Path::new(&j.from).display()))
        })?;
    }
    Ok(())
}

/// Whether the tree joins a namespace of `kind`.
pub fn joins(joined: &[Joined], kind: &str) -> bool {
    joined.iter().any(|j| j.kind == kind)
}
