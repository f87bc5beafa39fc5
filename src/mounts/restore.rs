//! The tree's mount namespace made again, by its root task's restore child right
//! after clone(CLONE_NEWNS) and before it opens any file: the copy of ccr's
//! mounts it starts with is made private, every saved mount is made detached,
//! configured and attached below its parent by fd, and the child pivots into
//! the new root and lets go of every mount it had. What it builds lives only in
//! the new namespace, so a failed restore leaves no mount behind.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use super::{below, fstree, is_within, MountError, ATTR_MASK};
use crate::error::Result;
use crate::image::{pb, ImageDir, ImageKind};
use crate::sys::{fd, mount};

fn name(m: &pb::MountEntry) -> String {
    format!("mount {} at {} ({} {})", m.id, m.mount_point, m.fstype, m.source)
}

/// Checks that an image's mount tree is one restore can walk: parents first,
/// each below its parent, a root at `/`.
pub fn check(ns: &pb::MountNamespace) -> std::result::Result<(), MountError> {
    let bad = |m: &pb::MountEntry, detail: &str| MountError::Image { mount: name(m), detail: detail.into() };
    let mut seen: HashMap<u32, &pb::MountEntry> = HashMap::new();
    for (i, m) in ns.mounts.iter().enumerate() {
        if m.how.is_none() {
            return Err(bad(m, "no way to make it is recorded"));
        }
        if i == 0 {
            if m.parent != 0 || m.mount_point != "/" {
                return Err(bad(m, "the first mount is not the root at /"));
            }
        } else {
            let Some(p) = seen.get(&m.parent) else { return Err(bad(m, "its parent is not listed before it")) };
            if !is_within(&m.mount_point, &p.mount_point) {
                return Err(bad(m, "its mount point is not below its parent's"));
            }
        }
        if let Some(pb::mount_entry::How::BindOf(id)) = m.how {
            if !seen.get(&id).is_some_and(|s| is_within(&m.root, &s.root)) {
                return Err(bad(m, "a bind of a mount not listed before it"));
            }
        }
        if seen.insert(m.id, m).is_some() {
            return Err(bad(m, "its id is listed twice"));
        }
    }
    Ok(())
}

/// Where the new root is attached before the pivot: any directory of the copy
/// of ccr's mounts will do, since nothing is reached through it by path.
fn staging_point() -> Result<OwnedFd> {
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
    let mut last = None;
    for d in ["/tmp", "/mnt", "/run", "/dev", "/"] {
        match fd::open(Path::new(d), flags, 0) {
            Ok(f) => return Ok(f),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("tried at least one").into())
}

/// Builds the mount tree of `ns` in the calling process's (new) mount namespace
/// and makes its root this process's root. `root_at` replaces where the root
/// mount is bound from (`--root`).
pub fn build(ns: &pb::MountNamespace, dir: &ImageDir, root_at: Option<&Path>) -> Result<()> {
    mount::make_all_private()?;
    // id → the mount made for it (attached) and its entry.
    let mut made: HashMap<u32, (OwnedFd, &pb::MountEntry)> = HashMap::new();
    // peer group → the first mount made in it, which the others are cloned from.
    let mut groups: HashMap<u32, u32> = HashMap::new();
    let mut top = None;
    // Every path of ccr's mounts is cloned before anything is attached: the new
    // root, once attached, covers one of them.
    let mut host = HashMap::new();
    for m in &ns.mounts {
        if let Some(pb::mount_entry::How::HostPath(path)) = &m.how {
            let path = if m.parent == 0 { root_at.unwrap_or(Path::new(path)) } else { Path::new(path) };
            let mnt = mount::clone_mount(None, path).map_err(|source| MountError::Make {
                mount: name(m),
                step: "open_tree",
                source,
            })?;
            host.insert(m.id, mnt);
        }
    }
    for m in &ns.mounts {
        let what = name(m);
        let step = |step: &'static str| {
            let what = what.clone();
            move |source| MountError::Make { mount: what, step, source }
        };
        let from_made = |id: u32| -> Result<OwnedFd> {
            let (src, e) = &made[&id];
            Ok(mount::clone_mount(Some(src.as_fd()), Path::new(&below(&m.root, &e.root))).map_err(step("open_tree"))?)
        };
        let peer = (m.shared != 0).then(|| groups.get(&m.shared).copied()).flatten();
        let mnt = match (&m.how, peer) {
            (_, Some(first)) => from_made(first)?,
            (Some(pb::mount_entry::How::BindOf(id)), None) => from_made(*id)?,
            (Some(pb::mount_entry::How::HostPath(_)), None) => host.remove(&m.id).expect("cloned above"),
            (Some(pb::mount_entry::How::NewFs(new)), None) => {
                let mut options = new.options.clone();
                if new.read_only {
                    options.push("ro".into());
                }
                let mnt = mount::new_fs(&m.fstype, &m.source, &options).map_err(step("making the filesystem"))?;
                if new.saved {
                    let (mut data, _) = dir.open_raw(ImageKind::MountData, m.id as u64)?;
                    fstree::restore(mnt.as_fd(), &new.files, &mut data, &what)?;
                }
                mnt
            }
            (None, None) => unreachable!("checked when the image was read"),
        };
        mount::set_attrs(mnt.as_fd(), m.attrs, ATTR_MASK, 0).map_err(step("mount_setattr"))?;
        let target = if m.parent == 0 {
            staging_point()?
        } else {
            let (parent, p) = &made[&m.parent];
            mount::path_beneath(parent.as_fd(), Path::new(&below(&m.mount_point, &p.mount_point)))
                .map_err(step("finding its mount point"))?
        };
        mount::attach(mnt.as_fd(), target.as_fd()).map_err(step("move_mount"))?;
        // A clone of a shared mount joins its group: only a first member of the
        // right group, or none, keeps what it got.
        if peer.is_none() {
            mount::set_attrs(mnt.as_fd(), 0, 0, libc::MS_PRIVATE).map_err(step("making it private"))?;
            if m.shared != 0 {
                mount::set_attrs(mnt.as_fd(), 0, 0, libc::MS_SHARED).map_err(step("making it shared"))?;
                groups.insert(m.shared, m.id);
            }
        }
        if m.unbindable {
            mount::set_attrs(mnt.as_fd(), 0, 0, libc::MS_UNBINDABLE).map_err(step("making it unbindable"))?;
        }
        if m.parent == 0 {
            top = Some(m.id);
        }
        made.insert(m.id, (mnt, m));
    }
    let Some(top) = top else { return Ok(()) };
    let (root, _) = &made[&top];
    mount::pivot_into(root.as_fd()).map_err(|source| MountError::Make {
        mount: "the new root".into(),
        step: "pivot_root",
        source,
    })?;
    Ok(())
}
