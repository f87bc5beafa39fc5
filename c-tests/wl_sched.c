/*
 * wl_sched: scheduling state and OOM weight, checked after restore:
 *   main thread   nice 7
 *   thread "rt"   SCHED_FIFO priority 3
 *   thread "bat"  SCHED_BATCH, nice 11
 *   process       oom_score_adj 321, transparent huge pages disabled, loginuid 4321
 */
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "workload.h"

struct th {
	int policy, prio, nice;
	volatile int ready, stop, bad;
	pthread_t t;
};

static int check_self(int policy, int prio, int nice, const char *who)
{
	struct sched_param sp;
	int got = sched_getscheduler(0), bad = 0;
	int n;

	errno = 0;
	n = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
	sched_getparam(0, &sp);
	if (got != policy || sp.sched_priority != prio) {
		printf("FAIL: %s: policy %d priority %d, want %d %d\n", who, got, sp.sched_priority, policy, prio);
		bad++;
	}
	if (policy != SCHED_FIFO && n != nice) {
		printf("FAIL: %s: nice %d, want %d\n", who, n, nice);
		bad++;
	}
	fflush(stdout);
	return bad;
}

static void *run(void *arg)
{
	struct th *t = arg;
	struct sched_param sp = { .sched_priority = t->prio };

	if (sched_setscheduler(0, t->policy, &sp))
		WL_DIE("sched_setscheduler %d", t->policy);
	if (t->policy != SCHED_FIFO && setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), t->nice))
		WL_DIE("setpriority");
	t->ready = 1;
	while (!t->stop)
		usleep(5000);
	t->bad = check_self(t->policy, t->prio, t->nice, t->policy == SCHED_FIFO ? "rt thread" : "batch thread");
	return NULL;
}

int main(int argc, char **argv)
{
	struct th rt = { .policy = SCHED_FIFO, .prio = 3 }, bat = { .policy = SCHED_BATCH, .nice = 11 };
	char buf[32] = "";
	int fd;

	wl_scratch(argc, argv);
	wl_install_term();
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 7))
		WL_DIE("setpriority");
	fd = open("/proc/self/oom_score_adj", O_WRONLY);
	if (fd < 0 || write(fd, "321", 3) != 3)
		WL_DIE("oom_score_adj");
	close(fd);
	if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0))
		WL_DIE("PR_SET_THP_DISABLE");
	fd = open("/proc/self/loginuid", O_WRONLY);
	if (fd < 0 || write(fd, "4321", 4) != 4)
		WL_DIE("loginuid");
	close(fd);
	if (pthread_create(&rt.t, NULL, run, &rt) || pthread_create(&bat.t, NULL, run, &bat))
		WL_DIE("pthread_create");
	while (!rt.ready || !bat.ready)
		usleep(1000);
	wl_ready();
	if (wl_selftest_break())
		setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 2);
	wl_wait_for_term();
	rt.stop = bat.stop = 1;
	pthread_join(rt.t, NULL);
	pthread_join(bat.t, NULL);
	wl_failures += rt.bad + bat.bad + check_self(SCHED_OTHER, 0, 7, "main thread");
	fd = open("/proc/self/oom_score_adj", O_RDONLY);
	if (fd >= 0 && read(fd, buf, sizeof(buf) - 1) > 0)
		WL_CHECK(atoi(buf) == 321, "oom_score_adj is %s, set 321", buf);
	else
		wl_fail("cannot read oom_score_adj");
	if (fd >= 0)
		close(fd);
	WL_CHECK(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1, "transparent huge pages are enabled again");
	memset(buf, 0, sizeof(buf));
	fd = open("/proc/self/loginuid", O_RDONLY);
	WL_CHECK(fd >= 0 && read(fd, buf, sizeof(buf) - 1) > 0 && atoi(buf) == 4321, "loginuid is %s, set 4321", buf);
	if (fd >= 0)
		close(fd);
	return wl_finish();
}
