/*
 * wl_posix_timers: POSIX timers (timer_create) of every notification kind, under
 * IDs with a gap (a deleted timer), checked after restore:
 *   tick   CLOCK_MONOTONIC, SIGUSR1 with value 0xa1, every 20 ms: keeps firing,
 *          each signal naming its timer ID and value
 *   far    CLOCK_REALTIME, SIGEV_THREAD_ID to the second thread, SIGRTMIN+1, once
 *          in 600 s: still armed with less time left, aimed at that thread
 *   quiet  CLOCK_BOOTTIME, SIGEV_NONE, 300 s then every 7 s: the interval exact
 *   cpu    CLOCK_PROCESS_CPUTIME_ID, SIGUSR2, every 5 ms of CPU: fires while it spins
 *   idle   created and never armed: still there, still disarmed
 */
#include <dirent.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>

#include "workload.h"

static timer_t tick, far, gone, quiet, cpu, idle;
static volatile sig_atomic_t ticks, cpu_ticks, bad_info, far_fired;
static int tick_id;
static pid_t second_tid;
static volatile int second_ready, stop_second;

static void on_tick(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (si->si_code != SI_TIMER || si->si_timerid != tick_id || si->si_value.sival_int != 0xa1)
		bad_info++;
	ticks++;
}

static void on_cpu(int sig)
{
	(void)sig;
	cpu_ticks++;
}

static void on_far(int sig)
{
	(void)sig;
	far_fired++;
}

static void *second(void *arg)
{
	(void)arg;
	second_tid = (pid_t)syscall(SYS_gettid);
	second_ready = 1;
	while (!stop_second)
		usleep(10000);
	return NULL;
}

static timer_t make(clockid_t clock, int notify, int sig, int value, pid_t tid)
{
	struct sigevent ev;
	timer_t t;

	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = notify;
	ev.sigev_signo = sig;
	ev.sigev_value.sival_int = value;
	ev._sigev_un._tid = tid;
	if (timer_create(clock, &ev, &t))
		WL_DIE("timer_create clock %d", (int)clock);
	return t;
}

static void arm(timer_t t, time_t s, long ns, time_t is, long ins)
{
	struct itimerspec v = { { is, ins }, { s, ns } };

	if (timer_settime(t, 0, &v, NULL))
		WL_DIE("timer_settime");
}

static void spin_cpu(long ms)
{
	struct timespec a, b;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
	do
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
	while ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < ms);
}

/* The second thread's TID as /proc shows it (in the PID namespace of /proc, which
 * need not be ours). */
static long proc_second_tid(void)
{
	char self[32] = "";
	long tid = -1;
	struct dirent *e;
	DIR *d = opendir("/proc/self/task");

	if (readlink("/proc/self", self, sizeof(self) - 1) < 0)
		return -1;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.' && strcmp(e->d_name, self))
			tid = atol(e->d_name);
	if (d)
		closedir(d);
	return tid;
}

/* The "notify:" line /proc shows for timer `id`. */
static int proc_notify(int id, char *out, size_t n)
{
	char line[256];
	int cur = -1, found = 0;
	FILE *f = fopen("/proc/self/timers", "r");

	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "ID: %d", &cur) == 1)
			continue;
		if (cur == id && !strncmp(line, "notify: ", 8)) {
			snprintf(out, n, "%s", line + 8);
			out[strcspn(out, "\n")] = 0;
			found = 1;
		}
	}
	if (f)
		fclose(f);
	return found;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	struct itimerspec v, far_at_ready;
	pthread_t t2;
	sigset_t rt;
	char notify[256], want[64];
	int at_term, cpu_at_term;

	wl_scratch(argc, argv);
	wl_install_term();
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_tick;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGUSR2, on_cpu);
	signal(SIGRTMIN + 1, on_far);
	/* Only the second thread takes the far timer's signal. */
	sigemptyset(&rt);
	sigaddset(&rt, SIGRTMIN + 1);
	if (pthread_create(&t2, NULL, second, NULL))
		WL_DIE("pthread_create");
	pthread_sigmask(SIG_BLOCK, &rt, NULL);
	while (!second_ready)
		usleep(1000);

	tick = make(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGUSR1, 0xa1, 0);
	tick_id = (int)(long)tick;
	gone = make(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0, 0);
	far = make(CLOCK_REALTIME, SIGEV_THREAD_ID, SIGRTMIN + 1, 0xfa, second_tid);
	quiet = make(CLOCK_BOOTTIME, SIGEV_NONE, 0, 0, 0);
	cpu = make(CLOCK_PROCESS_CPUTIME_ID, SIGEV_SIGNAL, SIGUSR2, 0, 0);
	idle = make(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGUSR2, 0, 0);
	timer_delete(gone);
	arm(tick, 0, 20000000, 0, 20000000);
	arm(far, 600, 0, 0, 0);
	arm(quiet, 300, 0, 7, 0);
	arm(cpu, 0, 5000000, 0, 5000000);
	spin_cpu(30);
	timer_gettime(far, &far_at_ready);
	wl_info("timers tick=%d far=%d quiet=%d cpu=%d idle=%d, second thread %d", tick_id, (int)(long)far,
		(int)(long)quiet, (int)(long)cpu, (int)(long)idle, second_tid);
	wl_ready();
	if (wl_selftest_break())
		timer_delete(tick);
	wl_wait_for_term();

	/* Still firing after restore. */
	at_term = ticks;
	cpu_at_term = cpu_ticks;
	usleep(200000);
	spin_cpu(50);
	WL_CHECK(ticks >= at_term + 3, "tick fired %d times in 200 ms", ticks - at_term);
	WL_CHECK(cpu_ticks >= cpu_at_term + 3, "cpu fired %d times in 50 ms of CPU", cpu_ticks - cpu_at_term);
	WL_CHECK(!bad_info, "%d tick signals had the wrong siginfo", (int)bad_info);
	WL_CHECK(!far_fired, "far fired");

	WL_CHECK(!timer_gettime(far, &v), "timer_gettime(far): %s", strerror(errno));
	WL_CHECK(v.it_value.tv_sec > 0 && v.it_value.tv_sec <= far_at_ready.it_value.tv_sec,
		 "far has %ld s left, had %ld", (long)v.it_value.tv_sec, (long)far_at_ready.it_value.tv_sec);
	snprintf(want, sizeof(want), "signal/tid.%ld", proc_second_tid());
	WL_CHECK(proc_notify((int)(long)far, notify, sizeof(notify)) && !strcmp(notify, want),
		 "far notifies \"%s\", want \"%s\"", notify, want);
	WL_CHECK(!timer_gettime(quiet, &v) && v.it_interval.tv_sec == 7 && v.it_interval.tv_nsec == 0 &&
			 v.it_value.tv_sec > 200,
		 "quiet: %ld s left, interval %ld.%09ld", (long)v.it_value.tv_sec, (long)v.it_interval.tv_sec,
		 v.it_interval.tv_nsec);
	WL_CHECK(!timer_gettime(idle, &v) && !v.it_value.tv_sec && !v.it_value.tv_nsec, "idle is armed");
	WL_CHECK(timer_gettime(gone, &v) && errno == EINVAL, "the deleted timer's ID is a timer again");
	stop_second = 1;
	pthread_join(t2, NULL);
	return wl_finish();
}
