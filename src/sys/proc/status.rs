//! /proc/PID/status and /proc/PID/task/TID/status as key → value.

use crate::sys::{SysError, SysResult};

#[derive(Clone, Debug, Default)]
pub struct Status {
    fields: Vec<(String, String)>,
    path: std::path::PathBuf,
}

impl Status {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn need(&self, key: &str) -> SysResult<&str> {
        self.get(key).ok_or_else(|| super::parse_err(&self.path, format!("no {key} line")))
    }

    fn bad(&self, key: &str, v: &str) -> SysError {
        super::parse_err(&self.path, format!("{key}: '{v}'"))
    }

    /// A line of whitespace-separated decimal numbers (Uid:, Gid:, Groups:).
    pub fn numbers(&self, key: &str) -> SysResult<Vec<u32>> {
        self.need(key)?.split_whitespace().map(|v| v.parse().map_err(|_| self.bad(key, v))).collect()
    }

    /// A hexadecimal mask line (CapEff:, SigBlk:, ...).
    pub fn hex(&self, key: &str) -> SysResult<u64> {
        let v = self.need(key)?;
        u64::from_str_radix(v.trim(), 16).map_err(|_| self.bad(key, v))
    }

    /// An octal line (Umask:).
    pub fn octal(&self, key: &str) -> SysResult<u32> {
        let v = self.need(key)?;
        u32::from_str_radix(v.trim(), 8).map_err(|_| self.bad(key, v))
    }

    pub fn int(&self, key: &str) -> SysResult<i64> {
        let v = self.need(key)?;
        v.trim().parse().map_err(|_| self.bad(key, v))
    }

    /// The innermost id of an NSpid-style line (0 when the line is missing): the id
    /// as seen inside the task's own PID namespace.
    pub fn ns_last(&self, key: &str) -> i32 {
        self.get(key).and_then(|v| v.split_whitespace().last()).and_then(|x| x.parse().ok()).unwrap_or(0)
    }
}

pub fn parse(text: &str, path: &std::path::Path) -> Status {
    let fields = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Status { fields, path: path.to_path_buf() }
}

pub fn read(pid: i32) -> SysResult<Status> {
    let p = super::path(pid, "status");
    Ok(parse(&super::read_text(&p)?, &p))
}

/// The status of one thread of a task.
pub fn thread(pid: i32, tid: i32) -> SysResult<Status> {
    let p = super::path(pid, &format!("task/{tid}/status"));
    Ok(parse(&super::read_text(&p)?, &p))
}

/// Whether this process runs a single thread (forking without exec is only sound then).
pub fn self_single_threaded() -> bool {
    read(super::SELF).ok().and_then(|s| s.int("Threads").ok()) == Some(1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn fields() {
        let s = super::parse(
            "Umask:\t0022\nUid:\t0\t1\t2\t3\nGroups:\t10 20 \nCapEff:\t000001ffffffffff\nNSpid:\t40\t1\n",
            std::path::Path::new("x"),
        );
        assert_eq!(s.octal("Umask").unwrap(), 0o22);
        assert_eq!(s.numbers("Uid").unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(s.numbers("Groups").unwrap(), vec![10, 20]);
        assert_eq!(s.hex("CapEff").unwrap(), 0x1ffffffffff);
        assert!(s.hex("CapBnd").is_err());
        assert_eq!(s.ns_last("NSpid"), 1);
        assert_eq!(s.ns_last("NSpgid"), 0);
    }
}
