//! Pseudo-terminals whose master the tree holds (python's pty.fork, script, a
//! tmux server and its panes): the pair comes back at the same index in the
//! devpts instance the tree finds through the master's ptmx, with the slave's
//! termios and window size, packet, lock and exclusive modes, and the bytes
//! queued in both directions. A slave whose master is not in the tree is
//! refused unless the caller lets it go (`--external tty[..]`), except in a
//! devpts instance of the tree's own: there (LXC's tty1..N, whose masters the
//! monitor holds) the pty is made again with the instance and its new master is
//! handed to the caller (`crate::restore::pty_masters`).
//!
//! A pty is identified by its devpts instance and index, never by its device
//! number alone (two instances both have a /dev/pts/0). Its state is read once
//! every task is collected, from copies of the tree's own descriptions
//! (pidfd_getfd): no new slave is opened where the tree had none, so a master
//! whose slave was never opened stays so. Queued bytes are read out and written
//! straight back (the tree is frozen), so a dump that fails later, or one that
//! leaves the tree running, finds them where they were.
//!
//! Not kept: a packet-mode master's pending status notice (flush/stop), the
//! difference between a queued end-of-file and a NUL byte in a slave's line, and
//! input queued for a slave that no task of the tree holds.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::time::{Duration, Instant};

use super::{DumpCx, FdProbe, FileDesc, FileState, OpenCx};
use crate::dump::DumpError;
use crate::error::Result;
use crate::image::pb;
use crate::restore::RestoreError;
use crate::sys::{fd, pidfd, tty};

/// The device number every pty master is opened through (/dev/ptmx, pts/ptmx).
fn is_master(rdev: u64) -> bool {
    rdev == libc::makedev(5, 2)
}

/// devpts makes slaves as major 136, minor = index.
fn slave_index(rdev: u64) -> Option<u32> {
    (libc::major(rdev) == 136).then_some(libc::minor(rdev))
}

/// One description of a pty the dump met: who holds it, and a copy of it.
struct Held {
    pid: i32,
    fd: i32,
    file: u32,
    copy: OwnedFd,
}

/// A pty the dump met, by either end.
struct Found {
    index: u32,
    /// The instance (st_dev of its slaves).
    dev: u64,
    ptmx: String,
    master: Option<Held>,
    slaves: Vec<Held>,
}

/// The ptys of one dump: (instance, index) → id - 1 in `found`.
#[derive(Default)]
pub struct PtyTable {
    ids: HashMap<(u64, u32), usize>,
    found: Vec<Found>,
}

impl PtyTable {
    fn entry(&mut self, dev: u64, index: u32) -> (u32, &mut Found) {
        let next = self.found.len();
        let i = *self.ids.entry((dev, index)).or_insert(next);
        if i == next {
            self.found.push(Found { index, dev, ptmx: String::new(), master: None, slaves: Vec::new() });
        }
        (i as u32 + 1, &mut self.found[i])
    }
}

/// What the dump keeps of a pty for the controlling terminals: the session it is
/// the terminal of (unknown when only its slave is at hand), the tasks holding
/// its slave, and its slave descriptions.
pub struct PtySession {
    pub index: u32,
    pub session: Option<i32>,
    pub holders: Vec<i32>,
    pub slave_files: Vec<u32>,
}

/// A devpts instance of the tree's own: restore makes it anew, with every pty it
/// holds.
#[derive(Debug)]
pub struct OwnDevpts {
    pub dev: u64,
    pub mount_id: u32,
    /// Where the tree sees it.
    pub mount_point: String,
    /// The indexes of the ptys in it.
    pub indexes: Vec<u32>,
}

/// The instance a master opened through `target` (as /proc/PID/fd shows it)
/// belongs to: the devpts it is on, or the one at `pts` beside it.
fn master_instance(p: &FdProbe, copy: BorrowedFd<'_>) -> Result<u64> {
    // A slave opened through it would say for sure, but would hang up the master
    // of a slave never opened: the path is read instead.
    if fd::on_devpts(copy)? {
        return Ok(p.md.dev());
    }
    let dir = Path::new(&p.target).parent().unwrap_or(Path::new("/"));
    let pts = format!("/proc/{}/root{}/pts", p.pid, dir.display()).replace("//", "/");
    Ok(fd::stat_path(Path::new(&pts))?.dev())
}

file_kind! { Pty: "pty", Pty, InTask;

    fn claims(&self, p: &FdProbe) -> bool {
        p.md.file_type().is_char_device() && (is_master(p.md.rdev()) || slave_index(p.md.rdev()).is_some())
    }

    fn dump(&self, cx: &mut DumpCx<'_>, p: &FdProbe, id: u32) -> Result<FileState> {
        let copy = pidfd::getfd(p.pid, p.fd)?;
        let master = is_master(p.md.rdev());
        let (dev, index) = if master {
            let index = tty::pty_index(copy.as_fd()).map_err(|e| p.refuse(&format!("pty master whose index cannot be read ({e})")))?;
            (master_instance(p, copy.as_fd())?, index)
        } else {
            (p.md.dev(), slave_index(p.md.rdev()).expect("claimed"))
        };
        let (pty_id, found) = cx.state.ptys.entry(dev, index);
        let held = Held { pid: p.pid, fd: p.fd, file: id, copy };
        if master {
            found.ptmx = p.path("pty master")?;
            found.master = Some(held);
        } else {
            found.slaves.push(held);
        }
        let path = if master { String::new() } else { p.target.clone() };
        Ok(FileState::Pty(pb::PtyEnd { pty_id, master, path }))
    }

    fn group(&self, f: &FileDesc) -> Option<u64> {
        let FileState::Pty(end) = &f.state else { unreachable!("owned by Pty") };
        Some(end.pty_id as u64)
    }

    fn open(&self, cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
        let FileState::Pty(end) = &f.state else { unreachable!("owned by Pty") };
        let fail = |what: String| -> crate::Error {
            RestoreError::Unsupported { pid: f.owner_pid, what: format!("file {}: {what}", f.id) }.into()
        };
        let image = cx.image;
        let pty = image
            .ptys
            .iter()
            .find(|p| p.id == end.pty_id)
            .ok_or_else(|| fail(format!("pty {} is not in the checkpoint", end.pty_id)))?;
        let made: &mut Made = cx.object("pty", pty.id as u64);
        if made.master.is_none() {
            let has_slaves =
                image.files.iter().any(|d| matches!(&d.state, FileState::Pty(e) if e.pty_id == pty.id && !e.master));
            let master = if pty.mount_id != 0 {
                take_premade(pty.id).ok_or_else(|| {
                    fail(format!("pty {} was not made with the devpts instance of mount {}", pty.index, pty.mount_id))
                })?
            } else {
                open_at(Path::new(&pty.ptmx), pty.index)
                    .map_err(|e| fail(format!("pty {} through {}: {e}", pty.index, pty.ptmx)))?
            };
            setup(&master, pty, has_slaves).map_err(|e| fail(format!("pty {}: {e}", pty.index)))?;
            made.master = Some(master);
        }
        let master = made.master.as_ref().expect("made above");
        let out = if end.master {
            master.try_clone().map_err(|e| fail(format!("dup(pty master): {e}")))?
        } else {
            // The saved flags (O_NONBLOCK, ...) go with the open itself.
            let flags = (f.flags as i32 & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC)) | libc::O_NOCTTY | libc::O_CLOEXEC;
            let slave = with_unlocked(master.as_fd(), pty.locked, || open_slave(master.as_fd(), &end.path, pty.index, flags))
                .map_err(|e| fail(format!("opening the slave of pty {}: {e}", pty.index)))?;
            if pty.exclusive {
                tty::set_exclusive(slave.as_fd())?;
            }
            slave
        };
        if end.master {
            super::set_status(&out, f)?;
        }
        Ok(out)
    }
}

/// The slave of `master` (pty `index`) by `path` when that leads to it (so its
/// name is the one the task had), else through the master.
fn open_slave(master: BorrowedFd<'_>, path: &str, index: u32, flags: i32) -> crate::sys::SysResult<OwnedFd> {
    let peer = tty::open_peer(master, flags)?;
    if path.starts_with('/') {
        if let Ok(by_path) = fd::open(Path::new(path), flags, 0) {
            let (a, b) = (fd::stat(by_path.as_fd())?, fd::stat(peer.as_fd())?);
            if (a.st_rdev, a.st_dev) == (b.st_rdev, b.st_dev) && a.st_rdev == libc::makedev(136, index) {
                return Ok(by_path);
            }
        }
    }
    Ok(peer)
}

/// A pty made again, shared by the descriptions of it one task opens.
#[derive(Default)]
struct Made {
    master: Option<OwnedFd>,
}

/// Runs `f` with the slave of `master` unlocked, locking it again after when it
/// was locked.
fn with_unlocked<T>(
    master: BorrowedFd<'_>,
    locked: bool,
    f: impl FnOnce() -> crate::sys::SysResult<T>,
) -> crate::sys::SysResult<T> {
    if locked {
        tty::set_pty_locked(master, false)?;
    }
    let out = f();
    if locked {
        tty::set_pty_locked(master, true)?;
    }
    out
}

/// Opens ptys through `ptmx` until one has `index` (an instance hands out the
/// lowest free index; the ones below it are let go again). An index still held is
/// waited for a little: a pty of the dumped tree may not be released yet.
fn open_at(ptmx: &Path, index: u32) -> crate::sys::SysResult<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    open_index(|| fd::open(ptmx, flags, 0), index)
}

fn open_index(open: impl Fn() -> crate::sys::SysResult<OwnedFd>, index: u32) -> crate::sys::SysResult<OwnedFd> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut below = Vec::new();
        loop {
            let m = open()?;
            let got = tty::pty_index(m.as_fd())?;
            if got == index {
                return Ok(m);
            }
            if got > index {
                break;
            }
            below.push(m);
        }
        drop(below);
        if Instant::now() > deadline {
            return Err(crate::sys::SysError::Call {
                call: "open(ptmx): the index is in use",
                errno: crate::sys::Errno::EBUSY,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Masters made with a devpts instance of the tree's own (`premake`), by pty id.
/// Filled in the restore child that builds the mount namespace; the children it
/// forks inherit them, fds and all, and take the ones they open.
static PREMADE: std::sync::Mutex<Vec<(u32, OwnedFd)>> = std::sync::Mutex::new(Vec::new());

fn take_premade(id: u32) -> Option<OwnedFd> {
    let mut made = PREMADE.lock().unwrap_or_else(|e| e.into_inner());
    let i = made.iter().position(|(p, _)| *p == id)?;
    Some(made.swap_remove(i).1)
}

/// Right after the devpts instance of mount `mount_id` is made (`mnt`, not yet
/// attached): its ptys at their indexes, before a bind of one needs it.
pub fn premake(mnt: BorrowedFd<'_>, mount_id: u32, ptys: &[pb::Pty]) -> crate::sys::SysResult<()> {
    let mut wanted: Vec<&pb::Pty> = ptys.iter().filter(|p| p.mount_id == mount_id).collect();
    wanted.sort_by_key(|p| p.index);
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    let mut made = PREMADE.lock().unwrap_or_else(|e| e.into_inner());
    for p in wanted {
        let m = open_index(|| fd::openat(mnt, Path::new("ptmx"), flags, 0), p.index)?;
        // A new pty's slave is locked until unlockpt; one bound elsewhere is open.
        tty::set_pty_locked(m.as_fd(), false)?;
        made.push((p.id, m));
    }
    Ok(())
}

/// In the restore child that built the mount namespace: a copy of each new master
/// of a pty whose master was outside the tree, to ccr over `to` (the pty id, and
/// the fd), which hands them to the caller.
pub fn hand_out(to: BorrowedFd<'_>, ptys: &[pb::Pty]) -> crate::sys::SysResult<()> {
    let made = PREMADE.lock().unwrap_or_else(|e| e.into_inner());
    for p in ptys.iter().filter(|p| p.master_outside) {
        if let Some((_, m)) = made.iter().find(|(id, _)| *id == p.id) {
            crate::sys::fdpass::send(to, &p.id.to_le_bytes(), m.as_fd())?;
        }
    }
    Ok(())
}

/// Gives the new pty of `p` what it had: settings, queued bytes, packet mode and
/// lock; and a hung-up master stays hung up when the tree holds no slave to open.
fn setup(master: &OwnedFd, p: &pb::Pty, has_slaves: bool) -> crate::sys::SysResult<()> {
    // A new pty's slave is locked until unlockpt: locked again below if it was.
    tty::set_pty_locked(master.as_fd(), false)?;
    let Some(saved) = &p.settings else { return Ok(()) };
    let settings = super::external::settings_from_pb(saved);
    let q = Queued { input: p.input.clone(), raw: p.input_raw.clone(), output: p.output.clone() };
    let queued = !q.input.is_empty() || !q.raw.is_empty() || !q.output.is_empty();
    if queued || (p.slave_closed && !has_slaves) {
        let peer = tty::open_peer(master.as_fd(), libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC)?;
        refill(Some(master.as_fd()), peer.as_fd(), &settings, &q)?;
    } else {
        tty::set_settings(master.as_fd(), &settings)?;
    }
    if p.packet {
        tty::set_packet_mode(master.as_fd(), true)?;
    }
    if p.locked {
        tty::set_pty_locked(master.as_fd(), true)?;
    }
    Ok(())
}

/// Settings under which queued bytes move in and out of a pty unchanged: no
/// echo, signals, input or output processing or editing characters, and line
/// mode as `canonical` says. Flow control stays as it is (turning IXON off would
/// restart output the tree had stopped); its characters do nothing.
fn plain(s: &tty::Settings, canonical: bool) -> tty::Settings {
    let mut plain = *s;
    let t = &mut plain.termios;
    t.c_lflag &= !(libc::ECHO
        | libc::ECHOE
        | libc::ECHOK
        | libc::ECHONL
        | libc::ECHOCTL
        | libc::ECHOKE
        | libc::ECHOPRT
        | libc::ISIG
        | libc::IEXTEN
        | libc::FLUSHO);
    t.c_iflag &= !(libc::ICRNL | libc::INLCR | libc::IGNCR | libc::IUCLC | libc::ISTRIP | libc::IMAXBEL | libc::PARMRK);
    t.c_oflag &= !libc::OPOST;
    for c in [
        libc::VEOF,
        libc::VERASE,
        libc::VKILL,
        libc::VWERASE,
        libc::VREPRINT,
        libc::VLNEXT,
        libc::VINTR,
        libc::VQUIT,
        libc::VSUSP,
        libc::VSTART,
        libc::VSTOP,
    ] {
        t.c_cc[c] = 0;
    }
    if !canonical {
        t.c_lflag &= !libc::ICANON;
        t.c_cc[libc::VMIN] = 0;
        t.c_cc[libc::VTIME] = 0;
    }
    plain
}

/// What a pty holds: `input` in the slave's line discipline (processed once
/// already), `raw` in front of it, not taken in yet (its line discipline holds
/// 4095 bytes), and `output` for the master's readers.
#[derive(Default)]
struct Queued {
    input: Vec<u8>,
    raw: Vec<u8>,
    output: Vec<u8>,
}

/// Puts `q` back into a pty: the input fed to the slave's line discipline
/// directly under plain settings, line mode as it was, so a partial line stays
/// partial (a write to the master would be processed later, from a worker, under
/// whatever settings hold then); the output written by the slave, which the
/// master's raw line discipline only queues; then the saved settings, and the
/// raw input written to the master, to be taken in as before. Without the master
/// (held outside the tree) the raw input is typed in under the saved settings.
fn refill(
    master: Option<BorrowedFd<'_>>,
    slave: BorrowedFd<'_>,
    s: &tty::Settings,
    q: &Queued,
) -> crate::sys::SysResult<()> {
    let canonical = s.termios.c_lflag & libc::ICANON != 0;
    tty::set_settings(slave, &plain(s, canonical))?;
    let fed = tty::simulate_input(slave, &q.input).and_then(|()| fd::write_all(slave, &q.output));
    // Back as they were even when the bytes could not all be put back.
    let back = tty::set_settings(slave, s);
    fed.and(back)?;
    match master {
        Some(m) => fd::write_all(m, &q.raw),
        None => tty::simulate_input(slave, &q.raw),
    }
}

/// Reads what is queued in a pty both ways and puts it straight back. Input
/// waiting in front of the slave's line discipline is taken in first, under the
/// tree's settings (a tty's poll does it when nothing is readable), so its echo
/// is on the master before that is read; then the slave is read under plain,
/// non-canonical settings (a partial line too), what its line discipline held
/// told apart from what came in meanwhile, unprocessed.
fn take_queued(
    master: Option<BorrowedFd<'_>>,
    slave: Option<BorrowedFd<'_>>,
    s: &tty::Settings,
    packet: bool,
) -> crate::sys::SysResult<Queued> {
    if let Some(sl) = slave {
        let _ = fd::poll_readable(sl, 0);
    }
    let mut q =
        Queued { output: master.map(|m| tty::drain(m, packet)).transpose()?.unwrap_or_default(), ..Default::default() };
    let Some(slave) = slave else { return Ok(q) };
    let got = tty::set_settings(slave, &plain(s, false)).and_then(|()| {
        let held = tty::queued(slave)?;
        let mut all = tty::drain(slave, false)?;
        let raw = all.split_off(held.min(all.len()));
        Ok((all, raw))
    });
    // Back as it was even when the read failed, with the output read already:
    // the tree runs on with both.
    let back = tty::set_settings(slave, s);
    match got.and_then(|read| back.map(|()| read)) {
        Ok((input, raw)) => (q.input, q.raw) = (input, raw),
        Err(e) => {
            let _ = refill(master, slave, s, &q);
            return Err(e);
        }
    }
    if !q.input.is_empty() || !q.raw.is_empty() || !q.output.is_empty() {
        refill(master, slave, s, &q)?;
    }
    Ok(q)
}

/// Once every task is collected: each pty's state, or a refusal of a slave whose
/// master the tree does not hold (outside its own devpts instances `own`). Also
/// returns each pty's session, for the controlling terminals.
pub fn finish(table: &PtyTable, own: &[OwnDevpts]) -> Result<(Vec<pb::Pty>, Vec<PtySession>)> {
    let mut ptys = Vec::new();
    let mut sessions = Vec::new();
    for (i, f) in table.found.iter().enumerate() {
        let id = i as u32 + 1;
        let instance = own.iter().find(|o| o.dev == f.dev);
        let holders = f.slaves.iter().map(|s| s.pid).collect();
        let slave_files = f.slaves.iter().map(|s| s.file).collect();
        let Some(m) = &f.master else {
            let Some(o) = instance else {
                let s = &f.slaves[0];
                return Err(DumpError::UnsupportedFd {
                    pid: s.pid,
                    fd: s.fd,
                    kind: format!(
                        "pty slave whose master is not in the tree (let it go with --external {})",
                        super::external::tty_key(libc::makedev(136, f.index), f.dev)
                    ),
                    path: format!("/dev/pts/{}", f.index),
                }
                .into());
            };
            ptys.push(held_outside(id, f, o)?);
            sessions.push(PtySession { index: f.index, session: None, holders, slave_files });
            continue;
        };
        let refuse = |what: String| -> crate::Error {
            DumpError::UnsupportedFd { pid: m.pid, fd: m.fd, kind: format!("pty master: {what}"), path: f.ptmx.clone() }
                .into()
        };
        let mfd = m.copy.as_fd();
        let settings = tty::settings(mfd).map_err(|e| refuse(format!("its settings ({e})")))?;
        let packet = tty::packet_mode(mfd).map_err(|e| refuse(format!("its packet mode ({e})")))?;
        let locked = tty::pty_locked(mfd).map_err(|e| refuse(format!("its lock ({e})")))?;
        let slave = f.slaves.first().map(|s| s.copy.as_fd());
        let exclusive = match slave {
            Some(s) => tty::exclusive(s).map_err(|e| refuse(format!("its exclusive mode ({e})")))?,
            None => false,
        };
        let slave_closed = tty::hung_up(mfd);
        let queued = tty::queued(mfd).unwrap_or(0) > 0;
        // What its slave wrote goes back through the slave: it must take writes
        // (output stopped by ^S or tcflow does not, and would hang the dump).
        if slave.is_some_and(|s| !tty::writable(s)) {
            return Err(refuse("its output is stopped (^S or tcflow) or full, which ccr cannot save".into()));
        }
        let q = match slave {
            Some(_) => take_queued(Some(mfd), slave, &settings, packet)
                .map_err(|e| refuse(format!("its queued bytes ({e})")))?,
            // Nobody of the tree holds the slave: what it wrote could be written
            // back through none. (Not hung up: never opened, or held outside the
            // tree, which is not looked for.)
            None if queued => return Err(refuse("bytes queued by a slave the tree does not hold".into())),
            None => Queued::default(),
        };
        if let Some(session) = tty::session_of(mfd).map_err(|e| refuse(format!("its session ({e})")))? {
            sessions.push(PtySession { index: f.index, session: Some(session), holders, slave_files });
        }
        ptys.push(pb::Pty {
            id,
            index: f.index,
            ptmx: f.ptmx.clone(),
            settings: Some(super::external::settings_to_pb(&settings)),
            packet,
            locked,
            exclusive,
            input: q.input,
            input_raw: q.raw,
            output: q.output,
            slave_closed,
            master_outside: false,
            key: String::new(),
            mount_id: instance.map_or(0, |o| o.mount_id),
        });
    }
    // The ptys of the tree's own instances nobody of the tree holds: made again
    // all the same (a bind of one, as LXC's /dev/tty2, needs it), masters handed out.
    for o in own {
        for &index in o.indexes.iter().filter(|&&n| !table.ids.contains_key(&(o.dev, n))) {
            let id = ptys.len() as u32 + 1;
            let (key, mount_id) = (key_in(o, index), o.mount_id);
            ptys.push(pb::Pty { id, index, master_outside: true, key, mount_id, ..Default::default() });
        }
    }
    Ok((ptys, sessions))
}

/// How the caller names pty `index` of instance `o`: its slave's path.
fn key_in(o: &OwnDevpts, index: u32) -> String {
    format!("{}/{index}", o.mount_point.trim_end_matches('/'))
}

/// A pty of the tree's own instance `o` whose master is outside the tree: its
/// slave's settings and the bytes queued for its readers (put straight back).
/// What its slave wrote for the master's holder is that holder's to read.
fn held_outside(id: u32, f: &Found, o: &OwnDevpts) -> Result<pb::Pty> {
    let s = &f.slaves[0];
    let refuse = |what: String| -> crate::Error {
        DumpError::UnsupportedFd {
            pid: s.pid,
            fd: s.fd,
            kind: format!("pty slave whose master is outside the tree: {what}"),
            path: key_in(o, f.index),
        }
        .into()
    };
    let sfd = s.copy.as_fd();
    let settings = tty::settings(sfd).map_err(|e| refuse(format!("its settings ({e})")))?;
    let exclusive = tty::exclusive(sfd).map_err(|e| refuse(format!("its exclusive mode ({e})")))?;
    let q = take_queued(None, Some(sfd), &settings, false).map_err(|e| refuse(format!("its queued bytes ({e})")))?;
    Ok(pb::Pty {
        id,
        index: f.index,
        settings: Some(super::external::settings_to_pb(&settings)),
        exclusive,
        input: q.input,
        input_raw: q.raw,
        master_outside: true,
        key: key_in(o, f.index),
        mount_id: o.mount_id,
        ..Default::default()
    })
}
