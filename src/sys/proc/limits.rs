//! /proc/PID/limits: every resource limit of a task (readable for any task, where
//! prlimit on another user's task needs CAP_SYS_RESOURCE).

use crate::sys::SysResult;

/// (resource index, soft, hard); u64::MAX is unlimited.
pub type Limit = (u32, u64, u64);

pub fn parse(text: &str) -> Option<Vec<Limit>> {
    // The kernel prints the resources in RLIMIT_* order, one line each after a header.
    let mut out = Vec::new();
    for (i, l) in text.lines().skip(1).enumerate() {
        // Name (padded to 26 columns), soft, hard, units.
        let mut it = l.get(26..)?.split_whitespace();
        let num = |s: &str| if s == "unlimited" { Some(u64::MAX) } else { s.parse().ok() };
        let soft = num(it.next()?)?;
        let hard = num(it.next()?)?;
        out.push((i as u32, soft, hard));
    }
    Some(out)
}

pub fn read(pid: i32) -> SysResult<Vec<Limit>> {
    super::read_parsed(pid, "limits", parse, "unexpected format")
}

#[cfg(test)]
mod tests {
    #[test]
    fn table() {
        let text = "\
Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max file size             unlimited            unlimited            bytes     
Max data size             unlimited            unlimited            bytes     
Max stack size            8388608              unlimited            bytes     
Max core file size        0                    unlimited            bytes     
Max resident set          unlimited            unlimited            bytes     
Max processes             95724                95724                processes 
Max open files            1024                 524288               files     
";
        let l = super::parse(text).unwrap();
        assert_eq!(l.len(), 8);
        assert_eq!(l[3], (3, 8388608, u64::MAX));
        assert_eq!(l[7], (7, 1024, 524288));
    }
}
