//! Run log: a file (or stderr) and a level, owned by the run context. No global logger.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
    Verbose = 3,
    Debug = 4,
}

impl Level {
    pub fn from_int(v: i32) -> Level {
        match v {
            i32::MIN..=0 => Level::Error,
            1 => Level::Warn,
            2 => Level::Info,
            3 => Level::Verbose,
            _ => Level::Debug,
        }
    }
}

/// The log file, appended to: 0600, never through a symlink planted at its name,
/// in a directory no one else can write to (or a sticky one such as /tmp, where the
/// file must then be ours with a single link), and not a file of another user.
fn open_private(p: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let refuse = |e: String| std::io::Error::new(std::io::ErrorKind::PermissionDenied, e);
    let private = crate::image::check_private(dir, "the log's directory");
    let sticky = std::fs::metadata(dir).is_ok_and(|m| m.mode() & 0o1000 != 0);
    if let (Err(e), false) = (&private, sticky) {
        return Err(refuse(e.to_string()));
    }
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(p)?;
    let md = f.metadata()?;
    let me = nix::unistd::geteuid().as_raw();
    if md.uid() != me && md.uid() != 0 {
        return Err(refuse(format!("{} belongs to uid {}", p.display(), md.uid())));
    }
    if private.is_err() && (md.uid() != me || md.nlink() != 1) {
        return Err(refuse(format!("{} in a shared directory is not ours alone", p.display())));
    }
    Ok(f)
}

pub struct Log {
    level: Level,
    sink: Option<File>,
    to_stderr: bool,
    start: Instant,
}

impl Log {
    /// A log that writes to `path` (appending) or, without a path, errors only to stderr.
    pub fn open(path: Option<&Path>, level: Level) -> std::io::Result<Log> {
        let sink = match path {
            Some(p) if p.as_os_str() == "-" => None,
            Some(p) => Some(open_private(p)?),
            None => None,
        };
        let to_stderr = path.is_some_and(|p| p.as_os_str() == "-");
        Ok(Log { level, sink, to_stderr, start: Instant::now() })
    }

    pub fn enabled(&self, level: Level) -> bool {
        level <= self.level && (self.sink.is_some() || self.to_stderr)
    }

    pub fn write(&mut self, level: Level, args: std::fmt::Arguments<'_>) {
        if !self.enabled(level) {
            return;
        }
        let t = self.start.elapsed();
        let line = format!("({:>3}.{:06}) {:?}: {}\n", t.as_secs(), t.subsec_micros(), level, args);
        if let Some(f) = self.sink.as_mut() {
            let _ = f.write_all(line.as_bytes());
        } else if self.to_stderr {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

#[macro_export]
macro_rules! log_at {
    ($log:expr, $lvl:ident, $($arg:tt)*) => {
        $log.write($crate::log::Level::$lvl, format_args!($($arg)*))
    };
}
#[macro_export]
macro_rules! info { ($log:expr, $($arg:tt)*) => { $crate::log_at!($log, Info, $($arg)*) }; }
#[macro_export]
macro_rules! debug { ($log:expr, $($arg:tt)*) => { $crate::log_at!($log, Debug, $($arg)*) }; }
#[macro_export]
macro_rules! warn { ($log:expr, $($arg:tt)*) => { $crate::log_at!($log, Warn, $($arg)*) }; }
