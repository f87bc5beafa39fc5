/*
 * wl_memory: every kind of private and shared memory a plain process has, each
 * filled with its own pseudo-random pattern and checked byte by byte after
 * restore: heap (big and small blocks), stack, anonymous mmap (touched and
 * untouched pages), private file mapping with some pages copied-on-write,
 * shared file mapping (checked through the mapping and through the file),
 * sbrk-grown data, a read-only region and a PROT_NONE guard (protections are
 * checked in /proc/self/maps and by probing with a SIGSEGV handler).
 */
#include <setjmp.h>
#include <stdint.h>
#include <sys/mman.h>

#include "workload.h"

#define BIG_SIZE (6u << 20)
#define NSMALL 64
#define ANON_PAGES 64
#define PRIV_PAGES 16
#define SHARED_PAGES 8
#define BRK_SIZE (3 * 4096 + 100)
#define RO_PAGES 4
#define GUARD_PAGES 3

static long page;

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* Fills buf with the stream of `seed`; never zero bytes so untouched looks wrong. */
static void fill(void *buf, size_t len, uint64_t seed)
{
	uint8_t *p = buf;
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < len; i++) {
		uint8_t b = (uint8_t)(xorshift(&s) >> 24);
		p[i] = b ? b : 0x5a;
	}
}

/* Compares buf with the stream of `seed`; reports the first difference. */
static int check(const char *what, const void *buf, size_t len, uint64_t seed)
{
	const uint8_t *p = buf;
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < len; i++) {
		uint8_t b = (uint8_t)(xorshift(&s) >> 24);
		b = b ? b : 0x5a;
		if (p[i] != b) {
			wl_fail("%s: byte %zu of %zu is 0x%02x, want 0x%02x", what, i, len, p[i], b);
			return -1;
		}
	}
	return 0;
}

static int check_zero(const char *what, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		if (p[i]) {
			wl_fail("%s: byte %zu is 0x%02x, want 0", what, i, p[i]);
			return -1;
		}
	return 0;
}

/* The permission string ("rw-p") of the mapping holding addr, from /proc/self/maps. */
static int perms_of(const void *addr, char perms[5])
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int found = -1;

	if (!f)
		WL_DIE("open /proc/self/maps");
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char p[5];

		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, p) != 3)
			continue;
		if ((unsigned long)addr >= lo && (unsigned long)addr < hi) {
			memcpy(perms, p, 5);
			found = 0;
			break;
		}
	}
	fclose(f);
	return found;
}

static void check_perms(const char *what, const void *addr, const char *want)
{
	char p[5];

	if (perms_of(addr, p))
		wl_fail("%s: %p is in no mapping of /proc/self/maps", what, addr);
	else if (strcmp(p, want))
		wl_fail("%s: %p has perms %s, want %s", what, addr, p, want);
}

static sigjmp_buf probe_env;

static void segv_handler(int sig)
{
	siglongjmp(probe_env, sig);
}

/* Returns 1 if touching addr (a read, or a write if `write`) faults. */
static int faults(volatile uint8_t *addr, int write)
{
	struct sigaction sa, old_segv, old_bus;
	int faulted;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = segv_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGBUS, &sa, &old_bus);
	if (sigsetjmp(probe_env, 1) == 0) {
		if (write)
			*addr = 1;
		else
			(void)*addr;
		faulted = 0;
	} else {
		faulted = 1;
	}
	sigaction(SIGSEGV, &old_segv, NULL);
	sigaction(SIGBUS, &old_bus, NULL);
	return faulted;
}

static void *map_file(const char *path, size_t len, int flags, uint64_t seed)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	uint8_t *buf = malloc(len);
	void *m;

	if (fd < 0 || !buf)
		WL_DIE("create %s", path);
	fill(buf, len, seed);
	if (write(fd, buf, len) != (ssize_t)len)
		WL_DIE("write %s", path);
	free(buf);
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (m == MAP_FAILED)
		WL_DIE("mmap %s", path);
	close(fd);
	return m;
}

/* Reads one page of a file (by path) into buf. */
static void pread_page(const char *path, size_t idx, uint8_t *buf)
{
	int fd = open(path, O_RDONLY);

	if (fd < 0 || pread(fd, buf, page, idx * page) != page)
		WL_DIE("pread %s page %zu", path, idx);
	close(fd);
}

int main(int argc, char **argv)
{
	uint8_t stack_arr[48 * 1024];
	uint8_t *big, *small[NSMALL], *anon, *priv, *shared, *brk_area, *ro, *guard;
	size_t small_len[NSMALL];
	void *brk_end;
	uint8_t *tmp;
	char what[64];
	const char *priv_path, *shared_path;

	wl_install_term();
	wl_scratch(argc, argv);
	page = sysconf(_SC_PAGESIZE);
	tmp = malloc(page);
	priv_path = strdup(wl_path("private.dat"));
	shared_path = strdup(wl_path("shared.dat"));

	/* Heap: one block big enough to be its own mmap, many small ones. */
	big = malloc(BIG_SIZE);
	if (!big)
		WL_DIE("malloc big");
	fill(big, BIG_SIZE, 1);
	for (int i = 0; i < NSMALL; i++) {
		small_len[i] = 16 + (size_t)i * 61;
		small[i] = malloc(small_len[i]);
		if (!small[i])
			WL_DIE("malloc small");
		fill(small[i], small_len[i], 100 + i);
	}

	fill(stack_arr, sizeof(stack_arr), 2);

	/* Anonymous private memory: even pages touched, odd pages never. */
	anon = mmap(NULL, ANON_PAGES * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (anon == MAP_FAILED)
		WL_DIE("mmap anon");
	for (int i = 0; i < ANON_PAGES; i += 2)
		fill(anon + i * page, page, 300 + i);

	/* Private file mapping: pages 1, 3, 5 are copied-on-write with new data. */
	priv = map_file(priv_path, PRIV_PAGES * page, MAP_PRIVATE, 3);
	for (int i = 1; i <= 5; i += 2)
		fill(priv + i * page, page, 400 + i);

	/* Shared file mapping: pages 0 and 2 rewritten, through to the file. */
	shared = map_file(shared_path, SHARED_PAGES * page, MAP_SHARED, 4);
	fill(shared, page, 500);
	fill(shared + 2 * page, page, 502);

	/* Data grown with sbrk. */
	brk_area = sbrk(BRK_SIZE);
	if (brk_area == (void *)-1)
		WL_DIE("sbrk");
	fill(brk_area, BRK_SIZE, 5);
	brk_end = sbrk(0);

	/* A read-only region with data, and a PROT_NONE guard. */
	ro = mmap(NULL, RO_PAGES * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ro == MAP_FAILED)
		WL_DIE("mmap ro");
	fill(ro, RO_PAGES * page, 6);
	if (mprotect(ro, RO_PAGES * page, PROT_READ))
		WL_DIE("mprotect ro");
	guard = mmap(NULL, GUARD_PAGES * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (guard == MAP_FAILED)
		WL_DIE("mmap guard");

	wl_ready();
	if (wl_selftest_break())
		big[BIG_SIZE / 2] ^= 0x10;
	wl_wait_for_term();

	check("heap big block", big, BIG_SIZE, 1);
	for (int i = 0; i < NSMALL; i++) {
		snprintf(what, sizeof(what), "heap small block %d", i);
		check(what, small[i], small_len[i], 100 + i);
	}
	check("stack array", stack_arr, sizeof(stack_arr), 2);
	for (int i = 0; i < ANON_PAGES; i++) {
		snprintf(what, sizeof(what), "anon page %d", i);
		if (i % 2 == 0)
			check(what, anon + i * page, page, 300 + i);
		else
			check_zero(what, anon + i * page, page);
	}
	for (int i = 0; i < PRIV_PAGES; i++) {
		uint8_t *want = malloc(page);
		uint8_t *file_all = malloc(PRIV_PAGES * page);

		snprintf(what, sizeof(what), "private file map page %d", i);
		if (i % 2 == 1 && i <= 5) {
			check(what, priv + i * page, page, 400 + i);
		} else {
			/* Unmodified: the file's own content (the pattern of seed 3). */
			fill(file_all, PRIV_PAGES * page, 3);
			memcpy(want, file_all + i * page, page);
			if (memcmp(priv + i * page, want, page))
				wl_fail("%s: differs from the file content", what);
		}
		/* The file itself never sees private writes. */
		pread_page(priv_path, i, tmp);
		fill(file_all, PRIV_PAGES * page, 3);
		if (memcmp(tmp, file_all + i * page, page))
			wl_fail("private.dat page %d on disk changed", i);
		free(want);
		free(file_all);
	}
	{
		uint8_t *file_all = malloc(SHARED_PAGES * page);

		fill(file_all, SHARED_PAGES * page, 4);
		for (int i = 0; i < SHARED_PAGES; i++) {
			snprintf(what, sizeof(what), "shared file map page %d", i);
			if (i == 0 || i == 2) {
				check(what, shared + i * page, page, 500 + i);
				pread_page(shared_path, i, tmp);
				snprintf(what, sizeof(what), "shared.dat page %d on disk", i);
				check(what, tmp, page, 500 + i);
			} else {
				if (memcmp(shared + i * page, file_all + i * page, page))
					wl_fail("%s: differs from original content", what);
				pread_page(shared_path, i, tmp);
				if (memcmp(tmp, file_all + i * page, page))
					wl_fail("shared.dat page %d on disk changed", i);
			}
		}
		/* A write now must still reach the file: the mapping is still shared. */
		shared[7 * page + 5] ^= 0xff;
		pread_page(shared_path, 7, tmp);
		if (tmp[5] != shared[7 * page + 5])
			wl_fail("shared mapping no longer writes through to shared.dat");
		/* Undo it: a later restore of a --leave-running dump reads this file. */
		shared[7 * page + 5] ^= 0xff;
		if (msync(shared + 7 * page, page, MS_SYNC))
			wl_fail("msync shared.dat: %s", strerror(errno));
		free(file_all);
	}
	check("sbrk area", brk_area, BRK_SIZE, 5);
	if (sbrk(0) != brk_end)
		wl_fail("program break is %p, want %p", sbrk(0), brk_end);
	check("read-only region", ro, RO_PAGES * page, 6);
	check_perms("read-only region", ro, "r--p");
	check_perms("read-only region end", ro + RO_PAGES * page - 1, "r--p");
	check_perms("guard region", guard, "---p");
	check_perms("guard region end", guard + GUARD_PAGES * page - 1, "---p");
	if (!faults(ro + page, 1))
		wl_fail("writing the read-only region did not fault");
	if (faults(ro + page, 0))
		wl_fail("reading the read-only region faulted");
	if (!faults(guard + page, 0))
		wl_fail("reading the PROT_NONE guard did not fault");
	check_perms("heap big block", big, "rw-p");
	check_perms("stack array", stack_arr, "rw-p");
	check_perms("shared file map", shared, "rw-s");
	return wl_finish();
}
