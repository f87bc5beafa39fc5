//! Netlink sockets talking to the kernel (NETLINK_ROUTE as `ip monitor` holds
//! one, NETLINK_KOBJECT_UEVENT as a device manager does): their protocol, port
//! id, multicast groups, options and classic BPF filter. Their task makes them
//! again in its network namespace, bound to the same port id, then joins the
//! groups. Refused by name: messages queued (a reply or an event not read yet)
//! and a socket connected to a peer other than the kernel.

use std::os::fd::{AsFd, OwnedFd};

use super::socket::{
    check_task_netns, raw_or_dgram, raw_or_dgram_type, read_filter, read_opts, set_filter, set_opts, step_failed, Opt,
};
use super::{DumpCx, FdProbe, FileDesc, FileState, OpenCx};
use crate::error::Result;
use crate::image::pb;
use crate::sys::kernel;
use crate::sys::{pidfd, sock};

const SOL_NETLINK: i32 = libc::SOL_NETLINK;

const OPTS: &[Opt] = &[
    (libc::SOL_SOCKET, libc::SO_RCVBUF, 0, 0, "SO_RCVBUF"),
    (libc::SOL_SOCKET, libc::SO_SNDBUF, 0, 0, "SO_SNDBUF"),
    (libc::SOL_SOCKET, libc::SO_PASSCRED, 0, 0, "SO_PASSCRED"),
    (libc::SOL_SOCKET, libc::SO_TIMESTAMP, 0, 0, "SO_TIMESTAMP"),
    (SOL_NETLINK, kernel::NETLINK_PKTINFO as i32, 0, 0, "NETLINK_PKTINFO"),
    (SOL_NETLINK, kernel::NETLINK_BROADCAST_ERROR as i32, 0, 0, "NETLINK_BROADCAST_ERROR"),
    (SOL_NETLINK, kernel::NETLINK_NO_ENOBUFS as i32, 0, 0, "NETLINK_NO_ENOBUFS"),
    (SOL_NETLINK, kernel::NETLINK_CAP_ACK as i32, 0, 0, "NETLINK_CAP_ACK"),
    (SOL_NETLINK, kernel::NETLINK_EXT_ACK as i32, 0, 0, "NETLINK_EXT_ACK"),
    (SOL_NETLINK, kernel::NETLINK_GET_STRICT_CHK as i32, 0, 0, "NETLINK_GET_STRICT_CHK"),
    (SOL_NETLINK, kernel::NETLINK_LISTEN_ALL_NSID as i32, 0, 0, "NETLINK_LISTEN_ALL_NSID"),
];

fn what(s: &pb::NetlinkSocket) -> String {
    format!("netlink socket (protocol {}, port id {})", s.protocol, s.port_id)
}

file_kind! { Netlink: "netlink socket", Netlink, InTask;

    fn claims(&self, p: &FdProbe) -> bool {
        p.socket_domain() == Some(libc::AF_NETLINK)
    }

    fn dump(&self, _cx: &mut DumpCx<'_>, p: &FdProbe, _id: u32) -> Result<FileState> {
        dump(p).map(FileState::Netlink)
    }

    fn open(&self, _cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
        let FileState::Netlink(s) = &f.state else { unreachable!("owned by Netlink") };
        open(f, s)
    }
}

fn dump(p: &FdProbe) -> Result<pb::NetlinkSocket> {
    let copy = pidfd::getfd(p.pid, p.fd)?;
    let fd = copy.as_fd();
    let protocol = sock::get_int(fd, libc::SOL_SOCKET, libc::SO_PROTOCOL, "getsockopt(SO_PROTOCOL)")?;
    let shown = format!("netlink socket of protocol {protocol}");
    let ty = raw_or_dgram(p, fd, &shown)?;
    check_task_netns(p, fd, &shown)?;
    let (port_id, peer) = sock::netlink_names(fd)?;
    if peer != (0, 0) {
        return Err(p.refuse(&format!("{shown} connected to port {} group {}", peer.0, peer.1)));
    }
    if sock::has_queued(fd)? {
        return Err(p.refuse(&format!("{shown} with messages queued")));
    }
    Ok(pb::NetlinkSocket {
        r#type: ty as i32,
        protocol,
        port_id,
        groups: sock::netlink_groups(fd)?,
        opts: read_opts(fd, OPTS.iter())?,
        filter: read_filter(fd)?,
    })
}

fn open(f: &FileDesc, s: &pb::NetlinkSocket) -> Result<OwnedFd> {
    let fail = step_failed(f, what(s));
    let ty = raw_or_dgram_type(s.r#type);
    let made = sock::socket(libc::AF_NETLINK, ty, s.protocol).map_err(|e| fail("socket", e))?;
    let fd = made.as_fd();
    set_opts(fd, &s.opts, OPTS, &fail)?;
    set_filter(fd, s.filter.as_ref(), &fail)?;
    if s.port_id != 0 {
        sock::netlink_bind(fd, s.port_id).map_err(|e| fail("bind", e))?;
    }
    for (w, bits) in s.groups.iter().enumerate() {
        for b in (0..32).filter(|b| bits & (1 << b) != 0) {
            let group = (w * 32 + b + 1) as i32;
            sock::set_int(fd, SOL_NETLINK, kernel::NETLINK_ADD_MEMBERSHIP as i32, group)
                .map_err(|e| fail(&format!("joining group {group}"), e))?;
        }
    }
    super::set_status(&made, f)?;
    Ok(made)
}
