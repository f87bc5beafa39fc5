//! Entry points of the cgroup work, called from `crate::api`.

use std::path::Path;

use super::freeze;
use super::hierarchy;
use super::restore::CgroupRestorePlan;
use super::save::{self, SaveTarget};
use super::CgroupError;
use crate::error::{Error, Result};
use crate::image::{pb, ImageDir};
use crate::opts::{CgroupRestoreCmdOpts, CgroupRestoreOpts, CgroupSaveOpts, FreezeOpts, ManageCgroups};

fn freeze_dir(opts: &FreezeOpts) -> Result<&Path> {
    match (&opts.freeze_cgroup, opts.pid) {
        (Some(p), _) => Ok(p),
        (None, Some(pid)) => Err(CgroupError::FreezeNeedsCgroup { pid }.into()),
        (None, None) => Err(CgroupError::NoFreezeCgroup.into()),
    }
}

/// Freezes `opts.freeze_cgroup` and its descendants.
pub fn freeze(opts: &FreezeOpts) -> Result<()> {
    Ok(freeze::freeze(freeze_dir(opts)?, opts.timeout())?)
}

/// Thaws `opts.freeze_cgroup`.
pub fn thaw(opts: &FreezeOpts) -> Result<()> {
    Ok(freeze::thaw(freeze_dir(opts)?, opts.timeout())?)
}

fn images(dir: &Option<std::path::PathBuf>) -> Result<&Path> {
    dir.as_deref().ok_or_else(|| Error::InvalidArgument("no images directory (-D DIR)".into()))
}

/// Saves the cgroups of `opts.pid` / `opts.freeze_cgroup` into `cgroup.img`.
///
/// The freeze cgroup is taken to be frozen by the caller for this checkpoint: its
/// freezer state is saved as thawed.
pub fn save(opts: &CgroupSaveOpts) -> Result<()> {
    let frozen_for_dump = opts.freeze_cgroup.clone().map(|p| (p, false));
    let t = SaveTarget { pid: opts.pid, freeze_cgroup: opts.freeze_cgroup.clone(), frozen_for_dump, roots: Vec::new() };
    let hs = hierarchy::mounted()?;
    let img = save::collect(&t, &hs)?;
    ImageDir::create(images(&opts.images_dir)?)?.write(None, &img)?;
    Ok(())
}

/// Creates and configures the cgroups in `cgroup.img` of `dir`, keeping the resolved
/// paths for the process restore (which places its forked tasks with
/// [`CgroupRestorePlan::place_task`], then calls `apply_freeze_states` and `commit`).
pub fn restore_plan(
    dir: &ImageDir,
    opts: &CgroupRestoreOpts,
    journal: Option<crate::journal::Journal>,
) -> Result<CgroupRestorePlan> {
    let img: pb::CgroupImage = dir.read(None)?;
    let hs = if opts.manage == ManageCgroups::Ignore { Vec::new() } else { hierarchy::mounted()? };
    Ok(CgroupRestorePlan::create(&img, opts, &hs, journal)?)
}

/// cgroup-restore on its own: create, configure, apply freezer states, keep.
pub fn restore(opts: &CgroupRestoreCmdOpts) -> Result<()> {
    let dir = ImageDir::open_trusted(images(&opts.images_dir)?)?;
    let journal = crate::journal::Journal::start(dir.path())?;
    let mut plan = restore_plan(&dir, &opts.cgroups, Some(journal.handle()?))?;
    plan.apply_freeze_states()?;
    plan.commit();
    drop(journal);
    Ok(())
}
