//! /proc/PID/cgroup: the cgroup a task is in on every hierarchy.

use crate::sys::{SysError, SysResult};

/// One line: the hierarchy's controllers (sorted; empty for v2) and the cgroup path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskCgroup {
    pub version: u32,
    pub controllers: Vec<String>,
    pub path: String,
}

pub fn parse(text: &str) -> Vec<TaskCgroup> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(id), Some(ctl), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if id == "0" && ctl.is_empty() {
            out.push(TaskCgroup { version: 2, controllers: Vec::new(), path: path.to_string() });
        } else {
            let mut c: Vec<String> = ctl.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect();
            c.sort();
            out.push(TaskCgroup { version: 1, controllers: c, path: path.to_string() });
        }
    }
    out
}

pub fn read(pid: i32) -> SysResult<Vec<TaskCgroup>> {
    let p = super::path(pid, "cgroup");
    let text = std::fs::read_to_string(&p).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            SysError::Task { pid, detail: "no such process".into() }
        } else {
            SysError::Path { call: "read", path: p.clone(), source }
        }
    })?;
    Ok(parse(&text))
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines() {
        let t = super::parse("9:name=systemd:/\n1:cpuacct,cpu:/lxc/c1\n0::/a:b\n");
        assert_eq!(t[0].controllers, vec!["name=systemd"]);
        assert_eq!(t[1].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(t[1].path, "/lxc/c1");
        assert_eq!((t[2].version, t[2].path.as_str()), (2, "/a:b"));
    }
}
