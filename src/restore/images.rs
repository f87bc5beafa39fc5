//! Stage ReadImages: every image read, converted to engine types and checked
//! before anything is touched.

use std::collections::HashMap;

use super::{RestoreError, Run};
use crate::checkpoint::{Arch, Inventory, TaskCore};
use crate::error::{Error, Result};
use crate::files::{FileState, FilesImage};
use crate::image::convert::{self, At};
use crate::image::{pb, ImageDir, ImageError, ImageKind};
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

fn read_task(dir: &ImageDir, pid: i32) -> Result<TaskImage> {
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
    let mm = convert::mm_from_pb(&At(&mm_path), dir.read(n)?)?;
    let fds_path = dir.file(ImageKind::Fds, n);
    let fds = convert::fds_from_pb(&At(&fds_path), dir.read(n)?)?;
    let pages = dir.file(ImageKind::Pages, n);
    let want = mm.present_bytes();
    let have = std::fs::metadata(&pages).map_err(|source| ImageError::Io { path: pages.clone(), source })?.len();
    if have < want {
        return Err(
            ImageError::Truncated { path: pages, detail: format!("{have} bytes, the page runs need {want}") }.into()
        );
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

pub fn read(run: &mut Run<'_>) -> Result<()> {
    let dir = &run.dir;
    if !dir.exists(ImageKind::Inventory, None) {
        return Err(RestoreError::NoCheckpoint { dir: dir.path().into() }.into());
    }
    let inv_path = dir.file(ImageKind::Inventory, None);
    let inventory = convert::inventory_from_pb(&At(&inv_path), dir.read(None)?)?;
    if let Some(parent) = &inventory.parent {
        return Err(RestoreError::Unsupported {
            pid: inventory.root_pid,
            what: format!("a checkpoint that builds on an earlier pass ({})", parent.display()),
        }
        .into());
    }
    check_cpu(&inventory)?;
    let mut tasks = HashMap::new();
    for t in inventory.tasks.iter().filter(|t| !t.zombie) {
        tasks.insert(t.pid, read_task(dir, t.pid)?);
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
    // An fd handed over must stand for an external file the checkpoint let go.
    for i in &run.opts.inherit_fds {
        let wanted = files.files.iter().any(|f| matches!(&f.state, FileState::External(e) if e.key == i.key));
        if !wanted {
            return Err(Error::InvalidArgument(format!(
                "--inherit-fd fd[{}]:{}: the checkpoint has no external file with that key",
                i.fd, i.key
            )));
        }
    }
    crate::info!(
        run.log,
        "restoring {} tasks (root {}) from {}",
        inventory.tasks.len(),
        inventory.root_pid,
        dir.path().display()
    );
    run.ckpt = Some(Checkpoint { inventory, tasks, files });
    Ok(())
}
