//! The criu-style command line, so that a container manager that runs `criu`
//! (LXC) can run ccr in its place: `criu --version`, `criu check`, `criu dump` and
//! `criu restore` with criu's spellings of the options ccr implements. Any other
//! criu option is refused by name, never ignored: a checkpoint that silently left
//! out what the option asked for would be worse than no checkpoint.

use std::process::ExitCode;

use super::{arg, cmd, flag, parse, Command, Opt};

/// The criu version whose command line this follows (LXC reads `criu --version`).
pub const CRIU_VERSION: &str = "4.2";

/// criu options that only grant a permission ccr either needs no permission for
/// or does not act on: accepted on dump and restore, each with what it means to
/// ccr. None of them makes ccr leave anything out.
const PERMISSIONS: [(&str, &str); 8] = [
    (
        "tcp-established",
        "dump: save established TCP connections (ccr's --tcp-established: each one's peer must be in the tree \
         too, else the dump fails naming it); restore: what the images hold comes back",
    ),
    ("file-locks", "criu: may dump file locks. ccr saves the tree's locks always"),
    ("link-remap", "criu: may link unlinked open files back. ccr saves their contents in the images always"),
    ("skip-in-flight", "criu: drop connections not yet accepted. ccr refuses a listener with any waiting, by name"),
    ("force-irmap", "criu: find inotify watch paths by scanning. ccr reads them from the kernel"),
    ("enable-external-sharing", "criu: allow shared mounts with peers outside. ccr keeps the propagation it sees"),
    ("enable-external-masters", "criu: allow slave mounts of masters outside. ccr keeps the propagation it sees"),
    ("shell-job", "the tree is a shell's job (ccr's --shell-job)"),
];

/// The DUMP and RESTORE tables: each command's own options, then the permissions.
const fn with_permissions<const N: usize, const M: usize>(own: [Opt; N]) -> [Opt; M] {
    let mut out = [flag("", None, ""); M];
    let mut i = 0;
    while i < N {
        out[i] = own[i];
        i += 1;
    }
    let mut j = 0;
    while j < PERMISSIONS.len() {
        out[N + j] = flag(PERMISSIONS[j].0, None, PERMISSIONS[j].1);
        j += 1;
    }
    out
}

const DUMP_OPTS: [Opt; 20] = with_permissions([
    arg("tree", Some('t'), "PID", ""),
    arg("images-dir", Some('D'), "DIR", ""),
    flag("leave-running", Some('R'), ""),
    flag("leave-stopped", Some('s'), ""),
    arg("freeze-cgroup", None, "PATH", ""),
    arg("action-script", None, "PATH", ""),
    arg("external", None, "KEY", ""),
    arg("ext-mount-map", None, "PATH:KEY", ""),
    arg("manage-cgroups", None, "MODE", "any mode but ignore saves the tree's cgroups with it"),
    arg("cgroup-root", None, "CTRL:PATH", "the container's cgroup on CTRL's hierarchy"),
    arg("enable-fs", None, "FSTYPE", "criu: may dump mounts of FSTYPE. ccr dumps the kinds it knows, refuses others"),
    arg("ghost-limit", None, "SIZE", "a deleted, still open file larger than SIZE fails the dump naming it"),
]);

const RESTORE_OPTS: [Opt; 23] = with_permissions([
    arg("images-dir", Some('D'), "DIR", ""),
    flag("restore-detached", Some('d'), ""),
    flag("restore-sibling", None, "the restored root is a child of ccr's parent, not of ccr"),
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
    arg("enable-fs", None, "FSTYPE", ""),
    arg("lsm-profile", None, "TYPE:NAME", "the LSM profile for the restored tasks"),
]);

const DUMP: Command = cmd("dump", "criu dump", "criu dump", &DUMP_OPTS);
const RESTORE: Command = cmd("restore", "criu restore", "criu restore", &RESTORE_OPTS);

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
        "check" => check(&args[1..]),
        "dump" => {
            let p = parse(&DUMP, &normalise(&args[1..])).map_err(|e| format!("criu {e}"))?;
            super::ccr::dump(&dump_opts(&p)?)
        }
        "restore" => {
            let p = parse(&RESTORE, &normalise(&args[1..])).map_err(|e| format!("criu {e}"))?;
            super::ccr::restore(&super::ccr::restore_opts(&p)?)
        }
        other => {
            let why = match other {
                "pre-dump" => " (no iterative pre-dump yet: a dump copies all memory while the tasks are frozen)",
                "page-server" | "lazy-pages" => " (pages go to the images directory only, for now)",
                _ => "",
            };
            let msg = format!("criu: the command '{other}' is not supported by ccr{why}");
            log_refusal(&args[1..], &msg);
            Err(msg)
        }
    }
}

/// Writes a refused command's reason to the log its caller asked for (`-o`,
/// relative to `-D` unless absolute): LXC shows that log when criu fails.
/// Best effort: the reason goes to stderr in any case.
fn log_refusal(args: &[String], msg: &str) {
    let value = |names: &[&str]| {
        args.iter().enumerate().find_map(|(i, a)| {
            names.iter().find_map(|n| {
                a.strip_prefix(&format!("{n}="))
                    .map(str::to_string)
                    .or_else(|| (a == n).then(|| args.get(i + 1).cloned()).flatten())
            })
        })
    };
    let (Some(log), Some(dir)) = (value(&["-o", "--log-file"]), value(&["-D", "--images-dir"])) else { return };
    let path = std::path::Path::new(&dir).join(log);
    // The caller made the directory; a refusal never creates one.
    if path.parent().is_some_and(|p| p.is_dir()) {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path);
        if let Ok(mut f) = file {
            let _ = writeln!(f, "Error: {msg}");
        }
    }
}

/// `criu check`, and `criu check --feature NAME` as LXC's migrate() asks it:
/// the features of iterative and lazy migration are not ccr's yet (LXC then
/// does not offer them), any other is refused by name.
fn check(args: &[String]) -> Result<ExitCode, String> {
    let mut features = Vec::new();
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--feature" => features.push(rest.next().ok_or("criu check: --feature needs a name")?.clone()),
            f if f.starts_with("--feature=") => features.push(f["--feature=".len()..].to_string()),
            // criu's log options, as LXC may pass them.
            "-v" | "-v0" | "-v1" | "-v2" | "-v3" | "-v4" => {}
            other => return Err(format!("criu check: unknown option {other}")),
        }
    }
    if features.is_empty() {
        // criu's last line when nothing is missing, which its users look for.
        let code = super::ccr::run(&["check".to_string()])?;
        if code == ExitCode::SUCCESS {
            println!("Looks good.");
        }
        return Ok(code);
    }
    // Every feature criu checks that ccr knows of is one it does not have yet.
    const NOT_YET: [&str; 3] = ["mem_dirty_track", "uffd", "uffd-noncoop"];
    if let Some(f) = features.iter().find(|f| !NOT_YET.contains(&f.as_str())) {
        return Err(format!("criu check: unknown feature {f}"));
    }
    for f in &features {
        eprintln!("ccr: the feature {f} is not supported yet (no pre-dump or lazy pages)");
    }
    Ok(ExitCode::from(1))
}

/// ccr's dump options for criu's: with any --manage-cgroups mode but ignore
/// (criu's default is soft) the dump saves the tree's cgroups, with the roots
/// --cgroup-root names.
fn dump_opts(p: &super::Parsed) -> Result<crate::opts::DumpOpts, String> {
    let mut o = super::ccr::dump_opts(p)?;
    if p.value("manage-cgroups").is_some_and(|m| m == "ignore") {
        return Ok(o);
    }
    let mut roots = Vec::new();
    for v in p.values("cgroup-root") {
        let (ctl, path) = v.split_once(':').ok_or_else(|| format!("--cgroup-root: '{v}' is not CTRL:PATH"))?;
        let ctl = ctl.split(',').next().unwrap_or_default();
        if ctl.is_empty() || !path.starts_with('/') {
            return Err(format!("--cgroup-root: '{v}' is not CTRL:PATH"));
        }
        roots.push((ctl.to_string(), path.to_string()));
    }
    o.cgroups = Some(crate::opts::CgroupSaveRoots { roots });
    Ok(o)
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

    /// What LXC 5.0.2 passes (recorded from lxc-checkpoint): every option parses,
    /// the cgroups are saved with the roots LXC names, restore comes back as a
    /// sibling with the LSM profile asked for.
    #[test]
    fn the_command_lines_lxc_passes_parse() {
        let common = "--tcp-established --file-locks --link-remap --manage-cgroups=full --ext-mount-map auto \
            --enable-external-sharing --enable-external-masters --enable-fs hugetlbfs --enable-fs tracefs -D /d \
            -o /d/x.log --cgroup-root name=systemd:/lxc.payload.c1 --cgroup-root pids:/lxc.payload.c1 \
            --cgroup-root cpu,cpuacct:/lxc.payload.c1 -v4";
        let dump = format!(
            "{common} --ext-mount-map /lib:lib -t 42 --skip-in-flight --freeze-cgroup \
             /sys/fs/cgroup/freezer//lxc.payload.c1 --ext-mount-map /dev/console:console --external tty[8800:1a] \
             --force-irmap"
        );
        let o =
            dump_opts(&parse(&DUMP, &normalise(&s(&dump.split_whitespace().collect::<Vec<_>>()))).unwrap()).unwrap();
        let roots = o.cgroups.expect("cgroups saved").roots;
        assert_eq!(roots[0], ("name=systemd".to_string(), "/lxc.payload.c1".to_string()));
        assert_eq!(roots[2], ("cpu".to_string(), "/lxc.payload.c1".to_string()));
        assert_eq!((o.pid, o.external.as_slice()), (Some(42), &["tty[8800:1a]".to_string()][..]));
        assert!(o.tcp_established, "--tcp-established does not save connections");
        let restore = format!(
            "{common} --ext-mount-map lib:/lib --root /usr/lib/x86_64-linux-gnu/lxc/rootfs --restore-detached \
             --restore-sibling --inherit-fd fd[7]:tty[8800:1a] --ext-mount-map console:/dev/pts/0 \
             --lsm-profile apparmor:generated --external veth[eth0]:vethCYuS4K@lxcbr0"
        );
        let p = parse(&RESTORE, &normalise(&s(&restore.split_whitespace().collect::<Vec<_>>()))).unwrap();
        let o = super::super::ccr::restore_opts(&p).unwrap();
        assert!(o.sibling && o.detached);
        assert_eq!(o.lsm_profile.as_deref(), Some("apparmor:generated"));
        assert_eq!(o.veth_pairs.len(), 1);
        let p = parse(&DUMP, &s(&["-t", "1", "--manage-cgroups=ignore"])).unwrap();
        assert!(dump_opts(&p).unwrap().cgroups.is_none());
        let p = parse(&DUMP, &s(&["-t", "1", "--cgroup-root", "/no-controller"])).unwrap();
        assert!(dump_opts(&p).unwrap_err().contains("--cgroup-root"));
    }

    /// LXC's migrate() passes criu's --ghost-limit in bytes; ccr takes K, M, G too.
    #[test]
    fn the_ghost_limit_is_taken_in_bytes_or_with_a_suffix() {
        for (v, want) in [("1048576", 1 << 20), ("2M", 2 << 20), ("3k", 3 << 10), ("1G", 1 << 30)] {
            let p = parse(&DUMP, &s(&["-t", "1", "--ghost-limit", v])).unwrap();
            assert_eq!(dump_opts(&p).unwrap().ghost_limit, Some(want), "{v}");
        }
        let p = parse(&DUMP, &s(&["-t", "1", "--ghost-limit", "lots"])).unwrap();
        assert!(dump_opts(&p).unwrap_err().contains("is not a size"));
    }

    #[test]
    fn options_ccr_does_not_implement_are_refused_by_name() {
        for opt in ["--lazy-pages", "--page-server", "--prev-images-dir"] {
            let e = parse(&DUMP, &s(&[opt, "-t", "1"])).unwrap_err();
            assert!(e.contains(opt), "{e}");
        }
    }
}
