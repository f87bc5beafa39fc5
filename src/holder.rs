//! The ptrace freeze of a bare PID. Freezing by ptrace must outlive the call that
//! froze: ptrace belongs to the thread that attached, and its tracees run again when
//! it exits. So `freeze` starts a holder: a detached ccr process that seizes the
//! tree and keeps it stopped, serving a unix socket at /run/ccr/freeze-PID.sock.
//! `thaw` tells it to let go; a `dump` of that PID is done by the holder itself, so
//! no task runs between the freeze and the dump.
//!
//! Protocol: one request per connection, lines: "thaw", or "dump" followed by
//! "key=value" option lines and an empty line. Reply: "ok", or "err ERRNO TEXT".

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::opts::Opts;
use crate::sys::{files, process, SysError};

fn socket_dir() -> PathBuf {
    if std::path::Path::new("/run").is_dir() {
        PathBuf::from("/run/ccr")
    } else {
        std::env::temp_dir().join("ccr")
    }
}

fn socket_path(pid: i32) -> PathBuf {
    socket_dir().join(format!("freeze-{pid}.sock"))
}

/// Whether a holder keeps `pid` frozen (its socket answers).
pub fn exists(pid: i32) -> bool {
    UnixStream::connect(socket_path(pid)).is_ok()
}

/// Sends one request and reads the reply.
fn request(pid: i32, req: &str) -> Result<()> {
    let path = socket_path(pid);
    let mut s = UnixStream::connect(&path).map_err(SysError::path("connect to the freeze holder", &path))?;
    s.write_all(req.as_bytes()).map_err(SysError::path("write to the freeze holder", &path))?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).map_err(SysError::path("read from the freeze holder", &path))?;
    parse_reply(&reply)
}

fn parse_reply(reply: &str) -> Result<()> {
    let line = reply.lines().next().unwrap_or("");
    if line == "ok" {
        return Ok(());
    }
    let rest = line.strip_prefix("err ").unwrap_or(line);
    let (errno, text) = rest.split_once(' ').unwrap_or(("5", rest));
    Err(Error::Helper { errno: errno.parse().unwrap_or(libc::EIO), message: text.to_string() })
}

/// Freezes the tree of `opts.pid` by ptrace, until `thaw`.
pub fn freeze(opts: &Opts) -> Result<()> {
    let pid = opts.pid.ok_or_else(|| Error::InvalidArgument("freeze needs a pid or a freeze cgroup".into()))?;
    if exists(pid) {
        return Err(Error::InvalidArgument(format!("pid {pid} is frozen already ({})", socket_path(pid).display())));
    }
    let dir = socket_dir();
    std::fs::create_dir_all(&dir).map_err(SysError::path("mkdir", &dir))?;
    let (rd, wr) = nix::unistd::pipe().map_err(|errno| SysError::Call { call: "pipe", errno })?;
    let wr_fd = std::os::fd::AsRawFd::as_raw_fd(&wr);
    // Double fork: the holder is nobody's child to reap (a caller such as liblxc
    // reaps with waitpid(-1)) and lives in a session of its own.
    let first = process::spawn_with_pid(None, false, || {
        let _ = files::setsid();
        match process::spawn_with_pid(None, false, || holder_main(pid, wr_fd)) {
            Ok(_) => 0,
            Err(e) => {
                let _ = files::write_all(wr_fd, format!("err {} {e}\n", e.errno()).as_bytes());
                1
            }
        }
    })?;
    drop(wr);
    let _ = files::reap(first);
    let mut reply = String::new();
    let _ = std::fs::File::from(rd).read_to_string(&mut reply);
    if reply.is_empty() {
        return Err(Error::Helper { errno: libc::EPIPE, message: format!("the freeze holder for pid {pid} died") });
    }
    parse_reply(&reply)
}

/// Lets the tree frozen by `freeze` run again.
pub fn thaw(pid: i32) -> Result<()> {
    request(pid, "thaw\n")
}

/// Dumps a held tree through its holder.
pub fn dump(opts: &Opts) -> Result<()> {
    let pid = opts.pid.unwrap_or(0);
    let mut req = String::from("dump\n");
    if let Some(d) = &opts.images_dir {
        req += &format!("images_dir={}\n", d.display());
    }
    if let Some(l) = &opts.log_file {
        req += &format!("log_file={}\n", l.display());
    }
    req += &format!("log_level={}\nleave_running={}\npid={pid}\n\n", opts.log_level, opts.leave_running as u8);
    request(pid, &req)
}

/// The holder: seize, report, then serve requests until the tree is let go or gone.
fn holder_main(pid: i32, ready: std::os::fd::RawFd) -> i32 {
    // Nothing of our ancestors' stays open here: their pipes must see EOF.
    files::close_range(0, ready as u32 - 1);
    files::close_range(ready as u32 + 1, u32::MAX);
    let mut held = match crate::dump::hold(pid) {
        Ok(h) => h,
        Err(e) => {
            let _ = files::write_all(ready, format!("err {} {e}\n", e.errno()).as_bytes());
            return 1;
        }
    };
    let path = socket_path(pid);
    let _ = std::fs::remove_file(&path);
    let listener = match UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            let _ = files::write_all(
                ready,
                format!("err {} binding {}: {e}\n", e.raw_os_error().unwrap_or(5), path.display()).as_bytes(),
            );
            return 1;
        }
    };
    let _ = files::write_all(ready, b"ok\n");
    files::close(ready);
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let mut lines = Vec::new();
        for l in BufReader::new(&conn).lines() {
            match l {
                Ok(l) if l.is_empty() => break,
                Ok(l) => {
                    let thaw = l == "thaw";
                    lines.push(l);
                    if thaw {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        match lines.first().map(String::as_str) {
            Some("thaw") => {
                held.thaw();
                let _ = std::fs::remove_file(&path);
                let _ = conn.write_all(b"ok\n");
                return 0;
            }
            Some("dump") => {
                let mut o = Opts::default();
                for l in &lines[1..] {
                    match l.split_once('=') {
                        Some(("images_dir", v)) => o.images_dir = Some(v.into()),
                        Some(("log_file", v)) => o.log_file = Some(v.into()),
                        Some(("log_level", v)) => o.log_level = v.parse().unwrap_or(2),
                        Some(("leave_running", v)) => o.leave_running = v == "1",
                        Some(("pid", v)) => o.pid = v.parse().ok(),
                        _ => {}
                    }
                }
                let reply = match crate::dump::run_held(&o, &mut held) {
                    Ok(()) => "ok\n".to_string(),
                    Err(e) => format!("err {} {e}\n", e.errno()),
                };
                let _ = conn.write_all(reply.as_bytes());
                if held.tasks.is_empty() {
                    let _ = std::fs::remove_file(&path);
                    return 0;
                }
            }
            _ => {
                let _ = conn.write_all(b"err 22 unknown request\n");
            }
        }
    }
    0
}
