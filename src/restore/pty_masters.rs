//! The new masters of a restored tree's ptys whose masters were outside it (a
//! container's /dev/tty1..N, bound from its own devpts, whose masters the
//! manager held, as lxc-start does). The caller gets them over the unix socket it
//! names (`--pty-master-socket`, `ccr_opts_set_pty_master_socket`): one
//! SOCK_SEQPACKET message per pty, its key (the slave's path in the tree) with
//! the master attached. Without one, a keeper process holds them, so the ttys'
//! users get no hangup: it appends what they write to
//! /run/ccr/ptys-ROOT/KEY.out (KEY with '/' as '_') and exits when the root does.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::log::Log;
use crate::sys::{fd, fdpass, process};

/// Hands `masters` (key, fd) over: to the socket at `socket`, or to a keeper.
pub fn deliver(log: &mut Log, socket: Option<&Path>, root: i32, masters: Vec<(String, OwnedFd)>) -> Result<()> {
    if masters.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = masters.iter().map(|(k, _)| k.as_str()).collect();
    match socket {
        Some(path) => {
            let to = fdpass::connect_seqpacket(path)?;
            for (key, m) in &masters {
                fdpass::send(to.as_fd(), key.as_bytes(), m.as_fd())?;
            }
            crate::info!(log, "new pty masters of {} sent to {}", keys.join(", "), path.display());
        }
        None => {
            let dir = crate::holder::socket_dir().join(format!("ptys-{root}"));
            let keeper = keep(root, &dir, &masters)?;
            crate::info!(
                log,
                "new pty masters of {} kept by pid {keeper}: what the ttys write is in {}",
                keys.join(", "),
                dir.display()
            );
        }
    }
    Ok(())
}

/// The file a keeper appends what pty `key` writes to.
pub fn output_file(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{}.out", key.trim_start_matches('/').replace('/', "_")))
}

/// Starts a keeper of `masters` (double fork: nobody's child to reap, in a
/// session of its own); returns its pid.
fn keep(root: i32, dir: &Path, masters: &[(String, OwnedFd)]) -> Result<i32> {
    crate::image::make_private_dir(dir, "the pty keepers' directory")?;
    let mut files = Vec::new();
    for (key, _) in masters {
        let path = output_file(dir, key);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(crate::sys::SysError::path("open", path))?;
        files.push(f);
    }
    let pidfd = crate::sys::pidfd::open(root)?;
    let (rd, wr) = crate::sys::pipe::pipe()?;
    let first = process::spawn_with_pid(None, || {
        let _ = process::setsid();
        match process::spawn_with_pid(None, || {
            let mut keep: Vec<i32> = masters.iter().map(|(_, m)| m.as_raw_fd()).collect();
            keep.extend(files.iter().map(|f| f.as_raw_fd()));
            keep.push(pidfd.as_raw_fd());
            close_all_but(keep);
            let _ = std::env::set_current_dir("/");
            run(masters, &mut files, pidfd.as_fd());
            0
        }) {
            Ok(pid) => {
                let _ = fd::write_all(wr.as_fd(), &pid.to_le_bytes());
                0
            }
            Err(_) => 1,
        }
    })?;
    drop(wr);
    let _ = crate::sys::wait::reap(first);
    let mut pid = [0u8; 4];
    let got = std::io::Read::read(&mut std::fs::File::from(rd), &mut pid).unwrap_or(0);
    if got != 4 {
        return Err(Error::Helper { errno: libc::EPIPE, message: "the pty keeper did not start".into() });
    }
    Ok(i32::from_le_bytes(pid))
}

/// Closes every fd but `keep` (and stdio, pointed at /dev/null).
fn close_all_but(mut keep: Vec<i32>) {
    if let Ok(null) = fd::open(Path::new("/dev/null"), libc::O_RDWR, 0) {
        for n in 0..3 {
            let _ = fd::dup_to(null.as_fd(), n, false);
        }
    }
    keep.extend([0, 1, 2]);
    fd::close_all_but(keep);
}

/// The keeper: reads every master into its file until the root exits. A master
/// none of whose slaves is open (it reads end of file) is asked again each second.
fn run(masters: &[(String, OwnedFd)], files: &mut [std::fs::File], root: std::os::fd::BorrowedFd<'_>) {
    let mut buf = [0u8; 4096];
    let mut hung = vec![false; masters.len()];
    let mut retried = std::time::Instant::now();
    loop {
        if retried.elapsed() >= std::time::Duration::from_secs(1) {
            hung.fill(false);
            retried = std::time::Instant::now();
        }
        let live: Vec<usize> = (0..masters.len()).filter(|&i| !hung[i]).collect();
        let fds: Vec<_> = live.iter().map(|&i| masters[i].1.as_fd()).collect();
        let Some(ready) = fd::poll_in(root, &fds, 1000) else { return };
        for i in ready.into_iter().map(|j| live[j]) {
            match fd::read_some(masters[i].1.as_fd(), &mut buf) {
                Some(n) if n > 0 => {
                    let _ = files[i].write_all(&buf[..n]);
                }
                _ => hung[i] = true,
            }
        }
    }
}
