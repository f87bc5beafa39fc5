/*
 * wl_timens: the clocks of a time namespace. Run by the tests inside
 * `unshare --time --monotonic N --boottime M`; alone it runs in the host's.
 *
 * At ready it reads CLOCK_MONOTONIC, CLOCK_BOOTTIME and CLOCK_REALTIME and its
 * namespace's offsets (/proc/self/timens_offsets, printed as an info line). On
 * SIGTERM: monotonic and boottime have not gone back, boottime - monotonic is
 * what it was (to 1 s: no suspend happens in a test), and the info line
 * "lag N ms" says how far monotonic fell behind the wall clock (a restore that
 * keeps a time namespace's clocks continuous leaves out the time the task was
 * not running; the test checks that).
 *
 * Self test: the monotonic reading at ready is moved an hour ahead.
 */
#include <time.h>

#include "workload.h"

static long long ns_of(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void print_offsets(const char *when)
{
	char buf[256] = "";
	FILE *f = fopen("/proc/self/timens_offsets", "r");
	size_t n;

	if (!f) {
		wl_info("%s: no /proc/self/timens_offsets", when);
		return;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	for (char *p = buf; *p; p++)
		if (*p == '\n')
			*p = ' ';
	wl_info("%s: offsets %s", when, buf);
}

int main(int argc, char **argv)
{
	long long m0, b0, r0, m1, b1, r1;

	(void)argc;
	(void)argv;
	wl_install_term();
	m0 = ns_of(CLOCK_MONOTONIC);
	b0 = ns_of(CLOCK_BOOTTIME);
	r0 = ns_of(CLOCK_REALTIME);
	wl_info("monotonic %lld s, boottime %lld s", m0 / 1000000000LL, b0 / 1000000000LL);
	print_offsets("at ready");
	wl_ready();
	if (wl_selftest_break())
		m0 += 3600LL * 1000000000LL;
	wl_wait_for_term();
	m1 = ns_of(CLOCK_MONOTONIC);
	b1 = ns_of(CLOCK_BOOTTIME);
	r1 = ns_of(CLOCK_REALTIME);
	print_offsets("at the end");
	if (m1 < m0)
		wl_fail("CLOCK_MONOTONIC went back by %lld ms", (m0 - m1) / 1000000);
	if (b1 < b0)
		wl_fail("CLOCK_BOOTTIME went back by %lld ms", (b0 - b1) / 1000000);
	if (llabs((b1 - m1) - (b0 - m0)) > 1000000000LL)
		wl_fail("boottime - monotonic changed from %lld ms to %lld ms", (b0 - m0) / 1000000, (b1 - m1) / 1000000);
	wl_info("lag %lld ms", ((r1 - r0) - (m1 - m0)) / 1000000);
	return wl_finish();
}
