//! Checksums of the raw data files (`pages-*`, `shmem-*`, `sysvshm-*`, `ghost-*`):
//! a CRC32C per block, kept in `sums.img`. The framed images have a checksum in
//! their header; raw data had none, so a flipped byte in a pages file came back
//! as corrupt memory.
//!
//! The dump sums page data on the page writer's thread as it goes out (no second
//! read); other raw files are read back once written. A restore checks every file
//! on a thread of its own while the tree is rebuilt, and lets no task run before
//! the check has passed; `ccr show --verify` checks a whole checkpoint.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{pb, ImageDir, ImageError, ImageKind};

/// Bytes per checksummed block.
pub const BLOCK: usize = 256 << 10;

/// The running checksums of one file, fed in order of file offset.
#[derive(Debug)]
pub struct Summer {
    name: String,
    size: u64,
    crc: u32,
    /// Bytes of the current block fed so far.
    fill: usize,
    crcs: Vec<u32>,
    /// False once a write went behind the end: the file is then read back.
    in_order: bool,
}

impl Summer {
    pub fn new(name: String) -> Summer {
        Summer { name, size: 0, crc: 0, fill: 0, crcs: Vec::new(), in_order: true }
    }

    /// `data` was written at `offset`; a gap before it reads as zeros.
    pub fn wrote(&mut self, offset: u64, data: &[u8]) {
        if !self.in_order || offset < self.size {
            self.in_order = false;
            return;
        }
        const ZEROS: [u8; 4096] = [0; 4096];
        let mut gap = offset - self.size;
        while gap > 0 {
            if self.fill == 0 && gap >= BLOCK as u64 {
                // A whole block of a hole: its checksum is known.
                self.crcs.push(zero_block_crc());
                self.size += BLOCK as u64;
                gap -= BLOCK as u64;
                continue;
            }
            let n = gap.min(ZEROS.len() as u64).min((BLOCK - self.fill) as u64) as usize;
            self.feed(&ZEROS[..n]);
            gap -= n as u64;
        }
        self.feed(data);
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let n = (BLOCK - self.fill).min(data.len());
            self.crc = crc32c::crc32c_append(self.crc, &data[..n]);
            self.fill += n;
            self.size += n as u64;
            data = &data[n..];
            if self.fill == BLOCK {
                self.crcs.push(self.crc);
                (self.crc, self.fill) = (0, 0);
            }
        }
    }

    pub fn in_order(&self) -> bool {
        self.in_order
    }

    /// Bytes fed so far (the end of the file, while in order).
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn finish(mut self) -> pb::FileSum {
        if self.fill > 0 {
            self.crcs.push(self.crc);
        }
        pb::FileSum { name: self.name, size: self.size, block: BLOCK as u32, crc32c: self.crcs }
    }
}

/// The CRC32C of a block of zeros.
fn zero_block_crc() -> u32 {
    static CRC: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *CRC.get_or_init(|| crc32c::crc32c(&vec![0u8; BLOCK]))
}

/// The checksums of a whole file, read from the start (holes are not read).
pub fn of_file(name: &str, f: &File, path: &Path) -> Result<pb::FileSum, ImageError> {
    let mut s = Summer::new(name.to_string());
    let mut buf = vec![0u8; BLOCK];
    let len = f.metadata().map_err(|source| ImageError::Io { path: path.into(), source })?.len();
    let mut off = 0u64;
    while off < len {
        // From the next data on; what lies between is a hole, fed as zeros.
        let data = crate::sys::fd::next_data(f, off).unwrap_or(off).min(len);
        let at = if data >= off + BLOCK as u64 { data - (data - off) % BLOCK as u64 } else { off };
        let want = ((len - at) as usize).min(BLOCK);
        let n = f.read_at(&mut buf[..want], at).map_err(|source| ImageError::Io { path: path.into(), source })?;
        if n == 0 {
            break;
        }
        s.wrote(at, &buf[..n]);
        off = at + n as u64;
    }
    Ok(s.finish())
}

/// The raw data files of a directory, by name, sorted.
pub fn raw_files(dir: &ImageDir) -> Result<Vec<String>, ImageError> {
    dir.names(false)
}

/// Checks one file against its checksums; the error names the first bad block.
pub fn verify(dir: &ImageDir, sum: &pb::FileSum) -> Result<(), ImageError> {
    let path = dir.path().join(&sum.name);
    let corrupt = |detail: String| ImageError::Corrupt { path: path.clone(), detail };
    let kind = ImageKind::from_file_name(&sum.name).filter(|k| k.tag().is_none());
    if kind.is_none() || sum.name.contains('/') {
        return Err(corrupt(format!("sums.img names {:?}, which is not a raw data file", sum.name)));
    }
    let block = sum.block as usize;
    if block != BLOCK || sum.crc32c.len() as u64 != sum.size.div_ceil(block as u64) {
        return Err(corrupt(format!(
            "sums.img has no well-formed checksums for it ({} of {block} bytes)",
            sum.crc32c.len()
        )));
    }
    let f = dir.open_file(&sum.name)?;
    let md = f.metadata().map_err(|source| ImageError::Io { path: path.clone(), source })?;
    if !md.is_file() {
        return Err(corrupt("not a regular file".into()));
    }
    if md.len() != sum.size {
        return Err(corrupt(format!("{} bytes, but {} were written", md.len(), sum.size)));
    }
    let mut buf = vec![0u8; block];
    // Holes (a sparse shared memory object) are not read: their blocks are zeros.
    let mut data_from = 0u64;
    for (i, want) in sum.crc32c.iter().enumerate() {
        let start = i as u64 * block as u64;
        let n = (sum.size - start).min(block as u64) as usize;
        if data_from <= start {
            data_from = crate::sys::fd::next_data(&f, start).unwrap_or(start);
        }
        let got = if n == block && data_from >= start + n as u64 {
            zero_block_crc()
        } else {
            f.read_exact_at(&mut buf[..n], start).map_err(|source| ImageError::Io { path: path.clone(), source })?;
            crc32c::crc32c(&buf[..n])
        };
        if got != *want {
            return Err(corrupt(format!(
                "bytes {start:#x}..{:#x} do not match their checksum (CRC32C {got:08x}, written {want:08x})",
                start + n as u64
            )));
        }
    }
    Ok(())
}

/// Checks a checkpoint's raw data files: every file it needs (`required`, by
/// name) that is there has checksums, every file the checksums name is there and
/// matches them. Other raw files (left by an older checkpoint) are not read.
pub fn verify_all(dir: &ImageDir, sums: &pb::Sums, required: &[String]) -> Result<(), ImageError> {
    let mut listed = std::collections::HashSet::new();
    for s in &sums.files {
        if !listed.insert(s.name.as_str()) {
            let detail = format!("sums.img lists {} twice", s.name);
            return Err(ImageError::Corrupt { path: dir.file(ImageKind::Sums, None), detail });
        }
    }
    let present: std::collections::HashSet<String> = raw_files(dir)?.into_iter().collect();
    if let Some(name) = required.iter().find(|n| present.contains(*n) && !listed.contains(n.as_str())) {
        let detail = "it has no checksum in sums.img".to_string();
        return Err(ImageError::Corrupt { path: dir.path().join(name), detail });
    }
    sums.files.iter().try_for_each(|s| verify(dir, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_gaps_and_order() {
        let data: Vec<u8> = (0..BLOCK * 2 + 100).map(|i| (i * 7) as u8).collect();
        let mut a = Summer::new("pages-1.img".into());
        a.wrote(0, &data[..1000]);
        a.wrote(1000, &data[1000..]);
        let a = a.finish();
        assert_eq!(a.size, data.len() as u64);
        assert_eq!(a.crc32c.len(), 3);
        assert_eq!(a.crc32c[1], crc32c::crc32c(&data[BLOCK..2 * BLOCK]));
        // A gap counts as zeros, as a sparse file reads.
        let mut b = Summer::new("shmem-1.img".into());
        b.wrote(4096, &[1, 2, 3]);
        let mut want = vec![0u8; 4096];
        want.extend_from_slice(&[1, 2, 3]);
        assert_eq!(b.finish().crc32c, vec![crc32c::crc32c(&want)]);
        // A gap of whole blocks takes the zero block's checksum without feeding it.
        let mut d = Summer::new("shmem-3.img".into());
        d.wrote(2 * BLOCK as u64 + 10, &[7]);
        let mut e = Summer::new("shmem-3.img".into());
        e.wrote(0, &vec![0u8; 2 * BLOCK + 10]);
        e.wrote(2 * BLOCK as u64 + 10, &[7]);
        assert_eq!(d.finish().crc32c, e.finish().crc32c);
        let mut c = Summer::new("shmem-2.img".into());
        c.wrote(4096, &[1]);
        c.wrote(0, &[1]);
        assert!(!c.in_order());
    }
}
