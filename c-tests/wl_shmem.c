/*
 * wl_shmem: memory inherited across fork, shared and private.
 *
 * Before fork the parent fills a MAP_SHARED|MAP_ANONYMOUS region and a
 * MAP_PRIVATE|MAP_ANONYMOUS region (SIZE bytes each) with known patterns. On
 * SIGTERM the parent writes PARENT_MARK into the shared region and passes
 * SIGTERM to the child. The child checks both patterns and the parent's mark,
 * then writes CHILD_MARK into the shared region and CHILD_MARK into its private
 * copy, and exits. The parent then sees CHILD_MARK in the shared region and
 * still its own pattern in the private one (the child's write is not seen).
 *
 * Self test: the parent changes one byte of its private region after "ready".
 */
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "workload.h"

#define SIZE (256 * 1024)
#define MARK_AT 1000 /* word index of the marks (outside the checked pattern) */
#define PARENT_MARK 0x5a5a1234u
#define CHILD_MARK 0xc0ffee77u

static uint32_t *shared, *priv;

static uint32_t pat(int region, size_t i)
{
	return (uint32_t)(i * 2654435761u) ^ (uint32_t)(region * 0x1111);
}

static void fill(uint32_t *p, int region)
{
	for (size_t i = 0; i < SIZE / 4; i++)
		p[i] = pat(region, i);
	p[MARK_AT] = 0;
}

static void check_pattern(const uint32_t *p, int region, const char *who, const char *what)
{
	for (size_t i = 0; i < SIZE / 4; i++) {
		if (i != MARK_AT && p[i] != pat(region, i)) {
			wl_fail("%s: %s region word %zu is 0x%x, want 0x%x", who, what, i, p[i],
				pat(region, i));
			return;
		}
	}
}

static void child(void)
{
	wl_install_term();
	wl_wait_for_term();
	check_pattern(shared, 1, "child", "shared");
	check_pattern(priv, 2, "child", "private");
	WL_CHECK(__atomic_load_n(&shared[MARK_AT], __ATOMIC_SEQ_CST) == PARENT_MARK,
		 "child sees the parent's mark in the shared region: 0x%x", shared[MARK_AT]);
	WL_CHECK(priv[MARK_AT] == 0, "private mark 0x%x", priv[MARK_AT]);
	priv[MARK_AT] = CHILD_MARK;
	__atomic_store_n(&shared[MARK_AT], CHILD_MARK, __ATOMIC_SEQ_CST);
	exit(wl_failures ? 1 : 0);
}

int main(int argc, char **argv)
{
	pid_t pid;
	int st;

	wl_scratch(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	wl_install_term();
	shared = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	priv = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED || priv == MAP_FAILED)
		WL_DIE("mmap");
	fill(shared, 1);
	fill(priv, 2);
	pid = fork();
	if (pid < 0)
		WL_DIE("fork");
	if (pid == 0)
		child();
	wl_info("child %d", pid);
	wl_ready();
	if (wl_selftest_break())
		((volatile uint32_t *)priv)[77] ^= 1;
	wl_wait_for_term();

	__atomic_store_n(&shared[MARK_AT], PARENT_MARK, __ATOMIC_SEQ_CST);
	kill(pid, SIGTERM);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			WL_DIE("waitpid");
	WL_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
	WL_CHECK(__atomic_load_n(&shared[MARK_AT], __ATOMIC_SEQ_CST) == CHILD_MARK,
		 "parent sees the child's write in the shared region: 0x%x", shared[MARK_AT]);
	WL_CHECK(priv[MARK_AT] == 0, "child's private write is not seen by the parent: 0x%x",
		 priv[MARK_AT]);
	check_pattern(shared, 1, "parent", "shared");
	check_pattern(priv, 2, "parent", "private");
	return wl_finish();
}
