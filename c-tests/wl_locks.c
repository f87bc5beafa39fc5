/*
 * wl_locks: file locks of every kind, checked after restore from a fresh process
 * that asks the kernel who holds what:
 *   a  flock LOCK_EX, its description shared with a forked child
 *   b  POSIX locks: the parent's write lock on bytes 10-19 and read lock on
 *      100-149, the child's own read lock from 200 to the end; nothing on 50-59
 *   c  an OFD write lock on bytes 0-4
 *   d  flock LOCK_SH
 *   e  a read lease: an open for writing by another process breaks it, and the
 *      break (SIGIO) reaches this process
 */
#include <sys/file.h>
#include <sys/wait.h>

#include "workload.h"

static pid_t parent_pid, child_pid;
static volatile sig_atomic_t lease_breaks;

static void on_io(int sig)
{
	(void)sig;
	lease_breaks++;
}

static int open_file(const char *name, int flags)
{
	int fd = open(wl_path(name), flags | O_CREAT, 0644);

	if (fd < 0)
		WL_DIE("open %s", name);
	return fd;
}

static void posix_lock(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	if (fcntl(fd, cmd, &fl))
		WL_DIE("lock %d type %d at %lld+%lld", fd, type, (long long)start, (long long)len);
}

/* What fcntl(cmd) says about a write lock on len bytes from start. */
static struct flock probe(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	if (fcntl(fd, cmd, &fl))
		wl_fail("F_GETLK at %lld: %s", (long long)start, strerror(errno));
	return fl;
}

static void expect(int fd, int cmd, short probe_type, off_t start, off_t len, short type, pid_t pid,
		   const char *what)
{
	struct flock fl = probe(fd, cmd, probe_type, start, len);

	WL_CHECK(fl.l_type == type, "%s: lock type %d, want %d", what, fl.l_type, type);
	if (type != F_UNLCK)
		WL_CHECK(fl.l_pid == pid, "%s: held by %d, want %d", what, fl.l_pid, pid);
}

/* Runs in a fresh process: none of the locks are its own. */
static void check_from_outside(void)
{
	int a = open_file("a", O_RDWR), b = open_file("b", O_RDWR), c = open_file("c", O_RDWR);
	int d = open_file("d", O_RDONLY);

	WL_CHECK(flock(a, LOCK_EX | LOCK_NB) && errno == EWOULDBLOCK, "a: flock LOCK_EX is free (%s)",
		 strerror(errno));
	expect(b, F_GETLK, F_WRLCK, 10, 10, F_WRLCK, parent_pid, "b 10-19");
	expect(b, F_GETLK, F_WRLCK, 50, 10, F_UNLCK, 0, "b 50-59");
	expect(b, F_GETLK, F_WRLCK, 100, 10, F_RDLCK, parent_pid, "b 100-109");
	expect(b, F_GETLK, F_WRLCK, 1 << 20, 10, F_RDLCK, child_pid, "b at 1 MiB");
	expect(b, F_GETLK, F_WRLCK, 150, 50, F_UNLCK, 0, "b 150-199");
	expect(b, F_GETLK, F_RDLCK, 100, 10, F_UNLCK, 0, "b 100-109 for reading");
	expect(b, F_GETLK, F_WRLCK, 200, 10, F_RDLCK, child_pid, "b 200-209");
	expect(c, F_OFD_GETLK, F_RDLCK, 0, 1, F_WRLCK, -1, "c 0");
	expect(c, F_OFD_GETLK, F_RDLCK, 5, 1, F_UNLCK, 0, "c 5");
	WL_CHECK(!flock(d, LOCK_SH | LOCK_NB), "d: shared flock refused (%s)", strerror(errno));
	flock(d, LOCK_UN);
	WL_CHECK(flock(d, LOCK_EX | LOCK_NB) && errno == EWOULDBLOCK, "d: flock LOCK_EX is free");
	WL_CHECK(open(wl_path("e"), O_WRONLY | O_NONBLOCK) < 0 && errno == EWOULDBLOCK,
		 "e: opened for writing through a read lease (%s)", strerror(errno));
}

int main(int argc, char **argv)
{
	int a, b, c, d, e, st;
	pid_t checker;

	wl_scratch(argc, argv);
	wl_install_term();
	parent_pid = getpid();
	a = open_file("a", O_RDWR);
	b = open_file("b", O_RDWR);
	c = open_file("c", O_RDWR);
	d = open_file("d", O_RDONLY);
	e = open_file("e", O_RDONLY);
	signal(SIGIO, on_io);
	if (flock(a, LOCK_EX | LOCK_NB) || flock(d, LOCK_SH | LOCK_NB))
		WL_DIE("flock");
	posix_lock(b, F_SETLK, F_WRLCK, 10, 10);
	posix_lock(b, F_SETLK, F_RDLCK, 100, 50);
	posix_lock(c, F_OFD_SETLK, F_WRLCK, 0, 5);
	if (fcntl(e, F_SETLEASE, F_RDLCK))
		WL_DIE("F_SETLEASE");
	child_pid = fork();
	if (child_pid < 0)
		WL_DIE("fork");
	if (child_pid == 0) {
		posix_lock(b, F_SETLK, F_RDLCK, 200, 0);
		for (;;)
			pause();
	}
	usleep(100000);
	wl_info("child %d", child_pid);
	wl_ready();
	if (wl_selftest_break())
		posix_lock(b, F_SETLK, F_UNLCK, 10, 10);
	wl_wait_for_term();

	WL_CHECK(fcntl(e, F_GETLEASE) == F_RDLCK, "e: lease is %d, want a read lease", fcntl(e, F_GETLEASE));
	checker = fork();
	if (checker == 0) {
		check_from_outside();
		_exit(wl_failures ? 1 : 0);
	}
	if (checker < 0 || waitpid(checker, &st, 0) != checker || !WIFEXITED(st) || WEXITSTATUS(st))
		wl_fail("the checker found locks missing (above)");
	for (int i = 0; i < 100 && !lease_breaks; i++)
		usleep(10000);
	WL_CHECK(lease_breaks > 0, "e: the lease break did not reach the lease holder");
	fcntl(e, F_SETLEASE, F_UNLCK);
	kill(child_pid, SIGKILL);
	waitpid(child_pid, NULL, 0);
	return wl_finish();
}
