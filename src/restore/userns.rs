//! The restore side of a tree's own user namespace (`crate::userns` has the ids).
//!
//! Ordering requirements:
//! 1. Before the clone, ccr makes what the root's child cannot make from inside:
//!    the pipe it waits on for its maps, and a clone of every host path its mount
//!    tree binds (from inside, a mount with mounts below it cannot be cloned
//!    alone: the namespace's copy of ccr's mounts locks them); where setgroups is
//!    denied, ccr takes the root's saved groups for the moment of the clone.
//! 2. The clone makes the user namespace together with the tree's other new
//!    namespaces (mnt, uts, pid, net, ipc), which it therefore owns.
//! 3. ccr writes setgroups, gid_map and uid_map (that order: "deny" only before a
//!    gid map), then lets the child go; until then its ids mean nothing there.
//! 4. The child makes the time namespace (unshare, offsets, enter) and the IPC
//!    namespace's objects, then goes on as any root: cgroup namespace, UTS names,
//!    network, mounts; the user namespace's limits last.

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use super::shared::lift;
use super::RestoreError;
use crate::error::Result;
use crate::image::{pb, ImageDir};
use crate::sys::{fd, process};

/// What ccr hands the root's child of a user namespace, made before the clone.
pub struct Handoff<'a> {
    ns: &'a pb::UserNamespace,
    /// The pipe (read, write end) the root waits on for its maps.
    maps: (OwnedFd, OwnedFd),
    /// ccr's clones of host paths, held until the child inherited them.
    _clones: Vec<OwnedFd>,
    /// Mount id → the fd (in ccr and so in the child) of its clone.
    pub premade: HashMap<u32, RawFd>,
}

impl<'a> Handoff<'a> {
    /// The pipe, and clones of the host paths of `mnt` (the root's from `root_at`
    /// when given), each at an fd ≥ `base`. A path that cannot be cloned here is
    /// left to the root's child, which says why.
    pub fn new(
        ns: &'a pb::UserNamespace,
        mnt: Option<&pb::MountNamespace>,
        root_at: Option<&Path>,
        base: RawFd,
    ) -> Result<Handoff<'a>> {
        use crate::image::pb::mount_entry::How;
        use crate::sys::mount;
        let (rd, wr) = crate::sys::pipe::pipe()?;
        let maps = (lift(rd, base)?, lift(wr, base)?);
        let (mut clones, mut premade) = (Vec::new(), HashMap::new());
        for m in mnt.map_or(&[][..], |n| &n.mounts[..]) {
            let Some(How::HostPath(path)) = &m.how else { continue };
            let path = if m.parent == 0 { root_at.unwrap_or(Path::new(path)) } else { Path::new(path) };
            let Ok(at) = mount::path_no_symlinks(path) else { continue };
            if let Ok(mnt) = mount::clone_mount(Some(at.as_fd()), Path::new("")) {
                let mnt = lift(mnt, base)?;
                premade.insert(m.id, mnt.as_raw_fd());
                clones.push(mnt);
            }
        }
        Ok(Handoff { ns, maps, _clones: clones, premade })
    }

    /// The maps pipe as the child sees it: (read end, write end).
    pub fn maps_pipe(&self) -> (RawFd, RawFd) {
        (self.maps.0.as_raw_fd(), self.maps.1.as_raw_fd())
    }

    /// Writes the maps of root child `pid`'s user namespace and lets it go.
    pub fn write_maps(self, pid: i32) -> Result<()> {
        let Handoff { ns, maps: (rd, wr), .. } = self;
        drop(rd);
        let ext = crate::userns::extents;
        crate::sys::userns::write_maps(pid, &ext(&ns.uid_map), &ext(&ns.gid_map), ns.setgroups_deny)
            .and_then(|()| fd::write_all(wr.as_fd(), b"M"))
            .map_err(|e| {
                RestoreError::Child { pid, detail: format!("writing the maps of its user namespace: {e}") }.into()
            })
    }
}

/// Where `ns` denies setgroups, the root is made with the groups it had (`saved`,
/// as ccr saw them): ccr takes them for the clone and gets its own back (Some)
/// after it.
pub fn groups_for_fork(ns: &pb::UserNamespace, saved: &[u32]) -> Result<Option<Vec<u32>>> {
    if !ns.setgroups_deny {
        return Ok(None);
    }
    let ours = process::groups()?;
    if ours == saved {
        return Ok(None);
    }
    process::set_groups(saved)?;
    Ok(Some(ours))
}

/// In the root's child: waits until ccr wrote the maps of the user namespace it
/// was made in (ccr closing the pipe instead means it failed).
pub fn wait_for_maps(pid: i32, (rd, wr): (RawFd, RawFd)) -> Result<()> {
    fd::close_range(wr as u32, wr as u32);
    let mut f = std::fs::File::from(fd::installed(rd).try_clone_to_owned().map_err(|e| RestoreError::Child {
        pid,
        detail: format!("the pipe to wait for its user namespace's maps on: {e}"),
    })?);
    let mut b = [0u8; 1];
    f.read_exact(&mut b)
        .map_err(|e| RestoreError::Child { pid, detail: format!("ccr wrote no maps for its user namespace ({e})") })?;
    fd::close_range(rd as u32, rd as u32);
    Ok(())
}

/// What the root's child makes inside the tree's user namespace besides the
/// namespaces the clone made.
pub struct Inside<'a> {
    pub ids: &'a crate::userns::Ids,
    pub time: Option<&'a pb::TimeNamespace>,
    pub ipc: Option<&'a pb::IpcNamespace>,
    pub sysv: &'a [pb::SysvShm],
    pub dir: &'a ImageDir,
}

/// In the root's child, in the tree's new user namespace `u`: the tree's time
/// namespace (unshared, its offsets set, then entered: the root must be in it
/// too) and its IPC namespace's limits, queues and SysV objects, before any
/// other task exists. Made here, not in ccr, so that they are owned by the user
/// namespace: the IPC namespace came with the clone.
pub fn time_and_ipc(u: &pb::UserNamespace, made: &Inside<'_>, pid: i32) -> Result<()> {
    if let Some(t) = made.time {
        let (mono, boot) = super::shared::time_offsets(t)?;
        process::unshare_time(mono, boot)?;
        process::enter_time_ns_for_children()?;
    }
    if let Some(ns) = made.ipc {
        // Its sysctls belong to the namespace's root; a queue needs a mapped owner.
        crate::userns::as_ids(crate::userns::maker_ids(u), None, || super::shared::ipc_limits_and_queues(ns, made.ids))
            .map_err(|detail| RestoreError::Child { pid, detail: format!("its IPC namespace: {detail}") })?;
        super::shared::sysv_objects_inside(ns, made.sysv, made.dir, made.ids)?;
    }
    Ok(())
}
