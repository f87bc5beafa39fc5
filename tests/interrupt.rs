//! Stopping ccr never harms the tree it works on. SIGKILL of `ccr dump` or of its
//! helper (the tracer) at any moment leaves every thread alive, running, untraced,
//! with its signal mask, CPU affinity and memory map as before, and its registers
//! and memory intact (the workloads check those themselves at the end). SIGTERM and SIGINT stop a dump or a restore
//! cleanly, with an error that says so; a stopped restore leaves nothing behind.

mod common;

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_exit, Case};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// What must not change in a process: its memory map.
fn maps(pids: &[i32]) -> Vec<String> {
    pids.iter().map(|p| fs::read_to_string(format!("/proc/{p}/maps")).unwrap_or_default()).collect()
}

/// What must not change in a thread: (tid, affinity, blocked signals).
fn snapshot(pids: &[i32]) -> Vec<(i32, String, String)> {
    let mut out = Vec::new();
    for &p in pids {
        for e in fs::read_dir(format!("/proc/{p}/task")).unwrap().flatten() {
            let tid: i32 = e.file_name().to_str().unwrap().parse().unwrap();
            let st = fs::read_to_string(format!("/proc/{p}/task/{tid}/status")).unwrap_or_default();
            let field = |k: &str| st.lines().find(|l| l.starts_with(k)).unwrap_or("").to_string();
            out.push((tid, field("Cpus_allowed_list:"), field("SigBlk:")));
        }
    }
    out.sort();
    out
}

/// Waits until no thread of `pids` is traced or stopped.
fn settled(pids: &[i32], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let busy: Vec<i32> = pids
            .iter()
            .copied()
            .filter(|&p| common::tracer_pid(p) != Some(0) || matches!(common::state(p), Some('t' | 'T')))
            .collect();
        if busy.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: still traced or stopped: {busy:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn spawn_dump(case: &Case, pid: i32, images: &str, extra: &[&str]) -> std::process::Child {
    Command::new(&common::env().ccr)
        .args(["dump", "-t", &pid.to_string(), "-D", images, "-o", &format!("{images}.log"), "-v", "4"])
        .args(extra)
        .current_dir(&case.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ccr dump")
}

/// Reaps ccr's helper once it is done (it is reparented to us, a subreaper).
fn reap_helper(helper: Option<i32>) {
    let Some(h) = helper else { return };
    let deadline = Instant::now() + Duration::from_secs(10);
    while common::exists(h) && common::state(h) != Some('Z') {
        assert!(Instant::now() < deadline, "ccr's helper {h} did not finish after its parent was killed");
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = nix::sys::wait::waitpid(Pid::from_raw(h), None);
}

#[test]
fn sigkill_of_ccr_dump_harms_nothing() {
    let mut mid_dump = 0;
    // wl_tcpconn's connections are in TCP repair mode during the dump: a killed
    // ccr's watcher takes them out of it (the workload's traffic at the end
    // fails otherwise).
    // (workload, kills, dump options, the span the kills spread over in us)
    let lr: &[&str] = &["--leave-running"];
    let tcp: &[&str] = &["--leave-running", "--tcp-established"];
    let cases = [
        ("wl_threads", 10, lr, 250_000),
        ("wl_counter", 6, lr, 250_000),
        ("wl_tree", 6, lr, 250_000),
        // Its dump holds the connections from Collect to Release (~20-70 ms).
        ("wl_tcpconn", 6, tcp, 80_000),
    ];
    for (workload, tries, extra, span) in cases {
        let mut case = Case::new(&format!("kill-dump-{workload}"));
        let root = case.start_workload(workload, &[]);
        case.wait_ready(root, Duration::from_secs(20));
        let tree = common::tree_pids(root);
        for &p in &tree {
            case.track(p);
        }
        let before = snapshot(&tree);
        for i in 0..tries {
            let images = case.dir.join(format!("images-{i}")).display().to_string();
            let mut ccr = spawn_dump(&case, root, &images, extra);
            let ccr_pid = ccr.id() as i32;
            // Spread over the dump: from before the seize to after the release.
            std::thread::sleep(Duration::from_micros(1000 + (i as u64 * 37_000) % span));
            let helper = common::children_of(ccr_pid).first().copied();
            // Every other time the helper itself, the tracer, dies by SIGKILL.
            match helper {
                Some(h) if i % 2 == 1 => {
                    let _ = kill(Pid::from_raw(h), Signal::SIGKILL);
                    let _ = ccr.wait();
                }
                _ => {
                    let _ = kill(Pid::from_raw(ccr_pid), Signal::SIGKILL);
                    let _ = ccr.wait();
                    reap_helper(helper);
                }
            }
            if !case.dir.join(format!("images-{i}/inventory.img")).exists() {
                mid_dump += 1;
            }
            let what = format!("{workload}, kill {i}");
            settled(&tree, &what);
            // A thread between two sigsuspend calls shows its mask outside the
            // call for a moment: only a change that lasts counts.
            let deadline = Instant::now() + Duration::from_secs(2);
            let mut now = snapshot(&tree);
            while now != before && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
                now = snapshot(&tree);
            }
            let changed: Vec<_> = now
                .iter()
                .filter(|t| !before.contains(t))
                .take(3)
                .map(|t| (t, before.iter().find(|b| b.0 == t.0)))
                .collect();
            assert!(
                changed.is_empty() && now.len() == before.len(),
                "{what}: threads changed (now, before): {changed:?}"
            );
        }
        case.signal(root, Signal::SIGTERM);
        assert_exit(case.wait_exit(root, Duration::from_secs(30)), 0, workload);
        case.assert_pass(1);
    }
    // The kills must have caught dumps at work, not only finished ones.
    assert!(mid_dump >= 5, "only {mid_dump} kills landed before a dump was complete");
}

/// The tracer (ccr's dump helper) killed by SIGKILL at each moment of a
/// remote-syscall session that changes a thread: after the frame is written,
/// parked, masked; with a call's registers set, at its entry and exit stops; with
/// the mask or the registers put back. Each thread then puts itself back: the
/// workloads check registers (ymm, MXCSR, x87 control), masks, altstacks, a
/// relative sleep and their counters at the end; masks, affinity and the memory
/// map are compared here after every kill.
#[test]
fn a_tracer_killed_inside_a_remote_session_leaves_threads_as_they_were() {
    let call_points = [1, 2, 3, 4, 5, 6, 7, 29, 100, 101, 102];
    let mut fired = 0;
    for (workload, envs) in [
        ("wl_threads", &[][..]),
        ("wl_avx", &[][..]),
        ("wl_altstack", &[][..]),
        ("wl_sleep", &[("WL_SLEEP_MODE", "relative")][..]),
    ] {
        let mut case = Case::new(&format!("kill-tracer-{workload}"));
        let root = case.start_workload(workload, envs);
        case.wait_ready(root, Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(100));
        let tree = common::tree_pids(root);
        let (before, map_before) = (snapshot(&tree), maps(&tree));
        let points = (1..=6)
            .map(|n| ("dump.stage", n))
            .chain((1..=6).map(|n| ("remote.start", n)))
            .chain((1..=4).map(|n| ("remote.finish", n)))
            .chain(call_points.iter().map(|&n| ("remote.call", n)));
        for (point, n) in points {
            let spec = format!("{point}:{n}");
            let images = case.dir.join(format!("images-{point}-{n}"));
            let log = case.dir.join(format!("{point}-{n}.log"));
            let out = Command::new(&common::env().ccr)
                .args(["dump", "-t", &root.to_string(), "-D"])
                .arg(&images)
                .args(["--leave-running", "-v", "4", "-o"])
                .arg(&log)
                .env("CCR_FAULT", &spec)
                .stdin(Stdio::null())
                .output()
                .expect("run ccr dump");
            let err = String::from_utf8_lossy(&out.stderr);
            let logged = fs::read_to_string(&log).unwrap_or_default();
            assert!(!logged.contains("without a landing"), "{workload} {spec}: sessions ran unprotected: {logged}");
            if out.status.success() {
                continue; // fewer sessions or calls than n: nothing was killed
            }
            assert!(err.contains("killed by SIGKILL"), "{workload} {spec}: not the injected kill: {err}");
            fired += 1;
            settled(&tree, &format!("{workload} {spec}"));
            let deadline = Instant::now() + Duration::from_secs(2);
            let mut now = snapshot(&tree);
            while now != before && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
                now = snapshot(&tree);
            }
            assert_eq!(now, before, "{workload} {spec}: a thread's mask or affinity changed");
            assert_eq!(maps(&tree), map_before, "{workload} {spec}: the memory map changed");
        }
        case.signal(root, Signal::SIGTERM);
        assert_exit(case.wait_exit(root, Duration::from_secs(30)), 0, workload);
        case.assert_pass(1);
    }
    assert!(fired >= 60, "only {fired} injected kills fired");
}

/// SIGTERM and SIGINT stop a dump (it would have killed the tree): ccr says so and
/// fails, no checkpoint is left, and the tree runs on.
#[test]
fn sigterm_and_sigint_stop_a_dump_cleanly() {
    let mut stopped = 0;
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let mut case = Case::new(&format!("stop-dump-{sig}"));
        let root = case.start_workload("wl_memory", &[]);
        case.wait_ready(root, Duration::from_secs(20));
        let images = case.images.display().to_string();
        let ccr = spawn_dump(&case, root, &images, &[]);
        // Once the dump is at work (the tree is seized), ask it to stop.
        let deadline = Instant::now() + Duration::from_secs(10);
        while common::tracer_pid(root) == Some(0) {
            assert!(Instant::now() < deadline, "the dump never seized pid {root}");
            std::thread::sleep(Duration::from_micros(200));
        }
        let _ = kill(Pid::from_raw(ccr.id() as i32), sig);
        let out = ccr.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if case.images.join("inventory.img").exists() {
            // The dump finished before the signal; then it killed the tree.
            eprintln!("{sig}: the dump finished first ({err})");
            continue;
        }
        assert!(!out.status.success(), "{sig}: a stopped dump exited 0");
        assert!(err.contains(&format!("stopped by {sig}")), "{sig}: the error does not say why: {err}");
        settled(&[root], &format!("{sig}"));
        case.signal(root, Signal::SIGTERM);
        assert_exit(case.wait_exit(root, Duration::from_secs(30)), 0, "the workload after a stopped dump");
        case.assert_pass(1);
        stopped += 1;
    }
    assert!(stopped > 0, "every dump finished before its signal: nothing was tested");
}

/// SIGTERM during a restore undoes it: no task of the tree is left.
#[test]
fn sigterm_stops_a_restore_and_leaves_nothing() {
    let mut case = Case::new("stop-restore");
    let root = case.start_workload("wl_tree100", &[]);
    case.wait_ready(root, Duration::from_secs(30));
    let tree = common::tree_pids(root);
    case.dump_ok(root, &[]);
    let _ = case.wait_exit(root, Duration::from_secs(20));
    common::reap_gone(&tree, "the dumped tree");
    let rp = case.spawn_restore(&[]);
    // Stop it once its first tasks exist.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !common::exists(root) {
        assert!(Instant::now() < deadline, "the restore never made pid {root}");
        std::thread::sleep(Duration::from_micros(200));
    }
    kill(Pid::from_raw(rp), Signal::SIGTERM).expect("signal ccr restore");
    let st = case.wait_exit(rp, Duration::from_secs(30));
    let err = fs::read_to_string(case.dir.join("restore.out")).unwrap_or_default();
    if st.success() {
        let _ = kill(Pid::from_raw(root), Signal::SIGKILL);
        panic!("the restore finished before SIGTERM arrived: nothing was tested");
    }
    assert!(err.contains("stopped by SIGTERM"), "the error does not say why: {err}");
    std::thread::sleep(Duration::from_millis(300));
    let left: Vec<i32> = tree.iter().copied().filter(|&p| common::exists(p) && common::state(p) != Some('Z')).collect();
    assert!(left.is_empty(), "a stopped restore left tasks: {left:?}");
}

/// The SysV segments created by `pid` (from /proc/sysvipc/shm).
fn segments_of(pid: i32) -> Vec<i32> {
    let t = fs::read_to_string("/proc/sysvipc/shm").unwrap();
    t.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(4)?.parse::<i32>().ok()? == pid).then(|| f[1].parse().ok())?
        })
        .collect()
}

fn ipcrm(id: i32) {
    // SAFETY: IPC_RMID takes no buffer.
    unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
}

/// A dumped `wl_sysvshm` whose tree was in cgroup `name` of the pids hierarchy
/// (saved with cgroup-save), with the segments and the cgroup removed as on
/// another machine. Returns the dumped pid, its tree, the segment ids and the
/// cgroup's path.
fn dumped_in_a_cgroup(case: &mut Case, name: &str) -> (i32, Vec<i32>, Vec<i32>, std::path::PathBuf) {
    let cg = std::path::PathBuf::from(format!("/sys/fs/cgroup/pids/ccrtest-{}-{name}", std::process::id()));
    fs::create_dir_all(&cg).unwrap();
    let pid = case.start_workload("wl_sysvshm", &[]);
    case.wait_ready(pid, Duration::from_secs(10));
    let tree = common::tree_pids(pid);
    for p in &tree {
        fs::write(cg.join("cgroup.procs"), p.to_string()).unwrap();
    }
    let images = case.images.display().to_string();
    let out = case.ccr(&["cgroup-save", "-t", &pid.to_string(), "-D", &images]);
    assert!(out.status.success(), "cgroup-save: {}", common::stderr(&out));
    let segs = segments_of(pid);
    assert!(!segs.is_empty(), "wl_sysvshm made no segment");
    case.dump_ok(pid, &[]);
    let _ = case.wait_exit(pid, Duration::from_secs(10));
    common::reap_gone(&tree, "the dumped tree");
    // The other side has neither the segments nor the cgroup.
    segs.iter().for_each(|&id| ipcrm(id));
    fs::remove_dir(&cg).unwrap();
    (pid, tree, segs, cg)
}

/// SIGKILL of `ccr restore` after it made SysV segments and a cgroup: they are
/// left, listed in DIR/restore.journal, and `ccr cleanup -D DIR` removes them; a
/// restore killed again is cleaned up by the next restore itself, which then
/// works.
#[test]
fn a_killed_restore_is_cleaned_up_from_its_journal() {
    let mut case = Case::new("journal");
    let (pid, tree, segs, cg) = dumped_in_a_cgroup(&mut case, "journal");
    let images = case.images.display().to_string();
    let journals = |images: &std::path::Path| -> Vec<String> {
        fs::read_dir(images)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("restore.journal."))
            .collect()
    };

    for round in ["ccr cleanup", "the next restore"] {
        let mut killed_mid_way = false;
        for _attempt in 0..10 {
            let rp = case.spawn_restore(&["--manage-cgroups", "full"]);
            let deadline = Instant::now() + Duration::from_secs(20);
            while !(cg.exists() && segments_of(rp).len() == segs.len()) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_micros(200));
            }
            let _ = kill(Pid::from_raw(rp), Signal::SIGKILL);
            let _ = case.wait_exit(rp, Duration::from_secs(10));
            if case.pidfile.exists() {
                // Too late: it had finished. End the tree and try again.
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                common::reap_gone(&tree, "a restored tree");
                let _ = case.ccr(&["cleanup", "-D", &images]);
                let _ = fs::remove_dir(&cg);
                segments_of(rp).iter().for_each(|&id| ipcrm(id));
                continue;
            }
            assert_eq!(
                journals(&case.images),
                vec![format!("restore.journal.{rp}")],
                "{round}: the killed restore's journal"
            );
            assert!(cg.exists() && !segments_of(rp).is_empty(), "{round}: nothing was left to clean up");
            common::reap_gone(&tree, "the tree of a killed restore");
            if round == "ccr cleanup" {
                let out = case.ccr(&["cleanup", "-D", &images]);
                assert!(out.status.success(), "ccr cleanup: {}", common::stderr(&out));
                assert!(segments_of(rp).is_empty(), "ccr cleanup left the segments of pid {rp}");
                assert!(!cg.exists(), "ccr cleanup left {}", cg.display());
                assert!(journals(&case.images).is_empty(), "ccr cleanup left the journal");
            }
            killed_mid_way = true;
            break;
        }
        assert!(killed_mid_way, "{round}: no restore was killed half-way in 10 tries");
    }
    // The restore cleans up the second killed one first, then works.
    let rp = case.spawn_restore(&["--manage-cgroups", "full"]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    assert!(journals(&case.images).is_empty(), "a restore that runs keeps a journal");
    let log = fs::read_to_string(case.dir.join("restore.log")).unwrap_or_default();
    assert!(log.contains("removed what a killed restore"), "the restore did not clean up first:\n{log}");
    case.track(pid);
    kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
    assert_exit(case.wait_exit(rp, Duration::from_secs(30)), 0, "the restored workload");
    case.assert_pass(1);
    std::thread::sleep(Duration::from_millis(100));
    let _ = fs::remove_dir(&cg);
}

/// SIGKILL of `ccr restore` at the start of every stage, and inside remote
/// sessions: the tree it was making dies with it, and `ccr cleanup -D DIR`
/// removes what it made (SysV segments, the cgroup), leaving no journal; then the
/// checkpoint still restores and the workload's state is intact.
#[test]
fn a_restore_killed_at_any_stage_leaves_nothing_after_cleanup() {
    let mut case = Case::new("kill-restore-stages");
    let (pid, tree, segs, cg) = dumped_in_a_cgroup(&mut case, "stages");
    let images = case.images.display().to_string();
    let journal_left = || {
        fs::read_dir(&case.images)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("restore.journal."))
    };
    let points = (1..=16).map(|n| ("restore.stage", n)).chain([("remote.call", 20), ("remote.call", 150)]);
    let mut killed = 0;
    for (point, n) in points {
        let spec = format!("{point}:{n}");
        let ccr = Command::new(&common::env().ccr)
            .args(["restore", "-D", &images, "-d", "--manage-cgroups", "full", "-o"])
            .arg(case.dir.join(format!("restore-{point}-{n}.log")))
            .env("CCR_FAULT", &spec)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ccr restore");
        let rp = ccr.id() as i32;
        let out = ccr.wait_with_output().unwrap();
        if out.status.success() {
            // Past the last point: a restored tree, ended here, and what it made.
            for &p in &tree {
                let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            }
            common::reap_gone(&tree, &format!("{spec}: a restored tree"));
            segs.iter().for_each(|&id| ipcrm(id));
            segments_of(rp).iter().for_each(|&id| ipcrm(id));
            std::thread::sleep(Duration::from_millis(100));
            let _ = fs::remove_dir(&cg);
        } else {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                out.status.signal(),
                Some(libc::SIGKILL),
                "{spec}: not the injected kill: {}",
                common::stderr(&out)
            );
            killed += 1;
        }
        common::reap_gone(&tree, &format!("{spec}: the tree of a killed restore"));
        let out = case.ccr(&["cleanup", "-D", &images]);
        assert!(out.status.success(), "{spec}: ccr cleanup: {}", common::stderr(&out));
        assert!(!cg.exists(), "{spec}: ccr cleanup left {}", cg.display());
        assert!(!journal_left(), "{spec}: ccr cleanup left the journal");
        let shm = fs::read_to_string("/proc/sysvipc/shm").unwrap();
        let ids: Vec<i32> = shm.lines().skip(1).filter_map(|l| l.split_whitespace().nth(1)?.parse().ok()).collect();
        let left: Vec<&i32> = segs.iter().filter(|id| ids.contains(id)).collect();
        assert!(left.is_empty() && segments_of(rp).is_empty(), "{spec}: ccr cleanup left SysV segments {left:?}");
    }
    assert!(killed >= 16, "only {killed} injected kills fired");
    let rp = case.spawn_restore(&["--manage-cgroups", "full"]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    case.track(pid);
    kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
    assert_exit(case.wait_exit(rp, Duration::from_secs(30)), 0, "the restored workload");
    case.assert_pass(1);
    std::thread::sleep(Duration::from_millis(100));
    let _ = fs::remove_dir(&cg);
}
