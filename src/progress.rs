//! Progress of a long dump or restore on a terminal: after the first second, one
//! status line (bytes, rate, tasks) rewritten at most five times a second. Nothing
//! at all when stderr is not a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    what: &'static str,
    start: Instant,
    last: Option<Instant>,
    enabled: bool,
    bytes: u64,
    tasks: u32,
}

impl Progress {
    pub fn new(what: &'static str) -> Progress {
        Progress {
            what,
            start: Instant::now(),
            last: None,
            enabled: std::io::stderr().is_terminal(),
            bytes: 0,
            tasks: 0,
        }
    }

    pub fn add_bytes(&mut self, n: u64) {
        self.bytes += n;
        self.show();
    }

    pub fn add_task(&mut self) {
        self.tasks += 1;
        self.show();
    }

    fn show(&mut self) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let elapsed = now - self.start;
        if elapsed < Duration::from_secs(1) || self.last.is_some_and(|l| now - l < Duration::from_millis(200)) {
            return;
        }
        self.last = Some(now);
        let mib = self.bytes as f64 / (1 << 20) as f64;
        let rate = mib / elapsed.as_secs_f64();
        let _ = write!(
            std::io::stderr(),
            "\r\x1b[Kccr {}: {:.0} MiB, {:.0} MiB/s, {} tasks",
            self.what,
            mib,
            rate,
            self.tasks
        );
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.last.is_some() {
            let _ = writeln!(std::io::stderr());
        }
    }
}
