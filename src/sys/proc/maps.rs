//! /proc/PID/maps and /proc/PID/smaps: the task's mappings (smaps adds VmFlags).

use crate::sys::SysResult;

/// One mapping.
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

fn parse_header(line: &str) -> Option<MapEntry> {
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

/// Parses smaps (or maps) text.
pub fn parse(text: &str) -> Option<Vec<MapEntry>> {
    let mut out: Vec<MapEntry> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("VmFlags:") {
            out.last_mut()?.flags = rest.split_whitespace().map(str::to_string).collect();
            continue;
        }
        // Header lines start with a hex range; field lines with "Name:".
        let first = line.split(' ').next().unwrap_or("");
        if first.contains('-') && first.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            out.push(parse_header(line)?);
        }
    }
    Some(out)
}

fn read_file(pid: i32, name: &str) -> SysResult<Vec<MapEntry>> {
    super::read_parsed(pid, name, parse, "unrecognised line")
}

/// /proc/PID/maps: no VmFlags, but no page-table walk either (unlike smaps).
pub fn maps(pid: i32) -> SysResult<Vec<MapEntry>> {
    read_file(pid, "maps")
}

pub fn smaps(pid: i32) -> SysResult<Vec<MapEntry>> {
    read_file(pid, "smaps")
}

/// The link to the file a mapping maps (/proc/PID/map_files/START-END): stat(2)
/// through it reaches that very file, whatever its path holds now (root only).
pub fn mapped_file_link(pid: i32, start: u64, end: u64) -> std::path::PathBuf {
    super::path(pid, &format!("map_files/{start:x}-{end:x}"))
}

/// The size of the file a mapping maps (through /proc/PID/map_files), when the
/// kernel shows it (root).
pub fn mapped_file_size(pid: i32, start: u64, end: u64) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(mapped_file_link(pid, start, end)).ok().map(|m| m.size())
}

#[cfg(test)]
mod tests {
    const SMAPS: &str = "\
55d0c0a00000-55d0c0a02000 r--p 00000000 fe:00 1311                       /usr/bin/sleep
Size:                  8 kB
VmFlags: rd mr mw me dw sd
7ffd1a5b2000-7ffd1a5d3000 rw-p 00000000 00:00 0                          [stack]
Size:                132 kB
VmFlags: rd wr mr mw me gd ac
7f00aa000000-7f00aa001000 rw-s 00000000 00:01 2050                       /dev/zero (deleted)
VmFlags: rd wr sh mr mw me ms sd
7f00ab000000-7f00ab001000 ---p 00000000 00:00 0 
VmFlags: mr mw me sd
";

    #[test]
    fn entries() {
        let m = super::parse(SMAPS).unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].start, 0x55d0c0a00000);
        assert_eq!((m[0].dev_major, m[0].dev_minor, m[0].inode), (0xfe, 0, 1311));
        assert_eq!(m[0].name, "/usr/bin/sleep");
        assert!(m[1].has_flag("gd") && m[1].write && !m[1].shared);
        assert_eq!(m[2].name, "/dev/zero (deleted)");
        assert!(m[2].shared);
        assert_eq!(m[3].name, "");
        assert!(!m[3].read && !m[3].write && !m[3].exec);
    }
}
