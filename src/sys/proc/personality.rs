//! /proc/PID/personality: the execution domain, in hex.

use crate::sys::SysResult;

pub fn parse(text: &str) -> Option<u32> {
    u32::from_str_radix(text.trim(), 16).ok()
}

pub fn read(pid: i32) -> SysResult<u32> {
    super::read_parsed(pid, "personality", parse, "not hex")
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex() {
        assert_eq!(super::parse("00400000\n"), Some(0x400000));
        assert_eq!(super::parse("zz"), None);
    }
}
