/*
 * wl_ttyhost: a container manager and its container's ttys, as lxc-start runs
 * them with lxc.tty.max > 0. The workload (the monitor, M) forks the container's
 * init C, which starts a session, unshares a mount namespace and mounts a devpts
 * instance of its own on scratch/pts. M opens two ptys in it through
 * /proc/C/root/.../pts/ptmx and keeps their masters. C binds pts/0 on
 * scratch/tty1 and pts/1 on scratch/tty2 (as LXC binds /dev/tty1..N) and forks
 * G, a getty-like session leader whose controlling terminal is tty1, opened by
 * the bind's path, with no echo, VERASE 1 and a 50x132 window. M writes C's pid
 * to scratch/container.pid, listens on scratch/masters.sock and prints ready.
 *
 * The test dumps C's tree (not M) and restores it with --pty-master-socket
 * scratch/masters.sock. With WL_TTYHOST_RESTORED=1, on SIGTERM M takes the new
 * masters from its socket (without it, its own: the self test); it checks their
 * indexes, that tty1's termios and window size are G's, and types "check" on
 * tty1: G answers "ok" when it is still on tty1 by that name, its controlling
 * terminal, with its settings. Then "exit" ends G (it says "bye"), and with it C.
 *
 * On SIGUSR1, G writes "hello from tty1" to its tty (the pty keeper test).
 */
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>

#include "workload.h"

static int masters[2] = { -1, -1 };
static int listener = -1;
static pid_t container;
static volatile sig_atomic_t hello;

/* After a dump the container's init is a dead child of ours: its pid must be
 * free for the restore. */
static void reap_container(int sig)
{
	(void)sig;
	while (waitpid(container, NULL, WNOHANG) > 0)
		;
}

static void on_usr1(int sig)
{
	(void)sig;
	hello = 1;
}

static void say(const char *text)
{
	if (write(0, text, strlen(text)) < 0)
		_exit(3);
}

/* G: answers lines typed on its tty. */
static int getty_main(const char *tty1)
{
	struct termios t;
	struct winsize ws = { .ws_row = 50, .ws_col = 132 };
	char line[128], *name;
	int fd, n, excl;
	struct sigaction sa = { .sa_handler = on_usr1 };

	/* No SA_RESTART: the read returns, and G says hello. */
	sigaction(SIGUSR1, &sa, NULL);
	/* Its masters going after its goodbye hang tty1 up: not a failure. */
	signal(SIGHUP, SIG_IGN);
	if (setsid() < 0 || (fd = open(tty1, O_RDWR)) < 0 || dup2(fd, 0) < 0)
		return 2;
	close(fd);
	if (tcgetattr(0, &t))
		return 2;
	t.c_lflag &= ~ECHO;
	t.c_lflag |= ICANON;
	t.c_cc[VERASE] = 1;
	if (tcsetattr(0, TCSANOW, &t) || ioctl(0, TIOCSWINSZ, &ws))
		return 2;
	for (;;) {
		n = read(0, line, sizeof(line) - 1);
		if (n < 0 && errno == EINTR) {
			if (hello) {
				hello = 0;
				say("hello from tty1\n");
			}
			continue;
		}
		if (n <= 0)
			return 1;
		line[n] = 0;
		if (!strcmp(line, "exit\n")) {
			say("bye\n");
			return 0;
		}
		if (strcmp(line, "check\n"))
			continue;
		name = ttyname(0);
		excl = tcgetattr(0, &t) || (t.c_lflag & ECHO) || t.c_cc[VERASE] != 1;
		if (!name || strlen(name) < 5 || strcmp(name + strlen(name) - 5, "/tty1"))
			say("bad: not on tty1\n");
		else if (tcgetsid(0) != getpid())
			say("bad: not its controlling terminal\n");
		else if (excl)
			say("bad: termios\n");
		else
			say("ok\n");
	}
}

/* C: the container's init. */
static int container_main(int up, int down)
{
	const char *pts = wl_path("pts");
	char tty1[512], tty2[512], c;
	pid_t g;
	int st;

	if (setsid() < 0 || unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return 2;
	if (mkdir(pts, 0755) || mount("devpts", pts, "devpts", 0, "newinstance,ptmxmode=0666,mode=0620"))
		return 2;
	if (write(up, "m", 1) != 1 || read(down, &c, 1) != 1)
		return 2;
	snprintf(tty1, sizeof(tty1), "%s", wl_path("tty1"));
	snprintf(tty2, sizeof(tty2), "%s", wl_path("tty2"));
	close(open(tty1, O_CREAT | O_WRONLY, 0600));
	close(open(tty2, O_CREAT | O_WRONLY, 0600));
	{
		char p0[600], p1[600];

		snprintf(p0, sizeof(p0), "%s/0", pts);
		snprintf(p1, sizeof(p1), "%s/1", pts);
		if (mount(p0, tty1, NULL, MS_BIND, NULL) || mount(p1, tty2, NULL, MS_BIND, NULL))
			return 2;
	}
	g = fork();
	if (g < 0)
		return 2;
	if (g == 0) {
		close(up);
		close(down);
		_exit(getty_main(tty1));
	}
	/* Settled once G set its tty up; M waits for this. */
	usleep(100000);
	if (write(up, "g", 1) != 1)
		return 2;
	close(up);
	close(down);
	while (waitpid(g, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

static int pty_index(int m)
{
	int n = -1;

	return ioctl(m, TIOCGPTN, &n) ? -1 : n;
}

static void setup(void)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char ptmx[600], c;
	int up[2], down[2], i;
	FILE *f;

	if (pipe(up) || pipe(down))
		WL_DIE("pipe");
	container = fork();
	if (container < 0)
		WL_DIE("fork");
	if (container == 0) {
		close(up[0]);
		close(down[1]);
		_exit(container_main(up[1], down[0]));
	}
	close(up[1]);
	close(down[0]);
	if (read(up[0], &c, 1) != 1)
		WL_DIE("the container did not mount its devpts");
	snprintf(ptmx, sizeof(ptmx), "/proc/%d/root%s/ptmx", (int)container, wl_path("pts"));
	for (i = 0; i < 2; i++) {
		masters[i] = open(ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (masters[i] < 0 || unlockpt(masters[i]) || pty_index(masters[i]) != i)
			WL_DIE("pty %d through %s", i, ptmx);
	}
	if (write(down[1], "p", 1) != 1 || read(up[0], &c, 1) != 1)
		WL_DIE("the container did not start its getty");
	close(up[0]);
	close(down[1]);
	if (getenv("WL_TTYHOST_RESTORED")) {
		struct sigaction sa = { .sa_handler = reap_container, .sa_flags = SA_RESTART };

		sigaction(SIGCHLD, &sa, NULL);
	}
	f = fopen(wl_path("container.pid"), "w");
	if (!f || fprintf(f, "%d\n", (int)container) < 0 || fclose(f))
		WL_DIE("container.pid");
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", wl_path("masters.sock"));
	listener = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof(addr)) || listen(listener, 4))
		WL_DIE("listen on %s", addr.sun_path);
}

/* The new masters from the socket: key (the slave's path) and fd per message. */
static void take_new_masters(void)
{
	struct pollfd p = { .fd = listener, .events = POLLIN };
	int conn, got = 0;

	if (poll(&p, 1, 2000) != 1 || (conn = accept(listener, NULL, NULL)) < 0) {
		wl_fail("no new masters came to masters.sock");
		return;
	}
	for (;;) {
		char key[256], ctl[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { .iov_base = key, .iov_len = sizeof(key) - 1 };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
		struct cmsghdr *c;
		ssize_t n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
		int fd = -1, i;

		if (n <= 0)
			break;
		key[n] = 0;
		c = CMSG_FIRSTHDR(&msg);
		if (c && c->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
		i = strlen(key) > 2 && !strcmp(key + strlen(key) - 2, "/0") ? 0 : strlen(key) > 2 && !strcmp(key + strlen(key) - 2, "/1") ? 1 : -1;
		if (i < 0 || fd < 0) {
			wl_fail("a master for \"%s\" (fd %d)", key, fd);
			continue;
		}
		WL_CHECK(!strncmp(key, wl_path("pts"), strlen(wl_path("pts"))), "key %s is not in %s", key, wl_path("pts"));
		close(masters[i]);
		masters[i] = fd;
		got++;
	}
	close(conn);
	WL_CHECK(got == 2, "%d new masters, not 2", got);
}

/* Everything tty1 says within a short wait. */
static void read_reply(char *buf, int size)
{
	struct pollfd p = { .fd = masters[0], .events = POLLIN };
	int len = 0, n;

	while (len < size - 1 && poll(&p, 1, 2000) == 1) {
		n = read(masters[0], buf + len, size - 1 - len);
		if (n <= 0)
			break;
		len += n;
		if (memchr(buf, '\n', len))
			break;
	}
	buf[len] = 0;
}

static void check(void)
{
	struct termios t;
	struct winsize ws;
	char reply[128];

	if (getenv("WL_TTYHOST_RESTORED"))
		take_new_masters();
	WL_CHECK(pty_index(masters[0]) == 0 && pty_index(masters[1]) == 1, "indexes %d and %d", pty_index(masters[0]),
		 pty_index(masters[1]));
	WL_CHECK(!tcgetattr(masters[0], &t) && !(t.c_lflag & ECHO) && t.c_cc[VERASE] == 1, "tty1's termios (lflag %#x)",
		 t.c_lflag);
	WL_CHECK(!ioctl(masters[0], TIOCGWINSZ, &ws) && ws.ws_row == 50 && ws.ws_col == 132, "tty1's window %dx%d",
		 ws.ws_row, ws.ws_col);
	if (write(masters[0], "check\n", 6) != 6)
		wl_fail("typing on tty1");
	read_reply(reply, sizeof(reply));
	WL_CHECK(!strcmp(reply, "ok\r\n"), "tty1 answered \"%s\"", reply);
	/* Answered before the masters go: their last close hangs tty1 up. */
	if (write(masters[0], "exit\n", 5) != 5)
		wl_fail("typing exit on tty1");
	read_reply(reply, sizeof(reply));
	WL_CHECK(!strcmp(reply, "bye\r\n"), "tty1 said \"%s\" to exit", reply);
	if (!getenv("WL_TTYHOST_RESTORED")) {
		int st;

		WL_CHECK(waitpid(container, &st, 0) == container && WIFEXITED(st) && !WEXITSTATUS(st),
			 "the container ended with %#x", st);
	}
	unlink(wl_path("masters.sock"));
}

int main(int argc, char **argv)
{
	wl_scratch(argc, argv);
	wl_install_term();
	setup();
	wl_ready();
	if (wl_selftest_break()) {
		struct termios t;

		tcgetattr(masters[0], &t);
		t.c_lflag |= ECHO;
		tcsetattr(masters[0], TCSANOW, &t);
	}
	wl_wait_for_term();
	check();
	return wl_finish();
}
