/*
 * api_cycle: one checkpoint/restore cycle through the C ABI, as liblxc would
 * drive it, plus the error paths of that ABI.
 *
 *   api_cycle WORKLOAD WORKDIR
 *
 * Starts WORKLOAD (stdout to WORKDIR/wl.out, scratch WORKDIR/scratch), waits for
 * "ready", ccr_dump()s it into WORKDIR/images (which kills it), reaps it,
 * ccr_restore()s it (same PID, a child of this program), sends SIGTERM and
 * expects exit status 0 and "PASS". Exits 0 when all of that held.
 */
#include <ccr.h>
#include <sys/wait.h>
#include <time.h>

#include "workload.h"


static void show_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char buf[512];

	printf("---- %s\n", path);
	if (!f)
		return;
	while (fgets(buf, sizeof(buf), f))
		fputs(buf, stdout);
	fclose(f);
}

/* A PID that no process has right now. */
static pid_t free_pid(void)
{
	for (pid_t p = 4000000; p > 300; p -= 7919)
		if (kill(p, 0) && errno == ESRCH)
			return p;
	return -1;
}

static void error_paths(void)
{
	ccr_opts *o;
	pid_t nopid = free_pid();
	int r;

	r = ccr_dump(NULL);
	WL_CHECK(r == -EINVAL, "ccr_dump(NULL) = %d", r);
	WL_CHECK(ccr_last_error()[0] != 0, "ccr_dump(NULL) left no error text");
	r = ccr_restore(NULL);
	WL_CHECK(r == -EINVAL, "ccr_restore(NULL) = %d", r);
	r = ccr_opts_set_pid(NULL, 1);
	WL_CHECK(r == -EINVAL, "ccr_opts_set_pid(NULL) = %d", r);

	o = ccr_opts_new();
	if (!o) {
		wl_fail("ccr_opts_new() returned NULL");
		return;
	}
	ccr_opts_set_pid(o, nopid);
	ccr_opts_set_images_dir(o, wl_path("images-nopid"));
	ccr_opts_set_log_file(o, wl_path("nopid.log"));
	ccr_opts_set_log_level(o, 4);
	r = ccr_dump(o);
	WL_CHECK(r < 0, "ccr_dump(pid %d that does not exist) = %d", nopid, r);
	WL_CHECK(ccr_last_error()[0] != 0, "ccr_dump(no such pid) left no error text");
	printf("info: dump of missing pid %d: %d: %s\n", nopid, r, ccr_last_error());
	ccr_opts_free(o);
	ccr_opts_free(NULL);
}

static int wait_ready(const char *out)
{
	for (int i = 0; i < 200; i++) {
		if (wl_file_has_line(out, "ready"))
			return 0;
		usleep(50000);
	}
	return -1;
}

static int cycle(const char *workload)
{
	char out[4352];
	ccr_opts *o;
	pid_t child, restored, w;
	int status, r, ppid = -1;
	char stat_path[64], buf[512];
	FILE *f;

	/* wl_path() rotates static buffers: keep our own copy of this path. */
	snprintf(out, sizeof(out), "%s", wl_path("wl.out"));

	child = fork();
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
		execl(workload, workload, wl_path("scratch"), (char *)NULL);
		_exit(127);
	}
	if (wait_ready(out)) {
		wl_fail("workload %s never printed ready", workload);
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		return -1;
	}
	usleep(100000);

	o = ccr_opts_new();
	ccr_opts_set_pid(o, child);
	ccr_opts_set_images_dir(o, wl_path("images"));
	ccr_opts_set_log_file(o, wl_path("dump.log"));
	ccr_opts_set_log_level(o, 4);
	r = ccr_dump(o);
	ccr_opts_free(o);
	if (r) {
		wl_fail("ccr_dump(pid %d) = %d: %s", child, r, ccr_last_error());
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		return -1;
	}
	w = waitpid(child, &status, 0);
	WL_CHECK(w == child && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		 "after the dump pid %d ended with status %#x, want SIGKILL", child, status);

	o = ccr_opts_new();
	ccr_opts_set_images_dir(o, wl_path("images"));
	ccr_opts_set_log_file(o, wl_path("restore.log"));
	ccr_opts_set_log_level(o, 4);
	restored = ccr_restore(o);
	ccr_opts_free(o);
	if (restored < 0) {
		wl_fail("ccr_restore = %d: %s", restored, ccr_last_error());
		return -1;
	}
	WL_CHECK(restored == child, "restored pid %d, want %d", restored, child);
	snprintf(stat_path, sizeof(stat_path), "/proc/%d/stat", restored);
	f = fopen(stat_path, "r");
	if (f && fgets(buf, sizeof(buf), f)) {
		char *p = strrchr(buf, ')');

		if (p)
			sscanf(p + 2, "%*c %d", &ppid);
	}
	if (f)
		fclose(f);
	WL_CHECK(ppid == getpid(), "restored pid %d has parent %d, want %d (the caller)", restored,
		 ppid, getpid());

	kill(restored, SIGTERM);
	w = waitpid(restored, &status, 0);
	if (w != restored) {
		wl_fail("waitpid(%d) = %d: %s", restored, w, strerror(errno));
		kill(restored, SIGKILL);
		return -1;
	}
	WL_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "restored task ended with status %#x",
		 status);
	/* The first PASS is the restored task's: the original was killed. */
	WL_CHECK(wl_file_has_line(out, "PASS"), "the restored workload did not print PASS");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s WORKLOAD WORKDIR\n", argv[0]);
		return 2;
	}
	/* The scratch directory of workload.h: argv[2]. */
	wl_scratch(2, argv + 1);
	error_paths();
	cycle(argv[1]);
	if (wl_failures) {
		show_file(wl_path("wl.out"));
		show_file(wl_path("dump.log"));
		show_file(wl_path("restore.log"));
	}
	return wl_finish();
}
