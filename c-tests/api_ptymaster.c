/*
 * api_ptymaster: the new masters of a container's ttys handed to a function of
 * the caller (ccr_opts_set_pty_master_fn), as lxc-start takes them back.
 *
 *   api_ptymaster WL_TTYHOST WORKDIR
 *
 * The manager M (c-tests/wl_ttyhost.c, run with WL_TTYHOST_RESTORED=1) holds the
 * masters of its container C's tty1 and tty2, ptys of C's own devpts instance.
 * This program dumps C, then:
 * 1. a function together with a socket is refused (-EINVAL) before anything;
 * 2. a restore whose function refuses (returns 7) the first master fails with
 *    -ECANCELED naming the pty and the value; the function was called once, in
 *    this process (a counter in its private memory, which ccr's helper could not
 *    change); no task of C is left;
 * 3. a restore whose function takes them: called twice, here, with the keys
 *    .../pts/0 and .../pts/1 and fds that are, in this process, the masters of
 *    ptys 0 and 1, close-on-exec. It passes them on to M over M's masters.sock,
 *    where M checks them as it does with --pty-master-socket (indexes, tty1's
 *    termios and window, the getty answering on tty1 and saying goodbye): M
 *    passes, and C ends with its getty, status 0.
 */
#include <ccr.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "workload.h"

struct taken {
	int calls;
	/* Return this from the first call (0: take every master). */
	int refuse;
	char keys[2][512];
	int index[2];
	int cloexec[2];
	int fds[2];
};

static char images[4352], scratch[4352];

static int take(const char *key, int fd, void *user_data)
{
	struct taken *t = user_data;
	int i = t->calls++, n = -1;

	if (i >= 2) {
		close(fd);
		return 0;
	}
	snprintf(t->keys[i], sizeof(t->keys[i]), "%s", key);
	t->index[i] = ioctl(fd, TIOCGPTN, &n) ? -1 : n;
	t->cloexec[i] = (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
	t->fds[i] = fd;
	if (i == 0 && t->refuse) {
		close(fd);
		t->fds[i] = -1;
		return t->refuse;
	}
	return 0;
}

static ccr_opts *opts(const char *log, struct taken *t)
{
	ccr_opts *o = ccr_opts_new();

	if (!o)
		WL_DIE("ccr_opts_new");
	ccr_opts_set_images_dir(o, images);
	ccr_opts_set_log_file(o, wl_path(log));
	ccr_opts_set_log_level(o, 4);
	if (t && ccr_opts_set_pty_master_fn(o, take, t))
		WL_DIE("ccr_opts_set_pty_master_fn: %s", ccr_last_error());
	return o;
}

/* Sends the masters taken to M's socket, as ccr does with --pty-master-socket. */
static void pass_on(struct taken *t)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/masters.sock", scratch) >= (int)sizeof(addr.sun_path))
		WL_DIE("%s/masters.sock: too long for a socket address", scratch);
	if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof(addr)))
		WL_DIE("connect to %s", addr.sun_path);
	for (int i = 0; i < 2; i++) {
		char ctl[CMSG_SPACE(sizeof(int))] = { 0 };
		struct iovec iov = { .iov_base = t->keys[i], .iov_len = strlen(t->keys[i]) };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &t->fds[i], sizeof(int));
		if (sendmsg(s, &msg, 0) < 0)
			WL_DIE("sending the master of %s to M", t->keys[i]);
		close(t->fds[i]);
	}
	close(s);
}

static pid_t container_pid(void)
{
	char path[4400];
	int pid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/container.pid", scratch);
	f = fopen(path, "r");
	if (!f || fscanf(f, "%d", &pid) != 1)
		WL_DIE("%s", path);
	fclose(f);
	return pid;
}

/* The getty G, C's only child. */
static pid_t getty_pid(pid_t c)
{
	char path[64];
	int pid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", c, c);
	f = fopen(path, "r");
	if (!f || fscanf(f, "%d", &pid) != 1)
		WL_DIE("no child of the container's init in %s", path);
	fclose(f);
	return pid;
}

/* As a manager that is its containers' subreaper: reaps what is left of C and G
 * (G, orphaned when C dies, comes to us), so their pids are free again. */
static void reap_gone(pid_t c, pid_t g, const char *when)
{
	for (int i = 0; i < 100; i++) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (kill(c, 0) && kill(g, 0))
			return;
		usleep(50000);
	}
	WL_DIE("%s: pid %d or %d is still there", when, c, g);
}

int main(int argc, char **argv)
{
	struct taken t;
	char out[4352], pts[4400];
	pid_t monitor, c, g, got;
	ccr_opts *o;
	int rc, status;

	if (argc != 3) {
		fprintf(stderr, "usage: %s WL_TTYHOST WORKDIR\n", argv[0]);
		return 2;
	}
	wl_scratch(2, argv + 1);
	snprintf(images, sizeof(images), "%s", wl_path("images"));
	snprintf(out, sizeof(out), "%s", wl_path("wl.out"));
	snprintf(scratch, sizeof(scratch), "%s", wl_path("scratch"));
	snprintf(pts, sizeof(pts), "%s/pts/", scratch);
	setenv("WL_TTYHOST_RESTORED", "1", 1);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		WL_DIE("PR_SET_CHILD_SUBREAPER");
	monitor = wl_start_ready(argv[1], scratch, out);
	c = container_pid();
	g = getty_pid(c);

	o = opts("dump.log", NULL);
	ccr_opts_set_pid(o, c);
	rc = ccr_dump(o);
	ccr_opts_free(o);
	if (rc) {
		kill(monitor, SIGKILL);
		WL_DIE("ccr_dump(pid %d) = %d: %s", c, rc, ccr_last_error());
	}
	reap_gone(c, g, "after the dump");

	/* 1. A function and a socket: one or the other. */
	memset(&t, 0, sizeof(t));
	o = opts("restore-both.log", &t);
	ccr_opts_set_pty_master_socket(o, wl_path("unused.sock"));
	got = ccr_restore(o);
	ccr_opts_free(o);
	WL_CHECK(got == -EINVAL && t.calls == 0, "ccr_restore with a function and a socket = %d (%d calls): %s", got,
		 t.calls, ccr_last_error());

	/* 2. Refused: the restore fails before C runs, and nothing of it is left.
	 * The root was made our child: its corpse is ours to reap, and G's. */
	memset(&t, 0, sizeof(t));
	t.refuse = 7;
	o = opts("restore-refused.log", &t);
	got = ccr_restore(o);
	ccr_opts_free(o);
	WL_CHECK(got == -ECANCELED, "ccr_restore with a function refusing the master = %d: %s", got, ccr_last_error());
	WL_CHECK(strstr(ccr_last_error(), pts) && strstr(ccr_last_error(), "returned 7"),
		 "the error does not name the pty and the value: %s", ccr_last_error());
	WL_CHECK(t.calls == 1, "the refusing function was called %d times here, want 1", t.calls);
	reap_gone(c, g, "after the refused restore");

	/* 3. Taken here, passed on to M. */
	memset(&t, 0, sizeof(t));
	o = opts("restore.log", &t);
	got = ccr_restore(o);
	ccr_opts_free(o);
	if (got < 0) {
		kill(monitor, SIGKILL);
		WL_DIE("ccr_restore = %d: %s", got, ccr_last_error());
	}
	WL_CHECK(got == c, "restored pid %d, want %d", got, c);
	WL_CHECK(t.calls == 2, "the function was called %d times here, want 2", t.calls);
	for (int i = 0; i < 2 && i < t.calls; i++) {
		char want[4500];

		snprintf(want, sizeof(want), "%s%d", pts, t.index[i]);
		WL_CHECK(t.index[i] >= 0 && !strcmp(t.keys[i], want), "the master of pty %d here came with key %s",
			 t.index[i], t.keys[i]);
		WL_CHECK(t.cloexec[i], "the master of %s is not close-on-exec", t.keys[i]);
	}
	WL_CHECK(t.index[0] + t.index[1] == 1, "the masters are of ptys %d and %d, not 0 and 1", t.index[0], t.index[1]);
	if (t.calls == 2)
		pass_on(&t);
	kill(monitor, SIGTERM);
	WL_CHECK(waitpid(monitor, &status, 0) == monitor && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		 "the manager ended with %#x (its checks through the new masters)", status);
	WL_CHECK(wl_file_has_line(out, "PASS"), "the manager did not print PASS");
	WL_CHECK(waitpid(c, &status, 0) == c && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		 "the restored container ended with %#x", status);
	return wl_finish();
}
