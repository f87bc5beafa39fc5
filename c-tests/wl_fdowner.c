/*
 * wl_fdowner: fds that signal (O_ASYNC) keep who gets the signal and which one:
 *   pipe p  owner: the process (F_SETOWN), signal SIGRTMIN+2 (F_SETSIG, si_fd)
 *   pipe q  owner: the second thread (F_OWNER_TID), signal SIGUSR2
 * After restore a byte written into each must signal the right one.
 */
#include <pthread.h>
#include <sys/syscall.h>

#include "workload.h"

static int p[2], q[2];
static volatile sig_atomic_t got_p, got_q, wrong;
static volatile pid_t second_tid, q_taker;
static volatile int stop;

static void on_p(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (si->si_fd != p[0])
		wrong++;
	got_p++;
}

static void on_q(int sig)
{
	(void)sig;
	q_taker = (pid_t)syscall(SYS_gettid);
	got_q++;
}

static void *second(void *arg)
{
	(void)arg;
	second_tid = (pid_t)syscall(SYS_gettid);
	while (!stop)
		usleep(5000);
	return NULL;
}

static void make_async(int fd, int sig)
{
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC | O_NONBLOCK) || fcntl(fd, F_SETSIG, sig))
		WL_DIE("O_ASYNC");
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	struct f_owner_ex own;
	pthread_t t;
	char c;

	wl_scratch(argc, argv);
	wl_install_term();
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_p;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGRTMIN + 2, &sa, NULL);
	signal(SIGUSR2, on_q);
	if (pipe(p) || pipe(q) || pthread_create(&t, NULL, second, NULL))
		WL_DIE("setup");
	while (!second_tid)
		usleep(1000);
	make_async(p[0], SIGRTMIN + 2);
	if (fcntl(p[0], F_SETOWN, getpid()))
		WL_DIE("F_SETOWN");
	make_async(q[0], SIGUSR2);
	own.type = F_OWNER_TID;
	own.pid = second_tid;
	if (fcntl(q[0], F_SETOWN_EX, &own))
		WL_DIE("F_SETOWN_EX");
	wl_ready();
	if (wl_selftest_break())
		fcntl(p[0], F_SETOWN, 0);
	wl_wait_for_term();
	if (write(p[1], "x", 1) != 1 || write(q[1], "y", 1) != 1)
		WL_DIE("write");
	for (int i = 0; i < 100 && (!got_p || !got_q); i++)
		usleep(10000);
	WL_CHECK(got_p == 1 && !wrong, "pipe p: %d signals, %d with the wrong si_fd", (int)got_p, (int)wrong);
	WL_CHECK(got_q == 1 && q_taker == second_tid, "pipe q: %d signals, taken by %d, not thread %d", (int)got_q,
		 (int)q_taker, (int)second_tid);
	WL_CHECK(read(p[0], &c, 1) == 1 && read(q[0], &c, 1) == 1, "pipes lost their byte");
	stop = 1;
	pthread_join(t, NULL);
	return wl_finish();
}
