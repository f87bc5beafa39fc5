/*
 * wl_memfd: memfds held as fds and mapped, by a parent and its child.
 *
 *  - "wl-data": 1 MiB, sparse (pages 0, 1 and 200 written, the rest holes),
 *    sealed against shrinking and growing; fd A at offset 1234 and a dup of it
 *    (one description, one offset); fd B opened again through /proc (a second
 *    description, offset 77, read-only); pages 0-3 mapped shared;
 *  - "wl-plain": made without MFD_ALLOW_SEALING (its seals are F_SEAL_SEAL);
 *  - "wl-sealed": write-sealed, mapped read-only; "wl-future": mapped writable,
 *    then sealed against future writes (the mapping still writes);
 *  - "wl-split": three pages written with write(2); the parent maps four pages
 *    of it (past its end) and closes its fd, the child keeps the fd (the pages
 *    only the fd reaches must come back, and the size the fd shows);
 *  - a child, forked after all of it, that shares fd A's description and the
 *    mapping, and changes the memfd through its mapping after "ready".
 *
 * On SIGTERM the parent checks that contents, holes, size, seals, names and
 * offsets are as they were, that fd, dup, reopened fd and both tasks' mappings
 * are one file (a write through one is seen through every other), and that the
 * child's write arrived; the child checks its side and exits 0.
 *
 * Self test: the parent moves fd A's offset after "ready".
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include "workload.h"

#define SIZE (1 << 20)
#define PAGE 4096

static void fill(char *b, int page)
{
	for (int i = 0; i < PAGE; i++)
		b[i] = (char)(page * 7 + i % 251);
}

static int check_page(int fd, int page, const char *who)
{
	char want[PAGE], got[PAGE];

	fill(want, page);
	if (pread(fd, got, PAGE, (off_t)page * PAGE) != PAGE) {
		wl_fail("%s: pread page %d: %s", who, page, strerror(errno));
		return 0;
	}
	if (memcmp(want, got, PAGE)) {
		wl_fail("%s: page %d differs", who, page);
		return 0;
	}
	return 1;
}

static int starts_with_link(int fd, const char *prefix)
{
	char p[64], l[256];
	ssize_t n;

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	n = readlink(p, l, sizeof(l) - 1);
	if (n < 0)
		return 0;
	l[n] = 0;
	return strncmp(l, prefix, strlen(prefix)) == 0;
}

int main(int argc, char **argv)
{
	int a, a2, b, plain, st, sealed, future, split;
	char page[PAGE], path[64], *map, *smap, *fmap, *split_map, zero[PAGE] = { 0 }, got[PAGE];
	struct stat sb;
	pid_t kid;

	wl_scratch(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	wl_install_term();

	a = memfd_create("wl-data", MFD_ALLOW_SEALING);
	plain = memfd_create("wl-plain", 0);
	if (a < 0 || plain < 0 || ftruncate(a, SIZE) || write(plain, "plain", 5) != 5)
		WL_DIE("memfd_create");
	for (int p = 0; p < 201; p += (p == 1 ? 199 : 1)) {
		fill(page, p);
		if (pwrite(a, page, PAGE, (off_t)p * PAGE) != PAGE)
			WL_DIE("pwrite");
	}
	if (fcntl(a, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
		WL_DIE("F_ADD_SEALS");
	if (lseek(a, 1234, SEEK_SET) != 1234)
		WL_DIE("lseek");
	a2 = dup(a);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", a);
	b = open(path, O_RDONLY);
	if (a2 < 0 || b < 0 || lseek(b, 77, SEEK_SET) != 77)
		WL_DIE("dup/reopen");
	map = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, a, 0);
	if (map == MAP_FAILED)
		WL_DIE("mmap");

	sealed = memfd_create("wl-sealed", MFD_ALLOW_SEALING);
	future = memfd_create("wl-future", MFD_ALLOW_SEALING);
	split = memfd_create("wl-split", 0);
	if (sealed < 0 || future < 0 || split < 0)
		WL_DIE("memfd_create");
	fill(page, 5);
	if (write(sealed, page, PAGE) != PAGE || fcntl(sealed, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW))
		WL_DIE("sealed");
	/* Mapped through a read-only fd: a read-write one's shared mapping could
	 * write (kernels before 6.7 refuse it on a write-sealed memfd). */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", sealed);
	st = open(path, O_RDONLY);
	smap = st < 0 ? MAP_FAILED : mmap(NULL, PAGE, PROT_READ, MAP_SHARED, st, 0);
	close(st);
	fill(page, 6);
	if (smap == MAP_FAILED || write(future, page, PAGE) != PAGE)
		WL_DIE("sealed mmap");
	fmap = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, future, 0);
	if (fmap == MAP_FAILED || fcntl(future, F_ADD_SEALS, F_SEAL_FUTURE_WRITE))
		WL_DIE("future");
	for (int p = 0; p < 3; p++) {
		fill(page, 10 + p);
		if (write(split, page, PAGE) != PAGE)
			WL_DIE("split");
	}
	/* Four pages of a three-page memfd: the mapping reaches past its end. */
	split_map = mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED, split, 0);
	if (split_map == MAP_FAILED)
		WL_DIE("split mmap");

	kid = fork();
	if (kid < 0)
		WL_DIE("fork");
	if (kid == 0) {
		wl_wait_for_term();
		WL_CHECK(fstat(split, &sb) == 0 && sb.st_size == 3 * PAGE, "child: wl-split is %ld bytes",
			 (long)sb.st_size);
		/* Pages 1 and 2 of wl-split are reached only through this fd. */
		for (int p = 0; p < 3; p++) {
			char w[PAGE];

			fill(w, 10 + p);
			WL_CHECK(pread(split, got, PAGE, (off_t)p * PAGE) == PAGE && !memcmp(got, w, PAGE),
				 "child: wl-split page %d", p);
		}
		/* The parent's write through its fd is in our mapping. */
		WL_CHECK(map[2 * PAGE] == 'P', "child: mapping misses the parent's write (%d)", map[2 * PAGE]);
		WL_CHECK(lseek(a, 0, SEEK_CUR) == 1234, "child: fd A at %ld", (long)lseek(a, 0, SEEK_CUR));
		map[3 * PAGE] = 'C';
		return wl_failures ? 1 : 0;
	}
	close(split);
	wl_ready();
	if (wl_selftest_break())
		lseek(a, 1, SEEK_SET);
	wl_wait_for_term();

	/* What was there before the checkpoint. */
	for (int p = 0; p < 201; p += (p == 1 ? 199 : 1))
		check_page(a, p, "fd A");
	if (pread(a, got, PAGE, 100 * PAGE) != PAGE || memcmp(got, zero, PAGE))
		wl_fail("a hole is not zero");
	WL_CHECK(fstat(a, &sb) == 0 && sb.st_size == SIZE, "size %ld", (long)sb.st_size);
	WL_CHECK(fcntl(a, F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW), "seals %#x", fcntl(a, F_GET_SEALS));
	WL_CHECK(fcntl(plain, F_GET_SEALS) == F_SEAL_SEAL, "plain seals %#x", fcntl(plain, F_GET_SEALS));
	WL_CHECK(ftruncate(a, PAGE) < 0 && errno == EPERM, "shrinking a sealed memfd worked");
	WL_CHECK(starts_with_link(a, "/memfd:wl-data"), "fd A is not memfd:wl-data");
	WL_CHECK(starts_with_link(plain, "/memfd:wl-plain"), "plain is not memfd:wl-plain");
	WL_CHECK(pread(plain, got, 5, 0) == 5 && !memcmp(got, "plain", 5), "plain contents");
	WL_CHECK(lseek(a, 0, SEEK_CUR) == 1234, "fd A at %ld", (long)lseek(a, 0, SEEK_CUR));
	WL_CHECK(lseek(b, 0, SEEK_CUR) == 77, "fd B at %ld", (long)lseek(b, 0, SEEK_CUR));
	WL_CHECK((fcntl(b, F_GETFL) & O_ACCMODE) == O_RDONLY, "fd B is not read-only");
	/* One description: moving A moves its dup. */
	lseek(a2, 4321, SEEK_SET);
	WL_CHECK(lseek(a, 0, SEEK_CUR) == 4321, "fd A and its dup are not one description");
	lseek(a, 1234, SEEK_SET);
	/* One file: fd, reopened fd and mapping. */
	fill(page, 0);
	WL_CHECK(!memcmp(map, page, PAGE), "mapping page 0 differs");
	map[PAGE] = 'M';
	WL_CHECK(pread(b, got, 1, PAGE) == 1 && got[0] == 'M', "a write through the mapping is not in fd B");
	WL_CHECK(pwrite(a, "P", 1, 2 * PAGE) == 1, "pwrite");

	/* Sealed ones keep their seals and what they allow. */
	fill(page, 5);
	WL_CHECK(!memcmp(smap, page, PAGE), "wl-sealed mapping differs");
	WL_CHECK((fcntl(sealed, F_GET_SEALS) & F_SEAL_WRITE) != 0, "wl-sealed lost its write seal");
	WL_CHECK(pwrite(sealed, "x", 1, 0) < 0 && errno == EPERM, "a write-sealed memfd took a write");
	WL_CHECK((fcntl(future, F_GET_SEALS) & F_SEAL_FUTURE_WRITE) != 0, "wl-future lost its seal");
	WL_CHECK(pwrite(future, "x", 1, 0) < 0 && errno == EPERM, "a future-write-sealed memfd took a write");
	fmap[1] = 'F';
	WL_CHECK(pread(future, got, 2, 0) == 2 && got[1] == 'F', "the mapping made before the seal no longer writes");
	fill(page, 10);
	WL_CHECK(!memcmp(split_map, page, PAGE), "wl-split mapping differs");

	kill(kid, SIGTERM);
	WL_CHECK(waitpid(kid, &st, 0) == kid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed (%#x)", st);
	WL_CHECK(map[3 * PAGE] == 'C', "the child's write through its mapping is not in ours");
	WL_CHECK(pread(a, got, 1, 3 * PAGE) == 1 && got[0] == 'C', "the child's write is not in the file");
	return wl_finish();
}
