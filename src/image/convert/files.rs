use super::{At, ImageError};
use crate::files::{FileDesc, FileState, FilesImage};
use crate::image::pb;

pub fn files_to_pb(f: &FilesImage) -> pb::Files {
    pb::Files {
        files: f
            .files
            .iter()
            .map(|d| pb::FileDesc {
                id: d.id,
                flags: d.flags,
                owner_pid: d.owner_pid,
                locks: d.locks.clone(),
                kind: Some(d.state.clone()),
            })
            .collect(),
        pipes: f.pipes.clone(),
        shmems: f.shmems.clone(),
        sysv_shm: f.sysv.clone(),
        ptys: f.ptys.clone(),
    }
}

pub fn files_from_pb(at: &At<'_>, p: pb::Files) -> Result<FilesImage, ImageError> {
    let mut files = Vec::with_capacity(p.files.len());
    for (i, d) in p.files.into_iter().enumerate() {
        let field = format!("files[{i}] (file {})", d.id);
        let state = d.kind.ok_or_else(|| {
            at.invalid(format!("{field}.kind"), "no kind this ccr knows (written by a newer ccr, or corrupt)")
        })?;
        match &state {
            FileState::Unix(u)
                if at.known::<pb::SockType>(format!("{field}.unix.type"), u.r#type)? == pb::SockType::Unspecified =>
            {
                return Err(at.invalid(format!("{field}.unix.type"), "not set"));
            }
            FileState::Ghost(g) => {
                at.required(format!("{field}.ghost.file"), g.file.as_ref())?;
            }
            _ => {}
        }
        if files.iter().any(|f: &FileDesc| f.id == d.id) || d.id == 0 {
            return Err(at.invalid(format!("{field}.id"), "0 or used twice"));
        }
        locks(at, &format!("{field}.locks"), &d.locks, false)?;
        files.push(FileDesc { id: d.id, flags: d.flags, owner_pid: d.owner_pid, locks: d.locks, state });
    }
    for (i, q) in p.pipes.iter().enumerate() {
        // A pipe holds at most its capacity; more could not have been queued.
        if q.data.len() as u64 > u64::from(q.capacity) {
            let detail = format!("{} bytes queued in a pipe of {} bytes", q.data.len(), q.capacity);
            return Err(at.invalid(format!("pipes[{i}] (pipe {})", q.id), detail));
        }
    }
    Ok(FilesImage { files, pipes: p.pipes, shmems: p.shmems, sysv: p.sysv_shm, ptys: p.ptys })
}

/// A task's fd table, checked.
pub fn fds_from_pb(at: &At<'_>, p: pb::Fds) -> Result<Vec<pb::Fd>, ImageError> {
    for f in &p.fds {
        locks(at, &format!("fd {}.task_locks", f.fd), &f.task_locks, true)?;
        if f.owner.as_ref().is_some_and(|o| !(0..=2).contains(&o.r#type) || !(0..=64).contains(&o.signal)) {
            return Err(at.invalid(format!("fd {}.owner", f.fd), "an owner type or signal this ccr does not know"));
        }
    }
    Ok(p.fds)
}

/// Checks saved locks: a known kind; POSIX locks and leases only in a task's fd
/// table (`task`), flock and OFD locks only on a description.
fn locks(at: &At<'_>, field: &str, locks: &[pb::FileLock], task: bool) -> Result<(), ImageError> {
    for (i, l) in locks.iter().enumerate() {
        let kind = at.known::<pb::LockKind>(format!("{field}[{i}].kind"), l.kind)?;
        let task_kind = matches!(kind, pb::LockKind::Posix | pb::LockKind::Lease);
        if kind == pb::LockKind::Unspecified || task_kind != task {
            let whose = if task { "a task's fd" } else { "a file description" };
            return Err(at.invalid(format!("{field}[{i}].kind"), format!("{kind:?} is no lock {whose} holds")));
        }
    }
    Ok(())
}
