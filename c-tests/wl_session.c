/*
 * wl_session: processes in a session whose leader is gone, as a double-forking
 * daemon leaves them.
 *
 * root (a child subreaper) forks L; L calls setsid() and forks A, which forks B;
 * then L exits and root reaps it. A is adopted by root. A and B stay in session
 * L (and A in process group L) although no process L exists any more. On SIGTERM
 * root passes it on; A and B check their parent, session and group, B exits, A
 * reaps it and reports; root checks it is still a subreaper and reaps A.
 *
 * Self test: A starts a session of its own after "ready".
 */
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "workload.h"

struct ids {
	pid_t root, leader, a, b;
	volatile int ready;
};

static struct ids *ids;

static int check_b(void)
{
	wl_install_term();
	ids->b = getpid();
	__atomic_add_fetch(&ids->ready, 1, __ATOMIC_SEQ_CST);
	wl_wait_for_term();
	WL_CHECK(getppid() == ids->a, "B: parent %d, want A %d", getppid(), ids->a);
	WL_CHECK(getsid(0) == ids->leader, "B: session %d, want the gone leader %d", getsid(0), ids->leader);
	return wl_failures ? 1 : 0;
}

static int check_a(void)
{
	pid_t b;
	int st;

	wl_install_term();
	ids->a = getpid();
	b = fork();
	if (b < 0)
		WL_DIE("fork B");
	if (b == 0)
		_exit(check_b());
	__atomic_add_fetch(&ids->ready, 1, __ATOMIC_SEQ_CST);
	wl_wait_for_term();
	kill(b, SIGTERM);
	while (waitpid(b, &st, 0) < 0)
		if (errno != EINTR)
			WL_DIE("waitpid B");
	WL_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "B ended with status 0x%x", st);
	WL_CHECK(getppid() == ids->root, "A: parent %d, want root %d (the subreaper)", getppid(), ids->root);
	WL_CHECK(getsid(0) == ids->leader, "A: session %d, want the gone leader %d", getsid(0), ids->leader);
	WL_CHECK(getpgrp() == ids->leader, "A: process group %d, want %d", getpgrp(), ids->leader);
	return wl_failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	pid_t l;
	int st, sub = 0;

	wl_scratch(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	wl_install_term();
	ids = mmap(NULL, sizeof(*ids), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ids == MAP_FAILED || prctl(PR_SET_CHILD_SUBREAPER, 1))
		WL_DIE("setup");
	ids->root = getpid();
	l = fork();
	if (l < 0)
		WL_DIE("fork L");
	if (l == 0) {
		if (setsid() < 0)
			WL_DIE("setsid");
		ids->leader = getpid();
		if (fork() == 0)
			_exit(check_a());
		_exit(0);
	}
	while (waitpid(l, &st, 0) < 0)
		if (errno != EINTR)
			WL_DIE("waitpid L");
	while (__atomic_load_n(&ids->ready, __ATOMIC_SEQ_CST) < 2)
		usleep(1000);
	WL_CHECK(!kill(ids->leader, 0) ? 0 : errno == ESRCH, "the leader %d still exists", ids->leader);
	wl_info("leader %d gone; A %d, B %d", ids->leader, ids->a, ids->b);
	wl_ready();
	if (wl_selftest_break())
		kill(ids->a, SIGUSR2); /* A's default SIGUSR2 kills it: the check below fails */
	wl_wait_for_term();

	WL_CHECK(prctl(PR_GET_CHILD_SUBREAPER, &sub) == 0 && sub == 1, "root is no longer a subreaper");
	kill(ids->a, SIGTERM);
	while (waitpid(ids->a, &st, 0) < 0)
		if (errno != EINTR)
			WL_DIE("waitpid A");
	WL_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "A ended with status 0x%x", st);
	/* If A died early, B was left to us (the subreaper): end it, leave nothing. */
	if (kill(ids->b, SIGKILL) == 0)
		waitpid(ids->b, NULL, 0);
	return wl_finish();
}
