/*
 * wl_netunix: unix sockets of a container's own network namespace, as a
 * syslogd in an LXC container has them: the process unshares its mount and
 * network namespaces, mounts a tmpfs on scratch/dev (a container's /dev) and
 * holds:
 *  - a datagram socket bound at scratch/dev/log (mode 0666, as syslogd makes
 *    it) with two messages queued ("<13>first", "<13>second");
 *  - a stream listener on the abstract name "ccr-wl-netunix-PID", which only
 *    its own network namespace sees;
 *  - scratch/dev/stale.sock, a socket file no socket is bound to any more (its
 *    socket was closed), and scratch/dev/boot-id, a plain file;
 *  - a stream socket pair shared with a child (the child holds the other end,
 *    answers each line it reads in upper case, and queued "hello" before ready);
 *  - a datagram socket pair made before the unshare, so of the namespace the
 *    process started in, "early" queued in it.
 *
 * Refusals to provoke: with WL_NETUNIX_HOSTBOUND=1 a datagram socket bound to an
 * abstract name before the unshare (in the first namespace) is kept; with
 * WL_NETUNIX_OUTSIDE=1 a process outside the tree (a grandchild that left it:
 * its pid in scratch/outside.pid) binds scratch/dev/outside.sock and sleeps.
 *
 * Verify: every socket is in the process's own network namespace, but the
 * early pair, which is in the one the process started in; the two
 * queued messages read back in order, then a new one sent to dev/log arrives;
 * dev/log keeps its mode; the listener accepts a connection to its abstract
 * name; stale.sock is still a socket file nobody answers at; boot-id reads
 * back; the pair reads "hello", then answers "ping" with "PING"; the child exits
 * 0 once its end reads end of file.
 *
 * Break: one queued message of dev/log is read away after ready.
 */
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <linux/sockios.h>

#include "workload.h"

#define TMPFS_MAGIC_NR 0x01021994

static struct sockaddr_un path_addr(const char *path, socklen_t *len)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(a.sun_path))
		WL_DIE("path %s too long for a unix socket", path);
	strcpy(a.sun_path, path);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
	return a;
}

static struct sockaddr_un abstract_addr(const char *name, socklen_t *len)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };

	memcpy(a.sun_path + 1, name, strlen(name));
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
	return a;
}

static void send_dgram(const char *path, const char *msg)
{
	socklen_t len;
	struct sockaddr_un a = path_addr(path, &len);
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0 || sendto(s, msg, strlen(msg), 0, (struct sockaddr *)&a, len) != (ssize_t)strlen(msg))
		WL_DIE("send to %s", path);
	close(s);
}

/* The inode of the network namespace socket `s` was made in (0: unknown). */
static ino_t netns_of(int s)
{
	struct stat ns;
	int fd = ioctl(s, SIOCGSKNS);
	ino_t ino = 0;

	if (fd >= 0 && !fstat(fd, &ns))
		ino = ns.st_ino;
	if (fd >= 0)
		close(fd);
	return ino;
}

/* Whether socket `s` was made in this process's network namespace. */
static int in_own_netns(int s)
{
	struct stat ours;

	return !stat("/proc/self/ns/net", &ours) && netns_of(s) == ours.st_ino;
}

/* A grandchild that leaves the tree, binds `path` and sleeps (its pid in `pidfile`). */
static void outsider(const char *path, const char *pidfile)
{
	pid_t p = fork();

	if (p < 0)
		WL_DIE("fork");
	if (p == 0) {
		if (fork() != 0)
			_exit(0);
		socklen_t len;
		struct sockaddr_un a = path_addr(path, &len);
		int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		char text[32];
		int fd = open(pidfile, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);

		snprintf(text, sizeof(text), "%d\n", (int)getpid());
		if (s < 0 || bind(s, (struct sockaddr *)&a, len) || fd < 0 || write(fd, text, strlen(text)) < 0)
			_exit(2);
		close(fd);
		for (;;)
			pause();
	}
	waitpid(p, NULL, 0);
	for (int i = 0; i < 200 && access(pidfile, F_OK); i++)
		usleep(10000);
}

/* The child's loop: each line read on `s` is written back in upper case. */
static int answer(int s)
{
	char buf[64];
	ssize_t n;

	if (write(s, "hello", 5) != 5)
		return 2;
	while ((n = read(s, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] >= 'a' && buf[i] <= 'z')
				buf[i] -= 32;
		if (write(s, buf, (size_t)n) != n)
			return 1;
	}
	return n == 0 ? 0 : 1;
}

static int read_exact(int s, char *buf, size_t want)
{
	size_t got = 0;

	while (got < want) {
		ssize_t n = read(s, buf + got, want - got);

		if (n <= 0)
			return 0;
		got += (size_t)n;
	}
	buf[got] = 0;
	return 1;
}

int main(int argc, char **argv)
{
	char logp[4096], stalep[4096], bootp[4096], devp[4096], name[64], buf[128];
	int logsock, listener, stale, sp[2], early[2], hostbound = -1, fd;
	ino_t first_ns;
	socklen_t len;
	struct sockaddr_un a;
	pid_t child;

	wl_scratch(argc, argv);
	snprintf(devp, sizeof(devp), "%s", wl_path("dev"));
	snprintf(logp, sizeof(logp), "%s", wl_path("dev/log"));
	snprintf(stalep, sizeof(stalep), "%s", wl_path("dev/stale.sock"));
	snprintf(bootp, sizeof(bootp), "%s", wl_path("dev/boot-id"));
	snprintf(name, sizeof(name), "ccr-wl-netunix-%d", (int)getpid());
	wl_install_term();
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, early) || send(early[0], "early", 5, 0) != 5)
		WL_DIE("the early socket pair");
	first_ns = netns_of(early[0]);
	if (getenv("WL_NETUNIX_HOSTBOUND")) {
		hostbound = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		a = abstract_addr(name, &len);
		if (hostbound < 0 || bind(hostbound, (struct sockaddr *)&a, len))
			WL_DIE("bind @%s before the unshare", name);
	}
	if (unshare(CLONE_NEWNS | CLONE_NEWNET))
		WL_DIE("unshare(mnt, net)");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		WL_DIE("make / private");
	if (mkdir(devp, 0755) && errno != EEXIST)
		WL_DIE("mkdir %s", devp);
	if (mount("wl-dev", devp, "tmpfs", 0, "size=1m,mode=0755"))
		WL_DIE("mount tmpfs on %s", devp);

	logsock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	a = path_addr(logp, &len);
	if (logsock < 0 || bind(logsock, (struct sockaddr *)&a, len) || chmod(logp, 0666))
		WL_DIE("bind %s", logp);
	send_dgram(logp, "<13>first");
	send_dgram(logp, "<13>second");

	listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a = abstract_addr(name, &len);
	if (listener < 0 || bind(listener, (struct sockaddr *)&a, len) || listen(listener, 4))
		WL_DIE("listen on @%s", name);

	stale = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a = path_addr(stalep, &len);
	if (stale < 0 || bind(stale, (struct sockaddr *)&a, len))
		WL_DIE("bind %s", stalep);
	close(stale);
	fd = open(bootp, O_CREAT | O_WRONLY | O_CLOEXEC, 0444);
	if (fd < 0 || write(fd, "boot-id-1234", 12) != 12)
		WL_DIE("write %s", bootp);
	close(fd);

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp))
		WL_DIE("socketpair");
	child = fork();
	if (child < 0)
		WL_DIE("fork");
	if (child == 0) {
		signal(SIGTERM, SIG_DFL);
		close(sp[0]);
		_exit(answer(sp[1]));
	}
	close(sp[1]);
	/* "hello" waits in sp[0] before ready. */
	for (int i = 0; i < 200; i++) {
		int queued = 0;

		if (!ioctl(sp[0], FIONREAD, &queued) && queued >= 5)
			break;
		usleep(10000);
	}

	if (getenv("WL_NETUNIX_OUTSIDE"))
		outsider(wl_path("dev/outside.sock"), wl_path("outside.pid"));

	wl_ready();
	if (wl_selftest_break())
		recv(logsock, buf, sizeof(buf), MSG_DONTWAIT);
	wl_wait_for_term();

	WL_CHECK(in_own_netns(logsock), "dev/log's socket is not in the process's network namespace");
	WL_CHECK(in_own_netns(listener), "the listener is not in the process's network namespace");
	WL_CHECK(in_own_netns(sp[0]), "the socket pair is not in the process's network namespace");
	WL_CHECK(first_ns && netns_of(early[0]) == first_ns && netns_of(early[1]) == first_ns,
		 "the early pair is not in the network namespace the process started in");
	{
		ssize_t n = recv(early[1], buf, sizeof(buf) - 1, MSG_DONTWAIT);

		buf[n > 0 ? n : 0] = 0;
		WL_CHECK(n == 5 && !strcmp(buf, "early"), "the early pair's message reads \"%s\"", buf);
	}
	if (hostbound >= 0)
		close(hostbound);

	const char *want[] = { "<13>first", "<13>second" };
	for (int i = 0; i < 2; i++) {
		ssize_t n = recv(logsock, buf, sizeof(buf) - 1, MSG_DONTWAIT);

		buf[n > 0 ? n : 0] = 0;
		WL_CHECK(n > 0 && !strcmp(buf, want[i]), "queued message %d of dev/log reads \"%s\"", i, buf);
	}
	WL_CHECK(recv(logsock, buf, sizeof(buf), MSG_DONTWAIT) < 0 && errno == EAGAIN, "dev/log holds more messages");
	send_dgram(logp, "<13>third");
	{
		ssize_t n = recv(logsock, buf, sizeof(buf) - 1, MSG_DONTWAIT);

		buf[n > 0 ? n : 0] = 0;
		WL_CHECK(n > 0 && !strcmp(buf, "<13>third"), "a message sent to dev/log after the restore reads \"%s\"",
			 buf);
	}

	struct stat st;
	struct statfs sf;
	WL_CHECK(!statfs(devp, &sf) && sf.f_type == TMPFS_MAGIC_NR, "dev is no tmpfs");
	WL_CHECK(!stat(logp, &st) && S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0666,
		 "dev/log's mode is %o", st.st_mode);
	WL_CHECK(!stat(stalep, &st) && S_ISSOCK(st.st_mode), "dev/stale.sock is no socket file");
	{
		int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		a = path_addr(stalep, &len);
		WL_CHECK(connect(s, (struct sockaddr *)&a, len) < 0 && errno == ECONNREFUSED,
			 "connecting to dev/stale.sock: %s", strerror(errno));
		close(s);
	}
	fd = open(bootp, O_RDONLY | O_CLOEXEC);
	memset(buf, 0, sizeof(buf));
	WL_CHECK(fd >= 0 && read(fd, buf, sizeof(buf)) == 12 && !strcmp(buf, "boot-id-1234"), "dev/boot-id reads \"%s\"",
		 buf);
	close(fd);

	{
		int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), got;

		a = abstract_addr(name, &len);
		WL_CHECK(!connect(c, (struct sockaddr *)&a, len), "connecting to @%s: %s", name, strerror(errno));
		got = accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		WL_CHECK(got >= 0, "the listener accepts no connection: %s", strerror(errno));
		close(got);
		close(c);
	}

	WL_CHECK(read_exact(sp[0], buf, 5) && !strcmp(buf, "hello"), "the pair's queued bytes read \"%s\"", buf);
	WL_CHECK(write(sp[0], "ping", 4) == 4 && read_exact(sp[0], buf, 4) && !strcmp(buf, "PING"),
		 "the child answered \"%s\"", buf);
	close(sp[0]);
	{
		int status = 0;

		WL_CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
			 "the child ended with status %#x", status);
	}
	umount2(devp, MNT_DETACH);
	return wl_finish();
}
