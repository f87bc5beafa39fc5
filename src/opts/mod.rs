//! What a caller asks of one operation: one struct per operation, passed by
//! reference, never global. The command line and the C ABI both build these; the
//! ptrace-freeze holder receives `DumpOpts` whole (serde), so no option is lost on
//! the way.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A caller's function as options hold it (the C ABI's hook and pty master
/// callbacks): cloned with them, equal only to itself, never serialized.
pub struct Callback<F: ?Sized>(pub(crate) Arc<F>);

impl<F: ?Sized> Clone for Callback<F> {
    fn clone(&self) -> Self {
        Callback(Arc::clone(&self.0))
    }
}

impl<F: ?Sized> std::fmt::Debug for Callback<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Callback({:p})", Arc::as_ptr(&self.0) as *const u8)
    }
}

impl<F: ?Sized> PartialEq for Callback<F> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.0), Arc::as_ptr(&other.0))
    }
}

impl<F: ?Sized> Eq for Callback<F> {}

/// Where the log goes and how much of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogOpts {
    /// A file (appended to), "-" for stderr; none: errors go to the caller only.
    pub file: Option<PathBuf>,
    /// 0 errors .. 4 debug.
    pub level: i32,
}

impl Default for LogOpts {
    fn default() -> Self {
        LogOpts { file: None, level: 2 }
    }
}

/// How cgroup-restore treats cgroups (criu's --manage-cgroups modes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InheritFd {
    pub key: String,
    pub fd: i32,
}

/// A mount of the tree the dump records as external under a key, not by the
/// host path it binds (`--external mnt[PATH]:KEY`): `mount_point` as the tree
/// sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtMount {
    pub mount_point: String,
    pub key: String,
}

/// Where on this side restore binds the external mount saved as `key` from
/// (`--external mnt[KEY]:PATH`); a symlink on the way is followed here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtMountMap {
    pub key: String,
    pub path: PathBuf,
}

/// The host end of a veth of the checkpoint (`--veth-pair IN=OUT[@BRIDGE]`, as
/// criu spells it): restore makes the pair, `inside` (the name the tree's
/// namespace had it by) in the tree's namespace, `outside` in ccr's, a port of
/// `bridge` when given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VethPair {
    pub inside: String,
    pub outside: String,
    pub bridge: Option<String>,
}

impl VethPair {
    /// Names the kernel takes: 1 to 15 bytes, no '/', ':' or white space.
    pub fn new(inside: &str, outside: &str, bridge: Option<&str>) -> Result<VethPair, String> {
        for n in [Some(inside), Some(outside), bridge].into_iter().flatten() {
            let bad = n.is_empty() || n.len() >= 16 || n == "." || n == "..";
            if bad || n.chars().any(|c| c == '/' || c == ':' || c == '@' || c == '=' || c.is_whitespace()) {
                return Err(format!(
                    "'{n}' is not a network device name (1 to 15 bytes, no '/', ':', '@', '=', space)"
                ));
            }
        }
        Ok(VethPair { inside: inside.into(), outside: outside.into(), bridge: bridge.map(String::from) })
    }
}

/// A namespace the restored tree joins (`--join-ns NS:PID|PATH`): of kind `kind`,
/// the one process `target` (a pid) is in, or the nsfs file at path `target`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinNs {
    pub kind: String,
    pub target: String,
}

impl JoinNs {
    /// Both parts non-empty; criu's optional `,EXTRA` is not taken.
    pub fn new(kind: &str, target: &str) -> Result<JoinNs, String> {
        if kind.is_empty() || target.is_empty() || target.contains(',') {
            return Err(format!("'{kind}:{target}' is not NS:PID or NS:PATH"));
        }
        Ok(JoinNs { kind: kind.to_string(), target: target.to_string() })
    }
}

/// Hooks run at the named stages of a dump or restore (`crate::action`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookOpts {
    /// Programs run at every stage, in this order (`--action-script`).
    pub scripts: Vec<PathBuf>,
    /// Called at every stage after the scripts (the C ABI's hook). It cannot cross
    /// into another process by serde: a dump through a freeze holder refuses it.
    #[serde(skip)]
    pub callback: Option<crate::action::HookCallback>,
}

/// Seconds a freeze may take before it is undone.
pub const DEFAULT_FREEZE_TIMEOUT_S: u32 = 10;

/// `ccr dump`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpOpts {
    /// The root of the tree to dump.
    pub pid: Option<i32>,
    pub images_dir: Option<PathBuf>,
    /// Keep the dumped tasks running after a dump (default: kill them).
    /// Established TCP connections are saved (in repair mode) instead of refused.
    pub tcp_established: bool,
    /// The largest deleted-but-open file whose contents the dump saves
    /// (`--ghost-limit`, bytes); a larger one fails the dump naming it. None: any.
    pub ghost_limit: Option<u64>,
    pub leave_running: bool,
    /// Leave the tasks frozen after the dump (the caller thaws them).
    pub leave_stopped: bool,
    /// A cgroup directory (v1 freezer or v2) that holds the tasks to freeze.
    pub freeze_cgroup: Option<PathBuf>,
    /// Seconds to wait for a freeze to take effect.
    pub freeze_timeout_s: Option<u32>,
    /// The tree may be a job of a shell: a session or process group led from
    /// outside it is let go, and the restore puts the tree in its own caller's.
    #[serde(default)]
    pub shell_job: bool,
    /// Files of the host the tree holds that the caller hands back on restore
    /// (`--external tty[RDEV:DEV]`, hex device numbers as stat gives them).
    #[serde(default)]
    pub external: Vec<String>,
    /// Mounts of the tree recorded by a key the restoring caller maps to a path.
    #[serde(default)]
    pub ext_mounts: Vec<ExtMount>,
    /// Save the tree's cgroups with the checkpoint, as cgroup-save does, while it
    /// is held (criu's dump with --manage-cgroups).
    #[serde(default)]
    pub cgroups: Option<CgroupSaveRoots>,
    #[serde(default)]
    pub hooks: HookOpts,
    pub log: LogOpts,
}

/// The container's root cgroup on some hierarchies, as its manager names it
/// (criu's dump --cgroup-root CTRL:PATH): every saved task must be in it or
/// below, and it is saved as the root even when all of them sit deeper.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupSaveRoots {
    /// (a controller of the hierarchy, or "name=NAME"; the path in the hierarchy).
    pub roots: Vec<(String, String)>,
}

impl DumpOpts {
    pub fn freeze_timeout(&self) -> u32 {
        self.freeze_timeout_s.unwrap_or(DEFAULT_FREEZE_TIMEOUT_S)
    }
}

/// Where restored cgroups go and how they are made (cgroup-restore, and restore
/// when the checkpoint has cgroups).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupRestoreOpts {
    pub manage: ManageCgroups,
    /// (controller, or None for every hierarchy; the new root).
    pub roots: Vec<(Option<String>, PathBuf)>,
}

/// `ccr restore`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreOpts {
    pub images_dir: Option<PathBuf>,
    /// Do not wait for the restored task (CLI `-d`).
    pub detached: bool,
    /// The restored root is a child of ccr's parent (criu's --restore-sibling, as
    /// LXC's monitor expects); ccr returns once it runs.
    #[serde(default)]
    pub sibling: bool,
    /// The LSM profile the restored tasks are to run under (criu's --lsm-profile
    /// TYPE:NAME).
    #[serde(default)]
    pub lsm_profile: Option<String>,
    pub pidfile: Option<PathBuf>,
    pub inherit_fds: Vec<InheritFd>,
    pub cgroups: CgroupRestoreOpts,
    /// A checkpoint of a shell job joins ccr's own session and process group.
    #[serde(default)]
    pub shell_job: bool,
    /// Where the root mount of a tree with its own mount namespace is bound from
    /// on this side (`--root`); by default, the path it had at dump.
    #[serde(default)]
    pub root: Option<PathBuf>,
    #[serde(default)]
    pub hooks: HookOpts,
    /// Namespaces to join instead of making or staying in them.
    #[serde(default)]
    pub join_ns: Vec<JoinNs>,
    /// Where each external mount of the checkpoint is bound from on this side.
    #[serde(default)]
    pub ext_mounts: Vec<ExtMountMap>,
    /// The unix socket (SOCK_SEQPACKET) the new masters of ptys whose masters were
    /// outside the tree are sent to (`--pty-master-socket`); without it a keeper
    /// process holds them (`crate::restore::pty_masters`).
    #[serde(default)]
    pub pty_master_socket: Option<PathBuf>,
    /// The caller's function the new masters are handed to instead (the C ABI's
    /// `ccr_opts_set_pty_master_fn`); not with a socket.
    #[serde(skip)]
    pub pty_master_callback: Option<crate::restore::pty_masters::PtyMasterCallback>,
    /// The host ends of the checkpoint's veths, by the name each had inside.
    #[serde(default)]
    pub veth_pairs: Vec<VethPair>,
    pub log: LogOpts,
}

/// `ccr freeze` / `ccr thaw`: a cgroup, or a bare pid (frozen by ptrace).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeOpts {
    pub pid: Option<i32>,
    pub freeze_cgroup: Option<PathBuf>,
    pub timeout_s: Option<u32>,
}

impl FreezeOpts {
    pub fn timeout(&self) -> u32 {
        self.timeout_s.unwrap_or(DEFAULT_FREEZE_TIMEOUT_S)
    }
}

/// `ccr cgroup-save`: the cgroups of a task's tree, or of a freeze cgroup's tasks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupSaveOpts {
    pub pid: Option<i32>,
    pub freeze_cgroup: Option<PathBuf>,
    pub images_dir: Option<PathBuf>,
}

/// `ccr cgroup-restore`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupRestoreCmdOpts {
    pub images_dir: Option<PathBuf>,
    pub cgroups: CgroupRestoreOpts,
}
