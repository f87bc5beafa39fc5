//! The dump's table of open file descriptions: an id for each, found once however
//! many fds and tasks share it (kcmp), and each task's fd table pointing into it.

use std::os::unix::fs::MetadataExt;

use super::{lock, DumpCx, FdProbe, FileDesc, KINDS};
use crate::error::Result;
use crate::image::pb;
use crate::sys::{proc, process};

#[derive(Default)]
pub struct FileTable {
    pub files: Vec<FileDesc>,
    /// For each file (same index), one (pid, fd) that holds it, for kcmp and errors.
    holders: Vec<(i32, i32)>,
    /// (dev, ino) of each file (same index), to find candidates for kcmp quickly.
    inodes: Vec<(u64, u64)>,
}

impl FileTable {
    /// One (pid, fd) holding file `id`.
    pub fn holder(&self, id: u32) -> (i32, i32) {
        self.holders[(id - 1) as usize]
    }

    /// The open description behind fd `fd` of `pid`, if an earlier fd shares it.
    fn known(&self, p: &FdProbe) -> Result<Option<u32>> {
        let key = (p.md.dev(), p.md.ino());
        for (i, f) in self.files.iter().enumerate() {
            if self.inodes[i] == key {
                let (hp, hf) = self.holders[i];
                if process::same_file(hp, hf, p.pid, p.fd)? {
                    return Ok(Some(f.id));
                }
            }
        }
        Ok(None)
    }

    /// Collects the fd table of `pid`, adding the descriptions met for the first time.
    pub fn collect_task(&mut self, cx: &mut DumpCx<'_>, pid: i32) -> Result<Vec<pb::Fd>> {
        let mut fds = Vec::new();
        let mut posix_seen = std::collections::HashSet::new();
        for fd in proc::fd::list(pid)? {
            let p = FdProbe {
                pid,
                fd,
                target: proc::fd::target(pid, fd)?,
                md: proc::fd::metadata(pid, fd)?,
                info: proc::fdinfo::read(pid, fd)?,
            };
            let cloexec = p.info.flags & libc::O_CLOEXEC as u32 != 0;
            let locks = lock::dump(&p)?;
            // The task's POSIX locks show on each of its fds of the description.
            let mut first_of = |file_id: u32| if posix_seen.insert(file_id) { locks.posix.clone() } else { Vec::new() };
            if let Some(file_id) = self.known(&p)? {
                fds.push(pb::Fd { fd, file_id, cloexec, posix_locks: first_of(file_id) });
                continue;
            }
            let Some(kind) = KINDS.iter().find(|k| k.claims(&p)) else {
                return Err(p.refuse(&unclaimed(&p)));
            };
            let id = self.files.len() as u32 + 1;
            let state = kind.dump(cx, &p, id)?;
            crate::debug!(cx.log, "pid {pid} fd {fd}: file {id}, {} {} pos {}", kind.name(), p.target, p.info.pos);
            for l in locks.description.iter().chain(&locks.posix) {
                crate::debug!(cx.log, "pid {pid} fd {fd}: holds a {}", lock::describe(l));
            }
            let flags = p.info.flags & !(libc::O_CLOEXEC as u32);
            self.files.push(FileDesc { id, flags, owner_pid: pid, locks: locks.description, state });
            self.holders.push((pid, fd));
            self.inodes.push((p.md.dev(), p.md.ino()));
            fds.push(pb::Fd { fd, file_id: id, cloexec, posix_locks: first_of(id) });
        }
        Ok(fds)
    }

    /// The checks each kind makes over the whole table.
    pub fn finish(&self) -> Result<()> {
        for k in KINDS {
            k.finish_dump(self)?;
        }
        Ok(())
    }
}

/// What an fd no kind claims is, for the refusal.
fn unclaimed(p: &FdProbe) -> String {
    use std::os::unix::fs::FileTypeExt;
    let ft = p.md.file_type();
    if let Some(k) = p.anon_inode() {
        format!("anonymous inode {k}")
    } else if ft.is_block_device() {
        "block device".into()
    } else if p.target.ends_with(" (deleted)") {
        "deleted file".into()
    } else if !p.target.starts_with('/') {
        "file without a path".into()
    } else {
        "file of unknown type".into()
    }
}
