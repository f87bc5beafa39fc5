//! Stage Fork: the tree, forked top-down. Each task is created by its own parent
//! (clone3 + set_tid), so PIDs, parents and sessions come out right. The restore
//! child for a task is a copy of ccr that, in this order:
//! 0. (the root, made in a user namespace of the tree's own) waits until ccr wrote
//!    its maps and makes the namespaces only it can make there (`userns`);
//! 1. starts a session if the task led one, or its process group;
//! 2. opens the files it is the opener of (`files::Stage::InTask`: by path, in its
//!    own namespaces, before it changes root: paths are saved as ccr sees them),
//!    at high fd numbers its children inherit;
//! 3. forks its own children (zombies exit at once with their saved status);
//! 4. opens its page data, puts its fds in place from the ones it inherited or
//!    opened, lets the kinds that name other fds finish (epoll registrations);
//! 5. closes everything else, sets root, cwd and umask, maps the trampoline,
//!    resets signal actions, reports on the shared status pipe and blocks in read()
//!    until ccr seizes it.
//!
//! Reports are fixed-size records (atomic on a pipe): "OK", pid, trampoline address,
//! fd of the task's page file; or "ER", pid, error text.

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};

use super::images::Checkpoint;
use super::join::joins;
use super::shared::{lift, Shared};
use super::userns;
use super::RestoreError;
use crate::error::Result;
use crate::files::{self, FilesImage, OpenCx, Stage};
use crate::image::{ImageDir, ImageKind};
use crate::sys::process::{self, CloneSpec};
use crate::sys::{fd, proc, signal, trampoline};

/// One report; at most PIPE_BUF, so each is written whole.
const RECORD: usize = 2048;

/// What ccr needs to know of one forked task.
pub struct Spawned {
    pub trampoline: u64,
    /// The task's fd of its page data.
    pub pages_fd: i32,
    /// fds of ccr's plumbing in the task, closed before it runs.
    pub plumbing: Vec<i32>,
}

pub struct Tree {
    pub spawned: HashMap<i32, Spawned>,
    /// Image pid → pid as ccr sees it (the same unless the tree has its own PID
    /// namespace).
    pub outer: HashMap<i32, i32>,
    /// The root as ccr sees it.
    pub root: i32,
    /// The new masters of ptys whose masters were outside the tree, by key, for
    /// the caller.
    pub pty_masters: Vec<(String, OwnedFd)>,
    /// Held open until every task is seized: their read() blocks on this pipe.
    _go: OwnedFd,
}

impl Tree {
    /// The pid ccr sees for image pid `pid` (never a guess: in a PID namespace an
    /// image pid may be an unrelated process out here).
    pub fn outer_of(&self, pid: i32) -> Result<i32> {
        self.outer
            .get(&pid)
            .copied()
            .ok_or_else(|| RestoreError::Child { pid, detail: "not found among the restored tasks".into() }.into())
    }
}

struct Node {
    pid: i32,
    pgid: i32,
    session_leader: bool,
    /// A session leader's controlling terminal (a file id, 0: none) and its
    /// foreground group.
    ctty: (u32, i32),
    zombie: Option<i32>,
    /// (target fd, file id, close-on-exec)
    fds: Vec<(RawFd, u32, bool)>,
    /// Files opened by path that this task opens for itself and its descendants.
    opens: Vec<u32>,
    /// (target fd, file id) of the descriptions this task owns (epoll sets).
    owns: Vec<(RawFd, u32)>,
    /// Inherited fds the task itself needs until ccr closes them (memfds it maps).
    keep: Vec<RawFd>,
    cwd: String,
    root: String,
    umask: u32,
    candidates: Vec<u64>,
    children: Vec<usize>,
    /// Children in a session whose leader is gone: (that session's id, children).
    /// A helper at the leader's pid starts the session and forks them.
    orphaned_sessions: Vec<(i32, Vec<usize>)>,
}

/// What every restore child reads (its copy of ccr's memory).
struct Plan<'a> {
    nodes: Vec<Node>,
    dir: &'a ImageDir,
    files: &'a FilesImage,
    shared: &'a Shared,
    base: RawFd,
    /// The names of the root's own UTS namespace (made with it by clone3).
    uts: Option<&'a crate::image::pb::UtsNamespace>,
    /// The tree's mount namespace, which the root's child builds, and where its
    /// root is bound from when the caller names it (`--root`).
    mnt: Option<&'a crate::image::pb::MountNamespace>,
    asked: Asked<'a>,
    /// The cgroups the root joins to unshare the tree's cgroup namespace there.
    cgroup_ns: Option<&'a [std::path::PathBuf]>,
    /// The tree's network namespace, which the root's child sets up.
    net: Option<&'a crate::image::pb::NetNamespace>,
    /// The tree's own user namespace, which the root is made in (ccr writes its maps).
    user_ns: Option<&'a crate::image::pb::UserNamespace>,
    /// How the images' ids become those of the tree's user namespace.
    ids: crate::userns::Ids,
    /// In the tree's own user namespace, its own IPC namespace (with the SysV
    /// segments of `sysv`) and time namespace, which the root's child makes there.
    ipc: Option<&'a crate::image::pb::IpcNamespace>,
    sysv: &'a [crate::image::pb::SysvShm],
    time: Option<&'a crate::image::pb::TimeNamespace>,
    /// In the tree's own PID namespace, the first of the pids no task has, one
    /// per task, that a task's helpers take (one taking the next free pid could
    /// take one a sibling is being forked with).
    helper_pids: Option<i32>,
}

/// What the caller asked of the root's namespaces.
#[derive(Clone, Copy)]
pub struct Asked<'a> {
    /// Where the root mount is bound from (`--root`).
    pub root_at: Option<&'a std::path::Path>,
    /// Namespaces to join (`--join-ns`), entered first.
    pub join: &'a [super::join::Joined],
    /// Where each external mount is bound from (key → resolved path).
    pub ext_mounts: &'a HashMap<String, std::path::PathBuf>,
    /// The pairs made for the tree's veths, whose inside ends the root's child
    /// moves into its namespace.
    pub veths: Option<&'a crate::netns::veth::Pairs>,
}

/// The deepest task that is an ancestor of (or is) every holder: it opens a file
/// opened by path, and everything below it inherits the description.
fn opener(holders: &[usize], parent: &[Option<usize>]) -> usize {
    let chain = |mut i: usize| {
        let mut c = vec![i];
        while let Some(p) = parent[i] {
            c.push(p);
            i = p;
        }
        c.reverse();
        c
    };
    let mut common = chain(holders[0]);
    for &h in &holders[1..] {
        let c = chain(h);
        let n = common.iter().zip(&c).take_while(|(a, b)| a == b).count();
        common.truncate(n);
    }
    *common.last().expect("the root is everyone's ancestor")
}

/// Plans the tree from the inventory; refuses what cannot be rebuilt.
fn plan<'a>(
    dir: &'a ImageDir,
    ckpt: &'a Checkpoint,
    shared: &'a Shared,
    asked: Asked<'a>,
    cgroup_ns: Option<&'a [std::path::PathBuf]>,
) -> Result<Plan<'a>> {
    let entries = &ckpt.inventory.tasks;
    let index: HashMap<i32, usize> = entries.iter().enumerate().map(|(i, e)| (e.pid, i)).collect();
    let mut parent = vec![None; entries.len()];
    let mut nodes = Vec::new();
    // A shell job's group (0) is the group of the ccr that restores it.
    let caller_pgid = nix::unistd::getpgrp().as_raw();
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            let refuse = |what: String| -> crate::Error { RestoreError::Unsupported { pid: e.pid, what }.into() };
            let Some(&p) = index.get(&e.ppid) else {
                return Err(refuse(format!("its parent {} is not in the checkpoint", e.ppid)));
            };
            if e.sid == 0 && entries[p].sid != 0 && !e.zombie {
                return Err(refuse(format!(
                    "it is in the session of the caller (a shell's job) but its parent {} is not",
                    e.ppid
                )));
            }
            let live_leader = entries.iter().any(|x| x.pid == e.sid && !x.zombie);
            if e.sid != e.pid && e.sid != entries[p].sid && !e.zombie && live_leader {
                return Err(refuse(format!("its session {} is led by a task that is not its ancestor", e.sid)));
            }
            parent[i] = Some(p);
        }
        let mut node = Node {
            pid: e.pid,
            pgid: if e.pgid == 0 { caller_pgid } else { e.pgid },
            session_leader: e.sid == e.pid && !e.zombie,
            ctty: (e.ctty_file, e.tty_pgrp),
            zombie: e.zombie.then_some(e.exit_status),
            fds: Vec::new(),
            opens: Vec::new(),
            owns: Vec::new(),
            keep: Vec::new(),
            cwd: String::new(),
            root: String::new(),
            umask: 0o022,
            candidates: Vec::new(),
            children: Vec::new(),
            orphaned_sessions: Vec::new(),
        };
        if let Some(img) = ckpt.tasks.get(&e.pid) {
            for f in &img.fds {
                node.fds.push((f.fd, f.file_id, f.cloexec));
                if ckpt.files.file(f.file_id).is_some_and(|d| d.owner_pid == e.pid) {
                    node.owns.push((f.fd, f.file_id));
                }
            }
            node.keep = img
                .mm
                .vmas
                .iter()
                .filter_map(|v| match v.kind {
                    crate::mm::VmaKind::Shmem { id } => shared.map_fd(id),
                    _ => None,
                })
                .collect();
            node.keep.sort_unstable();
            node.keep.dedup();
            node.cwd = img.core.cwd.clone();
            node.root = img.core.root.clone();
            node.umask = img.core.umask;
            // In address order (checked when the image was read).
            let vmas: Vec<(u64, u64)> = img.mm.vmas.iter().map(|v| (v.start, v.end)).collect();
            node.candidates = trampoline::candidates(&vmas, 16);
        }
        nodes.push(node);
    }
    // Each file opened by path is opened once, by the deepest common ancestor of
    // the tasks holding it.
    // A session leader takes its terminal back from a description it must have
    // inherited, so it counts as a holder. The descriptions of one group (a pty's
    // ends) are opened together, by the task above all their holders.
    let mut holders: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        let ctty = (n.ctty.0 != 0).then_some(n.ctty.0);
        for id in n.fds.iter().map(|f| f.1).chain(ctty) {
            let h = holders.entry(id).or_default();
            if h.last() != Some(&i) {
                h.push(i);
            }
        }
    }
    let in_task = |f: &&files::FileDesc| files::kind_of(&f.state).stage_of(f) == Stage::InTask;
    let mut groups: HashMap<(&str, u64), Vec<usize>> = HashMap::new();
    for f in ckpt.files.files.iter().filter(in_task) {
        let kind = files::kind_of(&f.state);
        if let (Some(g), Some(h)) = (kind.group(f), holders.get(&f.id)) {
            groups.entry((kind.name(), g)).or_default().extend(h);
        }
    }
    for f in ckpt.files.files.iter().filter(in_task) {
        let kind = files::kind_of(&f.state);
        let group = kind.group(f).and_then(|g| groups.get(&(kind.name(), g)));
        if let Some(h) = holders.get(&f.id).and(group.or(holders.get(&f.id))) {
            let o = opener(h, &parent);
            nodes[o].opens.push(f.id);
        }
    }
    for (i, e) in entries.iter().enumerate().skip(1) {
        let p = parent[i].expect("checked above");
        let orphaned = !e.zombie && e.sid != e.pid && e.sid != entries[p].sid && e.sid != 0;
        if orphaned {
            match nodes[p].orphaned_sessions.iter_mut().find(|(sid, _)| *sid == e.sid) {
                Some((_, kids)) => kids.push(i),
                None => nodes[p].orphaned_sessions.push((e.sid, vec![i])),
            }
        } else {
            nodes[p].children.push(i);
        }
    }
    // Children that lead a process group first, so siblings can join their groups.
    for node in nodes.iter_mut() {
        node.children.sort_by_key(|&k| entries[k].pgid != entries[k].pid);
    }
    Ok(Plan {
        nodes,
        dir,
        files: &ckpt.files,
        shared,
        base: shared.base,
        // A joined namespace is the caller's: what the images hold of one is not made.
        uts: ckpt.inventory.uts.as_ref().filter(|_| !joins(asked.join, "uts")),
        mnt: ckpt.inventory.mnt.as_ref().filter(|_| !joins(asked.join, "mnt")),
        net: ckpt.inventory.net.as_ref().filter(|_| !joins(asked.join, "net")),
        asked,
        cgroup_ns: cgroup_ns.filter(|_| !joins(asked.join, "cgroup")),
        user_ns: ckpt.inventory.user_ns.as_ref(),
        ids: crate::userns::Ids::of(ckpt.inventory.user_ns.as_ref()),
        ipc: ckpt.inventory.ipc.as_ref().filter(|_| ckpt.inventory.user_ns.is_some()),
        sysv: &ckpt.files.sysv,
        time: ckpt.inventory.time.as_ref().filter(|_| ckpt.inventory.user_ns.is_some()),
        helper_pids: ckpt.inventory.pid_ns.then(|| {
            let tids = ckpt.tasks.values().flat_map(|t| t.core.threads.iter().map(|th| th.tid));
            entries.iter().map(|e| e.pid).chain(tids).max().unwrap_or(1) + 1
        }),
    })
}

/// Forks the whole tree; returns once every live task has reported.
pub fn spawn(
    dir: &ImageDir,
    ckpt: &Checkpoint,
    shared: &Shared,
    child_of_caller: bool,
    asked: Asked<'_>,
    cgroup_ns: Option<&[std::path::PathBuf]>,
) -> Result<Tree> {
    let plan = plan(dir, ckpt, shared, asked, cgroup_ns)?;
    let pid_ns = ckpt.inventory.pid_ns;
    let (st_rd, st_wr) = crate::sys::pipe::pipe()?;
    let (go_rd, go_wr) = crate::sys::pipe::pipe()?;
    let (st_w, go_r) = (lift(st_wr, plan.base)?, lift(go_rd, plan.base)?);
    // The new masters of ptys whose masters were outside the tree come back here.
    let (masters_rd, masters_wr) = crate::sys::unix_sock::socketpair(libc::SOCK_SEQPACKET)?;
    let masters_w = lift(masters_wr, plan.base)?;
    let live = plan.nodes.iter().filter(|n| n.zombie.is_none()).count();
    let root_pid = plan.nodes[0].pid;
    let spec = CloneSpec {
        pid: (!pid_ns).then_some(root_pid),
        as_sibling: child_of_caller,
        new_pidns: pid_ns,
        new_utsns: plan.uts.is_some(),
        new_mntns: plan.mnt.is_some(),
        new_netns: plan.net.is_some(),
        new_userns: plan.user_ns.is_some(),
        new_ipcns: plan.ipc.is_some(),
    };
    let mut transit: HashMap<u32, RawFd> = shared.files.iter().map(|(id, f)| (*id, f.as_raw_fd())).collect();
    let handoff = match plan.user_ns {
        Some(u) => Some(userns::Handoff::new(u, plan.mnt, plan.asked.root_at, plan.base)?),
        None => None,
    };
    let no_clones = HashMap::new();
    let child = Child {
        plan: &plan,
        st: st_w.as_fd(),
        go: go_r.as_fd(),
        masters: masters_w.as_fd(),
        maps: handoff.as_ref().map(|h| h.maps_pipe()),
        premade: handoff.as_ref().map_or(&no_clones, |h| &h.premade),
    };
    // In a namespace that denies setgroups, the tree keeps the groups the root is
    // made with: ccr's own, for the moment of the fork.
    let saved_groups = ckpt.tasks.get(&root_pid).map(|img| img.core.creds.groups.as_slice());
    let ccr_groups = match (plan.user_ns, saved_groups) {
        (Some(u), Some(g)) => userns::groups_for_fork(u, g)?,
        _ => None,
    };
    let spawned = process::spawn(spec, || child_main(child, 0, &mut transit));
    if let Some(g) = ccr_groups {
        process::set_groups(&g)?;
    }
    let plumbing = [st_w.as_raw_fd(), go_r.as_raw_fd()];
    drop((st_w, go_r, masters_w));
    let got = spawned?;
    let kill_all = || {
        // Killing the init of a new PID namespace takes the whole namespace along.
        let _ = process::kill(got, libc::SIGKILL);
        if !pid_ns {
            for n in &plan.nodes {
                let _ = process::kill(n.pid, libc::SIGKILL);
            }
        }
        // Our own child is ours to reap (else it stays a zombie of whoever adopts it).
        if !child_of_caller {
            let _ = crate::sys::wait::reap(got);
        }
    };
    if !pid_ns && got != root_pid {
        kill_all();
        return Err(RestoreError::Child { pid: root_pid, detail: format!("clone3 gave pid {got}") }.into());
    }
    if let Some(h) = handoff {
        if let Err(e) = h.write_maps(got) {
            kill_all();
            return Err(e);
        }
    }
    let mut st = std::fs::File::from(st_rd);
    let mut out = HashMap::new();
    // The root's child writes the tree's tmpfs files before it reports: a second
    // more for every 100 MiB of them.
    let tmpfs_bytes: u64 = plan.mnt.iter().flat_map(|ns| &ns.mounts).map(saved_bytes).sum();
    let mut wait_ms = 30_000 + (tmpfs_bytes / (100 << 20) * 1000).min(i32::MAX as u64 / 2) as i32;
    while out.len() < live {
        let mut rec = [0u8; RECORD];
        if !fd::poll_readable(st.as_fd(), wait_ms) {
            kill_all();
            let detail = format!("{} of {live} tasks reported within {} s", out.len(), wait_ms / 1000);
            return Err(RestoreError::Child { pid: root_pid, detail }.into());
        }
        if let Err(e) = st.read_exact(&mut rec) {
            kill_all();
            let detail = format!("a task died before reporting ({e})");
            return Err(RestoreError::Child { pid: root_pid, detail }.into());
        }
        wait_ms = 30_000;
        let pid = i32::from_le_bytes(rec[2..6].try_into().expect("4 bytes"));
        if &rec[..2] != b"OK" {
            kill_all();
            let text = String::from_utf8_lossy(&rec[6..]).trim_end_matches('\0').to_string();
            return Err(RestoreError::Child { pid, detail: text }.into());
        }
        let tramp = u64::from_le_bytes(rec[6..14].try_into().expect("8 bytes"));
        let pages_fd = i32::from_le_bytes(rec[14..18].try_into().expect("4 bytes"));
        let node = plan.nodes.iter().find(|n| n.pid == pid);
        let mut plumbing = vec![pages_fd, plumbing[0], plumbing[1]];
        plumbing.extend(node.map(|n| n.keep.clone()).unwrap_or_default());
        out.insert(pid, Spawned { trampoline: tramp, pages_fd, plumbing });
    }
    let outer = if pid_ns { outer_pids(got)? } else { plan.nodes.iter().map(|n| (n.pid, n.pid)).collect() };
    let pty_masters = match take_pty_masters(masters_rd.as_fd(), &ckpt.files.ptys) {
        Ok(m) => m,
        Err(e) => {
            kill_all();
            return Err(e);
        }
    };
    Ok(Tree { spawned: out, outer, root: got, pty_masters, _go: go_wr })
}

/// The bytes of files a mount's saved filesystem holds (a tmpfs's).
fn saved_bytes(m: &crate::image::pb::MountEntry) -> u64 {
    match &m.how {
        Some(crate::image::pb::mount_entry::How::NewFs(fs)) => fs.files.iter().map(|f| f.size).sum(),
        _ => 0,
    }
}

/// The masters the root's child sent (each named by its pty id), by key.
fn take_pty_masters(from: BorrowedFd<'_>, ptys: &[crate::image::pb::Pty]) -> Result<Vec<(String, OwnedFd)>> {
    fd::set_status_flags(from, libc::O_NONBLOCK)?;
    let mut out = Vec::new();
    while let Some((id, master)) = crate::sys::fdpass::recv(from)? {
        let id = id.try_into().map(u32::from_le_bytes).unwrap_or(0);
        let p = ptys.iter().find(|p| p.id == id && p.master_outside).ok_or_else(|| RestoreError::Child {
            pid: 0,
            detail: format!("a pty master for pty {id}, which has none to hand out"),
        })?;
        out.push((p.key.clone(), master));
    }
    let want = ptys.iter().filter(|p| p.master_outside).count();
    if out.len() != want {
        let detail = format!("{} of {want} new pty masters came back from the tree", out.len());
        return Err(RestoreError::Child { pid: 0, detail }.into());
    }
    Ok(out)
}

/// Image (namespace) pid → our pid for every task under `root` (our pid).
fn outer_pids(root: i32) -> Result<HashMap<i32, i32>> {
    let mut map = HashMap::new();
    for p in proc::children::descendants(root) {
        map.insert(proc::status::read(p)?.ns_last("NSpid"), p);
    }
    Ok(map)
}

fn report(st: BorrowedFd<'_>, tag: &[u8; 2], pid: i32, body: &[u8]) {
    let mut rec = [0u8; RECORD];
    rec[..2].copy_from_slice(tag);
    rec[2..6].copy_from_slice(&pid.to_le_bytes());
    let n = body.len().min(RECORD - 6);
    rec[6..6 + n].copy_from_slice(&body[..n]);
    let _ = fd::write_all(st, &rec);
}

/// What every restore child works with: the plan, and the status pipe it reports
/// on and the pipe it then waits on until ccr seizes it (both inherited).
#[derive(Clone, Copy)]
struct Child<'a> {
    plan: &'a Plan<'a>,
    st: BorrowedFd<'a>,
    go: BorrowedFd<'a>,
    /// Where the root's child sends the new masters of ptys held outside.
    masters: BorrowedFd<'a>,
    /// The pipe (read, write end) the root waits on for its user namespace's maps.
    maps: Option<(RawFd, RawFd)>,
    /// ccr's clones of host paths the root's mount tree binds.
    premade: &'a HashMap<u32, RawFd>,
}

/// Runs in the restore child of `plan.nodes[i]`. Returns only to exit (the code).
fn child_main(c: Child<'_>, i: usize, transit: &mut HashMap<u32, RawFd>) -> i32 {
    let (st, go) = (c.st, c.go);
    let n = &c.plan.nodes[i];
    if let Some(status) = n.zombie {
        process::exit_like(status);
    }
    match setup(c, i, transit) {
        Ok((tramp, pages)) => {
            let mut body = tramp.to_le_bytes().to_vec();
            body.extend_from_slice(&pages.to_le_bytes());
            report(st, b"OK", n.pid, &body);
            // ccr seizes us inside this read; if it returns, ccr is gone.
            fd::wait_readable(go);
            1
        }
        Err(e) => {
            report(st, b"ER", n.pid, e.to_string().as_bytes());
            1
        }
    }
}

/// Forks task `k` of the plan from the current restore child, with its pid.
fn fork_child(c: Child<'_>, k: usize, transit: &mut HashMap<u32, RawFd>) -> Result<i32> {
    let pid = c.plan.nodes[k].pid;
    Ok(process::spawn_with_pid(Some(pid), || child_main(c, k, transit))?)
}

/// The description session leader `n` takes its controlling terminal back from
/// (a pty of the tree, or the tty the caller handed over), which it inherited or
/// opened.
fn ctty_of(n: &Node, transit: &HashMap<u32, RawFd>) -> Result<std::os::fd::BorrowedFd<'static>> {
    let file = n.ctty.0;
    let src = *transit.get(&file).ok_or_else(|| RestoreError::Child {
        pid: n.pid,
        detail: format!("its controlling terminal, file {file}, was not opened"),
    })?;
    Ok(fd::installed(src))
}

/// The session leader `n` takes its controlling terminal back.
fn take_ctty(n: &Node, transit: &HashMap<u32, RawFd>) -> Result<()> {
    Ok(crate::sys::tty::make_controlling(ctty_of(n, transit)?)?)
}

/// The session leader `n` gives its terminal's foreground to its group once that
/// group exists (its children make it as they start).
fn give_back_foreground(n: &Node, transit: &HashMap<u32, RawFd>) -> Result<()> {
    let pgrp = n.ctty.1;
    let tty = ctty_of(n, transit)?;
    if pgrp > 0 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while let Err(e) = crate::sys::tty::set_foreground(tty, pgrp) {
            if std::time::Instant::now() > deadline {
                return Err(RestoreError::Child {
                    pid: n.pid,
                    detail: format!("foreground group {pgrp} of its terminal: {e}"),
                }
                .into());
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    Ok(())
}

fn setup(c: Child<'_>, i: usize, transit: &mut HashMap<u32, RawFd>) -> Result<(u64, RawFd)> {
    let (plan, st, go) = (c.plan, c.st, c.go);
    let n = &plan.nodes[i];
    // Nothing that needs privilege before the maps are written: until then the
    // child's ids mean nothing in its user namespace.
    if let Some(m) = c.maps.filter(|_| i == 0) {
        userns::wait_for_maps(n.pid, m)?;
        if let Some(u) = plan.user_ns {
            let made =
                userns::Inside { ids: &plan.ids, time: plan.time, ipc: plan.ipc, sysv: plan.sysv, dir: plan.dir };
            userns::time_and_ipc(u, &made, n.pid)?;
        }
    }
    if i == 0 {
        super::join::enter(plan.asked.join)?;
    }
    // First: the new namespace is rooted where the root is when it unshares, and
    // a cgroup filesystem mounted for the tree below must see that root.
    if let Some(dirs) = plan.cgroup_ns.filter(|_| i == 0) {
        unshare_cgroup_ns_in(dirs)?;
    }
    if let Some(u) = plan.uts.filter(|_| i == 0) {
        process::set_uts_names(&u.hostname, &u.domainname)?;
    }
    // Before the mounts: a sysfs made for the tree shows the namespace it is made in.
    if let Some(ns) = plan.net.filter(|_| i == 0) {
        crate::netns::restore(ns, plan.asked.veths)?;
    }
    // The user namespace's own limits once the tree's namespaces are made (a
    // limit below what the tree has would refuse making them again: the time,
    // IPC and cgroup ones are made above, the mounts make none), and before its
    // mounts: the tree's /proc/sys may be read-only (LXC's proc:mixed).
    if let Some(u) = plan.user_ns.filter(|_| i == 0) {
        crate::userns::restore_sysctls(u)?;
    }
    // Before any file is opened: paths are the tree's, inside its mounts.
    if let Some(ns) = plan.mnt.filter(|_| i == 0) {
        use crate::mounts::restore::{build, open_data, Sources};
        let data = open_data(ns, plan.dir)?;
        let src = Sources {
            dir: plan.dir,
            root_at: plan.asked.root_at,
            inherited: &plan.shared.inherited,
            data,
            premade: c.premade,
            ids: &plan.ids,
            fill_as: plan.user_ns.map(crate::userns::maker_ids),
            ext: plan.asked.ext_mounts,
            ptys: &plan.files.ptys,
        };
        build(ns, src)?;
        crate::files::pty::hand_out(c.masters, &plan.files.ptys)?;
    }
    if n.session_leader {
        process::setsid()?;
    } else if n.pgid == n.pid {
        process::setpgid(0, 0)?;
    }
    signal::default_sigchld();
    // Files opened by path, before the children that inherit them. Their fds stay
    // open in this process on purpose (its children inherit them); the clean-up
    // below closes what this task does not use.
    // /dev/tty opens the session's controlling terminal: it is taken back first
    // (before the children, which open theirs in the session), then opened.
    if !n.opens.is_empty() || n.ctty.0 != 0 {
        let sh = plan.shared;
        let mut cx = OpenCx::new(plan.dir, plan.files, &sh.shmem_fds, &sh.inherited);
        cx.userns = plan.user_ns.map(|u| crate::files::InUserNs {
            ids: &plan.ids,
            maker: crate::userns::maker_ids(u),
            helper_pid: plan.helper_pids.map(|first| first + i as i32),
        });
        let (late, now): (Vec<u32>, Vec<u32>) = n
            .opens
            .iter()
            .partition(|&&id| plan.files.file(id).is_some_and(|f| files::kind_of(&f.state).after_ctty(f)));
        let mut open_all = |ids: Vec<u32>, transit: &mut HashMap<u32, RawFd>| -> Result<()> {
            for id in ids {
                let f = plan.files.file(id).expect("planned from the image");
                let opened = files::open(&mut cx, f)?;
                transit.insert(id, lift(opened, plan.base)?.into_raw_fd());
            }
            Ok(())
        };
        open_all(now, transit)?;
        if n.ctty.0 != 0 {
            take_ctty(n, transit)?;
        }
        open_all(late, transit)?;
    }
    for &k in &n.children {
        let kid = &plan.nodes[k];
        let pid = fork_child(c, k, transit)?;
        // Process groups are set by the parent at once, so a later sibling can join
        // a group led by an earlier one; what this misses is fixed up remotely.
        if kid.zombie.is_none() && !kid.session_leader && kid.pgid != n.pgid {
            let _ = process::setpgid(pid, kid.pgid);
        }
    }
    // Children whose session leader is gone: a helper takes the leader's pid, starts
    // the session, forks them and exits; as a subreaper we adopt them and reap it.
    if !n.orphaned_sessions.is_empty() {
        process::set_child_subreaper()?;
    }
    for (sid, kids) in &n.orphaned_sessions {
        let helper = || -> i32 {
            if process::setsid().is_err() {
                return 1;
            }
            for &k in kids {
                if fork_child(c, k, transit).is_err() {
                    return 1;
                }
            }
            0
        };
        let h = process::spawn_with_pid(Some(*sid), helper)?;
        crate::sys::wait::reap(h)?;
    }
    let (pages, _) = plan.dir.open_raw(ImageKind::Pages, n.pid as u64)?;
    let pages = lift(OwnedFd::from(pages), plan.base)?.into_raw_fd();
    for &(target, id, cloexec) in &n.fds {
        let src = *transit.get(&id).ok_or_else(|| RestoreError::Child {
            pid: n.pid,
            detail: format!("file {id} was not opened for fd {target}"),
        })?;
        fd::dup_to(fd::installed(src), target, cloexec)?;
    }
    // Kinds that name other fds of the task finish now that all are in place.
    for &(target, id) in &n.owns {
        let f = plan.files.file(id).expect("planned from the image");
        files::kind_of(&f.state).installed(f, target)?;
    }
    if n.ctty.0 != 0 {
        give_back_foreground(n, transit)?;
    }
    let mut keep: Vec<RawFd> = n.fds.iter().map(|f| f.0).collect();
    keep.extend([st.as_raw_fd(), go.as_raw_fd(), pages]);
    keep.extend(&n.keep);
    fd::close_all_but(keep);
    if !n.root.is_empty() && n.root != "/" {
        process::chroot(&n.root)?;
    }
    process::chdir(&n.cwd)?;
    process::umask(n.umask);
    let tramp = trampoline::map_in_self(&n.candidates)?;
    signal::reset_all_actions();
    Ok((tramp, pages))
}

/// This process into each of `dirs`, then into a new cgroup namespace rooted
/// there (its children are forked into it). ccr moves it to its own cgroups later.
fn unshare_cgroup_ns_in(dirs: &[std::path::PathBuf]) -> Result<()> {
    for d in dirs {
        // 0: the writer itself, whatever pid it has where the cgroup is mounted.
        crate::sys::cgroupfs::attach(d, 0)
            .map_err(|source| RestoreError::JoinCgroup { dir: d.clone(), source: Box::new(source) })?;
    }
    Ok(process::unshare_cgroup()?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn opener_is_the_deepest_common_ancestor() {
        // 0 ─ 1 ─ 3
        //   │   └ 4
        //   └ 2
        let parent = [None, Some(0), Some(0), Some(1), Some(1)];
        assert_eq!(super::opener(&[3], &parent), 3);
        assert_eq!(super::opener(&[3, 4], &parent), 1);
        assert_eq!(super::opener(&[1, 4], &parent), 1);
        assert_eq!(super::opener(&[4, 2], &parent), 0);
    }
}
