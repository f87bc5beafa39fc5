/*
 * wl_tty: a session leader whose controlling terminal is a tty of the host (a
 * pty whose master the test holds, as a container manager holds the console's):
 * it opens WL_TTY (which makes it its controlling terminal), sets its termios
 * (no echo, no canonical mode, VMIN 1, VTIME 0, a custom VINTR) and window size
 * (33x99), and keeps it on fd 0, and on fd 10 in a second open of its own
 * (write-only, non-blocking, O_ASYNC: the line typed later must raise SIGIO),
 * as a getty opens the console again. A child in a process group of its own is
 * made the foreground group. After SIGTERM it checks all of that, writes
 * "hello from wl_tty\n" to the tty and reads the line the test typed.
 * Without WL_TTY it makes a pty of its own and types the line itself. With
 * WL_TTY_MOUNT it first binds the tty on scratch/console in a mount namespace of
 * its own, as a container manager binds the console, and opens it there.
 */
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>

#include "workload.h"

static pid_t fg;
static volatile sig_atomic_t got_io;

static void on_io(int sig)
{
	(void)sig;
	got_io++;
}
/* Without WL_TTY (the self test) the workload holds the master itself. */
static int own_master = -1;

static void setup(void)
{
	const char *path = getenv("WL_TTY");
	struct termios t;
	struct winsize ws = { .ws_row = 33, .ws_col = 99 };
	int fd;

	if (!path) {
		own_master = posix_openpt(O_RDWR | O_NOCTTY);
		if (own_master < 0 || grantpt(own_master) || unlockpt(own_master) || !(path = ptsname(own_master)))
			WL_DIE("a pty of its own");
	}
	if (getsid(0) != getpid() && setsid() < 0)
		WL_DIE("setsid");
	if (getenv("WL_TTY_MOUNT")) {
		const char *console = wl_path("console");

		close(open(console, O_CREAT | O_WRONLY, 0600));
		if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    mount(path, console, NULL, MS_BIND, NULL))
			WL_DIE("bind %s on %s", path, console);
		path = console;
	}
	fd = open(path, O_RDWR);
	if (fd < 0 || dup2(fd, 0) < 0)
		WL_DIE("open %s", path);
	close(fd);
	/* A second description of the tty, as a getty or shell opens its own. */
	fd = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY);
	if (fd < 0 || dup2(fd, 10) < 0)
		WL_DIE("open %s again", path);
	close(fd);
	/* Input on the tty signals this process through fd 10 (O_ASYNC). */
	signal(SIGIO, on_io);
	if (fcntl(10, F_SETOWN, getpid()) || fcntl(10, F_SETFL, fcntl(10, F_GETFL) | O_ASYNC))
		WL_DIE("O_ASYNC on fd 10");
	if (tcgetsid(0) != getpid())
		WL_DIE("%s did not become the controlling terminal", path);
	if (tcgetattr(0, &t))
		WL_DIE("tcgetattr");
	t.c_lflag &= ~(ECHO | ICANON);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	t.c_cc[VINTR] = 7;
	if (tcsetattr(0, TCSANOW, &t) || ioctl(0, TIOCSWINSZ, &ws))
		WL_DIE("tcsetattr");
	fg = fork();
	if (fg < 0)
		WL_DIE("fork");
	if (fg == 0) {
		setpgid(0, 0);
		for (;;)
			pause();
	}
	setpgid(fg, fg);
	signal(SIGTTOU, SIG_IGN);
	if (tcsetpgrp(0, fg))
		WL_DIE("tcsetpgrp");
}

static void check(void)
{
	struct termios t;
	struct winsize ws;
	struct pollfd p = { .fd = 0, .events = POLLIN };
	char buf[64] = "";
	const char *hello = "hello from wl_tty\n";
	int n;

	WL_CHECK(isatty(0) && isatty(10), "fd 0 or 10 is no tty");
	/* Two descriptions of the tty, each with its own mode and flags. */
	WL_CHECK((fcntl(0, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) == O_RDWR, "fd 0's flags are %#x, not O_RDWR",
		 fcntl(0, F_GETFL));
	WL_CHECK((fcntl(10, F_GETFL) & (O_ACCMODE | O_NONBLOCK | O_ASYNC)) == (O_WRONLY | O_NONBLOCK | O_ASYNC),
		 "fd 10's flags are %#x, not O_WRONLY|O_NONBLOCK|O_ASYNC", fcntl(10, F_GETFL));
	if (getenv("WL_TTY_MOUNT")) {
		struct stat a, b;

		WL_CHECK(!fstat(0, &a) && !stat(wl_path("console"), &b) && S_ISCHR(b.st_mode) && a.st_rdev == b.st_rdev,
			 "scratch/console is not bound to the tty on fd 0");
	}
	WL_CHECK(tcgetsid(0) == getpid(), "the tty is not this session's controlling terminal (%d)", (int)tcgetsid(0));
	WL_CHECK(tcgetpgrp(0) == fg, "the foreground group is %d, not %d", (int)tcgetpgrp(0), (int)fg);
	WL_CHECK(!tcgetattr(0, &t) && !(t.c_lflag & (ECHO | ICANON)) && t.c_cc[VINTR] == 7 && t.c_cc[VMIN] == 1,
		 "termios lost (lflag %#x, VINTR %d)", t.c_lflag, t.c_cc[VINTR]);
	WL_CHECK(!ioctl(0, TIOCGWINSZ, &ws) && ws.ws_row == 33 && ws.ws_col == 99, "window size %dx%d", ws.ws_row,
		 ws.ws_col);
	WL_CHECK(write(10, hello, strlen(hello)) == (ssize_t)strlen(hello), "write to the tty");
	if (own_master >= 0 && write(own_master, "typed\n", 6) != 6)
		WL_DIE("write to its own master");
	/* Only the foreground group reads its terminal. */
	WL_CHECK(!tcsetpgrp(0, getpgrp()), "taking the foreground back");
	n = poll(&p, 1, 5000) == 1 ? read(0, buf, sizeof(buf) - 1) : -1;
	WL_CHECK(n > 0 && !strncmp(buf, "typed", 5), "read \"%s\" from the tty", n > 0 ? buf : "");
	WL_CHECK(got_io > 0, "no SIGIO through fd 10 (O_ASYNC) for the line typed on the tty");
	kill(fg, SIGKILL);
	waitpid(fg, NULL, 0);
}

int main(int argc, char **argv)
{
	wl_scratch(argc, argv);
	wl_install_term();
	setup();
	wl_ready();
	if (wl_selftest_break()) {
		struct winsize ws = { .ws_row = 1, .ws_col = 1 };
		ioctl(0, TIOCSWINSZ, &ws);
	}
	wl_wait_for_term();
	check();
	return wl_finish();
}
