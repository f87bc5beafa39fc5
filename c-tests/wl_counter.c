/*
 * wl_counter: a CPU-bound loop. It counts and keeps a hash chain over every
 * value it counted; after restore it recomputes the chain from 0 up to the
 * counter, so memory that was reset, reverted or corrupted, or registers that
 * came back wrong, show as a mismatch. The counter must also have moved on from
 * its value at "ready".
 */
#include <stdint.h>

#include "workload.h"

struct state {
	volatile uint64_t counter;
	volatile uint64_t hash;
};

static struct state st;

static uint64_t step(uint64_t h, uint64_t n)
{
	h ^= n + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdull;
}

static void spin(uint64_t until)
{
	while (!wl_term && (until == 0 || st.counter < until)) {
		uint64_t n = st.counter + 1;

		st.hash = step(st.hash, n);
		st.counter = n;
	}
}

int main(int argc, char **argv)
{
	uint64_t at_ready, h = 0x1234;

	(void)argc;
	(void)argv;
	wl_install_term();
	st.hash = 0x1234;
	spin(1000000);
	at_ready = st.counter;
	wl_ready();
	if (wl_selftest_break()) {
		spin(at_ready + 1000);
		st.hash ^= 1;
	}
	spin(0);

	printf("counter=%llu at_ready=%llu\n", (unsigned long long)st.counter,
	       (unsigned long long)at_ready);
	WL_CHECK(st.counter > at_ready, "counter %llu did not move past %llu",
		 (unsigned long long)st.counter, (unsigned long long)at_ready);
	for (uint64_t n = 1; n <= st.counter; n++)
		h = step(h, n);
	WL_CHECK(h == st.hash, "hash chain over 1..%llu is %016llx, memory says %016llx",
		 (unsigned long long)st.counter, (unsigned long long)h,
		 (unsigned long long)st.hash);
	return wl_finish();
}
