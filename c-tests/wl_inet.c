/*
 * wl_inet: the inet sockets a server holds, none of them connected at dump
 * time, all on loopback with ports the kernel chose (bind port 0):
 *  - tcp4: a TCP listener on 127.0.0.1, backlog 7, O_NONBLOCK, with
 *    SO_REUSEADDR, TCP_NODELAY, SO_KEEPALIVE, TCP_KEEPIDLE 77, TCP_KEEPINTVL
 *    11, TCP_KEEPCNT 5 and TCP_DEFER_ACCEPT 3;
 *  - tcp6: a TCP listener on [::1], backlog 5, IPV6_V6ONLY and SO_REUSEPORT;
 *  - udp4: a UDP socket bound on 127.0.0.1, SO_RCVBUF 65536, SO_BROADCAST;
 *  - udpc: a UDP socket bound on 127.0.0.1 and connected to udp4;
 *  - udp6: an AF_INET6 UDP socket neither bound nor connected;
 *  - tcpc: a TCP socket bound on 127.0.0.1, neither listening nor connected
 *    (TCP_CLOSE), with SO_LINGER {1, 4};
 *  - tcpa: a connection tcp4 accepted, closed both ways (it shut its side,
 *    the peer closed): TCP_CLOSE on tcp4's port, SO_REUSEADDR from tcp4;
 *  - tcpk: the client side of a connection to a listener since closed, closed
 *    both ways (it shut its side first, so its TIME_WAIT holds its port);
 *  - a child that shares tcp4 (the same open file description) and sleeps
 *    until SIGTERM (it dies with the parent: PR_SET_PDEATHSIG).
 * Every option is recorded as getsockopt() answers right after setting it.
 *
 * Verify: each socket's domain, type, protocol, local address and port, and
 * SO_ACCEPTCONN are as at setup; every option reads back as recorded; tcp4 is
 * O_NONBLOCK and tcp6 is not; TCP_INFO shows the listeners in TCP_LISTEN with
 * their backlogs (tcpi_sacked) 7 and 5 and empty accept queues (tcpi_unacked),
 * tcpc, tcpa and tcpk in TCP_CLOSE; udpc's peer is udp4, no other socket has
 * one; tcpa and tcpk poll POLLIN|POLLRDHUP|POLLHUP, read end of file, fail a
 * send with EPIPE, a connect with EISCONN, and hold no data; tcpc polls no
 * POLLIN and reads ENOTCONN. Then
 * traffic: udpc -> udp4 (source udpc) and udp4 -> udpc datagrams arrive, udp6
 * reaches a fresh socket on ::1, tcp6 accepts a fresh connection; the parent
 * passes SIGTERM on, connects to tcp4 and sends "parent", the child polls,
 * accepts, reads "parent", answers "child" and exits 0.
 *
 * Self test: TCP_NODELAY is cleared on tcp4 after "ready".
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "workload.h"

#define WAIT_MS 2000

enum { TCP4, TCP6, UDP4, UDPC, UDP6, TCPC, TCPA, TCPK, NSOCK };

struct sock {
	const char *name;
	int family, type, proto, listening, backlog;
	int fd;
	struct sockaddr_storage addr;
	socklen_t alen;
};

static struct sock socks[NSOCK] = {
	[TCP4] = { "tcp4", AF_INET, SOCK_STREAM, IPPROTO_TCP, 1, 7, -1, { 0 }, 0 },
	[TCP6] = { "tcp6", AF_INET6, SOCK_STREAM, IPPROTO_TCP, 1, 5, -1, { 0 }, 0 },
	[UDP4] = { "udp4", AF_INET, SOCK_DGRAM, IPPROTO_UDP, 0, 0, -1, { 0 }, 0 },
	[UDPC] = { "udpc", AF_INET, SOCK_DGRAM, IPPROTO_UDP, 0, 0, -1, { 0 }, 0 },
	[UDP6] = { "udp6", AF_INET6, SOCK_DGRAM, IPPROTO_UDP, 0, 0, -1, { 0 }, 0 },
	[TCPC] = { "tcpc", AF_INET, SOCK_STREAM, IPPROTO_TCP, 0, 0, -1, { 0 }, 0 },
	[TCPA] = { "tcpa", AF_INET, SOCK_STREAM, IPPROTO_TCP, 0, 0, -1, { 0 }, 0 },
	[TCPK] = { "tcpk", AF_INET, SOCK_STREAM, IPPROTO_TCP, 0, 0, -1, { 0 }, 0 },
};

/* An integer option of a socket and what getsockopt() answered at setup. */
struct opt {
	int sk, level, name;
	const char *what;
	int val;
};

static struct opt opts[16];
static int nopts;

/* Records the option's current value (set_opt: after setting it to v). */
static void record_opt(int sk, int level, int name, const char *what)
{
	if (nopts == (int)(sizeof(opts) / sizeof(opts[0])))
		WL_DIE("too many options");
	opts[nopts++] = (struct opt){ sk, level, name, what, wl_sockopt_int(socks[sk].fd, level, name) };
}

static void set_opt(int sk, int level, int name, const char *what, int v)
{
	if (setsockopt(socks[sk].fd, level, name, &v, sizeof(v)))
		WL_DIE("%s: setsockopt %s=%d", socks[sk].name, what, v);
	record_opt(sk, level, name, what);
}

#define SET(sk, level, name, v) set_opt(sk, level, name, #name, v)

static const char *fmt_addr(const struct sockaddr_storage *a, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int n;

	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)a;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		n = snprintf(buf, size, "%s:%u", host, (unsigned)ntohs(in->sin_port));
	} else if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)a;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		n = snprintf(buf, size, "[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
	} else {
		n = snprintf(buf, size, "family %d", a->ss_family);
	}
	if (n < 0 || (size_t)n >= size)
		snprintf(buf, size, "?");
	return buf;
}

/* A loopback address of the family with port 0. */
static socklen_t loopback(int family, struct sockaddr_storage *a)
{
	memset(a, 0, sizeof(*a));
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)a;

		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*in);
	}
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)a;

	in6->sin6_family = AF_INET6;
	in6->sin6_addr = in6addr_loopback;
	return sizeof(*in6);
}

static void make(int sk)
{
	struct sock *s = &socks[sk];

	s->fd = socket(s->family, s->type | SOCK_CLOEXEC, s->proto);
	if (s->fd < 0)
		WL_DIE("%s: socket", s->name);
}

static void bind_lo(int sk)
{
	struct sockaddr_storage a;
	socklen_t len = loopback(socks[sk].family, &a);

	if (bind(socks[sk].fd, (struct sockaddr *)&a, len))
		WL_DIE("%s: bind", socks[sk].name);
}

static int wait_in(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, WAIT_MS) == 1;
}

/* Reads until `want` bytes, end of file or a 2 s silence; NUL-terminates. */
static ssize_t read_wait(int fd, char *buf, size_t want)
{
	size_t got = 0;

	while (got < want && wait_in(fd)) {
		ssize_t n = recv(fd, buf + got, want - got, MSG_DONTWAIT);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = 0;
	return (ssize_t)got;
}

/* A fresh TCP socket connected to `a` (non-blocking connect, 2 s), or -1. */
static int connect_to(const struct sockaddr_storage *a, socklen_t len)
{
	int c = socket(a->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct pollfd p = { .fd = c, .events = POLLOUT };

	if (c < 0)
		return -1;
	if (!connect(c, (const struct sockaddr *)a, len))
		return c;
	if (errno == EINPROGRESS && poll(&p, 1, WAIT_MS) == 1 && !wl_sockopt_int(c, SOL_SOCKET, SO_ERROR))
		return c;
	close(c);
	return -1;
}

/* The child: on SIGTERM accepts one connection on tcp4, reads "parent", answers "child". */
static void child(int fd, int ready_fd, pid_t parent)
{
	char buf[16];
	int c;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		_exit(3);
	if (write(ready_fd, "r", 1) != 1)
		_exit(3);
	close(ready_fd);
	wl_wait_for_term();
	if (!wait_in(fd))
		_exit(4);
	c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		_exit(5);
	if (read_wait(c, buf, 6) != 6 || strcmp(buf, "parent"))
		_exit(6);
	if (write(c, "child", 5) != 5)
		_exit(7);
	close(c);
	_exit(0);
}

/* A closed connection reads end of file and cannot send; tcpc (never connected) reads ENOTCONN. */
static void check_closed(int sk, int was_connected)
{
	struct pollfd p = { .fd = socks[sk].fd, .events = POLLIN | POLLOUT | POLLRDHUP };
	const short closed = POLLIN | POLLRDHUP | POLLHUP;
	int queued = -1;
	char b[4];
	ssize_t n;

	WL_CHECK(poll(&p, 1, 0) == 1, "%s: poll: %s", socks[sk].name, strerror(errno));
	if (was_connected)
		WL_CHECK((p.revents & (closed | POLLERR)) == closed, "%s: polls %#x, want POLLIN|POLLRDHUP|POLLHUP",
			 socks[sk].name, p.revents);
	else
		WL_CHECK(!(p.revents & (POLLIN | POLLRDHUP | POLLERR)), "%s: polls %#x", socks[sk].name, p.revents);
	WL_CHECK(!ioctl(socks[sk].fd, FIONREAD, &queued) && queued == 0, "%s: %d bytes to read", socks[sk].name,
		 queued);
	n = recv(socks[sk].fd, b, sizeof(b), MSG_DONTWAIT);
	if (was_connected)
		WL_CHECK(n == 0, "%s: recv %zd (%s), want end of file", socks[sk].name, n, n < 0 ? strerror(errno) : "");
	else
		WL_CHECK(n < 0 && errno == ENOTCONN, "%s: recv %zd (%s), want ENOTCONN", socks[sk].name, n,
			 n < 0 ? strerror(errno) : "");
	if (was_connected) {
		n = send(socks[sk].fd, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		WL_CHECK(n < 0 && errno == EPIPE, "%s: send %zd (%s), want EPIPE", socks[sk].name, n,
			 n < 0 ? strerror(errno) : "");
		n = connect(socks[sk].fd, (struct sockaddr *)&socks[TCP4].addr, socks[TCP4].alen);
		WL_CHECK(n < 0 && errno == EISCONN, "%s: connect %zd (%s), want EISCONN", socks[sk].name, n,
			 n < 0 ? strerror(errno) : "");
	}
}

/* Waits up to 2 s for a TCP socket to reach TCP_CLOSE. */
static void wait_tcp_close(int sk)
{
	struct tcp_info ti;
	socklen_t len;

	for (int i = 0; i < 200; i++) {
		len = sizeof(ti);
		if (!getsockopt(socks[sk].fd, IPPROTO_TCP, TCP_INFO, &ti, &len) && ti.tcpi_state == 7)
			return;
		usleep(10000);
	}
	WL_DIE("%s: never reached TCP_CLOSE", socks[sk].name);
}

static void check_sock(int sk)
{
	struct sock *s = &socks[sk];
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);
	char got[80], want[80];
	int v, r;

	v = wl_sockopt_int(s->fd, SOL_SOCKET, SO_DOMAIN);
	WL_CHECK(v == s->family, "%s: SO_DOMAIN %d, want %d", s->name, v, s->family);
	v = wl_sockopt_int(s->fd, SOL_SOCKET, SO_TYPE);
	WL_CHECK(v == s->type, "%s: SO_TYPE %d, want %d", s->name, v, s->type);
	v = wl_sockopt_int(s->fd, SOL_SOCKET, SO_PROTOCOL);
	WL_CHECK(v == s->proto, "%s: SO_PROTOCOL %d, want %d", s->name, v, s->proto);
	v = wl_sockopt_int(s->fd, SOL_SOCKET, SO_ACCEPTCONN);
	WL_CHECK(v == s->listening, "%s: SO_ACCEPTCONN %d, want %d", s->name, v, s->listening);

	memset(&a, 0, sizeof(a));
	r = getsockname(s->fd, (struct sockaddr *)&a, &len);
	WL_CHECK(!r && len == s->alen && !memcmp(&a, &s->addr, len), "%s: bound to %s, want %s", s->name,
		 r ? strerror(errno) : fmt_addr(&a, got, sizeof(got)), fmt_addr(&s->addr, want, sizeof(want)));

	memset(&a, 0, sizeof(a));
	len = sizeof(a);
	r = getpeername(s->fd, (struct sockaddr *)&a, &len);
	if (sk == UDPC) {
		WL_CHECK(!r && len == socks[UDP4].alen && !memcmp(&a, &socks[UDP4].addr, len),
			 "udpc: peer %s, want udp4 %s", r ? strerror(errno) : fmt_addr(&a, got, sizeof(got)),
			 fmt_addr(&socks[UDP4].addr, want, sizeof(want)));
	} else {
		WL_CHECK(r && errno == ENOTCONN, "%s: has a peer (%s)", s->name,
			 r ? strerror(errno) : fmt_addr(&a, got, sizeof(got)));
	}

	if (s->proto == IPPROTO_TCP) {
		struct tcp_info ti;
		int want_state = s->listening ? 10 /* TCP_LISTEN */ : 7 /* TCP_CLOSE */;

		memset(&ti, 0, sizeof(ti));
		len = sizeof(ti);
		r = getsockopt(s->fd, IPPROTO_TCP, TCP_INFO, &ti, &len);
		WL_CHECK(!r && ti.tcpi_state == want_state, "%s: tcpi_state %d, want %d (%s)", s->name,
			 ti.tcpi_state, want_state, r ? strerror(errno) : "ok");
		if (s->listening) {
			WL_CHECK(ti.tcpi_sacked == (unsigned)s->backlog, "%s: listen backlog %u, want %d",
				 s->name, ti.tcpi_sacked, s->backlog);
			WL_CHECK(ti.tcpi_unacked == 0, "%s: accept queue holds %u", s->name, ti.tcpi_unacked);
		}
	}
	if (sk == TCPA || sk == TCPK || sk == TCPC)
		check_closed(sk, sk != TCPC);
}

/* A datagram `msg` sent by `from` (to `to`'s address unless from is connected) arrives on `to`. */
static void check_dgram(int from, int to_fd, const struct sockaddr_storage *to, socklen_t tolen,
			const struct sockaddr_storage *src, socklen_t srclen, const char *msg, const char *what)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);
	char buf[64], got[80], want[80];
	ssize_t n = -1;

	memset(&a, 0, sizeof(a));
	buf[0] = 0;
	if (sendto(from, msg, strlen(msg), 0, (const struct sockaddr *)to, to ? tolen : 0) != (ssize_t)strlen(msg)) {
		wl_fail("%s: send: %s", what, strerror(errno));
		return;
	}
	if (wait_in(to_fd))
		n = recvfrom(to_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT, (struct sockaddr *)&a, &len);
	buf[n > 0 ? n : 0] = 0;
	WL_CHECK(n == (ssize_t)strlen(msg) && !strcmp(buf, msg), "%s: received \"%s\" (%zd), want \"%s\"", what, buf,
		 n, msg);
	if (src && n > 0)
		WL_CHECK(len == srclen && !memcmp(&a, src, len), "%s: source %s, want %s", what,
			 fmt_addr(&a, got, sizeof(got)), fmt_addr(src, want, sizeof(want)));
}

/*
 * tcpa: tcp4 accepts a connection (after a byte: TCP_DEFER_ACCEPT), shuts its
 * side, the client reads end of file and closes. tcpk: connects to a listener
 * of its own, shuts its side, the accepted end closes, then the listener.
 */
static void close_connections(void)
{
	struct sockaddr_storage la;
	socklen_t len = sizeof(la);
	char b[2];
	int c, l, a;

	if (getsockname(socks[TCP4].fd, (struct sockaddr *)&la, &len))
		WL_DIE("tcp4: getsockname");
	c = connect_to(&la, len);
	if (c < 0 || write(c, "a", 1) != 1 || !wait_in(socks[TCP4].fd))
		WL_DIE("tcpa: connecting to tcp4");
	socks[TCPA].fd = accept4(socks[TCP4].fd, NULL, NULL, SOCK_CLOEXEC);
	if (socks[TCPA].fd < 0 || read_wait(socks[TCPA].fd, b, 1) != 1 || shutdown(socks[TCPA].fd, SHUT_WR))
		WL_DIE("tcpa: accepting from tcp4");
	if (read_wait(c, b, 1) != 0)
		WL_DIE("tcpa: its client read no end of file");
	close(c);
	wait_tcp_close(TCPA);

	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	len = loopback(AF_INET, &la);
	if (l < 0 || bind(l, (struct sockaddr *)&la, len) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&la, &len))
		WL_DIE("tcpk: a listener");
	if (connect(socks[TCPK].fd, (struct sockaddr *)&la, len) || shutdown(socks[TCPK].fd, SHUT_WR))
		WL_DIE("tcpk: connecting");
	a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (a < 0 || read_wait(a, b, 1) != 0)
		WL_DIE("tcpk: the accepted end read no end of file");
	close(a);
	close(l);
	wait_tcp_close(TCPK);
}

int main(int argc, char **argv)
{
	struct linger lg = { 1, 4 }, lgot;
	struct sockaddr_storage fa;
	socklen_t len;
	char buf[16];
	int rp[2], v, c, a, fresh, st;
	pid_t pid;

	wl_scratch(argc, argv);
	wl_install_term();
	for (int i = 0; i < NSOCK; i++)
		if (i != TCPA)
			make(i);

	SET(TCP4, SOL_SOCKET, SO_REUSEADDR, 1);
	bind_lo(TCP4);
	if (listen(socks[TCP4].fd, 7))
		WL_DIE("tcp4: listen");
	SET(TCP4, IPPROTO_TCP, TCP_NODELAY, 1);
	SET(TCP4, SOL_SOCKET, SO_KEEPALIVE, 1);
	SET(TCP4, IPPROTO_TCP, TCP_KEEPIDLE, 77);
	SET(TCP4, IPPROTO_TCP, TCP_KEEPINTVL, 11);
	SET(TCP4, IPPROTO_TCP, TCP_KEEPCNT, 5);
	SET(TCP4, IPPROTO_TCP, TCP_DEFER_ACCEPT, 3);
	if (fcntl(socks[TCP4].fd, F_SETFL, fcntl(socks[TCP4].fd, F_GETFL) | O_NONBLOCK))
		WL_DIE("tcp4: O_NONBLOCK");

	SET(TCP6, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	SET(TCP6, SOL_SOCKET, SO_REUSEPORT, 1);
	bind_lo(TCP6);
	if (listen(socks[TCP6].fd, 5))
		WL_DIE("tcp6: listen");

	SET(UDP4, SOL_SOCKET, SO_RCVBUF, 65536);
	SET(UDP4, SOL_SOCKET, SO_BROADCAST, 1);
	bind_lo(UDP4);

	bind_lo(UDPC);
	bind_lo(TCPC);
	if (setsockopt(socks[TCPC].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)))
		WL_DIE("tcpc: SO_LINGER");
	len = sizeof(lg);
	if (getsockopt(socks[TCPC].fd, SOL_SOCKET, SO_LINGER, &lg, &len))
		WL_DIE("tcpc: read SO_LINGER");
	record_opt(UDP6, IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY");
	close_connections();
	record_opt(TCPA, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR");

	for (int i = 0; i < NSOCK; i++) {
		socks[i].alen = sizeof(socks[i].addr);
		if (getsockname(socks[i].fd, (struct sockaddr *)&socks[i].addr, &socks[i].alen))
			WL_DIE("%s: getsockname", socks[i].name);
	}
	if (connect(socks[UDPC].fd, (struct sockaddr *)&socks[UDP4].addr, socks[UDP4].alen))
		WL_DIE("udpc: connect to udp4");

	if (pipe2(rp, O_CLOEXEC))
		WL_DIE("pipe");
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		WL_DIE("fork");
	if (pid == 0) {
		close(rp[0]);
		for (int i = 0; i < NSOCK; i++)
			if (i != TCP4)
				close(socks[i].fd);
		child(socks[TCP4].fd, rp[1], getppid());
	}
	close(rp[1]);
	if (!wait_in(rp[0]) || read(rp[0], buf, 1) != 1)
		WL_DIE("the child did not get ready");
	close(rp[0]);

	wl_ready();
	if (wl_selftest_break()) {
		v = 0;
		setsockopt(socks[TCP4].fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v));
	}
	wl_wait_for_term();

	for (int i = 0; i < NSOCK; i++)
		check_sock(i);
	for (int i = 0; i < nopts; i++) {
		v = wl_sockopt_int(socks[opts[i].sk].fd, opts[i].level, opts[i].name);
		WL_CHECK(v == opts[i].val, "%s: %s is %d, want %d", socks[opts[i].sk].name, opts[i].what, v,
			 opts[i].val);
	}
	memset(&lgot, 0, sizeof(lgot));
	len = sizeof(lgot);
	v = getsockopt(socks[TCPC].fd, SOL_SOCKET, SO_LINGER, &lgot, &len);
	WL_CHECK(!v && lgot.l_onoff == lg.l_onoff && lgot.l_linger == lg.l_linger, "tcpc: SO_LINGER {%d, %d}, want {%d, %d}",
		 lgot.l_onoff, lgot.l_linger, lg.l_onoff, lg.l_linger);
	v = fcntl(socks[TCP4].fd, F_GETFL);
	WL_CHECK(v >= 0 && (v & O_NONBLOCK), "tcp4: file flags %#x lack O_NONBLOCK", v);
	v = fcntl(socks[TCP6].fd, F_GETFL);
	WL_CHECK(v >= 0 && !(v & O_NONBLOCK), "tcp6: file flags %#x have O_NONBLOCK", v);

	/* Traffic. */
	check_dgram(socks[UDPC].fd, socks[UDP4].fd, NULL, 0, &socks[UDPC].addr, socks[UDPC].alen, "udpc->udp4",
		    "udpc to udp4");
	check_dgram(socks[UDP4].fd, socks[UDPC].fd, &socks[UDPC].addr, socks[UDPC].alen, &socks[UDP4].addr,
		    socks[UDP4].alen, "udp4->udpc", "udp4 to udpc");
	fresh = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	len = loopback(AF_INET6, &fa);
	if (fresh < 0 || bind(fresh, (struct sockaddr *)&fa, len) || getsockname(fresh, (struct sockaddr *)&fa, &len))
		WL_DIE("a fresh udp socket on ::1");
	check_dgram(socks[UDP6].fd, fresh, &fa, len, NULL, 0, "udp6->fresh", "udp6 to a fresh socket on ::1");
	close(fresh);

	c = connect_to(&socks[TCP6].addr, socks[TCP6].alen);
	WL_CHECK(c >= 0, "tcp6: connecting to it: %s", strerror(errno));
	a = c >= 0 && wait_in(socks[TCP6].fd) ? accept4(socks[TCP6].fd, NULL, NULL, SOCK_CLOEXEC) : -1;
	WL_CHECK(c < 0 || a >= 0, "tcp6: accepts no connection: %s", strerror(errno));
	if (a >= 0)
		close(a);
	if (c >= 0)
		close(c);

	kill(pid, SIGTERM);
	c = connect_to(&socks[TCP4].addr, socks[TCP4].alen);
	WL_CHECK(c >= 0, "tcp4: connecting to it: %s", strerror(errno));
	if (c >= 0) {
		WL_CHECK(write(c, "parent", 6) == 6, "tcp4: writing \"parent\": %s", strerror(errno));
		WL_CHECK(read_wait(c, buf, 5) == 5 && !strcmp(buf, "child"), "tcp4: the child answered \"%s\"", buf);
		close(c);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			WL_DIE("waitpid");
	WL_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child sharing tcp4 ended with status %#x", st);
	return wl_finish();
}
