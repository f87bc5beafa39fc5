//! `ccr check`: which kernel features ccr relies on are present, one line each.

use crate::sys::{features, proc};

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Feature {
    pub name: &'static str,
    pub present: bool,
    /// Without it ccr cannot dump or restore at all.
    pub required: bool,
    pub note: String,
}

impl Feature {
    /// "ok", "MISSING" (required and absent) or "absent".
    pub fn state(&self) -> &'static str {
        match (self.present, self.required) {
            (true, _) => "ok",
            (false, true) => "MISSING",
            (false, false) => "absent",
        }
    }

    pub fn line(&self) -> String {
        let sep = if self.note.is_empty() { "" } else { ": " };
        format!("{:<8} {}{sep}{}", self.state(), self.name, self.note)
    }
}

fn feature(name: &'static str, present: bool, required: bool, note: impl Into<String>) -> Feature {
    Feature { name, present, required, note: note.into() }
}

/// Every feature, in report order.
pub fn features() -> Vec<Feature> {
    let yama = proc::kernel::yama_ptrace_scope();
    let flags = proc::cpuinfo::flags();
    let has = |f: &str| flags.iter().any(|x| x == f);
    let xsave_note: Vec<&str> = ["avx", "avx2", "avx512f", "pku"].into_iter().filter(|f| has(f)).collect();
    // What dump and restore of other users' processes need (root has them).
    let caps = proc::status::read(proc::SELF).ok().and_then(|s| s.hex("CapEff").ok()).unwrap_or(0);
    let needed = [(21, "CAP_SYS_ADMIN"), (19, "CAP_SYS_PTRACE"), (40, "CAP_CHECKPOINT_RESTORE")];
    let missing: Vec<&str> = needed.iter().filter(|(bit, _)| caps & (1u64 << bit) == 0).map(|(_, n)| *n).collect();
    let privileges_note = if missing.is_empty() { String::new() } else { format!("missing {}", missing.join(", ")) };
    vec![
        feature("kernel", true, true, proc::kernel::osrelease()),
        feature(
            "privileges (CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_CHECKPOINT_RESTORE: run as root)",
            missing.is_empty(),
            true,
            privileges_note,
        ),
        feature(
            "CONFIG_CHECKPOINT_RESTORE (PR_GET_TID_ADDRESS, PR_SET_MM_MAP)",
            features::checkpoint_restore(),
            true,
            "",
        ),
        feature("clone3 with set_tid", features::clone3(), true, ""),
        feature(
            "ptrace allowed (yama ptrace_scope < 3)",
            yama.is_none_or(|v| v < 3),
            true,
            yama.map(|v| format!("scope {v}")).unwrap_or_default(),
        ),
        feature("kcmp (shared open files)", features::kcmp(), true, ""),
        feature("pagemap (present pages)", features::pagemap(), true, ""),
        feature("pidfd_getfd", features::pidfd_getfd(), false, ""),
        feature(
            "POSIX timers under their IDs (PR_TIMER_CREATE_RESTORE_IDS, Linux 6.15)",
            features::timer_restore_ids(),
            false,
            "restoring a process with timer_create timers",
        ),
        feature("userfaultfd", features::userfaultfd(), false, "lazy restore"),
        feature("xsave", has("xsave"), true, xsave_note.join(" ")),
        feature("namespaces", true, false, {
            let kinds = ["pid", "mnt", "uts", "ipc", "net", "cgroup", "time", "user"];
            let (has, lacks): (Vec<&str>, Vec<&str>) = kinds.iter().partition(|k| proc::ns::has(k));
            let mut note = format!(
                "{}; a tree's own of each comes back, user too (one level below ccr's, owning the tree's others)",
                has.join(" ")
            );
            if !lacks.is_empty() {
                note.push_str(&format!("; this kernel has no {}", lacks.join(" ")));
            }
            note
        }),
        feature(
            "mount API (fsopen, open_tree, move_mount, mount_setattr; openat2)",
            features::mount_api(),
            false,
            "restoring a tree's own mount namespace",
        ),
        feature("cgroup v1 freezer", std::path::Path::new("/sys/fs/cgroup/freezer").is_dir(), false, ""),
        feature(
            "cgroup v2",
            ["/sys/fs/cgroup/unified/cgroup.controllers", "/sys/fs/cgroup/cgroup.controllers"]
                .iter()
                .any(|p| std::path::Path::new(p).exists()),
            false,
            "",
        ),
    ]
}

/// The report lines and whether every required feature is present.
pub fn report() -> (Vec<String>, bool) {
    let fs = features();
    let ok = fs.iter().all(|f| f.present || !f.required);
    (fs.iter().map(Feature::line).collect(), ok)
}
