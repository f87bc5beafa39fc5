/*
 * wl_pty: pty pairs both of whose ends are in the tree, as python's pty.fork,
 * script or a tmux server with a pane make them.
 *
 * Pty A: the root holds the master; a child starts a session, opens the slave
 * (its controlling terminal) on fd 0 and /dev/tty on fd 5, sets termios
 * (canonical, echo, VERASE 1), window size 40x120 and exclusive mode, and makes
 * a grandchild in a group of its own the foreground group. Then, in this order, bytes are left queued both ways:
 * the child writes "out-before\n" to the slave (unread by the root), the root
 * writes "in-line\npartial" to the master (unread by the child; the echo queues
 * after the child's bytes). Pty B: a second master in packet mode whose slave is
 * still locked, never opened.
 *
 * After SIGTERM the root checks both masters (indexes, packet mode, lock, the
 * bytes queued on A's master: "out-before\r\nin-line\r\npartial"), then tells
 * the child to check its side: the same slave path, its session and foreground
 * group, termios, window size, exclusive mode, and that its first read is
 * "in-line\n" alone; the root then types "-more\n" and the child must read
 * "partial-more\n" (the partial line stayed partial). The child reports by its
 * exit status.
 *
 * With WL_PTY_NS=1 both ptys are in a devpts instance of its own, mounted on
 * scratch/pts in a mount namespace of its own, as in a container.
 */
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>

#include "workload.h"

static int ma, mb;
static char ptmx[320] = "/dev/ptmx", pts[256] = "/dev/pts";
static char slave_a[320];
static int index_a, index_b;
static pid_t child;
/* child → root: one byte once its side is set up; root → child: "check now". */
static int up[2], down[2];

static int pty_index(int m)
{
	int n = -1;

	return ioctl(m, TIOCGPTN, &n) ? -1 : n;
}

/* Everything readable on fd within a short wait, NUL-terminated. */
static int read_all(int fd, char *buf, int size)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int len = 0, n;

	while (len < size - 1 && poll(&p, 1, 300) == 1) {
		n = read(fd, buf + len, size - 1 - len);
		if (n <= 0)
			break;
		len += n;
	}
	buf[len] = 0;
	return len;
}

static int child_check(pid_t fg)
{
	struct termios t;
	struct winsize ws;
	char buf[64], *name;
	int bad = 0, n, excl = 0;

	name = ttyname(0);
	if (!name || strcmp(name, slave_a)) {
		printf("FAIL: child: fd 0 is %s, not %s\n", name ? name : "(none)", slave_a);
		bad++;
	}
	if (tcgetsid(0) != getpid()) {
		printf("FAIL: child: the pty is not its controlling terminal (%d)\n", (int)tcgetsid(0));
		bad++;
	}
	if (tcgetpgrp(0) != fg) {
		printf("FAIL: child: foreground group %d, not %d\n", (int)tcgetpgrp(0), (int)fg);
		bad++;
	}
	if (tcgetattr(0, &t) || !(t.c_lflag & ICANON) || !(t.c_lflag & ECHO) || t.c_cc[VERASE] != 1) {
		printf("FAIL: child: termios lost (lflag %#x, VERASE %d)\n", t.c_lflag, t.c_cc[VERASE]);
		bad++;
	}
	if (ioctl(0, TIOCGWINSZ, &ws) || ws.ws_row != 40 || ws.ws_col != 120) {
		printf("FAIL: child: window size %dx%d\n", ws.ws_row, ws.ws_col);
		bad++;
	}
	if (ioctl(0, TIOCGEXCL, &excl) || !excl) {
		printf("FAIL: child: exclusive mode lost\n");
		bad++;
	}
	{
		struct stat st;

		if (fstat(5, &st) || st.st_rdev != makedev(5, 0) || ioctl(5, TIOCGWINSZ, &ws) || ws.ws_col != 120) {
			printf("FAIL: child: fd 5 is no /dev/tty on its terminal\n");
			bad++;
		}
	}
	/* Only the foreground group reads its terminal. */
	signal(SIGTTOU, SIG_IGN);
	tcsetpgrp(0, getpgrp());
	n = read(0, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = 0;
	if (strcmp(buf, "in-line\n")) {
		printf("FAIL: child: first read \"%s\", not \"in-line\\n\"\n", buf);
		bad++;
	}
	if (write(up[1], "r", 1) != 1)
		bad++;
	n = read(0, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = 0;
	if (strcmp(buf, "partial-more\n")) {
		printf("FAIL: child: second read \"%s\", not \"partial-more\\n\"\n", buf);
		bad++;
	}
	fflush(stdout);
	return bad ? 1 : 0;
}

static void child_main(void)
{
	struct termios t;
	struct winsize ws = { .ws_row = 40, .ws_col = 120 };
	pid_t fg;
	int fd;
	char c;

	close(up[0]);
	close(down[1]);
	close(ma);
	close(mb);
	if (setsid() < 0)
		_exit(2);
	fd = open(slave_a, O_RDWR);
	if (fd < 0 || dup2(fd, 0) < 0)
		_exit(2);
	close(fd);
	if (tcgetattr(0, &t))
		_exit(2);
	t.c_lflag |= ICANON | ECHO;
	t.c_cc[VERASE] = 1;
	if (tcsetattr(0, TCSANOW, &t) || ioctl(0, TIOCSWINSZ, &ws) || ioctl(0, TIOCEXCL))
		_exit(2);
	/* Its controlling terminal by the name every session has for it. */
	fd = open("/dev/tty", O_RDWR);
	if (fd < 0 || dup2(fd, 5) < 0)
		_exit(2);
	close(fd);
	fg = fork();
	if (fg < 0)
		_exit(2);
	if (fg == 0) {
		setpgid(0, 0);
		for (;;)
			pause();
	}
	setpgid(fg, fg);
	signal(SIGTTOU, SIG_IGN);
	if (tcsetpgrp(0, fg))
		_exit(2);
	if (write(0, "out-before\n", 11) != 11 || write(up[1], "u", 1) != 1)
		_exit(2);
	while (read(down[0], &c, 1) < 0 && errno == EINTR)
		;
	fd = child_check(fg);
	kill(fg, SIGKILL);
	waitpid(fg, NULL, 0);
	_exit(fd);
}

static void own_devpts(void)
{
	snprintf(pts, sizeof(pts), "%s", wl_path("pts"));
	snprintf(ptmx, sizeof(ptmx), "%s/ptmx", pts);
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		WL_DIE("a mount namespace of its own");
	if (mkdir(pts, 0755) || mount("devpts", pts, "devpts", 0, "newinstance,ptmxmode=0666,mode=0620"))
		WL_DIE("devpts on %s", pts);
}

static void setup(void)
{
	char c;

	if (getenv("WL_PTY_NS"))
		own_devpts();
	ma = open(ptmx, O_RDWR | O_NOCTTY);
	if (ma < 0 || unlockpt(ma))
		WL_DIE("pty A through %s", ptmx);
	index_a = pty_index(ma);
	snprintf(slave_a, sizeof(slave_a), "%s/%d", pts, index_a);
	mb = open(ptmx, O_RDWR | O_NOCTTY);
	if (mb < 0 || ioctl(mb, TIOCPKT, &(int){ 1 }))
		WL_DIE("pty B");
	index_b = pty_index(mb);
	if (pipe(up) || pipe(down))
		WL_DIE("pipe");
	child = fork();
	if (child < 0)
		WL_DIE("fork");
	if (child == 0)
		child_main();
	close(up[1]);
	close(down[0]);
	if (read(up[0], &c, 1) != 1)
		WL_DIE("the child did not set up its side");
	if (write(ma, "in-line\npartial", 15) != 15)
		WL_DIE("write to master A");
}

static void check(void)
{
	const char *want = "out-before\r\nin-line\r\npartial";
	char buf[256], c;
	int pkt = 0, lck = 0, st;

	WL_CHECK(pty_index(ma) == index_a, "pty A has index %d, not %d", pty_index(ma), index_a);
	WL_CHECK(pty_index(mb) == index_b, "pty B has index %d, not %d", pty_index(mb), index_b);
	WL_CHECK(!ioctl(mb, TIOCGPKT, &pkt) && pkt, "pty B left packet mode");
	WL_CHECK(!ioctl(mb, TIOCGPTLCK, &lck) && lck, "pty B's slave is unlocked");
	read_all(ma, buf, sizeof(buf));
	WL_CHECK(!strcmp(buf, want), "master A read \"%s\"", buf);
	if (write(down[1], "c", 1) != 1 || read(up[0], &c, 1) != 1)
		wl_fail("the child did not read its first line");
	else if (write(ma, "-more\n", 6) != 6)
		wl_fail("write to master A");
	WL_CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child's checks failed (%#x)",
		 st);
	read_all(ma, buf, sizeof(buf));
	WL_CHECK(!strcmp(buf, "-more\r\n"), "master A echoed \"%s\"", buf);
}

int main(int argc, char **argv)
{
	char buf[64];

	wl_scratch(argc, argv);
	wl_install_term();
	setup();
	wl_ready();
	if (wl_selftest_break())
		read_all(ma, buf, sizeof(buf));
	wl_wait_for_term();
	check();
	return wl_finish();
}
