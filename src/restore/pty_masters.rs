//! The new masters of a restored tree's ptys whose masters were outside it (a
//! container's /dev/tty1..N, bound from its own devpts, whose masters the
//! manager held, as lxc-start does). The caller gets them through a function of
//! its own (`ccr_opts_set_pty_master_fn`), called once per pty with its key (the
//! slave's path in the tree) and the master, or over the unix socket it names
//! (`--pty-master-socket`, `ccr_opts_set_pty_master_socket`): one SOCK_SEQPACKET
//! message per pty, the key with the master attached. Without either, a keeper
//! process holds them, so the ttys' users get no hangup: it appends what they
//! write to /run/ccr/ptys-ROOT/KEY.out (KEY with '/' as '_') and exits when the
//! root does.
//!
//! A restore run in a helper process (the C ABI's) calls the caller's function
//! from the caller's process, on the calling thread: the helper sends each master
//! over a socket pair ([`remote`]) and waits for the value [`answer`] replies.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use super::RestoreError;
use crate::error::{Error, Result};
use crate::log::Log;
use crate::opts::{Callback, RestoreOpts};
use crate::sys::{fd, fdpass, process, SysError};

/// The caller's taker of new masters: (key, master) → 0 when it took the master;
/// anything else fails the restore.
pub type PtyMasterFn = dyn Fn(&str, OwnedFd) -> Result<i32> + Send + Sync;
pub type PtyMasterCallback = Callback<PtyMasterFn>;

impl PtyMasterCallback {
    pub fn new(f: impl Fn(&str, OwnedFd) -> Result<i32> + Send + Sync + 'static) -> Self {
        Callback(Arc::new(f))
    }
}

/// Hands `masters` (key, fd) over: to the caller's function, to the socket, or to
/// a keeper.
pub fn deliver(log: &mut Log, opts: &RestoreOpts, root: i32, masters: Vec<(String, OwnedFd)>) -> Result<()> {
    if masters.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = masters.iter().map(|(k, _)| k.clone()).collect();
    let keys = keys.join(", ");
    if let Some(cb) = &opts.pty_master_callback {
        for (key, m) in masters {
            let code = (cb.0)(&key, m)?;
            if code != 0 {
                return Err(RestoreError::PtyMasterRefused { key, code }.into());
            }
        }
        crate::info!(log, "new pty masters of {keys} handed to the caller's function");
        return Ok(());
    }
    match opts.pty_master_socket.as_deref() {
        Some(path) => {
            let to = fdpass::connect_seqpacket(path)?;
            for (key, m) in &masters {
                fdpass::send(to.as_fd(), key.as_bytes(), m.as_fd())?;
            }
            crate::info!(log, "new pty masters of {keys} sent to {}", path.display());
        }
        None => {
            let dir = crate::holder::socket_dir().join(format!("ptys-{root}"));
            let keeper = keep(root, &dir, &masters)?;
            crate::info!(
                log,
                "new pty masters of {keys} kept by pid {keeper}: what the ttys write is in {}",
                dir.display()
            );
        }
    }
    Ok(())
}

/// The callback a helper process calls in place of the caller's: it sends the
/// master over `chan` (one SOCK_SEQPACKET message, the key with the fd) and
/// returns the value the caller's side replies.
pub fn remote(chan: OwnedFd) -> PtyMasterCallback {
    PtyMasterCallback::new(move |key, master| {
        fdpass::send(chan.as_fd(), key.as_bytes(), master.as_fd())?;
        drop(master);
        let mut reply = [0u8; 4];
        match fd::read_some(chan.as_fd(), &mut reply) {
            Some(4) => Ok(i32::from_le_bytes(reply)),
            _ => Err(SysError::Call {
                call: "read(the caller's answer for a pty master)",
                errno: nix::errno::Errno::EPIPE,
            }
            .into()),
        }
    })
}

/// The caller's side of [`remote`]: calls `cb` with one message's key and master,
/// returns the reply (the value; -EIO when the function itself failed).
pub fn answer(cb: &PtyMasterCallback, data: &[u8], master: OwnedFd) -> [u8; 4] {
    let key = String::from_utf8_lossy(data);
    let code = (cb.0)(&key, master).unwrap_or(-libc::EIO);
    code.to_le_bytes()
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
