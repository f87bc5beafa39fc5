/*
 * wl_signals: signal dispositions, the blocked mask and pending signals.
 *
 * Set up: SIGUSR1 handler (SA_SIGINFO|SA_RESTART, sa_mask {SIGUSR2, SIGHUP}),
 * SIGUSR2 and SIGTRAP ignored, SIGHUP default, SIGINT handler with SA_RESETHAND|SA_NODEFER,
 * SIGWINCH (with a counting handler) blocked and pending, SIGRTMIN+3 blocked and
 * queued twice with values, the ignored SIGTRAP blocked and pending.
 *
 * After restore the harness sends SIGUSR1 (before SIGTERM): the handler must
 * have run with si_code SI_USER. Then every sigaction reads back as set, the
 * mask is unchanged, SIGWINCH and SIGRTMIN+3 are still pending, and unblocking
 * delivers SIGWINCH once and both queued values in order.
 */
#include "workload.h"

#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000 /* x86 value; glibc hides it */
#endif

#define RT_VAL1 1111
#define RT_VAL2 2222

static volatile sig_atomic_t usr1_count, usr1_code, int_count, winch_count;
static volatile sig_atomic_t rt_count;
static volatile int rt_vals[4], rt_codes[4];

static void usr1_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	usr1_count++;
	usr1_code = si->si_code;
}

static void int_handler(int sig)
{
	(void)sig;
	int_count++;
}

static void winch_handler(int sig)
{
	(void)sig;
	winch_count++;
}

static void rt_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (rt_count < 4) {
		rt_vals[rt_count] = si->si_value.sival_int;
		rt_codes[rt_count] = si->si_code;
	}
	rt_count++;
}

struct want {
	int sig;
	const char *name;
	struct sigaction set;  /* what we asked for */
	struct sigaction read; /* what the kernel reported right after */
};

static struct want wants[5];
static int nwants;

static void set_action(int sig, const char *name, void *handler, int flags, const int *mask_sigs)
{
	struct want *w = &wants[nwants++];

	w->sig = sig;
	w->name = name;
	memset(&w->set, 0, sizeof(w->set));
	if (flags & SA_SIGINFO)
		w->set.sa_sigaction = handler;
	else
		w->set.sa_handler = handler;
	w->set.sa_flags = flags;
	sigemptyset(&w->set.sa_mask);
	for (; mask_sigs && *mask_sigs; mask_sigs++)
		sigaddset(&w->set.sa_mask, *mask_sigs);
	if (sigaction(sig, &w->set, NULL))
		WL_DIE("sigaction %s", name);
	memset(&w->read, 0, sizeof(w->read));
	if (sigaction(sig, NULL, &w->read))
		WL_DIE("sigaction readback %s", name);
}

/* The kernel's view of a sigset: signals 1..64. */
static unsigned long long kset(const sigset_t *s)
{
	unsigned long long v = 0;

	for (int i = 1; i <= 64; i++)
		if (sigismember(s, i) == 1)
			v |= 1ull << (i - 1);
	return v;
}

static void check_action(const struct want *w)
{
	struct sigaction now;

	memset(&now, 0, sizeof(now));
	if (sigaction(w->sig, NULL, &now)) {
		wl_fail("sigaction(%s) readback: %s", w->name, strerror(errno));
		return;
	}
	if ((void *)now.sa_handler != (void *)w->set.sa_handler)
		wl_fail("%s handler is %p, want %p", w->name, (void *)now.sa_handler,
			(void *)w->set.sa_handler);
	/* libc adds SA_RESTORER itself; compare without it against what we set... */
	if ((now.sa_flags & ~SA_RESTORER) != w->set.sa_flags)
		wl_fail("%s flags are %#x, want %#x (ignoring SA_RESTORER)", w->name,
			(unsigned)now.sa_flags, (unsigned)w->set.sa_flags);
	/* ...and exactly, restorer included, against the readback before the dump. */
	if (now.sa_flags != w->read.sa_flags)
		wl_fail("%s flags are %#x, were %#x before the dump", w->name,
			(unsigned)now.sa_flags, (unsigned)w->read.sa_flags);
	if ((void *)now.sa_restorer != (void *)w->read.sa_restorer)
		wl_fail("%s sa_restorer is %p, was %p", w->name, (void *)now.sa_restorer,
			(void *)w->read.sa_restorer);
	if (kset(&now.sa_mask) != kset(&w->set.sa_mask))
		wl_fail("%s sa_mask is %#llx, want %#llx", w->name, kset(&now.sa_mask),
			kset(&w->set.sa_mask));
}

int main(int argc, char **argv)
{
	static const int usr1_mask[] = { SIGUSR2, SIGHUP, 0 };
	sigset_t block, mask_before, mask_now, pend;
	union sigval v;
	int rt = SIGRTMIN + 3;

	(void)argc;
	(void)argv;
	wl_install_term();
	set_action(SIGUSR1, "SIGUSR1", usr1_handler, SA_SIGINFO | SA_RESTART, usr1_mask);
	set_action(SIGUSR2, "SIGUSR2", SIG_IGN, 0, NULL);
	/* An ignored SIGTRAP: ccr's remote calls must not reset it (a single-step
	 * trap would). */
	set_action(SIGTRAP, "SIGTRAP", SIG_IGN, 0, NULL);
	set_action(SIGHUP, "SIGHUP", SIG_DFL, 0, NULL);
	set_action(SIGINT, "SIGINT", int_handler, SA_RESETHAND | SA_NODEFER, NULL);
	set_action(SIGWINCH, "SIGWINCH", winch_handler, 0, NULL);

	{
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = rt_handler;
		sa.sa_flags = SA_SIGINFO;
		sigemptyset(&sa.sa_mask);
		if (sigaction(rt, &sa, NULL))
			WL_DIE("sigaction SIGRTMIN+3");
	}

	sigemptyset(&block);
	sigaddset(&block, SIGWINCH);
	sigaddset(&block, rt);
	sigaddset(&block, SIGTRAP);
	if (sigprocmask(SIG_BLOCK, &block, NULL))
		WL_DIE("sigprocmask");
	raise(SIGWINCH);
	/* Blocked, so pending although ignored; discarded once unblocked. */
	raise(SIGTRAP);
	v.sival_int = RT_VAL1;
	if (sigqueue(getpid(), rt, v))
		WL_DIE("sigqueue 1");
	v.sival_int = RT_VAL2;
	if (sigqueue(getpid(), rt, v))
		WL_DIE("sigqueue 2");
	sigprocmask(SIG_SETMASK, NULL, &mask_before);

	wl_ready();
	if (wl_selftest_break())
		signal(SIGHUP, SIG_IGN);
	wl_wait_for_term();

	WL_CHECK(usr1_count >= 1, "SIGUSR1 handler ran %d times (the harness sends one)",
		 (int)usr1_count);
	WL_CHECK(usr1_count == 0 || usr1_code == SI_USER, "SIGUSR1 si_code %d, want SI_USER",
		 (int)usr1_code);
	WL_CHECK(int_count == 0, "SIGINT handler ran");
	for (int i = 0; i < nwants; i++)
		check_action(&wants[i]);

	sigprocmask(SIG_SETMASK, NULL, &mask_now);
	WL_CHECK(kset(&mask_now) == kset(&mask_before), "blocked mask %#llx, want %#llx",
		 kset(&mask_now), kset(&mask_before));
	sigpending(&pend);
	WL_CHECK(sigismember(&pend, SIGWINCH) == 1, "SIGWINCH no longer pending");
	WL_CHECK(sigismember(&pend, rt) == 1, "SIGRTMIN+3 no longer pending");
	WL_CHECK(sigismember(&pend, SIGTRAP) == 1, "SIGTRAP no longer pending");
	WL_CHECK(winch_count == 0 && rt_count == 0, "blocked signals were delivered: winch %d rt %d",
		 (int)winch_count, (int)rt_count);

	sigprocmask(SIG_UNBLOCK, &block, NULL);
	WL_CHECK(winch_count == 1, "SIGWINCH delivered %d times after unblock, want 1",
		 (int)winch_count);
	WL_CHECK(rt_count == 2, "SIGRTMIN+3 delivered %d times after unblock, want 2", (int)rt_count);
	if (rt_count == 2) {
		WL_CHECK(rt_vals[0] == RT_VAL1 && rt_vals[1] == RT_VAL2,
			 "queued values arrived as %d, %d; want %d, %d", rt_vals[0], rt_vals[1],
			 RT_VAL1, RT_VAL2);
		WL_CHECK(rt_codes[0] == SI_QUEUE && rt_codes[1] == SI_QUEUE,
			 "queued si_codes %d, %d; want SI_QUEUE", rt_codes[0], rt_codes[1]);
	}
	sigpending(&pend);
	WL_CHECK(kset(&pend) == 0, "still pending after unblock: %#llx", kset(&pend));
	return wl_finish();
}
