//! What a caller asks of one run. Passed by reference; never global.

use std::path::PathBuf;

/// How cgroup-restore treats cgroups (criu's --manage-cgroups modes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ManageCgroups {
    /// Touch nothing.
    Ignore,
    /// The cgroups must exist; write their configuration.
    Props,
    /// Create what is missing; configure only what ccr created.
    #[default]
    Soft,
    /// Create what is missing; configure everything.
    Full,
    /// Fail if any cgroup exists already.
    Strict,
}

impl ManageCgroups {
    pub fn from_int(v: i32) -> Option<Self> {
        Some(match v {
            0 => Self::Ignore,
            1 => Self::Props,
            2 => Self::Soft,
            3 => Self::Full,
            4 => Self::Strict,
            _ => return None,
        })
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "ignore" | "none" => Self::Ignore,
            "props" => Self::Props,
            "soft" => Self::Soft,
            "full" => Self::Full,
            "strict" => Self::Strict,
            _ => return None,
        })
    }
}

/// An fd the caller hands to restore for an external resource the dump let go
/// (criu's `--inherit-fd fd[N]:KEY`).
#[derive(Clone, Debug)]
pub struct InheritFd {
    pub key: String,
    pub fd: i32,
}

#[derive(Clone, Debug, Default)]
pub struct Opts {
    pub pid: Option<i32>,
    pub images_dir: Option<PathBuf>,
    /// Keep the dumped tasks running after a dump (default: kill them).
    pub leave_running: bool,
    /// Leave the tasks frozen after the dump (the caller thaws them).
    pub leave_stopped: bool,
    pub log_file: Option<PathBuf>,
    pub log_level: i32,
    /// Do not wait for the restored task (CLI `-d`).
    pub restore_detached: bool,
    pub pidfile: Option<PathBuf>,
    /// A cgroup directory (v1 freezer or v2) that holds the tasks to freeze.
    pub freeze_cgroup: Option<PathBuf>,
    /// Where restored cgroups go: (controller or None for every hierarchy, new root).
    pub cgroup_roots: Vec<(Option<String>, PathBuf)>,
    pub manage_cgroups: ManageCgroups,
    pub inherit_fds: Vec<InheritFd>,
    /// Seconds to wait for a freeze to take effect.
    pub freeze_timeout_s: Option<u32>,
}
