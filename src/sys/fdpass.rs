//! fds passed over unix sockets (SCM_RIGHTS): one fd per message, with a few
//! bytes saying what it is.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

use super::{SysError, SysResult};

/// Sends `fd` with `data` (not empty) as one message.
pub fn send(sock: BorrowedFd<'_>, data: &[u8], fd: BorrowedFd<'_>) -> SysResult<()> {
    let iov = [std::io::IoSlice::new(data)];
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)
        .map_err(|errno| SysError::Call { call: "sendmsg(SCM_RIGHTS)", errno })?;
    Ok(())
}

/// Receives one message and the fd it carries; None at end of stream, or when
/// nothing is waiting on a non-blocking socket.
pub fn recv(sock: BorrowedFd<'_>) -> SysResult<Option<(Vec<u8>, OwnedFd)>> {
    recv_up_to(sock, 512)
}

/// As [`recv`], for messages of up to `max` bytes.
pub fn recv_up_to(sock: BorrowedFd<'_>, max: usize) -> SysResult<Option<(Vec<u8>, OwnedFd)>> {
    let mut buf = vec![0u8; max];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = match recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
        Ok(m) => m,
        Err(nix::errno::Errno::EAGAIN) => return Ok(None),
        Err(errno) => return Err(SysError::Call { call: "recvmsg(SCM_RIGHTS)", errno }),
    };
    let mut fd = None;
    for c in msg.cmsgs().map_err(|errno| SysError::Call { call: "recvmsg(SCM_RIGHTS)", errno })? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for raw in fds {
                // SAFETY: the kernel just installed these fds for us alone.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                if fd.is_none() {
                    fd = Some(owned);
                }
            }
        }
    }
    let n = msg.bytes;
    if n == 0 && fd.is_none() {
        return Ok(None);
    }
    let fd = fd.ok_or(SysError::Call {
        call: "recvmsg(SCM_RIGHTS): a message without an fd",
        errno: nix::errno::Errno::EPROTO,
    })?;
    Ok(Some((buf[..n].to_vec(), fd)))
}

/// A SOCK_SEQPACKET connection to the unix socket at `path`.
pub fn connect_seqpacket(path: &std::path::Path) -> SysResult<OwnedFd> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let s = socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None)
        .map_err(|errno| SysError::Call { call: "socket(SOCK_SEQPACKET)", errno })?;
    let addr =
        UnixAddr::new(path).map_err(|e| SysError::Path { call: "connect", path: path.into(), source: e.into() })?;
    connect(s.as_raw_fd(), &addr).map_err(|e| SysError::Path {
        call: "connect",
        path: path.into(),
        source: e.into(),
    })?;
    Ok(s)
}
