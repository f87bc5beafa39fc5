//! /proc readers. Each file has a pure parser (unit tested on fixed text) and a thin
//! reader that attaches the path to any error.

use std::path::PathBuf;

use crate::sys::{SysError, SysResult};

fn read_text(path: &str) -> SysResult<String> {
    std::fs::read_to_string(path).map_err(SysError::path("read", path))
}

fn parse_err(path: &str, detail: impl Into<String>) -> SysError {
    SysError::Parse { path: PathBuf::from(path), detail: detail.into() }
}

/// One line of /proc/PID/smaps (header plus the VmFlags line).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapEntry {
    pub start: u64,
    pub end: u64,
    pub read: bool,
    pub write: bool,
    pub exec: bool,
    pub shared: bool,
    pub offset: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub inode: u64,
    /// Path or pseudo name ("[heap]", "/dev/zero (deleted)", ""), as the kernel prints it.
    pub name: String,
    /// Two-letter VmFlags (empty when read from plain maps).
    pub flags: Vec<String>,
}

impl MapEntry {
    pub fn has_flag(&self, f: &str) -> bool {
        self.flags.iter().any(|x| x == f)
    }
}

fn parse_map_header(line: &str) -> Option<MapEntry> {
    let mut it = line.splitn(6, ' ');
    let range = it.next()?;
    let perms = it.next()?;
    let offset = it.next()?;
    let dev = it.next()?;
    let inode = it.next()?;
    let name = it.next().unwrap_or("").trim_start().to_string();
    let (s, e) = range.split_once('-')?;
    let (maj, min) = dev.split_once(':')?;
    let p = perms.as_bytes();
    if p.len() < 4 {
        return None;
    }
    Some(MapEntry {
        start: u64::from_str_radix(s, 16).ok()?,
        end: u64::from_str_radix(e, 16).ok()?,
        read: p[0] == b'r',
        write: p[1] == b'w',
        exec: p[2] == b'x',
        shared: p[3] == b's',
        offset: u64::from_str_radix(offset, 16).ok()?,
        dev_major: u32::from_str_radix(maj, 16).ok()?,
        dev_minor: u32::from_str_radix(min, 16).ok()?,
        inode: inode.parse().ok()?,
        name,
        flags: Vec::new(),
    })
}

/// Parses /proc/PID/smaps (or maps) text.
pub fn parse_smaps(text: &str) -> Option<Vec<MapEntry>> {
    let mut out: Vec<MapEntry> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("VmFlags:") {
            out.last_mut()?.flags = rest.split_whitespace().map(str::to_string).collect();
            continue;
        }
        // Header lines start with a hex range; field lines with "Name:".
        let first = line.split(' ').next().unwrap_or("");
        if first.contains('-') && first.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            out.push(parse_map_header(line)?);
        }
    }
    Some(out)
}

/// /proc/PID/maps: the mappings without VmFlags (no page-table walk, unlike smaps).
pub fn maps(pid: i32) -> SysResult<Vec<MapEntry>> {
    let path = format!("/proc/{pid}/maps");
    let text = read_text(&path)?;
    parse_smaps(&text).ok_or_else(|| parse_err(&path, "unrecognised line"))
}

pub fn smaps(pid: i32) -> SysResult<Vec<MapEntry>> {
    let path = format!("/proc/{pid}/smaps");
    let text = read_text(&path)?;
    parse_smaps(&text).ok_or_else(|| parse_err(&path, "unrecognised line"))
}

/// The fields of /proc/PID/stat that ccr uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    pub flags: u64,
    pub num_threads: i64,
    pub start_time: u64,
    pub start_code: u64,
    pub end_code: u64,
    pub start_stack: u64,
    pub exit_signal: i32,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
    pub exit_code: i32,
}

pub fn parse_stat(text: &str) -> Option<Stat> {
    // comm may hold spaces and parentheses: it ends at the last ')'.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let comm = text[open + 1..close].to_string();
    let f: Vec<&str> = text[close + 2..].split_whitespace().collect();
    // f[0] is field 3 (state); field N is f[N - 3].
    let n = |i: usize| -> Option<u64> { f.get(i - 3)?.parse().ok() };
    let s = |i: usize| -> Option<i64> { f.get(i - 3)?.parse().ok() };
    Some(Stat {
        pid,
        comm,
        state: f.first()?.chars().next()?,
        ppid: s(4)? as i32,
        pgid: s(5)? as i32,
        sid: s(6)? as i32,
        flags: n(9)?,
        num_threads: s(20)?,
        start_time: n(22)?,
        start_code: n(26)?,
        end_code: n(27)?,
        start_stack: n(28)?,
        exit_signal: s(38)? as i32,
        start_data: n(45)?,
        end_data: n(46)?,
        start_brk: n(47)?,
        arg_start: n(48)?,
        arg_end: n(49)?,
        env_start: n(50)?,
        env_end: n(51)?,
        exit_code: s(52)? as i32,
    })
}

pub fn stat(pid: i32) -> SysResult<Stat> {
    let path = format!("/proc/{pid}/stat");
    let text = read_text(&path)?;
    parse_stat(&text).ok_or_else(|| parse_err(&path, "unexpected format"))
}

/// /proc/PID/status as key → value.
#[derive(Clone, Debug, Default)]
pub struct Status {
    fields: Vec<(String, String)>,
    path: String,
}

impl Status {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn need(&self, key: &str) -> SysResult<&str> {
        self.get(key).ok_or_else(|| parse_err(&self.path, format!("no {key} line")))
    }

    /// A line of whitespace-separated decimal numbers (Uid:, Gid:, Groups:).
    pub fn numbers(&self, key: &str) -> SysResult<Vec<u32>> {
        self.need(key)?
            .split_whitespace()
            .map(|v| v.parse().map_err(|_| parse_err(&self.path, format!("{key}: '{v}'"))))
            .collect()
    }

    /// A hexadecimal mask line (CapEff:, SigBlk:, ...).
    pub fn hex(&self, key: &str) -> SysResult<u64> {
        let v = self.need(key)?;
        u64::from_str_radix(v.trim(), 16).map_err(|_| parse_err(&self.path, format!("{key}: '{v}'")))
    }

    /// An octal line (Umask:).
    pub fn octal(&self, key: &str) -> SysResult<u32> {
        let v = self.need(key)?;
        u32::from_str_radix(v.trim(), 8).map_err(|_| parse_err(&self.path, format!("{key}: '{v}'")))
    }

    pub fn int(&self, key: &str) -> SysResult<i64> {
        let v = self.need(key)?;
        v.trim().parse().map_err(|_| parse_err(&self.path, format!("{key}: '{v}'")))
    }
}

pub fn parse_status(text: &str, path: &str) -> Status {
    let fields = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Status { fields, path: path.to_string() }
}

pub fn status(pid: i32) -> SysResult<Status> {
    let path = format!("/proc/{pid}/status");
    Ok(parse_status(&read_text(&path)?, &path))
}

/// /proc/PID/fdinfo/FD: position, flags and (for special files) extra lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FdInfo {
    pub pos: u64,
    pub flags: u32,
    pub mnt_id: i64,
    pub extra: Vec<(String, String)>,
}

pub fn parse_fdinfo(text: &str) -> Option<FdInfo> {
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

pub fn fdinfo(pid: i32, fd: i32) -> SysResult<FdInfo> {
    let path = format!("/proc/{pid}/fdinfo/{fd}");
    parse_fdinfo(&read_text(&path)?).ok_or_else(|| parse_err(&path, "unexpected format"))
}

/// Open fd numbers of a task, sorted.
pub fn fds(pid: i32) -> SysResult<Vec<i32>> {
    let path = format!("/proc/{pid}/fd");
    let mut v: Vec<i32> = std::fs::read_dir(&path)
        .map_err(SysError::path("readdir", &path))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    v.sort_unstable();
    Ok(v)
}

/// Thread ids of a task, sorted (the leader first, as it has the lowest id... or not:
/// callers must not assume the leader is first).
pub fn threads(pid: i32) -> SysResult<Vec<i32>> {
    let path = format!("/proc/{pid}/task");
    let mut v: Vec<i32> = std::fs::read_dir(&path)
        .map_err(SysError::path("readdir", &path))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    v.sort_unstable();
    Ok(v)
}

/// Children of one thread, from /proc/PID/task/TID/children.
pub fn children(pid: i32, tid: i32) -> SysResult<Vec<i32>> {
    let path = format!("/proc/{pid}/task/{tid}/children");
    Ok(read_text(&path)?.split_whitespace().filter_map(|s| s.parse().ok()).collect())
}

pub fn readlink(path: &str) -> SysResult<String> {
    let p = std::fs::read_link(path).map_err(SysError::path("readlink", path))?;
    Ok(p.to_string_lossy().into_owned())
}

/// /proc/PID/limits: (resource index, soft, hard); u64::MAX is unlimited.
pub fn parse_limits(text: &str) -> Option<Vec<(u32, u64, u64)>> {
    // The kernel prints the resources in RLIMIT_* order, one line each after a header.
    let mut out = Vec::new();
    for (i, l) in text.lines().skip(1).enumerate() {
        // Name (padded to 26 columns), soft, hard, units.
        let rest = l.get(26..)?;
        let mut it = rest.split_whitespace();
        let num = |s: &str| {
            if s == "unlimited" {
                Some(u64::MAX)
            } else {
                s.parse().ok()
            }
        };
        let soft = num(it.next()?)?;
        let hard = num(it.next()?)?;
        out.push((i as u32, soft, hard));
    }
    Some(out)
}

pub fn limits(pid: i32) -> SysResult<Vec<(u32, u64, u64)>> {
    let path = format!("/proc/{pid}/limits");
    parse_limits(&read_text(&path)?).ok_or_else(|| parse_err(&path, "unexpected format"))
}

pub fn read_bytes(path: &str) -> SysResult<Vec<u8>> {
    std::fs::read(path).map_err(SysError::path("read", path))
}

#[cfg(test)]
mod tests;

/// The value of an fdinfo line as an integer in `radix`.
pub fn fdinfo_num(fi: &FdInfo, key: &str, radix: u32) -> Option<u64> {
    let v = fi.extra.iter().find(|(k, _)| k == key)?.1.trim();
    u64::from_str_radix(v, radix).ok()
}

/// A timerfd time line "(sec, nsec)" as nanoseconds.
pub fn fdinfo_timespec(fi: &FdInfo, key: &str) -> Option<u64> {
    let v = fi.extra.iter().find(|(k, _)| k == key)?.1.trim();
    let (s, n) = v.trim_start_matches('(').trim_end_matches(')').split_once(',')?;
    Some(s.trim().parse::<u64>().ok()? * 1_000_000_000 + n.trim().parse::<u64>().ok()?)
}

/// The epoll registrations of an eventpoll fdinfo: (fd, events, data).
pub fn fdinfo_epoll(fi: &FdInfo) -> Vec<(i32, u32, u64)> {
    let mut out = Vec::new();
    for (k, v) in &fi.extra {
        if k != "tfd" {
            continue;
        }
        // "   3 events: 80000019 data:                3  pos:0 ino:40e sdev:10"
        let mut it = v.split_whitespace();
        let fd = it.next().and_then(|x| x.parse().ok());
        let mut events = None;
        let mut data = None;
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

/// The innermost id of an NSpid-style line of /proc/PID[/task/TID]/status
/// (0 when the line is missing).
pub fn ns_last(status: &Status, key: &str) -> i32 {
    status.get(key).and_then(|v| v.split_whitespace().last()).and_then(|x| x.parse().ok()).unwrap_or(0)
}

/// The id a thread `tid` of task `pid` has inside its own PID namespace.
pub fn ns_tid(pid: i32, tid: i32) -> SysResult<i32> {
    let path = format!("/proc/{pid}/task/{tid}/status");
    let st = parse_status(&read_text(&path)?, &path);
    Ok(ns_last(&st, "NSpid"))
}

/// The thread of task `pid` (as we see it) whose id inside its namespace is `inner`.
pub fn outer_tid(pid: i32, inner: i32) -> SysResult<Option<i32>> {
    for tid in threads(pid)? {
        if ns_tid(pid, tid)? == inner {
            return Ok(Some(tid));
        }
    }
    Ok(None)
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

/// The watches of an inotify fdinfo.
pub fn fdinfo_inotify(fi: &FdInfo) -> Vec<InotifyLine> {
    let mut out = Vec::new();
    for (k, v) in &fi.extra {
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
                    w.handle =
                        (0..val.len() / 2).filter_map(|i| u8::from_str_radix(&val[2 * i..2 * i + 2], 16).ok()).collect()
                }
                _ => {}
            }
        }
        out.push(w);
    }
    out
}
