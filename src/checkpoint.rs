//! The checkpoint as the engine sees it: what a dump produces and a restore
//! consumes. `image::convert` turns these into image messages and back, checking
//! every enum and required field on the way in. Memory lives in `mm`, open files in
//! `files`; plain-data parts of the schema (credentials, limits, pending signals)
//! are used as the schema defines them.

use std::path::PathBuf;

use crate::image::pb;
use crate::sys::ptrace::Regs;
use crate::sys::remote::ItimerWhich;
use crate::sys::signal::{ITimerVal, SigAction};

/// The machine architecture images were taken on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
}

impl Arch {
    /// The architecture this ccr runs on (and restores).
    pub const HOST: Arch = Arch::X86_64;

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
        }
    }
}

/// What the checkpoint holds.
#[derive(Clone, Debug)]
pub struct Inventory {
    pub root_pid: i32,
    /// Every task, the root first, parents before children.
    pub tasks: Vec<pb::TaskEntry>,
    pub arch: Arch,
    pub kernel: String,
    pub ccr_version: String,
    pub dump_time_unix_ns: u64,
    /// The XSAVE features the dumping CPU had enabled.
    pub xfeatures: u64,
    /// The root is PID 1 of its own PID namespace; pids are as seen inside it.
    pub pid_ns: bool,
    /// The tree's own UTS namespace, when it had one.
    pub uts: Option<pb::UtsNamespace>,
    /// The tree's own IPC namespace's semaphores and message queues, when it had one.
    pub ipc: Option<pb::IpcNamespace>,
    /// The images directory this one builds on, relative to this one.
    pub parent: Option<PathBuf>,
    /// sums.img has the checksums of every raw data file.
    pub checksummed: bool,
    /// A shell's job: sid or pgid 0 stands for the restoring caller's.
    pub shell_job: bool,
    /// The tree's own time namespace's clocks at the dump, when it had one.
    pub time: Option<pb::TimeNamespace>,
    /// The tree's own mount namespace, when it had one.
    pub mnt: Option<pb::MountNamespace>,
    /// The tree's own network namespace, when it had one.
    pub net: Option<pb::NetNamespace>,
    /// The tree's own cgroup namespace (its root on every hierarchy), when it had one.
    pub cgroup_ns: Option<pb::CgroupNamespace>,
    /// The tree's own user namespace (its id maps), when it had one.
    pub user_ns: Option<pb::UserNamespace>,
}

/// One thread.
#[derive(Clone, Debug, Default)]
pub struct ThreadCore {
    pub tid: i32,
    pub regs: Regs,
    /// The whole XSAVE area (x87, SSE, AVX, PKRU, ...).
    pub xsave: Vec<u8>,
    /// Mask, pending signals, altstack, rseq, robust list, name, affinity.
    pub state: pb::ThreadState,
}

/// A task's state other than memory and files.
#[derive(Clone, Debug)]
pub struct TaskCore {
    pub pid: i32,
    pub comm: String,
    /// The leader first.
    pub threads: Vec<ThreadCore>,
    /// Every action that is not the plain default, by signal number.
    pub sigactions: Vec<(i32, SigAction)>,
    pub pending_shared: Vec<pb::PendingSignal>,
    pub creds: pb::Creds,
    pub rlimits: Vec<pb::Rlimit>,
    pub umask: u32,
    pub personality: u32,
    pub dumpable: i32,
    pub cwd: String,
    pub root: String,
    pub itimers: Vec<(ItimerWhich, ITimerVal)>,
    pub pdeath_signal: i32,
    pub timer_slack_ns: u64,
    pub exit_signal: i32,
    /// The job-control stop signal the task was in (0: it was running).
    pub stop_signal: i32,
    pub child_subreaper: bool,
    pub posix_timers: Vec<pb::PosixTimer>,
    pub oom_score_adj: i32,
    pub thp_disabled: bool,
    pub loginuid: u32,
    pub seccomp_filters: Vec<pb::SeccompFilter>,
}

/// The scheduling policies a thread is restored with: SCHED_OTHER, FIFO, RR,
/// BATCH and IDLE (SCHED_DEADLINE's parameters are not in /proc).
pub const SCHED_POLICIES: [u32; 5] = [0, 1, 2, 3, 5];

/// The clocks a POSIX timer of a checkpoint may run on: the ones a restored task
/// can create a timer on again by number (not the CPU clock of some other
/// process or thread).
pub const TIMER_CLOCKS: [i32; 8] = [
    libc::CLOCK_REALTIME,
    libc::CLOCK_MONOTONIC,
    libc::CLOCK_PROCESS_CPUTIME_ID,
    libc::CLOCK_THREAD_CPUTIME_ID,
    libc::CLOCK_BOOTTIME,
    libc::CLOCK_REALTIME_ALARM,
    libc::CLOCK_BOOTTIME_ALARM,
    libc::CLOCK_TAI,
];
