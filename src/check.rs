//! `ccr check`: which kernel features ccr relies on are present, one line each.

use crate::sys::features;

/// The report lines and whether every required feature is present.
pub fn report() -> (Vec<String>, bool) {
    let mut lines = Vec::new();
    let mut ok = true;
    let mut line = |name: &str, present: bool, required: bool, note: &str| {
        let state = match (present, required) {
            (true, _) => "ok",
            (false, true) => "MISSING",
            (false, false) => "absent",
        };
        ok &= present || !required;
        lines.push(format!("{state:<8} {name}{}{note}", if note.is_empty() { "" } else { ": " }));
    };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    line("kernel", true, true, kernel.trim());
    line("CONFIG_CHECKPOINT_RESTORE (PR_GET_TID_ADDRESS, PR_SET_MM_MAP)", features::checkpoint_restore(), true, "");
    line("clone3 with set_tid", features::clone3(), true, "");
    let yama =
        std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").ok().and_then(|s| s.trim().parse::<u32>().ok());
    line(
        "ptrace allowed (yama ptrace_scope < 3)",
        yama.is_none_or(|v| v < 3),
        true,
        &yama.map(|v| format!("scope {v}")).unwrap_or_default(),
    );
    line("pidfd_getfd", features::pidfd_getfd(), false, "");
    line("userfaultfd", features::userfaultfd(), false, "lazy restore");
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags: Vec<&str> =
        cpu.lines().find(|l| l.starts_with("flags")).map(|l| l.split_whitespace().collect()).unwrap_or_default();
    let has = |f: &str| flags.contains(&f);
    line(
        "xsave",
        has("xsave"),
        true,
        &["avx", "avx2", "avx512f", "pku"].iter().filter(|f| has(f)).copied().collect::<Vec<_>>().join(" "),
    );
    line(
        "cgroup v1 freezer",
        std::path::Path::new("/sys/fs/cgroup/freezer/freezer.state").exists()
            || std::path::Path::new("/sys/fs/cgroup/freezer").is_dir(),
        false,
        "",
    );
    let v2 = ["/sys/fs/cgroup/unified/cgroup.controllers", "/sys/fs/cgroup/cgroup.controllers"]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
    line("cgroup v2", v2, false, "");
    (lines, ok)
}
