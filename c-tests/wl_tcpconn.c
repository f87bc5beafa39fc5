/*
 * wl_tcpconn: established TCP connections on loopback, both ends in the tree
 * (dumped with --tcp-established), with data in flight both ways:
 *  - conn: the parent's client end, connected to its own listener on
 *    127.0.0.1 (still listening), TCP_NODELAY, SO_REUSEADDR (repair mode
 *    forces reuse, and leaving it clears the setting) and O_NONBLOCK; the child holds
 *    the accepted end (SO_KEEPALIVE, TCP_KEEPIDLE 99);
 *  - the parent wrote "hello from the client" the child has not read;
 *  - the child wrote a pattern until its send buffer was full: part of it
 *    waits in the parent's receive queue, part in the child's send queue
 *    (some of it never sent: the parent's window is shut);
 *  - conn6: the same on [::1] between two fds of the parent, nothing queued;
 *  - connu: two fds of the parent on 127.0.0.1; the client end drops every
 *    packet it gets (a classic BPF filter), so 10000 bytes it sent wait
 *    unacknowledged in its send queue while the other end holds them unread.
 * Verify (the parent passes SIGTERM to the child): both ends are
 * ESTABLISHED with the addresses and peers they had and their options; the
 * parent reads the whole pattern, byte for byte, the child the greeting, then
 * a ping-pong goes both ways on conn and conn6, and the listener accepts a
 * fresh connection. connu's client end drops its filter; its peer reads the
 * 10000 bytes once, and a ping-pong goes through. The child exits 0 or 1 with its own checks.
 *
 * Self test: the parent reads one byte of the pattern after "ready".
 */
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "workload.h"

#define WAIT_MS 5000
#define GREETING "hello from the client"

static size_t pattern_len;

static unsigned char pattern_at(size_t i)
{
	return (unsigned char)(i * 7 + i / 251 + 3);
}

static void set_int(int fd, int level, int name, int v, const char *what)
{
	if (setsockopt(fd, level, name, &v, sizeof(v)))
		WL_DIE("setsockopt %s", what);
}

static int wait_fd(int fd, short ev)
{
	struct pollfd p = { .fd = fd, .events = ev };

	return poll(&p, 1, WAIT_MS) == 1;
}

/* Reads exactly `len` bytes (waiting up to 5 s each time); the count read. */
static size_t read_all(int fd, unsigned char *buf, size_t len)
{
	size_t got = 0;

	while (got < len && wait_fd(fd, POLLIN)) {
		ssize_t n = recv(fd, buf + got, len - got, MSG_DONTWAIT);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

static int send_all(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len && wait_fd(fd, POLLOUT)) {
		ssize_t n = send(fd, (const char *)buf + done, len - done, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return done == len ? 0 : -1;
}

struct ends {
	struct sockaddr_storage local, peer;
	socklen_t llen, plen;
};

static void record(int fd, struct ends *e)
{
	e->llen = sizeof(e->local);
	e->plen = sizeof(e->peer);
	if (getsockname(fd, (struct sockaddr *)&e->local, &e->llen) ||
	    getpeername(fd, (struct sockaddr *)&e->peer, &e->plen))
		WL_DIE("getsockname/getpeername");
}

static void check_conn(int fd, const struct ends *e, const char *name)
{
	struct ends now;
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&now, 0, sizeof(now));
	now.llen = sizeof(now.local);
	now.plen = sizeof(now.peer);
	WL_CHECK(!getsockname(fd, (struct sockaddr *)&now.local, &now.llen) && now.llen == e->llen &&
			 !memcmp(&now.local, &e->local, e->llen),
		 "%s: its local address changed", name);
	WL_CHECK(!getpeername(fd, (struct sockaddr *)&now.peer, &now.plen) && now.plen == e->plen &&
			 !memcmp(&now.peer, &e->peer, e->plen),
		 "%s: its peer changed (%s)", name, strerror(errno));
	memset(&ti, 0, sizeof(ti));
	WL_CHECK(!getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) && ti.tcpi_state == 1, "%s: tcpi_state %d",
		 name, ti.tcpi_state);
}

/* One message each way: `a` sends `ping`, `b` reads it and answers `pong`. */
static void ping_pong(int a, int b, const char *name)
{
	unsigned char buf[16] = { 0 };

	WL_CHECK(!send_all(a, "ping", 4), "%s: send ping: %s", name, strerror(errno));
	WL_CHECK(read_all(b, buf, 4) == 4 && !memcmp(buf, "ping", 4), "%s: ping arrived as \"%s\"", name, buf);
	memset(buf, 0, sizeof(buf));
	WL_CHECK(!send_all(b, "pong", 4), "%s: send pong: %s", name, strerror(errno));
	WL_CHECK(read_all(a, buf, 4) == 4 && !memcmp(buf, "pong", 4), "%s: pong arrived as \"%s\"", name, buf);
}

/* The child's half of a ping-pong on conn: reads ping, answers pong. */
static void answer(int fd, const char *name)
{
	unsigned char buf[16] = { 0 };

	WL_CHECK(read_all(fd, buf, 4) == 4 && !memcmp(buf, "ping", 4), "%s: ping arrived as \"%s\"", name, buf);
	WL_CHECK(!send_all(fd, "pong", 4), "%s: send pong: %s", name, strerror(errno));
}

/* The parent's half: sends ping, reads pong. */
static void ask(int fd, const char *name)
{
	unsigned char buf[16] = { 0 };

	WL_CHECK(!send_all(fd, "ping", 4), "%s: send ping: %s", name, strerror(errno));
	WL_CHECK(read_all(fd, buf, 4) == 4 && !memcmp(buf, "pong", 4), "%s: pong arrived as \"%s\"", name, buf);
}

/* A listener on the loopback of `family`, port 0. */
static int listener(int family, struct sockaddr_storage *a, socklen_t *len)
{
	int l = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(a, 0, sizeof(*a));
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)a;

		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)a;

		in6->sin6_family = AF_INET6;
		in6->sin6_addr = in6addr_loopback;
		*len = sizeof(*in6);
	}
	if (l < 0 || bind(l, (struct sockaddr *)a, *len) || listen(l, 4) || getsockname(l, (struct sockaddr *)a, len))
		WL_DIE("a listener");
	return l;
}

/* A connection to `l`: the client end in *c, the accepted one returned. */
static int connect_pair(int l, const struct sockaddr_storage *a, socklen_t len, int *c)
{
	int s;

	*c = socket(a->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*c < 0 || connect(*c, (const struct sockaddr *)a, len))
		WL_DIE("connect");
	s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0)
		WL_DIE("accept");
	return s;
}

static void child(int srv, int ready_fd, pid_t parent)
{
	unsigned char buf[sizeof(GREETING)] = { 0 };
	struct ends e;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		_exit(3);
	record(srv, &e);
	if (write(ready_fd, "r", 1) != 1)
		_exit(3);
	close(ready_fd);
	wl_wait_for_term();
	check_conn(srv, &e, "child's end");
	WL_CHECK(wl_sockopt_int(srv, SOL_SOCKET, SO_KEEPALIVE) == 1, "child's end: SO_KEEPALIVE lost");
	WL_CHECK(wl_sockopt_int(srv, IPPROTO_TCP, TCP_KEEPIDLE) == 99, "child's end: TCP_KEEPIDLE %d",
		 wl_sockopt_int(srv, IPPROTO_TCP, TCP_KEEPIDLE));
	WL_CHECK(read_all(srv, buf, strlen(GREETING)) == strlen(GREETING) && !strcmp((char *)buf, GREETING),
		 "child's end: the greeting arrived as \"%s\"", buf);
	answer(srv, "conn (child's side)");
	_exit(wl_failures ? 1 : 0);
}

int main(int argc, char **argv)
{
	struct sockaddr_storage la, la6;
	socklen_t llen, llen6;
	struct ends e, e6, eu;
	unsigned char *got, *chunk;
	static unsigned char unacked[10000], back[10000];
	struct sock_filter drop[] = { BPF_STMT(BPF_RET | BPF_K, 0) };
	struct sock_fprog drop_all = { 1, drop };
	int l, l6, c, srv, c6, s6, cu, su, rp[2], st, fresh, a;
	size_t n;
	pid_t pid;

	wl_scratch(argc, argv);
	wl_install_term();
	l = listener(AF_INET, &la, &llen);
	srv = connect_pair(l, &la, llen, &c);
	set_int(c, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
	set_int(c, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
	set_int(srv, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
	set_int(srv, IPPROTO_TCP, TCP_KEEPIDLE, 99, "TCP_KEEPIDLE");
	if (send_all(c, GREETING, strlen(GREETING)))
		WL_DIE("sending the greeting");
	/* Fill the parent's window and the child's send buffer. */
	chunk = malloc(65536);
	if (!chunk)
		WL_DIE("malloc");
	for (;;) {
		for (size_t i = 0; i < 65536; i++)
			chunk[i] = pattern_at(pattern_len + i);
		ssize_t w = send(srv, chunk, 65536, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (w <= 0)
			break;
		pattern_len += (size_t)w;
	}
	free(chunk);
	if (pattern_len == 0)
		WL_DIE("nothing could be sent");
	if (fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK))
		WL_DIE("O_NONBLOCK");
	record(c, &e);

	su = connect_pair(l, &la, llen, &cu);
	if (setsockopt(cu, SOL_SOCKET, SO_ATTACH_FILTER, &drop_all, sizeof(drop_all)))
		WL_DIE("connu: SO_ATTACH_FILTER");
	for (size_t i = 0; i < sizeof(unacked); i++)
		unacked[i] = pattern_at(i + 11);
	if (send_all(cu, unacked, sizeof(unacked)))
		WL_DIE("connu: send");
	for (int i = 0; i < 200; i++) {
		int in = 0, out = 0;

		if (!ioctl(su, FIONREAD, &in) && !ioctl(cu, SIOCOUTQ, &out) && in == (int)sizeof(unacked) &&
		    out == (int)sizeof(unacked))
			break;
		if (i == 199)
			WL_DIE("connu: %d bytes arrived, %d unacknowledged", in, out);
		usleep(10000);
	}
	record(cu, &eu);

	l6 = listener(AF_INET6, &la6, &llen6);
	s6 = connect_pair(l6, &la6, llen6, &c6);
	close(l6);
	record(c6, &e6);

	if (pipe2(rp, O_CLOEXEC))
		WL_DIE("pipe");
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		WL_DIE("fork");
	if (pid == 0) {
		close(rp[0]);
		close(c);
		close(l);
		close(c6);
		close(s6);
		close(cu);
		close(su);
		child(srv, rp[1], getppid());
	}
	close(rp[1]);
	close(srv);
	if (!wait_fd(rp[0], POLLIN) || read(rp[0], &st, 1) != 1)
		WL_DIE("the child did not get ready");
	close(rp[0]);
	wl_info("%zu bytes of pattern in flight", pattern_len);

	wl_ready();
	if (wl_selftest_break()) {
		unsigned char b;

		if (recv(c, &b, 1, MSG_DONTWAIT) != 1)
			WL_DIE("selftest: reading a byte");
	}
	wl_wait_for_term();
	kill(pid, SIGTERM);

	check_conn(c, &e, "parent's end");
	check_conn(c6, &e6, "conn6");
	WL_CHECK(wl_sockopt_int(c, IPPROTO_TCP, TCP_NODELAY) == 1, "parent's end: TCP_NODELAY lost");
	WL_CHECK(wl_sockopt_int(c, SOL_SOCKET, SO_REUSEADDR) == 1, "parent's end: SO_REUSEADDR is %d, want 1",
		 wl_sockopt_int(c, SOL_SOCKET, SO_REUSEADDR));
	WL_CHECK(fcntl(c, F_GETFL) & O_NONBLOCK, "parent's end: O_NONBLOCK lost");
	got = malloc(pattern_len);
	if (!got)
		WL_DIE("malloc");
	n = read_all(c, got, pattern_len);
	WL_CHECK(n == pattern_len, "parent's end: %zu bytes of the pattern arrived, want %zu", n, pattern_len);
	for (size_t i = 0; i < n; i++)
		if (got[i] != pattern_at(i)) {
			wl_fail("parent's end: byte %zu of the pattern is %#x, want %#x", i, got[i], pattern_at(i));
			break;
		}
	free(got);
	ask(c, "conn (parent's side)");
	ping_pong(c6, s6, "conn6");
	check_conn(cu, &eu, "connu");
	st = 0;
	WL_CHECK(!setsockopt(cu, SOL_SOCKET, SO_DETACH_FILTER, &st, sizeof(st)), "connu: SO_DETACH_FILTER: %s",
		 strerror(errno));
	n = read_all(su, back, sizeof(back));
	WL_CHECK(n == sizeof(back) && !memcmp(back, unacked, sizeof(back)), "connu: %zu bytes arrived, want %zu", n,
		 sizeof(back));
	WL_CHECK(!ioctl(su, FIONREAD, &st) && st == 0, "connu: %d bytes more arrived", st);
	ping_pong(cu, su, "connu");
	fresh = -1;
	a = connect_pair(l, &la, llen, &fresh);
	WL_CHECK(a >= 0 && fresh >= 0, "the listener accepts no fresh connection");
	close(a);
	close(fresh);

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			WL_DIE("waitpid");
	WL_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child ended with status %#x", st);
	return wl_finish();
}
