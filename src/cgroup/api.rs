//! Entry points of the cgroup work, called from `crate::api`.

use super::freeze::{self, DEFAULT_TIMEOUT_S};
use super::hierarchy;
use super::restore::CgroupRestorePlan;
use super::save::{self, SaveTarget};
use super::CgroupError;
use crate::error::{Error, Result};
use crate::image::{pb, ImageDir, ImageKind};
use crate::opts::Opts;

fn freeze_dir(opts: &Opts) -> Result<&std::path::Path> {
    match (&opts.freeze_cgroup, opts.pid) {
        (Some(p), _) => Ok(p),
        (None, Some(pid)) => Err(CgroupError::FreezeNeedsCgroup { pid }.into()),
        (None, None) => Err(CgroupError::NoFreezeCgroup.into()),
    }
}

fn timeout(opts: &Opts) -> u32 {
    opts.freeze_timeout_s.unwrap_or(DEFAULT_TIMEOUT_S)
}

/// Freezes `opts.freeze_cgroup` and its descendants.
pub fn freeze(opts: &Opts) -> Result<()> {
    Ok(freeze::freeze(freeze_dir(opts)?, timeout(opts))?)
}

/// Thaws `opts.freeze_cgroup`.
pub fn thaw(opts: &Opts) -> Result<()> {
    Ok(freeze::thaw(freeze_dir(opts)?, timeout(opts))?)
}

fn images(opts: &Opts) -> Result<&std::path::Path> {
    opts.images_dir.as_deref().ok_or_else(|| Error::InvalidArgument("no images directory (-D DIR)".into()))
}

/// Saves the cgroups of `opts.pid` / `opts.freeze_cgroup` into `cgroup.img`.
///
/// The freeze cgroup is taken to be frozen by the caller for this checkpoint: its
/// freezer state is saved as thawed. The dump engine, which knows better, calls
/// [`save_with_guard`].
pub fn save(opts: &Opts) -> Result<()> {
    let frozen_for_dump = opts.freeze_cgroup.clone().map(|p| (p, false));
    save_target(opts, SaveTarget { pid: opts.pid, freeze_cgroup: opts.freeze_cgroup.clone(), frozen_for_dump })
}

/// Saves as [`save`] does, recording the freeze cgroup's state from before `guard`.
pub fn save_with_guard(opts: &Opts, guard: Option<&freeze::FreezeGuard>) -> Result<()> {
    let frozen_for_dump = guard.map(|g| (g.path().to_path_buf(), g.was_frozen()));
    save_target(opts, SaveTarget { pid: opts.pid, freeze_cgroup: opts.freeze_cgroup.clone(), frozen_for_dump })
}

fn save_target(opts: &Opts, t: SaveTarget) -> Result<()> {
    let dir = images(opts)?;
    let hs = hierarchy::mounted()?;
    let img = save::collect(&t, &hs)?;
    ImageDir::create(dir)?.write(ImageKind::Cgroup, None, &img)?;
    Ok(())
}

/// Creates and configures the cgroups in `cgroup.img`, keeping the resolved paths for
/// the process restore (which places its forked tasks with
/// [`CgroupRestorePlan::place_task`], then calls `apply_freeze_states` and `commit`).
pub fn restore_plan(opts: &Opts) -> Result<CgroupRestorePlan> {
    let img: pb::CgroupImage = ImageDir::open(images(opts)?)?.read(ImageKind::Cgroup, None)?;
    let hs = if opts.manage_cgroups == crate::opts::ManageCgroups::Ignore { Vec::new() } else { hierarchy::mounted()? };
    Ok(CgroupRestorePlan::create(&img, opts, &hs)?)
}

/// cgroup-restore on its own: create, configure, apply freezer states, keep.
pub fn restore(opts: &Opts) -> Result<()> {
    let mut plan = restore_plan(opts)?;
    plan.apply_freeze_states()?;
    plan.commit();
    Ok(())
}
