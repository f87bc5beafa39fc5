//! /proc/cpuinfo: the CPU flags of this machine.

/// The flags of the first CPU ("fpu", "avx", ...).
pub fn flags() -> Vec<String> {
    let text = std::fs::read_to_string(super::global("cpuinfo")).unwrap_or_default();
    parse_flags(&text)
}

pub fn parse_flags(text: &str) -> Vec<String> {
    text.lines()
        .find(|l| l.starts_with("flags"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn first_flags_line() {
        let f = super::parse_flags("processor\t: 0\nflags\t\t: fpu avx xsave\nflags\t: other\n");
        assert_eq!(f, vec!["fpu", "avx", "xsave"]);
    }
}
