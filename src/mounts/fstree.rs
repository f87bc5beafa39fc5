//! The files of a filesystem that exists only in memory (a tmpfs of the tree's
//! own), saved into the images and made again on restore: directories, regular
//! files with their bytes, symlinks, FIFOs and device nodes, hard links, owners,
//! modes and times. Everything works from the filesystem's root fd (`*at` calls
//! only), so neither side depends on where, or in which namespace, it is mounted.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;

use nix::fcntl::{readlinkat, AtFlags};
use nix::sys::stat::{fchmodat, fstatat, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, Gid, Uid};

use super::MountError;
use crate::image::pb;
use crate::sys::fd;

const S_IFMT: u32 = libc::S_IFMT;

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn at(path: &str) -> &Path {
    Path::new(if path.is_empty() { "." } else { path })
}

fn ns(sec: i64, nsec: i64) -> i64 {
    sec * 1_000_000_000 + nsec
}

/// Saves every file under `root` (the fd of a mount's root, with no mounts
/// below it) into `entries` and their bytes into `data`. `what` names the mount
/// in errors. A socket file is saved unless `sockets` says a socket outside the
/// tree is bound to it (that one would be lost).
pub fn save(
    root: BorrowedFd<'_>,
    data: &mut File,
    what: &str,
    sockets: &crate::files::unix::BoundFiles,
) -> Result<Vec<pb::FsEntry>, MountError> {
    let refuse =
        |path: &str, detail: String| MountError::Contents { mount: what.to_string(), path: format!("/{path}"), detail };
    let mut out = Vec::new();
    // (dev, ino) of a file with more than one name → its first path.
    let mut names: HashMap<(u64, u64), String> = HashMap::new();
    let mut dirs = vec![String::new()];
    let mut offset = 0u64;
    while let Some(dir) = dirs.pop() {
        let st = fstatat(Some(root.as_raw_fd()), at(&dir), AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| refuse(&dir, format!("stat: {e}")))?;
        out.push(entry(&dir, &st));
        let dfd =
            fd::openat(root, at(&dir), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC, 0)
                .map_err(|e| refuse(&dir, e.to_string()))?;
        if fd::has_xattrs(dfd.as_fd()).map_err(|e| refuse(&dir, e.to_string()))? {
            return Err(refuse(&dir, "extended attributes, which ccr does not save yet".into()));
        }
        // Names are kept as text: one that is not UTF-8 is refused, never altered.
        let mut children = Vec::new();
        for name in fd::dir_names(dfd.as_fd()).map_err(|e| refuse(&dir, e.to_string()))? {
            children.push(name.into_string().map_err(|n| refuse(&dir, format!("a name that is not UTF-8 ({n:?})")))?);
        }
        let mut subdirs = Vec::new();
        for name in children {
            let path = join(&dir, &name);
            let st = fstatat(Some(dfd.as_raw_fd()), name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(|e| refuse(&path, format!("stat: {e}")))?;
            let kind = st.st_mode & S_IFMT;
            let mut e = entry(&path, &st);
            if kind == libc::S_IFDIR {
                subdirs.push(path);
                continue;
            }
            if st.st_nlink > 1 {
                if let Some(first) = names.get(&(st.st_dev, st.st_ino)) {
                    out.push(pb::FsEntry { path, link_to: first.clone(), ..Default::default() });
                    continue;
                }
                names.insert((st.st_dev, st.st_ino), path.clone());
            }
            match kind {
                libc::S_IFREG => {
                    let f = fd::openat(
                        dfd.as_fd(),
                        Path::new(&name),
                        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                        0,
                    )
                    .map_err(|e| refuse(&path, e.to_string()))?;
                    if fd::has_xattrs(f.as_fd()).map_err(|e| refuse(&path, e.to_string()))? {
                        return Err(refuse(&path, "extended attributes, which ccr does not save yet".into()));
                    }
                    let mut f = File::from(f);
                    e.size = st.st_size as u64;
                    e.offset = offset;
                    e.extents = extents(&f, e.size);
                    for x in &e.extents {
                        f.seek(SeekFrom::Start(x.at)).map_err(|err| refuse(&path, format!("seek: {err}")))?;
                        let n = std::io::copy(&mut Read::by_ref(&mut f).take(x.len), data)
                            .map_err(|err| refuse(&path, format!("copying: {err}")))?;
                        if n != x.len {
                            let what = format!("{n} bytes read of {} at {} (it changed while saved)", x.len, x.at);
                            return Err(refuse(&path, what));
                        }
                        offset += n;
                    }
                }
                libc::S_IFLNK => {
                    let t = readlinkat(Some(dfd.as_raw_fd()), name.as_str())
                        .map_err(|e| refuse(&path, format!("readlink: {e}")))?;
                    e.target = t
                        .into_string()
                        .map_err(|t| refuse(&path, format!("a link to a name that is not UTF-8 ({t:?})")))?;
                }
                libc::S_IFIFO | libc::S_IFCHR | libc::S_IFBLK => e.rdev = st.st_rdev,
                // A socket file comes back as a file no socket is bound to: the
                // tree's socket takes it over when its task binds it again.
                libc::S_IFSOCK if sockets.get(&(st.st_dev, st.st_ino)) != Some(&false) => {}
                libc::S_IFSOCK => {
                    let what = "a socket file a process outside the checkpoint is bound to".into();
                    return Err(refuse(&path, what));
                }
                _ => return Err(refuse(&path, format!("file type {:#o}", kind))),
            }
            out.push(e);
        }
        // Depth first, in name order.
        dirs.extend(subdirs.into_iter().rev());
    }
    data.flush().map_err(|e| refuse("", format!("writing its data: {e}")))?;
    Ok(out)
}

/// The data runs of `f` (of `size` bytes): all of it when the filesystem cannot
/// tell holes.
fn extents(f: &File, size: u64) -> Vec<pb::Extent> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < size {
        let Some(start) = fd::next_data(f, pos) else {
            return vec![pb::Extent { at: 0, len: size }];
        };
        if start >= size {
            break;
        }
        let end = fd::next_hole(f, start).unwrap_or(size).min(size);
        out.push(pb::Extent { at: start, len: end - start });
        pos = end;
    }
    out
}

fn entry(path: &str, st: &libc::stat) -> pb::FsEntry {
    pb::FsEntry {
        path: path.to_string(),
        mode: st.st_mode,
        uid: st.st_uid,
        gid: st.st_gid,
        atime_ns: ns(st.st_atime, st.st_atime_nsec),
        mtime_ns: ns(st.st_mtime, st.st_mtime_nsec),
        ..Default::default()
    }
}

/// Makes `entries` again under `root` (the root fd of a new, empty filesystem),
/// reading file bytes from `data`. Owners are ccr's ids, made the tree's own by
/// `ids` (the filesystem is made inside the tree's user namespace).
pub fn restore(
    root: BorrowedFd<'_>,
    entries: &[pb::FsEntry],
    data: &mut File,
    what: &str,
    ids: &crate::userns::Ids,
) -> Result<(), MountError> {
    let fail =
        |path: &str, detail: String| MountError::Contents { mount: what.to_string(), path: format!("/{path}"), detail };
    let r = Some(root.as_raw_fd());
    // Every entry's parent must be a directory made before it: no path of the
    // image can lead through a symlink or out of the filesystem.
    let mut made_dirs: HashSet<&str> = HashSet::new();
    let mut made: HashSet<&str> = HashSet::new();
    for e in entries {
        let path = e.path.as_str();
        let p = at(path);
        let plain = path.is_empty() || path.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
        if !plain {
            return Err(fail(path, "not a plain relative path".into()));
        }
        let parent = path.rsplit_once('/').map_or("", |(d, _)| d);
        if !path.is_empty() && !made_dirs.contains(parent) {
            return Err(fail(path, "listed before its directory".into()));
        }
        if !made.insert(path) {
            return Err(fail(path, "listed twice".into()));
        }
        if !e.link_to.is_empty() {
            if !made.contains(e.link_to.as_str()) || made_dirs.contains(e.link_to.as_str()) {
                return Err(fail(path, format!("a link to {:?}, which is no file made before it", e.link_to)));
            }
            linkat(r, e.link_to.as_str(), r, path, AtFlags::empty())
                .map_err(|err| fail(path, format!("link: {err}")))?;
            continue;
        }
        let perm = Mode::from_bits_truncate(e.mode & 0o7777);
        match e.mode & S_IFMT {
            libc::S_IFDIR => {
                if !path.is_empty() {
                    mkdirat(r, p, perm).map_err(|err| fail(path, format!("mkdir: {err}")))?;
                }
                made_dirs.insert(path);
            }
            libc::S_IFREG => {
                let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
                let f = fd::openat(root, p, flags, 0o600).map_err(|err| fail(path, err.to_string()))?;
                let mut f = File::from(f);
                f.set_len(e.size).map_err(|err| fail(path, format!("truncate: {err}")))?;
                data.seek(SeekFrom::Start(e.offset)).map_err(|err| fail(path, format!("its data: {err}")))?;
                for x in &e.extents {
                    if x.at.checked_add(x.len).is_none_or(|end| end > e.size) {
                        return Err(fail(path, format!("a data run past its size ({} at {})", x.len, x.at)));
                    }
                    f.seek(SeekFrom::Start(x.at)).map_err(|err| fail(path, format!("seek: {err}")))?;
                    let n = std::io::copy(&mut Read::by_ref(data).take(x.len), &mut f)
                        .map_err(|err| fail(path, format!("writing: {err}")))?;
                    if n != x.len {
                        return Err(fail(path, format!("its data ends after {n} of {} bytes", x.len)));
                    }
                }
            }
            libc::S_IFLNK => {
                symlinkat(e.target.as_str(), r, p).map_err(|err| fail(path, format!("symlink: {err}")))?;
            }
            k @ (libc::S_IFIFO | libc::S_IFCHR | libc::S_IFBLK | libc::S_IFSOCK) => {
                mknodat(r, p, SFlag::from_bits_truncate(k), perm, e.rdev)
                    .map_err(|err| fail(path, format!("mknod: {err}")))?;
            }
            k => return Err(fail(path, format!("file type {k:#o}"))),
        }
        let (uid, gid) = ids.owner(e.uid, e.gid).map_err(|id| fail(path, format!("its owner {id} is not mapped")))?;
        fchownat(r, p, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)), AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|err| fail(path, format!("chown: {err}")))?;
        // After chown, which clears set-id bits; the umask does not apply either.
        if e.mode & S_IFMT != libc::S_IFLNK {
            fchmodat(r, p, perm, FchmodatFlags::FollowSymlink).map_err(|err| fail(path, format!("chmod: {err}")))?;
        }
    }
    // Times last, children before their directories (making a name changes its
    // directory's mtime).
    for e in entries.iter().rev().filter(|e| e.link_to.is_empty()) {
        let t = |n: i64| TimeSpec::new(n.div_euclid(1_000_000_000), n.rem_euclid(1_000_000_000));
        utimensat(r, at(&e.path), &t(e.atime_ns), &t(e.mtime_ns), UtimensatFlags::NoFollowSymlink)
            .map_err(|err| fail(&e.path, format!("utimensat: {err}")))?;
    }
    Ok(())
}
