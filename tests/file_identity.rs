//! Restore maps and opens only the files that were dumped: a file put at the same
//! path (another inode), or the same inode rewritten to another size, is refused
//! by name — the task, the fd or mapping address, the path and what differs — and
//! nothing of the tree is left running; with the files put back, the same
//! checkpoint restores and the workload finds its mapping and offsets intact (its
//! log, opened O_APPEND, may have grown meanwhile).

mod common;

use std::fs::{self, FileTimes, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{assert_exit, assert_killed, Case};
use nix::sys::signal::Signal;

/// A file moved aside and another put at its path: as long, as old (mtime), other
/// bytes; only its inode tells it apart. Moved back by `put_back`.
fn swap_in_another(path: &Path) -> PathBuf {
    let aside = path.with_extension("orig");
    let md = fs::metadata(path).unwrap();
    fs::rename(path, &aside).unwrap();
    let mut bytes = fs::read(&aside).unwrap();
    bytes.iter_mut().for_each(|b| *b = b.wrapping_add(1));
    fs::write(path, &bytes).unwrap();
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.set_times(FileTimes::new().set_modified(md.modified().unwrap())).unwrap();
    aside
}

fn put_back(path: &Path, aside: &Path) {
    fs::rename(aside, path).unwrap();
}

/// The same inode one byte longer; `shrink_back` undoes it, mtime included.
fn grow_in_place(path: &Path) -> (u64, std::time::SystemTime) {
    let md = fs::metadata(path).unwrap();
    OpenOptions::new().append(true).open(path).unwrap().write_all(b"+").unwrap();
    (md.len(), md.modified().unwrap())
}

fn shrink_back(path: &Path, (len, mtime): (u64, std::time::SystemTime)) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len).unwrap();
    f.set_times(FileTimes::new().set_modified(mtime)).unwrap();
}

/// A restore that must fail saying all of `want`, and leave no task behind.
fn refused(case: &mut Case, pid: i32, want: &[&str]) {
    let rp = case.spawn_restore(&[]);
    let st = case.wait_exit(rp, Duration::from_secs(30));
    let said = fs::read_to_string(case.dir.join("restore.out")).unwrap();
    assert!(!st.success(), "restore with a changed file succeeded ({st}):\n{said}");
    for w in want {
        assert!(said.contains(w), "restore said:\n{said}\nnot {w:?}");
    }
    assert!(said.contains("it is not the file that was dumped"), "{said}");
    common::reap_gone(&[pid], "the tree of a refused restore");
}

#[test]
fn changed_files_are_refused_by_name_and_put_back_restore() {
    let mut case = Case::new("file-identity");
    // The workload runs from a copy of its own: its binary is one more mapped
    // file (and the executable) the test may change.
    let exe = case.dir.join("wl_mapfile");
    fs::copy(Case::workload_path("wl_mapfile"), &exe).unwrap();
    let mut cmd = Command::new(&exe);
    cmd.arg(case.dir.join("scratch"));
    let pid = case.start(cmd);
    case.wait_ready(pid, Duration::from_secs(10));
    case.dump_ok(pid, &[]);
    assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "original after dump");
    common::reap_gone(&[pid], "the dumped tree");

    let at = format!("pid {pid}: ");
    let map = case.dir.join("scratch/map.bin");
    let rw = case.dir.join("scratch/rw.dat");
    let mapped = format!("{} mapped at 0x", map.display());
    let opened = format!("{} (fd 3)", rw.display());

    let aside = swap_in_another(&map);
    refused(&mut case, pid, &[&at, &mapped, "inode "]);
    put_back(&map, &aside);

    let was = grow_in_place(&map);
    refused(&mut case, pid, &[&at, &mapped, &format!("size {} now, {} then", was.0 + 1, was.0)]);
    shrink_back(&map, was);

    let aside = swap_in_another(&rw);
    refused(&mut case, pid, &[&at, &opened, "inode "]);
    put_back(&rw, &aside);

    let was = grow_in_place(&rw);
    refused(&mut case, pid, &[&at, &opened, &format!("size {} now, {} then", was.0 + 1, was.0)]);
    shrink_back(&rw, was);

    // Another binary at the executable's path is never mapped.
    let aside = swap_in_another(&exe);
    refused(&mut case, pid, &[&at, &format!("{} mapped at 0x", exe.display())]);
    put_back(&exe, &aside);

    // A log written only at its end (the workload's stdout, O_APPEND) may have
    // grown since: another writer appending is no reason to refuse.
    OpenOptions::new().append(true).open(&case.out).unwrap().write_all(b"info: another writer\n").unwrap();
    let rp = case.spawn_restore(&[]);
    let restored = case.wait_pidfile(rp, Duration::from_secs(30));
    assert_eq!(restored, pid);
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(30)), 0, "ccr restore (the restored workload's status)");
    case.assert_pass(1);
}
