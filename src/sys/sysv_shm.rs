//! SysV shared memory: reading a segment's description and contents, and making it
//! again with the same id (through /proc/sys/kernel/shm_next_id).

use std::os::unix::fs::FileExt;

use crate::sys::{Errno, SysError, SysResult};

pub use crate::sys::proc::sysvipc::ShmSegment as SegmentInfo;

/// SHM_DEST in the mode: removed (IPC_RMID) but still attached somewhere.
pub const SHM_DEST: u32 = 0o1000;

pub fn segments() -> SysResult<Vec<SegmentInfo>> {
    crate::sys::proc::sysvipc::shm()
}

/// Attaches segment `id` here for the closure, then detaches it.
fn with_attached<T>(id: i32, readonly: bool, f: impl FnOnce(&mut [u8]) -> T, size: u64) -> SysResult<T> {
    // SAFETY: shmat maps the segment at an address the kernel chooses; it is only
    // used through the slice below and detached before returning.
    let p = unsafe { libc::shmat(id, std::ptr::null(), if readonly { libc::SHM_RDONLY } else { 0 }) };
    if p as isize == -1 {
        return Err(SysError::Call { call: "shmat", errno: Errno::last() });
    }
    // SAFETY: the segment is at least `size` bytes and mapped at `p`; a read-only
    // attachment is only read by the callers that ask for one.
    let slice = unsafe { std::slice::from_raw_parts_mut(p as *mut u8, size as usize) };
    let out = f(slice);
    // SAFETY: detaching what we attached.
    unsafe { libc::shmdt(p) };
    Ok(out)
}

/// Copies the contents of segment `id` into `path` (all-zero chunks left as holes).
pub fn save(id: i32, size: u64, path: &std::path::Path) -> SysResult<()> {
    let file = std::fs::File::create(path).map_err(SysError::path("create", path))?;
    file.set_len(size).map_err(SysError::path("truncate", path))?;
    with_attached(
        id,
        true,
        |data| -> SysResult<()> {
            for (i, chunk) in data.chunks(1 << 20).enumerate() {
                if chunk.iter().any(|&b| b != 0) {
                    file.write_all_at(chunk, (i << 20) as u64).map_err(SysError::path("write", path))?;
                }
            }
            Ok(())
        },
        size,
    )?
}

/// Makes segment `seg` again with its id (or takes the one still there with the same
/// key and size and nobody attached), fills it from `path`, and sets its owner and
/// mode. Returns whether it was created (so a failed restore removes it).
pub fn restore(seg: &SegmentInfo, path: &std::path::Path) -> SysResult<bool> {
    let existing = segments()?.into_iter().find(|s| s.id == seg.id);
    let created = match existing {
        Some(s) if s.key == seg.key && s.size == seg.size && s.nattch == 0 => false,
        Some(_) => {
            return Err(SysError::Call { call: "SysV shm id in use by another segment", errno: Errno::EEXIST });
        }
        None => {
            crate::sys::proc::kernel::set_shm_next_id(seg.id)?;
            let key = if seg.key == 0 { libc::IPC_PRIVATE } else { seg.key };
            // SAFETY: shmget with integer arguments.
            let id = unsafe {
                libc::shmget(key, seg.size as usize, (seg.mode & 0o777) as i32 | libc::IPC_CREAT | libc::IPC_EXCL)
            };
            if id < 0 {
                return Err(SysError::Call { call: "shmget", errno: Errno::last() });
            }
            if id != seg.id {
                remove(id);
                return Err(SysError::Call { call: "shmget gave another id", errno: Errno::EEXIST });
            }
            true
        }
    };
    let filled = fill(seg, path);
    if filled.is_err() && created {
        remove(seg.id);
    }
    filled.map(|()| created)
}

/// The contents, owner and mode of a segment that exists.
fn fill(seg: &SegmentInfo, path: &std::path::Path) -> SysResult<()> {
    let data = std::fs::read(path).map_err(SysError::path("read", path))?;
    with_attached(
        seg.id,
        false,
        |mem| {
            let n = data.len().min(mem.len());
            mem[..n].copy_from_slice(&data[..n]);
        },
        seg.size,
    )?;
    let mut ds: libc::shmid_ds = unsafe_zeroed();
    ds.shm_perm.uid = seg.uid;
    ds.shm_perm.gid = seg.gid;
    ds.shm_perm.mode = (seg.mode & 0o777) as u16;
    // SAFETY: IPC_SET reads the owner and mode from a valid shmid_ds.
    if unsafe { libc::shmctl(seg.id, libc::IPC_SET, &mut ds) } < 0 {
        return Err(SysError::Call { call: "shmctl(IPC_SET)", errno: Errno::last() });
    }
    Ok(())
}

fn unsafe_zeroed() -> libc::shmid_ds {
    // SAFETY: shmid_ds is plain integers; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// IPC_RMID: the segment goes once the last attachment does.
pub fn remove(id: i32) {
    // SAFETY: shmctl with IPC_RMID takes no buffer.
    unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
}
