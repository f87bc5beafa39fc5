//! The tree's mount namespace made again, by its root task's restore child right
//! after clone(CLONE_NEWNS) and before it opens any file: the copy of ccr's
//! mounts it starts with is made private, every saved mount is made detached,
//! configured and attached below its parent by fd, and the child pivots into
//! the new root and lets go of every mount it had. What it builds lives only in
//! the new namespace, so a failed restore leaves no mount behind.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::{below, fstree, is_plain_absolute, is_within, MountError, ATTR_MASK, MADE_NEW};
use crate::error::Result;
use crate::image::{pb, ImageDir, ImageKind};
use crate::opts::ExtMountMap;
use crate::sys::{fd, mount};

fn name(m: &pb::MountEntry) -> String {
    format!("mount {} at {} ({} {})", m.id, m.mount_point, m.fstype, m.source)
}

/// Checks that an image's mount tree is one restore can walk: parents first,
/// each below its parent, a root at `/`.
pub fn check(ns: &pb::MountNamespace) -> std::result::Result<(), MountError> {
    let bad = |m: &pb::MountEntry, detail: &str| MountError::Image { mount: name(m), detail: detail.into() };
    let mut seen: HashMap<u32, &pb::MountEntry> = HashMap::new();
    for (i, m) in ns.mounts.iter().enumerate() {
        if m.how.is_none() {
            return Err(bad(m, "no way to make it is recorded"));
        }
        // An external mount's root is only its name at dump (perhaps "..//deleted").
        let external_root = matches!(m.how, Some(pb::mount_entry::How::ExtMount(_)));
        let paths_ok = is_plain_absolute(&m.mount_point)
            && (external_root || is_plain_absolute(&m.root))
            && match &m.how {
                Some(pb::mount_entry::How::HostPath(p)) => is_plain_absolute(p),
                _ => true,
            };
        if !paths_ok {
            return Err(bad(m, "a path that is not plain and absolute"));
        }
        if matches!(m.how, Some(pb::mount_entry::How::NewFs(_))) && !MADE_NEW.contains(&m.fstype.as_str()) {
            return Err(bad(m, "a new filesystem of a type ccr does not make"));
        }
        if i == 0 {
            let external =
                matches!(m.how, Some(pb::mount_entry::How::External(_)) | Some(pb::mount_entry::How::ExtMount(_)));
            if m.parent != 0 || m.mount_point != "/" || external {
                return Err(bad(m, "the first mount is not the root at /"));
            }
        } else {
            let Some(p) = seen.get(&m.parent) else { return Err(bad(m, "its parent is not listed before it")) };
            if !is_within(&m.mount_point, &p.mount_point) {
                return Err(bad(m, "its mount point is not below its parent's"));
            }
        }
        if matches!(&m.how, Some(pb::mount_entry::How::ExtMount(e)) if e.key.is_empty()) {
            return Err(bad(m, "an external mount without a key"));
        }
        if let Some(pb::mount_entry::How::BindOf(id)) = m.how {
            if !seen.get(&id).is_some_and(|s| is_within(&m.root, &s.root)) {
                return Err(bad(m, "a bind of a mount not listed before it"));
            }
        }
        if seen.insert(m.id, m).is_some() {
            return Err(bad(m, "its id is listed twice"));
        }
    }
    group_sources(ns)?;
    Ok(())
}

/// Where the new root is attached before the pivot: any directory of the copy
/// of ccr's mounts will do, since nothing is reached through it by path.
fn staging_point() -> Result<OwnedFd> {
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
    let mut last = None;
    for d in ["/tmp", "/mnt", "/run", "/dev", "/"] {
        match fd::open(Path::new(d), flags, 0) {
            Ok(f) => return Ok(f),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("tried at least one").into())
}

/// Where each external mount of `ns` is bound from on this side (key → path):
/// the path the caller maps its key to, with the symlinks on the way resolved
/// here (Debian's /lib is one), checked to be the kind of file the mount showed
/// at dump. Every key of `ns` needs a path; every key mapped must be one of
/// `ns` (None: the checkpoint makes no mount namespace).
pub fn map_external(
    ns: Option<&pb::MountNamespace>,
    map: &[ExtMountMap],
) -> std::result::Result<HashMap<String, PathBuf>, MountError> {
    let keyed: Vec<(&pb::MountEntry, &pb::ExtMount)> = ns
        .iter()
        .flat_map(|ns| &ns.mounts)
        .filter_map(|m| match &m.how {
            Some(pb::mount_entry::How::ExtMount(e)) => Some((m, e)),
            _ => None,
        })
        .collect();
    let mut out = HashMap::new();
    for (i, x) in map.iter().enumerate() {
        let asked = format!("--external mnt[{}]:{}", x.key, x.path.display());
        let bad = |detail: String| MountError::External { mount: asked.clone(), detail };
        if ns.is_none() {
            return Err(bad("the checkpoint makes no mount namespace of its own (none, or it is joined)".into()));
        }
        if map[..i].iter().any(|o| o.key == x.key) {
            return Err(bad(format!("the key {} is mapped twice", x.key)));
        }
        let Some((m, e)) = keyed.iter().find(|(_, e)| e.key == x.key) else {
            let keys: Vec<&str> = keyed.iter().map(|(_, e)| e.key.as_str()).collect();
            let has = if keys.is_empty() { "none".to_string() } else { keys.join(", ") };
            return Err(bad(format!("the checkpoint has no external mount with that key (its keys: {has})")));
        };
        let path = std::fs::canonicalize(&x.path).map_err(|err| bad(format!("{}: {err}", x.path.display())))?;
        let found = std::fs::metadata(&path).map_err(|err| bad(format!("{}: {err}", path.display())))?;
        use std::os::unix::fs::MetadataExt;
        let kind = found.mode() & libc::S_IFMT;
        if e.kind != 0 && kind != e.kind {
            return Err(bad(format!(
                "{} is a {}, but {} showed a {} at dump",
                path.display(),
                super::kind_name(kind),
                name(m),
                super::kind_name(e.kind)
            )));
        }
        out.insert(x.key.clone(), path);
    }
    if let Some((m, e)) = keyed.iter().find(|(_, e)| !out.contains_key(&e.key)) {
        let detail = format!(
            "the external mount {k} has no path on this side: map it with --external mnt[{k}]:PATH \
             (C: ccr_opts_add_ext_mount(opts, \"{k}\", PATH) on the restore's options)",
            k = e.key
        );
        return Err(MountError::External { mount: name(m), detail });
    }
    Ok(out)
}

/// A bind of what the caller mapped the external mount `e` to (`path`, resolved
/// by `map_external`), reached again without a symlink: one swapped in since
/// then is refused, as is a file of another kind.
fn clone_mapped(m: &pb::MountEntry, e: &pb::ExtMount, path: Option<&PathBuf>) -> Result<OwnedFd> {
    let mount = name(m);
    let Some(path) = path else {
        let detail = format!("the external mount {} has no path on this side", e.key);
        return Err(MountError::External { mount, detail }.into());
    };
    let fail = |step| {
        let mount = mount.clone();
        move |source| MountError::Make { mount, step, source }
    };
    let at = mount::path_no_symlinks(path).map_err(fail("finding the path its key maps to"))?;
    let kind = fd::stat(at.as_fd())?.st_mode & libc::S_IFMT;
    if e.kind != 0 && kind != e.kind {
        let detail =
            format!("{} is now a {}, not a {}", path.display(), super::kind_name(kind), super::kind_name(e.kind));
        return Err(MountError::External { mount, detail }.into());
    }
    Ok(mount::clone_mount(Some(at.as_fd()), Path::new("")).map_err(fail("open_tree"))?)
}

/// A bind of the file the caller handed over for `key`. The fd was opened in
/// ccr's mount namespace, whose mounts this new one can only clone by path: its
/// path here, checked to be that very file.
fn clone_handed_over(
    m: &pb::MountEntry,
    key: &str,
    inherited: &HashMap<String, std::os::fd::BorrowedFd<'_>>,
) -> Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    let mount = name(m);
    let bad = |detail: String| MountError::Image { mount: mount.clone(), detail };
    let fd = inherited
        .get(key)
        .ok_or_else(|| bad(format!("the external file {key}: hand it over with --inherit-fd fd[N]:{key}")))?;
    let path = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|e| bad(format!("the fd handed over for {key} has no path ({e})")))?;
    let at = mount::path_no_symlinks(&path).map_err(|source| MountError::Make {
        mount: mount.clone(),
        step: "finding the file handed over",
        source,
    })?;
    let (a, b) = (fd::stat(*fd)?, fd::stat(at.as_fd())?);
    if (a.st_dev, a.st_ino, a.st_rdev) != (b.st_dev, b.st_ino, b.st_rdev) {
        return Err(bad(format!("{} is not the file handed over for {key}", path.display())).into());
    }
    Ok(mount::clone_mount(Some(at.as_fd()), Path::new("")).map_err(|source| MountError::Make {
        mount: mount.clone(),
        step: "open_tree",
        source,
    })?)
}

/// The member of each peer group whose root holds every other member's: the one
/// the others join (the kernel requires the joining mount's root to lie within).
pub fn group_sources(ns: &pb::MountNamespace) -> std::result::Result<HashMap<u32, u32>, MountError> {
    let mut out = HashMap::new();
    let mut groups: HashMap<u32, Vec<&pb::MountEntry>> = HashMap::new();
    for m in ns.mounts.iter().filter(|m| m.shared != 0) {
        groups.entry(m.shared).or_default().push(m);
    }
    for (g, members) in groups {
        let Some(widest) = members.iter().find(|w| members.iter().all(|m| is_within(&m.root, &w.root))) else {
            return Err(MountError::Image {
                mount: name(members[0]),
                detail: format!("no mount of its peer group {g} shows what all the others show"),
            });
        };
        out.insert(g, widest.id);
    }
    Ok(out)
}

/// What a mount tree is built from besides its image.
pub struct Sources<'a> {
    pub dir: &'a ImageDir,
    /// Where the root mount is bound from instead of its saved path (`--root`).
    pub root_at: Option<&'a Path>,
    /// Key → fd the caller handed over for an external file.
    pub inherited: &'a HashMap<String, std::os::fd::BorrowedFd<'a>>,
    /// Mount id → its data file, opened before the builder gave up the ids that
    /// may read the images directory (inside a user namespace).
    pub data: HashMap<u32, std::fs::File>,
    /// Mount id → a clone of its host path ccr made in its own namespace, for a
    /// path the builder cannot clone alone: from inside a user namespace, a mount
    /// with (locked) mounts below it.
    pub premade: &'a HashMap<u32, std::os::fd::RawFd>,
    /// How saved owners become the ids of the namespace the tree is built in.
    pub ids: &'a crate::userns::Ids,
    /// Inside a user namespace: the ids a saved filesystem's files are made
    /// with, by a helper (`crate::userns::as_ids`).
    pub fill_as: Option<crate::userns::NsIds>,
    /// Key → host path of each external mount (`map_external`).
    pub ext: &'a HashMap<String, PathBuf>,
    /// The checkpoint's ptys: those of a devpts instance made here are made with it.
    pub ptys: &'a [pb::Pty],
}

/// Opens the data file of every saved filesystem of `ns`.
pub fn open_data(ns: &pb::MountNamespace, dir: &ImageDir) -> Result<HashMap<u32, std::fs::File>> {
    let mut out = HashMap::new();
    for m in &ns.mounts {
        if matches!(&m.how, Some(pb::mount_entry::How::NewFs(new)) if new.saved) {
            out.insert(m.id, dir.open_raw(ImageKind::MountData, m.id as u64)?.0);
        }
    }
    Ok(out)
}

/// Builds the mount tree of `ns` in the calling process's (new) mount namespace
/// and makes its root this process's root (and that of every process whose root
/// was the old one). `src.root_at` replaces where the root mount is bound from
/// (`--root`); `src.ext` says where each external mount is (`map_external`).
///
/// Every mount is made private and attached; propagation comes last, after the
/// pivot: a shared root cannot be pivoted into, a shared mount would copy each
/// later child to its peers, and an unbindable one could not be cloned.
pub fn build(ns: &pb::MountNamespace, mut src: Sources<'_>) -> Result<()> {
    let (root_at, inherited) = (src.root_at, src.inherited);
    mount::make_all_private()?;
    let sources = group_sources(ns)?;
    // id → the mount made for it (attached) and its entry.
    let mut made: HashMap<u32, (OwnedFd, &pb::MountEntry)> = HashMap::new();
    let mut top = None;
    // Every path of ccr's mounts is cloned before anything is attached: the new
    // root, once attached, covers one of them. No symlink is followed: a path
    // swapped for a link since the dump must not bind what it points to.
    let mut host = HashMap::new();
    for m in &ns.mounts {
        if let Some(pb::mount_entry::How::HostPath(path)) = &m.how {
            let path = if m.parent == 0 { root_at.unwrap_or(Path::new(path)) } else { Path::new(path) };
            let fail = |step| {
                let mount = name(m);
                move |source| MountError::Make { mount, step, source }
            };
            let at = mount::path_no_symlinks(path).map_err(fail("finding it on this side"))?;
            let mnt = match mount::clone_mount(Some(at.as_fd()), Path::new("")) {
                // Mounts below it that a user namespace's copy of ccr's mounts
                // locks: only ccr's own clone shows it without them.
                Err(e) if e.errno() == libc::EINVAL && src.premade.contains_key(&m.id) => {
                    fd::installed(src.premade[&m.id]).try_clone_to_owned().map_err(|e| {
                        fail("taking ccr's clone")(crate::sys::SysError::Path {
                            call: "dup",
                            path: path.into(),
                            source: e,
                        })
                    })?
                }
                r => r.map_err(fail("open_tree"))?,
            };
            host.insert(m.id, mnt);
        }
        if let Some(pb::mount_entry::How::External(key)) = &m.how {
            host.insert(m.id, clone_handed_over(m, key, inherited)?);
        }
        if let Some(pb::mount_entry::How::ExtMount(e)) = &m.how {
            host.insert(m.id, clone_mapped(m, e, src.ext.get(&e.key))?);
        }
    }
    for m in &ns.mounts {
        let what = name(m);
        let step = |step: &'static str| {
            let what = what.clone();
            move |source| MountError::Make { mount: what, step, source }
        };
        let mnt = match &m.how {
            Some(pb::mount_entry::How::BindOf(id)) => {
                let (src, e) = &made[id];
                // Within the source mount only: no link, no other mount on the way.
                // Walked in a clone of it alone: a mount attached on it since
                // (a bind of its /sys on its /sys, as LXC's proc:mixed makes)
                // would cover the path, which the kernel's walk then refuses to cross.
                let bare = mount::clone_mount(Some(src.as_fd()), Path::new("")).map_err(step("open_tree"))?;
                let at = mount::path_beneath(bare.as_fd(), Path::new(&below(&m.root, &e.root)))
                    .map_err(step("finding what it shows"))?;
                mount::clone_mount(Some(at.as_fd()), Path::new("")).map_err(step("open_tree"))?
            }
            Some(pb::mount_entry::How::HostPath(_)) => host.remove(&m.id).expect("cloned above"),
            Some(pb::mount_entry::How::External(_)) | Some(pb::mount_entry::How::ExtMount(_)) => {
                host.remove(&m.id).expect("cloned above")
            }
            Some(pb::mount_entry::How::NewFs(new)) => {
                let mut options = if src.ids.own() {
                    super::options_inside(&new.options, src.ids).map_err(|why| MountError::Image {
                        mount: what.clone(),
                        detail: format!("{why} is not mapped"),
                    })?
                } else {
                    new.options.clone()
                };
                if new.read_only {
                    options.push("ro".into());
                }
                let mnt = mount::new_fs(&m.fstype, &m.source, &options).map_err(step("making the filesystem"))?;
                if m.fstype == "devpts" {
                    crate::files::pty::premake(mnt.as_fd(), m.id, src.ptys).map_err(step("making its ptys"))?;
                }
                if new.saved {
                    let mut data = match src.data.remove(&m.id) {
                        Some(f) => f,
                        None => src.dir.open_raw(ImageKind::MountData, m.id as u64)?.0,
                    };
                    let mut fill = || Ok(fstree::restore(mnt.as_fd(), &new.files, &mut data, &what, src.ids)?);
                    match src.fill_as {
                        Some(ids) => crate::userns::as_ids(ids, None, fill)
                            .map_err(|detail| MountError::Image { mount: what.clone(), detail })?,
                        None => fill()?,
                    }
                }
                mnt
            }
            None => unreachable!("checked when the image was read"),
        };
        mount::set_attrs(mnt.as_fd(), m.attrs, ATTR_MASK, 0).map_err(step("mount_setattr"))?;
        let target = if m.parent == 0 {
            staging_point()?
        } else {
            let (parent, p) = &made[&m.parent];
            mount::path_beneath(parent.as_fd(), Path::new(&below(&m.mount_point, &p.mount_point)))
                .map_err(step("finding its mount point"))?
        };
        mount::attach(mnt.as_fd(), target.as_fd()).map_err(step("move_mount"))?;
        mount::set_attrs(mnt.as_fd(), 0, 0, libc::MS_PRIVATE).map_err(step("making it private"))?;
        if m.parent == 0 {
            top = Some(m.id);
        }
        made.insert(m.id, (mnt, m));
    }
    let Some(top) = top else { return Ok(()) };
    let (root, _) = &made[&top];
    mount::pivot_into(root.as_fd()).map_err(|source| MountError::Make {
        mount: "the new root".into(),
        step: "pivot_root",
        source,
    })?;
    let fail = |m: &pb::MountEntry, step| {
        let mount = name(m);
        move |source| MountError::Make { mount, step, source }
    };
    for &id in sources.values() {
        let (fd, m) = &made[&id];
        mount::set_attrs(fd.as_fd(), 0, 0, libc::MS_SHARED).map_err(fail(m, "making it shared"))?;
    }
    for m in ns.mounts.iter().filter(|m| m.shared != 0 && sources[&m.shared] != m.id) {
        let (from, _) = &made[&sources[&m.shared]];
        mount::join_group(from.as_fd(), made[&m.id].0.as_fd()).map_err(fail(m, "joining its peer group"))?;
    }
    for m in ns.mounts.iter().filter(|m| m.unbindable) {
        mount::set_attrs(made[&m.id].0.as_fd(), 0, 0, libc::MS_UNBINDABLE).map_err(fail(m, "making it unbindable"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u32, parent: u32, at: &str, how: pb::mount_entry::How) -> pb::MountEntry {
        pb::MountEntry {
            id,
            parent,
            mount_point: at.into(),
            root: "/".into(),
            fstype: "ext4".into(),
            how: Some(how),
            ..Default::default()
        }
    }

    fn ns_with(key: &str, kind: u32) -> pb::MountNamespace {
        let ext = pb::mount_entry::How::ExtMount(pb::ExtMount { key: key.into(), kind });
        pb::MountNamespace {
            mounts: vec![
                entry(1, 0, "/", pb::mount_entry::How::HostPath("/".into())),
                pb::MountEntry { root: "/gone//deleted".into(), ..entry(2, 1, "/lib", ext) },
            ],
        }
    }

    fn map(key: &str, path: &Path) -> ExtMountMap {
        ExtMountMap { key: key.into(), path: path.into() }
    }

    /// A key is mapped through a symlink to the directory it names; a key without
    /// a path, a path for no key, twice the same key and a path of another kind
    /// are refused, naming the key.
    #[test]
    fn external_mounts_are_mapped_to_resolved_paths_of_their_kind() {
        let dir = std::env::temp_dir().join(format!("ccr-extmnt-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("usr/lib")).unwrap();
        std::os::unix::fs::symlink("usr/lib", dir.join("lib")).unwrap();
        std::fs::write(dir.join("file"), "").unwrap();
        let ns = ns_with("lib", libc::S_IFDIR);
        check(&ns).unwrap();
        let got = map_external(Some(&ns), &[map("lib", &dir.join("lib"))]).unwrap();
        assert_eq!(got["lib"], dir.join("usr/lib").canonicalize().unwrap());
        let err = |m: &[ExtMountMap]| map_external(Some(&ns), m).unwrap_err().to_string();
        let e = err(&[]);
        assert!(e.contains("at /lib") && e.contains("--external mnt[lib]:PATH"), "{e}");
        let e = err(&[map("lib", &dir.join("lib")), map("usr", &dir)]);
        assert!(e.contains("no external mount with that key (its keys: lib)"), "{e}");
        let e = err(&[map("lib", &dir.join("lib")), map("lib", &dir)]);
        assert!(e.contains("mapped twice"), "{e}");
        let e = err(&[map("lib", &dir.join("file"))]);
        assert!(e.contains("is a regular file") && e.contains("showed a directory"), "{e}");
        let e = err(&[map("lib", &dir.join("missing"))]);
        assert!(e.contains("missing"), "{e}");
        // Unknown at dump (0): any kind will do.
        assert!(map_external(Some(&ns_with("lib", 0)), &[map("lib", &dir.join("file"))]).is_ok());
        let e = map_external(None, &[map("lib", &dir)]).unwrap_err().to_string();
        assert!(e.contains("no mount namespace of its own"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_external_root_or_keyless_external_mount_is_refused() {
        let mut ns = ns_with("", libc::S_IFDIR);
        assert!(check(&ns).unwrap_err().to_string().contains("without a key"));
        ns.mounts.remove(0);
        ns.mounts[0] = pb::MountEntry { parent: 0, mount_point: "/".into(), ..ns.mounts[0].clone() };
        assert!(check(&ns).unwrap_err().to_string().contains("not the root"));
    }
}
