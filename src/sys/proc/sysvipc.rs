//! /proc/sysvipc/{shm,sem,msg}: every SysV object of the reader's IPC namespace.

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

/// A semaphore set or a message queue: the columns both tables share.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpcObject {
    pub key: i32,
    pub id: i32,
    pub mode: u32,
    /// Semaphores in the set; messages in the queue.
    pub count: u64,
    pub uid: u32,
    pub gid: u32,
}

/// Parses /proc/sysvipc/sem (`count` = nsems) or /proc/sysvipc/msg (`count` =
/// qnum); the uid and gid columns sit at `uid_col`.
fn parse_objects(text: &str, count_col: usize, uid_col: usize) -> Vec<IpcObject> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(IpcObject {
                key: f.first()?.parse::<i64>().ok()? as i32,
                id: f.get(1)?.parse().ok()?,
                mode: u32::from_str_radix(f.get(2)?, 8).ok()?,
                count: f.get(count_col)?.parse().ok()?,
                uid: f.get(uid_col)?.parse().ok()?,
                gid: f.get(uid_col + 1)?.parse().ok()?,
            })
        })
        .collect()
}

pub fn parse_sem(text: &str) -> Vec<IpcObject> {
    parse_objects(text, 3, 4)
}

pub fn parse_msg(text: &str) -> Vec<IpcObject> {
    parse_objects(text, 4, 7)
}

pub fn sem() -> SysResult<Vec<IpcObject>> {
    Ok(parse_sem(&super::read_text(&super::global("sysvipc/sem"))?))
}

pub fn msg() -> SysResult<Vec<IpcObject>> {
    Ok(parse_msg(&super::read_text(&super::global("sysvipc/msg"))?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn table() {
        let t = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n      1234      32769  1600                 65536  100   101      2     0     0     0     0 0 0 0 4096 0\n";
        let s = super::parse_shm(t);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].key, s[0].id, s[0].mode, s[0].size, s[0].nattch), (1234, 32769, 0o1600, 65536, 2));
        let sem = "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n 1667527217          0   600          1     0     0     0     0          0 1764650000\n";
        let s = super::parse_sem(sem);
        assert_eq!((s[0].key, s[0].id, s[0].mode, s[0].count, s[0].uid), (1667527217, 0, 0o600, 1, 0));
        let msg = "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n         7          3   640           32          2   100     0  1000  1001     0     0 1 0 2\n";
        let m = super::parse_msg(msg);
        assert_eq!((m[0].id, m[0].mode, m[0].count, m[0].uid, m[0].gid), (3, 0o640, 2, 1000, 1001));
    }
}
