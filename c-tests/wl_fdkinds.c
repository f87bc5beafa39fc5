/*
 * wl_fdkinds: one process holding every kind of special fd ccr restores.
 *
 *  - eventfd (semaphore mode) holding 5;
 *  - timerfd armed 1000 s ahead with a 1 s interval;
 *  - signalfd for SIGUSR2, which is blocked and pending;
 *  - an epoll set watching the eventfd (EPOLLIN, data 0xe7) and one end of a
 *    stream socket pair (EPOLLIN | EPOLLET, data 0x50c);
 *  - a stream socket pair with "stream-bytes" queued towards sp[0];
 *  - a datagram socket pair with two messages queued towards dp[1];
 *  - inotify watching scratch/watched (wd 2: wd 1 was removed again);
 *  - scratch/deleted, written, read to offset 7 and unlinked.
 *
 * On SIGTERM every one must still hold its state and still work, and both
 * socket pairs must be in the process's network namespace (its own one when it
 * runs under `unshare --net`).
 *
 * Self test: the eventfd is read once more after "ready" (count 4, not 5).
 */
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#include "workload.h"

#define DELETED_TEXT "deleted but still open"

/* Whether socket `s` was made in this process's network namespace. */
static int in_own_netns(int s)
{
	struct stat ns, ours;
	int fd = ioctl(s, SIOCGSKNS);
	int same = fd >= 0 && !fstat(fd, &ns) && !stat("/proc/self/ns/net", &ours) && ns.st_ino == ours.st_ino;

	if (fd >= 0)
		close(fd);
	return same;
}

int main(int argc, char **argv)
{
	int efd, tfd, sfd, epfd, ifd, gfd, sp[2], dp[2], wd1, wd2;
	struct epoll_event ev, evs[4];
	struct itimerspec its = { .it_interval = { 1, 0 }, .it_value = { 1000, 0 } };
	struct signalfd_siginfo si;
	sigset_t mask;
	uint64_t v;
	char buf[256];
	const char *watched, *deleted;
	ssize_t n;
	int i, got_e = 0, got_s = 0;

	wl_scratch(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	wl_install_term();

	efd = eventfd(5, EFD_SEMAPHORE | EFD_NONBLOCK);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	if (efd < 0 || tfd < 0 || timerfd_settime(tfd, 0, &its, NULL))
		WL_DIE("eventfd/timerfd");
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR2);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_NONBLOCK);
	if (sfd < 0)
		WL_DIE("signalfd");
	raise(SIGUSR2);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) || socketpair(AF_UNIX, SOCK_DGRAM, 0, dp))
		WL_DIE("socketpair");
	if (write(sp[1], "stream-bytes", 12) != 12 || send(dp[0], "first", 5, 0) != 5 ||
	    send(dp[0], "second!", 7, 0) != 7)
		WL_DIE("queue socket data");
	epfd = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.u64 = 0xe7;
	if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev))
		WL_DIE("epoll eventfd");
	ev.events = EPOLLIN | EPOLLET;
	ev.data.u64 = 0x50c;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, sp[0], &ev))
		WL_DIE("epoll socket");
	watched = wl_path("watched");
	if (mkdir(watched, 0755) && errno != EEXIST)
		WL_DIE("mkdir watched");
	ifd = inotify_init1(IN_NONBLOCK);
	wd1 = inotify_add_watch(ifd, "/", IN_CREATE);
	inotify_rm_watch(ifd, wd1);
	while (read(ifd, buf, sizeof(buf)) > 0) /* the IN_IGNORED of wd1 */
		;
	wd2 = inotify_add_watch(ifd, watched, IN_CREATE);
	if (ifd < 0 || wd2 != 2)
		WL_DIE("inotify (wd %d)", wd2);
	deleted = wl_path("deleted");
	gfd = open(deleted, O_RDWR | O_CREAT | O_TRUNC, 0640);
	if (gfd < 0 || write(gfd, DELETED_TEXT, strlen(DELETED_TEXT)) < 0 || lseek(gfd, 7, SEEK_SET) != 7 ||
	    unlink(deleted))
		WL_DIE("deleted file");

	wl_ready();
	if (wl_selftest_break())
		(void)read(efd, &v, 8);
	wl_wait_for_term();

	/* epoll first: the eventfd and the socket with queued bytes are ready. */
	n = epoll_wait(epfd, evs, 4, 1000);
	for (i = 0; i < n; i++) {
		got_e |= evs[i].data.u64 == 0xe7;
		got_s |= evs[i].data.u64 == 0x50c;
	}
	WL_CHECK(got_e && got_s, "epoll_wait: %zd events, eventfd %d socket %d", n, got_e, got_s);
	for (i = 0; i < 5; i++)
		WL_CHECK(read(efd, &v, 8) == 8 && v == 1, "eventfd read %d: %s", i, strerror(errno));
	WL_CHECK(read(efd, &v, 8) < 0 && errno == EAGAIN, "eventfd holds more than 5");
	WL_CHECK(timerfd_gettime(tfd, &its) == 0, "timerfd_gettime");
	WL_CHECK(its.it_interval.tv_sec == 1 && its.it_interval.tv_nsec == 0, "timerfd interval %ld.%09ld",
		 (long)its.it_interval.tv_sec, its.it_interval.tv_nsec);
	WL_CHECK(its.it_value.tv_sec > 900 && its.it_value.tv_sec <= 1000, "timerfd value %ld s",
		 (long)its.it_value.tv_sec);
	WL_CHECK(read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGUSR2, "signalfd: no SIGUSR2");
	WL_CHECK(in_own_netns(sp[0]) && in_own_netns(sp[1]) && in_own_netns(dp[0]) && in_own_netns(dp[1]),
		 "a socket pair is not in the process's network namespace");
	n = recv(sp[0], buf, sizeof(buf), MSG_DONTWAIT);
	WL_CHECK(n == 12 && !memcmp(buf, "stream-bytes", 12), "stream socket: %zd bytes", n);
	WL_CHECK(write(sp[0], "back", 4) == 4 && recv(sp[1], buf, 4, 0) == 4 && !memcmp(buf, "back", 4),
		 "stream socket: the other direction");
	n = recv(dp[1], buf, sizeof(buf), MSG_DONTWAIT);
	WL_CHECK(n == 5 && !memcmp(buf, "first", 5), "datagram 1: %zd bytes", n);
	n = recv(dp[1], buf, sizeof(buf), MSG_DONTWAIT);
	WL_CHECK(n == 7 && !memcmp(buf, "second!", 7), "datagram 2: %zd bytes", n);
	snprintf(buf, sizeof(buf), "%s/new", watched);
	close(open(buf, O_CREAT | O_WRONLY, 0644));
	n = read(ifd, buf, sizeof(buf));
	WL_CHECK(n >= (ssize_t)sizeof(struct inotify_event) && ((struct inotify_event *)buf)->wd == 2,
		 "inotify: %zd bytes, wd %d", n, n > 0 ? ((struct inotify_event *)buf)->wd : -1);
	{
		struct stat st;
		char text[64] = { 0 };

		WL_CHECK(fstat(gfd, &st) == 0 && st.st_nlink == 0, "deleted file has %ld links",
			 (long)st.st_nlink);
		WL_CHECK(lseek(gfd, 0, SEEK_CUR) == 7, "deleted file offset");
		WL_CHECK(pread(gfd, text, sizeof(text) - 1, 0) == (ssize_t)strlen(DELETED_TEXT) &&
				 !strcmp(text, DELETED_TEXT),
			 "deleted file holds '%s'", text);
	}
	return wl_finish();
}
