/*
 * wl_sleep: the task is blocked in a sleep when it is dumped; after restore it
 * must go on sleeping until SIGTERM.
 *
 * Default mode: clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) to a deadline an
 * hour away, in a loop. Any return without the SIGTERM flag set (EINTR or an
 * early "deadline reached") is a FAIL: an absolute sleep is restarted
 * transparently by the kernel, and must be by ccr.
 *
 * WL_SLEEP_MODE=relative: nanosleep(&req, &rem) for an hour, continuing with rem
 * on EINTR as coreutils sleep does. A restore may surface EINTR here (the kernel
 * restart block does not survive); that is allowed, but rem must be sane: the
 * time slept plus rem stays close to the hour asked for.
 */
#include <time.h>

#include "workload.h"

#define HOUR 3600

static double now_mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void sleep_absolute(int brk)
{
	struct timespec deadline;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	if (brk)
		deadline.tv_nsec += 100000000; /* self test: 0.1 s */
	else
		deadline.tv_sec += HOUR;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	wl_ready();
	for (;;) {
		r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL);
		if (wl_term)
			break;
		if (r == EINTR) {
			wl_fail("clock_nanosleep returned EINTR without SIGTERM");
			continue;
		}
		if (r == 0) {
			double left = deadline.tv_sec + deadline.tv_nsec / 1e9 - now_mono();

			if (left > 0)
				wl_fail("clock_nanosleep returned %.3f s before its deadline", left);
			else
				wl_fail("the sleep ended without SIGTERM");
			break;
		}
		wl_fail("clock_nanosleep: %s", strerror(r));
		break;
	}
	{
		double left = deadline.tv_sec + deadline.tv_nsec / 1e9 - now_mono();

		WL_CHECK(left > 0, "woke %.3f s after the deadline", -left);
	}
}

static void sleep_relative(int brk)
{
	struct timespec req = { brk ? 0 : HOUR, brk ? 100000000 : 0 }, rem;
	double start, slept;
	int eintr = 0;

	start = now_mono();
	wl_ready();
	for (;;) {
		if (nanosleep(&req, &rem) == 0) {
			wl_fail("the sleep ended without SIGTERM");
			return;
		}
		if (errno != EINTR) {
			wl_fail("nanosleep: %s", strerror(errno));
			return;
		}
		if (wl_term)
			break;
		eintr++;
		req = rem;
	}
	slept = now_mono() - start;
	if (eintr)
		wl_info("%d EINTR without SIGTERM, continued with rem", eintr);
	/* Continuing with rem after a restore may oversleep by the downtime. */
	WL_CHECK(slept + rem.tv_sec + rem.tv_nsec / 1e9 > HOUR - 1 &&
			 slept + rem.tv_sec + rem.tv_nsec / 1e9 < HOUR + 120,
		 "slept %.3f s with %ld.%09ld s left of %d s", slept, (long)rem.tv_sec,
		 rem.tv_nsec, HOUR);
}

int main(int argc, char **argv)
{
	const char *mode = getenv("WL_SLEEP_MODE");

	(void)argc;
	(void)argv;
	wl_install_term();
	/* Self test: a deadline 0.1 s away ends the sleep before SIGTERM comes. */
	if (mode && !strcmp(mode, "relative"))
		sleep_relative(wl_selftest_break());
	else
		sleep_absolute(wl_selftest_break());
	return wl_finish();
}
