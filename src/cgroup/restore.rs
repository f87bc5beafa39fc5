//! cgroup-restore: a `CgroupImage` → directories and configuration, and a plan that
//! places restored tasks into their saved cgroups.
//!
//! Ordering requirements:
//! - Parents are created and configured before their children (v1 cpuset subsets,
//!   v1 devices rules, v2 `cgroup.subtree_control` enabling the children's files).
//! - Within a directory the image order is the write order (`controllers` table);
//!   the v1 memory/memsw pair is reordered when the memory limit grows past the
//!   current memsw limit.
//! - Freezer states are applied by `apply_freeze_states` after the tasks are placed,
//!   so a task forked into a saved-frozen cgroup is not frozen before it is set up.
//! - A plan that is dropped without `commit()` removes what it created, deepest first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::controllers::{self, Kind};
use super::hierarchy::{self, Hierarchy};
use super::CgroupError;
use crate::image::pb;
use crate::opts::{CgroupRestoreOpts, ManageCgroups};
use crate::sys::{cgroupfs, Errno};

/// What cgroup-restore did, kept so the process restore can place forked tasks.
#[derive(Debug)]
pub struct CgroupRestorePlan {
    mode: ManageCgroups,
    /// Saved pid → set id.
    task_set: HashMap<i32, u32>,
    /// Set id → the directories (one per hierarchy) a task of that set goes into.
    sets: HashMap<u32, Vec<PathBuf>>,
    /// Directories ccr created, in creation order.
    created: Vec<PathBuf>,
    /// (directory, file, value) freezer states to apply once tasks are placed.
    freeze: Vec<(PathBuf, String, String)>,
    /// The root directory of each restored hierarchy (by image hierarchy id).
    roots: HashMap<u32, PathBuf>,
    /// Per restored hierarchy: its version, controllers, the saved root's cgroup
    /// path and the directory it was restored at.
    moved: Vec<(u32, Vec<String>, String, PathBuf)>,
    /// Per hierarchy the checkpoint left alone: its version, controllers, the
    /// saved root's cgroup path and whether tasks outside the tree shared it.
    left: Vec<(u32, Vec<String>, String, bool)>,
    /// Where each directory is written down before it is made.
    journal: Option<crate::journal::Journal>,
    committed: bool,
}

impl CgroupRestorePlan {
    /// Creates and configures the cgroups of `img` on the hierarchies `hs` per `opts`.
    /// On failure, whatever was created is removed again.
    pub fn create(
        img: &pb::CgroupImage,
        opts: &CgroupRestoreOpts,
        hs: &[Hierarchy],
        journal: Option<crate::journal::Journal>,
    ) -> Result<Self, CgroupError> {
        let mut plan = CgroupRestorePlan {
            journal,
            mode: opts.manage,
            task_set: img.tasks.iter().map(|t| (t.pid, t.set)).collect(),
            sets: HashMap::new(),
            created: Vec::new(),
            freeze: Vec::new(),
            roots: HashMap::new(),
            moved: Vec::new(),
            left: Vec::new(),
            committed: false,
        };
        if plan.mode == ManageCgroups::Ignore {
            plan.committed = true;
            return Ok(plan);
        }
        // On error `plan` drops uncommitted and removes what it created.
        plan.build(img, opts, hs)?;
        Ok(plan)
    }

    fn build(&mut self, img: &pb::CgroupImage, opts: &CgroupRestoreOpts, hs: &[Hierarchy]) -> Result<(), CgroupError> {
        let mut resolved: HashMap<u32, (&Hierarchy, String, Option<PathBuf>)> = HashMap::new();
        for ih in &img.hierarchies {
            let h = hierarchy::find(hs, ih.version, &sorted(&ih.controllers))
                .ok_or_else(|| CgroupError::HierarchyNotMounted { controllers: hier_name(ih) })?;
            if ih.tree.is_none() {
                // Not confined on this hierarchy when saved: leave it alone.
                resolved.insert(ih.id, (h, ih.root.clone(), None));
                self.left.push((ih.version, sorted(&ih.controllers), ih.root.clone(), ih.shared));
                continue;
            }
            let root = relocated_root(h, &ih.root, &opts.roots);
            let dir = h.dir_of(&root).ok_or_else(|| CgroupError::NotInHierarchy { path: PathBuf::from(&root) })?;
            resolved.insert(ih.id, (h, root, Some(dir)));
        }
        // Strict: refuse before touching anything.
        if self.mode == ManageCgroups::Strict {
            for ih in &img.hierarchies {
                if let (Some(t), Some((_, _, Some(dir)))) = (&ih.tree, resolved.get(&ih.id)) {
                    check_none_exist(dir, t)?;
                }
            }
        }
        for ih in &img.hierarchies {
            let (Some(tree), Some((_, _, Some(dir)))) = (&ih.tree, resolved.get(&ih.id)) else {
                continue;
            };
            self.make_parents(dir, ih.version)?;
            self.restore_dir(dir, tree)?;
            self.roots.insert(ih.id, dir.clone());
            self.moved.push((ih.version, sorted(&ih.controllers), ih.root.clone(), dir.clone()));
        }
        for set in &img.sets {
            let mut dirs = Vec::new();
            for m in &set.members {
                let (h, _, root_dir) =
                    resolved.get(&m.hierarchy).ok_or(CgroupError::UnknownHierarchy { id: m.hierarchy })?;
                let Some(root_dir) = root_dir else { continue };
                if m.outside_root {
                    if let Some(d) = h.dir_of(&m.path) {
                        dirs.push(d);
                    }
                } else if m.path.is_empty() {
                    dirs.push(root_dir.clone());
                } else {
                    dirs.push(root_dir.join(&m.path));
                }
            }
            self.sets.insert(set.id, dirs);
        }
        Ok(())
    }

    /// Creates the missing ancestors of a tree's root (on hierarchy `version`).
    fn make_parents(&mut self, dir: &Path, version: u32) -> Result<(), CgroupError> {
        let mut missing = Vec::new();
        let mut p = dir.parent();
        while let Some(d) = p {
            if cgroupfs::is_dir(d) {
                break;
            }
            missing.push(d.to_path_buf());
            p = d.parent();
        }
        if self.mode == ManageCgroups::Props {
            return match missing.last() {
                Some(d) => Err(CgroupError::Missing { path: d.clone() }),
                None => Ok(()),
            };
        }
        for d in missing.into_iter().rev() {
            self.note(&d)?;
            cgroupfs::mkdir(&d).map_err(|source| CgroupError::Create { path: d.clone(), source: Box::new(source) })?;
            self.created.push(d.clone());
            if version == 1 {
                inherit_cpuset(&d)?;
            }
        }
        Ok(())
    }

    fn restore_dir(&mut self, path: &Path, d: &pb::CgroupDir) -> Result<(), CgroupError> {
        let exists = cgroupfs::is_dir(path);
        let configure = match (self.mode, exists) {
            (ManageCgroups::Props, false) => return Err(CgroupError::Missing { path: path.into() }),
            (ManageCgroups::Strict, true) => return Err(CgroupError::Exists { path: path.into() }),
            (ManageCgroups::Soft, true) => false,
            _ => true,
        };
        if !exists {
            self.note(path)?;
            cgroupfs::mkdir(path)
                .map_err(|source| CgroupError::Create { path: path.into(), source: Box::new(source) })?;
            self.created.push(path.to_path_buf());
        }
        if configure {
            write_props(path, &d.props, &mut self.freeze)?;
        }
        for c in &d.children {
            self.restore_dir(&path.join(&c.name), c)?;
        }
        if configure {
            restore_perms(path, d)?;
        }
        Ok(())
    }

    /// Applies the saved freezer states (after the tasks are placed).
    pub fn apply_freeze_states(&mut self) -> Result<(), CgroupError> {
        for (dir, file, value) in &self.freeze {
            let frozen = value == "FROZEN" || value == "1";
            let cur_frozen = super::freeze::frozen_by_self(dir)?;
            if frozen && !cur_frozen {
                super::freeze::freeze(dir, super::freeze::DEFAULT_TIMEOUT_S)?;
            } else if !frozen && cur_frozen {
                cgroupfs::write(dir, file, value).map_err(|source| CgroupError::Configure {
                    path: dir.clone(),
                    file: file.clone(),
                    value: value.clone(),
                    source: Box::new(source),
                })?;
            }
        }
        Ok(())
    }

    /// Moves the forked task `pid` (saved as `saved_pid`) into its saved cgroups.
    pub fn place_task(&self, pid: i32, saved_pid: i32) -> Result<(), CgroupError> {
        if self.mode == ManageCgroups::Ignore {
            return Ok(());
        }
        let set = *self.task_set.get(&saved_pid).ok_or(CgroupError::NoSavedSet { saved_pid })?;
        let dirs = self.sets.get(&set).ok_or(CgroupError::UnknownSet { set })?;
        for d in dirs {
            cgroupfs::attach(d, pid).map_err(|source| CgroupError::PlaceTask {
                pid,
                saved_pid,
                path: d.clone(),
                source: Box::new(source),
            })?;
        }
        Ok(())
    }

    /// The directories a task saved as `saved_pid` goes into.
    pub fn dirs_of(&self, saved_pid: i32) -> Option<&[PathBuf]> {
        self.task_set.get(&saved_pid).and_then(|s| self.sets.get(s)).map(Vec::as_slice)
    }

    /// Where the saved cgroup `path` of a hierarchy is after this restore, moved
    /// as the tree's root was (`--cgroup-root`): below the saved root, it is below
    /// the restored one; above it, as many levels above the restored one, which
    /// must end as the saved root does. None when this plan did not restore the
    /// hierarchy, or `path` is its root or unrelated to the tree: it is where it was.
    pub fn relocated(&self, version: u32, controllers: &[String], path: &str) -> Result<Option<PathBuf>, CgroupError> {
        let Some((_, _, saved, dir)) =
            self.moved.iter().find(|(v, c, _, _)| *v == version && (version == 2 || c.as_slice() == controllers))
        else {
            return Ok(None);
        };
        if let Some(rel) = hierarchy::strip_cg_prefix(path, saved) {
            return Ok(Some(if rel.is_empty() { dir.clone() } else { dir.join(rel) }));
        }
        let Some(below) = hierarchy::strip_cg_prefix(saved, path).filter(|_| path != "/") else { return Ok(None) };
        let mut up = dir.clone();
        for name in below.rsplit('/') {
            if up.file_name().and_then(|n| n.to_str()) != Some(name) || !up.pop() {
                return Err(CgroupError::AncestorMoved { path: path.into(), root: saved.clone(), dir: dir.clone() });
            }
        }
        Ok(Some(up))
    }

    /// What this plan does on each hierarchy, one line each (for the log).
    pub fn describe(&self) -> Vec<String> {
        let name = |v: u32, c: &[String]| if v == 2 { "cgroup2".to_string() } else { c.join(",") };
        let moved =
            self.moved.iter().map(|(v, c, saved, dir)| format!("{}: {saved} at {}", name(*v, c), dir.display()));
        let left = self
            .left
            .iter()
            .map(|(v, c, root, shared)| format!("{}: left alone ({})", name(*v, c), left_reason(root, *shared)));
        moved.chain(left).collect()
    }

    /// Why the checkpoint left hierarchy (`version`, `controllers`) alone, when it did.
    pub fn left_alone(&self, version: u32, controllers: &[String]) -> Option<String> {
        self.left
            .iter()
            .find(|(v, c, _, _)| *v == version && (version == 2 || c.as_slice() == controllers))
            .map(|(_, _, root, shared)| left_reason(root, *shared))
    }

    /// The restored root directory of image hierarchy `id`.
    pub fn root_dir(&self, id: u32) -> Option<&Path> {
        self.roots.get(&id).map(PathBuf::as_path)
    }

    fn note(&mut self, dir: &Path) -> Result<(), CgroupError> {
        match self.journal.as_mut() {
            Some(j) => j.cgroup(dir).map_err(|e| CgroupError::Create { path: dir.into(), source: Box::new(e) }),
            None => Ok(()),
        }
    }

    /// The directories ccr created, in creation order.
    pub fn created(&self) -> &[PathBuf] {
        &self.created
    }

    /// Keeps the restored cgroups (the restore succeeded).
    pub fn commit(mut self) {
        self.committed = true;
    }

    /// Removes the cgroups ccr created, deepest first (tasks must be gone).
    pub fn rollback(&mut self) {
        for d in self.created.drain(..).rev() {
            let _ = cgroupfs::rmdir(&d);
        }
    }
}

impl Drop for CgroupRestorePlan {
    fn drop(&mut self) {
        if !self.committed {
            self.rollback();
        }
    }
}

/// Free-function form of [`CgroupRestorePlan::place_task`] for the process restore.
pub fn place_task(plan: &CgroupRestorePlan, pid: i32, saved_pid: i32) -> Result<(), CgroupError> {
    plan.place_task(pid, saved_pid)
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

fn hier_name(ih: &pb::CgroupHierarchy) -> String {
    if ih.version == 2 {
        "cgroup2".into()
    } else {
        ih.controllers.join(",")
    }
}

fn left_reason(root: &str, shared: bool) -> String {
    if shared {
        format!("when saved, its cgroup {root} also held tasks outside the tree")
    } else {
        format!("when saved, the tree's tasks were under {root} only")
    }
}

/// The root a restored tree goes under: a root given for one of the hierarchy's
/// controllers wins over one given for every hierarchy, which wins over the saved one.
/// A root may be given as a cgroup path ("/lxc/c2") or as a directory of this mount.
pub fn relocated_root(h: &Hierarchy, saved: &str, roots: &[(Option<String>, PathBuf)]) -> String {
    let pick = roots
        .iter()
        .find(|(c, _)| c.as_deref().is_some_and(|c| h.answers_to(c)))
        .or_else(|| roots.iter().find(|(c, _)| c.is_none()));
    match pick {
        None => saved.to_string(),
        Some((_, p)) => h.cg_path_of(p).unwrap_or_else(|| hierarchy::join_cg("/", &p.to_string_lossy())),
    }
}

fn check_none_exist(dir: &Path, d: &pb::CgroupDir) -> Result<(), CgroupError> {
    if cgroupfs::is_dir(dir) {
        return Err(CgroupError::Exists { path: dir.into() });
    }
    for c in &d.children {
        check_none_exist(&dir.join(&c.name), c)?;
    }
    Ok(())
}

fn restore_perms(dir: &Path, d: &pb::CgroupDir) -> Result<(), CgroupError> {
    let set = |p: &Path, uid, gid, mode| {
        cgroupfs::set_perm(p, cgroupfs::Perm { uid, gid, mode })
            .map_err(|source| CgroupError::SetOwner { path: p.into(), source: Box::new(source) })
    };
    for p in d.props.iter().filter(|p| !p.absent) {
        let f = dir.join(&p.name);
        if cgroupfs::exists(&f) {
            set(&f, p.uid, p.gid, p.mode)?;
        }
    }
    for p in &d.perms {
        let f = dir.join(&p.name);
        if cgroupfs::exists(&f) {
            set(&f, p.uid, p.gid, p.mode)?;
        }
    }
    set(dir, d.uid, d.gid, d.mode)
}

fn cfg_err(dir: &Path, file: &str, value: &str) -> impl FnOnce(crate::sys::SysError) -> CgroupError {
    let (path, file, value) = (dir.to_path_buf(), file.to_string(), value.to_string());
    move |source| CgroupError::Configure { path, file, value, source: Box::new(source) }
}

fn read_cur(dir: &Path, file: &str) -> Result<Option<String>, CgroupError> {
    cgroupfs::read(dir, file)
        .map_err(|source| CgroupError::ReadConfig { path: dir.join(file), source: Box::new(source) })
}

fn put(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    cgroupfs::write(dir, file, value).map_err(|source| match outside_parent(dir, file, value, source.errno()) {
        Some((parent, parent_value)) => CgroupError::CpusetOutsideParent(Box::new(super::CpusetOutsideParent {
            path: dir.into(),
            file: file.into(),
            value: value.into(),
            parent,
            parent_value,
            source: Box::new(source),
        })),
        None => cfg_err(dir, file, value)(source),
    })
}

/// Why the kernel refused a v1 cpuset write, when that is the reason: the value
/// is not within the parent's (EACCES). The parent and its value, for the error.
fn outside_parent(dir: &Path, file: &str, value: &str, errno: i32) -> Option<(PathBuf, String)> {
    if !matches!(file, "cpuset.cpus" | "cpuset.mems") || !matches!(errno, libc::EACCES | libc::EINVAL) {
        return None;
    }
    let parent = dir.parent()?;
    let theirs = cgroupfs::read(parent, file).ok()??;
    (!id_list_within(value, &theirs)?).then(|| (parent.to_path_buf(), theirs))
}

/// Whether every id of the kernel list `inner` ("0-3,7") is in `outer`; None when
/// either is not such a list.
pub fn id_list_within(inner: &str, outer: &str) -> Option<bool> {
    fn ranges(s: &str) -> Option<Vec<(u32, u32)>> {
        s.trim()
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('-') {
                Some((a, b)) => Some((a.trim().parse().ok()?, b.trim().parse().ok()?)),
                None => p.trim().parse().ok().map(|a| (a, a)),
            })
            .collect()
    }
    let outer = ranges(outer)?;
    Some(ranges(inner)?.iter().all(|&(a, b)| (a..=b).all(|id| outer.iter().any(|&(lo, hi)| (lo..=hi).contains(&id)))))
}

/// A v1 cpuset ccr created as a missing ancestor starts with no cpus and no mems,
/// and no child may then have any: it gets its parent's before anything below it
/// is written. (A v2 cpuset needs nothing: an empty `cpuset.cpus` there means
/// "what the parent has", and a child's request outside it is accepted and cut
/// down to the parent's effective set, so copying would only pin it.)
fn inherit_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let Some(parent) = dir.parent() else { return Ok(()) };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if read_cur(dir, file)?.is_some_and(|v| v.is_empty()) {
            if let Some(v) = read_cur(parent, file)?.filter(|v| !v.is_empty()) {
                put(dir, file, &v)?;
            }
        }
    }
    Ok(())
}

/// A freezer state to apply later: (file, value).
pub type FreezeState = (String, String);

/// One write restore makes: `value` into `file`; with `usage`, a limit checked
/// against that usage file first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub file: String,
    pub value: String,
    pub usage: Option<&'static str>,
}

fn step(file: &str, value: &str) -> Step {
    Step { file: file.into(), value: value.into(), usage: None }
}

/// The writes that turn a directory whose files read `cur` into the saved `props`,
/// in the order the kernel accepts. Pure: `cur` reads the current value of a file
/// (None: the kernel has no such file here, and it is skipped). Freezer states are
/// returned apart, as (file, value).
pub fn plan_writes(
    props: &[pb::CgroupProp],
    cur: &mut dyn FnMut(&str) -> Result<Option<String>, CgroupError>,
) -> Result<(Vec<Step>, Vec<FreezeState>), CgroupError> {
    let mut steps = Vec::new();
    let mut freeze = Vec::new();
    let mut done: Vec<&str> = Vec::new();
    for p in props {
        if p.absent || done.contains(&p.name.as_str()) {
            continue;
        }
        let kind = controllers::kind_of(&p.name);
        if kind == Kind::Freeze {
            freeze.push((p.name.clone(), p.value.clone()));
            continue;
        }
        let Some(now) = cur(&p.name)? else { continue };
        if now.trim() == p.value.trim() {
            continue;
        }
        match kind {
            Kind::Plain => steps.push(step(&p.name, &p.value)),
            Kind::Lines => {
                let have: Vec<&str> = now.lines().map(str::trim).collect();
                for l in p.value.lines().map(str::trim).filter(|l| !l.is_empty() && !have.contains(l)) {
                    steps.push(step(&p.name, l));
                }
            }
            Kind::CgroupType => {
                if p.value.trim() == "threaded" {
                    steps.push(step(&p.name, "threaded"));
                }
            }
            Kind::SubtreeControl => {
                let have: Vec<&str> = now.split_whitespace().collect();
                let add: Vec<String> =
                    p.value.split_whitespace().filter(|c| !have.contains(c)).map(|c| format!("+{c}")).collect();
                if !add.is_empty() {
                    steps.push(step(&p.name, &add.join(" ")));
                }
            }
            Kind::DevicesList => steps.extend(device_steps(&now, &p.value)),
            Kind::OomControl => {
                if let Some(w) = oom_kill_disable(&p.value).filter(|w| Some(*w) != oom_kill_disable(&now)) {
                    steps.push(step(&p.name, w));
                }
            }
            Kind::Limit { usage } => {
                // memsw may never be below the memory limit: when the memory limit
                // grows past the current memsw limit, memsw goes first.
                if p.name == "memory.limit_in_bytes" {
                    let memsw = props.iter().find(|q| q.name == "memory.memsw.limit_in_bytes" && !q.absent);
                    if let Some(m) = memsw {
                        if let Some(cm) = cur(&m.name)? {
                            if num(&p.value) > num(&cm) && cm.trim() != m.value.trim() {
                                steps.push(Step {
                                    file: m.name.clone(),
                                    value: m.value.clone(),
                                    usage: Some("memory.memsw.usage_in_bytes"),
                                });
                                done.push(m.name.as_str());
                            }
                        }
                    }
                }
                steps.push(Step { file: p.name.clone(), value: p.value.clone(), usage: Some(usage) });
            }
            Kind::Freeze => unreachable!("queued above"),
        }
    }
    Ok((steps, freeze))
}

/// Writes the saved configuration of one directory (see [`plan_writes`]); freezer
/// states are queued in `freeze`.
pub fn write_props(
    dir: &Path,
    props: &[pb::CgroupProp],
    freeze: &mut Vec<(PathBuf, String, String)>,
) -> Result<(), CgroupError> {
    let (steps, fz) = plan_writes(props, &mut |f| read_cur(dir, f))?;
    for s in steps {
        match s.usage {
            Some(u) => write_limit(dir, &s.file, &s.value, u)?,
            None => put(dir, &s.file, &s.value)?,
        }
    }
    freeze.extend(fz.into_iter().map(|(f, v)| (dir.to_path_buf(), f, v)));
    Ok(())
}

/// The writes that turn device list `now` into `want`. Switching the default
/// ("a *:* rwm" is allow-all) is only possible while the cgroup has no children, so
/// when both deny by default, only the differing rules are written.
fn device_steps(now: &str, want: &str) -> Vec<Step> {
    const ALL: &str = "a *:* rwm";
    let (now, want) = (sorted_lines(now), sorted_lines(want));
    let mut out = Vec::new();
    if want == [ALL] {
        out.push(step("devices.allow", "a"));
    } else if now.contains(&ALL) {
        out.push(step("devices.deny", "a"));
        out.extend(want.iter().map(|l| step("devices.allow", l)));
    } else {
        out.extend(now.iter().filter(|l| !want.contains(l)).map(|l| step("devices.deny", l)));
        out.extend(want.iter().filter(|l| !now.contains(l)).map(|l| step("devices.allow", l)));
    }
    out
}

fn sorted_lines(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    v.sort_unstable();
    v
}

fn oom_kill_disable(s: &str) -> Option<&str> {
    s.lines().find_map(|l| l.strip_prefix("oom_kill_disable ")).map(str::trim)
}

/// A limit as a number; "max" and "-1" are unlimited.
fn num(s: &str) -> u128 {
    match s.trim() {
        "max" | "-1" => u128::MAX,
        v => v.parse().unwrap_or(u128::MAX),
    }
}

/// Writes a limit that may not go below the current usage.
fn write_limit(dir: &Path, file: &str, value: &str, usage_file: &str) -> Result<(), CgroupError> {
    let usage = read_cur(dir, usage_file)?;
    let below = |u: &str| CgroupError::LimitBelowUsage {
        path: dir.into(),
        file: file.into(),
        value: value.into(),
        usage: u.into(),
    };
    if let Some(u) = &usage {
        if num(u) != u128::MAX && num(value) < num(u) {
            return Err(below(u));
        }
    }
    match cgroupfs::write(dir, file, value) {
        Ok(()) => Ok(()),
        Err(e) if e.errno() == Errno::EBUSY as i32 => {
            let u = read_cur(dir, usage_file)?.unwrap_or_default();
            Err(below(&u))
        }
        Err(source) => Err(CgroupError::Configure {
            path: dir.into(),
            file: file.into(),
            value: value.into(),
            source: Box::new(source),
        }),
    }
}

#[cfg(test)]
mod tests;
