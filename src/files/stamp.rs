//! Whether a file restore opens or maps by path is the one that was dumped.
//!
//! The dump records a [`FileStamp`] — stat(2) of the file itself, reached through
//! /proc/PID/fd, map_files or exe, never through its path — for each regular file
//! opened by path, each mapped file and the executable. Restore stats what it
//! opened (the fd, so a rename in between cannot fool it) and refuses a file that
//! differs, naming the task, the fd or mapping address, the path and what differs.
//!
//! The rule:
//! - On the same filesystem (st_dev now is the dumped st_dev, and not an anonymous
//!   one, major 0, which a new tmpfs instance may reuse), the inode must be the
//!   same: a file put in its place (a reinstall, a package upgrade, an editor's
//!   save-by-rename) is another file, whatever it holds. A dev number that happens
//!   to be equal on another machine only makes the check stricter, never looser.
//! - Everywhere, size and mtime (to the nanosecond) stand for the contents: they
//!   catch the same inode rewritten in place, and on another filesystem (a
//!   migrated or copied root, where inode numbers mean nothing) they are all there
//!   is. Copies made with `cp -a` or `rsync -t` keep both.
//! - A character or block device is its type and device number (`rdev`); its
//!   node's inode and times are not the device's.
//! - Files of pseudo filesystems (/proc, /sys, cgroupfs, ...) get no stamp: the
//!   kernel makes their inodes anew and their size and times mean nothing. Images
//!   before format 2.3 have no stamps either; without one nothing is checked.
//!
//! What may differ:
//! - Mappings and the executable: nothing. A changed binary or library is never
//!   mapped silently: the pages the task copied from it would mix with another
//!   file's, and its code would jump into other code.
//! - A file opened read-only: nothing either. The task's offset and whatever it
//!   read or cached refer to the old contents.
//! - A file opened for writing at offsets: its mtime may have moved, its size not.
//!   A writable file is shared state others write too (the reason for file
//!   locks; a `>` of an empty file touches it without changing a byte), while its
//!   size is what the task's offset and its next write depend on.
//! - A file opened O_APPEND for writing (a log): it may have grown, and its mtime
//!   moved: another writer appending is normal in a migration, and the task's next
//!   write goes to the end as it would have. Shrunk, it was truncated or rotated
//!   (on the same filesystem rotation shows as a new inode anyway): refused.
//!
//! Not checked: deleted (ghost) files and memfds, whose contents come back from the
//! images; directories, whose entries change all the time; FIFOs, whose data is in
//! the pipe, not the file.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

pub use crate::image::pb::FileStamp;
use crate::sys::{fd, SysResult};

/// What may have changed since the dump (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum May {
    Nothing,
    /// mtime may have moved (a file opened for writing).
    BeWritten,
    /// Size may have grown and mtime moved (an O_APPEND writer's file).
    Grow,
}

pub fn of_metadata(md: &std::fs::Metadata) -> FileStamp {
    FileStamp {
        dev: md.dev(),
        ino: md.ino(),
        size: md.size(),
        mtime_sec: md.mtime(),
        mtime_nsec: md.mtime_nsec() as u32,
        mode: md.mode(),
        rdev: md.rdev(),
    }
}

pub fn of_stat(st: &libc::stat) -> FileStamp {
    FileStamp {
        dev: st.st_dev,
        ino: st.st_ino,
        size: st.st_size as u64,
        mtime_sec: st.st_mtime,
        mtime_nsec: st.st_mtime_nsec as u32,
        mode: st.st_mode,
        rdev: st.st_rdev,
    }
}

/// The stamps a dump takes, each filesystem asked once whether it is a pseudo
/// one, and each mapped file stamped once however many tasks map it.
#[derive(Default)]
pub struct Stamps {
    /// st_dev → on a pseudo filesystem.
    pseudo: std::collections::HashMap<u64, bool>,
    /// A mapping's (dev, ino) as maps shows it → the stamp of its file.
    mapped: std::collections::HashMap<(u64, u64), Option<FileStamp>>,
}

impl Stamps {
    /// The stamp of the file `link` leads to (a /proc link; `md` its stat when the
    /// caller has it already); None on a pseudo filesystem.
    pub fn take(&mut self, link: &Path, md: Option<&std::fs::Metadata>) -> SysResult<Option<FileStamp>> {
        let stated;
        let md = match md {
            Some(md) => md,
            None => {
                stated = fd::stat_path(link)?;
                &stated
            }
        };
        let pseudo = match self.pseudo.get(&md.dev()) {
            Some(&p) => p,
            None => *self.pseudo.entry(md.dev()).or_insert(fd::on_pseudo_fs(link)?),
        };
        Ok((!pseudo).then(|| of_metadata(md)))
    }

    /// The stamp of the file a mapping maps, `dev` and `ino` as maps shows them
    /// (`link`: its map_files link).
    pub fn of_mapping(&mut self, link: &Path, dev: u64, ino: u64) -> SysResult<Option<FileStamp>> {
        if let Some(s) = self.mapped.get(&(dev, ino)) {
            return Ok(*s);
        }
        let s = self.take(link, None)?;
        self.mapped.insert((dev, ino), s);
        Ok(s)
    }
}

fn kind(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "regular file",
        libc::S_IFDIR => "directory",
        libc::S_IFCHR => "character device",
        libc::S_IFBLK => "block device",
        libc::S_IFIFO => "FIFO",
        libc::S_IFSOCK => "socket",
        libc::S_IFLNK => "symbolic link",
        _ => "file of unknown type",
    }
}

fn dev_name(d: u64) -> String {
    format!("{}:{}", libc::major(d), libc::minor(d))
}

/// What differs between the file as dumped (`then`) and as opened now, by the rule
/// in the module doc; None when it is the file that was dumped.
pub fn differs(then: &FileStamp, now: &FileStamp, may: May) -> Option<String> {
    let (kt, kn) = (then.mode & libc::S_IFMT, now.mode & libc::S_IFMT);
    if kt != kn {
        return Some(format!("a {} now, a {} then", kind(now.mode), kind(then.mode)));
    }
    if kt == libc::S_IFCHR || kt == libc::S_IFBLK {
        return (now.rdev != then.rdev)
            .then(|| format!("device {} now, {} then", dev_name(now.rdev), dev_name(then.rdev)));
    }
    let mut what = Vec::new();
    // Anonymous devices (major 0: tmpfs, overlayfs, ...) are numbered per instance
    // and reused: a tmpfs of a restored mount namespace may get the number its
    // predecessor had, with inodes of its own.
    if now.dev == then.dev && libc::major(now.dev) != 0 && now.ino != then.ino {
        what.push(format!("inode {} now, {} then", now.ino, then.ino));
    }
    let size_ok = match may {
        May::Nothing | May::BeWritten => now.size == then.size,
        May::Grow => now.size >= then.size,
    };
    if !size_ok {
        what.push(format!("size {} now, {} then", now.size, then.size));
    }
    if may == May::Nothing && (now.mtime_sec, now.mtime_nsec) != (then.mtime_sec, then.mtime_nsec) {
        what.push(format!(
            "modified {}.{:09} now, {}.{:09} then",
            now.mtime_sec, now.mtime_nsec, then.mtime_sec, then.mtime_nsec
        ));
    }
    (!what.is_empty()).then(|| what.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dev: u64, ino: u64, size: u64, mtime: i64) -> FileStamp {
        FileStamp { dev, ino, size, mtime_sec: mtime, mtime_nsec: 5, mode: libc::S_IFREG | 0o644, rdev: 0 }
    }

    const DISK: u64 = 254 << 8;
    const OTHER_DISK: u64 = (254 << 8) | 1;

    #[test]
    fn the_rule() {
        let then = file(DISK, 100, 1200, 1000);
        assert_eq!(differs(&then, &then, May::Nothing), None);
        // Same filesystem, another inode: refused even with size and mtime kept.
        assert_eq!(differs(&then, &file(DISK, 101, 1200, 1000), May::Nothing).unwrap(), "inode 101 now, 100 then");
        // Another filesystem: inode numbers are not compared, contents are.
        assert_eq!(differs(&then, &file(OTHER_DISK, 7, 1200, 1000), May::Nothing), None);
        assert_eq!(differs(&then, &file(OTHER_DISK, 7, 1234, 1000), May::Nothing).unwrap(), "size 1234 now, 1200 then");
        // The same inode rewritten.
        let e = differs(&then, &file(DISK, 100, 1200, 1001), May::Nothing).unwrap();
        assert_eq!(e, "modified 1001.000000005 now, 1000.000000005 then");
        let mut ns = then;
        ns.mtime_nsec = 6;
        assert!(differs(&then, &ns, May::Nothing).is_some(), "nanoseconds count");
        // An appended-to file may grow, not shrink, not be another inode.
        assert_eq!(differs(&then, &file(DISK, 100, 5000, 2000), May::Grow), None);
        assert_eq!(differs(&then, &file(DISK, 100, 10, 2000), May::Grow).unwrap(), "size 10 now, 1200 then");
        assert!(differs(&then, &file(DISK, 101, 5000, 2000), May::Grow).is_some());
        // A file written at offsets may have been touched, not resized.
        assert_eq!(differs(&then, &file(DISK, 100, 1200, 2000), May::BeWritten), None);
        assert_eq!(differs(&then, &file(DISK, 100, 1300, 2000), May::BeWritten).unwrap(), "size 1300 now, 1200 then");
        assert!(differs(&then, &file(DISK, 101, 1200, 1000), May::BeWritten).is_some());
        // An anonymous device (a tmpfs) is numbered per instance: a new tmpfs with
        // the old number has inodes of its own; contents still count.
        let tmp = libc::makedev(0, 40);
        assert_eq!(differs(&file(tmp, 5, 1200, 1000), &file(tmp, 9, 1200, 1000), May::Nothing), None);
        assert!(differs(&file(tmp, 5, 1200, 1000), &file(tmp, 9, 1201, 1000), May::Nothing).is_some());
    }

    #[test]
    fn devices_and_types() {
        let chr = |rdev| FileStamp { mode: libc::S_IFCHR | 0o666, rdev, ino: rdev, ..Default::default() };
        let null = chr(libc::makedev(1, 3));
        assert_eq!(differs(&null, &FileStamp { ino: 99, ..null }, May::Nothing), None, "a device node's inode");
        assert_eq!(differs(&null, &chr(libc::makedev(1, 5)), May::Nothing).unwrap(), "device 1:5 now, 1:3 then");
        let e = differs(&file(8, 1, 0, 0), &null, May::Nothing).unwrap();
        assert_eq!(e, "a character device now, a regular file then");
    }
}

#[cfg(test)]
mod pseudo_tests {
    use super::*;

    #[test]
    fn pseudo_filesystems_get_no_stamp() {
        let mut st = Stamps::default();
        assert_eq!(st.take(Path::new("/proc/self/status"), None).unwrap(), None);
        assert_eq!(st.take(Path::new("/sys/kernel/mm/transparent_hugepage/enabled"), None).unwrap(), None);
        // Asked again, from what it learned of the filesystem.
        assert_eq!(st.take(Path::new("/proc/self/stat"), None).unwrap(), None);
        let me = std::env::current_exe().unwrap();
        let s = st.take(&me, None).unwrap().expect("a binary on a real filesystem has a stamp");
        assert_eq!(s.size, std::fs::metadata(&me).unwrap().len());
    }
}
