/*
 * wl_sysvshm: SysV shared memory between a parent and its child.
 *
 *  - a keyed segment (64 KiB, mode 0640) attached by the parent and inherited by
 *    the child through fork, holding a known pattern;
 *  - a private segment attached read-only and then removed (IPC_RMID) while still
 *    attached, holding a second pattern.
 * On SIGTERM the child writes a new word into the keyed segment and exits; the
 * parent must see it (shared, not copied), find both patterns, the segment's size
 * and mode as set, and the removed one still readable. It removes the keyed
 * segment before it exits.
 *
 * Self test: the parent detaches the keyed segment and attaches a fresh one at
 * the same place after "ready".
 */
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/wait.h>

#include "workload.h"

#define SIZE (64 * 1024)

int main(int argc, char **argv)
{
	int keyed, priv, st, i;
	unsigned char *a, *p;
	key_t key;
	pid_t child;
	struct shmid_ds ds;

	wl_scratch(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	wl_install_term();
	key = 0x0cc00000 | (getpid() & 0xfffff);
	keyed = shmget(key, SIZE, IPC_CREAT | IPC_EXCL | 0640);
	priv = shmget(IPC_PRIVATE, SIZE, IPC_CREAT | 0600);
	if (keyed < 0 || priv < 0)
		WL_DIE("shmget");
	a = shmat(keyed, NULL, 0);
	p = shmat(priv, NULL, 0);
	if (a == (void *)-1 || p == (void *)-1)
		WL_DIE("shmat");
	for (i = 0; i < SIZE; i++) {
		a[i] = (unsigned char)(i * 7 + 1);
		p[i] = (unsigned char)(i * 13 + 5);
	}
	/* The private one read-only from now on, and removed while attached. */
	shmdt(p);
	p = shmat(priv, NULL, SHM_RDONLY);
	if (p == (void *)-1 || shmctl(priv, IPC_RMID, NULL))
		WL_DIE("reattach / IPC_RMID");
	child = fork();
	if (child < 0)
		WL_DIE("fork");
	if (child == 0) {
		wl_install_term();
		wl_wait_for_term();
		memcpy(a + 100, "child was here", 14);
		_exit(0);
	}
	wl_info("keyed %d private %d child %d", keyed, priv, child);
	wl_ready();
	if (wl_selftest_break()) {
		int fresh = shmget(IPC_PRIVATE, SIZE, IPC_CREAT | 0600);

		shmdt(a);
		if (fresh < 0 || shmat(fresh, a, 0) != a || shmctl(fresh, IPC_RMID, NULL))
			WL_DIE("selftest");
	}
	wl_wait_for_term();

	kill(child, SIGTERM);
	while (waitpid(child, &st, 0) < 0)
		if (errno != EINTR)
			WL_DIE("waitpid");
	WL_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
	WL_CHECK(!memcmp(a + 100, "child was here", 14), "the child's write is not in the parent's view");
	for (i = 0; i < SIZE; i++) {
		if (i >= 100 && i < 114)
			continue;
		if (a[i] != (unsigned char)(i * 7 + 1)) {
			wl_fail("keyed segment byte %d is %u", i, a[i]);
			break;
		}
	}
	for (i = 0; i < SIZE; i++) {
		if (p[i] != (unsigned char)(i * 13 + 5)) {
			wl_fail("removed segment byte %d is %u", i, p[i]);
			break;
		}
	}
	WL_CHECK(shmctl(keyed, IPC_STAT, &ds) == 0 && ds.shm_segsz == SIZE && (ds.shm_perm.mode & 0777) == 0640,
		 "keyed segment: size %zu mode %o", (size_t)ds.shm_segsz, ds.shm_perm.mode & 0777);
	shmctl(keyed, IPC_RMID, NULL);
	return wl_finish();
}
