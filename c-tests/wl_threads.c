/*
 * wl_threads: 50 threads, each with state of its own.
 *
 * Thread i:
 *  - a __thread variable holding i * 1000 + 7 (and its address, which depends
 *    on the fs base);
 *  - its tid, recorded from gettid();
 *  - a blocked signal mask of its own: SIGTERM, SIGUSR1, SIGRTMIN + i % 16 and,
 *    for odd i, SIGUSR2;
 *  - a sigaltstack of its own for i % 3 == 0, none for the others;
 *  - what it waits in, by i % 4: pthread_cond_wait (futex), a nanosleep loop,
 *    read() on a pipe of its own, or busy counting. Thread 3 (busy) holds
 *    ymm0..ymm3 with a known pattern while it spins, when the CPU has AVX.
 * Thread PENDING_THREAD has a SIGUSR1 sent to it with tgkill; it stays pending
 * there (blocked), and no other thread sees it pending.
 *
 * On SIGTERM (the main thread alone takes it) the main thread wakes every
 * thread; each checks its state and counts its failures.
 *
 * Self test: the main thread changes the recorded tid of thread 7.
 */
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>

#include "workload.h"

#define NTHREADS 50
#define PENDING_THREAD 5
#define AVX_THREAD 3
#define ALT_SIZE (64 * 1024)

enum kind { K_COND, K_SLEEP, K_READ, K_BUSY };

struct worker {
	pthread_t th;
	int idx;
	pid_t tid;
	void *tls_addr;
	void *alt_sp;
	int pipe[2];
	volatile unsigned long count;
};

static struct worker w[NTHREADS];
static __thread long tls_val;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static volatile int stop;
static int ready_count;
static int thread_failures;
static uint8_t avx_in[4][32] __attribute__((aligned(32)));
static uint8_t avx_out[4][32] __attribute__((aligned(32)));

#define T_CHECK(cond, ...)                                           \
	do {                                                         \
		if (!(cond)) {                                       \
			printf("FAIL: thread %d: %s: ", me->idx, #cond); \
			printf(__VA_ARGS__);                         \
			printf("\n");                                \
			fflush(stdout);                              \
			__atomic_add_fetch(&thread_failures, 1, __ATOMIC_SEQ_CST); \
		}                                                    \
	} while (0)

static void expected_mask(int i, sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGRTMIN + i % 16);
	if (i & 1)
		sigaddset(set, SIGUSR2);
}

static void avx_spin(void)
{
	__asm__ volatile("vmovdqu 0x00(%[in]), %%ymm0\n\t"
			 "vmovdqu 0x20(%[in]), %%ymm1\n\t"
			 "vmovdqu 0x40(%[in]), %%ymm2\n\t"
			 "vmovdqu 0x60(%[in]), %%ymm3\n\t"
			 "1:\n\t"
			 "pause\n\t"
			 "cmpl $0, (%[flag])\n\t"
			 "je 1b\n\t"
			 "vmovdqu %%ymm0, 0x00(%[out])\n\t"
			 "vmovdqu %%ymm1, 0x20(%[out])\n\t"
			 "vmovdqu %%ymm2, 0x40(%[out])\n\t"
			 "vmovdqu %%ymm3, 0x60(%[out])\n\t"
			 "vzeroupper\n\t"
			 :
			 : [in] "r"(avx_in), [out] "r"(avx_out), [flag] "r"(&stop)
			 : "memory", "xmm0", "xmm1", "xmm2", "xmm3");
}

static void verify(struct worker *me)
{
	int i = me->idx;
	sigset_t want, cur, pend;
	stack_t ss;

	T_CHECK(syscall(SYS_gettid) == me->tid, "gettid %ld, recorded %d", syscall(SYS_gettid),
		me->tid);
	T_CHECK(tls_val == i * 1000L + 7, "tls %ld", tls_val);
	T_CHECK((void *)&tls_val == me->tls_addr, "tls at %p, was %p", (void *)&tls_val,
		me->tls_addr);
	expected_mask(i, &want);
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	for (int s = 1; s <= SIGRTMAX; s++)
		if (s < 32 || s >= SIGRTMIN)
			T_CHECK(sigismember(&want, s) == sigismember(&cur, s), "signal %d in mask: %d", s,
			sigismember(&cur, s));
	if (sigaltstack(NULL, &ss))
		T_CHECK(0, "sigaltstack: %s", strerror(errno));
	else if (i % 3 == 0)
		T_CHECK(!(ss.ss_flags & SS_DISABLE) && ss.ss_sp == me->alt_sp &&
				ss.ss_size == ALT_SIZE,
			"altstack %p/%zu flags %d, want %p", ss.ss_sp, ss.ss_size, ss.ss_flags,
			me->alt_sp);
	else
		T_CHECK(ss.ss_flags & SS_DISABLE, "altstack flags %d, want disabled", ss.ss_flags);
	sigpending(&pend);
	T_CHECK(sigismember(&pend, SIGUSR1) == (i == PENDING_THREAD), "SIGUSR1 pending: %d",
		sigismember(&pend, SIGUSR1));
	if (i == PENDING_THREAD) {
		struct timespec zero = { 0, 0 };
		sigset_t u;
		siginfo_t si;

		sigemptyset(&u);
		sigaddset(&u, SIGUSR1);
		T_CHECK(sigtimedwait(&u, &si, &zero) == SIGUSR1, "taking the pending SIGUSR1");
		T_CHECK(si.si_pid == getpid(), "sender %d", si.si_pid);
	}
	if (i % 4 == K_BUSY)
		T_CHECK(me->count > 0, "busy thread did not count");
	if (i == AVX_THREAD && __builtin_cpu_supports("avx"))
		T_CHECK(memcmp(avx_in, avx_out, sizeof(avx_in)) == 0, "ymm0..3 changed");
}

static void *worker_main(void *arg)
{
	struct worker *me = arg;
	int i = me->idx;
	sigset_t mask;
	char c;

	tls_val = i * 1000L + 7;
	me->tls_addr = (void *)&tls_val;
	me->tid = (pid_t)syscall(SYS_gettid);
	expected_mask(i, &mask);
	pthread_sigmask(SIG_SETMASK, &mask, NULL);
	if (i % 3 == 0) {
		stack_t ss = { .ss_sp = malloc(ALT_SIZE), .ss_size = ALT_SIZE };

		if (!ss.ss_sp || sigaltstack(&ss, NULL))
			WL_DIE("sigaltstack");
		me->alt_sp = ss.ss_sp;
	}
	__atomic_add_fetch(&ready_count, 1, __ATOMIC_SEQ_CST);

	switch (i % 4) {
	case K_COND:
		pthread_mutex_lock(&mu);
		while (!stop)
			pthread_cond_wait(&cv, &mu);
		pthread_mutex_unlock(&mu);
		break;
	case K_SLEEP:
		while (!stop) {
			struct timespec ts = { 0, 50 * 1000 * 1000 };

			nanosleep(&ts, NULL);
		}
		break;
	case K_READ:
		if (read(me->pipe[0], &c, 1) != 1)
			T_CHECK(0, "read: %s", strerror(errno));
		else
			T_CHECK(c == (char)i, "read byte %d", c);
		break;
	case K_BUSY:
		if (i == AVX_THREAD && __builtin_cpu_supports("avx")) {
			me->count = 1;
			avx_spin();
		}
		while (!stop)
			me->count++;
		break;
	}
	verify(me);
	return NULL;
}

int main(int argc, char **argv)
{
	sigset_t usr1;
	int n;

	(void)argc;
	(void)argv;
	setvbuf(stdout, NULL, _IOLBF, 0);
	wl_install_term();
	/* Threads start with SIGTERM blocked; only the main thread takes it. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGTERM);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	for (int r = 0; r < 4; r++)
		for (int b = 0; b < 32; b++)
			avx_in[r][b] = (uint8_t)(r * 53 + b * 7 + 0x21);
	for (int i = 0; i < NTHREADS; i++) {
		w[i].idx = i;
		if (i % 4 == K_READ && pipe(w[i].pipe))
			WL_DIE("pipe");
		if (pthread_create(&w[i].th, NULL, worker_main, &w[i]))
			WL_DIE("pthread_create %d", i);
	}
	for (n = 0; __atomic_load_n(&ready_count, __ATOMIC_SEQ_CST) < NTHREADS; n++) {
		if (n > 10000)
			WL_DIE("threads did not start");
		usleep(1000);
	}
	usleep(50 * 1000); /* let them reach their waits */
	if (syscall(SYS_tgkill, getpid(), w[PENDING_THREAD].tid, SIGUSR1))
		WL_DIE("tgkill");
	sigdelset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
	wl_info("%d threads, thread %d has SIGUSR1 pending", NTHREADS, PENDING_THREAD);
	wl_ready();
	if (wl_selftest_break())
		w[7].tid += 1;
	wl_wait_for_term();

	pthread_mutex_lock(&mu);
	stop = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < NTHREADS; i++) {
		char c = (char)i;

		if (i % 4 == K_READ && write(w[i].pipe[1], &c, 1) != 1)
			wl_fail("write to thread %d: %s", i, strerror(errno));
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(w[i].th, NULL);
	wl_failures += thread_failures;
	return wl_finish();
}
