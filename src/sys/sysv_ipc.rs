//! SysV semaphore sets and message queues: read without changing them (GETALL,
//! msgrcv with MSG_COPY), and made again under their ids.

use crate::sys::proc::sysvipc::IpcObject;
use crate::sys::{Errno, SysError, SysResult};

/// msgrcv: copy the message at an index instead of taking it (Linux 3.8+,
/// CONFIG_CHECKPOINT_RESTORE).
const MSG_COPY: i32 = 0o40000;
/// The largest message ccr reads (the kernel's default msgmax is 8192).
const MSG_MAX: usize = 1 << 16;

fn err(call: &'static str) -> SysError {
    SysError::Call { call, errno: Errno::last() }
}

/// The values of semaphore set `id`.
pub fn sem_values(id: i32, nsems: usize) -> SysResult<Vec<u16>> {
    let mut v = vec![0u16; nsems];
    // SAFETY: GETALL writes nsems unsigned shorts into `v`.
    if unsafe { libc::semctl(id, 0, libc::GETALL, v.as_mut_ptr()) } < 0 {
        return Err(err("semctl(GETALL)"));
    }
    Ok(v)
}

/// The messages of queue `id`, oldest first: (type, text).
pub fn msg_copy_all(id: i32, count: u64) -> SysResult<Vec<(i64, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 8 + MSG_MAX];
    for i in 0..count {
        // SAFETY: msgrcv writes at most 8 + MSG_MAX bytes (mtype + text) into `buf`.
        let n = unsafe {
            libc::msgrcv(id, buf.as_mut_ptr().cast(), MSG_MAX, i as libc::c_long, MSG_COPY | libc::IPC_NOWAIT)
        };
        if n < 0 {
            return Err(err("msgrcv(MSG_COPY)"));
        }
        let mtype = i64::from_ne_bytes(buf[..8].try_into().expect("8 bytes"));
        out.push((mtype, buf[8..8 + n as usize].to_vec()));
    }
    Ok(out)
}

fn set_owner(id: i32, o: &IpcObject, sem: bool) -> SysResult<()> {
    if sem {
        // SAFETY: an all-zero semid_ds is valid; IPC_SET reads owner and mode from it.
        let mut ds: libc::semid_ds = unsafe { std::mem::zeroed() };
        ds.sem_perm.uid = o.uid;
        ds.sem_perm.gid = o.gid;
        ds.sem_perm.mode = (o.mode & 0o777) as _;
        // SAFETY: as above.
        if unsafe { libc::semctl(id, 0, libc::IPC_SET, &mut ds as *mut libc::semid_ds) } < 0 {
            return Err(err("semctl(IPC_SET)"));
        }
    } else {
        // SAFETY: IPC_STAT fills a valid msqid_ds (the queue's size limit is kept).
        let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::msgctl(id, libc::IPC_STAT, &mut ds) } < 0 {
            return Err(err("msgctl(IPC_STAT)"));
        }
        ds.msg_perm.uid = o.uid;
        ds.msg_perm.gid = o.gid;
        ds.msg_perm.mode = (o.mode & 0o777) as _;
        // SAFETY: IPC_SET reads owner and mode from the filled msqid_ds.
        if unsafe { libc::msgctl(id, libc::IPC_SET, &mut ds) } < 0 {
            return Err(err("msgctl(IPC_SET)"));
        }
    }
    Ok(())
}

fn check_id(got: i32, want: i32, call: &'static str, remove: impl Fn(i32)) -> SysResult<()> {
    if got < 0 {
        return Err(err(call));
    }
    if got != want {
        remove(got);
        return Err(SysError::Call { call, errno: Errno::EEXIST });
    }
    Ok(())
}

pub fn remove_sem(id: i32) {
    // SAFETY: IPC_RMID takes no argument.
    unsafe { libc::semctl(id, 0, libc::IPC_RMID) };
}

pub fn remove_msg(id: i32) {
    // SAFETY: IPC_RMID takes no buffer.
    unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
}

/// Makes semaphore set `o` again under its id (the next sem id must be set to it)
/// with `values`, owner and mode.
pub fn create_sem(o: &IpcObject, values: &[u16]) -> SysResult<()> {
    let key = if o.key == 0 { libc::IPC_PRIVATE } else { o.key };
    // SAFETY: semget with integer arguments.
    let id = unsafe { libc::semget(key, values.len() as i32, 0o600 | libc::IPC_CREAT | libc::IPC_EXCL) };
    check_id(id, o.id, "semget", remove_sem)?;
    let mut v = values.to_vec();
    // SAFETY: SETALL reads nsems unsigned shorts from `v`.
    let r = unsafe { libc::semctl(id, 0, libc::SETALL, v.as_mut_ptr()) };
    let done = if r < 0 { Err(err("semctl(SETALL)")) } else { set_owner(id, o, true) };
    if done.is_err() {
        remove_sem(id);
    }
    done
}

/// Makes message queue `o` again under its id (the next msg id must be set to
/// it) with its messages, owner and mode.
pub fn create_msg(o: &IpcObject, msgs: &[(i64, Vec<u8>)]) -> SysResult<()> {
    let key = if o.key == 0 { libc::IPC_PRIVATE } else { o.key };
    // SAFETY: msgget with integer arguments.
    let id = unsafe { libc::msgget(key, 0o600 | libc::IPC_CREAT | libc::IPC_EXCL) };
    check_id(id, o.id, "msgget", remove_msg)?;
    let send = || -> SysResult<()> {
        for (mtype, text) in msgs {
            let mut b = mtype.to_ne_bytes().to_vec();
            b.extend_from_slice(text);
            // SAFETY: msgsnd reads 8 + text.len() bytes from `b`.
            if unsafe { libc::msgsnd(id, b.as_ptr().cast(), text.len(), libc::IPC_NOWAIT) } < 0 {
                return Err(err("msgsnd"));
            }
        }
        set_owner(id, o, false)
    };
    let done = send();
    if done.is_err() {
        remove_msg(id);
    }
    done
}

/// The sysctls an IPC namespace has of its own (paths under /proc/sys): what a
/// task in it reads there is its namespace's value.
pub const NS_SYSCTLS: [&str; 13] = [
    "kernel/shmmax",
    "kernel/shmall",
    "kernel/shmmni",
    "kernel/shm_rmid_forced",
    "kernel/msgmax",
    "kernel/msgmnb",
    "kernel/msgmni",
    "kernel/sem",
    "fs/mqueue/msg_max",
    "fs/mqueue/msgsize_max",
    "fs/mqueue/queues_max",
    "fs/mqueue/msg_default",
    "fs/mqueue/msgsize_default",
];
