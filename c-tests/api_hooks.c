/*
 * api_hooks: the hook callback of the C ABI (ccr_opts_set_hook), as a container
 * manager would set it.
 *
 *   api_hooks WORKLOAD WORKDIR
 *
 * 1. A dump whose hook returns non-zero at post-dump fails with -ECANCELED naming
 *    the stage; the hook saw pre-dump, network-lock, post-dump, network-unlock;
 *    the workload runs on, untraced and not stopped.
 * 2. A dump with a hook that only records sees pre-dump, network-lock, post-dump,
 *    each with the workload's pid and the images directory; the workload is killed.
 * 3. A restore whose hook aborts at pre-resume fails naming it and leaves no task.
 * 4. A restore with the recording hook sees every restore stage in order (pid 0 at
 *    pre-restore, the restored pid after); the workload then passes its own check.
 *
 * The hook runs in ccr's helper process, a fork of this one: it records into
 * MAP_SHARED memory, which both see.
 */
#include <ccr.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "workload.h"

#define MAX_CALLS 32

struct call {
	int stage;
	pid_t pid;
	char dir[512];
};

struct record {
	int n;
	/* The stage at which the hook returns 7; -1 for none. */
	int abort_at;
	struct call calls[MAX_CALLS];
};

static char images[4352];

static int hook(ccr_hook_stage stage, pid_t pid, const char *dir, void *user_data)
{
	struct record *r = user_data;

	if (r->n < MAX_CALLS) {
		r->calls[r->n].stage = stage;
		r->calls[r->n].pid = pid;
		snprintf(r->calls[r->n].dir, sizeof(r->calls[0].dir), "%s", dir ? dir : "(null)");
		r->n++;
	}
	return (int)stage == r->abort_at ? 7 : 0;
}

/* A field of /proc/PID/status as an int, -1 when absent. */
static int status_int(pid_t pid, const char *key)
{
	char path[64], line[256];
	size_t n = strlen(key);
	int v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':')
			v = atoi(line + n + 1);
	fclose(f);
	return v;
}

/* The state letter of /proc/PID/stat, 0 when gone. */
static char state_of(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	char st = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
		st = p[2];
	fclose(f);
	return st;
}

/* Checks the hook saw exactly `want` (n stages), each with `pid` (0 at
 * pre-restore) and the images directory. */
static void expect_calls(const char *what, const struct record *r, const int *want, int n, pid_t pid)
{
	WL_CHECK(r->n == n, "%s: the hook was called %d times, want %d", what, r->n, n);
	for (int i = 0; i < r->n && i < n; i++) {
		const struct call *c = &r->calls[i];
		pid_t want_pid = want[i] == CCR_HOOK_STAGE_PRE_RESTORE ? 0 : pid;

		WL_CHECK(c->stage == want[i], "%s: call %d was stage %d (%s), want %s", what, i, c->stage,
			 ccr_hook_stage_name(c->stage), ccr_hook_stage_name(want[i]));
		WL_CHECK(c->pid == want_pid, "%s: %s got pid %d, want %d", what, ccr_hook_stage_name(c->stage),
			 c->pid, want_pid);
		WL_CHECK(!strcmp(c->dir, images), "%s: %s got images dir %s, want %s", what,
			 ccr_hook_stage_name(c->stage), c->dir, images);
	}
}

static ccr_opts *opts(const char *log, struct record *r)
{
	ccr_opts *o = ccr_opts_new();

	if (!o)
		WL_DIE("ccr_opts_new");
	ccr_opts_set_images_dir(o, images);
	ccr_opts_set_log_file(o, wl_path(log));
	ccr_opts_set_log_level(o, 4);
	if (ccr_opts_set_hook(o, hook, r))
		WL_DIE("ccr_opts_set_hook: %s", ccr_last_error());
	return o;
}

static pid_t start(const char *workload, const char *out)
{
	char scratch[4352];

	snprintf(scratch, sizeof(scratch), "%s", wl_path("scratch"));
	return wl_start_ready(workload, scratch, out);
}

static void names(void)
{
	WL_CHECK(!strcmp(ccr_hook_stage_name(CCR_HOOK_STAGE_PRE_DUMP), "pre-dump"), "name of PRE_DUMP");
	WL_CHECK(!strcmp(ccr_hook_stage_name(CCR_HOOK_STAGE_POST_SETUP_NAMESPACES), "post-setup-namespaces"),
		 "name of POST_SETUP_NAMESPACES");
	WL_CHECK(!strcmp(ccr_hook_stage_name(CCR_HOOK_STAGE_POST_RESUME), "post-resume"), "name of POST_RESUME");
	WL_CHECK(ccr_hook_stage_name(42) == NULL, "a stage that is none has a name");
	WL_CHECK(ccr_opts_set_hook(NULL, hook, NULL) == -EINVAL, "ccr_opts_set_hook(NULL opts)");
}

int main(int argc, char **argv)
{
	static const int dump_aborted[] = { CCR_HOOK_STAGE_PRE_DUMP, CCR_HOOK_STAGE_NETWORK_LOCK,
					    CCR_HOOK_STAGE_POST_DUMP, CCR_HOOK_STAGE_NETWORK_UNLOCK };
	static const int dump_stages[] = { CCR_HOOK_STAGE_PRE_DUMP, CCR_HOOK_STAGE_NETWORK_LOCK,
					   CCR_HOOK_STAGE_POST_DUMP };
	static const int restore_aborted[] = { CCR_HOOK_STAGE_PRE_RESTORE, CCR_HOOK_STAGE_SETUP_NAMESPACES,
					       CCR_HOOK_STAGE_POST_SETUP_NAMESPACES, CCR_HOOK_STAGE_POST_RESTORE,
					       CCR_HOOK_STAGE_NETWORK_UNLOCK, CCR_HOOK_STAGE_PRE_RESUME };
	static const int restore_stages[] = { CCR_HOOK_STAGE_PRE_RESTORE, CCR_HOOK_STAGE_SETUP_NAMESPACES,
					      CCR_HOOK_STAGE_POST_SETUP_NAMESPACES, CCR_HOOK_STAGE_POST_RESTORE,
					      CCR_HOOK_STAGE_NETWORK_UNLOCK, CCR_HOOK_STAGE_PRE_RESUME,
					      CCR_HOOK_STAGE_POST_RESUME };
	struct record *r;
	char out[4352];
	pid_t child, restored, w;
	ccr_opts *o;
	int status, rc;

	if (argc != 3) {
		fprintf(stderr, "usage: %s WORKLOAD WORKDIR\n", argv[0]);
		return 2;
	}
	/* The scratch directory of workload.h: argv[2]. */
	wl_scratch(2, argv + 1);
	snprintf(images, sizeof(images), "%s", wl_path("images"));
	snprintf(out, sizeof(out), "%s", wl_path("wl.out"));
	r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		WL_DIE("mmap");
	names();
	child = start(argv[1], out);

	/* 1. Aborted at post-dump: the task runs on as it was. */
	memset(r, 0, sizeof(*r));
	r->abort_at = CCR_HOOK_STAGE_POST_DUMP;
	o = opts("dump-aborted.log", r);
	ccr_opts_set_pid(o, child);
	rc = ccr_dump(o);
	ccr_opts_free(o);
	WL_CHECK(rc == -ECANCELED, "ccr_dump with a hook failing at post-dump = %d: %s", rc, ccr_last_error());
	WL_CHECK(strstr(ccr_last_error(), "post-dump") && strstr(ccr_last_error(), "returned 7"),
		 "the error does not name the stage and the value: %s", ccr_last_error());
	expect_calls("aborted dump", r, dump_aborted, 4, child);
	WL_CHECK(status_int(child, "TracerPid") == 0, "pid %d is traced after the aborted dump", child);
	WL_CHECK(!strchr("tTZX", state_of(child)), "pid %d is in state %c after the aborted dump", child,
		 state_of(child));
	WL_CHECK(waitpid(child, &status, WNOHANG) == 0, "pid %d ended after the aborted dump", child);

	/* 2. A dump that goes through. */
	memset(r, 0, sizeof(*r));
	r->abort_at = -1;
	o = opts("dump.log", r);
	ccr_opts_set_pid(o, child);
	rc = ccr_dump(o);
	ccr_opts_free(o);
	if (rc) {
		wl_fail("ccr_dump(pid %d) = %d: %s", child, rc, ccr_last_error());
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		return wl_finish();
	}
	expect_calls("dump", r, dump_stages, 3, child);
	w = waitpid(child, &status, 0);
	WL_CHECK(w == child && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		 "after the dump pid %d ended with status %#x, want SIGKILL", child, status);

	/* 3. Aborted at pre-resume: nothing is left. The root was made our child
	 * (CLONE_PARENT): its corpse is ours to reap. */
	memset(r, 0, sizeof(*r));
	r->abort_at = CCR_HOOK_STAGE_PRE_RESUME;
	o = opts("restore-aborted.log", r);
	restored = ccr_restore(o);
	ccr_opts_free(o);
	WL_CHECK(restored == -ECANCELED, "ccr_restore with a hook failing at pre-resume = %d: %s", restored,
		 ccr_last_error());
	WL_CHECK(strstr(ccr_last_error(), "pre-resume") != NULL, "the error does not name the stage: %s",
		 ccr_last_error());
	expect_calls("aborted restore", r, restore_aborted, 6, child);
	waitpid(child, NULL, 0);
	WL_CHECK(kill(child, 0) && errno == ESRCH, "pid %d exists after the aborted restore", child);

	/* 4. A restore that goes through. */
	memset(r, 0, sizeof(*r));
	r->abort_at = -1;
	o = opts("restore.log", r);
	restored = ccr_restore(o);
	ccr_opts_free(o);
	if (restored < 0) {
		wl_fail("ccr_restore = %d: %s", restored, ccr_last_error());
		return wl_finish();
	}
	WL_CHECK(restored == child, "restored pid %d, want %d", restored, child);
	expect_calls("restore", r, restore_stages, 7, child);
	kill(restored, SIGTERM);
	w = waitpid(restored, &status, 0);
	WL_CHECK(w == restored && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		 "restored task ended with status %#x", status);
	WL_CHECK(wl_file_has_line(out, "PASS"), "the restored workload did not print PASS");
	return wl_finish();
}
