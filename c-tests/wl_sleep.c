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
 *
 * WL_SLEEP_MODE=sigwait: sigtimedwait with no timeout on a blocked SIGUSR2 (as
 * busybox init waits for SIGCHLD), in a loop. Only SIGTERM (a handler, not
 * blocked) may end it with EINTR: an EINTR without it is a FAIL, as is any
 * signal taken.
 *
 * WL_SLEEP_MODE=epoll: epoll_wait with no timeout on an eventfd nobody writes
 * (a daemon's event loop), with the same rule.
 *
 * WL_SLEEP_MODE=pause: pause() in a loop with a SIGUSR1 handler; each return
 * prints "woke N". A signal with a handler ends a pause (EINTR), also one that
 * came while ccr held the task stopped in it: every signal taken must have
 * ended exactly one pause, or the task waited on after its wakeup.
 */
#include <sys/epoll.h>
#include <sys/eventfd.h>
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

/* Waits until SIGTERM in `wait_once` (0: a return, -1 with errno: a failure). */
static void wait_for_term_in(const char *what, int (*wait_once)(int brk), int brk)
{
	wl_ready();
	for (;;) {
		int r = wait_once(brk);

		if (wl_term)
			return;
		if (r < 0 && errno == EINTR) {
			wl_fail("%s failed with EINTR without SIGTERM", what);
			continue;
		}
		if (r < 0)
			wl_fail("%s: %s", what, strerror(errno));
		else
			wl_fail("%s returned %d without SIGTERM", what, r);
		return;
	}
}

static int sigwait_once(int brk)
{
	struct timespec tenth = { 0, 100000000 };
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	/* Self test: a timeout ends the wait before SIGTERM comes. */
	return sigtimedwait(&set, NULL, brk ? &tenth : NULL);
}

static int epfd = -1;

static int epoll_once(int brk)
{
	struct epoll_event ev;

	return epoll_wait(epfd, &ev, 1, brk ? 100 : -1);
}

static volatile sig_atomic_t usr1_taken;

static void on_usr1(int sig)
{
	(void)sig;
	usr1_taken++;
}

static void sleep_pause(int brk)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	/* Self test: one return too few is counted, as if one pause went on. */
	int woken = -brk;

	if (sigaction(SIGUSR1, &sa, NULL))
		WL_DIE("sigaction");
	wl_ready();
	while (!wl_term) {
		pause();
		woken++;
		wl_info("woke %d", woken);
	}
	wl_info("%d SIGUSR1 taken", (int)usr1_taken);
	WL_CHECK(woken == usr1_taken + 1, "pause returned %d times for %d signals taken", woken,
		 (int)usr1_taken + 1);
}

int main(int argc, char **argv)
{
	const char *mode = getenv("WL_SLEEP_MODE");

	(void)argc;
	(void)argv;
	wl_install_term();
	/* Self test: a deadline 0.1 s away ends the sleep before SIGTERM comes. */
	if (mode && !strcmp(mode, "relative")) {
		sleep_relative(wl_selftest_break());
	} else if (mode && !strcmp(mode, "sigwait")) {
		sigset_t usr2;

		sigemptyset(&usr2);
		sigaddset(&usr2, SIGUSR2);
		if (sigprocmask(SIG_BLOCK, &usr2, NULL))
			WL_DIE("sigprocmask");
		wait_for_term_in("sigtimedwait", sigwait_once, wl_selftest_break());
	} else if (mode && !strcmp(mode, "pause")) {
		sleep_pause(wl_selftest_break());
	} else if (mode && !strcmp(mode, "epoll")) {
		struct epoll_event ev = { .events = EPOLLIN };
		int efd = eventfd(0, EFD_CLOEXEC);

		epfd = epoll_create1(EPOLL_CLOEXEC);
		if (efd < 0 || epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev))
			WL_DIE("an epoll set");
		wait_for_term_in("epoll_wait", epoll_once, wl_selftest_break());
	} else
		sleep_absolute(wl_selftest_break());
	return wl_finish();
}
