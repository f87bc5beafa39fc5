//! timerfd: made again with the time it had left, its interval and the
//! expirations not yet read (TFD_IOC_SET_TICKS).

use std::os::fd::OwnedFd;

use super::{DumpCx, FdProbe, FileDesc, FileState, OpenCx};
use crate::error::Result;
use crate::image::pb;
use crate::sys::anonfd::{self, TimerState};

file_kind! { TimerFd: "timerfd", Timerfd, BeforeFork, anon "timerfd";

    fn dump(&self, _cx: &mut DumpCx<'_>, p: &FdProbe, _id: u32) -> Result<FileState> {
        let i = &p.info;
        Ok(FileState::Timerfd(pb::TimerFd {
            clock: p.need(i.num("clockid", 10), "clockid")? as i32,
            ticks: i.num("ticks", 10).unwrap_or(0),
            value_ns: p.need(i.timespec("it_value"), "it_value")?,
            interval_ns: p.need(i.timespec("it_interval"), "it_interval")?,
        }))
    }

    fn open(&self, _cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
        let FileState::Timerfd(t) = &f.state else { unreachable!("owned by TimerFd") };
        let state = TimerState { clock: t.clock, value_ns: t.value_ns, interval_ns: t.interval_ns, ticks: t.ticks };
        Ok(anonfd::timerfd(&state, f.nonblock())?)
    }
}
