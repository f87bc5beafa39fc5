/*
 * wl_tree: a small process tree with sessions, process groups and a zombie.
 *
 *   root
 *   ├── c1   setpgid(0, 0): leader of a new process group G
 *   ├── c2   setpgid(0, c1): member of G (a group spanning two siblings)
 *   ├── c3   setsid(): leader of a new session S
 *   │   ├── g1   in S, in c3's group
 *   │   └── g2   in S, setpgid(0, 0): a second group inside S
 *   └── c4   exits with status 7 at once; root leaves it a zombie until SIGTERM
 *
 * Every live process records its pid, ppid, pgrp and sid in a MAP_SHARED area
 * and root checks the relations between them before "ready". On SIGTERM root
 * passes SIGTERM to c1..c3 (c3 passes it to g1 and g2); each checks that its
 * live ids equal the recorded ones and exits 0 or 1 (c3 also fails if one of
 * its children failed). Root checks its own ids and the exit codes, then reaps
 * the zombie and checks WEXITSTATUS == 7.
 *
 * With WL_TREE_SOCKET set, g2 holds a raw IP socket (ccr cannot dump it yet).
 *
 * Self test: root changes c2's recorded process group after "ready".
 */
#include <sys/mman.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/wait.h>

#include "workload.h"

enum { ROOT, C1, C2, C3, G1, G2, C4, NSLOT };
static const char *const names[NSLOT] = { "root", "c1", "c2", "c3", "g1", "g2", "c4" };

struct ids {
	pid_t pid, ppid, pgrp, sid;
};

struct area {
	struct ids rec[NSLOT];
	int ready; /* processes that finished their setup (atomic) */
};

static struct area *area;

static void record(int slot)
{
	struct ids *r = &area->rec[slot];

	r->pid = getpid();
	r->ppid = getppid();
	r->pgrp = getpgrp();
	r->sid = getsid(0);
}

/* Compares the live ids of this process with the recorded ones. */
static void check_self(int slot)
{
	const struct ids *r = &area->rec[slot];
	const char *n = names[slot];

	WL_CHECK(getpid() == r->pid, "%s: getpid %d, recorded %d", n, getpid(), r->pid);
	/* The root's parent is outside the tree: after a restore it is the restorer. */
	if (slot != 0)
		WL_CHECK(getppid() == r->ppid, "%s: getppid %d, recorded %d", n, getppid(), r->ppid);
	WL_CHECK(getpgrp() == r->pgrp, "%s: getpgrp %d, recorded %d", n, getpgrp(), r->pgrp);
	WL_CHECK(getsid(0) == r->sid, "%s: getsid %d, recorded %d", n, getsid(0), r->sid);
}

static void set_up_done(int slot)
{
	record(slot);
	__atomic_add_fetch(&area->ready, 1, __ATOMIC_SEQ_CST);
}

/* Waits for a child and returns its exit code (-1 if it did not exit normally). */
static int wait_code(pid_t pid, const char *what)
{
	int st;

	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			wl_fail("waitpid(%s = %d): %s", what, pid, strerror(errno));
			return -1;
		}
	}
	if (!WIFEXITED(st)) {
		wl_fail("%s (%d) did not exit normally: status 0x%x", what, pid, st);
		return -1;
	}
	return WEXITSTATUS(st);
}

/* A leaf: set up, wait for SIGTERM, check, exit with the verdict. */
static void leaf(int slot)
{
	wl_install_term();
	set_up_done(slot);
	wl_wait_for_term();
	check_self(slot);
	exit(wl_failures ? 1 : 0);
}

static void session_leader(void)
{
	pid_t g1, g2;
	int c;

	wl_install_term();
	if (setsid() < 0)
		WL_DIE("setsid");
	g1 = fork();
	if (g1 < 0)
		WL_DIE("fork g1");
	if (g1 == 0)
		leaf(G1);
	g2 = fork();
	if (g2 < 0)
		WL_DIE("fork g2");
	if (g2 == 0) {
		if (setpgid(0, 0))
			WL_DIE("setpgid g2");
		/* For the failed-dump test: a socket ccr cannot dump yet. */
		if (getenv("WL_TREE_SOCKET") && socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) < 0)
			WL_DIE("socket");
		leaf(G2);
	}
	set_up_done(C3);
	wl_wait_for_term();
	kill(g1, SIGTERM);
	kill(g2, SIGTERM);
	check_self(C3);
	c = wait_code(g1, "g1");
	WL_CHECK(c == 0, "g1 exit code %d", c);
	c = wait_code(g2, "g2");
	WL_CHECK(c == 0, "g2 exit code %d", c);
	exit(wl_failures ? 1 : 0);
}

static void check_relations(void)
{
	const struct ids *r = area->rec;

	WL_CHECK(r[C1].pgrp == r[C1].pid, "c1 leads its group");
	WL_CHECK(r[C2].pgrp == r[C1].pid, "c2 is in c1's group");
	WL_CHECK(r[C1].ppid == r[ROOT].pid && r[C2].ppid == r[ROOT].pid &&
			 r[C3].ppid == r[ROOT].pid,
		 "c1..c3 are root's children");
	WL_CHECK(r[C3].sid == r[C3].pid && r[C3].pgrp == r[C3].pid, "c3 leads a session");
	WL_CHECK(r[G1].sid == r[C3].pid && r[G2].sid == r[C3].pid, "g1, g2 in c3's session");
	WL_CHECK(r[G1].ppid == r[C3].pid && r[G2].ppid == r[C3].pid, "g1, g2 are c3's children");
	WL_CHECK(r[G1].pgrp == r[C3].pid, "g1 in c3's group");
	WL_CHECK(r[G2].pgrp == r[G2].pid, "g2 leads its own group");
	WL_CHECK(r[C1].sid == r[ROOT].sid, "c1 in root's session");
}

int main(int argc, char **argv)
{
	pid_t pid[NSLOT];
	siginfo_t si;
	int c, i;

	wl_scratch(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	area = mmap(NULL, sizeof(*area), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		WL_DIE("mmap");
	wl_install_term();
	record(ROOT);
	fflush(stdout);

	pid[C1] = fork();
	if (pid[C1] < 0)
		WL_DIE("fork c1");
	if (pid[C1] == 0) {
		if (setpgid(0, 0))
			WL_DIE("setpgid c1");
		leaf(C1);
	}
	if (setpgid(pid[C1], pid[C1]) && errno != EACCES)
		WL_DIE("setpgid(c1)");
	pid[C2] = fork();
	if (pid[C2] < 0)
		WL_DIE("fork c2");
	if (pid[C2] == 0) {
		if (setpgid(0, pid[C1]))
			WL_DIE("setpgid c2");
		leaf(C2);
	}
	pid[C3] = fork();
	if (pid[C3] < 0)
		WL_DIE("fork c3");
	if (pid[C3] == 0)
		session_leader();
	pid[C4] = fork();
	if (pid[C4] < 0)
		WL_DIE("fork c4");
	if (pid[C4] == 0)
		_exit(7);

	/* c4 exited but stays a zombie: WNOWAIT does not reap it. */
	memset(&si, 0, sizeof(si));
	while (waitid(P_PID, pid[C4], &si, WEXITED | WNOWAIT))
		if (errno != EINTR)
			WL_DIE("waitid c4");
	for (i = 0; __atomic_load_n(&area->ready, __ATOMIC_SEQ_CST) < 5; i++) {
		if (i > 10000)
			WL_DIE("the tree did not set up in 10 s");
		usleep(1000);
	}
	check_relations();
	if (wl_failures)
		WL_DIE("the tree is not what it should be");
	wl_info("root %d c1 %d c2 %d c3 %d g1 %d g2 %d zombie %d", area->rec[ROOT].pid,
		area->rec[C1].pid, area->rec[C2].pid, area->rec[C3].pid, area->rec[G1].pid,
		area->rec[G2].pid, pid[C4]);
	wl_ready();
	if (wl_selftest_break())
		area->rec[C2].pgrp += 1;
	wl_wait_for_term();

	for (i = C1; i <= C3; i++)
		if (kill(pid[i], SIGTERM))
			wl_fail("kill(%s = %d): %s", names[i], pid[i], strerror(errno));
	check_self(ROOT);
	for (i = C1; i <= C3; i++) {
		c = wait_code(pid[i], names[i]);
		WL_CHECK(c == 0, "%s exit code %d", names[i], c);
	}
	c = wait_code(pid[C4], "zombie c4");
	WL_CHECK(c == 7, "zombie c4 exit status %d, want 7", c);
	return wl_finish();
}
