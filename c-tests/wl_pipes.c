/*
 * wl_pipes: a parent and a child joined by two pipes and a FIFO, all with
 * bytes queued in them at dump time.
 *
 *  - pipe A, parent -> child: capacity set to 256 KiB with F_SETPIPE_SZ, then
 *    A_LEN known bytes written and left unread;
 *  - pipe B, child -> parent: the parent's read end is O_NONBLOCK; B_LEN known
 *    bytes queued by the child;
 *  - FIFO scratch/fifo, child -> parent (the parent's read end O_NONBLOCK):
 *    F_LEN known bytes queued by the child.
 *
 * On SIGTERM the parent passes SIGTERM on and writes "ping" into A. The child
 * checks its flags and A's capacity, reads exactly A_LEN bytes and "ping" from
 * A, then writes "pong" into B and "fifo!" into the FIFO and exits. The parent
 * waits for it, checks its flags and the capacity, and reads B (B_LEN bytes and
 * "pong", then EAGAIN) and the FIFO (F_LEN bytes and "fifo!").
 *
 * Self test: the parent reads one byte from B after "ready".
 */
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#include "workload.h"

#define A_LEN 4000
#define B_LEN 3000
#define F_LEN 1500
#define CAP (256 * 1024)

static unsigned char pat(int stream, int i)
{
	return (unsigned char)(i * 7 + stream * 31 + (i >> 8));
}

static void fill(unsigned char *buf, int stream, int n)
{
	for (int i = 0; i < n; i++)
		buf[i] = pat(stream, i);
}

/* Reads exactly n bytes (fd may be non-blocking: waits with poll). */
static int read_exact(int fd, unsigned char *buf, int n)
{
	int got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);

		if (r > 0) {
			got += r;
		} else if (r < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLIN };

			if (poll(&p, 1, 5000) <= 0)
				break;
		} else if (r < 0 && errno == EINTR) {
			continue;
		} else {
			break;
		}
	}
	return got;
}

static void write_all(int fd, const void *buf, size_t n, const char *what)
{
	if (write(fd, buf, n) != (ssize_t)n)
		WL_DIE("write %s", what);
}

static void check_stream(int fd, int stream, int n, const char *tail, const char *what)
{
	unsigned char buf[A_LEN + 16], want[A_LEN];
	size_t tl = strlen(tail);
	int got;

	fill(want, stream, n);
	got = read_exact(fd, buf, n + (int)tl);
	WL_CHECK(got == n + (int)tl, "%s: read %d bytes, want %d", what, got, n + (int)tl);
	if (got >= n)
		WL_CHECK(memcmp(buf, want, n) == 0, "%s: queued bytes differ", what);
	if (got == n + (int)tl)
		WL_CHECK(memcmp(buf + n, tail, tl) == 0, "%s: new bytes differ", what);
}

static void child(int a_rd, int b_wr, const char *fifo)
{
	unsigned char buf[B_LEN];
	int f;

	wl_install_term();
	f = open(fifo, O_WRONLY);
	if (f < 0)
		WL_DIE("open fifo for writing");
	fill(buf, 1, B_LEN);
	write_all(b_wr, buf, B_LEN, "B");
	fill(buf, 2, F_LEN);
	write_all(f, buf, F_LEN, "fifo");
	wl_wait_for_term();

	WL_CHECK(fcntl(a_rd, F_GETPIPE_SZ) == CAP, "child: A capacity %d",
		 fcntl(a_rd, F_GETPIPE_SZ));
	WL_CHECK(!(fcntl(a_rd, F_GETFL) & O_NONBLOCK), "child: A read end is blocking");
	WL_CHECK(!(fcntl(b_wr, F_GETFL) & O_NONBLOCK), "child: B write end is blocking");
	WL_CHECK((fcntl(f, F_GETFL) & O_ACCMODE) == O_WRONLY, "child: fifo end write-only");
	check_stream(a_rd, 0, A_LEN, "ping", "A (parent -> child)");
	write_all(b_wr, "pong", 4, "B pong");
	write_all(f, "fifo!", 5, "fifo!");
	exit(wl_failures ? 1 : 0);
}

int main(int argc, char **argv)
{
	unsigned char buf[A_LEN];
	int a[2], b[2], f, st, n;
	const char *fifo;
	pid_t pid;

	wl_scratch(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	wl_install_term();
	fifo = wl_path("fifo");
	unlink(fifo);
	if (mkfifo(fifo, 0600))
		WL_DIE("mkfifo");
	if (pipe(a) || pipe(b))
		WL_DIE("pipe");
	if (fcntl(a[1], F_SETPIPE_SZ, CAP) != CAP)
		WL_DIE("F_SETPIPE_SZ");
	f = open(fifo, O_RDONLY | O_NONBLOCK);
	if (f < 0)
		WL_DIE("open fifo for reading");
	pid = fork();
	if (pid < 0)
		WL_DIE("fork");
	if (pid == 0) {
		close(a[1]);
		close(b[0]);
		close(f);
		child(a[0], b[1], fifo);
	}
	close(a[0]);
	close(b[1]);
	if (fcntl(b[0], F_SETFL, O_NONBLOCK))
		WL_DIE("O_NONBLOCK");
	fill(buf, 0, A_LEN);
	write_all(a[1], buf, A_LEN, "A");
	/* Wait until the child queued its bytes in B and the FIFO. */
	for (n = 0; n < 5000; n++) {
		int qb = 0, qf = 0;

		if (ioctl(b[0], FIONREAD, &qb) == 0 && ioctl(f, FIONREAD, &qf) == 0 &&
		    qb == B_LEN && qf == F_LEN)
			break;
		usleep(1000);
	}
	if (n == 5000)
		WL_DIE("the child did not queue its bytes");
	wl_ready();
	if (wl_selftest_break())
		if (read(b[0], buf, 1) != 1)
			WL_DIE("selftest read");
	wl_wait_for_term();

	kill(pid, SIGTERM);
	write_all(a[1], "ping", 4, "A ping");
	WL_CHECK(fcntl(a[1], F_GETPIPE_SZ) == CAP, "parent: A capacity %d",
		 fcntl(a[1], F_GETPIPE_SZ));
	WL_CHECK(fcntl(b[0], F_GETFL) & O_NONBLOCK, "parent: B read end is O_NONBLOCK");
	WL_CHECK(!(fcntl(a[1], F_GETFL) & O_NONBLOCK), "parent: A write end is blocking");
	WL_CHECK(fcntl(f, F_GETFL) & O_NONBLOCK, "parent: fifo read end is O_NONBLOCK");
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			WL_DIE("waitpid");
	WL_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
	check_stream(b[0], 1, B_LEN, "pong", "B (child -> parent)");
	WL_CHECK(read(b[0], buf, 1) == 0, "B at end of file after the child exited");
	check_stream(f, 2, F_LEN, "fifo!", "fifo (child -> parent)");
	return wl_finish();
}
