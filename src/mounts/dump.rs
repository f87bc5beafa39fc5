//! The tree's mount namespace at dump: its mounts from the root's mountinfo,
//! each matched to how restore makes it again, and the files of its in-memory
//! filesystems, read from inside the namespace.

use std::collections::{HashMap, HashSet};

use super::{attrs_of, below, fstree, is_within, MountError};
use crate::error::Result;
use crate::image::{pb, ImageDir, ImageKind};
use crate::opts::ExtMount;
use crate::sys::proc::{self, mountinfo::Mount};

use super::MADE_NEW;

fn name(m: &Mount) -> String {
    format!("mount {} at {} ({} {})", m.id, m.mount_point.display(), m.fstype, m.source)
}

/// Parents before children, siblings in the order the namespace lists them (the
/// order they were attached, which restore keeps).
fn in_tree_order(pid: i32, mounts: &[Mount]) -> std::result::Result<Vec<&Mount>, MountError> {
    let ids: HashSet<u32> = mounts.iter().map(|m| m.id).collect();
    let roots: Vec<&Mount> = mounts.iter().filter(|m| !ids.contains(&m.parent)).collect();
    let [root] = roots[..] else {
        let what = format!("{} mounts without a parent among its mounts", roots.len());
        return Err(MountError::Unsupported { pid, mount: "its mount tree".into(), what });
    };
    let mut kids: HashMap<u32, Vec<&Mount>> = HashMap::new();
    for m in mounts.iter().filter(|m| m.id != root.id) {
        kids.entry(m.parent).or_default().push(m);
    }
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(m) = stack.pop() {
        out.push(m);
        // Listed in mountinfo order; the first must come off the stack first.
        stack.extend(kids.remove(&m.id).unwrap_or_default().into_iter().rev());
    }
    Ok(out)
}

/// A mount tree found savable: how each mount comes back, and the in-memory
/// filesystems whose files are still to be read.
#[derive(Debug)]
pub struct Planned {
    ns: pb::MountNamespace,
    saved: Vec<Mount>,
    /// The devpts instances of the tree's own, with the ptys each holds.
    devpts: Vec<crate::files::pty::OwnDevpts>,
}

impl Planned {
    pub fn own_devpts(&self) -> &[crate::files::pty::OwnDevpts] {
        &self.devpts
    }
}

/// The mount tree of `root`'s mount namespace (not ccr's), matched mount by
/// mount to how restore makes it again; refused by name where it cannot.
/// `keyed` are the mounts the caller names external (`--external mnt[PATH]:KEY`).
pub fn plan(
    root: i32,
    externals: &[String],
    keyed: &[ExtMount],
    cgroup_ns: Option<&pb::CgroupNamespace>,
) -> Result<Planned> {
    let tree = proc::mountinfo::read(root)?;
    let host = proc::mountinfo::read(proc::SELF)?;
    let refuse = |m: &Mount, what: String| MountError::Unsupported { pid: root, mount: name(m), what };
    check_keyed(root, keyed, &tree)?;
    let host_groups: HashSet<u32> = host.iter().map(|h| h.shared).filter(|&g| g != 0).collect();
    let own_groups: HashSet<u32> =
        tree.iter().map(|m| m.shared).filter(|g| *g != 0 && !host_groups.contains(g)).collect();
    if let Some((group, pid)) = shared_elsewhere(root, &own_groups)? {
        let m = tree.iter().find(|m| m.shared == group).expect("a group of the tree");
        let what = format!("a mount shared with another mount namespace (peer group {group}, pid {pid}'s)");
        return Err(refuse(m, what).into());
    }
    let mut first_of_dev: HashMap<(u32, u32), &Mount> = HashMap::new();
    let mut keyed_devs: HashMap<(u32, u32), &str> = HashMap::new();
    let mut out = pb::MountNamespace::default();
    let mut saved = Vec::new();
    for m in in_tree_order(root, &tree)? {
        if m.mount_options.split(',').any(|o| o == "idmapped") {
            return Err(refuse(m, "an idmapped mount".into()).into());
        }
        if m.master != 0 {
            return Err(refuse(m, format!("a slave mount (of peer group {})", m.master)).into());
        }
        if m.shared != 0 && host_groups.contains(&m.shared) {
            let what = format!("a mount shared with ccr's mount namespace (peer group {})", m.shared);
            return Err(refuse(m, what).into());
        }
        let dev = (m.major, m.minor);
        let how = if let Some(e) = keyed.iter().find(|e| e.mount_point == m.mount_point.to_string_lossy()) {
            // The caller vouches for it: what it shows is the host's, found on
            // the restoring side by the key, wherever (or whether) ccr sees it here.
            keyed_devs.insert(dev, e.key.as_str());
            pb::mount_entry::How::ExtMount(pb::ExtMount { key: e.key.clone(), kind: kind_at(root, m) })
        } else if let Some(&first) = first_of_dev.get(&dev) {
            if !is_within(&m.root, &first.root) {
                let what = format!("a second mount of {}'s filesystem outside what that one shows", name(first));
                return Err(refuse(m, what).into());
            }
            pb::mount_entry::How::BindOf(first.id)
        } else if let Some(fs) = cgroup_at_ns_root(m, cgroup_ns) {
            // Mounted again inside the new cgroup namespace, it shows its root, which
            // restore may have put elsewhere (--cgroup-root): a bind would not.
            first_of_dev.insert(dev, m);
            fs
        } else if let Some(found) = host_path(m, &host, covered(m, &tree)) {
            let path = found.map_err(|what| refuse(m, what))?;
            // A tty the caller lets go of is its to hand back, wherever it is bound.
            let md = if externals.is_empty() { None } else { std::fs::symlink_metadata(&path).ok() };
            match md.and_then(|md| crate::files::external::key_of(externals, &md)) {
                Some(key) => pb::mount_entry::How::External(key),
                None => pb::mount_entry::How::HostPath(path),
            }
        } else if let Some(key) = keyed_devs.get(&dev) {
            // Made anew, it would be a filesystem of its own, no longer the one
            // the external mount shows.
            let what = format!("another mount of the filesystem of the external mount {key}: name it external too");
            return Err(refuse(m, what).into());
        } else if MADE_NEW.contains(&m.fstype.as_str()) {
            first_of_dev.insert(dev, m);
            let fs = new_fs(m, m.fstype == "tmpfs");
            // Read from inside the namespace: a tmpfs's files, a devpts's ptys. An
            // mqueue instance shows the queues of an IPC namespace: the tree's own
            // are saved with it, ccr's stay where they are.
            let read_inside = fs.saved || m.fstype == "devpts";
            if read_inside {
                saved.push(m);
            }
            if m.unbindable && read_inside {
                return Err(refuse(m, "an unbindable mount of a filesystem of the tree's own".into()).into());
            }
            if fs.saved && fs.read_only {
                return Err(refuse(m, "a read-only tmpfs instance".into()).into());
            }
            if m.root != "/" {
                let what = format!("a new {} shown from {} instead of its root", m.fstype, m.root);
                return Err(refuse(m, what).into());
            }
            pb::mount_entry::How::NewFs(fs)
        } else {
            let what =
                format!("a {} filesystem that ccr's mount namespace does not show and ccr cannot make again", m.fstype);
            return Err(refuse(m, what).into());
        };
        let parent = if out.mounts.is_empty() { 0 } else { m.parent };
        out.mounts.push(pb::MountEntry {
            id: m.id,
            parent,
            mount_point: m.mount_point.to_string_lossy().into_owned(),
            root: m.root.clone(),
            fstype: m.fstype.clone(),
            source: m.source.clone(),
            attrs: attrs_of(&m.mount_options),
            shared: m.shared,
            unbindable: m.unbindable,
            how: Some(how),
            dev: format!("{}:{}", m.major, m.minor),
        });
    }
    if let Some(top) = out.mounts.first().filter(|m| m.mount_point != "/") {
        let what = format!("a mount tree whose top (mount {}) is at {}, not /", top.id, top.mount_point);
        return Err(MountError::Unsupported { pid: root, mount: "its mount tree".into(), what }.into());
    }
    super::restore::group_sources(&out).map_err(|e| MountError::Unsupported {
        pid: root,
        mount: "a peer group".into(),
        what: e.to_string(),
    })?;
    let saved: Vec<Mount> = saved.into_iter().cloned().collect();
    let (_, devpts) = read_inside(root, None, &saved)?;
    Ok(Planned { ns: out, saved, devpts })
}

/// A peer group of `groups` that a mount namespace other than the tree's and
/// ccr's has too, and a process there: restored, the tree's mounts would no
/// longer propagate to it. Each namespace is read once; none when `groups` is
/// empty (the usual tree, whose mounts are private).
fn shared_elsewhere(root: i32, groups: &HashSet<u32>) -> Result<Option<(u32, i32)>> {
    if groups.is_empty() {
        return Ok(None);
    }
    let mut seen: HashSet<String> = [proc::ns::id(root, "mnt")?, proc::ns::id(proc::SELF, "mnt")?].into();
    let dir = std::fs::read_dir("/proc").map_err(crate::sys::SysError::path("readdir", "/proc"))?;
    for pid in dir.flatten().filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok()) {
        // A process gone meanwhile, or a kernel thread, has nothing to say.
        let Ok(ns) = proc::ns::id(pid, "mnt") else { continue };
        if !seen.insert(ns) {
            continue;
        }
        let Ok(theirs) = proc::mountinfo::read(pid) else { continue };
        if let Some(m) = theirs.iter().find(|m| groups.contains(&m.shared) || groups.contains(&m.master)) {
            return Ok(Some((if groups.contains(&m.shared) { m.shared } else { m.master }, pid)));
        }
    }
    Ok(None)
}

/// The planned tree, with the files of its tmpfs instances (entries in the tree,
/// bytes written to `dir`).
///
/// A tree with a user namespace of its own (`ids` translate) gets its saved
/// filesystems made inside it: every owner must be an id the namespace maps, and
/// no device node can be made there (only the kernel's whiteout, 0:0).
pub fn save(
    root: i32,
    dir: &ImageDir,
    planned: Planned,
    ids: &crate::userns::Ids,
    sockets: &crate::files::unix::BoundFiles,
) -> Result<pb::MountNamespace> {
    let Planned { mut ns, saved, .. } = planned;
    let (mut files, _) = read_inside(root, Some((dir, sockets)), &saved)?;
    for e in ns.mounts.iter_mut() {
        if let Some(list) = files.get(&e.id).filter(|_| ids.own()) {
            made_inside(root, e, list, ids)?;
        }
        if let Some(pb::mount_entry::How::NewFs(fs)) = e.how.as_ref().filter(|_| ids.own()) {
            if let Err(why) = super::options_inside(&fs.options, ids) {
                let what =
                    format!("{} at {}: {why}, which the tree's user namespace does not map", e.fstype, e.mount_point);
                return Err(crate::dump::DumpError::Unsupported { pid: root, what }.into());
            }
        }
        if let (Some(list), Some(pb::mount_entry::How::NewFs(fs))) = (files.remove(&e.id), e.how.as_mut()) {
            fs.files = list;
        }
    }
    Ok(ns)
}

/// Every mount the caller names external is one mount of the tree, not its
/// root, and named once.
fn check_keyed(root: i32, keyed: &[ExtMount], tree: &[Mount]) -> std::result::Result<(), MountError> {
    for (i, e) in keyed.iter().enumerate() {
        let named = format!("pid {root}: --external mnt[{}]:{}", e.mount_point, e.key);
        let bad = |detail: String| MountError::External { mount: named.clone(), detail };
        if e.key.is_empty() {
            return Err(bad("an external mount with an empty key".into()));
        }
        if !super::is_plain_absolute(&e.mount_point) {
            return Err(bad(format!("{} is not a plain absolute path", e.mount_point)));
        }
        if keyed[..i].iter().any(|o| o.mount_point == e.mount_point) {
            return Err(bad(format!("{} is named external twice", e.mount_point)));
        }
        if keyed[..i].iter().any(|o| o.key == e.key) {
            return Err(bad(format!("the key {} names two mounts", e.key)));
        }
        let at: Vec<&Mount> = tree.iter().filter(|m| m.mount_point.to_string_lossy() == e.mount_point).collect();
        match at[..] {
            [] => {
                let what = format!("{} is no mount point of the tree's mount namespace", e.mount_point);
                return Err(bad(what));
            }
            [m] if !tree.iter().any(|p| p.id == m.parent) => {
                let what = "the tree's root mount, which restore binds from where it was or from --root PATH";
                return Err(bad(what.into()));
            }
            [_] => {}
            _ => return Err(bad(format!("{} has {} mounts stacked on it", e.mount_point, at.len()))),
        }
    }
    Ok(())
}

/// Refuses a file of saved mount `m` that its restore inside the tree's user
/// namespace could not make: an owner the namespace does not map, a device node.
fn made_inside(root: i32, m: &pb::MountEntry, files: &[pb::FsEntry], ids: &crate::userns::Ids) -> Result<()> {
    for f in files {
        let refuse = |why: String| {
            let what = format!("file /{} in its {} at {}: {why}", f.path, m.fstype, m.mount_point);
            crate::dump::DumpError::Unsupported { pid: root, what }
        };
        if let Err(id) = ids.owner(f.uid, f.gid) {
            return Err(refuse(format!("owned by {id}, which the tree's user namespace does not map")).into());
        }
        let kind = f.mode & libc::S_IFMT;
        if (kind == libc::S_IFBLK || kind == libc::S_IFCHR) && f.rdev != 0 {
            let why = "a device node, which cannot be made inside the tree's user namespace".to_string();
            return Err(refuse(why).into());
        }
    }
    Ok(())
}

/// The file type (S_IFDIR, S_IFREG, ...) of what the mount `m` of `root`'s
/// namespace shows, as the tree reaches it; 0 when another mount hides it.
fn kind_at(root: i32, m: &Mount) -> u32 {
    use std::os::unix::fs::MetadataExt;
    let path = format!("/proc/{root}/root{}", m.mount_point.display());
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.dev() == libc::makedev(m.major, m.minor) => md.mode() & libc::S_IFMT,
        _ => 0,
    }
}

/// A cgroup filesystem mount showing the root of the tree's own cgroup namespace
/// on its hierarchy: made anew (with its options) inside that namespace.
fn cgroup_at_ns_root(m: &Mount, ns: Option<&pb::CgroupNamespace>) -> Option<pb::mount_entry::How> {
    let version = match m.fstype.as_str() {
        "cgroup" => 1,
        "cgroup2" => 2,
        _ => return None,
    };
    let opts: Vec<&str> = m.super_options.split(',').filter(|o| !o.is_empty()).collect();
    let at_root = ns?
        .roots
        .iter()
        .any(|r| r.version == version && r.controllers.iter().all(|c| opts.contains(&c.as_str())) && r.path == m.root);
    at_root.then(|| pb::mount_entry::How::NewFs(new_fs(m, false)))
}

/// A new instance of `m`'s filesystem with its super options (rw/ro apart); with
/// `saved`, its files are to be read too.
fn new_fs(m: &Mount, saved: bool) -> pb::NewFs {
    let opts = m.super_options.split(',').filter(|o| !o.is_empty());
    pb::NewFs {
        options: opts.clone().filter(|o| *o != "rw" && *o != "ro").map(str::to_string).collect(),
        read_only: opts.clone().any(|o| o == "ro"),
        saved,
        files: Vec::new(),
    }
}

/// Whether another mount of the tree sits right on `m`'s root, hiding all of it.
fn covered(m: &Mount, tree: &[Mount]) -> bool {
    tree.iter().any(|c| c.parent == m.id && c.mount_point == m.mount_point)
}

/// Where ccr's mount namespace shows what `m` shows: under a host mount of the
/// same filesystem whose root holds `m`'s root (the deepest such root), at a path
/// that reaches that filesystem (not one another mount covers). A mount the tree
/// itself covers whole shows nothing: any path of its filesystem will do.
/// None: the host has no mount of its filesystem; an error: only covered ones.
fn host_path(m: &Mount, host: &[Mount], hidden: bool) -> Option<std::result::Result<String, String>> {
    use std::os::unix::fs::MetadataExt;
    let mut candidates: Vec<&Mount> =
        // An unbindable mount cannot be cloned on restore.
        host.iter()
            .filter(|h| (h.major, h.minor) == (m.major, m.minor) && is_within(&m.root, &h.root) && !h.unbindable)
            .collect();
    candidates.sort_by_key(|h| std::cmp::Reverse(h.root.len()));
    let path_of = |h: &Mount| {
        let rest = below(&m.root, &h.root);
        let base = h.mount_point.to_string_lossy();
        match (base.as_ref(), rest.is_empty()) {
            (b, true) => b.to_string(),
            ("/", false) => format!("/{rest}"),
            (b, false) => format!("{b}/{rest}"),
        }
    };
    let dev = libc::makedev(m.major, m.minor);
    let reaches = |p: &String| std::fs::symlink_metadata(p).is_ok_and(|md| md.dev() == dev);
    let first = candidates.first()?;
    if m.root.ends_with("//deleted") {
        let what = format!(
            "a bind of {}, which is removed from ccr's mount namespace (name it external: --external mnt[{}]:KEY)",
            m.root.trim_end_matches("//deleted"),
            m.mount_point.display()
        );
        return Some(Err(what));
    }
    if let Some(p) = candidates.iter().map(|h| path_of(h)).find(reaches) {
        return Some(Ok(p));
    }
    let p = path_of(first);
    Some(if hidden {
        Ok(p)
    } else {
        Err(format!(
            "a filesystem ccr's mount namespace shows only under another mount ({p}; name it external: --external \
             mnt[{}]:KEY)",
            m.mount_point.display()
        ))
    })
}

/// From a thread inside `root`'s mount namespace: that the tree's root is the
/// namespace's, that each mount in `saved` is the one at its mount point and, for
/// devpts instances, which ptys they hold; with `saving`, the files of each tmpfs
/// (bytes written to mntdata-ID.img; its sockets as `fstree::save` takes them).
type Inside = (HashMap<u32, Vec<pb::FsEntry>>, Vec<crate::files::pty::OwnDevpts>);
fn read_inside(
    root: i32,
    saving: Option<(&ImageDir, &crate::files::unix::BoundFiles)>,
    saved: &[Mount],
) -> Result<Inside> {
    use std::os::fd::AsFd;
    let theirs = std::fs::metadata(format!("/proc/{root}/root"))
        .map_err(crate::sys::SysError::path("stat", format!("/proc/{root}/root")))?;
    crate::sys::process::in_namespaces_of(root, &["mnt"], || -> Result<Inside> {
        let top = std::fs::metadata("/").map_err(crate::sys::SysError::path("stat", "/"))?;
        use std::os::unix::fs::MetadataExt;
        if (top.dev(), top.ino()) != (theirs.dev(), theirs.ino()) {
            let what = "a root other than its mount namespace's root (a chroot inside it)".to_string();
            return Err(MountError::Unsupported { pid: root, mount: "its root".into(), what }.into());
        }
        let mut out = HashMap::new();
        let mut devpts = Vec::new();
        for m in saved {
            let what = name(m);
            let mnt = crate::sys::mount::clone_mount(None, &m.mount_point).map_err(|source| MountError::Make {
                mount: what.clone(),
                step: "open_tree",
                source,
            })?;
            // Reading its files through this private clone must not touch their
            // access times: the tree is to be left as it was.
            let noatime = crate::sys::kernel::MOUNT_ATTR_NOATIME as u64;
            crate::sys::mount::set_attrs(mnt.as_fd(), noatime, crate::sys::kernel::MOUNT_ATTR__ATIME as u64, 0)
                .map_err(|source| MountError::Make { mount: what.clone(), step: "mount_setattr", source })?;
            let st = crate::sys::fd::stat(mnt.as_fd())?;
            if st.st_dev != libc::makedev(m.major, m.minor) {
                let what = "a mount covered by another one at the same place".to_string();
                return Err(MountError::Unsupported { pid: root, mount: name(m), what }.into());
            }
            match (m.fstype.as_str(), saving) {
                ("tmpfs", None) => {}
                ("tmpfs", Some((dir, sockets))) => {
                    let (mut data, _) = dir.create_raw(ImageKind::MountData, m.id as u64)?;
                    out.insert(m.id, fstree::save(mnt.as_fd(), &mut data, &what, sockets)?);
                }
                (_, Some(_)) => {}
                (_, None) => {
                    let names = crate::sys::fd::dir_names(mnt.as_fd())?;
                    let mut indexes = Vec::new();
                    for n in names.iter().map(|n| n.to_string_lossy()).filter(|n| n != "ptmx") {
                        let Ok(i) = n.parse::<u32>() else {
                            let what = format!("{n} in its own devpts instance, which is no pty");
                            return Err(MountError::Unsupported { pid: root, mount: name(m), what }.into());
                        };
                        indexes.push(i);
                    }
                    let mount_point = m.mount_point.to_string_lossy().into_owned();
                    devpts.push(crate::files::pty::OwnDevpts { dev: st.st_dev, mount_id: m.id, mount_point, indexes });
                }
            }
        }
        Ok((out, devpts))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mount named external must be one mount of the tree, not its root, named
    /// once with a key of its own; the error names what was asked.
    #[test]
    fn keyed_mounts_are_mounts_of_the_tree() {
        let tree = proc::mountinfo::parse(
            "20 1 254:0 / / rw - ext4 /dev/vda rw\n\
             21 20 254:0 /usr/lib /lib rw - ext4 /dev/vda rw\n\
             22 20 0:30 / /st rw - tmpfs a rw\n\
             23 22 0:31 / /st rw - tmpfs b rw\n",
        );
        let k = |p: &str, key: &str| ExtMount { mount_point: p.into(), key: key.into() };
        check_keyed(7, &[k("/lib", "lib")], &tree).unwrap();
        for (asked, want) in [
            (vec![k("/usr", "usr")], "/usr is no mount point"),
            (vec![k("/", "root")], "root mount"),
            (vec![k("/st", "st")], "2 mounts stacked"),
            (vec![k("/lib/", "lib")], "not a plain absolute path"),
            (vec![k("/lib", "")], "empty key"),
            (vec![k("/lib", "a"), k("/lib", "b")], "named external twice"),
            (vec![k("/lib", "a"), k("/st", "a")], "the key a names two mounts"),
        ] {
            let e = check_keyed(7, &asked, &tree).unwrap_err().to_string();
            let named =
                format!("pid 7: --external mnt[{}]:{}", asked.last().unwrap().mount_point, asked.last().unwrap().key);
            assert!(e.contains(want) && e.contains(&named), "{asked:?}: {e}");
        }
    }
}
