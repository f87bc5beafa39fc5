/*
 * bench.h: the frame shared by the benchmark workloads (one translation unit each).
 *
 * A workload sets up its state, prints "ready", sleeps until SIGTERM, then checks
 * its state and exits 0 (intact) or 1 (broken). The harness starts it with
 * stdin=/dev/null, stdout/stderr to a regular file, no other fds, in its own
 * session, so ccr can dump it.
 */
#ifndef CCR_BENCH_H
#define CCR_BENCH_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t bench_term;

static inline void bench_term_handler(int sig)
{
	(void)sig;
	bench_term = 1;
}

/* Setup failures are not a verdict on ccr: exit 2. */
#define BENCH_DIE(what)                                                    \
	do {                                                               \
		printf("setup failed: %s: %s\n", what, strerror(errno));   \
		fflush(stdout);                                            \
		exit(2);                                                   \
	} while (0)

/* Installs the SIGTERM flag handler; call before anything that forks. */
static inline void bench_install_term(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = bench_term_handler;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL))
		BENCH_DIE("sigaction");
}

static inline void bench_ready(void)
{
	printf("ready\n");
	fflush(stdout);
}

/* Sleeps in sigsuspend() until SIGTERM arrived. */
static inline void bench_wait_for_term(void)
{
	sigset_t term, old;

	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &term, &old))
		BENCH_DIE("sigprocmask");
	sigdelset(&old, SIGTERM);
	while (!bench_term)
		sigsuspend(&old);
}

#endif /* CCR_BENCH_H */
