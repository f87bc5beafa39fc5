//! Discovery: which cgroup hierarchies are mounted where (`/proc/self/mountinfo`) and
//! which cgroup of each a task is in (`/proc/PID/cgroup`). The parsers are pure.

use std::path::{Path, PathBuf};

use super::CgroupError;
use crate::sys::proc::{self, mountinfo, mountinfo::Mount};

/// The v1 controllers the kernel knows; any other mount option is not a controller.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
    "debug",
];

/// Whether `c` names a v1 hierarchy's controller: one the kernel knows, or a
/// named hierarchy ("name=systemd").
pub fn is_v1_controller(c: &str) -> bool {
    match c.strip_prefix("name=") {
        Some(n) => !n.is_empty() && !n.contains([',', ':', '/', '\n']),
        None => V1_CONTROLLERS.contains(&c),
    }
}

/// One mounted hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    /// 1 or 2.
    pub version: u32,
    /// v1: bound controllers and `name=X`, sorted; v2: empty.
    pub controllers: Vec<String>,
    pub mount_point: PathBuf,
    /// The cgroup the mount shows at its mount point ("/" unless a bind mount or a
    /// mount made inside a cgroup namespace).
    pub mount_root: String,
}

impl Hierarchy {
    /// A readable name: "cpu,cpuacct", "name=systemd", or "unified".
    pub fn key(&self) -> String {
        if self.version == 2 {
            "unified".to_string()
        } else {
            self.controllers.join(",")
        }
    }

    /// Whether a `--cgroup-root CTRL:` prefix names this hierarchy. `name=systemd`
    /// also answers to `systemd`; the v2 hierarchy to `unified` and `cgroup2`.
    pub fn answers_to(&self, ctl: &str) -> bool {
        if self.version == 2 {
            return ctl == "unified" || ctl == "cgroup2" || ctl.is_empty();
        }
        self.controllers.iter().any(|c| c == ctl || c.strip_prefix("name=") == Some(ctl))
    }

    /// The directory of cgroup `cg_path` ("/lxc/c1"), if this mount shows it.
    pub fn dir_of(&self, cg_path: &str) -> Option<PathBuf> {
        let rel = strip_cg_prefix(cg_path, &self.mount_root)?;
        Some(if rel.is_empty() { self.mount_point.clone() } else { self.mount_point.join(rel) })
    }

    /// The cgroup path of directory `dir`, if it lies in this mount.
    pub fn cg_path_of(&self, dir: &Path) -> Option<String> {
        let rel = dir.strip_prefix(&self.mount_point).ok()?;
        Some(join_cg(&self.mount_root, &rel.to_string_lossy()))
    }
}

/// `child` below `parent` as a relative path ("" when equal); None when outside.
pub fn strip_cg_prefix<'a>(child: &'a str, parent: &str) -> Option<&'a str> {
    let parent = parent.trim_end_matches('/');
    let rest = child.strip_prefix(parent)?;
    if rest.is_empty() {
        return Some("");
    }
    rest.strip_prefix('/')
}

/// Joins cgroup paths: ("/a", "b/c") → "/a/b/c"; ("/a", "") → "/a".
pub fn join_cg(base: &str, rel: &str) -> String {
    let rel = rel.trim_matches('/');
    let base = base.trim_end_matches('/');
    match (base.is_empty(), rel.is_empty()) {
        (_, true) if base.is_empty() => "/".to_string(),
        (_, true) => base.to_string(),
        _ => format!("{base}/{rel}"),
    }
}

/// The deepest common ancestor of cgroup paths.
pub fn common_ancestor<'a>(paths: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut acc: Option<Vec<&str>> = None;
    for p in paths {
        let parts: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
        acc = Some(match acc {
            None => parts,
            Some(a) => a.iter().zip(parts.iter()).take_while(|(x, y)| x == y).map(|(x, _)| *x).collect(),
        });
    }
    acc.map(|a| format!("/{}", a.join("/")))
}

/// Every cgroup hierarchy among `mounts`, one entry per hierarchy (a mount
/// showing the hierarchy's root "/" is preferred over bind mounts of a sub-tree).
pub fn from_mounts(mounts: &[Mount]) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for m in mounts {
        let (version, controllers) = match m.fstype.as_str() {
            "cgroup2" => (2, Vec::new()),
            "cgroup" => {
                let mut c: Vec<String> = m
                    .super_options
                    .split(',')
                    .filter(|o| o.starts_with("name=") || V1_CONTROLLERS.contains(o))
                    .map(str::to_string)
                    .collect();
                c.sort();
                (1, c)
            }
            _ => continue,
        };
        let h = Hierarchy { version, controllers, mount_point: m.mount_point.clone(), mount_root: m.root.clone() };
        match out.iter_mut().find(|o| o.version == h.version && o.controllers == h.controllers) {
            Some(o) if o.mount_root != "/" && h.mount_root == "/" => *o = h,
            Some(_) => {}
            None => out.push(h),
        }
    }
    out
}

/// As `from_mounts`, from mountinfo text (for tests).
pub fn parse_mountinfo(text: &str) -> Vec<Hierarchy> {
    from_mounts(&mountinfo::parse(text))
}

pub use crate::sys::proc::cgroup::{parse as parse_proc_cgroup, TaskCgroup};

/// The mounted hierarchies of this machine.
pub fn mounted() -> Result<Vec<Hierarchy>, CgroupError> {
    let mounts = mountinfo::read(proc::SELF).map_err(|source| CgroupError::Mountinfo { source: Box::new(source) })?;
    Ok(from_mounts(&mounts))
}

/// The cgroups task `pid` is in.
pub fn task_cgroups(pid: i32) -> Result<Vec<TaskCgroup>, CgroupError> {
    proc::cgroup::read(pid).map_err(|source| CgroupError::TaskCgroups { pid, source: Box::new(source) })
}

/// The hierarchy with this version and controller set.
pub fn find<'a>(hs: &'a [Hierarchy], version: u32, controllers: &[String]) -> Option<&'a Hierarchy> {
    hs.iter().find(|h| h.version == version && (version == 2 || h.controllers == controllers))
}

/// The hierarchy a cgroup directory lies in (the longest mount point wins), and its
/// cgroup path there.
pub fn locate<'a>(hs: &'a [Hierarchy], dir: &Path) -> Option<(&'a Hierarchy, String)> {
    hs.iter().filter_map(|h| h.cg_path_of(dir).map(|p| (h, p))).max_by_key(|(h, _)| h.mount_point.as_os_str().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:5 - cgroup cgroup rw,cpu,cpuacct
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 31 0:29 /lxc /mnt/my\\040cpu rw - cgroup cgroup rw,cpu,cpuacct
";

    #[test]
    fn mountinfo_finds_every_hierarchy_once() {
        let hs = parse_mountinfo(MI);
        assert_eq!(hs.len(), 3);
        assert_eq!(hs[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(hs[0].mount_point, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(hs[1].controllers, vec!["name=systemd"]);
        assert!(hs[1].answers_to("systemd") && hs[1].answers_to("name=systemd"));
        assert_eq!(hs[2].version, 2);
        assert_eq!(hs[2].key(), "unified");
    }

    #[test]
    fn bind_mounted_subtree_maps_paths() {
        let h = Hierarchy {
            version: 1,
            controllers: vec!["cpu".into()],
            mount_point: "/mnt/my cpu".into(),
            mount_root: "/lxc".into(),
        };
        assert_eq!(h.dir_of("/lxc/c1").unwrap(), PathBuf::from("/mnt/my cpu/c1"));
        assert_eq!(h.dir_of("/lxc").unwrap(), PathBuf::from("/mnt/my cpu"));
        assert_eq!(h.dir_of("/lxcfoo"), None);
        assert_eq!(h.dir_of("/other"), None);
        assert_eq!(h.cg_path_of(Path::new("/mnt/my cpu/c1/x")).unwrap(), "/lxc/c1/x");
        let hs = parse_mountinfo(MI.lines().last().unwrap());
        assert_eq!(hs[0].mount_point, PathBuf::from("/mnt/my cpu"));
    }

    #[test]
    fn path_helpers() {
        assert_eq!(common_ancestor(["/a/b/c", "/a/b", "/a/b/d/e"]).unwrap(), "/a/b");
        assert_eq!(common_ancestor(["/a", "/b"]).unwrap(), "/");
        assert_eq!(join_cg("/", ""), "/");
        assert_eq!(join_cg("/", "x"), "/x");
        assert_eq!(join_cg("/a", "b/c"), "/a/b/c");
        assert_eq!(strip_cg_prefix("/a/b", "/"), Some("a/b"));
        assert_eq!(strip_cg_prefix("/", "/"), Some(""));
        assert_eq!(strip_cg_prefix("/ab", "/a"), None);
    }
}
