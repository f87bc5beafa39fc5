/*
 * threads N: one process with N threads (the main one and N-1 sleeping in
 * pause() with SIGTERM blocked). Prints "ready" once all exist; on SIGTERM
 * the main thread checks they are all still there (/proc/self/status) and exits.
 */
#include <pthread.h>

#include "bench.h"

static pthread_barrier_t started;

static void *sleeper(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&started);
	for (;;)
		pause();
	return NULL;
}

static int thread_count(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	int n = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	fclose(f);
	return n;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 20;
	sigset_t term, old;
	pthread_t t;

	bench_install_term();
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	/* Threads inherit the mask: only the main thread takes SIGTERM. */
	pthread_sigmask(SIG_BLOCK, &term, &old);
	pthread_barrier_init(&started, NULL, n);
	for (int i = 1; i < n; i++)
		if ((errno = pthread_create(&t, NULL, sleeper, NULL)))
			BENCH_DIE("pthread_create");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_barrier_wait(&started);
	bench_ready();
	bench_wait_for_term();
	if (thread_count() != n) {
		printf("FAIL: %d threads, want %d\n", thread_count(), n);
		return 1;
	}
	printf("PASS\n");
	return 0;
}
