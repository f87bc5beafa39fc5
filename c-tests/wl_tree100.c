/*
 * wl_tree100: exactly 100 processes: root, 9 children, 10 grandchildren each.
 * All of them sleep in sigsuspend. Each records its pid and ppid in a
 * MAP_SHARED table. On SIGTERM root passes SIGTERM to its children, each child
 * to its grandchildren; every process checks its live pid/ppid against the
 * table and exits 0 or 1; a child also fails when one of its children failed.
 *
 * Self test: root changes the recorded ppid of the last grandchild.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include "workload.h"

#define NCHILD 9
#define NGRAND 10
#define NPROC (1 + NCHILD + NCHILD * NGRAND)

struct rec {
	pid_t pid, ppid;
};

struct table {
	struct rec r[NPROC];
	int ready;
};

static struct table *t;

static int slot_of(int child, int grand)
{
	return grand < 0 ? 1 + child : 1 + NCHILD + child * NGRAND + grand;
}

static void record(int slot)
{
	t->r[slot].pid = getpid();
	t->r[slot].ppid = getppid();
	__atomic_add_fetch(&t->ready, 1, __ATOMIC_SEQ_CST);
}

static void check(int slot)
{
	WL_CHECK(getpid() == t->r[slot].pid, "slot %d: pid %d, recorded %d", slot, getpid(),
		 t->r[slot].pid);
	/* The root's parent is outside the tree: after a restore it is the restorer. */
	if (slot != 0)
		WL_CHECK(getppid() == t->r[slot].ppid, "slot %d (pid %d): ppid %d, recorded %d",
			 slot, getpid(), getppid(), t->r[slot].ppid);
}

/* Waits for every pid in kids[0..n) and counts those that did not exit 0. */
static int reap_all(const pid_t *kids, int n)
{
	int bad = 0, st;

	for (int i = 0; i < n; i++) {
		while (waitpid(kids[i], &st, 0) < 0) {
			if (errno != EINTR) {
				wl_fail("waitpid(%d): %s", kids[i], strerror(errno));
				bad++;
				goto next;
			}
		}
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			wl_fail("pid %d ended with status 0x%x", kids[i], st);
			bad++;
		}
next:;
	}
	return bad;
}

static void child(int c)
{
	pid_t kids[NGRAND];

	wl_install_term();
	for (int g = 0; g < NGRAND; g++) {
		kids[g] = fork();
		if (kids[g] < 0)
			WL_DIE("fork grandchild");
		if (kids[g] == 0) {
			wl_install_term();
			record(slot_of(c, g));
			wl_wait_for_term();
			check(slot_of(c, g));
			exit(wl_failures ? 1 : 0);
		}
	}
	record(slot_of(c, -1));
	wl_wait_for_term();
	for (int g = 0; g < NGRAND; g++)
		kill(kids[g], SIGTERM);
	check(slot_of(c, -1));
	reap_all(kids, NGRAND);
	exit(wl_failures ? 1 : 0);
}

int main(int argc, char **argv)
{
	pid_t kids[NCHILD];
	int i;

	wl_scratch(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	t = mmap(NULL, sizeof(*t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (t == MAP_FAILED)
		WL_DIE("mmap");
	wl_install_term();
	record(0);
	for (int c = 0; c < NCHILD; c++) {
		kids[c] = fork();
		if (kids[c] < 0)
			WL_DIE("fork child");
		if (kids[c] == 0)
			child(c);
	}
	for (i = 0; __atomic_load_n(&t->ready, __ATOMIC_SEQ_CST) < NPROC; i++) {
		if (i > 20000)
			WL_DIE("only %d of %d processes set up in 20 s", t->ready, NPROC);
		usleep(1000);
	}
	for (int c = 0; c < NCHILD; c++)
		for (int g = 0; g < NGRAND; g++)
			WL_CHECK(t->r[slot_of(c, g)].ppid == t->r[slot_of(c, -1)].pid,
				 "grandchild %d.%d under its child", c, g);
	wl_info("%d processes", NPROC);
	wl_ready();
	if (wl_selftest_break())
		t->r[NPROC - 1].ppid += 1;
	wl_wait_for_term();
	for (int c = 0; c < NCHILD; c++)
		kill(kids[c], SIGTERM);
	check(0);
	reap_all(kids, NCHILD);
	return wl_finish();
}
