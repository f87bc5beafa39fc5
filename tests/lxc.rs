//! Unmodified LXC checkpoints and restores a busybox container through ccr run as
//! `criu` (lxc-checkpoint -s / -r, lxc-attach, lxc-info, lxc-stop): the work is
//! in tests/lxc/run.sh, which makes its own network and mount namespace with a
//! bridge and a DHCP server for the container and never touches the machine's
//! network; it also drives liblxc's checkpoint(), restore() and migrate() from
//! a C program (tests/lxc/lxc_api.c). Needs root, LXC and lxc-dev, dnsmasq,
//! busybox and a C compiler (the README's commands install them); under CI=1 a
//! missing one fails the test.

use std::path::Path;
use std::process::Command;

fn missing() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("root".into());
    }
    let tools = ["lxc-create", "lxc-checkpoint", "lxc-attach", "dnsmasq", "busybox", "unshare", "nsenter", "ip", "cc"];
    let path = std::env::var("PATH").unwrap_or_default();
    let on_path = |t: &str| std::env::split_paths(&path).any(|d| d.join(t).exists());
    let mut gone: Vec<&str> = tools.iter().copied().filter(|t| !on_path(t)).collect();
    if !Path::new("/usr/include/lxc/lxccontainer.h").exists() {
        gone.push("lxc-dev (liblxc's headers)");
    }
    (!gone.is_empty()).then(|| gone.join(", "))
}

/// Three checkpoint/restore cycles (a TCP connection inside and one to a server
/// outside carry on, no byte lost or doubled), a dump that leaves the container
/// running and one ccr refuses (a connection still being made), then lxc-stop.
#[test]
fn lxc_checkpoints_and_restores_a_busybox_container_through_ccr() {
    if let Some(what) = missing() {
        assert!(std::env::var_os("CI").is_none(), "the LXC test needs {what} (CI=1 makes a skip a failure)");
        eprintln!("skipped: needs {what}");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lxc/run.sh");
    let out = Command::new("bash").arg(&script).arg(env!("CARGO_BIN_EXE_ccr")).arg("3").output().expect("run bash");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("lxc test: PASS"), "{}: {}\n{text}", script.display(), out.status);
}
