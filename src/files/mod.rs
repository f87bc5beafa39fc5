//! Open files: one module per kind of object an fd can point to, dump and restore
//! side by side behind [`FileKind`]. The dump finds the kind that claims an fd and
//! asks it for the description's state; restore asks the kind that owns a saved
//! state to open it again, at the [`Stage`] the kind names.
//!
//! Every open file description of the checkpoint gets an id in one table
//! (files.img, built by `table`); each task's fd table (fds-PID.img) maps fd
//! numbers to those ids. Descriptions shared by several fds or tasks (dup, fork)
//! are found with kcmp, so restore shares them again (one offset, one pipe end).
//!
//! Adding a kind: a message and a `oneof` case in proto/fds.proto, a file here
//! implementing `FileKind`, and its line in [`KINDS`].

/// A file kind: `file_kind! { Name: "name", StateCase, Stage[, anon "inode"]; methods }`
/// declares the unit struct `Name` and implements `FileKind` for it with the given
/// methods and the ones that are one word each: its name, the `FileState` case it
/// owns, its restore stage and (for an anonymous-inode kind) what it claims.
macro_rules! file_kind {
    ($ty:ident: $name:literal, $state:ident, $stage:ident, anon $anon:literal; $($body:tt)*) => {
        file_kind! { $ty: $name, $state, $stage;
            fn claims(&self, p: &crate::files::FdProbe) -> bool {
                p.anon_inode() == Some($anon)
            }
            $($body)*
        }
    };
    ($ty:ident: $name:literal, $state:ident, $stage:ident; $($body:tt)*) => {
        pub struct $ty;

        impl crate::files::FileKind for $ty {
            fn name(&self) -> &'static str {
                $name
            }

            fn owns(&self, s: &crate::files::FileState) -> bool {
                matches!(s, crate::files::FileState::$state(_))
            }

            fn stage(&self) -> crate::files::Stage {
                crate::files::Stage::$stage
            }

            $($body)*
        }
    };
}

pub mod chr;
pub mod dir;
pub mod epoll;
pub mod eventfd;
pub mod external;
pub mod fifo;
pub mod ghost;
pub mod inet;
pub mod inotify;
pub mod lock;
pub mod memfd;
pub mod netlink;
pub mod packet;
pub mod pipe;
pub mod pty;
pub mod reg;
pub mod signalfd;
pub mod socket;
pub mod stamp;
pub mod table;
pub mod tcp_conn;
pub mod timerfd;
pub mod unix;

use std::any::Any;
use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::dump::DumpError;
use crate::error::Result;
use crate::image::pages::PageWriter;
use crate::image::{pb, ImageDir};
use crate::log::Log;
use crate::mm::shmem::ShmemTable;
use crate::sys::proc::FdInfo;

/// A saved description's kind-specific state: the `oneof` of files.img.
pub use crate::image::pb::file_desc::Kind as FileState;

/// One open file description.
#[derive(Clone, Debug, PartialEq)]
pub struct FileDesc {
    pub id: u32,
    /// open(2) flags as fdinfo reports them, without O_CLOEXEC.
    pub flags: u32,
    /// The first task found holding it (whose fd numbers an epoll set names).
    pub owner_pid: i32,
    /// The flock, OFD and lease locks the description holds.
    pub locks: Vec<pb::FileLock>,
    pub state: FileState,
}

impl FileDesc {
    pub fn nonblock(&self) -> bool {
        self.flags as i32 & libc::O_NONBLOCK != 0
    }

    pub fn access(&self) -> i32 {
        self.flags as i32 & libc::O_ACCMODE
    }
}

/// Every file-related object of a checkpoint (files.img).
#[derive(Clone, Debug, Default)]
pub struct FilesImage {
    pub files: Vec<FileDesc>,
    pub pipes: Vec<pb::PipeData>,
    pub shmems: Vec<pb::Shmem>,
    pub sysv: Vec<pb::SysvShm>,
    pub ptys: Vec<pb::Pty>,
}

impl FilesImage {
    pub fn file(&self, id: u32) -> Option<&FileDesc> {
        self.files.iter().find(|f| f.id == id)
    }
}

/// When a kind's descriptions are made again on restore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// By ccr before any task exists: objects without a path (pipes, sockets,
    /// eventfds, ...), for which no namespace or mount matters. Every task
    /// inherits them and keeps what it uses.
    BeforeFork,
    /// By the restore child of one task (the deepest one above or at every holder)
    /// before it forks: anything opened by path, which must resolve where the task
    /// lives. It runs once the child is in its namespaces (the container work sets
    /// them up first) and before it changes root: paths are saved as ccr sees them.
    InTask,
}

/// What the dump sees of one fd.
pub struct FdProbe {
    pub pid: i32,
    pub fd: i32,
    /// Where /proc/PID/fd/FD points.
    pub target: String,
    pub md: std::fs::Metadata,
    pub info: FdInfo,
    /// The key the caller named it by as external (`--external`), if any.
    pub external: Option<String>,
    /// The socket's domain, once asked (`socket_domain`).
    domain: std::cell::OnceCell<Option<i32>>,
}

impl FdProbe {
    pub fn new(pid: i32, fd: i32, target: String, md: std::fs::Metadata, info: FdInfo) -> FdProbe {
        FdProbe { pid, fd, target, md, info, external: None, domain: Default::default() }
    }

    /// The socket's domain (AF_*), asked once on a copy of the fd for every kind
    /// that claims sockets by it; None for anything but a socket.
    pub fn socket_domain(&self) -> Option<i32> {
        *self.domain.get_or_init(|| {
            if !std::os::unix::fs::FileTypeExt::is_socket(&self.md.file_type()) {
                return None;
            }
            let copy = crate::sys::pidfd::getfd(self.pid, self.fd).ok()?;
            crate::sys::sock::get_int(copy.as_fd(), libc::SOL_SOCKET, libc::SO_DOMAIN, "getsockopt(SO_DOMAIN)").ok()
        })
    }

    /// The dump error refusing this fd as `kind`.
    pub fn refuse(&self, kind: &str) -> crate::Error {
        DumpError::UnsupportedFd { pid: self.pid, fd: self.fd, kind: kind.into(), path: self.target.clone() }.into()
    }

    /// The path the fd was opened by, or a refusal naming `what` when it has none
    /// (the file was deleted, or never had one).
    pub fn path(&self, what: &str) -> Result<String> {
        if !self.target.starts_with('/') || self.target.ends_with(" (deleted)") {
            return Err(self.refuse(&format!("{what} without a path (deleted?)")));
        }
        Ok(self.target.clone())
    }

    /// The anon_inode name ("eventfd", "[eventpoll]" → "eventpoll"), if any.
    pub fn anon_inode(&self) -> Option<&str> {
        self.target.strip_prefix("anon_inode:").map(|k| k.trim_start_matches('[').trim_end_matches(']'))
    }

    /// An fdinfo line the kind needs, or an error naming the fdinfo file.
    pub fn need<T>(&self, v: Option<T>, what: &str) -> Result<T> {
        v.ok_or_else(|| {
            crate::sys::SysError::Parse {
                path: crate::sys::proc::fdinfo::path(self.pid, self.fd),
                detail: format!("no {what}"),
            }
            .into()
        })
    }
}

/// A network namespace, by the (dev, inode) of its nsfs file.
pub type NetNs = (u64, u64);

/// What the kinds' dumps keep for the whole dump (every task).
#[derive(Default)]
pub struct DumpState {
    /// Pipe contents, once per pipe.
    pub pipes: Vec<pb::PipeData>,
    /// (dev, ino) of each pipe or FIFO → its id in `pipes`.
    pipe_ids: HashMap<(u64, u64), u64>,
    /// Every unix socket of each network namespace met (sock_diag), read on first need.
    unix: HashMap<NetNs, HashMap<u32, crate::sys::unix_sock::UnixInfo>>,
    /// The (dev, inode) of the file of each socket the tree holds bound to a path.
    bound_files: std::collections::HashSet<(u64, u64)>,
    /// The keys of `--external`.
    pub externals: Vec<String>,
    /// The ptys met, by either end.
    pub ptys: pty::PtyTable,
    /// Whether established TCP connections are saved (`--tcp-established`).
    pub tcp_established: bool,
    /// `--ghost-limit`: the largest deleted file whose contents are saved.
    pub ghost_limit: Option<u64>,
    /// The connections held in repair mode while the tasks are.
    pub repairing: crate::sys::tcp_repair::Repairing,
}

/// What a kind's dump may use besides the fd itself.
pub struct DumpCx<'a> {
    pub dir: &'a ImageDir,
    pub log: &'a mut Log,
    pub state: &'a mut DumpState,
    pub shmem: &'a mut ShmemTable,
    pub pages: &'a mut PageWriter,
    pub stamps: &'a mut stamp::Stamps,
}

impl DumpCx<'_> {
    /// The id of the pipe or FIFO with inode (`dev`, `ino`), and whether it is new.
    pub fn pipe_id(&mut self, dev: u64, ino: u64) -> (u64, bool) {
        let next = self.state.pipe_ids.len() as u64 + 1;
        match self.state.pipe_ids.entry((dev, ino)) {
            std::collections::hash_map::Entry::Occupied(e) => (*e.get(), false),
            std::collections::hash_map::Entry::Vacant(e) => (*e.insert(next), true),
        }
    }

    /// The network namespace socket `sock` is in, and every unix socket of that
    /// namespace (sock_diag, read once per namespace).
    pub fn unix_sockets(
        &mut self,
        sock: BorrowedFd<'_>,
    ) -> Result<(NetNs, &HashMap<u32, crate::sys::unix_sock::UnixInfo>)> {
        let ns = crate::sys::unix_sock::net_ns_of(sock)?;
        self.state.unix_sockets_in(ns.as_fd())
    }
}

impl DumpState {
    /// Every unix socket of the network namespace `ns` is open on, and its id.
    fn unix_sockets_in(
        &mut self,
        ns: BorrowedFd<'_>,
    ) -> Result<(NetNs, &HashMap<u32, crate::sys::unix_sock::UnixInfo>)> {
        let st = crate::sys::fd::stat(ns)?;
        let id = (st.st_dev, st.st_ino);
        let all = match self.unix.entry(id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(crate::sys::unix_sock::all_in(ns)?),
        };
        Ok((id, all))
    }
}

/// How a task makes files in a user namespace of the tree's own, whose maps do
/// not hold ccr's ids (EOVERFLOW): through a helper with `maker`'s ids.
#[derive(Clone, Copy)]
pub struct InUserNs<'a> {
    /// How the images' ids become the namespace's.
    pub ids: &'a crate::userns::Ids,
    pub maker: crate::userns::NsIds,
    /// The pid the helper takes, when it must not take the next free one.
    pub helper_pid: Option<i32>,
}

/// What a kind's open may use: the images, the other objects of the checkpoint,
/// and per-object state shared between the descriptions of one object.
pub struct OpenCx<'a> {
    /// The images directory (usable in restore children too: an fd).
    pub dir: &'a ImageDir,
    pub image: &'a FilesImage,
    /// Shared memory object id → its memfd in ccr.
    pub shmem_fds: &'a HashMap<u64, OwnedFd>,
    /// fds the caller handed over for external files (key → fd).
    pub inherited: &'a HashMap<String, BorrowedFd<'a>>,
    /// In a user namespace of the tree's own: how files are made there.
    pub userns: Option<InUserNs<'a>>,
    objects: HashMap<(&'static str, u64), Box<dyn Any>>,
}

impl<'a> OpenCx<'a> {
    pub fn new(
        dir: &'a ImageDir,
        image: &'a FilesImage,
        shmem_fds: &'a HashMap<u64, OwnedFd>,
        inherited: &'a HashMap<String, BorrowedFd<'a>>,
    ) -> OpenCx<'a> {
        OpenCx { dir, image, shmem_fds, inherited, userns: None, objects: HashMap::new() }
    }

    /// The state a kind keeps for object `key` across the descriptions of it (both
    /// ends of a pipe, a socket pair), created on first use.
    pub fn object<T: Default + 'static>(&mut self, kind: &'static str, key: u64) -> &mut T {
        self.objects
            .entry((kind, key))
            .or_insert_with(|| Box::new(T::default()))
            .downcast_mut::<T>()
            .expect("one type per kind")
    }
}

/// One kind of open file.
pub trait FileKind: Sync {
    /// For logs and errors ("pipe", "eventfd").
    fn name(&self) -> &'static str;

    /// Dump: whether this kind handles the fd.
    fn claims(&self, p: &FdProbe) -> bool;

    /// Dump: the state of a description met for the first time (`id` is its id in
    /// files.img). A kind refuses what it cannot restore here, by name.
    fn dump(&self, cx: &mut DumpCx<'_>, p: &FdProbe, id: u32) -> Result<FileState>;

    /// Dump: checks over the whole table once every task is collected.
    fn finish_dump(&self, _t: &table::FileTable) -> Result<()> {
        Ok(())
    }

    /// Restore: whether this kind restores the saved state.
    fn owns(&self, s: &FileState) -> bool;

    /// Restore: where the kind's descriptions are opened.
    fn stage(&self) -> Stage;

    /// Restore: where description `f` is opened (a kind whose objects belong to a
    /// namespace may open some in the task).
    fn stage_of(&self, _f: &FileDesc) -> Stage {
        self.stage()
    }

    /// Restore: descriptions of one group (the ends of one pty) are opened by one
    /// task, the deepest above every holder of any of them.
    fn group(&self, _f: &FileDesc) -> Option<u64> {
        None
    }

    /// Restore: whether description `f` is opened only once its session has
    /// its controlling terminal back (/dev/tty opens that terminal).
    fn after_ctty(&self, _f: &FileDesc) -> bool {
        false
    }

    /// Restore: opens (creates) the description again, with its flags and position.
    fn open(&self, cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd>;

    /// Restore, in the task that owns the description, once every fd of the task is
    /// in place (`fd` is its number there): what names other fds (epoll).
    fn installed(&self, _f: &FileDesc, _fd: i32) -> Result<()> {
        Ok(())
    }
}

/// Every kind, in the order the dump asks them to claim an fd.
pub static KINDS: &[&dyn FileKind] = &[
    // First: a file the caller names external is external whatever it is.
    &external::External,
    &memfd::Memfd,
    &ghost::Ghost,
    &reg::Reg,
    &dir::Dir,
    &pty::Pty,
    &chr::Chr,
    &pipe::Pipe,
    &fifo::Fifo,
    &eventfd::EventFd,
    &timerfd::TimerFd,
    &signalfd::SignalFd,
    &epoll::Epoll,
    &inotify::Inotify,
    // Before Unix, which refuses every other socket by what it is.
    &inet::Inet,
    &packet::Packet,
    &netlink::Netlink,
    &unix::Unix,
    &unix::UnixBound,
];

/// Restore: opens description `f` again with its kind, and takes back the locks it
/// held.
pub fn open(cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
    use std::os::fd::AsFd;
    let kind = kind_of(&f.state);
    let opened = kind.open(cx, f)?;
    lock::take(opened.as_fd(), &f.locks, f.owner_pid, f.id, kind.name())?;
    Ok(opened)
}

/// The kind that restores `s` (every state has one: `KINDS` lists every case).
pub fn kind_of(s: &FileState) -> &'static dyn FileKind {
    *KINDS.iter().find(|k| k.owns(s)).expect("a kind for every files.img case")
}

/// Status flags fcntl(F_SETFL) can change on an open file.
pub const SETFL_MASK: u32 =
    (libc::O_APPEND | libc::O_NONBLOCK | libc::O_ASYNC | libc::O_DIRECT | libc::O_NOATIME) as u32;

/// The flags a path-based kind reopens with: the saved ones, without the ones that
/// only matter at creation, and without O_ASYNC: open() keeps it in the file's
/// flags without registering for the signal (open(2), BUGS), and the later
/// fcntl that does register sees no change and does nothing.
pub fn reopen_flags(f: &FileDesc) -> i32 {
    (f.flags as i32 & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_ASYNC))
        | libc::O_NOCTTY
        | libc::O_CLOEXEC
}

/// Applies the saved status flags (O_NONBLOCK, O_APPEND, ...) to a fresh object.
/// O_ASYNC waits: it records the fd number it was set through (the signal's
/// si_fd), so the task sets it on its own fd once every fd is in place.
pub fn set_status(fd: &OwnedFd, f: &FileDesc) -> Result<()> {
    use std::os::fd::AsFd;
    let flags = f.flags & SETFL_MASK & !(libc::O_ASYNC as u32);
    Ok(crate::sys::fd::set_status_flags(fd.as_fd(), flags as i32)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::pb::file_desc::Kind;

    #[test]
    fn every_state_has_exactly_one_kind() {
        let states = [
            Kind::Reg(Default::default()),
            Kind::Ghost(Default::default()),
            Kind::Dir(Default::default()),
            Kind::Chr(Default::default()),
            Kind::Pipe(Default::default()),
            Kind::Fifo(Default::default()),
            Kind::Eventfd(Default::default()),
            Kind::Timerfd(Default::default()),
            Kind::Signalfd(Default::default()),
            Kind::Epoll(Default::default()),
            Kind::Inotify(Default::default()),
            Kind::Unix(Default::default()),
            Kind::Memfd(Default::default()),
            Kind::External(Default::default()),
            Kind::Pty(Default::default()),
            Kind::UnixBound(Default::default()),
            Kind::Inet(Default::default()),
            Kind::Packet(Default::default()),
            Kind::Netlink(Default::default()),
        ];
        for s in &states {
            let n = KINDS.iter().filter(|k| k.owns(s)).count();
            assert_eq!(n, 1, "{s:?} is owned by {n} kinds");
        }
        let names: std::collections::HashSet<_> = KINDS.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), KINDS.len(), "kind names are unique");
    }
}
