//! The tree's own cgroup namespace. The kernel roots a new cgroup namespace, on
//! every hierarchy, at the cgroup the unsharing task is in; so the root's restore
//! child joins the saved roots first and unshares there (`fork`), and ccr moves
//! every task into its own cgroups afterwards (Stage PlaceInCgroups), from
//! outside, which leaves the namespace as it is.
//!
//! ccr itself is not moved (cloning the root with CLONE_NEWCGROUP from inside the
//! namespace roots would be one call less): its cgroups are its caller's, a
//! freezer or a limit of theirs among them.

use std::path::PathBuf;

use super::RestoreError;
use crate::cgroup::{hierarchy, CgroupRestorePlan};
use crate::error::Result;
use crate::image::pb;
use crate::sys::{cgroupfs, proc};

/// The directory of each saved namespace root on this machine, moved with the
/// tree's cgroups when this run restores them (`--cgroup-root`). The cgroups ccr
/// is in are left out: the restore child starts in them.
pub fn root_dirs(ns: &pb::CgroupNamespace, plan: Option<&CgroupRestorePlan>) -> Result<Vec<PathBuf>> {
    let hs = hierarchy::mounted()?;
    let ours = hierarchy::task_cgroups(proc::SELF)?;
    let mut dirs = Vec::new();
    for r in &ns.roots {
        let hier = if r.version == 2 { "cgroup2".to_string() } else { r.controllers.join(",") };
        let err = |detail: String| RestoreError::CgroupNsRoot { hierarchy: hier.clone(), path: r.path.clone(), detail };
        let h = hierarchy::find(&hs, r.version, &r.controllers)
            .ok_or_else(|| err("the hierarchy is not mounted here".into()))?;
        let moved = match plan {
            Some(p) => p.relocated(r.version, &r.controllers, &r.path)?,
            None => None,
        };
        let dir = match moved {
            Some(d) => d,
            None => h
                .dir_of(&r.path)
                .ok_or_else(|| err(format!("the hierarchy's mount at {} does not show it", h.mount_point.display())))?,
        };
        if !cgroupfs::is_dir(&dir) {
            let why = match plan.and_then(|p| p.left_alone(r.version, &r.controllers)) {
                Some(reason) => format!("the checkpoint's cgroups leave this hierarchy alone: {reason}"),
                None => "its cgroups are restored first: cgroup-restore".to_string(),
            };
            return Err(err(format!("{} does not exist ({why})", dir.display())).into());
        }
        let here = ours
            .iter()
            .find(|c| c.version == r.version && (r.version == 2 || c.controllers == r.controllers))
            .and_then(|c| h.dir_of(&c.path));
        if here.as_ref() != Some(&dir) {
            dirs.push(dir);
        }
    }
    Ok(dirs)
}
