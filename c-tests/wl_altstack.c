/*
 * wl_altstack: a sigaltstack on a malloc'd stack and a SA_ONSTACK handler for
 * SIGUSR1. After restore the altstack reads back as set, and a raised SIGUSR1
 * runs on it (the handler checks the address of one of its locals).
 */
#include <stdint.h>

#include "workload.h"

#define ALT_SIZE (64 * 1024)

static uint8_t *alt;
static volatile sig_atomic_t ran, on_alt, flagged_onstack;

static void usr1_handler(int sig)
{
	volatile int local = sig;
	stack_t cur;

	ran++;
	on_alt = (uintptr_t)&local >= (uintptr_t)alt && (uintptr_t)&local < (uintptr_t)alt + ALT_SIZE;
	flagged_onstack = sigaltstack(NULL, &cur) == 0 && (cur.ss_flags & SS_ONSTACK);
}

/* Raises SIGUSR1 and checks the handler ran on the altstack. */
static void probe(const char *when)
{
	ran = on_alt = flagged_onstack = 0;
	raise(SIGUSR1);
	WL_CHECK(ran == 1, "%s: SIGUSR1 handler ran %d times", when, (int)ran);
	WL_CHECK(on_alt, "%s: SIGUSR1 handler did not run on the altstack", when);
	WL_CHECK(flagged_onstack, "%s: sigaltstack in the handler did not report SS_ONSTACK", when);
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	stack_t ss, old;

	(void)argc;
	(void)argv;
	wl_install_term();
	alt = malloc(ALT_SIZE);
	if (!alt)
		WL_DIE("malloc");
	memset(alt, 0xa5, ALT_SIZE);
	ss.ss_sp = alt;
	ss.ss_size = ALT_SIZE;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL))
		WL_DIE("sigaltstack");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = usr1_handler;
	sa.sa_flags = SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL))
		WL_DIE("sigaction");
	probe("before ready");

	wl_ready();
	if (wl_selftest_break()) {
		stack_t off = { .ss_flags = SS_DISABLE };

		sigaltstack(&off, NULL);
	}
	wl_wait_for_term();

	memset(&old, 0, sizeof(old));
	if (sigaltstack(NULL, &old))
		wl_fail("sigaltstack readback: %s", strerror(errno));
	WL_CHECK(old.ss_sp == (void *)alt && old.ss_size == ALT_SIZE && old.ss_flags == 0,
		 "sigaltstack is {%p, %zu, %#x}, want {%p, %d, 0}", old.ss_sp, old.ss_size,
		 old.ss_flags, (void *)alt, ALT_SIZE);
	probe("after SIGTERM");
	/* The bottom of the altstack was never used by a handler. */
	for (int i = 0; i < ALT_SIZE / 2; i++)
		if (alt[i] != 0xa5) {
			wl_fail("altstack byte %d changed to %#x", i, alt[i]);
			break;
		}
	return wl_finish();
}
