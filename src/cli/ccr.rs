//! `ccr`'s own commands: each maps its options onto one operation's options and
//! calls `crate::api`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{arg, cmd, flag, help, parse, Command, Opt, Parsed};
use crate::api::{self, Isolation};
use crate::opts::{
    CgroupRestoreCmdOpts, CgroupRestoreOpts, CgroupSaveOpts, DumpOpts, ExtMount, ExtMountMap, FreezeOpts, HookOpts,
    InheritFd, JoinNs, LogOpts, ManageCgroups, RestoreOpts, VethPair,
};

const TREE: Opt = arg("tree", Some('t'), "PID", "the task (and everything below it)");
const IMAGES: Opt = arg("images-dir", Some('D'), "DIR", "the images directory");
const FREEZE_CGROUP: Opt = arg("freeze-cgroup", None, "PATH", "a v1 freezer or v2 cgroup holding the tasks");
const FREEZE_TIMEOUT: Opt = arg("freeze-timeout", None, "SECS", "how long a freeze may take (default 10)");
const MANAGE: Opt =
    arg("manage-cgroups", None, "MODE", "ignore, props, soft (default), full or strict: how saved cgroups are made");
const CGROUP_ROOT: Opt = arg("cgroup-root", None, "[CTRL:]PATH", "restore the cgroups (of CTRL) under PATH");
const ACTION_SCRIPT: Opt =
    arg("action-script", None, "PATH", "run PATH at every hook stage; non-zero exit aborts (repeatable)");

pub const COMMANDS: &[Command] = &[
    cmd(
        "dump",
        "checkpoint a task and its tree",
        "Checkpoints task PID and every task below it into DIR (created if missing), then kills them, or with \
         --leave-running lets them go on exactly as they were. A dump that fails leaves every task running, \
         untraced and unchanged, and says what it could not dump. Each --action-script runs at the stages \
         pre-dump, network-lock, post-dump and (with --leave-running, or after a failure) network-unlock, with \
         CRTOOLS_SCRIPT_ACTION, CRTOOLS_IMAGE_DIR and CRTOOLS_INIT_PID set; one that fails fails the dump.",
        &[
            TREE,
            arg("pid", None, "PID", "the same as --tree"),
            IMAGES,
            flag("leave-running", Some('R'), "keep the tasks running after the dump"),
            flag("leave-stopped", Some('s'), "leave the freeze cgroup frozen after the dump"),
            flag("shell-job", Some('j'), "the tree is a shell's job: let go of its session and group"),
            arg(
                "ghost-limit",
                None,
                "SIZE",
                "refuse to save a deleted, still open file larger than SIZE (bytes, or with K, M or G)",
            ),
            flag(
                "tcp-established",
                None,
                "save established TCP connections whose peer is in the tree too (held in TCP repair mode, made \
                 again without a handshake); without it a dump refuses them",
            ),
            arg(
                "external",
                None,
                "tty[RDEV:DEV]|mnt[PATH]:KEY",
                "let go of a tty of the host (restore: --inherit-fd), or record the mount at PATH by KEY \
                 (restore: --external mnt[KEY]:PATH)",
            ),
            FREEZE_CGROUP,
            FREEZE_TIMEOUT,
            ACTION_SCRIPT,
        ],
    ),
    cmd(
        "restore",
        "bring a checkpoint back",
        "Brings the checkpoint in DIR back, with the same PIDs. Without -d ccr stays the parent of the restored \
         root, waits for it and exits with its status (128+signal when killed). Each --action-script runs at \
         the stages pre-restore, setup-namespaces, post-setup-namespaces, post-restore, network-unlock, \
         pre-resume and post-resume; one that fails before the tasks run fails the restore, which leaves \
         nothing behind (a post-resume failure is only logged: the tree runs).",
        &[
            IMAGES,
            flag("restore-detached", Some('d'), "return once the tasks run"),
            flag("shell-job", Some('j'), "a shell's job: join this command's session and process group"),
            arg("pidfile", None, "FILE", "write the restored root's PID here"),
            arg("inherit-fd", None, "fd[N]:KEY", "fd N of ccr stands for the external file KEY"),
            MANAGE,
            CGROUP_ROOT,
            arg("root", None, "PATH", "bind the root mount of a tree with its own mount namespace from PATH"),
            arg("join-ns", None, "NS:PID|PATH", "join this namespace (net, uts, mnt, cgroup) instead of making one"),
            arg(
                "veth-pair",
                None,
                "IN=OUT[@BRIDGE]",
                "the tree's veth IN comes back as a pair whose other end OUT (a new device) is in ccr's network \
                 namespace, up, a port of BRIDGE when given",
            ),
            arg(
                "pty-master-socket",
                None,
                "PATH",
                "send the new masters of the tree's ptys whose masters were outside it (a container's ttys) to this \
                 unix socket (SOCK_SEQPACKET: one message per pty, its key and the fd)",
            ),
            arg(
                "external",
                None,
                "mnt[KEY]:PATH",
                "bind the external mount KEY from PATH of this side (a symlink is followed); veth[IN]:OUT[@BRIDGE] is \
                 --veth-pair IN=OUT[@BRIDGE]; repeatable",
            ),
            ACTION_SCRIPT,
        ],
    ),
    cmd(
        "check",
        "the kernel features ccr relies on",
        "Prints, one line each, the kernel features ccr relies on; exits 1 when a required one is missing.",
        &[],
    ),
    Command {
        args: " DIR|FILE",
        ..cmd(
            "show",
            "print images as JSON, or verify a checkpoint",
            "Prints an image file, or every image of a directory, as JSON. With --verify, checks a whole \
             checkpoint instead: every image, the images against each other, the data against its checksums; \
             exits 1 naming the first thing wrong.",
            &[IMAGES, flag("verify", None, "check the checkpoint instead of printing it")],
        )
    },
    cmd(
        "freeze",
        "freeze a cgroup, or a tree by ptrace",
        "Freezes a cgroup and its descendants (waiting until the kernel says so), or with -t alone, the tree of \
         PID by ptrace: a holder process keeps it stopped until `ccr thaw -t PID`.",
        &[FREEZE_CGROUP, TREE, FREEZE_TIMEOUT],
    ),
    cmd("thaw", "thaw what freeze froze", "Thaws what `ccr freeze` froze.", &[FREEZE_CGROUP, TREE, FREEZE_TIMEOUT]),
    cmd(
        "cgroup-save",
        "save a container's cgroups",
        "Saves the cgroups of PID's tree (or of a freeze cgroup's tasks) on every hierarchy into DIR/cgroup.img.",
        &[TREE, FREEZE_CGROUP, IMAGES],
    ),
    cmd(
        "cgroup-restore",
        "make saved cgroups again",
        "Creates and configures the cgroups of DIR/cgroup.img again.",
        &[IMAGES, MANAGE, CGROUP_ROOT],
    ),
    cmd(
        "cleanup",
        "remove what a killed restore left",
        "Removes the SysV segments and cgroups a restore or cgroup-restore of DIR made before it was killed, \
         as their journals (DIR/restore.journal.PID) list them. A restore of DIR does this first by itself.",
        &[IMAGES],
    ),
];

fn usage() -> String {
    let mut s = String::from("usage: ccr COMMAND [OPTIONS]\n\ncommands:\n");
    for c in COMMANDS {
        s += &format!("  {:<16} {}\n", c.name, c.brief);
    }
    s += "\n`ccr COMMAND --help` tells more. Run as `criu` (or `ccr criu ...`), ccr takes criu's command line.\n";
    s
}

fn log_opts(p: &Parsed) -> Result<LogOpts, String> {
    Ok(LogOpts {
        file: p.value("log-file").map(PathBuf::from),
        level: p.parsed("verbosity", "a level 0..4")?.unwrap_or(2),
    })
}

fn pid(p: &Parsed) -> Result<Option<i32>, String> {
    match p.parsed::<i32>("tree", "a pid")? {
        Some(v) => Ok(Some(v)),
        None => p.parsed("pid", "a pid"),
    }
}

fn path(p: &Parsed, long: &str) -> Option<PathBuf> {
    p.value(long).map(PathBuf::from)
}

/// `NS:PID|PATH` of --join-ns.
pub fn parse_join_ns(v: &str) -> Result<JoinNs, String> {
    let (kind, target) = v.split_once(':').ok_or_else(|| format!("--join-ns: '{v}' is not NS:PID or NS:PATH"))?;
    JoinNs::new(kind, target).map_err(|e| format!("--join-ns: {e}"))
}

/// `IN=OUT[@BRIDGE]` of --veth-pair, as criu spells it.
pub fn parse_veth_pair(v: &str) -> Result<VethPair, String> {
    let (inside, rest) = v.split_once('=').ok_or_else(|| format!("--veth-pair: '{v}' is not IN=OUT[@BRIDGE]"))?;
    let (outside, bridge) = match rest.split_once('@') {
        Some((o, b)) => (o, Some(b)),
        None => (rest, None),
    };
    VethPair::new(inside, outside, bridge).map_err(|e| format!("--veth-pair {v}: {e}"))
}

/// `fd[N]:KEY`, as criu spells it.
pub fn parse_inherit_fd(v: &str) -> Result<InheritFd, String> {
    let bad = || format!("--inherit-fd: '{v}' is not fd[N]:KEY");
    let rest = v.strip_prefix("fd[").ok_or_else(bad)?;
    let (n, key) = rest.split_once("]:").ok_or_else(bad)?;
    Ok(InheritFd { fd: n.parse().map_err(|_| bad())?, key: key.to_string() })
}

/// What one `--external` of a dump names.
#[derive(Debug, PartialEq, Eq)]
pub enum DumpExternal {
    /// `tty[RDEV:DEV]`: a tty of the host let go.
    Tty(String),
    /// `mnt[PATH]:KEY`: the mount at PATH recorded as the external mount KEY.
    Mount(ExtMount),
    /// criu's `mnt[]` and `--ext-mount-map auto` (find the host's binds by
    /// themselves): what ccr does anyway for a bind of a path the host shows.
    Auto,
}

/// `--external tty[RDEV:DEV]` or `--external mnt[PATH]:KEY` of a dump; any
/// other kind is refused by name, never ignored.
pub fn parse_dump_external(v: &str) -> Result<DumpExternal, String> {
    if v == "mnt[]" {
        return Ok(DumpExternal::Auto);
    }
    if let Some(rest) = v.strip_prefix("mnt[") {
        let bad = || format!("--external: '{v}' is not mnt[PATH]:KEY");
        let (point, key) = rest.split_once("]:").ok_or_else(bad)?;
        if point.is_empty() || key.is_empty() {
            return Err(bad());
        }
        return Ok(DumpExternal::Mount(ExtMount { mount_point: point.to_string(), key: key.to_string() }));
    }
    if v.starts_with("tty[") && v.ends_with(']') {
        return Ok(DumpExternal::Tty(v.to_string()));
    }
    Err(format!("--external: '{v}': ccr lets go of ttys (tty[RDEV:DEV]) and mounts (mnt[PATH]:KEY) only"))
}

/// criu's older `--ext-mount-map PATH:KEY` (or `auto`) of a dump.
pub fn parse_dump_ext_mount_map(v: &str) -> Result<DumpExternal, String> {
    if v == "auto" {
        return Ok(DumpExternal::Auto);
    }
    match v.split_once(':') {
        Some((point, key)) if !point.is_empty() && !key.is_empty() => {
            Ok(DumpExternal::Mount(ExtMount { mount_point: point.to_string(), key: key.to_string() }))
        }
        _ => Err(format!("--ext-mount-map: '{v}' is not PATH:KEY or auto")),
    }
}

/// What one `--external` of a restore names.
#[derive(Debug, PartialEq, Eq)]
pub enum RestoreExternal {
    /// `mnt[KEY]:PATH`: where the external mount KEY is bound from.
    Mount(ExtMountMap),
    /// `veth[IN]:OUT[@BRIDGE]`: the host end of the veth IN (criu's spelling since
    /// 2.8 of --veth-pair IN=OUT[@BRIDGE], which LXC passes a criu that new).
    Veth(VethPair),
}

/// `--external mnt[KEY]:PATH` or `veth[IN]:OUT[@BRIDGE]` of a restore.
pub fn parse_restore_external(v: &str) -> Result<RestoreExternal, String> {
    if let Some(rest) = v.strip_prefix("veth[") {
        let (inside, pair) =
            rest.split_once("]:").ok_or_else(|| format!("--external: '{v}' is not veth[IN]:OUT[@BRIDGE]"))?;
        let (outside, bridge) = match pair.split_once('@') {
            Some((o, b)) => (o, Some(b)),
            None => (pair, None),
        };
        return VethPair::new(inside, outside, bridge)
            .map(RestoreExternal::Veth)
            .map_err(|e| format!("--external {v}: {e}"));
    }
    let rest = v.strip_prefix("mnt[").ok_or_else(|| {
        format!(
            "--external: '{v}': restore takes mnt[KEY]:PATH and veth[IN]:OUT[@BRIDGE] (a tty comes back with \
             --inherit-fd fd[N]:KEY)"
        )
    })?;
    match rest.split_once("]:") {
        Some((key, path)) if !key.is_empty() && !path.is_empty() => {
            Ok(RestoreExternal::Mount(ExtMountMap { key: key.to_string(), path: PathBuf::from(path) }))
        }
        _ => Err(format!("--external: '{v}' is not mnt[KEY]:PATH")),
    }
}

/// criu's older `--ext-mount-map KEY:PATH` (or `auto`) of a restore; None for auto.
pub fn parse_restore_ext_mount_map(v: &str) -> Result<Option<ExtMountMap>, String> {
    if v == "auto" {
        return Ok(None);
    }
    match v.split_once(':') {
        Some((key, path)) if !key.is_empty() && !path.is_empty() => {
            Ok(Some(ExtMountMap { key: key.to_string(), path: PathBuf::from(path) }))
        }
        _ => Err(format!("--ext-mount-map: '{v}' is not KEY:PATH or auto")),
    }
}

/// `[CTRL:]PATH` of --cgroup-root.
pub fn parse_cgroup_root(v: &str) -> (Option<String>, PathBuf) {
    match v.split_once(':') {
        Some((ctl, path)) => (Some(ctl.to_string()), PathBuf::from(path)),
        None => (None, PathBuf::from(v)),
    }
}

/// Every --action-script, in the order given.
fn hook_opts(p: &Parsed) -> HookOpts {
    HookOpts { scripts: p.values("action-script").into_iter().map(PathBuf::from).collect(), callback: None }
}

fn cgroup_restore_opts(p: &Parsed) -> Result<CgroupRestoreOpts, String> {
    let manage = match p.value("manage-cgroups") {
        None => ManageCgroups::default(),
        Some(v) => ManageCgroups::from_name(v).ok_or_else(|| format!("--manage-cgroups: unknown mode '{v}'"))?,
    };
    Ok(CgroupRestoreOpts { manage, roots: p.values("cgroup-root").into_iter().map(parse_cgroup_root).collect() })
}

pub fn dump_opts(p: &Parsed) -> Result<DumpOpts, String> {
    let (mut external, mut ext_mounts) = (Vec::new(), Vec::new());
    let named = p.values("external").into_iter().map(parse_dump_external);
    for e in named.chain(p.values("ext-mount-map").into_iter().map(parse_dump_ext_mount_map)) {
        match e? {
            DumpExternal::Tty(k) => external.push(k),
            DumpExternal::Mount(m) => ext_mounts.push(m),
            DumpExternal::Auto => {}
        }
    }
    Ok(DumpOpts {
        pid: pid(p)?,
        images_dir: path(p, "images-dir"),
        leave_running: p.has("leave-running"),
        leave_stopped: p.has("leave-stopped"),
        tcp_established: p.has("tcp-established"),
        ghost_limit: p.value("ghost-limit").map(parse_size).transpose()?,
        freeze_cgroup: path(p, "freeze-cgroup"),
        freeze_timeout_s: p.parsed("freeze-timeout", "seconds")?,
        external,
        ext_mounts,
        cgroups: None,
        shell_job: p.has("shell-job"),
        hooks: hook_opts(p),
        log: log_opts(p)?,
    })
}

pub fn restore_opts(p: &Parsed) -> Result<RestoreOpts, String> {
    Ok(RestoreOpts {
        images_dir: path(p, "images-dir"),
        detached: p.has("restore-detached") || p.has("restore-sibling"),
        sibling: p.has("restore-sibling"),
        lsm_profile: p.value("lsm-profile").map(str::to_string),
        pidfile: path(p, "pidfile"),
        inherit_fds: p.values("inherit-fd").into_iter().map(parse_inherit_fd).collect::<Result<_, _>>()?,
        cgroups: cgroup_restore_opts(p)?,
        shell_job: p.has("shell-job"),
        root: path(p, "root"),
        join_ns: p.values("join-ns").into_iter().map(parse_join_ns).collect::<Result<_, _>>()?,
        ext_mounts: restore_ext_mounts(p)?,
        pty_master_socket: path(p, "pty-master-socket"),
        pty_master_callback: None,
        veth_pairs: restore_veth_pairs(p)?,
        hooks: hook_opts(p),
        log: log_opts(p)?,
    })
}

/// Every `--veth-pair IN=OUT[@BRIDGE]` and `--external veth[IN]:OUT[@BRIDGE]` of a restore.
fn restore_veth_pairs(p: &Parsed) -> Result<Vec<VethPair>, String> {
    let mut out: Vec<VethPair> = p.values("veth-pair").into_iter().map(parse_veth_pair).collect::<Result<_, _>>()?;
    for v in p.values("external") {
        if let RestoreExternal::Veth(pair) = parse_restore_external(v)? {
            out.push(pair);
        }
    }
    Ok(out)
}

/// Every `--external mnt[KEY]:PATH` and `--ext-mount-map KEY:PATH` of a restore.
fn restore_ext_mounts(p: &Parsed) -> Result<Vec<ExtMountMap>, String> {
    let mut out = Vec::new();
    for v in p.values("external") {
        if let RestoreExternal::Mount(m) = parse_restore_external(v)? {
            out.push(m);
        }
    }
    for v in p.values("ext-mount-map") {
        out.extend(parse_restore_ext_mount_map(v)?);
    }
    Ok(out)
}

fn freeze_opts(p: &Parsed) -> Result<FreezeOpts, String> {
    Ok(FreezeOpts {
        pid: pid(p)?,
        freeze_cgroup: path(p, "freeze-cgroup"),
        timeout_s: p.parsed("freeze-timeout", "seconds")?,
    })
}

pub fn run(args: &[String]) -> Result<ExitCode, String> {
    let Some(name) = args.first() else {
        return Err(format!("no command\n{}", usage()));
    };
    if matches!(name.as_str(), "-h" | "--help" | "help") {
        match args.get(1).and_then(|n| COMMANDS.iter().find(|c| c.name == n)) {
            Some(c) => print!("{}", help("ccr", c)),
            None => print!("{}", usage()),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let cmd =
        COMMANDS.iter().find(|c| c.name == name).ok_or_else(|| format!("unknown command '{name}'\n{}", usage()))?;
    let p = parse(cmd, &args[1..])?;
    if p.has("help") {
        print!("{}", help("ccr", cmd));
        return Ok(ExitCode::SUCCESS);
    }
    if !p.positional.is_empty() && cmd.name != "show" {
        return Err(format!("{name}: unexpected argument '{}'", p.positional[0]));
    }
    let e = |e: crate::Error| e.to_string();
    match cmd.name {
        "dump" => return dump(&dump_opts(&p)?),
        "restore" => return restore(&restore_opts(&p)?),
        "check" => {
            let (lines, ok) = crate::check::report();
            for l in lines {
                let _ = writeln!(std::io::stdout(), "{l}");
            }
            return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) });
        }
        "show" => {
            let target =
                p.positional.first().map(PathBuf::from).or(path(&p, "images-dir")).ok_or("show needs DIR or FILE")?;
            if p.has("verify") {
                let summary = crate::show::verify(&target).map_err(e)?;
                let _ = writeln!(std::io::stdout(), "{summary}");
                return Ok(ExitCode::SUCCESS);
            }
            let text = crate::show::to_json(&target).map_err(e)?;
            // A closed pipe (ccr show | head) is not an error worth a panic.
            let _ = writeln!(std::io::stdout(), "{text}");
        }
        "cleanup" => {
            let dir = path(&p, "images-dir").ok_or("cleanup needs -D DIR")?;
            let cleaned = crate::journal::cleanup(&dir).map_err(e)?;
            for id in cleaned.sysv_shm {
                let _ = writeln!(std::io::stdout(), "removed SysV shm segment {id}");
            }
            for d in cleaned.cgroups {
                let _ = writeln!(std::io::stdout(), "removed cgroup {}", d.display());
            }
            for v in cleaned.veths {
                let _ = writeln!(std::io::stdout(), "removed veth pair {v}");
            }
        }
        "freeze" => api::freeze(&freeze_opts(&p)?).map_err(e)?,
        "thaw" => api::thaw(&freeze_opts(&p)?).map_err(e)?,
        "cgroup-save" => {
            let o = CgroupSaveOpts {
                pid: pid(&p)?,
                freeze_cgroup: path(&p, "freeze-cgroup"),
                images_dir: path(&p, "images-dir"),
            };
            api::cgroup_save(&o).map_err(e)?
        }
        "cgroup-restore" => {
            let o = CgroupRestoreCmdOpts { images_dir: path(&p, "images-dir"), cgroups: cgroup_restore_opts(&p)? };
            api::cgroup_restore(&o).map_err(e)?
        }
        other => unreachable!("command {other} is in the table"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Restores; without -d waits for the restored task and exits with its status.
/// A dump runs in a helper process: SIGKILL of this command then cannot catch the
/// tree half-way through a ptrace session. SIGINT, SIGTERM and SIGHUP reach the
/// helper, which undoes the dump and says so.
pub fn dump(opts: &DumpOpts) -> Result<ExitCode, String> {
    crate::sys::interrupt::catch_stop_signals();
    api::dump(opts, Isolation::Helper).map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

/// Restores; SIGINT, SIGTERM and SIGHUP stop the restore and undo it until the
/// tree runs, and then end this command as usual while it waits for the tree.
pub fn restore(opts: &RestoreOpts) -> Result<ExitCode, String> {
    crate::sys::interrupt::catch_stop_signals();
    let restored = api::restore(opts, Isolation::InProcess);
    crate::sys::interrupt::restore_stop_signals();
    let pid = restored.map_err(|e| e.to_string())?;
    if opts.detached {
        return Ok(ExitCode::SUCCESS);
    }
    let status = crate::restore::wait_restored(pid).map_err(|e| e.to_string())?;
    Ok(ExitCode::from(status))
}

/// A size in bytes, or with a K, M or G suffix (powers of 1024), as criu takes it.
pub fn parse_size(v: &str) -> Result<u64, String> {
    let (num, mult) = match v.char_indices().last() {
        Some((i, 'K' | 'k')) => (&v[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&v[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&v[..i], 1 << 30),
        _ => (v, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("--ghost-limit: '{v}' is not a size (bytes, or with K, M or G)"))
}
