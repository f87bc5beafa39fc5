//! Stage SharedObjects: what several tasks share, and every object that has no
//! path, made once in ccr before the tree is forked: SysV segments, shared memory
//! objects (a memfd with the saved pages) and the open files whose kind is
//! restored before fork (`files::Stage::BeforeFork`: pipes with their contents,
//! socket pairs with their queues, eventfds, ...). The restore children inherit
//! them at high fd numbers and dup3 what they need into place, so sharing (one
//! offset, one pipe) comes back by itself.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};

use super::Run;
use crate::error::Result;
use crate::files::{self, OpenCx, Stage};
use crate::mm::{shmem, sysv};
use crate::sys::fd;

/// What the tree inherits.
pub struct Shared {
    /// Lowest fd number of what the tree inherits (above every fd a task needs).
    pub base: RawFd,
    /// File id → ccr's fd of a description made before fork.
    pub files: HashMap<u32, OwnedFd>,
    /// Shared memory object id → its memfd (kept until sealed).
    pub shmem_fds: HashMap<u64, OwnedFd>,
    /// Write-sealed memfds opened read-only: their shared mappings are made from
    /// these (a read-write fd's shared mapping could write, which the seal forbids).
    pub shmem_ro_fds: HashMap<u64, OwnedFd>,
    /// Key → fd the caller handed over for an external file.
    pub inherited: HashMap<String, BorrowedFd<'static>>,
}

impl Shared {
    /// The fd number (here, and so in every restore child) a task maps shared
    /// memory object `id` from.
    pub fn map_fd(&self, id: u64) -> Option<RawFd> {
        use std::os::fd::AsRawFd;
        self.shmem_ro_fds.get(&id).or_else(|| self.shmem_fds.get(&id)).map(|f| f.as_raw_fd())
    }
}

/// Moves a fresh fd to the lowest free number ≥ `base`.
pub fn lift(fd: OwnedFd, base: RawFd) -> Result<OwnedFd> {
    Ok(fd::dup_at_least(fd.as_fd(), base)?)
}

pub fn make(run: &mut Run<'_>) -> Result<()> {
    let ckpt = run.ckpt.as_ref().expect("read");
    let max_target = ckpt.tasks.values().flat_map(|t| t.fds.iter().map(|f| f.fd)).max().unwrap_or(2);
    let base = (max_target + 1).max(64).max(fd::highest_open() + 1);
    let img = &ckpt.files;
    // Inside a user namespace of the tree's own, ccr also hands the root's child a
    // clone of every host path its mount tree binds (`fork::premade_clones`).
    let premade =
        ckpt.inventory.mnt.as_ref().filter(|_| ckpt.inventory.user_ns.is_some()).map_or(0, |m| m.mounts.len());
    fd::ensure_nofile(base as u64 + 2 * (img.files.len() + img.shmems.len()) as u64 + premade as u64 + 64)?;
    // A tree with an IPC namespace of its own gets a new one, made by ccr for
    // itself so that what it creates below is inside and the tree, forked from it,
    // is in it too. Its objects go with it when the last task does: no journal.
    // In a user namespace of the tree's own, the root's restore child makes both
    // (`fork`): the namespaces must be the user namespace's.
    let in_userns = ckpt.inventory.user_ns.is_some();
    let own_ipc = ckpt.inventory.ipc.as_ref();
    if let Some(ns) = own_ipc.filter(|_| !in_userns) {
        crate::sys::process::unshare_ipc()?;
        ipc_limits_and_queues(ns, &crate::userns::Ids::default())?;
    }
    // A tree with a time namespace of its own gets a new one for ccr's children,
    // its clocks set to go on from where the tasks left them.
    if let Some(t) = ckpt.inventory.time.as_ref().filter(|_| !in_userns) {
        let (mono, boot) = time_offsets(t)?;
        crate::sys::process::unshare_time(mono, boot)?;
    }
    // SysV segments exist before any task attaches them; removed again on failure.
    if !(in_userns && own_ipc.is_some()) {
        for seg in &img.sysv {
            if let Some(j) = run.journal.as_mut().filter(|_| own_ipc.is_none()) {
                j.sysv_shm(seg.id)?;
            }
            if sysv::restore(&run.dir, seg)? {
                run.sysv_created.push(seg.id);
            }
        }
    }
    if let Some(ns) = own_ipc.filter(|_| !in_userns) {
        ipc_objects(ns, &crate::userns::Ids::default())?;
    }
    let mut shmem_fds = HashMap::new();
    let mut shmem_ro_fds = HashMap::new();
    for s in &img.shmems {
        let mfd = lift(shmem::create(&run.dir, s)?, base)?;
        if s.memfd && s.seals & libc::F_SEAL_WRITE as u32 != 0 {
            let ro = fd::reopen(mfd.as_fd(), libc::O_RDONLY | libc::O_CLOEXEC)?;
            shmem_ro_fds.insert(s.id, lift(ro, base)?);
        }
        shmem_fds.insert(s.id, mfd);
    }
    let mut inherited = HashMap::new();
    for i in &run.opts.inherit_fds {
        inherited.insert(i.key.clone(), fd::inherited(i.fd)?);
    }
    let mut made = HashMap::new();
    {
        let mut cx = OpenCx::new(&run.dir, img, &shmem_fds, &inherited);
        for f in &img.files {
            let kind = files::kind_of(&f.state);
            if kind.stage_of(f) == Stage::BeforeFork {
                let opened = files::open(&mut cx, f)?;
                made.insert(f.id, lift(opened, base)?);
            }
        }
    }
    run.shared = Some(Shared { base, files: made, shmem_fds, shmem_ro_fds, inherited });
    Ok(())
}

/// The offsets (CLOCK_MONOTONIC, CLOCK_BOOTTIME, ns) of a new time namespace whose
/// clocks go on from the saved ones.
pub fn time_offsets(t: &crate::image::pb::TimeNamespace) -> Result<(i64, i64)> {
    use crate::sys::process::clock_ns;
    Ok((t.monotonic_ns - clock_ns(libc::CLOCK_MONOTONIC)?, t.boottime_ns - clock_ns(libc::CLOCK_BOOTTIME)?))
}

/// The limits (sysctls) and POSIX message queues of the tree's own IPC namespace,
/// in the new one the caller is in; owners made the tree's own by `ids`.
pub fn ipc_limits_and_queues(ns: &crate::image::pb::IpcNamespace, ids: &crate::userns::Ids) -> Result<()> {
    // Limits first: the objects made after must fit in them.
    for s in &ns.sysctls {
        crate::sys::proc::sysctl::write(&s.name, &s.value)?;
    }
    for q in &ns.mqueues {
        let (uid, gid) = owner(ids, q.uid, q.gid, &format!("POSIX message queue /{}", q.name))?;
        let q = crate::sys::mqueue::Queue {
            name: q.name.clone(),
            mode: q.mode,
            uid,
            gid,
            maxmsg: q.maxmsg,
            msgsize: q.msgsize,
            ..Default::default()
        };
        crate::sys::mqueue::create(&q)?;
    }
    Ok(())
}

/// An object's saved owner as the tree's user namespace names it.
fn owner(ids: &crate::userns::Ids, uid: u32, gid: u32, what: &str) -> Result<(u32, u32)> {
    ids.owner(uid, gid).map_err(|id| {
        crate::Error::InvalidArgument(format!("{what}: its owner {id} is not mapped in the tree's user namespace"))
    })
}

/// The SysV segments (`segs`, data from `dir`), semaphore sets and message queues
/// of the tree's own IPC namespace, under their ids, in the new one the caller is
/// in, owned by `ids`' view of their saved owners. What is made here goes with
/// the namespace (the caller made it for the tree).
pub fn sysv_objects_inside(
    ns: &crate::image::pb::IpcNamespace,
    segs: &[crate::image::pb::SysvShm],
    dir: &crate::image::ImageDir,
    ids: &crate::userns::Ids,
) -> Result<()> {
    for seg in segs {
        let (uid, gid) = owner(ids, seg.uid, seg.gid, &format!("SysV shm segment {}", seg.id))?;
        sysv::restore(dir, &crate::image::pb::SysvShm { uid, gid, ..*seg })?;
    }
    ipc_objects(ns, ids)
}

/// The semaphore sets and message queues of the tree's own IPC namespace, under
/// their ids, in the new namespace ccr is in.
fn ipc_objects(ns: &crate::image::pb::IpcNamespace, ids: &crate::userns::Ids) -> Result<()> {
    use crate::sys::proc::{kernel, sysvipc::IpcObject};
    use crate::sys::sysv_ipc;
    for s in &ns.sems {
        let (uid, gid) = owner(ids, s.uid, s.gid, &format!("SysV semaphore set {}", s.id))?;
        let o = IpcObject { key: s.key, id: s.id, mode: s.mode, count: s.values.len() as u64, uid, gid };
        kernel::set_next_id("sem_next_id", s.id)?;
        let values: Vec<u16> = s.values.iter().map(|&v| v as u16).collect();
        sysv_ipc::create_sem(&o, &values)?;
    }
    for q in &ns.queues {
        let (uid, gid) = owner(ids, q.uid, q.gid, &format!("SysV message queue {}", q.id))?;
        let o = IpcObject { key: q.key, id: q.id, mode: q.mode, count: q.messages.len() as u64, uid, gid };
        kernel::set_next_id("msg_next_id", q.id)?;
        let msgs: Vec<(i64, Vec<u8>)> = q.messages.iter().map(|m| (m.mtype, m.text.clone())).collect();
        sysv_ipc::create_msg(&o, &msgs)?;
    }
    Ok(())
}
