//! The command line: a table of options per command (parsing and help come from
//! the same table), `ccr`'s own commands (`ccr`), and the criu-style command line
//! unmodified LXC runs (`criu_compat`).

pub mod ccr;
pub mod criu_compat;

use std::ffi::OsString;
use std::process::ExitCode;

/// One option of a command.
#[derive(Clone, Copy)]
pub struct Opt {
    pub long: &'static str,
    pub short: Option<char>,
    /// The value's name in help ("PID"); None for a flag.
    pub value: Option<&'static str>,
    pub help: &'static str,
}

pub const fn flag(long: &'static str, short: Option<char>, help: &'static str) -> Opt {
    Opt { long, short, value: None, help }
}

pub const fn arg(long: &'static str, short: Option<char>, value: &'static str, help: &'static str) -> Opt {
    Opt { long, short, value: Some(value), help }
}

/// The options every command takes.
pub const COMMON: &[Opt] = &[
    arg("log-file", Some('o'), "FILE", "log to FILE (\"-\" for stderr)"),
    arg("verbosity", Some('v'), "N", "log level: 0 errors .. 4 debug (also -vN)"),
    flag("help", Some('h'), "this help"),
];

/// One command: its name, what it does, its positional arguments and options.
pub struct Command {
    pub name: &'static str,
    /// One line for the list of commands.
    pub brief: &'static str,
    pub summary: &'static str,
    pub args: &'static str,
    pub opts: &'static [Opt],
}

/// A command without positional arguments.
pub const fn cmd(name: &'static str, brief: &'static str, summary: &'static str, opts: &'static [Opt]) -> Command {
    Command { name, brief, summary, args: "", opts }
}

/// What a command line said: (option long name, value) in order, and the rest.
#[derive(Debug, Default)]
pub struct Parsed {
    pub opts: Vec<(&'static str, Option<String>)>,
    pub positional: Vec<String>,
}

impl Parsed {
    pub fn has(&self, long: &str) -> bool {
        self.opts.iter().any(|(l, _)| *l == long)
    }

    /// The last value given for an option.
    pub fn value(&self, long: &str) -> Option<&str> {
        self.opts.iter().rev().find(|(l, _)| *l == long).and_then(|(_, v)| v.as_deref())
    }

    /// Every value given for a repeatable option.
    pub fn values(&self, long: &str) -> Vec<&str> {
        self.opts.iter().filter(|(l, _)| *l == long).filter_map(|(_, v)| v.as_deref()).collect()
    }

    /// An option's value parsed as `T`; `what` names the expected form.
    pub fn parsed<T: std::str::FromStr>(&self, long: &str, what: &str) -> Result<Option<T>, String> {
        match self.value(long) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| format!("--{long}: '{v}' is not {what}")),
        }
    }
}

fn find(cmd: &Command, pred: impl Fn(&Opt) -> bool) -> Option<&Opt> {
    cmd.opts.iter().chain(COMMON).find(|o| pred(o))
}

/// Parses `args` (after the command name) against the command's table.
/// `--long=value`, `--long value`, `-s value` and `-svalue` (as in `-v4`) all work.
pub fn parse(cmd: &Command, args: &[String]) -> Result<Parsed, String> {
    let mut out = Parsed::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            out.positional.extend(it.by_ref().cloned());
            break;
        }
        let (opt, inline) = if let Some(rest) = a.strip_prefix("--") {
            let (name, inline) = match rest.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (rest, None),
            };
            let o = find(cmd, |o| o.long == name)
                .ok_or_else(|| format!("{}: unknown option --{name} (see ccr {} --help)", cmd.name, cmd.name))?;
            (o, inline)
        } else if a.len() > 1 && a.starts_with('-') {
            let c = a[1..].chars().next().expect("one char at least");
            let o = find(cmd, |o| o.short == Some(c))
                .ok_or_else(|| format!("{}: unknown option -{c} (see ccr {} --help)", cmd.name, cmd.name))?;
            let rest = &a[1 + c.len_utf8()..];
            match (o.value, rest.is_empty()) {
                (_, true) => (o, None),
                (Some(_), false) => (o, Some(rest.to_string())),
                (None, false) => return Err(format!("{}: -{c} takes no value ('{a}')", cmd.name)),
            }
        } else {
            out.positional.push(a.clone());
            continue;
        };
        let value = match (opt.value, inline) {
            (None, Some(_)) => return Err(format!("{}: --{} takes no value", cmd.name, opt.long)),
            (None, None) => None,
            (Some(_), Some(v)) => Some(v),
            (Some(meta), None) => {
                Some(it.next().cloned().ok_or_else(|| format!("{}: --{} needs a value ({meta})", cmd.name, opt.long))?)
            }
        };
        out.opts.push((opt.long, value));
    }
    Ok(out)
}

fn opt_line(o: &Opt) -> String {
    let short = o.short.map(|c| format!("-{c}, ")).unwrap_or_else(|| "    ".into());
    let value = o.value.map(|v| format!(" {v}")).unwrap_or_default();
    let left = format!("  {short}--{}{value}", o.long);
    format!("{left:<34} {}\n", o.help)
}

/// `text` broken into lines of at most `width` columns.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for w in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + w.len() > width {
            out += &line;
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line += w;
    }
    out + &line + "\n"
}

/// The help text of one command.
pub fn help(prog: &str, cmd: &Command) -> String {
    let mut s = format!("usage: {prog} {} [OPTIONS]{}\n\n{}\noptions:\n", cmd.name, cmd.args, wrap(cmd.summary, 80));
    for o in cmd.opts.iter().chain(COMMON) {
        s += &opt_line(o);
    }
    s
}

/// The binary's entry point: `criu` (a symlink) and `ccr criu ...` take the
/// criu-style command line, everything else `ccr`'s own.
pub fn main(args: impl Iterator<Item = OsString>) -> ExitCode {
    let args: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
    let prog = args.first().and_then(|a| std::path::Path::new(a).file_name()).map(|n| n.to_string_lossy().into_owned());
    let rest = &args[args.len().min(1)..];
    let r = if prog.as_deref() == Some("criu") {
        criu_compat::run(rest)
    } else if rest.first().map(String::as_str) == Some("criu") {
        criu_compat::run(&rest[1..])
    } else {
        ccr::run(rest)
    };
    match r {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("ccr: {msg}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const T: Command =
        cmd("t", "test", "test", &[arg("tree", Some('t'), "PID", "pid"), flag("leave-running", Some('R'), "keep")]);

    /// Owned strings of a command line, for parser tests.
    pub fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn spellings() {
        let p = parse(&T, &s(&["-t", "5", "--leave-running", "-v4", "-o", "-", "x"])).unwrap();
        assert_eq!(p.value("tree"), Some("5"));
        assert!(p.has("leave-running"));
        assert_eq!(p.value("verbosity"), Some("4"));
        assert_eq!(p.value("log-file"), Some("-"));
        assert_eq!(p.positional, vec!["x"]);
        let p = parse(&T, &s(&["--tree=7", "-t8"])).unwrap();
        assert_eq!(p.values("tree"), vec!["7", "8"]);
        assert!(parse(&T, &s(&["--nope"])).unwrap_err().contains("unknown option --nope"));
        assert!(parse(&T, &s(&["-t"])).unwrap_err().contains("needs a value"));
        assert!(parse(&T, &s(&["--leave-running=1"])).is_err());
        assert!(parse(&T, &s(&["-Rx"])).is_err());
        assert!(help("ccr", &T).contains("--leave-running"));
    }
}
