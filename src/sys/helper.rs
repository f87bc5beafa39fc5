//! Runs one engine operation in a forked helper process and brings its result back.
//!
//! Why: ptrace belongs to the thread that attached, and a library caller (liblxc)
//! is multi-threaded, runs an event loop and reaps children with waitpid(-1). The
//! helper is single-threaded, owns its tracees and dies with its work. After the fork
//! the helper only uses locks it created itself or that glibc resets in fork()
//! (malloc); the engine keeps no process-global state.
//!
//! Wire format on the result pipe: i32 value, i32 errno (0 = success), then the
//! error text.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::error::{Error, Result};
use crate::sys::wait::Status;
use crate::sys::{fd, fdpass, Errno, SysError};

/// Forks, runs `f` in the child, returns what it returned (or its error) in the parent.
pub fn run<F: FnOnce() -> Result<i32>>(f: F) -> Result<i32> {
    run_serving(f, None)
}

/// A channel on which the helper asks the caller's process for something while it
/// works (a SOCK_SEQPACKET end; the helper holds the other): each message (bytes
/// and one fd) is answered with what `answer` returns.
pub struct Service<'a> {
    pub chan: OwnedFd,
    pub answer: &'a mut dyn FnMut(&[u8], OwnedFd) -> [u8; 4],
}

/// As [`run`], answering the helper's messages on `service` on the calling thread
/// until the helper finishes.
pub fn run_serving<F: FnOnce() -> Result<i32>>(f: F, mut service: Option<Service<'_>>) -> Result<i32> {
    let (rd, wr) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|errno| SysError::Call { call: "pipe2", errno })?;
    let parent = std::process::id() as i32;
    // SAFETY: the child runs only `f` and then _exit()s; it never returns into the
    // caller's code, so no state of the caller's other threads is used after fork.
    let pid = match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { child }) => child,
        Ok(nix::unistd::ForkResult::Child) => {
            drop(rd);
            // The caller's end: gone with the caller, so a helper waiting on it
            // is told.
            drop(service.take());
            child_main(wr, parent, f)
        }
        Err(errno) => return Err(SysError::Call { call: "fork", errno }.into()),
    };
    drop(wr);
    crate::sys::interrupt::forward_to(pid.as_raw());
    if let Some(s) = service.as_mut() {
        serve(rd.as_fd(), s);
    }
    let mut buf = Vec::new();
    let read = std::fs::File::from(rd).read_to_end(&mut buf);
    crate::sys::interrupt::forward_to(0);
    // The caller may reap our helper first (waitpid(-1)); ECHILD is then fine.
    let status = crate::sys::wait::reap(pid.as_raw());
    if let Err(e) = read {
        return Err(SysError::Call {
            call: "read helper result",
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        }
        .into());
    }
    if buf.len() < 8 {
        return Err(Error::Helper {
            errno: libc::EPIPE,
            message: match status {
                Ok(Some(Status::Signaled(sig))) => {
                    let name = nix::sys::signal::Signal::try_from(sig).map_or("a signal", |s| s.as_str());
                    format!("ccr's helper process {pid} was killed by {name} before it finished")
                }
                Ok(Some(Status::Exited(code))) => {
                    format!("ccr's helper process {pid} exited with status {code} without a result")
                }
                _ => format!("ccr's helper process {pid} ended without a result"),
            },
        });
    }
    let value = i32::from_le_bytes(buf[0..4].try_into().expect("4 bytes"));
    let errno = i32::from_le_bytes(buf[4..8].try_into().expect("4 bytes"));
    if errno == 0 {
        Ok(value)
    } else {
        Err(Error::Helper { errno, message: String::from_utf8_lossy(&buf[8..]).into_owned() })
    }
}

/// Answers messages on `s.chan` until `result` is readable (the helper finished)
/// or the channel ends.
fn serve(result: BorrowedFd<'_>, s: &mut Service<'_>) {
    let mut open = true;
    loop {
        let others = if open { vec![s.chan.as_fd()] } else { Vec::new() };
        let Some(ready) = fd::poll_in(result, &others, -1) else { return };
        if ready.is_empty() {
            continue;
        }
        match fdpass::recv(s.chan.as_fd()) {
            Ok(Some((data, got))) => {
                let reply = (s.answer)(&data, got);
                if fd::write_all(s.chan.as_fd(), &reply).is_err() {
                    open = false;
                }
            }
            _ => open = false,
        }
    }
}

fn child_main<F: FnOnce() -> Result<i32>>(wr: OwnedFd, parent: i32, f: F) -> ! {
    // If the caller dies, the helper is told, finishes or undoes its work at the
    // next safe point and exits: dying at once could leave its tracees changed.
    crate::sys::interrupt::stop_when_parent_dies(parent);
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let (value, errno, msg) = match out {
        Ok(Ok(v)) => (v, 0, String::new()),
        Ok(Err(e)) => (-1, e.errno().max(1), e.to_string()),
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            (-1, libc::EFAULT, format!("internal error (panic): {what}"))
        }
    };
    let mut buf = Vec::with_capacity(8 + msg.len());
    buf.extend_from_slice(&value.to_le_bytes());
    buf.extend_from_slice(&errno.to_le_bytes());
    buf.extend_from_slice(msg.as_bytes());
    let mut f = std::fs::File::from(wr);
    let _ = f.write_all(&buf);
    // The caller's atexit handlers belong to the caller's process image, not to
    // this helper.
    crate::sys::process::exit_now(0)
}
