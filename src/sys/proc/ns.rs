//! /proc/PID/ns/*: which namespace of each type a task is in.

/// The identity of a namespace (`pid:[4026531836]`), or None when unreadable.
pub fn id(pid: i32, kind: &str) -> Option<String> {
    std::fs::read_link(super::path(pid, &format!("ns/{kind}"))).ok().map(|p| p.to_string_lossy().into_owned())
}

/// Whether two tasks share the namespace of type `kind`.
pub fn same(a: i32, b: i32, kind: &str) -> bool {
    id(a, kind) == id(b, kind)
}
