//! /proc/PID/personality: the execution domain, in hex.

use crate::sys::SysResult;

pub fn parse(text: &str) -> Option<u32> {
    u32::from_str_radix(text.trim(), 16).ok()
}

pub fn read(pid: i32) -> SysResult<u32> {
    let p = super::path(pid, "personality");
    parse(&super::read_text(&p)?).ok_or_else(|| super::parse_err(&p, "not hex"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex() {
        assert_eq!(super::parse("00400000\n"), Some(0x400000));
        assert_eq!(super::parse("zz"), None);
    }
}
