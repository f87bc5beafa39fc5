//! `ccr`: the command line over the library. Each command maps its flags onto
//! `Opts` and calls one function of `ccr::api`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use ccr::api::{self, Isolation};
use ccr::opts::{InheritFd, ManageCgroups};
use ccr::Opts;

const USAGE: &str = "\
usage: ccr COMMAND [OPTIONS]

commands:
  dump -t PID -D DIR [--leave-running] [--leave-stopped] [--freeze-cgroup PATH]
  restore -D DIR [-d|--restore-detached] [--pidfile FILE] [--inherit-fd fd[N]:KEY]
  check                     kernel features ccr relies on, one line each
  show DIR|FILE             every image as JSON
  freeze --freeze-cgroup PATH | -t PID
  thaw --freeze-cgroup PATH | -t PID
  cgroup-save (-t PID | --freeze-cgroup PATH) -D DIR
  cgroup-restore -D DIR [--manage-cgroups MODE] [--cgroup-root [CTRL:]PATH]

common options:
  -o, --log-file FILE       log here (\"-\" for stderr)
  -v N, -vN                 log level 0 (errors) .. 4 (debug)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("ccr: {msg}");
            ExitCode::from(1)
        }
    }
}

struct Parsed {
    opts: Opts,
    positional: Vec<String>,
}

fn parse(args: &[String]) -> Result<Parsed, String> {
    let mut opts = Opts { log_level: 2, ..Opts::default() };
    let mut positional = Vec::new();
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if a.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline.clone().or_else(|| it.next().cloned()).ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-t" | "--tree" | "--pid" => {
                let v = value(&flag)?;
                opts.pid = Some(v.parse().map_err(|_| format!("{flag}: '{v}' is not a pid"))?);
            }
            "-D" | "--images-dir" => opts.images_dir = Some(PathBuf::from(value(&flag)?)),
            "-o" | "--log-file" => opts.log_file = Some(PathBuf::from(value(&flag)?)),
            "--leave-running" | "-R" => opts.leave_running = true,
            "--leave-stopped" | "-s" => opts.leave_stopped = true,
            "-d" | "--restore-detached" => opts.restore_detached = true,
            "--pidfile" => opts.pidfile = Some(PathBuf::from(value(&flag)?)),
            "--freeze-cgroup" => opts.freeze_cgroup = Some(PathBuf::from(value(&flag)?)),
            "--freeze-timeout" => {
                let v = value(&flag)?;
                opts.freeze_timeout_s = Some(v.parse().map_err(|_| format!("{flag}: '{v}' is not seconds"))?);
            }
            "--manage-cgroups" => {
                let v = value(&flag)?;
                opts.manage_cgroups =
                    ManageCgroups::from_name(&v).ok_or_else(|| format!("{flag}: unknown mode '{v}'"))?;
            }
            "--cgroup-root" => {
                let v = value(&flag)?;
                match v.split_once(':') {
                    Some((ctl, path)) => opts.cgroup_roots.push((Some(ctl.to_string()), PathBuf::from(path))),
                    None => opts.cgroup_roots.push((None, PathBuf::from(v))),
                }
            }
            "--inherit-fd" => {
                let v = value(&flag)?;
                opts.inherit_fds.push(parse_inherit_fd(&v)?);
            }
            "-v" => {
                let v = value(&flag)?;
                opts.log_level = v.parse().map_err(|_| format!("-v: '{v}' is not a level"))?;
            }
            f if f.starts_with("-v") && f[2..].chars().all(|c| c.is_ascii_digit()) => {
                opts.log_level = f[2..].parse().unwrap_or(4);
            }
            f if f.starts_with('-') && f.len() > 1 => return Err(format!("unknown option {f}\n{USAGE}")),
            _ => positional.push(a.clone()),
        }
    }
    Ok(Parsed { opts, positional })
}

/// `fd[N]:KEY`, as criu spells it.
fn parse_inherit_fd(v: &str) -> Result<InheritFd, String> {
    let bad = || format!("--inherit-fd: '{v}' is not fd[N]:KEY");
    let rest = v.strip_prefix("fd[").ok_or_else(bad)?;
    let (n, key) = rest.split_once("]:").ok_or_else(bad)?;
    Ok(InheritFd { fd: n.parse().map_err(|_| bad())?, key: key.to_string() })
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    let Some(cmd) = args.first() else {
        return Err(format!("no command\n{USAGE}"));
    };
    if cmd == "-h" || cmd == "--help" || cmd == "help" {
        print!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    }
    let Parsed { opts, positional } = parse(&args[1..])?;
    let e = |e: ccr::Error| e.to_string();
    match cmd.as_str() {
        "dump" => api::dump(&opts, Isolation::InProcess).map_err(e)?,
        "restore" => return restore(&opts),
        "check" => {
            let (lines, ok) = ccr::check::report();
            for l in lines {
                let _ = writeln!(std::io::stdout(), "{l}");
            }
            return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) });
        }
        "show" => {
            let path =
                positional.first().map(PathBuf::from).or(opts.images_dir.clone()).ok_or("show needs DIR or FILE")?;
            let text = ccr::show::to_json(&path).map_err(e)?;
            // A closed pipe (ccr show | head) is not an error worth a panic.
            let _ = writeln!(std::io::stdout(), "{text}");
        }
        "freeze" => api::freeze(&opts).map_err(e)?,
        "thaw" => api::thaw(&opts).map_err(e)?,
        "cgroup-save" => api::cgroup_save(&opts).map_err(e)?,
        "cgroup-restore" => api::cgroup_restore(&opts).map_err(e)?,
        other => return Err(format!("unknown command '{other}'\n{USAGE}")),
    }
    Ok(ExitCode::SUCCESS)
}

/// Restores; without -d waits for the restored task and exits with its status.
fn restore(opts: &Opts) -> Result<ExitCode, String> {
    let pid = api::restore(opts, Isolation::InProcess).map_err(|e| e.to_string())?;
    if opts.restore_detached {
        return Ok(ExitCode::SUCCESS);
    }
    let status = ccr::restore::wait_restored(pid).map_err(|e| e.to_string())?;
    Ok(ExitCode::from(status))
}
