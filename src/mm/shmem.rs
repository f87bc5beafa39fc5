//! Shared memory objects: MAP_SHARED anonymous memory and memfds, saved once per
//! object (whichever tasks map it or hold an fd of it) into shmem-ID.img at their
//! offsets, and made again as one memfd that every task maps and opens.

use std::os::fd::{AsFd, OwnedFd};

use crate::image::{pb, ImageDir, ImageError, ImageKind};
use crate::sys::{fd, SysResult};

/// The objects a dump has met, by id (the object's inode).
#[derive(Default)]
pub struct ShmemTable {
    objs: Vec<pb::Shmem>,
    /// Objects whose whole contents were copied (through an fd of theirs).
    copied: Vec<u64>,
}

impl ShmemTable {
    fn get(&mut self, id: u64) -> (&mut pb::Shmem, bool) {
        let i = match self.objs.iter().position(|o| o.id == id) {
            Some(i) => (i, false),
            None => {
                self.objs.push(pb::Shmem { id, ..Default::default() });
                (self.objs.len() - 1, true)
            }
        };
        (&mut self.objs[i.0], i.1)
    }

    /// Notes that a mapping shows object `id` with `size` bytes; true when the
    /// object is new. A memfd's own size (from its fd) wins over what mappings show.
    pub fn note(&mut self, id: u64, size: u64) -> bool {
        let copied = self.copied.contains(&id);
        let (o, new) = self.get(id);
        if !copied {
            o.size = o.size.max(size);
        }
        new
    }

    /// Notes that object `id` is a memfd with this name and these seals; true
    /// when its whole contents are still to be copied. A mapping met earlier saved
    /// only the pages it had mapped: the first fd of a memfd copies all of it
    /// (the same bytes at the same offsets where they overlap).
    pub fn note_memfd(&mut self, id: u64, size: u64, name: &str, seals: u32) -> bool {
        let (o, _) = self.get(id);
        o.size = size;
        o.memfd = true;
        o.name = name.to_string();
        o.seals = seals;
        if self.copied.contains(&id) {
            return false;
        }
        self.copied.push(id);
        true
    }

    pub fn into_images(self) -> Vec<pb::Shmem> {
        self.objs
    }
}

/// Restore: the memfd of object `s` with its saved contents (all-zero chunks of
/// the sparse image are skipped) and the seals that must precede the mappings
/// (`seal_late` adds the others once every task has mapped it).
pub fn create(dir: &ImageDir, s: &pb::Shmem) -> Result<OwnedFd, crate::Error> {
    let name = if s.memfd { s.name.as_str() } else { "ccr-shmem" };
    let flags = if s.memfd { libc::MFD_ALLOW_SEALING } else { 0 };
    let mfd = fd::memfd(name, s.size, flags)?;
    let (src, path) = dir.open_raw(ImageKind::Shmem, s.id)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0u64;
    loop {
        let n =
            fd::read_at(src.as_fd(), &mut buf, off).map_err(|source| ImageError::Io { path: path.clone(), source })?;
        if n == 0 {
            seal_early(&mfd, s)?;
            return Ok(mfd);
        }
        if buf[..n].iter().any(|&b| b != 0) {
            fd::write_at(mfd.as_fd(), &buf[..n], off)
                .map_err(|source| ImageError::Io { path: path.clone(), source })?;
        }
        off += n as u64;
    }
}

/// Seals that must come after the mappings: a future-write seal refuses the
/// writable mappings restore makes, and no seal can follow F_SEAL_SEAL.
const LATE_SEALS: u32 = (libc::F_SEAL_FUTURE_WRITE | libc::F_SEAL_SEAL) as u32;

/// Seals that must come before the mappings: a write seal cannot be added while a
/// shared mapping that could write exists (even a read-only one of a read-write
/// fd), but lets read-only shared mappings be made after it.
fn seal_early(mfd: &OwnedFd, s: &pb::Shmem) -> SysResult<()> {
    let early = s.seals & !LATE_SEALS;
    if s.memfd && early != 0 {
        fd::add_seals(mfd.as_fd(), early)?;
    }
    Ok(())
}

/// The rest of the saved seals, once nothing more needs to map the memfd.
pub fn seal_late(mfd: &OwnedFd, s: &pb::Shmem) -> SysResult<()> {
    if s.memfd && s.seals & LATE_SEALS != 0 {
        fd::add_seals(mfd.as_fd(), s.seals)?;
    }
    Ok(())
}
