//! Stage ReadImages: every image read, converted to engine types and checked
//! before anything is touched.

use std::collections::HashMap;

use super::{RestoreError, Run};
use crate::checkpoint::{Arch, Inventory, TaskCore};
use crate::error::{Error, Result};
use crate::files::{FileState, FilesImage};
use crate::image::convert::{self, At};
use crate::image::{pb, sums, ImageDir, ImageError, ImageKind};
use crate::mm::Mm;

/// The images of one live task.
pub struct TaskImage {
    pub pid: i32,
    pub core: TaskCore,
    pub mm: Mm,
    pub fds: Vec<pb::Fd>,
}

/// The whole checkpoint.
pub struct Checkpoint {
    pub inventory: Inventory,
    pub tasks: HashMap<i32, TaskImage>,
    pub files: FilesImage,
}

impl Checkpoint {
    pub fn task(&self, pid: i32) -> &TaskImage {
        &self.tasks[&pid]
    }
}

/// An image's own record of its task: absent (0) only in images before format 2.2.
fn check_pid(path: &std::path::Path, found: i32, pid: i32, checksummed: bool) -> Result<()> {
    if found == pid || (found == 0 && !checksummed) {
        return Ok(());
    }
    let detail = format!("belongs to task {found}, not {pid} (a file of another task put in its place?)");
    Err(ImageError::Invalid { path: path.into(), field: "pid".into(), detail }.into())
}

fn read_task(dir: &ImageDir, pid: i32, checksummed: bool) -> Result<TaskImage> {
    let n = Some(pid as u64);
    let core_path = dir.file(ImageKind::Core, n);
    let core = convert::core_from_pb(&At(&core_path), dir.read(n)?)?;
    if core.pid != pid {
        return Err(ImageError::Invalid {
            path: core_path,
            field: "pid".into(),
            detail: format!("{} is not {pid}", core.pid),
        }
        .into());
    }
    let mm_path = dir.file(ImageKind::Mm, n);
    let mm_pb: pb::Mm = dir.read(n)?;
    check_pid(&mm_path, mm_pb.pid, pid, checksummed)?;
    let mm = convert::mm_from_pb(&At(&mm_path), mm_pb)?;
    let fds_path = dir.file(ImageKind::Fds, n);
    let fds_pb: pb::Fds = dir.read(n)?;
    check_pid(&fds_path, fds_pb.pid, pid, checksummed)?;
    let fds = convert::fds_from_pb(&At(&fds_path), fds_pb)?;
    let pages = dir.file(ImageKind::Pages, n);
    let want = mm.present_bytes();
    let have = std::fs::metadata(&pages).map_err(|source| ImageError::Io { path: pages.clone(), source })?.len();
    if have < want {
        return Err(
            ImageError::Truncated { path: pages, detail: format!("{have} bytes, the page runs need {want}") }.into()
        );
    }
    if have > want {
        let detail = format!("{have} bytes, but the page runs of mm-{pid}.img hold {want}");
        return Err(ImageError::Corrupt { path: pages, detail }.into());
    }
    Ok(TaskImage { pid, core, mm, fds })
}

/// The checkpoint's xstate must fit this CPU.
fn check_cpu(inv: &Inventory) -> Result<()> {
    if inv.arch != Arch::HOST {
        return Err(RestoreError::Unsupported {
            pid: inv.root_pid,
            what: format!("a checkpoint of an {} machine on {}", inv.arch.name(), Arch::HOST.name()),
        }
        .into());
    }
    let flags = crate::sys::proc::cpuinfo::flags();
    if inv.xfeatures & (1 << 2) != 0 && !flags.iter().any(|f| f == "avx") {
        return Err(
            RestoreError::Unsupported { pid: inv.root_pid, what: "AVX state on a CPU without AVX".into() }.into()
        );
    }
    Ok(())
}

/// The raw data files a checkpoint reads: each task's pages, each shared memory
/// object's, SysV segment's and deleted file's contents.
pub fn required_raw(ckpt: &Checkpoint) -> Vec<String> {
    let mut out: Vec<String> = ckpt.tasks.keys().map(|&pid| ImageKind::Pages.file_name(Some(pid as u64))).collect();
    out.extend(ckpt.files.shmems.iter().map(|s| ImageKind::Shmem.file_name(Some(s.id))));
    out.extend(ckpt.files.sysv.iter().map(|s| ImageKind::SysvShm.file_name(Some(s.id as u64))));
    for m in ckpt.inventory.mnt.iter().flat_map(|ns| &ns.mounts) {
        if let Some(pb::mount_entry::How::NewFs(pb::NewFs { saved: true, .. })) = &m.how {
            out.push(ImageKind::MountData.file_name(Some(m.id as u64)));
        }
    }
    for f in &ckpt.files.files {
        if let FileState::Ghost(_) = &f.state {
            out.push(ImageKind::Ghost.file_name(Some(f.id as u64)));
        }
    }
    out.sort();
    out
}

/// Reads every image of a checkpoint and checks them against each other; the
/// checksums of its raw data, when it has them, for the caller to check.
pub fn load(dir: &ImageDir) -> Result<(Checkpoint, Option<pb::Sums>)> {
    if !dir.exists(ImageKind::Inventory, None) {
        return Err(RestoreError::NoCheckpoint { dir: dir.path().into() }.into());
    }
    let inv_path = dir.file(ImageKind::Inventory, None);
    let inventory = convert::inventory_from_pb(&At(&inv_path), dir.read(None)?)?;
    let sums = if inventory.checksummed { Some(dir.read::<pb::Sums>(None)?) } else { None };
    let mut tasks = HashMap::new();
    for t in inventory.tasks.iter().filter(|t| !t.zombie) {
        tasks.insert(t.pid, read_task(dir, t.pid, inventory.checksummed)?);
    }
    let files_path = dir.file(ImageKind::Files, None);
    let files = convert::files_from_pb(&At(&files_path), dir.read(None)?)?;
    for t in tasks.values() {
        for f in &t.fds {
            if files.file(f.file_id).is_none() {
                return Err(ImageError::Invalid {
                    path: dir.file(ImageKind::Fds, Some(t.pid as u64)),
                    field: format!("fd {}", f.fd),
                    detail: format!("refers to file {}, which files.img does not have", f.file_id),
                }
                .into());
            }
        }
    }
    Ok((Checkpoint { inventory, tasks, files }, sums))
}

pub fn read(run: &mut Run<'_>) -> Result<()> {
    let (ckpt, sums) = load(&run.dir)?;
    let inventory = &ckpt.inventory;
    if let Some(parent) = &inventory.parent {
        return Err(RestoreError::Unsupported {
            pid: inventory.root_pid,
            what: format!("a checkpoint that builds on an earlier pass ({})", parent.display()),
        }
        .into());
    }
    check_cpu(inventory)?;
    if inventory.shell_job && !run.opts.shell_job {
        return Err(Error::InvalidArgument(
            "the checkpoint is of a shell's job (dumped with --shell-job): restore it with --shell-job, and it \
             joins this command's session and process group"
                .into(),
        ));
    }
    match sums {
        Some(sums) => run.data_check = DataCheck::Due((sums, required_raw(&ckpt))),
        None => crate::info!(run.log, "the checkpoint has no checksums of its data (written before format 2.2)"),
    }
    // An fd handed over must stand for an external file (or a mount of one) the
    // checkpoint let go.
    for i in &run.opts.inherit_fds {
        let mounted = ckpt
            .inventory
            .mnt
            .iter()
            .flat_map(|ns| &ns.mounts)
            .any(|m| matches!(&m.how, Some(pb::mount_entry::How::External(k)) if *k == i.key));
        let wanted =
            mounted || ckpt.files.files.iter().any(|f| matches!(&f.state, FileState::External(e) if e.key == i.key));
        if !wanted {
            return Err(Error::InvalidArgument(format!(
                "--inherit-fd fd[{}]:{}: the checkpoint has no external file with that key",
                i.fd, i.key
            )));
        }
    }
    // What the caller asked of the namespaces, before anything is made.
    run.joined = super::join::open(&run.opts.join_ns)?;
    if let (Some(j), Some(_)) = (run.joined.first(), &inventory.user_ns) {
        // The tree is made in its new user namespace first, which owns what it
        // makes; a namespace of the caller's (the host's) cannot be entered from there.
        return Err(Error::InvalidArgument(format!(
            "--join-ns {}: the checkpoint has a user namespace of its own, from inside which no namespace of \
             this side can be joined",
            j.kind
        )));
    }
    if let Some(r) = &run.opts.root {
        // Said and not done would be worse than refused.
        let bound = inventory
            .mnt
            .as_ref()
            .and_then(|ns| ns.mounts.first())
            .is_some_and(|m| matches!(m.how, Some(pb::mount_entry::How::HostPath(_))));
        if !bound || super::join::joins(&run.joined, "mnt") {
            return Err(Error::InvalidArgument(format!(
                "--root {}: the checkpoint has no mount namespace of its own whose root is bound from a path{}",
                r.display(),
                if bound { " (its mount namespace is joined instead)" } else { "" }
            )));
        }
    }
    // Every external mount mapped to a path of this side, found and checked now.
    let mnt = inventory.mnt.as_ref().filter(|_| !super::join::joins(&run.joined, "mnt"));
    run.ext_mounts = crate::mounts::restore::map_external(mnt, &run.opts.ext_mounts)?;
    // A host end for every veth, none in use, every bridge there.
    let net = inventory.net.as_ref().filter(|_| !super::join::joins(&run.joined, "net"));
    run.veth_plan = crate::netns::veth::plan(net, &run.opts.veth_pairs)?;
    crate::info!(
        run.log,
        "restoring {} tasks (root {}) from {}",
        inventory.tasks.len(),
        inventory.root_pid,
        run.dir.path().display()
    );
    run.ckpt = Some(ckpt);
    Ok(())
}

/// The check of the raw data files against their checksums: due once the images
/// are read, running on a thread of its own from the Memory stage on (ccr forks
/// the tree only while it has a single thread), awaited by CheckData.
#[derive(Default)]
pub enum DataCheck {
    #[default]
    None,
    /// The checksums, and the raw files the checkpoint needs.
    Due((pb::Sums, Vec<String>)),
    Running(std::thread::JoinHandle<std::result::Result<(), ImageError>>),
}

/// Starts the check of the raw data files, if one is due.
pub fn start_data_check(run: &mut Run<'_>) {
    if !matches!(run.data_check, DataCheck::Due(_)) {
        return;
    }
    if let DataCheck::Due((sums, required)) = std::mem::take(&mut run.data_check) {
        let d = run.dir.clone();
        // Off ccr's pinned CPU: the tracees run there.
        let cpus = run.default_affinity.clone();
        run.data_check = DataCheck::Running(std::thread::spawn(move || {
            if let Some(m) = cpus {
                let _ = crate::sys::process::set_affinity(0, &m);
            }
            sums::verify_all(&d, &sums, &required)
        }));
    }
}

/// Stage CheckData: the raw data files matched their checksums.
pub fn check_data(run: &mut Run<'_>) -> Result<()> {
    start_data_check(run);
    match std::mem::take(&mut run.data_check) {
        DataCheck::Running(t) => match t.join() {
            Ok(r) => Ok(r?),
            Err(_) => Err(Error::InvalidArgument("the check of the page data panicked".into())),
        },
        _ => Ok(()),
    }
}
