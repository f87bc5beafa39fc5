//! Special fds in one process: eventfd, timerfd, signalfd, epoll, unix socket pairs
//! (stream and datagram, with queued data), inotify and a deleted file, through
//! dump → kill → restore → verify, and through a dump that leaves the task running.

mod common;

use std::time::Duration;

use common::{assert_exit, assert_running_untraced, cycle, Case};
use nix::sys::signal::Signal;

#[test]
fn fd_kinds() {
    cycle("fd-kinds", "wl_fdkinds", &[], None);
}

#[test]
fn fd_kinds_leave_running() {
    let mut case = Case::new("fd-kinds-leave-running");
    let pid = case.start_workload("wl_fdkinds", &[]);
    case.wait_ready(pid, Duration::from_secs(10));
    case.dump_ok(pid, &["--leave-running"]);
    // The dump peeked at queues and counters; the original must not notice.
    assert_running_untraced(pid, "original after dump --leave-running");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, "original");
    case.assert_pass(1);
}
