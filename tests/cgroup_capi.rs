//! Runs the C API test `c-tests/api_cgroup.c` (freeze → cgroup-save → thaw → delete →
//! cgroup-restore through include/ccr.h) and checks it exits 0. Needs root.
//!
//! How it is run: `make lib PROFILE=debug` first (cargo cannot be run from inside a
//! test: the outer `cargo test` holds the build lock). The test then uses
//! `c-tests/bin/api_cgroup` when `make ctests PROFILE=debug` built it, or compiles
//! `c-tests/api_cgroup.c` itself against build/lib/pkgconfig/ccr.pc. Without a built
//! library it is skipped with a note, unless CI=1 (or CCR_REQUIRE_CTESTS=1) makes that
//! a failure.

mod cgroup_util;

use std::path::{Path, PathBuf};
use std::process::Command;

fn binary(root: &Path) -> Option<PathBuf> {
    let made = root.join("c-tests/bin/api_cgroup");
    if made.exists() {
        return Some(made);
    }
    let pc = root.join("build/lib/pkgconfig");
    if !pc.join("ccr.pc").exists() {
        return None;
    }
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "ccr"])
        .env("PKG_CONFIG_PATH", &pc)
        .output()
        .expect("pkg-config");
    assert!(flags.status.success(), "pkg-config ccr: {}", String::from_utf8_lossy(&flags.stderr));
    let out_dir = root.join("target/ctests");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join("api_cgroup");
    let flags = String::from_utf8(flags.stdout).unwrap();
    let st = Command::new("cc")
        .args(["-O1", "-g", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE", "-o"])
        .arg(&out)
        .arg(root.join("c-tests/api_cgroup.c"))
        .args(flags.split_whitespace())
        .status()
        .expect("cc");
    assert!(st.success(), "compiling c-tests/api_cgroup.c failed");
    Some(out)
}

#[test]
fn c_api_freeze_save_thaw_delete_restore() {
    need_root!();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let Some(bin) = binary(&root) else {
        let required = cgroup_util::strict() || std::env::var_os("CCR_REQUIRE_CTESTS").is_some();
        assert!(!required, "libccr not built: run `make lib PROFILE=debug`");
        eprintln!("skipped: run `make lib PROFILE=debug` (or `make ctests PROFILE=debug`) first");
        return;
    };
    let out = Command::new(&bin).output().expect("run api_cgroup");
    assert!(
        out.status.success(),
        "{} failed ({}):\n{}{}",
        bin.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
