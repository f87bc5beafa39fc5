//! /proc/sysvipc/shm: every SysV shared memory segment of the IPC namespace.

use crate::sys::SysResult;

/// One segment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShmSegment {
    pub key: i32,
    pub id: i32,
    pub mode: u32,
    pub size: u64,
    /// The process that created it.
    pub cpid: i32,
    pub nattch: u64,
    pub uid: u32,
    pub gid: u32,
}

/// Parses the table. Perms are printed in octal.
pub fn parse_shm(text: &str) -> Vec<ShmSegment> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(ShmSegment {
                key: f.first()?.parse::<i64>().ok()? as i32,
                id: f.get(1)?.parse().ok()?,
                mode: u32::from_str_radix(f.get(2)?, 8).ok()?,
                size: f.get(3)?.parse().ok()?,
                cpid: f.get(4)?.parse().ok()?,
                nattch: f.get(6)?.parse().ok()?,
                uid: f.get(7)?.parse().ok()?,
                gid: f.get(8)?.parse().ok()?,
            })
        })
        .collect()
}

pub fn shm() -> SysResult<Vec<ShmSegment>> {
    Ok(parse_shm(&super::read_text(&super::global("sysvipc/shm"))?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn table() {
        let t = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n      1234      32769  1600                 65536  100   101      2     0     0     0     0 0 0 0 4096 0\n";
        let s = super::parse_shm(t);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].key, s[0].id, s[0].mode, s[0].size, s[0].nattch), (1234, 32769, 0o1600, 65536, 2));
    }
}
