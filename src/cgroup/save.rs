//! cgroup-save: the container's cgroups on every hierarchy → a `CgroupImage`.
//!
//! The container's root cgroup on a hierarchy is the deepest cgroup holding every
//! saved task (and the freeze cgroup, on its hierarchy), or the freeze cgroup's path
//! when that is an ancestor of it (a container named alike on every hierarchy). The directory tree below
//! and including it is saved with owner, mode and configuration; a root of "/" means
//! the tasks are not confined there, and nothing of that hierarchy is saved; nor is
//! it of a root that also holds tasks that are not saved (a cgroup of the host's).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::controllers::{self, Kind, Prop};
use super::hierarchy::{self, Hierarchy};
use super::CgroupError;
use crate::image::pb;
use crate::sys::cgroupfs;

/// What to save.
#[derive(Clone, Debug, Default)]
pub struct SaveTarget {
    /// The container's root task; it and its descendants are saved.
    pub pid: Option<i32>,
    /// A cgroup whose tasks (and descendants') are saved.
    pub freeze_cgroup: Option<PathBuf>,
    /// The cgroup ccr froze for the checkpoint and whether its owner had it frozen
    /// before: its freezer state is recorded as that, not as what it reads now.
    pub frozen_for_dump: Option<(PathBuf, bool)>,
    /// The root its manager names on some hierarchies: (a controller, "name=NAME"
    /// or "unified"; path). Every task must be in it or below it.
    pub roots: Vec<(String, String)>,
}

/// The named roots of `roots` whose controller no mounted hierarchy of `hs` has.
pub fn unmounted_roots<'a>(roots: &'a [(String, String)], hs: &[Hierarchy]) -> Vec<&'a str> {
    roots.iter().filter(|(c, _)| named_root(hs, c).is_none()).map(|(c, _)| c.as_str()).collect()
}

/// The index of the hierarchy of `hs` that `controller` names.
fn named_root(hs: &[Hierarchy], controller: &str) -> Option<usize> {
    hs.iter().position(|h| h.answers_to(controller))
}

fn saved_tasks(t: &SaveTarget) -> Result<Vec<i32>, CgroupError> {
    let mut pids = Vec::new();
    if let Some(fc) = &t.freeze_cgroup {
        pids.extend(super::freeze::tasks_of(fc)?);
    }
    if let Some(pid) = t.pid {
        pids.extend(crate::sys::proc::children::descendants(pid));
    }
    if t.pid.is_none() && t.freeze_cgroup.is_none() {
        return Err(CgroupError::NoSaveTarget);
    }
    pids.sort_unstable();
    pids.dedup();
    if pids.is_empty() {
        return Err(CgroupError::NoTasks { path: t.freeze_cgroup.clone().unwrap_or_default() });
    }
    Ok(pids)
}

/// Builds the image of the target's cgroups on the hierarchies `hs`.
pub fn collect(t: &SaveTarget, hs: &[Hierarchy]) -> Result<pb::CgroupImage, CgroupError> {
    let pids = saved_tasks(t)?;
    // Per task: (index into hs, cgroup path) for every mounted hierarchy it is in.
    let mut task_paths: Vec<(i32, Vec<(usize, String)>)> = Vec::new();
    for &pid in &pids {
        let lines = match hierarchy::task_cgroups(pid) {
            Ok(l) => l,
            // A task that exited since it was listed is not an error.
            Err(CgroupError::TaskCgroups { source, .. }) if matches!(*source, crate::sys::SysError::Task { .. }) => {
                continue
            }
            Err(e) => return Err(e),
        };
        // A zombie reads "/" on every hierarchy (measured on 6.18): it is in no
        // cgroup any more, and must not make the root cgroup the container's.
        // Restore places no zombie. Asked after the read, so that one exiting
        // meanwhile (not frozen) counts as one too.
        if crate::sys::proc::stat::read(pid).is_ok_and(|s| s.is_zombie()) {
            continue;
        }
        let mut v = Vec::new();
        for l in lines {
            if let Some(i) =
                hs.iter().position(|h| h.version == l.version && (l.version == 2 || h.controllers == l.controllers))
            {
                v.push((i, l.path));
            }
        }
        task_paths.push((pid, v));
    }
    let fc_loc = t.freeze_cgroup.as_deref().and_then(|fc| hierarchy::locate(hs, fc));
    if let (Some(fc), None) = (&t.freeze_cgroup, &fc_loc) {
        return Err(CgroupError::NotInHierarchy { path: fc.clone() });
    }

    let mut img = pb::CgroupImage::default();
    let mut used: Vec<usize> = task_paths.iter().flat_map(|(_, v)| v.iter().map(|(i, _)| *i)).collect();
    used.sort_unstable();
    used.dedup();
    let mut roots: BTreeMap<usize, String> = BTreeMap::new();
    for &hi in &used {
        let h = &hs[hi];
        let mut paths: Vec<&str> =
            task_paths.iter().flat_map(|(_, v)| v.iter().filter(|(i, _)| *i == hi).map(|(_, p)| p.as_str())).collect();
        if let Some((fh, fp)) = &fc_loc {
            if *fh == h {
                paths.push(fp.as_str());
            }
        }
        let mut root = hierarchy::common_ancestor(paths).unwrap_or_else(|| "/".into());
        // Managers name a container's cgroup alike on every hierarchy: when the
        // freeze cgroup's path is an ancestor of the tasks' cgroups here too, it is
        // the root here as well (tasks may all sit in sub-cgroups, e.g. init.scope).
        if let Some((_, fp)) = &fc_loc {
            if fp != "/" && hierarchy::strip_cg_prefix(&root, fp).is_some() {
                root = fp.clone();
            }
        }
        if let Some((_, given)) = t.roots.iter().find(|(c, _)| named_root(hs, c) == Some(hi)) {
            let given = hierarchy::join_cg("/", given);
            if hierarchy::strip_cg_prefix(&root, &given).is_none() {
                return Err(CgroupError::OutsideNamedRoot { hierarchy: h.key(), named: given, tasks: root });
            }
            root = given;
        }
        let mut shared = false;
        let tree = if root == "/" {
            None
        } else {
            let dir = h.dir_of(&root).ok_or_else(|| CgroupError::NotInHierarchy { path: PathBuf::from(&root) })?;
            // A cgroup that also holds tasks outside the container (ccr's own, the
            // host's) is not the container's: leave it alone.
            shared = super::freeze::tasks_of(&dir)?.iter().any(|p| pids.binary_search(p).is_err());
            if shared {
                None
            } else {
                Some(save_dir(h, &dir, "", pb::CgroupOrigin::External, t)?)
            }
        };
        let controllers = if h.version == 2 {
            let d = h.dir_of(&root).unwrap_or_else(|| h.mount_point.clone());
            read(&d, "cgroup.controllers")?
                .map(|s| s.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        } else {
            h.controllers.clone()
        };
        img.hierarchies.push(pb::CgroupHierarchy {
            id: hi as u32,
            version: h.version,
            controllers,
            mount_point: h.mount_point.to_string_lossy().into_owned(),
            root: root.clone(),
            tree,
            shared,
        });
        roots.insert(hi, root);
    }

    let mut sets: BTreeMap<Vec<(u32, String, bool)>, u32> = BTreeMap::new();
    for (pid, v) in &task_paths {
        let mut members: Vec<(u32, String, bool)> = v
            .iter()
            .map(|(hi, p)| match hierarchy::strip_cg_prefix(p, &roots[hi]) {
                Some(rel) => (*hi as u32, rel.to_string(), false),
                None => (*hi as u32, p.clone(), true),
            })
            .collect();
        members.sort();
        let n = sets.len() as u32;
        let id = *sets.entry(members).or_insert(n);
        img.tasks.push(pb::CgroupTask { pid: *pid, set: id });
    }
    let mut sets: Vec<_> = sets.into_iter().collect();
    sets.sort_by_key(|(_, id)| *id);
    for (members, id) in sets {
        img.sets.push(pb::CgroupSet {
            id,
            members: members
                .into_iter()
                .map(|(hierarchy, path, outside_root)| pb::CgroupMember { hierarchy, path, outside_root })
                .collect(),
        });
    }
    Ok(img)
}

fn read(dir: &Path, file: &str) -> Result<Option<String>, CgroupError> {
    cgroupfs::read(dir, file)
        .map_err(|source| CgroupError::ReadConfig { path: dir.join(file), source: Box::new(source) })
}

fn perm(path: &Path) -> Result<cgroupfs::Perm, CgroupError> {
    cgroupfs::perm(path).map_err(|source| CgroupError::ReadConfig { path: path.into(), source: Box::new(source) })
}

/// The files saved for directory `dir` of hierarchy `h`, in write order.
pub fn props_for(h_version: u32, h_controllers: &[String], dir: &Path) -> Result<Vec<Prop>, CgroupError> {
    Ok(if h_version == 2 {
        let avail: Vec<String> =
            read(dir, "cgroup.controllers")?.unwrap_or_default().split_whitespace().map(str::to_string).collect();
        controllers::v2_props(&avail)
    } else {
        controllers::v1_props(h_controllers)
    })
}

/// Saves one directory and, recursively, its children.
fn save_dir(
    h: &Hierarchy,
    dir: &Path,
    name: &str,
    origin: pb::CgroupOrigin,
    t: &SaveTarget,
) -> Result<pb::CgroupDir, CgroupError> {
    let pm = perm(dir)?;
    let mut out = pb::CgroupDir {
        name: name.to_string(),
        origin: origin as i32,
        uid: pm.uid,
        gid: pm.gid,
        mode: pm.mode,
        ..Default::default()
    };
    let files = cgroupfs::files(dir)
        .map_err(|source| CgroupError::ReadConfig { path: dir.into(), source: Box::new(source) })?;
    let frozen_override = t.frozen_for_dump.as_ref().filter(|(p, _)| p.as_path() == dir).map(|(_, was)| *was);
    for prop in props_for(h.version, &h.controllers, dir)? {
        let names: Vec<String> = if prop.file.contains('*') {
            files.iter().filter(|f| controllers::matches(prop.file, f)).cloned().collect()
        } else {
            vec![prop.file.to_string()]
        };
        for f in names {
            out.props.push(save_prop(dir, &f, prop.kind, frozen_override)?);
        }
    }
    for f in controllers::PERM_ONLY {
        let p = dir.join(f);
        if cgroupfs::exists(&p) {
            let pm = perm(&p)?;
            out.perms.push(pb::CgroupFilePerm { name: f.to_string(), uid: pm.uid, gid: pm.gid, mode: pm.mode });
        }
    }
    let subdirs = cgroupfs::subdirs(dir)
        .map_err(|source| CgroupError::ReadConfig { path: dir.into(), source: Box::new(source) })?;
    for s in subdirs {
        out.children.push(save_dir(h, &dir.join(&s), &s, pb::CgroupOrigin::Internal, t)?);
    }
    Ok(out)
}

fn save_prop(dir: &Path, f: &str, kind: Kind, frozen_override: Option<bool>) -> Result<pb::CgroupProp, CgroupError> {
    let Some(mut value) = read(dir, f)? else {
        return Ok(pb::CgroupProp { name: f.to_string(), absent: true, ..Default::default() });
    };
    if kind == Kind::Freeze {
        // Record what the owner asked for, not what a parent or ccr caused.
        let own = match frozen_override {
            Some(was) => was,
            None if f == "freezer.state" => match read(dir, "freezer.self_freezing")? {
                Some(s) => s.trim() == "1",
                None => value == "FROZEN",
            },
            None => value.trim() == "1",
        };
        value = match (f, own) {
            ("freezer.state", true) => "FROZEN",
            ("freezer.state", false) => "THAWED",
            (_, true) => "1",
            (_, false) => "0",
        }
        .to_string();
    }
    let pm = perm(&dir.join(f))?;
    Ok(pb::CgroupProp { name: f.to_string(), value, absent: false, uid: pm.uid, gid: pm.gid, mode: pm.mode })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn v2_dir_on_fake_tree_records_absent_files_and_globs() {
        let d = std::env::temp_dir().join(format!("ccr-save-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("child")).unwrap();
        fs::write(d.join("cgroup.controllers"), "memory hugetlb\n").unwrap();
        fs::write(d.join("memory.max"), "1048576\n").unwrap();
        fs::write(d.join("memory.current"), "0\n").unwrap();
        fs::write(d.join("hugetlb.2MB.max"), "max\n").unwrap();
        fs::write(d.join("hugetlb.2MB.rsvd.max"), "max\n").unwrap();
        fs::write(d.join("cgroup.freeze"), "1\n").unwrap();
        fs::write(d.join("cgroup.procs"), "").unwrap();
        fs::write(d.join("child/cgroup.controllers"), "").unwrap();
        let h = Hierarchy { version: 2, controllers: vec![], mount_point: d.clone(), mount_root: "/".into() };
        let t = SaveTarget { frozen_for_dump: Some((d.clone(), false)), ..Default::default() };
        let out = save_dir(&h, &d, "", pb::CgroupOrigin::External, &t).unwrap();
        let get = |n: &str| out.props.iter().find(|p| p.name == n).unwrap_or_else(|| panic!("{n}"));
        assert_eq!(get("memory.max").value, "1048576");
        assert!(get("memory.high").absent);
        assert!(get("cgroup.type").absent);
        assert_eq!(get("hugetlb.2MB.max").value, "max");
        assert_eq!(get("hugetlb.2MB.rsvd.max").value, "max");
        assert_eq!(get("cgroup.freeze").value, "0", "frozen for the dump, not by its owner");
        assert!(out.props.iter().all(|p| p.name != "memory.current"));
        assert_eq!(out.perms[0].name, "cgroup.procs");
        assert_eq!(out.children.len(), 1);
        assert_eq!(out.children[0].origin, pb::CgroupOrigin::Internal as i32);
        fs::remove_dir_all(&d).unwrap();
    }
}
