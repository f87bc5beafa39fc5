/*
 * workload.h: the shared frame of every ccr test workload.
 *
 * A workload sets up some state, prints "ready", waits for SIGTERM, then checks
 * that all of its state is still what it set up and prints "PASS" or one
 * "FAIL: <what>" line per broken piece, exiting 0 or 1.
 *
 * Everything here is static: each workload is one translation unit.
 *
 * Self test: with CCR_WL_SELFTEST_BREAK=1 in the environment a workload breaks
 * one piece of its own state after "ready", so its verification must fail. That
 * is how the checks are shown to be real.
 */
#ifndef CCR_WORKLOAD_H
#define CCR_WORKLOAD_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define WL_UNUSED __attribute__((unused))

static volatile sig_atomic_t wl_term;
static int wl_failures;
static char wl_scratch_buf[4096];
static int wl_scratch_owned;

/* Prints one "FAIL: ..." line and remembers that the run failed. */
__attribute__((format(printf, 1, 2))) WL_UNUSED static void wl_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("FAIL: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
	fflush(stdout);
	wl_failures++;
}

/* An integer socket option, or -1. */
WL_UNUSED static int wl_sockopt_int(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, level, name, &v, &len))
		return -1;
	return v;
}

/* Prints an informational line (never a verdict). */
__attribute__((format(printf, 1, 2))) WL_UNUSED static void wl_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("info: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
	fflush(stdout);
}

/* Setup failures are not a verdict on ccr: report and stop with status 2. */
#define WL_DIE(...)                                                         \
	do {                                                                \
		printf("FAIL: setup: ");                                    \
		printf(__VA_ARGS__);                                        \
		printf(" (%s:%d: %s)\n", __FILE__, __LINE__, strerror(errno)); \
		fflush(stdout);                                             \
		exit(2);                                                    \
	} while (0)

/* Checks a condition; on failure prints the expression and a message. */
#define WL_CHECK(cond, ...)                                 \
	do {                                                \
		if (!(cond)) {                              \
			printf("FAIL: %s: ", #cond);        \
			printf(__VA_ARGS__);                \
			printf("\n");                       \
			fflush(stdout);                     \
			wl_failures++;                      \
		}                                           \
	} while (0)

WL_UNUSED static void wl_term_handler(int sig)
{
	(void)sig;
	wl_term = 1;
}

/* Installs the SIGTERM flag handler (no SA_RESTART: blocking calls see EINTR). */
WL_UNUSED static void wl_install_term(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wl_term_handler;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL))
		WL_DIE("sigaction(SIGTERM)");
}

/* Prints "ready" and flushes it to the output file. */
WL_UNUSED static void wl_ready(void)
{
	printf("ready\n");
	fflush(stdout);
}

/*
 * Sleeps in sigsuspend() until SIGTERM arrived. Other signals that have handlers
 * wake it up; it goes back to sleep. The signal mask is the caller's all along,
 * except for SIGTERM which is blocked between the checks.
 */
WL_UNUSED static void wl_wait_for_term(void)
{
	sigset_t term, old, during;

	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &term, &old))
		WL_DIE("sigprocmask");
	during = old;
	sigdelset(&during, SIGTERM);
	while (!wl_term)
		sigsuspend(&during);
	if (sigprocmask(SIG_SETMASK, &old, NULL))
		WL_DIE("sigprocmask");
}

/* Whether CCR_WL_SELFTEST_BREAK asks this run to break its own state. */
WL_UNUSED static int wl_selftest_break(void)
{
	const char *v = getenv("CCR_WL_SELFTEST_BREAK");

	return v && *v && strcmp(v, "0") != 0;
}

WL_UNUSED static int wl_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/*
 * The scratch directory: argv[1] (created if missing), or a fresh one under
 * /tmp that wl_finish() removes again.
 */
WL_UNUSED static const char *wl_scratch(int argc, char **argv)
{
	if (argc > 1) {
		snprintf(wl_scratch_buf, sizeof(wl_scratch_buf), "%s", argv[1]);
		if (mkdir(wl_scratch_buf, 0755) && errno != EEXIST)
			WL_DIE("mkdir %s", wl_scratch_buf);
	} else {
		snprintf(wl_scratch_buf, sizeof(wl_scratch_buf), "/tmp/ccr-wl-XXXXXX");
		if (!mkdtemp(wl_scratch_buf))
			WL_DIE("mkdtemp");
		wl_scratch_owned = 1;
	}
	return wl_scratch_buf;
}

/* Joins the scratch directory and a name into a static buffer (one of four). */
WL_UNUSED static const char *wl_path(const char *name)
{
	static char bufs[4][4096 + 256];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, sizeof(bufs[0]), "%s/%.200s", wl_scratch_buf, name);
	return b;
}

/* Whether the file at `path` has the line `line`. */
WL_UNUSED static int wl_file_has_line(const char *path, const char *line)
{
	FILE *f = fopen(path, "r");
	char buf[512];
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(buf, sizeof(buf), f)) {
		buf[strcspn(buf, "\n")] = 0;
		found = !strcmp(buf, line);
	}
	fclose(f);
	return found;
}

/* Prints the verdict and returns the exit status for main(). */
WL_UNUSED static int wl_finish(void)
{
	if (wl_scratch_owned)
		nftw(wl_scratch_buf, wl_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	if (wl_failures) {
		printf("FAIL: %d check(s) failed\n", wl_failures);
		fflush(stdout);
		return 1;
	}
	printf("PASS\n");
	fflush(stdout);
	return 0;
}

/*
 * For the C API programs: starts `workload` on `scratch` in a session of its own,
 * stdin /dev/null and its output to `out`, and waits for its "ready". The
 * caller sets the workload's environment first.
 */
WL_UNUSED static pid_t wl_start_ready(const char *workload, const char *scratch, const char *out)
{
	pid_t child = fork();

	if (child < 0)
		WL_DIE("fork");
	if (child == 0) {
		int in = open("/dev/null", O_RDONLY);
		int fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0644);

		/* A session of its own, as a daemon's: not a job of our shell. */
		if (in < 0 || fd < 0 || dup2(in, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 || setsid() < 0)
			_exit(127);
		close(in);
		close(fd);
		execl(workload, workload, scratch, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && !wl_file_has_line(out, "ready"); i++)
		usleep(50000);
	if (!wl_file_has_line(out, "ready")) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		WL_DIE("workload %s never printed ready", workload);
	}
	usleep(100000);
	return child;
}

/* For the C API programs: the restored workload `pid`, told to check itself,
 * ends with 0 and printed PASS into `out`. */
WL_UNUSED static void wl_check_restored_passes(pid_t pid, const char *out)
{
	int status = 0;
	pid_t w;

	kill(pid, SIGTERM);
	w = waitpid(pid, &status, 0);
	WL_CHECK(w == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0, "restored task ended with status %#x",
		 status);
	WL_CHECK(wl_file_has_line(out, "PASS"), "the restored workload did not print PASS");
}

#endif /* CCR_WORKLOAD_H */
