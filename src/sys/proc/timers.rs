//! /proc/PID/timers: the process's POSIX timers (timer_create), one block each:
//! `ID:`, `signal: SIGNO/SIGVAL`, `notify: HOW/pid.N` or `HOW/tid.N`, `ClockID:`.

use crate::sys::SysResult;

/// What /proc shows of one timer (its time left needs timer_gettime in the task).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcTimer {
    pub id: i32,
    pub signo: i32,
    /// sigev_value as a pointer-sized integer.
    pub sigval: u64,
    /// sigev_notify: SIGEV_SIGNAL, SIGEV_NONE or SIGEV_THREAD, plus SIGEV_THREAD_ID
    /// when a thread is the target.
    pub notify: i32,
    /// The process or thread it signals, as the reader's /proc sees it.
    pub target: i32,
    /// The clock as timer_create takes it. The kernel shows timers on the caller's
    /// own CPU clocks in its internal encoding (pid 0, CPUCLOCK_SCHED: -6 for the
    /// process, -2 for the thread); those are turned back into
    /// CLOCK_PROCESS_CPUTIME_ID and CLOCK_THREAD_CPUTIME_ID. Any other negative
    /// clock is the CPU clock of a process or thread named by its pid.
    pub clock: i32,
}

const OWN_PROCESS_CPU_CLOCK: i32 = -6;
const OWN_THREAD_CPU_CLOCK: i32 = -2;

pub fn read(pid: i32) -> SysResult<Vec<ProcTimer>> {
    super::read_parsed(pid, "timers", parse, "an unexpected timer block")
}

pub fn parse(text: &str) -> Option<Vec<ProcTimer>> {
    let mut out: Vec<ProcTimer> = Vec::new();
    for l in text.lines() {
        let (k, v) = l.split_once(':')?;
        let v = v.trim();
        if k == "ID" {
            out.push(ProcTimer { id: v.parse().ok()?, ..Default::default() });
            continue;
        }
        let t = out.last_mut()?;
        match k {
            "signal" => {
                let (signo, val) = v.split_once('/')?;
                t.signo = signo.parse().ok()?;
                t.sigval = u64::from_str_radix(val, 16).ok()?;
            }
            "notify" => {
                let (how, target) = v.split_once('/')?;
                let how = match how {
                    "signal" => libc::SIGEV_SIGNAL,
                    "none" => libc::SIGEV_NONE,
                    "thread" => libc::SIGEV_THREAD,
                    _ => return None,
                };
                let (kind, n) = target.split_once('.')?;
                t.notify = match kind {
                    "pid" => how,
                    "tid" => how | libc::SIGEV_THREAD_ID,
                    _ => return None,
                };
                t.target = n.parse().ok()?;
            }
            "ClockID" => {
                t.clock = match v.parse().ok()? {
                    OWN_PROCESS_CPU_CLOCK => libc::CLOCK_PROCESS_CPUTIME_ID,
                    OWN_THREAD_CPU_CLOCK => libc::CLOCK_THREAD_CPUTIME_ID,
                    c => c,
                }
            }
            _ => {}
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_blocks() {
        let t = "ID: 0\nsignal: 10/000000000000002a\nnotify: signal/pid.42\nClockID: 1\n\
                 ID: 3\nsignal: 35/ffff000000000001\nnotify: signal/tid.43\nClockID: 0\n\
                 ID: 4\nsignal: 14/0000000000000000\nnotify: none/pid.42\nClockID: -6\n";
        let v = super::parse(t).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!((v[0].id, v[0].signo, v[0].sigval, v[0].notify, v[0].target, v[0].clock), (0, 10, 42, 0, 42, 1));
        assert_eq!(
            (v[1].id, v[1].sigval, v[1].notify, v[1].target),
            (3, 0xffff000000000001, libc::SIGEV_THREAD_ID, 43)
        );
        assert_eq!((v[2].notify, v[2].clock), (libc::SIGEV_NONE, libc::CLOCK_PROCESS_CPUTIME_ID));
        assert_eq!(super::parse("").unwrap(), vec![]);
        assert!(super::parse("signal: 10/0\n").is_none());
    }
}
