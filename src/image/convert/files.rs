use super::{At, ImageError};
use crate::files::{FileDesc, FileState, FilesImage};
use crate::image::pb;

pub fn files_to_pb(f: &FilesImage) -> pb::Files {
    pb::Files {
        files: f
            .files
            .iter()
            .map(|d| pb::FileDesc { id: d.id, flags: d.flags, owner_pid: d.owner_pid, kind: Some(d.state.clone()) })
            .collect(),
        pipes: f.pipes.clone(),
        shmems: f.shmems.clone(),
        sysv_shm: f.sysv.clone(),
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
        files.push(FileDesc { id: d.id, flags: d.flags, owner_pid: d.owner_pid, state });
    }
    Ok(FilesImage { files, pipes: p.pipes, shmems: p.shmems, sysv: p.sysv_shm })
}
