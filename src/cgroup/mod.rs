//! Container cgroups: freeze, thaw, save and restore.
//!
//! - `hierarchy`: which hierarchies are mounted where, and which cgroups a task is in.
//! - `controllers`: the table of saved files per controller, in write order.
//! - `freeze`: v1 freezer / v2 cgroup.freeze, with a guard for the dump engine.
//! - `save`: the tree below the container's root on every hierarchy → `cgroup.img`.
//! - `restore`: `cgroup.img` → directories and configuration, and a plan that places
//!   restored tasks into their saved cgroups.
//!
//! Every file access goes through `crate::sys::cgroupfs`.

pub mod api;
pub mod controllers;
pub mod freeze;
pub mod hierarchy;
pub mod restore;
pub mod save;

use std::path::PathBuf;

use crate::sys::SysError;

pub use freeze::{freeze_for_dump, tasks_of, FreezeGuard};
pub use restore::{place_task, CgroupRestorePlan};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("the cgroup freezer needs a freeze cgroup (--freeze-cgroup), not pid {pid} (a bare pid is frozen by ptrace: ccr freeze -t PID)")]
    FreezeNeedsCgroup { pid: i32 },
    #[error("no freeze cgroup given (--freeze-cgroup PATH)")]
    NoFreezeCgroup,
    #[error("{path} is not a freezable cgroup (neither freezer.state nor cgroup.freeze)")]
    NotFreezable { path: PathBuf },
    #[error("freezing {path}: {source}")]
    Freeze { path: PathBuf, source: Box<SysError> },
    #[error("freezing {path}: not frozen after {secs} s (state {state:?}); thawed it back")]
    FreezeTimeout { path: PathBuf, secs: u32, state: String },
    #[error("thawing {path}: {source}")]
    Thaw { path: PathBuf, source: Box<SysError> },
    #[error("thawing {path}: still frozen after {secs} s (state {state:?}; is a parent frozen?)")]
    ThawTimeout { path: PathBuf, secs: u32, state: String },
    #[error("listing the tasks of {path}: {source}")]
    ListTasks { path: PathBuf, source: Box<SysError> },
    #[error("cgroup-save needs a task (-t PID) or a freeze cgroup (--freeze-cgroup PATH)")]
    NoSaveTarget,
    #[error("cgroup-save: no task found (pid or freeze cgroup {path} is empty)")]
    NoTasks { path: PathBuf },
    #[error("reading the cgroups of pid {pid}: {source}")]
    TaskCgroups { pid: i32, source: Box<SysError> },
    #[error("reading the mount table: {source}")]
    Mountinfo { source: Box<SysError> },
    #[error("cgroup hierarchy {controllers:?} is not mounted")]
    HierarchyNotMounted { controllers: String },
    #[error("the tasks' cgroups on {hierarchy} are not below the root named for it, {named} (their common cgroup is {tasks})")]
    OutsideNamedRoot { hierarchy: String, named: String, tasks: String },
    #[error("{path} is not inside any mounted cgroup hierarchy")]
    NotInHierarchy { path: PathBuf },
    #[error("reading cgroup {path}: {source}")]
    ReadConfig { path: PathBuf, source: Box<SysError> },
    #[error("cgroup image refers to hierarchy {id}, which it does not describe")]
    UnknownHierarchy { id: u32 },
    #[error("cgroup {path} does not exist (manage-cgroups props needs it)")]
    Missing { path: PathBuf },
    #[error("cgroup {path} exists already (manage-cgroups strict)")]
    Exists { path: PathBuf },
    #[error("creating cgroup {path}: {source}")]
    Create { path: PathBuf, source: Box<SysError> },
    #[error("configuring {path}/{file} = {value:?}: {source}")]
    Configure { path: PathBuf, file: String, value: String, source: Box<SysError> },
    #[error(transparent)]
    CpusetOutsideParent(Box<CpusetOutsideParent>),
    #[error("{path}/{file}: limit {value} is below the current usage {usage}")]
    LimitBelowUsage { path: PathBuf, file: String, value: String, usage: String },
    #[error("setting owner/mode of {path}: {source}")]
    SetOwner { path: PathBuf, source: Box<SysError> },
    #[error("placing pid {pid} (saved as {saved_pid}) into {path}: {source}")]
    PlaceTask { pid: i32, saved_pid: i32, path: PathBuf, source: Box<SysError> },
    #[error("saved pid {saved_pid} has no cgroup set in the image")]
    NoSavedSet { saved_pid: i32 },
    #[error("cgroup image set {set} is not described")]
    UnknownSet { set: u32 },
    #[error("cgroup {path}, above the saved root {root}, has no place above its restored root {dir} (the restored root does not end as the saved one does)")]
    AncestorMoved { path: String, root: String, dir: PathBuf },
}

/// A v1 cpuset value the kernel refused because it is not within the parent's.
#[derive(Debug, thiserror::Error)]
#[error("configuring {path}/{file} = {value:?}: {source}: a cgroup's cpuset must lie within its parent's, and {parent} has {parent_value:?}")]
pub struct CpusetOutsideParent {
    pub path: PathBuf,
    pub file: String,
    pub value: String,
    pub parent: PathBuf,
    pub parent_value: String,
    pub source: Box<SysError>,
}

impl CgroupError {
    pub fn errno(&self) -> i32 {
        use CgroupError::*;
        match self {
            Freeze { source, .. }
            | Thaw { source, .. }
            | ListTasks { source, .. }
            | TaskCgroups { source, .. }
            | Mountinfo { source }
            | ReadConfig { source, .. }
            | Create { source, .. }
            | Configure { source, .. }
            | SetOwner { source, .. }
            | PlaceTask { source, .. } => source.errno(),
            CpusetOutsideParent(e) => e.source.errno(),
            FreezeTimeout { .. } | ThawTimeout { .. } => libc::ETIMEDOUT,
            HierarchyNotMounted { .. } | Missing { .. } | NoTasks { .. } => libc::ENOENT,
            Exists { .. } => libc::EEXIST,
            LimitBelowUsage { .. } => libc::EBUSY,
            FreezeNeedsCgroup { .. }
            | NoFreezeCgroup
            | NotFreezable { .. }
            | NoSaveTarget
            | NotInHierarchy { .. }
            | OutsideNamedRoot { .. }
            | UnknownHierarchy { .. }
            | NoSavedSet { .. }
            | UnknownSet { .. }
            | AncestorMoved { .. } => libc::EINVAL,
        }
    }
}
