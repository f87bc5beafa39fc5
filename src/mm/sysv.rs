//! SysV shared memory: a segment is saved once per dump (contents, key, owner,
//! mode), made again with its id before any task attaches it, and removed again
//! if the restore fails.

use crate::image::{pb, ImageDir, ImageKind};
use crate::sys::sysv_shm::{self, SegmentInfo, SHM_DEST};

/// Why a segment could not be saved.
#[derive(Debug)]
pub enum SaveError {
    /// /proc/sysvipc/shm does not list it.
    Unlisted,
    Sys(crate::sys::SysError),
}

/// Saves segment `id` into sysvshm-ID.img.
pub fn save(dir: &ImageDir, id: i32) -> Result<pb::SysvShm, SaveError> {
    let seg =
        sysv_shm::segments().map_err(SaveError::Sys)?.into_iter().find(|s| s.id == id).ok_or(SaveError::Unlisted)?;
    sysv_shm::save(id, seg.size, &dir.file(ImageKind::SysvShm, Some(id as u64))).map_err(SaveError::Sys)?;
    Ok(pb::SysvShm {
        id,
        key: seg.key,
        mode: seg.mode,
        size: seg.size,
        uid: seg.uid,
        gid: seg.gid,
        removed: seg.mode & SHM_DEST != 0,
    })
}

/// Makes segment `seg` again from its image; true when this run created it (and so
/// removes it on failure).
pub fn restore(dir: &ImageDir, seg: &pb::SysvShm) -> crate::Result<bool> {
    let info = SegmentInfo {
        key: seg.key,
        id: seg.id,
        mode: seg.mode,
        size: seg.size,
        uid: seg.uid,
        gid: seg.gid,
        nattch: 0,
        cpid: 0,
    };
    Ok(sysv_shm::restore(&info, &dir.file(ImageKind::SysvShm, Some(seg.id as u64)))?)
}

/// IPC_RMID: the segment goes once the last attachment does.
pub fn remove(id: i32) {
    sysv_shm::remove(id)
}
