//! Hooks: the caller's own steps at fixed points of a dump and of a restore (a
//! container manager locks its network, moves an interface into the new
//! namespaces, ...). Two kinds, run in this order at each stage: action scripts
//! (`--action-script`, as criu's) and one callback (`ccr_opts_set_hook` of the C
//! ABI). The first that fails aborts the operation there, with a [`HookError`]
//! naming the hook, the stage and the status; the dump and restore error paths
//! then undo what they hold, as for any failed stage.
//!
//! A script gets in its environment CRTOOLS_SCRIPT_ACTION (the stage's name),
//! CRTOOLS_IMAGE_DIR (the images directory, absolute) and CRTOOLS_INIT_PID (the
//! root task's pid as ccr sees it; for setup-namespaces the task whose namespaces
//! are to be set up; unset at pre-restore, when no task exists yet). It runs with
//! stdin on /dev/null and ccr's stdout and stderr, in a process group of its own,
//! with none of ccr's other fds, signal mask, signal actions or CPU pin
//! (`sys::process::isolate_script`): it cannot take part in the ptrace sessions
//! ccr holds, and a stop request to ccr kills it (its whole group) rather than
//! wait for it, so the error path still runs.

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::log::Log;
use crate::opts::HookOpts;
use crate::{debug, info};

/// The points at which hooks run, in the order a dump and then a restore reach
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HookStage {
    /// Dump: before anything is frozen or seized.
    PreDump,
    /// Dump: every task is seized; nothing is collected yet.
    NetworkLock,
    /// Dump: the images are complete and in place; the tasks are still stopped
    /// (not killed yet, nor let go).
    PostDump,
    /// Dump: with --leave-running, or after a failure once network-lock ran, just
    /// before the tasks are let go. Restore: after post-restore.
    NetworkUnlock,
    /// Restore: before anything is made (no task exists).
    PreRestore,
    /// Restore: the tree exists in its new namespaces and nothing restored runs.
    SetupNamespaces,
    /// Restore: right after setup-namespaces.
    PostSetupNamespaces,
    /// Restore: every task is rebuilt and its data checked; all still stopped.
    PostRestore,
    /// Restore: the last point before the tasks run.
    PreResume,
    /// Restore: the tasks run. A failure here is logged, not returned: the tree
    /// cannot be taken back.
    PostResume,
}

impl HookStage {
    pub const ALL: [HookStage; 10] = [
        HookStage::PreDump,
        HookStage::NetworkLock,
        HookStage::PostDump,
        HookStage::NetworkUnlock,
        HookStage::PreRestore,
        HookStage::SetupNamespaces,
        HookStage::PostSetupNamespaces,
        HookStage::PostRestore,
        HookStage::PreResume,
        HookStage::PostResume,
    ];

    /// The name scripts see in CRTOOLS_SCRIPT_ACTION (criu's names), as a C string
    /// for the C ABI.
    pub fn c_name(self) -> &'static CStr {
        match self {
            HookStage::PreDump => c"pre-dump",
            HookStage::NetworkLock => c"network-lock",
            HookStage::PostDump => c"post-dump",
            HookStage::NetworkUnlock => c"network-unlock",
            HookStage::PreRestore => c"pre-restore",
            HookStage::SetupNamespaces => c"setup-namespaces",
            HookStage::PostSetupNamespaces => c"post-setup-namespaces",
            HookStage::PostRestore => c"post-restore",
            HookStage::PreResume => c"pre-resume",
            HookStage::PostResume => c"post-resume",
        }
    }

    pub fn name(self) -> &'static str {
        self.c_name().to_str().expect("ASCII names")
    }

    pub fn from_name(s: &str) -> Option<HookStage> {
        HookStage::ALL.into_iter().find(|h| h.name() == s)
    }
}

impl std::fmt::Display for HookStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A callback hook: (stage, root pid if a task exists, images directory) → 0 to
/// go on, anything else to abort.
pub type HookFn = dyn Fn(HookStage, Option<i32>, &Path) -> i32 + Send + Sync;

/// A callback hook as options hold it.
pub type HookCallback = crate::opts::Callback<HookFn>;

impl HookCallback {
    pub fn new(f: impl Fn(HookStage, Option<i32>, &Path) -> i32 + Send + Sync + 'static) -> Self {
        crate::opts::Callback(Arc::new(f))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("action script {script} failed at stage {stage}: exit status {code}")]
    ScriptExit { script: PathBuf, stage: HookStage, code: i32 },
    #[error("action script {script} failed at stage {stage}: killed by {signal}")]
    ScriptKilled { script: PathBuf, stage: HookStage, signal: String },
    #[error("action script {script} could not be run at stage {stage}: {source}")]
    ScriptSpawn { script: PathBuf, stage: HookStage, source: std::io::Error },
    #[error("action script {script} was killed at stage {stage}: ccr was stopped by {signal}")]
    Interrupted { script: PathBuf, stage: HookStage, signal: String },
    #[error("the hook callback failed at stage {stage}: it returned {code}")]
    Callback { stage: HookStage, code: i32 },
}

impl HookError {
    pub fn errno(&self) -> i32 {
        match self {
            HookError::ScriptSpawn { source, .. } => source.raw_os_error().unwrap_or(libc::ENOEXEC),
            HookError::Interrupted { .. } => libc::EINTR,
            _ => libc::ECANCELED,
        }
    }

    /// The stage it failed at.
    pub fn stage(&self) -> HookStage {
        match self {
            HookError::ScriptExit { stage, .. }
            | HookError::ScriptKilled { stage, .. }
            | HookError::ScriptSpawn { stage, .. }
            | HookError::Interrupted { stage, .. }
            | HookError::Callback { stage, .. } => *stage,
        }
    }
}

/// The hooks of one run, with what every stage tells them.
pub struct Hooks<'a> {
    opts: &'a HookOpts,
    images_dir: PathBuf,
    /// ccr's CPU mask before a run pins it: scripts get this one.
    affinity: Option<Vec<u8>>,
}

impl<'a> Hooks<'a> {
    /// Call before the run pins ccr to a CPU: the scripts inherit the mask ccr has now.
    pub fn new(opts: &'a HookOpts, images_dir: &Path) -> Hooks<'a> {
        let images_dir = std::path::absolute(images_dir).unwrap_or_else(|_| images_dir.to_path_buf());
        let affinity = if opts.scripts.is_empty() { None } else { crate::sys::process::affinity(0).ok() };
        Hooks { opts, images_dir, affinity }
    }

    /// The CPU mask scripts get, when the run was pinned before the hooks were made.
    pub fn with_affinity(mut self, mask: Option<&[u8]>) -> Self {
        if let Some(m) = mask {
            self.affinity = Some(m.to_vec());
        }
        self
    }

    /// Runs every script, then the callback, at `stage`; the first failure stops
    /// the rest. A stop request to ccr (SIGINT, SIGTERM, SIGHUP) kills a running
    /// script.
    pub fn run(&self, log: &mut Log, stage: HookStage, pid: Option<i32>) -> Result<(), HookError> {
        self.run_with(log, stage, pid, true)
    }

    /// The same on an error path (the network-unlock after a failed dump): a stop
    /// request does not cut the scripts short, they are what undoes the lock.
    pub fn run_to_end(&self, log: &mut Log, stage: HookStage, pid: Option<i32>) -> Result<(), HookError> {
        self.run_with(log, stage, pid, false)
    }

    fn run_with(&self, log: &mut Log, stage: HookStage, pid: Option<i32>, stoppable: bool) -> Result<(), HookError> {
        for script in &self.opts.scripts {
            info!(log, "hook {stage}: running {}", script.display());
            self.script(script, stage, pid, stoppable)?;
            debug!(log, "hook {stage}: {} done", script.display());
        }
        if let Some(cb) = &self.opts.callback {
            let code = (cb.0)(stage, pid, &self.images_dir);
            debug!(log, "hook {stage}: the callback returned {code}");
            if code != 0 {
                return Err(HookError::Callback { stage, code });
            }
        }
        Ok(())
    }

    fn script(&self, script: &Path, stage: HookStage, pid: Option<i32>, stoppable: bool) -> Result<(), HookError> {
        let mut cmd = Command::new(script);
        cmd.env("CRTOOLS_SCRIPT_ACTION", stage.name()).env("CRTOOLS_IMAGE_DIR", &self.images_dir);
        match pid {
            Some(p) => cmd.env("CRTOOLS_INIT_PID", p.to_string()),
            // ccr may itself run from a hook that set it.
            None => cmd.env_remove("CRTOOLS_INIT_PID"),
        };
        cmd.stdin(Stdio::null());
        crate::sys::process::isolate_script(&mut cmd, self.affinity.clone());
        let mut child =
            cmd.spawn().map_err(|source| HookError::ScriptSpawn { script: script.to_path_buf(), stage, source })?;
        let group = child.id() as i32;
        let mut nap = Duration::from_millis(1);
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) => {}
                Err(source) => {
                    let _ = crate::sys::process::kill(-group, libc::SIGKILL);
                    let _ = child.wait();
                    return Err(HookError::ScriptSpawn { script: script.to_path_buf(), stage, source });
                }
            }
            if let Some(sig) = crate::sys::interrupt::pending().filter(|_| stoppable) {
                let _ = crate::sys::process::kill(-group, libc::SIGKILL);
                let _ = child.wait();
                let signal = crate::sys::interrupt::name(sig);
                return Err(HookError::Interrupted { script: script.to_path_buf(), stage, signal });
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(20));
        };
        use std::os::unix::process::ExitStatusExt;
        let script = script.to_path_buf();
        match (status.code(), status.signal()) {
            (Some(0), _) => Ok(()),
            (Some(code), _) => Err(HookError::ScriptExit { script, stage, code }),
            (None, Some(sig)) => {
                let signal = nix::sys::signal::Signal::try_from(sig).map_or(format!("signal {sig}"), |s| s.to_string());
                Err(HookError::ScriptKilled { script, stage, signal })
            }
            (None, None) => Err(HookError::ScriptKilled { script, stage, signal: format!("{status}") }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_criu_s_and_round_trip() {
        let names: Vec<&str> = HookStage::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "pre-dump",
                "network-lock",
                "post-dump",
                "network-unlock",
                "pre-restore",
                "setup-namespaces",
                "post-setup-namespaces",
                "post-restore",
                "pre-resume",
                "post-resume"
            ]
        );
        for s in HookStage::ALL {
            assert_eq!(HookStage::from_name(s.name()), Some(s));
        }
        assert_eq!(HookStage::from_name("post-frobnicate"), None);
    }

    #[test]
    fn callbacks_are_equal_only_to_themselves() {
        let a = HookCallback::new(|_, _, _| 0);
        let b = HookCallback::new(|_, _, _| 0);
        assert_eq!(a, a.clone());
        assert_ne!(a, b);
    }

    #[test]
    fn a_failing_callback_is_named_with_its_stage() {
        let opts = HookOpts {
            scripts: vec![],
            callback: Some(HookCallback::new(|s, pid, dir| {
                assert_eq!((pid, dir), (Some(7), Path::new("/imgs")));
                if s == HookStage::PostDump {
                    5
                } else {
                    0
                }
            })),
        };
        let hooks = Hooks::new(&opts, Path::new("/imgs"));
        let mut log = Log::open(None, crate::log::Level::Error).unwrap();
        assert!(hooks.run(&mut log, HookStage::PreDump, Some(7)).is_ok());
        let e = hooks.run(&mut log, HookStage::PostDump, Some(7)).unwrap_err();
        assert_eq!(e.stage(), HookStage::PostDump);
        assert_eq!(e.to_string(), "the hook callback failed at stage post-dump: it returned 5");
    }
}
