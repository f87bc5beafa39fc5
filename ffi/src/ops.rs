//! The operations: each converts the options object for its operation and calls
//! the engine once, in a helper process where ptrace needs one.

use std::ffi::c_int;

use ccr::api::{self, Isolation};

use crate::error::{engine, entry};
use crate::opts::{opts_ref, CcrOpts};

/// Checkpoints the task set by ccr_opts_set_pid() into the images directory.
/// Returns 0 or a negative errno.
///
/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ccr_dump(opts: *const CcrOpts) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        let o = unsafe { opts_ref(opts) }?;
        engine(api::dump(&o.dump(), Isolation::Helper)).map(|()| 0)
    })
}

/// Restores the checkpoint in the images directory. The restored task is a child of
/// the calling process. Returns its PID once it runs, or a negative errno.
///
/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ccr_restore(opts: *const CcrOpts) -> libc::pid_t {
    entry(|| {
        // SAFETY: forwarded caller contract.
        let o = unsafe { opts_ref(opts) }?;
        engine(api::restore(&o.restore(), Isolation::Helper))
    })
}

/// Freezes the cgroup set by ccr_opts_set_freeze_cgroup().
///
/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ccr_freeze(opts: *const CcrOpts) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        engine(api::freeze(&unsafe { opts_ref(opts) }?.freeze())).map(|()| 0)
    })
}

/// Thaws what ccr_freeze() froze.
///
/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ccr_thaw(opts: *const CcrOpts) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        engine(api::thaw(&unsafe { opts_ref(opts) }?.freeze())).map(|()| 0)
    })
}

/// Saves the container's cgroups into the images directory (cgroup.img).
///
/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ccr_cgroup_save(opts: *const CcrOpts) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        engine(api::cgroup_save(&unsafe { opts_ref(opts) }?.cgroup_save())).map(|()| 0)
    })
}

/// Creates and configures the saved cgroups again (see ccr_opts_set_manage_cgroups()).
///
/// # Safety
/// `opts` is null or a pointer from ccr_opts_new() not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ccr_cgroup_restore(opts: *const CcrOpts) -> c_int {
    entry(|| {
        // SAFETY: forwarded caller contract.
        engine(api::cgroup_restore(&unsafe { opts_ref(opts) }?.cgroup_restore())).map(|()| 0)
    })
}
