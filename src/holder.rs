//! The ptrace freeze of a bare PID. Freezing by ptrace must outlive the call that
//! froze: ptrace belongs to the thread that attached, and its tracees run again when
//! it exits. So `freeze` starts a holder: a detached ccr process that seizes the
//! tree and keeps it stopped, serving a unix socket at /run/ccr/freeze-PID.sock.
//! `thaw` tells it to let go; a `dump` of that PID is done by the holder itself, so
//! no task runs between the freeze and the dump.
//!
//! Protocol: one request per connection, one line: "thaw", or "dump " followed by
//! the whole `DumpOpts` as JSON (so every dump option reaches the holder). Reply:
//! "ok", or "err ERRNO TEXT".

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

use std::os::fd::{AsFd, BorrowedFd};

use crate::error::{Error, Result};
use crate::opts::DumpOpts;
use crate::sys::{fd, process, SysError};

pub(crate) fn socket_dir() -> PathBuf {
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

/// Freezes the tree of `pid` by ptrace, until `thaw`.
pub fn freeze(pid: i32) -> Result<()> {
    if exists(pid) {
        return Err(Error::InvalidArgument(format!("pid {pid} is frozen already ({})", socket_path(pid).display())));
    }
    let dir = socket_dir();
    // Whoever can write there could order a dump of the frozen tree.
    crate::image::make_private_dir(&dir, "the freeze holders' directory")?;
    let (rd, wr) = crate::sys::pipe::pipe()?;
    // Double fork: the holder is nobody's child to reap (a caller such as liblxc
    // reaps with waitpid(-1)) and lives in a session of its own.
    let first = process::spawn_with_pid(None, || {
        let _ = process::setsid();
        match process::spawn_with_pid(None, || holder_main(pid, wr.as_fd())) {
            Ok(_) => 0,
            Err(e) => {
                let _ = fd::write_all(wr.as_fd(), format!("err {} {e}\n", e.errno()).as_bytes());
                1
            }
        }
    })?;
    drop(wr);
    let _ = crate::sys::wait::reap(first);
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

/// The request line that asks a holder to dump with `opts`.
pub fn dump_request(opts: &DumpOpts) -> String {
    let json = serde_json::to_string(opts).expect("options serialise");
    format!("dump {json}\n")
}

/// The options of a dump request line.
pub fn parse_dump_request(line: &str) -> Result<DumpOpts> {
    let json =
        line.strip_prefix("dump ").ok_or_else(|| Error::InvalidArgument(format!("not a dump request: {line}")))?;
    serde_json::from_str(json).map_err(|e| Error::InvalidArgument(format!("dump request: {e}")))
}

/// Dumps a held tree through its holder. Paths are made absolute first: the
/// holder has its own working directory.
pub fn dump(opts: &DumpOpts) -> Result<()> {
    let mut o = opts.clone();
    if o.hooks.callback.is_some() {
        return Err(Error::InvalidArgument(format!(
            "pid {} is frozen by a ccr freeze holder, which cannot call a hook callback: use action scripts, \
             or freeze through a cgroup",
            o.pid.unwrap_or(0)
        )));
    }
    let cwd = || std::env::current_dir().map_err(SysError::path("getcwd", "."));
    for p in [&mut o.images_dir, &mut o.log.file, &mut o.freeze_cgroup] {
        if let Some(x) = p.as_mut().filter(|x| x.is_relative() && x.as_os_str() != "-") {
            *x = cwd()?.join(&*x);
        }
    }
    // A bare name is looked up in PATH; a relative path is ours.
    for s in o.hooks.scripts.iter_mut().filter(|s| s.is_relative() && s.components().count() > 1) {
        *s = cwd()?.join(&*s);
    }
    request(o.pid.unwrap_or(0), &dump_request(&o))
}

/// The holder: seize, report, then serve requests until the tree is let go or gone.
fn holder_main(pid: i32, ready: BorrowedFd<'_>) -> i32 {
    use std::os::fd::AsRawFd;
    crate::sys::interrupt::default_stop_signals();
    // Nothing of our ancestors' stays open here: their pipes must see EOF.
    let r = ready.as_raw_fd() as u32;
    fd::close_range(0, r.saturating_sub(1));
    fd::close_range(r + 1, u32::MAX);
    let say = |text: String| {
        let _ = fd::write_all(ready, text.as_bytes());
    };
    let mut held = match crate::dump::hold(pid) {
        Ok(h) => h,
        Err(e) => {
            say(format!("err {} {e}\n", e.errno()));
            return 1;
        }
    };
    let path = socket_path(pid);
    let _ = std::fs::remove_file(&path);
    let listener = match UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            say(format!("err {} binding {}: {e}\n", e.raw_os_error().unwrap_or(5), path.display()));
            return 1;
        }
    };
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    say("ok\n".into());
    fd::close_range(r, r);
    let me = nix::unistd::geteuid().as_raw();
    loop {
        // A tree killed by someone else while held needs its holder no more.
        if !fd::poll_readable(listener.as_fd(), 1000) {
            if held.died() {
                let _ = std::fs::remove_file(&path);
                return 0;
            }
            continue;
        }
        let Ok((mut conn, _)) = listener.accept() else { continue };
        let mut line = String::new();
        if BufReader::new(&conn).read_line(&mut line).is_err() {
            continue;
        }
        // Only the user that froze the tree (or root) may order its holder.
        match crate::sys::unix_sock::peer_uid(conn.as_fd()) {
            Ok(uid) if uid == me || uid == 0 => {}
            Ok(uid) => {
                let _ = conn.write_all(format!("err {} uid {uid} may not order this holder\n", libc::EPERM).as_bytes());
                continue;
            }
            Err(_) => continue,
        }
        let line = line.trim_end();
        if line == "thaw" {
            held.thaw();
            let _ = std::fs::remove_file(&path);
            let _ = conn.write_all(b"ok\n");
            return 0;
        }
        let reply = match parse_dump_request(line).and_then(|o| crate::dump::run_held(&o, &mut held)) {
            Ok(()) => "ok\n".to_string(),
            Err(e) => format!("err {} {e}\n", e.errno()),
        };
        let _ = conn.write_all(reply.as_bytes());
        if held.is_empty() {
            let _ = std::fs::remove_file(&path);
            return 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opts::LogOpts;

    /// Every dump option survives the way to the holder: a new field of DumpOpts
    /// is set here (the struct literal fails to compile until it is).
    #[test]
    fn every_dump_option_reaches_the_holder() {
        let opts = DumpOpts {
            pid: Some(4242),
            images_dir: Some("/var/lib/ckpt/a b".into()),
            leave_running: true,
            leave_stopped: true,
            tcp_established: true,
            ghost_limit: Some(1 << 20),
            freeze_cgroup: Some("/sys/fs/cgroup/freezer/x".into()),
            freeze_timeout_s: Some(7),
            shell_job: true,
            external: vec!["tty[8800:1a]".into()],
            ext_mounts: vec![crate::opts::ExtMount { mount_point: "/lib".into(), key: "lib".into() }],
            cgroups: Some(crate::opts::CgroupSaveRoots { roots: vec![("pids".into(), "/lxc.payload.c1".into())] }),
            hooks: crate::opts::HookOpts { scripts: vec!["/usr/lib/x/hook one".into()], callback: None },
            log: LogOpts { file: Some("/tmp/l\nog".into()), level: 4 },
        };
        let line = dump_request(&opts);
        assert_eq!(line.matches('\n').count(), 1, "one line: {line:?}");
        assert_eq!(parse_dump_request(line.trim_end()).unwrap(), opts);
        assert!(parse_dump_request("dump {").is_err());
        assert!(parse_dump_request("thaw").is_err());
    }
}
