/*
 * wl_seccomp: seccomp filters and strict mode.
 *
 * The main thread sets no_new_privs and installs two filters: getpriority
 * fails with ENOMSG, then (with SECCOMP_FILTER_FLAG_LOG) getpgid fails with
 * EIDRM. A thread started after them adds a third of its own: getsid fails
 * with ECHRNG. A child process puts itself in strict mode and waits on a pipe.
 *
 * After SIGTERM: both threads still meet their filters (and only theirs: getsid
 * works in the main thread), /proc says Seccomp 2 with 2 and 3 filters and
 * NoNewPrivs 1; the child, told to call getpid, is killed by SIGKILL as strict
 * mode does (a child that is not in strict mode any more exits 0).
 */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "workload.h"

static pid_t strict_child;
static int to_child;
static pthread_t thread;
static pid_t thread_tid;
static int thread_go[2], thread_done[2];
static int thread_ok;

/* A filter that makes syscall `nr` fail with `err` and allows everything else. */
static int deny(int nr, int err, unsigned int flags)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | err),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = 4, .filter = f };

	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

/* Whether syscall `nr` (no arguments that matter) fails with `err`. */
static int fails_with(int nr, int err)
{
	errno = 0;
	return syscall(nr, 0, 0) == -1 && errno == err;
}

static int status_field(const char *path, const char *name)
{
	char line[256];
	FILE *f = fopen(path, "r");
	int v = -1;

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, name, strlen(name)) && line[strlen(name)] == ':')
			v = atoi(line + strlen(name) + 1);
	if (f)
		fclose(f);
	return v;
}

static void *thread_main(void *arg)
{
	char c;

	(void)arg;
	thread_tid = syscall(SYS_gettid);
	if (deny(SYS_getsid, ECHRNG, 0))
		return NULL;
	if (write(thread_done[1], "u", 1) != 1)
		return NULL;
	while (read(thread_go[0], &c, 1) < 0 && errno == EINTR)
		;
	thread_ok = fails_with(SYS_getsid, ECHRNG) && fails_with(SYS_getpriority, ENOMSG) &&
		    fails_with(SYS_getpgid, EIDRM);
	if (write(thread_done[1], "d", 1) != 1)
		return NULL;
	return NULL;
}

static void setup(void)
{
	int p[2];
	char c;

	if (pipe(p))
		WL_DIE("pipe");
	strict_child = fork();
	if (strict_child < 0)
		WL_DIE("fork");
	if (strict_child == 0) {
		close(p[1]);
		if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT))
			_exit(2);
		/* Only read, write, _exit and sigreturn from here on. */
		while (syscall(SYS_read, p[0], &c, 1) != 1)
			;
		syscall(SYS_getpid);
		syscall(SYS_exit, 0);
	}
	close(p[0]);
	to_child = p[1];
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		WL_DIE("no_new_privs");
	if (deny(SYS_getpriority, ENOMSG, 0) || deny(SYS_getpgid, EIDRM, SECCOMP_FILTER_FLAG_LOG))
		WL_DIE("seccomp filters");
	if (pipe(thread_go) || pipe(thread_done) || pthread_create(&thread, NULL, thread_main, NULL))
		WL_DIE("thread");
	if (read(thread_done[0], &c, 1) != 1)
		WL_DIE("the thread's filter");
}

static void check(void)
{
	char path[64], c;
	int st = 0;

	WL_CHECK(fails_with(SYS_getpriority, ENOMSG), "getpriority is not denied with ENOMSG");
	WL_CHECK(fails_with(SYS_getpgid, EIDRM), "getpgid is not denied with EIDRM");
	WL_CHECK(!fails_with(SYS_getsid, ECHRNG), "the thread's filter is on the main thread");
	WL_CHECK(status_field("/proc/self/status", "Seccomp") == 2, "Seccomp %d",
		 status_field("/proc/self/status", "Seccomp"));
	WL_CHECK(status_field("/proc/self/status", "Seccomp_filters") == 2, "main thread: %d filters",
		 status_field("/proc/self/status", "Seccomp_filters"));
	WL_CHECK(status_field("/proc/self/status", "NoNewPrivs") == 1, "no_new_privs lost");
	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)thread_tid);
	WL_CHECK(status_field(path, "Seccomp_filters") == 3, "thread: %d filters", status_field(path, "Seccomp_filters"));
	if (write(thread_go[1], "g", 1) != 1 || read(thread_done[0], &c, 1) != 1)
		wl_fail("the thread did not answer");
	pthread_join(thread, NULL);
	WL_CHECK(thread_ok, "the thread's filters are not all there");
	if (write(to_child, "x", 1) != 1)
		wl_fail("telling the strict child");
	WL_CHECK(waitpid(strict_child, &st, 0) == strict_child && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		 "the strict child was not killed by its getpid (status %#x): strict mode lost", st);
}

int main(int argc, char **argv)
{
	wl_scratch(argc, argv);
	wl_install_term();
	setup();
	wl_ready();
	if (wl_selftest_break())
		deny(SYS_getppid, EPERM, 0);
	wl_wait_for_term();
	check();
	return wl_finish();
}
