//! Packet sockets (AF_PACKET, SOCK_RAW or SOCK_DGRAM), as a DHCP client holds
//! one: the protocol they take, the interface they are bound to (by name: its
//! index may differ in the restored namespace), their options and classic BPF
//! filter. Their task makes them again in its network namespace, the filter on
//! before the socket takes any packet. Refused by name: fanout, packets queued
//! and SOCK_PACKET sockets; a ring is mapped memory, which the memory dump
//! refuses. Not seen, so not kept: multicast and promiscuous memberships
//! (PACKET_ADD_MEMBERSHIP).

use std::os::fd::{AsFd, OwnedFd};

use super::socket::{
    check_task_netns, raw_or_dgram, raw_or_dgram_type, read_filter, read_opts, set_filter, set_opts, step_failed, Opt,
};
use super::{DumpCx, FdProbe, FileDesc, FileState, OpenCx};
use crate::error::Result;
use crate::image::pb::{self, SockType};
use crate::sys::kernel;
use crate::sys::{pidfd, sock, unix_sock};

const SOL_PACKET: i32 = libc::SOL_PACKET;

const OPTS: &[Opt] = &[
    (libc::SOL_SOCKET, libc::SO_RCVBUF, 0, 0, "SO_RCVBUF"),
    (libc::SOL_SOCKET, libc::SO_SNDBUF, 0, 0, "SO_SNDBUF"),
    (libc::SOL_SOCKET, libc::SO_PRIORITY, 0, 0, "SO_PRIORITY"),
    (libc::SOL_SOCKET, libc::SO_MARK, 0, 0, "SO_MARK"),
    (libc::SOL_SOCKET, libc::SO_TIMESTAMP, 0, 0, "SO_TIMESTAMP"),
    (libc::SOL_SOCKET, libc::SO_RCVLOWAT, 0, 0, "SO_RCVLOWAT"),
    (SOL_PACKET, kernel::PACKET_AUXDATA as i32, 0, 0, "PACKET_AUXDATA"),
    (SOL_PACKET, kernel::PACKET_ORIGDEV as i32, 0, 0, "PACKET_ORIGDEV"),
    (SOL_PACKET, kernel::PACKET_VNET_HDR as i32, 0, 0, "PACKET_VNET_HDR"),
    (SOL_PACKET, kernel::PACKET_VERSION as i32, 0, 0, "PACKET_VERSION"),
    (SOL_PACKET, kernel::PACKET_RESERVE as i32, 0, 0, "PACKET_RESERVE"),
    (SOL_PACKET, kernel::PACKET_LOSS as i32, 0, 0, "PACKET_LOSS"),
    (SOL_PACKET, kernel::PACKET_TIMESTAMP as i32, 0, 0, "PACKET_TIMESTAMP"),
    (SOL_PACKET, kernel::PACKET_QDISC_BYPASS as i32, 0, 0, "PACKET_QDISC_BYPASS"),
    (SOL_PACKET, kernel::PACKET_IGNORE_OUTGOING as i32, 0, 0, "PACKET_IGNORE_OUTGOING"),
];

fn what(s: &pb::PacketSocket) -> String {
    let ty = if s.r#type == SockType::Raw as i32 { "raw" } else { "datagram" };
    let on = if s.ifname.is_empty() { "every interface".to_string() } else { s.ifname.clone() };
    format!("{ty} packet socket (protocol {:#06x}) on {on}", u16::from_be(s.protocol as u16))
}

file_kind! { Packet: "packet socket", Packet, InTask;

    fn claims(&self, p: &FdProbe) -> bool {
        p.socket_domain() == Some(libc::AF_PACKET)
    }

    fn dump(&self, _cx: &mut DumpCx<'_>, p: &FdProbe, _id: u32) -> Result<FileState> {
        dump(p).map(FileState::Packet)
    }

    fn open(&self, _cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
        let FileState::Packet(s) = &f.state else { unreachable!("owned by Packet") };
        open(f, s)
    }
}

fn dump(p: &FdProbe) -> Result<pb::PacketSocket> {
    let copy = pidfd::getfd(p.pid, p.fd)?;
    let fd = copy.as_fd();
    let shown = unix_sock::describe(fd);
    let ty = raw_or_dgram(p, fd, &shown)?;
    check_task_netns(p, fd, &shown)?;
    let fanout = sock::get_int(fd, SOL_PACKET, kernel::PACKET_FANOUT as i32, "getsockopt(PACKET_FANOUT)")?;
    if fanout != 0 {
        return Err(p.refuse(&format!("{shown} in a fanout group ({fanout:#x})")));
    }
    if sock::inq(fd)? > 0 {
        return Err(p.refuse(&format!("{shown} with packets queued")));
    }
    let (ifindex, protocol) = sock::packet_local(fd)?;
    let ifname = if ifindex == 0 { String::new() } else { sock::if_name(fd, ifindex)? };
    Ok(pb::PacketSocket {
        r#type: ty as i32,
        protocol: protocol as u32,
        ifname,
        opts: read_opts(fd, OPTS.iter())?,
        filter: read_filter(fd)?,
    })
}

fn open(f: &FileDesc, s: &pb::PacketSocket) -> Result<OwnedFd> {
    let fail = step_failed(f, what(s));
    let ty = raw_or_dgram_type(s.r#type);
    // Protocol 0: it takes no packet before its filter is on and it is bound.
    let made = sock::socket(libc::AF_PACKET, ty, 0).map_err(|e| fail("socket", e))?;
    let fd = made.as_fd();
    set_opts(fd, &s.opts, OPTS, &fail)?;
    set_filter(fd, s.filter.as_ref(), &fail)?;
    let ifindex = match s.ifname.as_str() {
        "" => 0,
        name => sock::if_index(fd, name).map_err(|e| fail(&format!("interface {name}"), e))?,
    };
    sock::packet_bind(fd, ifindex, s.protocol as u16).map_err(|e| fail("bind", e))?;
    super::set_status(&made, f)?;
    Ok(made)
}
