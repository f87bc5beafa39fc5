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
    /// Leases seen on a description but not yet on an fd of the task that took
    /// them: file id → (pid, what the lease is).
    unowned_leases: std::collections::HashMap<u32, (i32, String)>,
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
            let mut p = FdProbe::new(
                pid,
                fd,
                proc::fd::target(pid, fd)?,
                proc::fd::metadata(pid, fd)?,
                proc::fdinfo::read(pid, fd)?,
            );
            p.external = super::external::key_of(&cx.state.externals, &p.md);
            let cloexec = p.info.flags & libc::O_CLOEXEC as u32 != 0;
            let locks = lock::dump(&p)?;
            let known = self.known(&p)?;
            let file_id = known.unwrap_or(self.files.len() as u32 + 1);
            // The task's POSIX locks show on each of its fds of the description, a
            // lease on every holder's: each goes once, a lease to the task that took it.
            let mut task_locks = Vec::new();
            if posix_seen.insert(file_id) {
                task_locks = locks.posix.clone();
                for (taker, l) in &locks.leases {
                    if *taker == pid {
                        task_locks.push(*l);
                        self.unowned_leases.remove(&file_id);
                    } else if known.is_none() {
                        self.unowned_leases.insert(file_id, (*taker, lock::describe(l)));
                    }
                }
            }
            if let Some(file_id) = known {
                fds.push(pb::Fd { fd, file_id, cloexec, task_locks, owner: None });
                continue;
            }
            let Some(kind) = KINDS.iter().find(|k| k.claims(&p)) else {
                return Err(p.refuse(&unclaimed(&p)));
            };
            let id = file_id;
            let state = kind.dump(cx, &p, id)?;
            crate::debug!(cx.log, "pid {pid} fd {fd}: file {id}, {} {} pos {}", kind.name(), p.target, p.info.pos);
            for l in locks.description.iter().chain(&task_locks) {
                crate::debug!(cx.log, "pid {pid} fd {fd}: holds a {}", lock::describe(l));
            }
            let flags = p.info.flags & !(libc::O_CLOEXEC as u32);
            self.files.push(FileDesc { id, flags, owner_pid: pid, locks: locks.description, state });
            self.holders.push((pid, fd));
            self.inodes.push((p.md.dev(), p.md.ino()));
            fds.push(pb::Fd { fd, file_id: id, cloexec, task_locks, owner: None });
        }
        Ok(fds)
    }

    /// The checks each kind makes over the whole table; a lease whose taker holds
    /// no fd of it in the tree is refused (its break signal would go nowhere).
    pub fn finish(&self) -> Result<()> {
        if let Some((id, (pid, what))) = self.unowned_leases.iter().next() {
            let (hp, hf) = self.holder(*id);
            return Err(crate::dump::DumpError::UnsupportedFd {
                pid: hp,
                fd: hf,
                kind: format!("file with a {what} taken by pid {pid}, which holds no fd of it in the tree"),
                path: String::new(),
            }
            .into());
        }
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
