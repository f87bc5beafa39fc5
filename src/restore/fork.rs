//! Forking the tree. Each task is created by its own parent (clone3 + set_tid), so
//! PIDs, parents and sessions come out right: the restore child for a task is a copy
//! of ccr that starts a session if the task led one, forks its own children (zombies
//! exit at once with their saved status), puts its fds in place from the ones ccr
//! prepared and everybody inherited, sets cwd and umask, maps the trampoline,
//! reports on the shared status pipe and blocks in read() until ccr seizes it.
//!
//! Reports are fixed-size records (atomic on a pipe): "OK", pid, trampoline address,
//! fd of the task's page file; or "ER", pid, error text.

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::error::Result;
use crate::image::pb;
use crate::restore::shared::Inherited;
use crate::restore::{RestoreError, TaskImages};
use crate::sys::{anonfd, files, process, trampoline, SysError, SysResult};

const RECORD: usize = 256;

pub struct Spawned {
    /// shmem id → the memfd the task inherited, to map it.
    pub shmem_fds: HashMap<u64, i32>,
    pub trampoline: u64,
    /// The task's fd of pages-PID.img.
    pub pages_fd: i32,
    /// fds of ccr's plumbing in the task, closed before it runs.
    pub plumbing: Vec<i32>,
}

pub struct Tree {
    pub spawned: HashMap<i32, Spawned>,
    /// Image pid → pid as ccr sees it (the same unless the tree has its own PID
    /// namespace).
    pub outer: HashMap<i32, i32>,
    /// Held open until every task is seized: their read() blocks on this pipe.
    _go: OwnedFd,
}

struct Node {
    pid: i32,
    pgid: i32,
    session_leader: bool,
    zombie: Option<i32>,
    /// (target fd, inherited fd, close-on-exec)
    fds: Vec<(RawFd, RawFd, bool)>,
    /// Inherited fds the task itself needs until ccr closes them (memfds it maps).
    keep: Vec<RawFd>,
    /// epoll registrations this task makes: (its epoll fd, target fd, events, data).
    epoll: Vec<(RawFd, RawFd, u32, u64)>,
    cwd: String,
    root: String,
    umask: u32,
    candidates: Vec<u64>,
    pages: String,
    base: RawFd,
    children: Vec<usize>,
    /// Children in a session whose leader is gone: (that session's id, children).
    /// A helper at the leader's pid starts the session and forks them.
    orphaned_sessions: Vec<(i32, Vec<usize>)>,
}

/// Plans the tree from the inventory; refuses what cannot be rebuilt.
fn plan(
    entries: &[pb::TaskEntry],
    images: &HashMap<i32, TaskImages>,
    table: &pb::Files,
    inh: &Inherited,
    base: RawFd,
) -> Result<Vec<Node>> {
    let mut nodes = Vec::new();
    let index: HashMap<i32, usize> = entries.iter().enumerate().map(|(i, e)| (e.pid, i)).collect();
    for (i, e) in entries.iter().enumerate() {
        let parent = if i == 0 { None } else { index.get(&e.ppid).map(|&p| &entries[p]) };
        if i > 0 && parent.is_none() {
            return Err(RestoreError::Unsupported {
                pid: e.pid,
                what: format!("its parent {} is not in the checkpoint", e.ppid),
            }
            .into());
        }
        if let Some(p) = parent {
            let live_leader = entries.iter().any(|x| x.pid == e.sid && !x.zombie);
            if e.sid != e.pid && e.sid != p.sid && !e.zombie && live_leader {
                return Err(RestoreError::Unsupported {
                    pid: e.pid,
                    what: format!("its session {} is led by a task that is not its ancestor", e.sid),
                }
                .into());
            }
        }
        let mut node = Node {
            pid: e.pid,
            pgid: e.pgid,
            session_leader: e.sid == e.pid && !e.zombie,
            zombie: e.zombie.then_some(e.exit_status),
            fds: Vec::new(),
            keep: Vec::new(),
            epoll: Vec::new(),
            cwd: String::new(),
            root: String::new(),
            umask: 0o022,
            candidates: Vec::new(),
            pages: String::new(),
            base,
            children: Vec::new(),
            orphaned_sessions: Vec::new(),
        };
        if let Some(img) = images.get(&e.pid) {
            for f in &img.fds.fds {
                let src = *inh.files.get(&f.file_id).ok_or_else(|| crate::image::ImageError::Corrupt {
                    path: img.pages_path.with_file_name(format!("fds-{}.img", e.pid)),
                    detail: format!("fd {} refers to unknown file {}", f.fd, f.file_id),
                })?;
                node.fds.push((f.fd, src, f.cloexec));
                if let Some(d) = table.files.iter().find(|d| d.id == f.file_id && d.owner_pid == e.pid) {
                    node.epoll.extend(d.epoll.iter().map(|t| (f.fd, t.fd, t.events, t.data)));
                }
            }
            node.keep = img
                .mm
                .vmas
                .iter()
                .filter(|v| v.shmem_id != 0)
                .filter_map(|v| inh.shmems.get(&v.shmem_id).copied())
                .collect();
            node.keep.sort_unstable();
            node.keep.dedup();
            node.cwd = img.core.cwd.clone();
            node.root = img.core.root.clone();
            node.umask = img.core.umask;
            let mut vmas: Vec<(u64, u64)> = img.mm.vmas.iter().map(|v| (v.start, v.end)).collect();
            vmas.sort_unstable();
            node.candidates = trampoline::candidates(&vmas, 16);
            node.pages = img.pages_path.to_string_lossy().into_owned();
        }
        nodes.push(node);
    }
    for (i, e) in entries.iter().enumerate().skip(1) {
        let p = index[&e.ppid];
        let orphaned = !e.zombie && e.sid != e.pid && e.sid != entries[p].sid;
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
    Ok(nodes)
}

/// Forks the whole tree; returns once every live task has reported.
pub fn spawn(
    entries: &[pb::TaskEntry],
    images: &HashMap<i32, TaskImages>,
    table: &pb::Files,
    inh: &Inherited,
    base: RawFd,
    child_of_caller: bool,
    pid_ns: bool,
) -> Result<Tree> {
    let nodes = plan(entries, images, table, inh, base)?;
    let cloexec = nix::fcntl::OFlag::O_CLOEXEC;
    let (st_rd, st_wr) = nix::unistd::pipe2(cloexec).map_err(|errno| SysError::Call { call: "pipe2", errno })?;
    let (go_rd, go_wr) = nix::unistd::pipe2(cloexec).map_err(|errno| SysError::Call { call: "pipe2", errno })?;
    let (st_w, go_r) = (files::dup_at_least(st_wr.as_raw_fd(), base)?, files::dup_at_least(go_rd.as_raw_fd(), base)?);
    drop((st_wr, go_rd));
    let live = nodes.iter().filter(|n| n.zombie.is_none()).count();
    let root_pid = nodes[0].pid;
    let want = if pid_ns { None } else { Some(root_pid) };
    let spawned = process::spawn(want, child_of_caller, pid_ns, || child_main(&nodes, 0, st_w, go_r));
    files::close(st_w);
    files::close(go_r);
    let got = spawned?;
    let kill_all = || {
        // Killing the init of a new PID namespace takes the whole namespace along.
        let _ = process::kill(got, libc::SIGKILL);
        if !pid_ns {
            for n in &nodes {
                let _ = process::kill(n.pid, libc::SIGKILL);
            }
        }
    };
    if !pid_ns && got != root_pid {
        let _ = process::kill(got, libc::SIGKILL);
        return Err(RestoreError::Child { pid: root_pid, detail: format!("clone3 gave pid {got}") }.into());
    }
    let mut st = std::fs::File::from(st_rd);
    let mut out = HashMap::new();
    while out.len() < live {
        let mut rec = [0u8; RECORD];
        if !files::poll_readable(st.as_raw_fd(), 30_000) {
            kill_all();
            return Err(RestoreError::Child {
                pid: root_pid,
                detail: format!("{} of {live} tasks reported within 30 s", out.len()),
            }
            .into());
        }
        if let Err(e) = st.read_exact(&mut rec) {
            kill_all();
            return Err(
                RestoreError::Child { pid: root_pid, detail: format!("a task died before reporting ({e})") }.into()
            );
        }
        let pid = i32::from_le_bytes(rec[2..6].try_into().expect("4 bytes"));
        if &rec[..2] != b"OK" {
            kill_all();
            let text = String::from_utf8_lossy(&rec[6..]).trim_end_matches('\0').to_string();
            return Err(RestoreError::Child { pid, detail: text }.into());
        }
        let tramp = u64::from_le_bytes(rec[6..14].try_into().expect("8 bytes"));
        let pages_fd = i32::from_le_bytes(rec[14..18].try_into().expect("4 bytes"));
        let node = nodes.iter().find(|n| n.pid == pid);
        let mut plumbing = vec![pages_fd, st_w, go_r];
        plumbing.extend(node.map(|n| n.keep.clone()).unwrap_or_default());
        out.insert(pid, Spawned { shmem_fds: inh.shmems.clone(), trampoline: tramp, pages_fd, plumbing });
    }
    let outer = if pid_ns { outer_pids(got)? } else { nodes.iter().map(|n| (n.pid, n.pid)).collect() };
    Ok(Tree { spawned: out, outer, _go: go_wr })
}

/// Image (namespace) pid → our pid for every task under `root` (our pid).
fn outer_pids(root: i32) -> Result<HashMap<i32, i32>> {
    let mut map = HashMap::new();
    let mut queue = vec![root];
    while let Some(p) = queue.pop() {
        map.insert(crate::sys::proc::ns_last(&crate::sys::proc::status(p)?, "NSpid"), p);
        for t in crate::sys::proc::threads(p)? {
            queue.extend(crate::sys::proc::children(p, t)?);
        }
    }
    Ok(map)
}

fn report(st: RawFd, tag: &[u8; 2], pid: i32, body: &[u8]) {
    let mut rec = [0u8; RECORD];
    rec[..2].copy_from_slice(tag);
    rec[2..6].copy_from_slice(&pid.to_le_bytes());
    let n = body.len().min(RECORD - 6);
    rec[6..6 + n].copy_from_slice(&body[..n]);
    let _ = files::write_all(st, &rec);
}

/// Runs in the restore child of `nodes[i]`. Returns only to exit (the code).
fn child_main(nodes: &[Node], i: usize, st: RawFd, go: RawFd) -> i32 {
    let n = &nodes[i];
    if let Some(status) = n.zombie {
        files::exit_like(status);
    }
    match setup(nodes, i, st, go) {
        Ok((tramp, pages)) => {
            let mut body = tramp.to_le_bytes().to_vec();
            body.extend_from_slice(&pages.to_le_bytes());
            report(st, b"OK", n.pid, &body);
            // ccr seizes us inside this read; if it returns, ccr is gone.
            files::wait_readable(go);
            1
        }
        Err(e) => {
            report(st, b"ER", n.pid, e.to_string().as_bytes());
            1
        }
    }
}

fn setup(nodes: &[Node], i: usize, st: RawFd, go: RawFd) -> SysResult<(u64, RawFd)> {
    let n = &nodes[i];
    if n.session_leader {
        files::setsid()?;
    } else if n.pgid == n.pid {
        files::setpgid(0, 0)?;
    }
    files::default_sigchld();
    for &c in &n.children {
        let kid = &nodes[c];
        let pid = process::spawn_with_pid(Some(kid.pid), false, || child_main(nodes, c, st, go))?;
        // Process groups are set by the parent at once, so a later sibling can join
        // a group led by an earlier one; what this misses is fixed up remotely.
        if kid.zombie.is_none() && !kid.session_leader && kid.pgid != n.pgid {
            let _ = files::setpgid(pid, kid.pgid);
        }
    }
    // Children whose session leader is gone: a helper takes the leader's pid, starts
    // the session, forks them and exits; as a subreaper we adopt them and reap it.
    if !n.orphaned_sessions.is_empty() {
        files::set_child_subreaper()?;
    }
    for (sid, kids) in &n.orphaned_sessions {
        let helper = || -> i32 {
            if files::setsid().is_err() {
                return 1;
            }
            for &c in kids {
                if process::spawn_with_pid(Some(nodes[c].pid), false, || child_main(nodes, c, st, go)).is_err() {
                    return 1;
                }
            }
            0
        };
        let h = process::spawn_with_pid(Some(*sid), false, helper)?;
        files::reap(h)?;
    }
    let pages = files::open_raw(&n.pages, libc::O_RDONLY | libc::O_CLOEXEC, 0)?;
    let pages = {
        let high = files::dup_at_least(pages, n.base)?;
        files::close(pages);
        high
    };
    for &(target, src, cloexec) in &n.fds {
        files::dup_to(src, target, cloexec)?;
    }
    // epoll sets name fd numbers: register them now that ours are in place.
    for &(epfd, fd, events, data) in &n.epoll {
        anonfd::epoll_add(epfd, fd, events, data)?;
    }
    let mut keep: Vec<RawFd> = n.fds.iter().map(|f| f.0).collect();
    keep.extend([st, go, pages]);
    keep.extend(&n.keep);
    keep.sort_unstable();
    keep.dedup();
    // Close everything else: the gaps between the fds we keep.
    let mut from = 0u32;
    for k in keep {
        if k as u32 > from {
            files::close_range(from, k as u32 - 1);
        }
        from = k as u32 + 1;
    }
    files::close_range(from, u32::MAX);
    if !n.root.is_empty() && n.root != "/" {
        files::chroot(&n.root)?;
    }
    files::chdir(&n.cwd)?;
    files::umask(n.umask);
    let tramp = trampoline::map_in_self(&n.candidates)?;
    files::reset_signal_actions();
    Ok((tramp, pages))
}
