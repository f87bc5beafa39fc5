//! /proc/PID/ns/*: which namespace of each type a task is in.

use crate::sys::{SysError, SysResult};

/// The identity of a namespace (`pid:[4026531836]`).
pub fn id(pid: i32, kind: &str) -> SysResult<String> {
    let p = super::path(pid, &format!("ns/{kind}"));
    std::fs::read_link(&p).map(|l| l.to_string_lossy().into_owned()).map_err(SysError::path("readlink", p))
}

/// Whether this kernel has namespaces of type `kind` (time: 5.6+, CONFIG_TIME_NS).
pub fn has(kind: &str) -> bool {
    super::path(super::SELF, &format!("ns/{kind}")).exists()
}

/// Whether two tasks share the namespace of type `kind`.
pub fn same(a: i32, b: i32, kind: &str) -> SysResult<bool> {
    Ok(id(a, kind)? == id(b, kind)?)
}

/// The namespace of type `kind` (pid, time) the task's next children will be in:
/// None when it unshared one that no task is in yet (the kernel then shows no
/// link for it).
pub fn for_children(pid: i32, kind: &str) -> SysResult<Option<String>> {
    match id(pid, &format!("{kind}_for_children")) {
        Err(SysError::Path { source, .. }) if source.raw_os_error() == Some(libc::ENOENT) && super::exists(pid) => {
            Ok(None)
        }
        r => r.map(Some),
    }
}

/// The clock offsets of the time namespace `pid`'s children go into (its own, when
/// it unshared none), from /proc/PID/timens_offsets: (monotonic, boottime) in ns.
pub fn timens_offsets(pid: i32) -> SysResult<(i64, i64)> {
    let p = super::path(pid, "timens_offsets");
    let text = std::fs::read_to_string(&p).map_err(SysError::path("read", &p))?;
    let bad = || SysError::Parse { path: p.clone(), detail: format!("unexpected format: {text:?}") };
    let mut out = (None, None);
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [name, secs, nsecs] = f[..] else { return Err(bad()) };
        let v = secs.parse::<i64>().map_err(|_| bad())? * 1_000_000_000 + nsecs.parse::<i64>().map_err(|_| bad())?;
        match name {
            "monotonic" | "1" => out.0 = Some(v),
            "boottime" | "7" => out.1 = Some(v),
            _ => {}
        }
    }
    match out {
        (Some(m), Some(b)) => Ok((m, b)),
        _ => Err(bad()),
    }
}
