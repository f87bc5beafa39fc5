//! The restore child: clone3 puts a copy of ccr at the saved PID; before ccr seizes
//! it, the copy sets up what is easiest done from inside — the fd table, cwd, umask —
//! maps the trampoline, reports, and blocks in read() on a pipe.
//!
//! Report on the status pipe: "OK", trampoline address (u64), then the numbers of the
//! three fds ccr's own plumbing still holds in the child (pages, status, go: i32 each);
//! or "ER" and an error text.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::error::Result;
use crate::image::pb::{self, FdKind};
use crate::restore::{RestoreCtx, RestoreError, TaskImages};
use crate::sys::{files, process, trampoline, SysError, SysResult};

pub struct Spawned {
    pub trampoline: u64,
    /// The child's fd of pages-PID.img.
    pub pages_fd: i32,
    /// fds of ccr's plumbing in the child, closed before it runs.
    pub plumbing: Vec<i32>,
    /// Held open until the child is seized: its read() blocks on this pipe.
    _go: OwnedFd,
}

struct Plan {
    fds: Vec<pb::Fd>,
    cwd: String,
    root: String,
    umask: u32,
    candidates: Vec<u64>,
    base: RawFd,
}

pub fn spawn(ctx: &mut RestoreCtx<'_>, img: &TaskImages, child_of_caller: bool) -> Result<Spawned> {
    let pid = img.pid;
    let pages =
        std::fs::File::open(&img.pages_path).map_err(SysError::path("open", &img.pages_path))?;
    let mut vmas: Vec<(u64, u64)> = img.mm.vmas.iter().map(|v| (v.start, v.end)).collect();
    vmas.sort_unstable();
    let max_fd = img.fds.fds.iter().map(|f| f.fd).max().unwrap_or(2);
    let plan = Plan {
        fds: img.fds.fds.clone(),
        cwd: img.core.cwd.clone(),
        root: img.core.root.clone(),
        umask: img.core.umask,
        candidates: trampoline::candidates(&vmas, 16),
        base: (max_fd + 1).max(3),
    };
    let cloexec = nix::fcntl::OFlag::O_CLOEXEC;
    let (st_rd, st_wr) = nix::unistd::pipe2(cloexec).map_err(|errno| SysError::Call {
        call: "pipe2",
        errno,
    })?;
    let (go_rd, go_wr) = nix::unistd::pipe2(cloexec).map_err(|errno| SysError::Call {
        call: "pipe2",
        errno,
    })?;
    let (st_w, go_r, pg) = (st_wr.as_raw_fd(), go_rd.as_raw_fd(), pages.as_raw_fd());
    let child = move || child_main(&plan, st_w, go_r, pg);
    let spawned = process::spawn_with_pid(Some(pid), child_of_caller, child);
    drop((st_wr, go_rd, pages));
    let got = spawned?;
    if got != pid {
        let _ = process::kill(got, libc::SIGKILL);
        return Err(RestoreError::Child {
            pid,
            detail: format!("clone3 gave pid {got}"),
        }
        .into());
    }
    let mut st = std::fs::File::from(st_rd);
    let mut head = [0u8; 2 + 8 + 12];
    let fail = |detail: String| -> crate::Error {
        let _ = process::kill(pid, libc::SIGKILL);
        RestoreError::Child { pid, detail }.into()
    };
    let mut got_head = 0;
    while got_head < 2 {
        match st.read(&mut head[got_head..]) {
            Ok(0) => return Err(fail("exited before reporting".into())),
            Ok(n) => got_head += n,
            Err(e) => return Err(fail(format!("reading its report: {e}"))),
        }
    }
    if &head[..2] != b"OK" {
        let mut rest = Vec::new();
        let _ = st.read_to_end(&mut rest);
        let mut text = head[2..got_head].to_vec();
        text.extend(rest);
        return Err(fail(String::from_utf8_lossy(&text).into_owned()));
    }
    if got_head < head.len() {
        st.read_exact(&mut head[got_head..])
            .map_err(|e| fail(format!("short report: {e}")))?;
    }
    let i32_at = |o: usize| i32::from_le_bytes(head[o..o + 4].try_into().expect("4 bytes"));
    let tramp = u64::from_le_bytes(head[2..10].try_into().expect("8 bytes"));
    crate::debug!(
        ctx.log,
        "pid {pid}: child reported, fds pages {} status {} go {}",
        i32_at(10),
        i32_at(14),
        i32_at(18)
    );
    Ok(Spawned {
        trampoline: tramp,
        pages_fd: i32_at(10),
        plumbing: vec![i32_at(10), i32_at(14), i32_at(18)],
        _go: go_wr,
    })
}

/// Runs in the child. Returns only on failure (the exit code).
fn child_main(plan: &Plan, st: RawFd, go: RawFd, pages: RawFd) -> i32 {
    let mut status = st;
    let r = (|| -> SysResult<(u64, [RawFd; 3])> {
        files::ensure_nofile(plan.base as u64 + 8)?;
        let keep = [
            files::dup_at_least(pages, plan.base)?,
            files::dup_at_least(st, plan.base)?,
            files::dup_at_least(go, plan.base)?,
        ];
        status = keep[1];
        let mut sorted = keep;
        sorted.sort_unstable();
        files::close_range(0, plan.base as u32 - 1);
        let mut from = plan.base as u32;
        for k in sorted {
            files::close_range(from, (k as u32).saturating_sub(1));
            from = k as u32 + 1;
        }
        files::close_range(from, u32::MAX);
        for f in &plan.fds {
            open_fd(f)?;
        }
        if !plan.root.is_empty() && plan.root != "/" {
            files::chroot(&plan.root)?;
        }
        files::chdir(&plan.cwd)?;
        files::umask(plan.umask);
        let tramp = trampoline::map_in_self(&plan.candidates)?;
        Ok((tramp, keep))
    })();
    match r {
        Ok((tramp, keep)) => {
            let mut msg = b"OK".to_vec();
            msg.extend_from_slice(&tramp.to_le_bytes());
            for k in keep {
                msg.extend_from_slice(&k.to_le_bytes());
            }
            files::write_all(status, &msg);
            // ccr seizes us inside this read; if it returns, ccr is gone.
            files::wait_readable(keep[2]);
            1
        }
        Err(e) => {
            let mut msg = b"ER".to_vec();
            msg.extend_from_slice(e.to_string().as_bytes());
            files::write_all(status, &msg);
            1
        }
    }
}

/// Reopens one saved fd at its number, with its flags and position.
fn open_fd(f: &pb::Fd) -> SysResult<()> {
    if let Some(of) = f.dup_of {
        let fd = files::dup_at_least(of, 0)?;
        return files::move_fd(fd, f.fd, f.cloexec);
    }
    let flags = f.flags as i32 | libc::O_NOCTTY;
    let fd = files::open_raw(&f.path, flags, 0)?;
    files::move_fd(fd, f.fd, f.cloexec)?;
    let seekable = f.kind == FdKind::FdReg as i32 || f.kind == FdKind::FdDir as i32;
    if seekable && f.pos != 0 && flags & libc::O_PATH == 0 {
        files::lseek(f.fd, f.pos)?;
    }
    Ok(())
}
