/*
 * floors: what this machine can do at best, for the throughputs ccr is bound by.
 * Each mode prints one line "<bytes> <seconds>".
 *
 *   floors memcpy MIB            memcpy between two MIB MiB buffers already faulted
 *                                in (best of 3)
 *   floors write PATH MIB [sync] write(2) MIB MiB in 1 MiB chunks to a new file
 *                                PATH (with "sync": fsync before the clock stops);
 *                                on tmpfs that is the fresh-page allocation rate
 *   floors read PATH             read(2) PATH in 1 MiB chunks (drop caches first
 *                                for the cold disk rate)
 */
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>

#include "bench.h"

#define CHUNK (1u << 20)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *fresh(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		BENCH_DIE("mmap");
	return p;
}

/* A chunk of non-zero, non-repeating words, so nothing can shortcut zero pages. */
static void fill(uint64_t *w, size_t words, uint64_t seed)
{
	for (size_t i = 0; i < words; i++) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		w[i] = seed;
	}
}

static int do_memcpy(size_t len)
{
	char *a = fresh(len), *b = fresh(len);
	double best = 1e9;

	fill((uint64_t *)a, len / 8, 88172645463325252ull);
	memset(b, 1, len);
	for (int i = 0; i < 3; i++) {
		double t = now();
		memcpy(b, a, len);
		t = now() - t;
		if (t < best)
			best = t;
		a[i] = b[len - 1 - i];
	}
	printf("%zu %.6f\n", len, best);
	return 0;
}

static int do_write(const char *path, size_t len, int sync)
{
	uint64_t *buf = fresh(CHUNK);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	double t;

	if (fd < 0)
		BENCH_DIE(path);
	fill(buf, CHUNK / 8, 88172645463325252ull);
	t = now();
	for (size_t off = 0; off < len; off += CHUNK) {
		buf[0] = off;
		if (write(fd, buf, CHUNK) != CHUNK)
			BENCH_DIE("write");
	}
	if (sync && fsync(fd))
		BENCH_DIE("fsync");
	t = now() - t;
	close(fd);
	printf("%zu %.6f\n", len, t);
	return 0;
}

static int do_read(const char *path)
{
	char *buf = fresh(CHUNK);
	int fd = open(path, O_RDONLY);
	size_t total = 0;
	ssize_t r;
	double t;

	if (fd < 0)
		BENCH_DIE(path);
	t = now();
	while ((r = read(fd, buf, CHUNK)) > 0)
		total += r;
	if (r < 0)
		BENCH_DIE("read");
	t = now() - t;
	close(fd);
	printf("%zu %.6f\n", total, t);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "memcpy"))
		return do_memcpy(strtoul(argv[2], NULL, 10) << 20);
	if (argc >= 4 && !strcmp(argv[1], "write"))
		return do_write(argv[2], strtoul(argv[3], NULL, 10) << 20,
				argc > 4 && !strcmp(argv[4], "sync"));
	if (argc >= 3 && !strcmp(argv[1], "read"))
		return do_read(argv[2]);
	fprintf(stderr, "usage: floors memcpy MIB | write PATH MIB [sync] | read PATH\n");
	return 2;
}
