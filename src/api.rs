//! The operations a caller can ask for. The CLI and the C ABI both call these, and
//! nothing else of the engine.
//!
//! The C ABI runs dump and restore in a helper process of its own (`helper`): ptrace
//! belongs to the one thread that attached, and a caller such as liblxc is
//! multi-threaded and reaps children with waitpid(-1).

use crate::error::Result;
use crate::opts::{CgroupRestoreCmdOpts, CgroupSaveOpts, DumpOpts, FreezeOpts, RestoreOpts};

/// Where an operation runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// In the calling process (the `ccr` binary: single-threaded, owns its children).
    InProcess,
    /// In a forked helper; a restored task becomes a child of the caller.
    Helper,
}

pub fn dump(opts: &DumpOpts, iso: Isolation) -> Result<()> {
    match iso {
        Isolation::InProcess => crate::dump::run(opts),
        Isolation::Helper => {
            use crate::cgroup::freeze;
            // A helper killed outright cannot give the freeze cgroup back its state:
            // its caller does, from what it saw before.
            let before = match &opts.freeze_cgroup {
                Some(p) => Some((p, freeze::frozen_by_self(p)?)),
                None => None,
            };
            let out = crate::sys::helper::run(|| crate::dump::run(opts).map(|()| 0)).map(|_| ());
            if let (Err(_), Some((path, frozen))) = (&out, before) {
                let t = opts.freeze_timeout();
                let _ = if frozen { freeze::freeze(path, t) } else { freeze::thaw(path, t) };
            }
            out
        }
    }
}

/// Restores the checkpoint; returns the PID of the restored root task once it runs.
pub fn restore(opts: &RestoreOpts, iso: Isolation) -> Result<i32> {
    if opts.pty_master_socket.is_some() && opts.pty_master_callback.is_some() {
        let what = "the new pty masters go to a socket or to a function, not both";
        return Err(crate::error::Error::InvalidArgument(what.into()));
    }
    match iso {
        Isolation::InProcess => crate::restore::run(opts, opts.sibling),
        Isolation::Helper => match &opts.pty_master_callback {
            None => crate::sys::helper::run(|| crate::restore::run(opts, true)),
            // The caller's function gets the masters in the caller's process.
            Some(cb) => {
                let (ours, theirs) = crate::sys::unix_sock::socketpair(libc::SOCK_SEQPACKET)?;
                let mut helper_opts = opts.clone();
                helper_opts.pty_master_callback = Some(crate::restore::pty_masters::remote(theirs));
                let mut answer = |data: &[u8], fd| crate::restore::pty_masters::answer(cb, data, fd);
                let service = crate::sys::helper::Service { chan: ours, answer: &mut answer };
                crate::sys::helper::run_serving(|| crate::restore::run(&helper_opts, true), Some(service))
            }
        },
    }
}

/// Freezes the cgroup `opts.freeze_cgroup`, or with only a pid, the tree of that pid
/// by ptrace (a holder process keeps it stopped until `thaw`; forked from a
/// single-threaded helper, as the C ABI's caller may have threads).
pub fn freeze(opts: &FreezeOpts) -> Result<()> {
    match (&opts.freeze_cgroup, opts.pid) {
        (None, Some(pid)) => crate::sys::helper::run(|| crate::holder::freeze(pid).map(|()| 0)).map(|_| ()),
        _ => crate::cgroup::api::freeze(opts),
    }
}

pub fn thaw(opts: &FreezeOpts) -> Result<()> {
    match (&opts.freeze_cgroup, opts.pid) {
        (None, Some(pid)) => crate::holder::thaw(pid),
        _ => crate::cgroup::api::thaw(opts),
    }
}

pub fn cgroup_save(opts: &CgroupSaveOpts) -> Result<()> {
    crate::cgroup::api::save(opts)
}

pub fn cgroup_restore(opts: &CgroupRestoreCmdOpts) -> Result<()> {
    crate::cgroup::api::restore(opts)
}
