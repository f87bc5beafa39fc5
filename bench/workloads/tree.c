/*
 * tree N: a tree of N sleeping processes (each has up to 4 children, numbered
 * breadth first). The root prints "ready" once all N exist. On SIGTERM every
 * process passes it to its children, reaps them and exits 0 only if all of them
 * exited 0 (the root's exit status thus covers the whole tree).
 *
 * Readiness goes through a pipe that every process closes before "ready", so the
 * sleeping tree holds no fds but stdin/stdout/stderr.
 */
#include <sys/prctl.h>
#include <sys/wait.h>

#include "bench.h"

#define FANOUT 4

static pid_t kids[FANOUT];
static int nkids;

/* Forks the children of node `idx` (0-based) of an N-node tree. */
static void spawn_children(int idx, int n, int rfd, int wfd)
{
	for (int c = 0; c < FANOUT; c++) {
		int child = idx * FANOUT + 1 + c;
		pid_t p;

		if (child >= n)
			break;
		p = fork();
		if (p < 0)
			BENCH_DIE("fork");
		if (p == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (rfd >= 0)
				close(rfd);
			nkids = 0;
			spawn_children(child, n, -1, wfd);
			if (write(wfd, "x", 1) != 1)
				BENCH_DIE("write");
			close(wfd);
			bench_wait_for_term();
			for (int k = 0; k < nkids; k++)
				kill(kids[k], SIGTERM);
			int ok = 1;
			for (int k = 0; k < nkids; k++) {
				int st;
				if (waitpid(kids[k], &st, 0) != kids[k] || !WIFEXITED(st) || WEXITSTATUS(st))
					ok = 0;
			}
			_exit(ok ? 0 : 1);
		}
		kids[nkids++] = p;
	}
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 50;
	int fds[2], ok = 1;
	char buf[256];
	int got = 0;

	bench_install_term();
	if (pipe(fds))
		BENCH_DIE("pipe");
	spawn_children(0, n, fds[0], fds[1]);
	close(fds[1]);
	while (got < n - 1) {
		ssize_t r = read(fds[0], buf, sizeof(buf));
		if (r <= 0)
			BENCH_DIE("read");
		got += r;
	}
	close(fds[0]);
	bench_ready();
	bench_wait_for_term();
	for (int k = 0; k < nkids; k++)
		kill(kids[k], SIGTERM);
	for (int k = 0; k < nkids; k++) {
		int st;
		if (waitpid(kids[k], &st, 0) != kids[k] || !WIFEXITED(st) || WEXITSTATUS(st))
			ok = 0;
	}
	printf(ok ? "PASS\n" : "FAIL: a process of the tree did not exit 0\n");
	return ok ? 0 : 1;
}
