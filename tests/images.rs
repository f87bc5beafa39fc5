//! Images are the contract: a checkpoint whose images hold a value this ccr does
//! not know (an enum, a file kind, a flag, an architecture, a newer format) is
//! refused by restore with an error naming the file and the field, before it
//! touches anything; it is never restored as something else.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ccr::image::{pb, ImageDir};
use common::{assert_running_untraced, stderr, Case};

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Copies the checkpoint, changes it with `edit`, and restores it: the restore
/// must fail saying every one of `want`.
fn refused(case: &Case, name: &str, edit: impl FnOnce(&ImageDir), want: &[&str]) {
    let dir: PathBuf = case.dir.join(name);
    copy_dir(&case.images, &dir);
    edit(&ImageDir::open(&dir).unwrap());
    let out = case.ccr(&["restore", "-D", &dir.display().to_string()]);
    assert!(!out.status.success(), "{name}: restore of a changed image succeeded");
    let err = stderr(&out);
    for w in want {
        assert!(err.contains(w), "{name}: the error does not say {w:?}: {err}");
    }
}

#[test]
fn unknown_values_are_refused_by_file_and_field() {
    let mut case = Case::new("image-contract");
    let pid = case.start_workload("wl_counter", &[]);
    case.wait_ready(pid, Duration::from_secs(10));
    case.dump_ok(pid, &["--leave-running"]);
    let n = Some(pid as u64);
    let mm_file = format!("mm-{pid}.img");
    let core_file = format!("core-{pid}.img");

    refused(
        &case,
        "vma-kind",
        |d| {
            let mut mm: pb::Mm = d.read(n).unwrap();
            mm.vmas[0].kind = 99;
            d.write(n, &mm).unwrap();
        },
        &[&mm_file, "vmas[0]", "kind", "unknown value 99"],
    );
    refused(
        &case,
        "vma-kind-unset",
        |d| {
            let mut mm: pb::Mm = d.read(n).unwrap();
            mm.vmas[1].kind = pb::VmaKind::Unspecified as i32;
            d.write(n, &mm).unwrap();
        },
        &[&mm_file, "vmas[1]", "kind", "not set"],
    );
    refused(
        &case,
        "run-flags",
        |d| {
            let mut mm: pb::Mm = d.read(n).unwrap();
            mm.runs[0].flags |= 0x80;
            d.write(n, &mm).unwrap();
        },
        &[&mm_file, "runs[0]", "flags", "unknown bits"],
    );
    refused(
        &case,
        "file-kind",
        |d| {
            let mut files: pb::Files = d.read(None).unwrap();
            files.files[0].kind = None;
            d.write(None, &files).unwrap();
        },
        &["files.img", "files[0]", "kind", "no kind this ccr knows"],
    );
    let lock = |kind: pb::LockKind| pb::FileLock { kind: kind as i32, write: true, start: 0, len: 0 };
    refused(
        &case,
        "lock-kind",
        |d| {
            let mut files: pb::Files = d.read(None).unwrap();
            files.files[0].locks.push(pb::FileLock { kind: 99, ..lock(pb::LockKind::Flock) });
            d.write(None, &files).unwrap();
        },
        &["files.img", "files[0]", "locks[0].kind", "unknown value 99"],
    );
    refused(
        &case,
        "posix-lock-on-a-description",
        |d| {
            let mut files: pb::Files = d.read(None).unwrap();
            files.files[0].locks.push(lock(pb::LockKind::Posix));
            d.write(None, &files).unwrap();
        },
        &["files.img", "files[0]", "locks[0].kind", "Posix is no lock a file description holds"],
    );
    refused(
        &case,
        "flock-in-a-task",
        |d| {
            let mut fds: pb::Fds = d.read(n).unwrap();
            fds.fds[0].task_locks.push(lock(pb::LockKind::Flock));
            d.write(n, &fds).unwrap();
        },
        &[&format!("fds-{pid}.img"), "task_locks[0].kind", "Flock is no lock a task's fd holds"],
    );
    refused(
        &case,
        "timer-clock",
        |d| {
            let mut core: pb::TaskCore = d.read(n).unwrap();
            core.posix_timers.push(pb::PosixTimer { id: 3, clock: -6, ..Default::default() });
            d.write(n, &core).unwrap();
        },
        &[&core_file, "posix_timers[0] (timer 3).clock", "clock -6"],
    );
    refused(
        &case,
        "timer-thread",
        |d| {
            let mut core: pb::TaskCore = d.read(n).unwrap();
            let notify = libc::SIGEV_THREAD_ID;
            core.posix_timers.push(pb::PosixTimer { id: 0, notify, tid: core.pid + 1, ..Default::default() });
            d.write(n, &core).unwrap();
        },
        &[&core_file, "posix_timers[0] (timer 0).tid", "is no thread of the task"],
    );
    refused(
        &case,
        "arch",
        |d| {
            let mut core: pb::TaskCore = d.read(n).unwrap();
            core.threads[0].regs.as_mut().unwrap().arch = 7;
            d.write(n, &core).unwrap();
        },
        &[&core_file, "threads[0]", "regs.arch", "unknown value 7"],
    );
    refused(
        &case,
        "no-regs",
        |d| {
            let mut core: pb::TaskCore = d.read(n).unwrap();
            core.threads[0].regs = None;
            d.write(n, &core).unwrap();
        },
        &[&core_file, "threads[0]", "regs", "missing"],
    );
    let newer = |d: &ImageDir| {
        let p = d.path().join("inventory.img");
        let mut b = std::fs::read(&p).unwrap();
        b[8] = b[8].wrapping_add(1); // the minor version
        std::fs::write(&p, b).unwrap();
    };
    refused(&case, "newer-minor", newer, &["inventory.img", "written by a newer ccr"]);
    let other_major = |d: &ImageDir| {
        let p = d.path().join(&core_file);
        let mut b = std::fs::read(&p).unwrap();
        b[10] = b[10].wrapping_add(1); // the major version
        std::fs::write(&p, b).unwrap();
    };
    refused(&case, "other-major", other_major, &[&core_file, "has format 3."]);

    // None of it touched the task the images came from.
    assert_running_untraced(pid, "original after the refused restores");
}

/// Every file of a directory, with its contents and mode (the directory itself too).
fn dir_state(dir: &Path) -> Vec<(String, u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let md = e.metadata().unwrap();
            let body = if md.is_file() { std::fs::read(e.path()).unwrap() } else { Vec::new() };
            (e.file_name().to_string_lossy().into_owned(), md.permissions().mode() & 0o7777, body)
        })
        .collect();
    v.sort();
    v
}

/// A dump writes into a partial directory and moves its images in only when it
/// is complete: a dump that fails half-way (the second task has an inet socket,
/// after the first one's pages were written) leaves an earlier checkpoint in the
/// directory exactly as it was; a partial directory of a dump that was killed is
/// cleaned up; a new checkpoint replaces every image of the old one. Images are
/// private (0600, the directory 0700).
#[test]
fn a_failed_dump_leaves_the_directory_as_it_was() {
    use std::os::unix::fs::PermissionsExt;
    let mut case = Case::new("staged-dump");
    let first = case.start_workload("wl_counter", &[]);
    case.wait_ready(first, Duration::from_secs(10));
    case.dump_ok(first, &["--leave-running"]);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&case.images), 0o700, "a new images directory is not private");
    for (name, m, _) in dir_state(&case.images) {
        assert_eq!(m, 0o600, "{name} is readable by others");
    }
    let killed = case.images.join(format!(".ccr-dump-{}.partial", common::free_pid()));
    std::fs::create_dir(&killed).unwrap();
    std::fs::write(killed.join("pages-1.img"), b"left by a killed dump").unwrap();
    let checkpoint = dir_state(&case.images);

    let tree = case.start_workload("wl_tree", &[("WL_TREE_SOCKET", "1")]);
    case.wait_ready(tree, Duration::from_secs(20));
    for p in common::tree_pids(tree) {
        case.track(p);
    }
    let out = case.dump(tree, &[]);
    assert!(!out.status.success(), "the dump of a tree with an inet socket succeeded");
    let after: Vec<_> = checkpoint.iter().filter(|(n, ..)| !n.starts_with(".ccr-dump-")).cloned().collect();
    assert_eq!(dir_state(&case.images), after, "a failed dump changed the directory (or left its partial images)");

    case.dump_ok(first, &["--leave-running"]);
    let second = case.start_workload("wl_sleep", &[]);
    case.wait_ready(second, Duration::from_secs(10));
    case.dump_ok(second, &["--leave-running"]);
    let names: Vec<String> = dir_state(&case.images).into_iter().map(|(n, ..)| n).collect();
    assert!(names.contains(&format!("core-{second}.img")), "{names:?}");
    assert!(!names.iter().any(|n| n.contains(&first.to_string())), "images of the old checkpoint stayed: {names:?}");
    assert_running_untraced(first, "first workload");
    assert_running_untraced(second, "second workload");
}
