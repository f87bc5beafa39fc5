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

    /// Notes that object `id` is at least `size` bytes; true when it is new.
    pub fn note(&mut self, id: u64, size: u64) -> bool {
        let (o, new) = self.get(id);
        o.size = o.size.max(size);
        new
    }

    /// Notes that object `id` is a memfd with this name and these seals; true
    /// when it is new.
    pub fn note_memfd(&mut self, id: u64, size: u64, name: &str, seals: u32) -> bool {
        let (o, new) = self.get(id);
        o.size = o.size.max(size);
        o.memfd = true;
        o.name = name.to_string();
        o.seals = seals;
        new
    }

    pub fn into_images(self) -> Vec<pb::Shmem> {
        self.objs
    }
}

/// Restore: the memfd of object `s` with its saved contents (all-zero chunks of
/// the sparse image are skipped). Seals come later (`seal`), once every task has
/// mapped it.
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
            return Ok(mfd);
        }
        if buf[..n].iter().any(|&b| b != 0) {
            fd::write_at(mfd.as_fd(), &buf[..n], off)
                .map_err(|source| ImageError::Io { path: path.clone(), source })?;
        }
        off += n as u64;
    }
}

/// The saved seals of a memfd, once nothing more needs to map it writable.
pub fn seal(mfd: &OwnedFd, s: &pb::Shmem) -> SysResult<()> {
    if s.memfd && s.seals != 0 {
        fd::add_seals(mfd.as_fd(), s.seals)?;
    }
    Ok(())
}
