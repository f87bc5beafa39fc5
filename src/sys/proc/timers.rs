//! /proc/PID/timers: the task's POSIX timers (timer_create), one block each.

/// How many POSIX timers the task has (0 when the file cannot be read).
pub fn count(pid: i32) -> usize {
    let text = super::read_text(&super::path(pid, "timers")).unwrap_or_default();
    parse_count(&text)
}

pub fn parse_count(text: &str) -> usize {
    text.lines().filter(|l| l.starts_with("ID:")).count()
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_blocks() {
        let t = "ID: 0\nsignal: 14/0000000000000000\nnotify: signal/pid.42\nClockID: 1\nID: 1\nsignal: 10/x\n";
        assert_eq!(super::parse_count(t), 2);
        assert_eq!(super::parse_count(""), 0);
    }
}
