//! The table of saved files per controller, and the order restore writes them.
//!
//! Ordering requirements (the kernel refuses other orders):
//! - v1 cpuset: `cpuset.cpus` and `cpuset.mems` before the flags, and before any task
//!   enters or any child is configured (an empty cpuset takes no task; a child's
//!   cpus must be a subset of its parent's, so parents are written first).
//! - v1 memory: the memsw limit is never below the memory limit, so when growing the
//!   memory limit past the current memsw limit, memsw is written first (see
//!   `restore::write_props`); otherwise memory limit first.
//! - v1 devices: `a` is denied, then each saved rule allowed; parents first, since a
//!   child may not allow what its parent denies.
//! - v2: `cgroup.type` before any controller file (a threaded cgroup takes only
//!   threaded controllers); a cgroup's controller files exist only once its parent's
//!   `cgroup.subtree_control` enables them, so `cgroup.subtree_control` comes last in
//!   a directory and parents are done before children.
//! - freezer state (`freezer.state`, `cgroup.freeze`) is not written with the rest:
//!   the restore plan applies it after the tasks are placed.
//!
//! Files that only report (usage, statistics, events) are not in the table.

/// How a saved file is written back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The value as read.
    Plain,
    /// One write per line (device-keyed files: `8:0 1000`, `eth0 3`, `default 100`).
    Lines,
    /// A limit that may not go below the usage in file `usage`.
    Limit { usage: &'static str },
    /// `devices.list`: "a" into devices.deny, then each line into devices.allow.
    DevicesList,
    /// `memory.oom_control`: its `oom_kill_disable N` line, written as N.
    OomControl,
    /// `cgroup.type`: only "threaded" can be written.
    CgroupType,
    /// `cgroup.subtree_control`: "cpu memory" written as "+cpu +memory".
    SubtreeControl,
    /// `freezer.state` / `cgroup.freeze`: applied by the plan after tasks are placed.
    Freeze,
}

/// One saved file; `*` in the name stands for a page size (`hugetlb.2MB.max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prop {
    pub file: &'static str,
    pub kind: Kind,
}

const fn p(file: &'static str) -> Prop {
    Prop { file, kind: Kind::Plain }
}
const fn k(file: &'static str, kind: Kind) -> Prop {
    Prop { file, kind }
}

/// v1 files every hierarchy has.
const V1_CORE: &[Prop] = &[p("cgroup.clone_children"), p("notify_on_release")];

/// v1 controllers in the order their files are written within one directory.
const V1: &[(&str, &[Prop])] = &[
    (
        "cpuset",
        &[
            p("cpuset.cpus"),
            p("cpuset.mems"),
            p("cpuset.cpu_exclusive"),
            p("cpuset.mem_exclusive"),
            p("cpuset.mem_hardwall"),
            p("cpuset.memory_migrate"),
            p("cpuset.memory_spread_page"),
            p("cpuset.memory_spread_slab"),
            p("cpuset.sched_load_balance"),
            p("cpuset.sched_relax_domain_level"),
        ],
    ),
    (
        "cpu",
        &[
            p("cpu.shares"),
            p("cpu.cfs_period_us"),
            p("cpu.cfs_quota_us"),
            p("cpu.cfs_burst_us"),
            p("cpu.rt_period_us"),
            p("cpu.rt_runtime_us"),
            p("cpu.idle"),
        ],
    ),
    (
        "memory",
        &[
            // memory.kmem.limit_in_bytes is left out: this kernel accepts writes to it
            // and ignores them (kmem limits are gone).
            p("memory.use_hierarchy"),
            k("memory.limit_in_bytes", Kind::Limit { usage: "memory.usage_in_bytes" }),
            k("memory.memsw.limit_in_bytes", Kind::Limit { usage: "memory.memsw.usage_in_bytes" }),
            p("memory.soft_limit_in_bytes"),
            p("memory.swappiness"),
            k("memory.oom_control", Kind::OomControl),
            p("memory.move_charge_at_immigrate"),
        ],
    ),
    (
        "blkio",
        &[
            p("blkio.weight"),
            k("blkio.weight_device", Kind::Lines),
            p("blkio.bfq.weight"),
            k("blkio.bfq.weight_device", Kind::Lines),
            k("blkio.throttle.read_bps_device", Kind::Lines),
            k("blkio.throttle.write_bps_device", Kind::Lines),
            k("blkio.throttle.read_iops_device", Kind::Lines),
            k("blkio.throttle.write_iops_device", Kind::Lines),
        ],
    ),
    ("pids", &[p("pids.max")]),
    ("devices", &[k("devices.list", Kind::DevicesList)]),
    ("net_cls", &[p("net_cls.classid")]),
    ("net_prio", &[k("net_prio.ifpriomap", Kind::Lines)]),
    ("hugetlb", &[p("hugetlb.*.limit_in_bytes"), p("hugetlb.*.rsvd.limit_in_bytes")]),
    ("freezer", &[k("freezer.state", Kind::Freeze)]),
];

/// v2 core files written before the controllers of a directory.
const V2_HEAD: &[Prop] = &[k("cgroup.type", Kind::CgroupType), p("cgroup.max.depth"), p("cgroup.max.descendants")];
/// v2 core files written after the controllers of a directory.
const V2_TAIL: &[Prop] = &[k("cgroup.subtree_control", Kind::SubtreeControl), k("cgroup.freeze", Kind::Freeze)];

/// v2 controllers in write order.
const V2: &[(&str, &[Prop])] = &[
    ("cpuset", &[p("cpuset.cpus"), p("cpuset.mems"), p("cpuset.cpus.exclusive"), p("cpuset.cpus.partition")]),
    (
        "cpu",
        &[p("cpu.weight"), p("cpu.max"), p("cpu.max.burst"), p("cpu.idle"), p("cpu.uclamp.min"), p("cpu.uclamp.max")],
    ),
    (
        "memory",
        &[
            p("memory.min"),
            p("memory.low"),
            p("memory.high"),
            k("memory.max", Kind::Limit { usage: "memory.current" }),
            p("memory.swap.high"),
            p("memory.swap.max"),
            p("memory.zswap.max"),
            p("memory.oom.group"),
        ],
    ),
    ("io", &[k("io.weight", Kind::Lines), k("io.bfq.weight", Kind::Lines), k("io.max", Kind::Lines)]),
    ("pids", &[p("pids.max")]),
    ("hugetlb", &[p("hugetlb.*.max"), p("hugetlb.*.rsvd.max")]),
];

/// Files whose owner and mode are saved though they carry no configuration.
pub const PERM_ONLY: &[&str] = &["cgroup.procs", "tasks", "cgroup.threads", "cgroup.kill"];

/// The files saved for a v1 hierarchy with these controllers, in write order.
pub fn v1_props(controllers: &[String]) -> Vec<Prop> {
    let mut out = V1_CORE.to_vec();
    for (name, props) in V1 {
        if controllers.iter().any(|c| c == name) {
            out.extend_from_slice(props);
        }
    }
    out
}

/// The files saved for a v2 cgroup whose `cgroup.controllers` lists `available`.
pub fn v2_props(available: &[String]) -> Vec<Prop> {
    let mut out = V2_HEAD.to_vec();
    for (name, props) in V2 {
        if available.iter().any(|c| c == name) {
            out.extend_from_slice(props);
        }
    }
    out.extend_from_slice(V2_TAIL);
    out
}

/// How a saved file is written; unknown names (from a newer writer) are plain.
pub fn kind_of(file: &str) -> Kind {
    let all = V1.iter().chain(V2.iter()).flat_map(|(_, ps)| ps.iter());
    V1_CORE
        .iter()
        .chain(V2_HEAD)
        .chain(V2_TAIL)
        .chain(all)
        .find(|p| matches(p.file, file))
        .map(|p| p.kind)
        .unwrap_or(Kind::Plain)
}

/// Whether `name` matches `pattern`; a `*` matches one dot-free word.
pub fn matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((pre, post)) => name
            .strip_prefix(pre)
            .and_then(|r| r.strip_suffix(post))
            .is_some_and(|mid| !mid.is_empty() && !mid.contains('.')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(ps: &[Prop]) -> Vec<&'static str> {
        ps.iter().map(|p| p.file).collect()
    }

    fn pos(ps: &[Prop], f: &str) -> usize {
        names(ps).iter().position(|n| *n == f).unwrap_or_else(|| panic!("{f} not in table"))
    }

    #[test]
    fn v1_orders() {
        let ps = v1_props(&["cpuset".into(), "memory".into(), "devices".into()]);
        assert!(pos(&ps, "cpuset.cpus") < pos(&ps, "cpuset.cpu_exclusive"));
        assert!(pos(&ps, "cpuset.mems") < pos(&ps, "cpuset.mem_exclusive"));
        assert!(pos(&ps, "memory.limit_in_bytes") < pos(&ps, "memory.memsw.limit_in_bytes"));
        assert!(pos(&ps, "memory.use_hierarchy") < pos(&ps, "memory.limit_in_bytes"));
        assert_eq!(kind_of("devices.list"), Kind::DevicesList);
        assert!(!names(&ps).contains(&"cpu.shares"));
        assert!(!names(&ps).iter().any(|n| n.contains("usage") || n.contains("stat")));
    }

    #[test]
    fn v2_orders() {
        let ps = v2_props(&["memory".into(), "cpu".into(), "cpuset".into(), "io".into(), "hugetlb".into()]);
        assert_eq!(ps[0].file, "cgroup.type");
        assert_eq!(ps.last().unwrap().file, "cgroup.freeze");
        assert!(pos(&ps, "cpu.max") < pos(&ps, "cgroup.subtree_control"));
        assert!(pos(&ps, "cpuset.cpus") < pos(&ps, "cpuset.cpus.partition"));
        assert!(pos(&ps, "cpuset.mems") < pos(&ps, "cpuset.cpus.partition"));
        let only_core = v2_props(&[]);
        assert_eq!(names(&only_core).len(), 5);
    }

    #[test]
    fn globs() {
        assert!(matches("hugetlb.*.max", "hugetlb.2MB.max"));
        assert!(!matches("hugetlb.*.max", "hugetlb.2MB.rsvd.max"));
        assert!(matches("hugetlb.*.rsvd.max", "hugetlb.1GB.rsvd.max"));
        assert!(!matches("hugetlb.*.max", "hugetlb..max"));
        assert_eq!(kind_of("memory.max"), Kind::Limit { usage: "memory.current" });
        assert_eq!(kind_of("something.new"), Kind::Plain);
    }
}
