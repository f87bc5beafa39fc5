//! Special fds in one process: eventfd, timerfd, signalfd, epoll, unix socket pairs
//! (stream and datagram, with queued data), inotify and a deleted file, through
//! dump → kill → restore → verify, and through a dump that leaves the task running.

mod common;

use std::fs;
use std::time::Duration;

use common::{assert_exit, cycle, leave_running, Case};
use nix::sys::signal::Signal;

/// Dumps `pid` and expects the dump to fail saying `want`, with the task running
/// on, untraced.
fn refused_by_name(case: &Case, pid: i32, want: &str) {
    let out = case.dump(pid, &[]);
    let err = common::stderr(&out);
    assert!(!out.status.success(), "{}: the dump of pid {pid} succeeded", case.name);
    assert!(err.contains(want), "the error does not say {want:?}: {err}");
    common::assert_running_untraced(pid, "python after the refused dump");
}

#[test]
fn fd_kinds() {
    cycle("fd-kinds", "wl_fdkinds", &[], None);
}

/// fds that signal (O_ASYNC) keep their owner (the process, or one thread) and
/// their signal (F_SETSIG, with si_fd).
#[test]
fn fd_owners_and_signals() {
    cycle("fd-owner", "wl_fdowner", &[], None);
}

/// TCP listeners and UDP sockets of IPv4 and IPv6 (c-tests/wl_inet.c): their
/// addresses, options, backlogs and a UDP peer come back, a listener shared
/// with a child too, and traffic goes through them.
#[test]
fn inet_sockets_with_no_connection() {
    cycle("inet", "wl_inet", &[], None);
}

/// Established TCP connections on loopback with both ends in the tree
/// (c-tests/wl_tcpconn.c), dumped with --tcp-established: megabytes in flight
/// one way (part never sent), a greeting the other, come back byte for byte
/// with their addresses, peers and options, and talk on after the restore.
#[test]
fn established_tcp_connections_with_data_in_flight() {
    common::cycle_with("tcp-established", "wl_tcpconn", &[], &["--tcp-established"], None);
}

/// Without --tcp-established a connection is refused by name, and a dump
/// --leave-running with it lets both ends run on, connected (repair mode off).
#[test]
fn established_tcp_connections_refused_or_left_running() {
    let mut case = Case::new("tcp-established-lr");
    let pid = case.start_workload("wl_tcpconn", &[]);
    case.wait_ready(pid, Duration::from_secs(10));
    refused_by_name(&case, pid, "dump with --tcp-established to save it");
    case.dump_ok(pid, &["--tcp-established", "--leave-running"]);
    common::assert_running_untraced(pid, "the workload after dump --leave-running");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(30)), 0, "the workload");
    case.assert_pass(1);
}

/// A connection to a peer outside the checkpoint through the host's network
/// namespace is refused by name (nothing would keep the peer from a reset), and
/// the connection carries on after the refused dump: repair mode and the hold
/// filter are off again.
#[test]
fn a_connection_to_a_peer_outside_in_the_hosts_namespace_is_refused() {
    let mut case = Case::new("tcp-outside");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = r#"
import signal, socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
print("ready", flush=True)
signal.sigwait([signal.SIGTERM])
c.sendall(b"after")
ok = c.recv(5) == b"reply"
print("PASS" if ok else "FAIL: no reply", flush=True)
sys.exit(0 if ok else 1)
"#;
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", script]).arg(port.to_string());
    let pid = case.start(cmd);
    let (mut peer, _) = listener.accept().unwrap();
    case.wait_ready(pid, Duration::from_secs(10));
    let out = case.dump(pid, &["--tcp-established"]);
    assert!(!out.status.success(), "a connection to a peer outside was dumped");
    let err = common::stderr(&out);
    assert!(err.contains(&format!("TCP connection to 127.0.0.1:{port}, outside the checkpoint")), "{err}");
    common::assert_running_untraced(pid, "python after the refused dump");
    case.signal(pid, Signal::SIGTERM);
    use std::io::{Read, Write};
    let mut got = [0u8; 5];
    peer.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"after");
    peer.write_all(b"reply").unwrap();
    assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, "python");
    case.assert_pass(1);
}

/// `--ghost-limit` (criu's, as LXC's migrate() passes it): a deleted, still open
/// file above it fails the dump naming fd, size and limit, and the task runs on;
/// under it the file's contents come back.
#[test]
fn a_deleted_file_above_the_ghost_limit_is_refused() {
    let mut case = Case::new("ghost-limit");
    let script = r#"
import os, signal, sys
f = open(sys.argv[1], "w+b")
f.write(b"g" * (2 << 20))
f.flush()
os.unlink(sys.argv[1])
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
print("ready", flush=True)
signal.sigwait([signal.SIGTERM])
f.seek(0)
ok = f.read() == b"g" * (2 << 20)
print("PASS" if ok else "FAIL: contents", flush=True)
sys.exit(0 if ok else 1)
"#;
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", script]).arg(case.dir.join("ghost"));
    let pid = case.start(cmd);
    case.wait_ready(pid, Duration::from_secs(10));
    let out = case.dump(pid, &["--ghost-limit", "1M"]);
    assert!(!out.status.success(), "a 2 MiB deleted file was saved under --ghost-limit 1M");
    let err = common::stderr(&out);
    assert!(err.contains("is a deleted file of 2097152 bytes, above --ghost-limit 1048576"), "{err}");
    common::assert_running_untraced(pid, "python after the refused dump");
    case.dump_ok(pid, &["--ghost-limit", "3M"]);
    common::assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "python after dump");
    common::reap_gone(&[pid], "the dumped python");
    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(20)), 0, "the restored python");
    case.assert_pass(1);
}

/// Packet sockets as a DHCP client holds one (c-tests/wl_packet.c, in a network
/// namespace of its own): protocol, interface, options and a locked BPF filter
/// come back, and the filter still picks the packets.
#[test]
fn packet_sockets_with_a_filter() {
    cycle("packet", "wl_packet", &[], None);
}

/// Netlink sockets as `ip monitor` and a device manager hold them
/// (c-tests/wl_netlink.c, in a network namespace of its own): protocol, type,
/// port id, groups beyond the first bitmap word and an option come back, and
/// the route socket still gets link events and answers to a dump.
#[test]
fn netlink_sockets_with_their_groups() {
    cycle("netlink-wl", "wl_netlink", &[], None);
}

#[test]
fn inet_sockets_leave_running() {
    leave_running("inet-leave-running", "wl_inet");
}

#[test]
fn fd_kinds_leave_running() {
    leave_running("fd-kinds-leave-running", "wl_fdkinds");
}

/// A real event loop: python3 asyncio (an epoll set and a socketpair self-pipe)
/// counting into a file goes on from where it was after a restore.
#[test]
fn python_asyncio_counts_on() {
    let mut case = Case::new("asyncio");
    let counter = case.dir.join("counter");
    let script = r#"
import asyncio, os, signal, sys
path = sys.argv[1]
async def main():
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    n = 0
    while not stop.is_set():
        n += 1
        with open(path + ".tmp", "w") as f:
            f.write(str(n))
        os.replace(path + ".tmp", path)
        try:
            await asyncio.wait_for(stop.wait(), 0.01)
        except asyncio.TimeoutError:
            pass
asyncio.run(main())
"#;
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", script]).arg(&counter);
    let pid = case.start(cmd);
    case.wait_ready(pid, Duration::from_secs(10));
    let read = || fs::read_to_string(&counter).ok().and_then(|s| s.trim().parse::<u64>().ok());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while read().unwrap_or(0) < 10 {
        assert!(std::time::Instant::now() < deadline, "asyncio program is not counting");
        std::thread::sleep(Duration::from_millis(20));
    }
    case.dump_ok(pid, &[]);
    common::assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "original");
    let at_dump = read().expect("counter after dump");
    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while read().unwrap_or(0) <= at_dump {
        assert!(std::time::Instant::now() < deadline, "restored asyncio program does not count on from {at_dump}");
        std::thread::sleep(Duration::from_millis(20));
    }
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(30)), 0, "ccr restore (asyncio program's status)");
}

/// memfds held as fds and mapped by a parent and its child: contents, holes,
/// seals, names, offsets, and one object for every fd and mapping.
#[test]
fn memfd() {
    cycle("memfd", "wl_memfd", &[], None);
}

#[test]
fn memfd_leave_running() {
    leave_running("memfd-leave-running", "wl_memfd");
}

/// A character device is reopened by path only if the path is still that device:
/// a node that now names another device is refused by name, and once it names
/// the right one again the restore works.
#[test]
fn char_device_must_be_the_same_device() {
    use nix::sys::stat::{mknod, Mode, SFlag};
    let mut case = Case::new("chr-rdev");
    let node = case.dir.join("dev-null");
    let make = |major, minor| {
        let _ = fs::remove_file(&node);
        mknod(&node, SFlag::S_IFCHR, Mode::from_bits_truncate(0o666), nix::sys::stat::makedev(major, minor))
            .expect("mknod (root, and a filesystem without nodev)");
    };
    make(1, 3);
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(format!("exec 3<>{}; echo ready; exec sleep 1000", node.display()));
    let pid = case.start(cmd);
    case.wait_ready(pid, Duration::from_secs(10));
    case.dump_ok(pid, &[]);
    common::assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "original");

    make(1, 5);
    let out = case.ccr(&["restore", "-D", &case.images.display().to_string()]);
    assert!(!out.status.success(), "restore opened {} as the wrong device", node.display());
    let err = common::stderr(&out);
    assert!(err.contains("is device 1:5 now, the checkpoint had device 1:3"), "{err}");
    // Nothing of the failed restore runs on (what was forked is reparented to us,
    // a subreaper, and reaped here).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while common::exists(pid) {
        assert!(common::state(pid) == Some('Z'), "a failed restore left pid {pid} running");
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), Some(nix::sys::wait::WaitPidFlag::WNOHANG));
        assert!(std::time::Instant::now() < deadline, "pid {pid} is not reaped");
        std::thread::sleep(Duration::from_millis(10));
    }

    make(1, 3);
    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    let target = fs::read_link(format!("/proc/{pid}/fd/3")).unwrap();
    assert_eq!(target, node, "fd 3 of the restored task");
    case.signal(pid, Signal::SIGKILL);
}

/// Pty pairs both of whose ends are in the tree (c-tests/wl_pty.c): same indexes,
/// the controlling terminal and foreground group, termios, window size, packet,
/// lock and exclusive modes, and the bytes queued both ways (a partial line stays
/// partial, nothing is echoed twice).
#[test]
fn pty_pairs() {
    cycle("pty", "wl_pty", &[], None);
}

/// Reading a pty's queued bytes at dump puts them straight back.
#[test]
fn pty_pairs_leave_running() {
    leave_running("pty-leave-running", "wl_pty");
}

/// python3's pty.openpty with a line typed into the master and not read yet: the
/// line is read from the slave after restore.
#[test]
fn python_pty_with_a_queued_line() {
    let mut case = Case::new("python-pty");
    let script = r#"
import os, pty, signal, sys
m, s = pty.openpty()
name = os.ttyname(s)
os.write(m, b"typed\n")
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
print("ready", flush=True)
while not stop:
    signal.pause()
ok = os.read(s, 6) == b"typed\n" and os.ttyname(s) == name
print("PASS" if ok else "FAIL: the typed line is gone", flush=True)
sys.exit(0 if ok else 1)
"#;
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", script]);
    let pid = case.start(cmd);
    case.wait_ready(pid, Duration::from_secs(10));
    case.dump_ok(pid, &[]);
    common::assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "python after dump");
    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(20)), 0, "python (the pty still holds its line)");
}

/// A pty slave whose master is outside the tree (here: the test's) would come back
/// connected to nothing: refused by name, with the --external key that lets it
/// go; the program runs on.
#[test]
fn a_pty_slave_whose_master_is_outside_is_refused_by_name() {
    let mut case = Case::new("pty-outside");
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let mut cmd = std::process::Command::new("python3");
    let slave = nix::unistd::ttyname(&pty.slave).expect("ttyname");
    let script = "import os,signal,sys; t = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY); \
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM]); print('ready', flush=True); \
        signal.sigwait([signal.SIGTERM]); sys.exit(0)";
    cmd.args(["-c", script]).arg(&slave);
    let pid = case.start(cmd);
    case.wait_ready(pid, Duration::from_secs(10));
    refused_by_name(&case, pid, "pty slave whose master is not in the tree (let it go with --external tty[");
    drop(pty.master);
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, "python");
}

/// A socket pair's end whose peer was closed (as java.nio leaves them): the bytes
/// queued in it still read back after restore, then end of file.
#[test]
fn a_socket_whose_peer_was_closed() {
    let mut case = Case::new("orphan-socket");
    let script = r#"
import signal, socket, sys
a, b = socket.socketpair()
b.sendall(b"queued")
b.close()
d1, d2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
d2.send(b"datagram")
d2.close()
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
print("ready", flush=True)
while not stop:
    signal.pause()
ok = a.recv(100) == b"queued" and a.recv(100) == b"" and d1.recv(100) == b"datagram"
print("PASS" if ok else "FAIL: the closed pair's queue", flush=True)
sys.exit(0 if ok else 1)
"#;
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", script]);
    let pid = case.start(cmd);
    case.wait_ready(pid, Duration::from_secs(10));
    case.dump_ok(pid, &[]);
    common::assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "original");
    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(30)), 0, "ccr restore (python's status)");
    case.assert_pass(1);
}

/// A socket ccr cannot save yet is refused naming it as it is: an established
/// TCP connection, by its peer's address and its own.
#[test]
fn a_tcp_connection_is_refused_as_what_it_is() {
    let mut case = Case::new("tcp-connection");
    let port_file = case.dir.join("port");
    let script = r#"
import signal, socket, sys
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen()
c = socket.create_connection(l.getsockname())
a, _ = l.accept()
open(sys.argv[1], "w").write(str(l.getsockname()[1]))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("ready", flush=True)
while True:
    signal.pause()
"#;
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", script]).arg(&port_file);
    let pid = case.start(cmd);
    case.wait_ready(pid, Duration::from_secs(10));
    let port = fs::read_to_string(&port_file).unwrap();
    refused_by_name(&case, pid, &format!("TCP connection to 127.0.0.1:{port}"));
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, "python");
}

/// A closed TCP connection ccr cannot make again is refused by name and keeps
/// what it held: one reset by its peer (its error not read yet: ccr must not
/// read it away) and one closed with bytes not read yet.
#[test]
fn closed_tcp_connections_with_state_left_are_refused() {
    let script = r#"
import errno, signal, socket, struct, sys, time
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen()
c = socket.create_connection(l.getsockname())
a, _ = l.accept()
if sys.argv[1] == "reset":
    a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    a.close()
    keep = c
else:
    a.shutdown(socket.SHUT_WR)
    c.recv(1)
    c.sendall(b"unread")
    c.close()
    keep = a
time.sleep(0.2)
signal.signal(signal.SIGTERM, lambda *_: None)
print("ready", flush=True)
signal.pause()
if sys.argv[1] == "reset":
    ok = keep.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNRESET
else:
    ok = keep.recv(64) == b"unread" and keep.recv(64) == b""
print("PASS" if ok else "FAIL: state lost", flush=True)
sys.exit(0 if ok else 1)
"#;
    for (mode, named) in [("reset", "with an error not read yet"), ("unread", "with 6 bytes not read yet")] {
        let mut case = Case::new(&format!("tcp-closed-{mode}"));
        let mut cmd = std::process::Command::new("python3");
        cmd.args(["-c", script, mode]);
        let pid = case.start(cmd);
        case.wait_ready(pid, Duration::from_secs(10));
        refused_by_name(&case, pid, named);
        case.signal(pid, Signal::SIGTERM);
        assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, &format!("python ({mode})"));
        case.assert_pass(1);
    }
}

/// A packet socket in a fanout group (its group's other members and balance
/// are not saved) is refused by name, and the task runs on.
#[test]
fn a_packet_socket_in_a_fanout_group_is_refused() {
    let mut case = Case::new("packet-fanout");
    let script = r#"
import signal, socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.bind(("lo", 0x0806))
s.setsockopt(263, 18, 4242)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("ready", flush=True)
while True:
    signal.pause()
"#;
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", script]);
    let pid = case.start(cmd);
    case.wait_ready(pid, Duration::from_secs(10));
    refused_by_name(&case, pid, "packet socket in a fanout group");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, "python");
}

/// A netlink socket as `ip monitor` holds one (NETLINK_ROUTE, bound, in the link
/// and address groups and group 33, beyond the first bitmap word, with
/// NETLINK_EXT_ACK): after a restore its port id, groups and option are back,
/// and the kernel answers a link dump on it.
#[test]
fn a_netlink_socket_keeps_its_port_and_groups() {
    let mut case = Case::new("netlink");
    let script = r#"
import signal, socket, struct, sys
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
s.bind((0, 0x1 | 0x10))
s.setsockopt(270, 1, 33)
s.setsockopt(270, 11, 1)
before = (s.getsockname(), s.getsockopt(270, 9, 8), s.getsockopt(270, 11))
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
print("ready", flush=True)
signal.sigwait([signal.SIGTERM])
after = (s.getsockname(), s.getsockopt(270, 9, 8), s.getsockopt(270, 11))
# RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, then an ifinfomsg.
s.send(struct.pack("=IHHII", 32, 18, 0x301, 1, 0) + bytes(16))
s.settimeout(5)
reply = s.recv(65536)
kind = struct.unpack("=IH", reply[:6])[1]
ok = before == after and kind == 16
print("PASS" if ok else "FAIL: %r %r reply %d" % (before, after, kind), flush=True)
sys.exit(0 if ok else 1)
"#;
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", script]);
    let pid = case.start(cmd);
    case.wait_ready(pid, Duration::from_secs(10));
    case.dump_ok(pid, &[]);
    common::assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "python after dump");
    common::reap_gone(&[pid], "the dumped python");
    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(20)), 0, "python (its netlink socket's checks)");
    case.assert_pass(1);
}

/// One GET of `path` from the HTTP server on 127.0.0.1:`port`: the response.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the HTTP server");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(c, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    out
}

/// A real server: python's http.server listening on 127.0.0.1 answers a GET,
/// is dumped and killed, and after restore answers again on the same port with
/// the same file (its listener is back with its options and backlog).
#[test]
fn python_http_server_listens_again_after_restore() {
    let mut case = Case::new("http-server");
    let root = case.dir.join("www");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("hello.txt"), "hello from before the dump\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = std::process::Command::new("python3");
    // Its log line per request goes to stderr; "ready" once it answers.
    cmd.args(["-u", "-c", HTTP_SERVER]).arg(port.to_string()).arg(&root);
    let pid = case.start(cmd);
    case.wait_ready(pid, Duration::from_secs(20));
    let before = http_get(port, "/hello.txt");
    assert!(before.starts_with("HTTP/1.0 200") && before.contains("hello from before the dump"), "{before}");
    case.dump_ok(pid, &[]);
    common::assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "the server after dump");
    common::reap_gone(&[pid], "the dumped server");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "something answers on {port} after the dump");
    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    for _ in 0..3 {
        let after = http_get(port, "/hello.txt");
        assert!(after.starts_with("HTTP/1.0 200") && after.contains("hello from before the dump"), "{after}");
    }
    assert!(http_get(port, "/missing").starts_with("HTTP/1.0 404"), "a missing file is not a 404");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(20)), 0, "the restored server");
    case.assert_pass(1);
}

/// python's http.server on 127.0.0.1:argv[1] serving argv[2], with SO_REUSEADDR
/// as it sets it; on SIGTERM it checks its listener kept its address and prints
/// PASS.
const HTTP_SERVER: &str = r#"
import functools, http.server, signal, socket, sys
port, root = int(sys.argv[1]), sys.argv[2]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
srv = http.server.HTTPServer(("127.0.0.1", port), handler)
def stop(*_):
    s = srv.socket
    ok = s.getsockname() == ("127.0.0.1", port) and s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
    print("PASS" if ok else "FAIL: listener %r" % (s.getsockname(),), flush=True)
    sys.exit(0 if ok else 1)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
srv.serve_forever(poll_interval=0.2)
"#;

/// The numbers `n K` a typescript holds, in order.
fn typescript_numbers(path: &std::path::Path) -> Vec<u64> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines().filter_map(|l| l.trim_end().strip_prefix("n ")?.parse().ok()).collect()
}

/// util-linux script: it holds a pty's master, polls it with a signalfd and
/// records what a shell on the slave prints. After restore it records on, the
/// shell's count going on from where it was, no line lost or repeated (script
/// quits when its poll returns EINTR: the interrupted poll is started again).
#[test]
fn script_records_on() {
    let mut case = Case::new("script");
    let ts = case.dir.join("typescript");
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-q", "-f", "-c", "i=0; while :; do i=$((i+1)); echo \"n $i\"; sleep 0.05; done"]).arg(&ts);
    let pid = case.start(cmd);
    let wait_for = |n: u64| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while typescript_numbers(&ts).last().copied().unwrap_or(0) < n {
            assert!(
                std::time::Instant::now() < deadline,
                "the typescript did not reach {n}: {:?}",
                typescript_numbers(&ts)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for(3);
    let tree = common::tree_pids(pid);
    case.dump_ok(pid, &[]);
    common::assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "script after dump");
    common::reap_gone(&tree, "the dumped script");
    let at_dump = typescript_numbers(&ts).last().copied().unwrap_or(0);
    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    wait_for(at_dump + 5);
    let seen = typescript_numbers(&ts);
    let expected: Vec<u64> = (1..=seen.len() as u64).collect();
    assert_eq!(seen, expected, "the shell's count in the typescript is not 1, 2, 3, ... without a gap");
    case.signal(pid, Signal::SIGKILL);
    let _ = case.wait_exit(rp, Duration::from_secs(10));
}

/// A python server with a unix stream socket listening on a path (mode 0660) and
/// a datagram socket bound to another (syslog's /dev/log kind) with a message
/// queued: after restore a client connects and is answered, and the datagram
/// socket reads the queued message, then a new one. The old socket files are
/// taken over (a dead socket's), not refused.
#[test]
fn python_unix_server_listening_and_datagram() {
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;
    let mut case = Case::new("unix-server");
    let (stream, dgram) = (case.dir.join("srv.sock"), case.dir.join("log.sock"));
    let script = r#"
import os, signal, socket, sys
stream, dgram = sys.argv[1], sys.argv[2]
l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); l.bind(stream); l.listen(4)
os.chmod(stream, 0o660)
d = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); d.bind(dgram)
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"first", dgram)
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGUSR1])
print("ready", flush=True)
signal.sigwait([signal.SIGUSR1])
c, _ = l.accept()
ok = c.recv(16) == b"ping"
c.sendall(b"pong")
got = [d.recv(64), d.recv(64)]
ok = ok and got == [b"first", b"second"]
signal.sigwait([signal.SIGTERM])
print("PASS" if ok else "FAIL: " + repr(got), flush=True)
sys.exit(0 if ok else 1)
"#;
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", script]).arg(&stream).arg(&dgram);
    let pid = case.start(cmd);
    case.wait_ready(pid, Duration::from_secs(10));
    case.dump_ok(pid, &[]);
    common::assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "python after dump");
    common::reap_gone(&[pid], "the dumped server");
    let rp = case.spawn_restore(&[]);
    assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
    assert_eq!(fs::metadata(&stream).unwrap().permissions().mode() & 0o777, 0o660, "the socket file's mode");
    let mut c = std::os::unix::net::UnixStream::connect(&stream).expect("connect to the restored listener");
    case.signal(pid, Signal::SIGUSR1);
    c.write_all(b"ping").unwrap();
    let mut answer = [0u8; 4];
    c.read_exact(&mut answer).expect("an answer");
    assert_eq!(&answer, b"pong");
    std::os::unix::net::UnixDatagram::unbound().unwrap().send_to(b"second", &dgram).expect("a datagram");
    std::thread::sleep(Duration::from_millis(200));
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(rp, Duration::from_secs(20)), 0, "python (its sockets' checks)");
    case.assert_pass(1);
}

/// 10000 bytes typed into a pty whose slave reads nothing, in raw mode: more than
/// its line discipline holds (4095), the rest waiting in front of it. All of it
/// is read after a dump that leaves the program running, and after a restore.
const BIG_INPUT: &str = r#"
import os, pty, signal, sys, termios, tty
m, s = pty.openpty()
tty.setraw(s)
os.set_blocking(m, False)
sent = 0
data = bytes(i % 251 for i in range(10000))
while sent < len(data):
    try:
        sent += os.write(m, data[sent:])
    except BlockingIOError:
        break
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
print("ready", flush=True)
signal.sigwait([signal.SIGTERM])
os.set_blocking(s, False)
got = b""
while True:
    try:
        chunk = os.read(s, 65536)
    except BlockingIOError:
        import select
        if not select.select([s], [], [], 0.5)[0]:
            break
        continue
    got += chunk
ok = got == data[:sent] and sent == len(data)
print("PASS" if ok else f"FAIL: wrote {sent} read {len(got)}", flush=True)
sys.exit(0 if ok else 1)
"#;

fn big_input(name: &str, leave_running: bool) {
    let mut case = Case::new(name);
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", BIG_INPUT]);
    let pid = case.start(cmd);
    case.wait_ready(pid, Duration::from_secs(10));
    if leave_running {
        case.dump_ok(pid, &["--leave-running"]);
        case.signal(pid, Signal::SIGTERM);
        assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, "python after a --leave-running dump");
    } else {
        case.dump_ok(pid, &[]);
        common::assert_killed(case.wait_exit(pid, Duration::from_secs(10)), Signal::SIGKILL, "python after dump");
        let rp = case.spawn_restore(&[]);
        assert_eq!(case.wait_pidfile(rp, Duration::from_secs(30)), pid);
        case.signal(pid, Signal::SIGTERM);
        assert_exit(case.wait_exit(rp, Duration::from_secs(20)), 0, "python after restore");
    }
    case.assert_pass(1);
}

#[test]
fn pty_input_beyond_its_line_discipline() {
    big_input("pty-big-input", false);
}

#[test]
fn pty_input_beyond_its_line_discipline_leave_running() {
    big_input("pty-big-input-leave-running", true);
}

/// A pty whose output the program stopped (tcflow TCOOFF) with bytes queued:
/// putting them back would wait for ever, so the dump refuses it by name and
/// leaves the pty as it was (still stopped, the bytes there, termios unchanged).
#[test]
fn a_pty_with_stopped_output_is_refused_by_name() {
    let mut case = Case::new("pty-stopped");
    let script = r#"
import os, pty, signal, sys, termios
m, s = pty.openpty()
os.write(s, b"hello\n")
before = termios.tcgetattr(s)
termios.tcflow(s, termios.TCOOFF)
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
print("ready", flush=True)
signal.sigwait([signal.SIGTERM])
os.set_blocking(s, False)
try:
    os.write(s, b"x")
    still_stopped = False
except BlockingIOError:
    still_stopped = True
termios.tcflow(s, termios.TCOON)
ok = still_stopped and termios.tcgetattr(s) == before and os.read(m, 64).startswith(b"hello\r\n")
print("PASS" if ok else "FAIL", flush=True)
sys.exit(0 if ok else 1)
"#;
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", script]);
    let pid = case.start(cmd);
    case.wait_ready(pid, Duration::from_secs(10));
    refused_by_name(&case, pid, "its output is stopped");
    case.signal(pid, Signal::SIGTERM);
    assert_exit(case.wait_exit(pid, Duration::from_secs(20)), 0, "python (its pty as it was)");
    case.assert_pass(1);
}
