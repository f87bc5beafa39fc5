//! The C workloads on their own, without ccr: each must pass when left alone and
//! fail when it breaks its own state (CCR_WL_SELFTEST_BREAK=1). This keeps the
//! end-to-end tests honest: a workload that cannot fail proves nothing.

mod common;

use std::process::Command;

#[test]
fn workloads_pass_alone_and_fail_when_broken() {
    let env = common::env();
    let out = Command::new(env.repo.join("c-tests/selftest.sh")).output().expect("cannot run c-tests/selftest.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(
        out.status.success(),
        "c-tests/selftest.sh failed ({}):\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for wl in [
        "wl_memory",
        "wl_counter",
        "wl_signals",
        "wl_files",
        "wl_sleep",
        "wl_altstack",
        "wl_identity",
        "wl_avx",
        "wl_creds",
        "wl_tree",
        "wl_tree100",
        "wl_threads",
        "wl_pipes",
        "wl_shmem",
        "wl_sharedfd",
        "wl_fdkinds",
        "wl_session",
        "wl_sysvshm",
        "wl_memfd",
        "wl_namespaces",
        "wl_locks",
        "wl_posix_timers",
        "wl_sched",
        "wl_fdowner",
        "wl_timens",
        "wl_shared_tables",
        "wl_mapfile",
        "wl_pty",
        "wl_ttyhost",
        "wl_seccomp",
        "wl_userns",
        "wl_veth",
        "wl_tcpconn",
    ] {
        assert!(text.contains(&format!("ok    {wl} broken: FAIL")), "{wl} was not shown to fail when broken");
    }
}
