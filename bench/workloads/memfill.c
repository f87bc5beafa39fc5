/*
 * memfill MIB: maps MIB MiB of private anonymous memory, fills every 8-byte word
 * from a xorshift64 stream (non-zero, non-repeating), prints "ready", sleeps
 * until SIGTERM, then recomputes the stream and exits 0 if every word is intact.
 */
#include <stdint.h>
#include <sys/mman.h>

#include "bench.h"

#define SEED 0x9e3779b97f4a7c15ull

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
	size_t words = mib << 17;
	uint64_t *buf, s = SEED;

	bench_install_term();
	buf = mmap(NULL, mib << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		BENCH_DIE("mmap");
	for (size_t i = 0; i < words; i++)
		buf[i] = xorshift64(&s);
	bench_ready();
	bench_wait_for_term();

	s = SEED;
	for (size_t i = 0; i < words; i++) {
		if (buf[i] != xorshift64(&s)) {
			printf("FAIL: word %zu of %zu differs\n", i, words);
			return 1;
		}
	}
	printf("PASS\n");
	return 0;
}
