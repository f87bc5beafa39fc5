//! /proc/sys: sysctls, as the calling thread's namespaces show them (the IPC and
//! network ones are per namespace, of the thread that opens the file).

use std::path::PathBuf;

use crate::image::pb;
use crate::sys::{SysError, SysResult};

fn path(name: &str) -> PathBuf {
    std::path::Path::new("/proc/sys").join(name)
}

/// One sysctl (by path under /proc/sys) with its whitespace made single spaces;
/// None when this kernel has none.
pub fn read(name: &str) -> SysResult<Option<String>> {
    let p = path(name);
    match std::fs::read_to_string(&p) {
        Ok(v) => Ok(Some(v.split_whitespace().collect::<Vec<_>>().join(" "))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SysError::Path { call: "read", path: p, source: e }),
    }
}

/// Each sysctl of `names` this kernel has, with its value.
pub fn read_all(names: &[&str]) -> SysResult<Vec<pb::Sysctl>> {
    let mut out = Vec::new();
    for name in names {
        if let Some(value) = read(name)? {
            out.push(pb::Sysctl { name: name.to_string(), value });
        }
    }
    Ok(out)
}

pub fn write(name: &str, value: &str) -> SysResult<()> {
    let p = path(name);
    std::fs::write(&p, value).map_err(SysError::path("write", p))
}

/// The index of the first of `saved` an image may not hold: a name outside
/// `allowed`, or a value of more than one line.
pub fn first_not_of(allowed: &[&str], saved: &[pb::Sysctl]) -> Option<usize> {
    saved.iter().position(|s| !allowed.contains(&s.name.as_str()) || s.value.contains('\n'))
}
