//! /proc/PID/fdinfo/FD: position, flags and, for special files, the lines that
//! describe their state (eventfd count, timer, signal mask, epoll and inotify
//! registrations).

use crate::sys::SysResult;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FdInfo {
    pub pos: u64,
    pub flags: u32,
    pub mnt_id: i64,
    pub extra: Vec<(String, String)>,
}

impl FdInfo {
    fn value(&self, key: &str) -> Option<&str> {
        self.extra.iter().find(|(k, _)| k == key).map(|(_, v)| v.trim())
    }

    /// The value of a line as an integer in `radix`.
    pub fn num(&self, key: &str, radix: u32) -> Option<u64> {
        u64::from_str_radix(self.value(key)?, radix).ok()
    }

    /// A timerfd time line "(sec, nsec)" as nanoseconds.
    pub fn timespec(&self, key: &str) -> Option<u64> {
        let v = self.value(key)?;
        let (s, n) = v.trim_start_matches('(').trim_end_matches(')').split_once(',')?;
        Some(s.trim().parse::<u64>().ok()? * 1_000_000_000 + n.trim().parse::<u64>().ok()?)
    }

    /// The registrations of an eventpoll fd: (fd, events, data).
    pub fn epoll_targets(&self) -> Vec<(i32, u32, u64)> {
        let mut out = Vec::new();
        for (k, v) in &self.extra {
            if k != "tfd" {
                continue;
            }
            // "   3 events: 80000019 data:                3  pos:0 ino:40e sdev:10"
            let mut it = v.split_whitespace();
            let fd = it.next().and_then(|x| x.parse().ok());
            let (mut events, mut data) = (None, None);
            while let Some(w) = it.next() {
                match w {
                    "events:" => events = it.next().and_then(|x| u32::from_str_radix(x, 16).ok()),
                    "data:" => data = it.next().and_then(|x| u64::from_str_radix(x, 16).ok()),
                    _ => {}
                }
            }
            if let (Some(fd), Some(events), Some(data)) = (fd, events, data) {
                out.push((fd, events, data));
            }
        }
        out
    }

    /// The watches of an inotify fd.
    pub fn inotify_watches(&self) -> Vec<InotifyLine> {
        let mut out = Vec::new();
        for (k, v) in &self.extra {
            // "inotify wd:2 ino:263 sdev:fe00000 mask:2 ... fhandle-type:1 f_handle:6302..."
            let Some(rest) = k.strip_prefix("inotify wd") else { continue };
            let line = format!("wd{rest}:{v}");
            let mut w = InotifyLine::default();
            for field in line.split_whitespace() {
                let Some((key, val)) = field.split_once(':') else { continue };
                match key {
                    "wd" => w.wd = val.parse().unwrap_or(-1),
                    "sdev" => w.sdev = u64::from_str_radix(val, 16).unwrap_or(0),
                    "mask" => w.mask = u32::from_str_radix(val, 16).unwrap_or(0),
                    "fhandle-type" => w.handle_type = val.parse().unwrap_or(0),
                    "f_handle" => {
                        w.handle = (0..val.len() / 2)
                            .filter_map(|i| u8::from_str_radix(&val[2 * i..2 * i + 2], 16).ok())
                            .collect()
                    }
                    _ => {}
                }
            }
            out.push(w);
        }
        out
    }
}

/// One held lock of an fdinfo "lock:" line, e.g.
/// `1: POSIX  ADVISORY  WRITE 12713 fe:00:10010686 5 14`: a flock, OFD or lease the
/// description holds, or a POSIX lock the task took through this description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockLine {
    /// FLOCK, POSIX, OFDLCK, LEASE, DELEG, ...
    pub class: String,
    /// ADVISORY for locks; ACTIVE, BREAKING or BREAKER for leases.
    pub state: String,
    /// READ, WRITE or UNLCK (a lease being broken to nothing).
    pub mode: String,
    /// The process that took it (-1 for OFD locks), as the reader sees it.
    pub pid: i32,
    /// The first byte and the last (None: up to the end of the file).
    pub start: u64,
    pub end: Option<u64>,
    /// The whole line, for errors.
    pub text: String,
}

impl FdInfo {
    /// The locks of the "lock:" lines; None when a line has another format.
    pub fn locks(&self) -> Option<Vec<LockLine>> {
        self.extra.iter().filter(|(k, _)| k == "lock").map(|(_, v)| parse_lock(v)).collect()
    }
}

fn parse_lock(v: &str) -> Option<LockLine> {
    let w: Vec<&str> = v.split_whitespace().collect();
    let [id, class, state, mode, pid, _inode, start, end] = w[..] else { return None };
    id.strip_suffix(':')?.parse::<u64>().ok()?;
    let end = if end == "EOF" { None } else { Some(end.parse().ok()?) };
    Some(LockLine {
        class: class.into(),
        state: state.into(),
        mode: mode.into(),
        pid: pid.parse().ok()?,
        start: start.parse().ok()?,
        end,
        text: v.to_string(),
    })
}

/// One watch of an inotify fdinfo.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InotifyLine {
    pub wd: i32,
    pub mask: u32,
    /// The superblock's device (kernel encoding: major << 20 | minor).
    pub sdev: u64,
    pub handle_type: i32,
    pub handle: Vec<u8>,
}

pub fn parse(text: &str) -> Option<FdInfo> {
    let mut fi = FdInfo::default();
    for l in text.lines() {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "pos" => fi.pos = v.parse().ok()?,
            "flags" => fi.flags = u32::from_str_radix(v, 8).ok()?,
            "mnt_id" => fi.mnt_id = v.parse().ok()?,
            other => fi.extra.push((other.to_string(), v.to_string())),
        }
    }
    Some(fi)
}

pub fn read(pid: i32, fd: i32) -> SysResult<FdInfo> {
    super::read_parsed(pid, &format!("fdinfo/{fd}"), parse, "unexpected format")
}

/// The path of an fdinfo file, for errors about its contents.
pub fn path(pid: i32, fd: i32) -> std::path::PathBuf {
    super::path(pid, &format!("fdinfo/{fd}"))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn locks() {
        let f = parse(
            "pos:\t0\nflags:\t02\nmnt_id:\t27\nino:\t5\n\
             lock:\t1: POSIX  ADVISORY  WRITE 12713 fe:00:10010686 5 14\n\
             lock:\t2: FLOCK  ADVISORY  READ 12713 fe:00:10010686 0 EOF\n\
             lock:\t3: LEASE  ACTIVE    READ 12713 fe:00:10010695 0 EOF\n",
        )
        .unwrap();
        let l = f.locks().unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!((l[0].class.as_str(), l[0].mode.as_str(), l[0].start, l[0].end), ("POSIX", "WRITE", 5, Some(14)));
        assert_eq!((l[1].class.as_str(), l[1].end), ("FLOCK", None));
        assert_eq!((l[2].class.as_str(), l[2].state.as_str()), ("LEASE", "ACTIVE"));
        assert!(parse("lock:\t1: POSIX WRITE\n").unwrap().locks().is_none());
    }

    #[test]
    fn common_fields() {
        let f = parse("pos:\t12345\nflags:\t0102002\nmnt_id:\t27\nino:\t99\n").unwrap();
        assert_eq!(f.pos, 12345);
        assert_eq!(f.flags, 0o102002);
        assert_eq!(f.mnt_id, 27);
        assert_eq!(f.extra, vec![("ino".to_string(), "99".to_string())]);
    }

    #[test]
    fn anon_kinds() {
        let e = parse("pos:\t0\nflags:\t04002\nmnt_id:\t17\nino:\t1038\neventfd-count:               1f\neventfd-id: 1\neventfd-semaphore: 1\n").unwrap();
        assert_eq!(e.num("eventfd-count", 16), Some(31));
        assert_eq!(e.num("eventfd-semaphore", 10), Some(1));
        let t =
            parse("clockid: 1\nticks: 3\nsettime flags: 00\nit_value: (99, 999923457)\nit_interval: (1, 0)\n").unwrap();
        assert_eq!(t.timespec("it_value"), Some(99_999_923_457));
        assert_eq!(t.timespec("it_interval"), Some(1_000_000_000));
        let p = parse("pos:\t0\nflags:\t02000002\ntfd:        3 events: 80000019 data:                3  pos:0 ino:40e sdev:10\ntfd:       12 events:       1 data: ffffffffffffffff  pos:0 ino:40f sdev:10\n").unwrap();
        assert_eq!(p.epoll_targets(), vec![(3, 0x80000019, 3), (12, 1, u64::MAX)]);
    }

    #[test]
    fn inotify() {
        let f = parse("pos:\t0\nflags:\t00\ninotify wd:2 ino:263 sdev:fe00000 mask:2 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:6302000000000000\n").unwrap();
        let w = f.inotify_watches();
        assert_eq!(w.len(), 1);
        assert_eq!((w[0].wd, w[0].mask, w[0].sdev, w[0].handle_type), (2, 2, 0xfe00000, 1));
        assert_eq!(w[0].handle, vec![0x63, 0x02, 0, 0, 0, 0, 0, 0]);
    }
}
