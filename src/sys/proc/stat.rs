//! /proc/PID/stat: the fields ccr uses, and what occupies a PID.

use crate::sys::SysResult;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    /// The controlling terminal's device number (0: none).
    pub tty_nr: u32,
    /// Its foreground process group (-1: none).
    pub tpgid: i32,
    pub flags: u64,
    pub num_threads: i64,
    pub start_time: u64,
    pub start_code: u64,
    pub end_code: u64,
    pub start_stack: u64,
    pub exit_signal: i32,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
    pub exit_code: i32,
    /// The scheduling niceness, real-time priority and policy (SCHED_*).
    pub nice: i32,
    pub rt_priority: u32,
    pub policy: u32,
    /// The CPU it last ran on.
    pub processor: u32,
}

impl Stat {
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

pub fn parse(text: &str) -> Option<Stat> {
    // comm may hold spaces and parentheses: it ends at the last ')'.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let comm = text[open + 1..close].to_string();
    let f: Vec<&str> = text.get(close + 2..)?.split_whitespace().collect();
    // f[0] is field 3 (state); field N is f[N - 3].
    let n = |i: usize| -> Option<u64> { f.get(i - 3)?.parse().ok() };
    let s = |i: usize| -> Option<i64> { f.get(i - 3)?.parse().ok() };
    Some(Stat {
        pid,
        comm,
        state: f.first()?.chars().next()?,
        ppid: s(4)? as i32,
        pgid: s(5)? as i32,
        sid: s(6)? as i32,
        flags: n(9)?,
        num_threads: s(20)?,
        start_time: n(22)?,
        start_code: n(26)?,
        end_code: n(27)?,
        start_stack: n(28)?,
        exit_signal: s(38)? as i32,
        start_data: n(45)?,
        end_data: n(46)?,
        start_brk: n(47)?,
        arg_start: n(48)?,
        arg_end: n(49)?,
        env_start: n(50)?,
        env_end: n(51)?,
        exit_code: s(52)? as i32,
        nice: s(19)? as i32,
        rt_priority: n(40)? as u32,
        policy: n(41)? as u32,
        processor: n(39)? as u32,
        tty_nr: s(7)? as u32,
        tpgid: s(8)? as i32,
    })
}

pub fn read(pid: i32) -> SysResult<Stat> {
    super::read_parsed(pid, "stat", parse, "unexpected format")
}

/// What occupies a PID right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PidState {
    Free,
    /// Dead but not yet reaped by its parent: the PID comes free soon.
    Zombie,
    Alive,
}

pub fn pid_state(pid: i32) -> PidState {
    match std::fs::read_to_string(super::path(pid, "stat")) {
        Err(_) => PidState::Free,
        Ok(s) => match s.rfind(')').and_then(|i| s[i + 1..].trim_start().chars().next()) {
            Some('Z') | Some('X') => PidState::Zombie,
            _ => PidState::Alive,
        },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn odd_comm() {
        let text = "4242 (a b) c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 12345 2269184 200 18446744073709551615 94000000000000 94000000004000 140720000000000 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 94000000010000 94000000011000 94000000020000 140720000001000 140720000001100 140720000001100 140720000001200 0\n";
        let s = super::parse(text).unwrap();
        assert_eq!(s.pid, 4242);
        assert_eq!(s.comm, "a b) c)");
        assert_eq!(s.state, 'S');
        assert_eq!((s.ppid, s.pgid, s.sid), (1, 4242, 4242));
        assert_eq!(s.num_threads, 1);
        assert_eq!(s.start_code, 94000000000000);
        assert_eq!(s.exit_signal, 17);
        assert_eq!(s.start_brk, 94000000020000);
        assert_eq!(s.env_end, 140720000001200);
        assert_eq!(s.exit_code, 0);
        assert_eq!(super::parse("12 (x"), None);
    }
}
