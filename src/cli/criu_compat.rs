//! The criu-style command line, so that a container manager that runs `criu`
//! (LXC) can run ccr in its place: `criu --version`, `criu check`, `criu dump` and
//! `criu restore` with criu's spellings of the options ccr implements. Any other
//! criu option is refused by name, never ignored: a checkpoint that silently left
//! out what the option asked for would be worse than no checkpoint.

use std::process::ExitCode;

use super::{arg, cmd, flag, parse, Command};

/// The criu version whose command line this follows (LXC reads `criu --version`).
pub const CRIU_VERSION: &str = "4.2";

const DUMP: Command = cmd(
    "dump",
    "criu dump",
    "criu dump",
    &[
        arg("tree", Some('t'), "PID", ""),
        arg("images-dir", Some('D'), "DIR", ""),
        flag("leave-running", Some('R'), ""),
        flag("leave-stopped", Some('s'), ""),
        flag("shell-job", Some('j'), ""),
        arg("freeze-cgroup", None, "PATH", ""),
        arg("action-script", None, "PATH", ""),
        arg("external", None, "KEY", ""),
        arg("ext-mount-map", None, "PATH:KEY", ""),
    ],
);

const RESTORE: Command = cmd(
    "restore",
    "criu restore",
    "criu restore",
    &[
        arg("images-dir", Some('D'), "DIR", ""),
        flag("restore-detached", Some('d'), ""),
        flag("shell-job", Some('j'), ""),
        arg("pidfile", None, "FILE", ""),
        arg("inherit-fd", None, "fd[N]:KEY", ""),
        arg("manage-cgroups", None, "MODE", ""),
        arg("cgroup-root", None, "[CTRL:]PATH", ""),
        arg("root", None, "PATH", ""),
        arg("join-ns", None, "NS:PID|PATH", ""),
        arg("action-script", None, "PATH", ""),
        arg("external", None, "mnt[KEY]:PATH", ""),
        arg("ext-mount-map", None, "KEY:PATH", ""),
        arg("veth-pair", None, "IN=OUT[@BRIDGE]", ""),
    ],
);

/// criu's `-vN`/`-v` style (criu counts -v repetitions too; ccr's levels are 0..4).
fn normalise(args: &[String]) -> Vec<String> {
    args.iter()
        .map(|a| match a.as_str() {
            "-v" => "-v4".to_string(),
            // criu's bare --manage-cgroups means "soft".
            "--manage-cgroups" => "--manage-cgroups=soft".to_string(),
            _ => a.clone(),
        })
        .collect()
}

pub fn run(args: &[String]) -> Result<ExitCode, String> {
    let Some(cmd) = args.first() else {
        return Err("criu: no command (dump, restore, check, --version)".into());
    };
    match cmd.as_str() {
        "--version" | "-V" => {
            println!("Version: {CRIU_VERSION}");
            println!("GitID: ccr-{}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        "check" => super::ccr::run(&["check".to_string()]),
        "dump" => {
            let p = parse(&DUMP, &normalise(&args[1..])).map_err(|e| format!("criu {e}"))?;
            super::ccr::dump(&super::ccr::dump_opts(&p)?)
        }
        "restore" => {
            let p = parse(&RESTORE, &normalise(&args[1..])).map_err(|e| format!("criu {e}"))?;
            super::ccr::restore(&super::ccr::restore_opts(&p)?)
        }
        other => Err(format!("criu: the command '{other}' is not supported by ccr")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::s;
    use super::*;

    #[test]
    fn criu_spellings_map_onto_ccr_options() {
        let p = parse(&DUMP, &normalise(&s(&["-t", "42", "-D", "/d", "-v4", "-o", "/d/dump.log", "-R"]))).unwrap();
        let o = super::super::ccr::dump_opts(&p).unwrap();
        assert_eq!((o.pid, o.leave_running, o.log.level), (Some(42), true, 4));
        let p = parse(&RESTORE, &normalise(&s(&["-D", "/d", "--manage-cgroups", "--inherit-fd", "fd[6]:tty[88:1]"])))
            .unwrap();
        let o = super::super::ccr::restore_opts(&p).unwrap();
        assert_eq!(o.cgroups.manage, crate::opts::ManageCgroups::Soft);
        assert_eq!((o.inherit_fds[0].fd, o.inherit_fds[0].key.as_str()), (6, "tty[88:1]"));
    }

    /// LXC passes `--action-script PATH` (and criu takes `--action-script=PATH`),
    /// repeatable, to dump and to restore.
    #[test]
    fn action_scripts_as_criu_takes_them() {
        let args = s(&["-t", "42", "-D", "/d", "--action-script", "/usr/share/lxc/hook", "--action-script=/h2"]);
        let o = super::super::ccr::dump_opts(&parse(&DUMP, &normalise(&args)).unwrap()).unwrap();
        assert_eq!(o.hooks.scripts, [std::path::PathBuf::from("/usr/share/lxc/hook"), "/h2".into()]);
        let args = s(&["-D", "/d", "--action-script", "/usr/share/lxc/hook"]);
        let o = super::super::ccr::restore_opts(&parse(&RESTORE, &normalise(&args)).unwrap()).unwrap();
        assert_eq!(o.hooks.scripts, [std::path::PathBuf::from("/usr/share/lxc/hook")]);
    }

    /// criu's external mounts: `--external mnt[PATH]:KEY` and the older
    /// `--ext-mount-map PATH:KEY` on dump, `mnt[KEY]:PATH` and `KEY:PATH` on
    /// restore; `auto` and `mnt[]` are ccr's own way anyway; ttys still work.
    #[test]
    fn external_mounts_as_criu_spells_them() {
        use crate::opts::{ExtMount, ExtMountMap};
        let args = s(&[
            "-t",
            "42",
            "--external",
            "mnt[/lib]:lib",
            "--ext-mount-map",
            "/etc/hosts:hosts",
            "--ext-mount-map",
            "auto",
            "--external",
            "mnt[]",
            "--external",
            "tty[8800:1a]",
        ]);
        let o = super::super::ccr::dump_opts(&parse(&DUMP, &normalise(&args)).unwrap()).unwrap();
        let want = |p: &str, k: &str| ExtMount { mount_point: p.into(), key: k.into() };
        assert_eq!(o.ext_mounts, [want("/lib", "lib"), want("/etc/hosts", "hosts")]);
        assert_eq!(o.external, ["tty[8800:1a]"]);
        let args = s(&["-D", "/d", "--external", "mnt[lib]:/usr/lib", "--ext-mount-map", "hosts:/etc/hosts"]);
        let o = super::super::ccr::restore_opts(&parse(&RESTORE, &normalise(&args)).unwrap()).unwrap();
        let want = |k: &str, p: &str| ExtMountMap { key: k.into(), path: p.into() };
        assert_eq!(o.ext_mounts, [want("lib", "/usr/lib"), want("hosts", "/etc/hosts")]);
        for bad in ["mnt[/lib]", "mnt[]:k", "veth[a]:b", "mnt[/lib]:"] {
            let p = parse(&DUMP, &s(&["-t", "1", "--external", bad])).unwrap();
            let e = super::super::ccr::dump_opts(&p).unwrap_err();
            assert!(e.contains(bad), "{bad}: {e}");
        }
        let p = parse(&RESTORE, &s(&["--external", "tty[88:1]"])).unwrap();
        assert!(super::super::ccr::restore_opts(&p).unwrap_err().contains("--inherit-fd"));
    }

    /// LXC names the host end of each veth (and its bridge) as criu takes it.
    #[test]
    fn veth_pairs_as_lxc_passes_them() {
        use crate::opts::VethPair;
        let args = s(&["-D", "/d", "--veth-pair", "eth0=vethA1B2C3@lxcbr0", "--veth-pair=eth1=vethX"]);
        let o = super::super::ccr::restore_opts(&parse(&RESTORE, &normalise(&args)).unwrap()).unwrap();
        assert_eq!(
            o.veth_pairs,
            [
                VethPair { inside: "eth0".into(), outside: "vethA1B2C3".into(), bridge: Some("lxcbr0".into()) },
                VethPair { inside: "eth1".into(), outside: "vethX".into(), bridge: None },
            ]
        );
        // criu 2.8 on spells it --external veth[IN]:OUT[@BRIDGE], which LXC passes.
        let args = s(&["-D", "/d", "--external", "veth[eth0]:vethA1B2C3@lxcbr0", "--external", "mnt[lib]:/lib"]);
        let o = super::super::ccr::restore_opts(&parse(&RESTORE, &normalise(&args)).unwrap()).unwrap();
        let want = VethPair { inside: "eth0".into(), outside: "vethA1B2C3".into(), bridge: Some("lxcbr0".into()) };
        assert_eq!(o.veth_pairs, [want]);
        assert_eq!(o.ext_mounts.len(), 1);
        for bad in ["veth[eth0]", "veth[]:x", "veth[eth0]:", "veth[eth0]:x@"] {
            let p = parse(&RESTORE, &s(&["--external", bad])).unwrap();
            let e = super::super::ccr::restore_opts(&p).unwrap_err();
            assert!(e.contains(bad), "{bad}: {e}");
        }
        for bad in ["eth0", "eth0=", "=vethX", "eth0=vethX@", "eth0=a-name-far-too-long-for-linux", "eth0=a/b"] {
            let p = parse(&RESTORE, &s(&["--veth-pair", bad])).unwrap();
            let e = super::super::ccr::restore_opts(&p).unwrap_err();
            assert!(e.contains("--veth-pair") && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn options_ccr_does_not_implement_are_refused_by_name() {
        let e = parse(&DUMP, &s(&["--tcp-established", "-t", "1"])).unwrap_err();
        assert!(e.contains("--tcp-established"), "{e}");
    }
}
