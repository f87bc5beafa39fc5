/*
 * wl_sharedfd: one open file description shared by a parent and its child.
 *
 * The parent opens scratch/shared-file, writes HEAD bytes (offset HEAD) and
 * forks; the child also dup()s the fd. On SIGTERM the parent writes MID bytes
 * through its fd and passes SIGTERM on; the child sees the offset HEAD + MID
 * through both of its fds (one description, one offset), writes TAIL bytes
 * through the dup and exits; the parent then sees offset HEAD + MID + TAIL and
 * the file holds the three writes in order.
 *
 * Self test: the child replaces its fd by a new open of the same file at
 * offset HEAD (a description of its own) after "ready".
 */
#include <sys/wait.h>

#include "workload.h"

#define HEAD 100
#define MID 50
#define TAIL 25

static void child(int fd, const char *path)
{
	char buf[TAIL];
	int dupfd;
	off_t o;

	wl_install_term();
	dupfd = dup(fd);
	if (dupfd < 0)
		WL_DIE("dup");
	if (wl_selftest_break()) {
		int nfd = open(path, O_RDWR);

		if (nfd < 0 || dup2(nfd, fd) < 0 || lseek(fd, HEAD, SEEK_SET) != HEAD)
			WL_DIE("selftest reopen");
		close(nfd);
	}
	wl_wait_for_term();
	o = lseek(fd, 0, SEEK_CUR);
	WL_CHECK(o == HEAD + MID, "child: offset of the inherited fd %ld, want %d", (long)o,
		 HEAD + MID);
	o = lseek(dupfd, 0, SEEK_CUR);
	WL_CHECK(o == HEAD + MID, "child: offset of the dup %ld, want %d", (long)o, HEAD + MID);
	memset(buf, 'c', sizeof(buf));
	if (write(dupfd, buf, TAIL) != TAIL)
		wl_fail("child write: %s", strerror(errno));
	exit(wl_failures ? 1 : 0);
}

int main(int argc, char **argv)
{
	char buf[HEAD + MID + TAIL + 8], want[HEAD + MID + TAIL];
	const char *path;
	int fd, st;
	pid_t pid;
	off_t o;

	wl_scratch(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	wl_install_term();
	path = wl_path("shared-file");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		WL_DIE("open %s", path);
	memset(want, 'h', HEAD);
	memset(want + HEAD, 'p', MID);
	memset(want + HEAD + MID, 'c', TAIL);
	if (write(fd, want, HEAD) != HEAD)
		WL_DIE("write head");
	pid = fork();
	if (pid < 0)
		WL_DIE("fork");
	if (pid == 0)
		child(fd, path);
	wl_info("child %d", pid);
	usleep(100 * 1000); /* let the child dup (and, in the self test, reopen) */
	wl_ready();
	wl_wait_for_term();

	if (write(fd, want + HEAD, MID) != MID)
		wl_fail("parent write: %s", strerror(errno));
	kill(pid, SIGTERM);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			WL_DIE("waitpid");
	WL_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
	o = lseek(fd, 0, SEEK_CUR);
	WL_CHECK(o == HEAD + MID + TAIL, "parent: offset %ld after the child's write, want %d",
		 (long)o, HEAD + MID + TAIL);
	st = (int)pread(fd, buf, sizeof(buf), 0);
	WL_CHECK(st == HEAD + MID + TAIL && memcmp(buf, want, sizeof(want)) == 0,
		 "file holds %d bytes, not head+parent+child", st);
	close(fd);
	return wl_finish();
}
