/*
 * api_cgroup: freeze -> cgroup-save -> thaw -> delete -> cgroup-restore through the
 * C ABI (include/ccr.h), on this machine's real cgroups. Needs root.
 *
 * usage: api_cgroup [IMAGES_DIR]
 *
 * Builds ccrtest-capi-PID on the v1 freezer, pids and memory hierarchies and on
 * cgroup2 (mounted at CGROOT, default /sys/fs/cgroup), with a child cgroup "in" on
 * each, puts a sleep in "in", sets limits, then checks that the restored tree has
 * them. Exits 0 on success; prints what failed otherwise. Cleans up either way.
 */
#include <ccr.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *hiers[] = {"freezer", "pids", "memory", "unified"};
#define NH (sizeof(hiers) / sizeof(hiers[0]))

static char base[256];
static char name[64];
static pid_t child = -1;

static void path_of(char *buf, size_t n, const char *h, const char *sub, const char *file)
{
	snprintf(buf, n, "%s/%s/%s%s%s%s%s", base, h, name, sub ? "/" : "", sub ? sub : "", file ? "/" : "",
		 file ? file : "");
}

static int put(const char *h, const char *sub, const char *file, const char *val)
{
	char p[512];
	FILE *f;
	int ok;

	path_of(p, sizeof(p), h, sub, file);
	f = fopen(p, "w");
	if (!f) {
		fprintf(stderr, "open %s: %s\n", p, strerror(errno));
		return -1;
	}
	ok = fputs(val, f) >= 0;
	ok = (fclose(f) == 0) && ok;
	if (!ok)
		fprintf(stderr, "write %s to %s failed\n", val, p);
	return ok ? 0 : -1;
}

static int get(const char *h, const char *sub, const char *file, char *out, size_t n)
{
	char p[512];
	FILE *f;

	path_of(p, sizeof(p), h, sub, file);
	f = fopen(p, "r");
	if (!f || !fgets(out, (int)n, f)) {
		fprintf(stderr, "read %s failed\n", p);
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	out[strcspn(out, "\n")] = 0;
	return 0;
}

static int expect(const char *h, const char *sub, const char *file, const char *want)
{
	char got[256];

	if (get(h, sub, file, got, sizeof(got)))
		return -1;
	if (strcmp(got, want)) {
		fprintf(stderr, "%s/%s/%s: expected \"%s\", got \"%s\"\n", h, sub ? sub : "", file, want, got);
		return -1;
	}
	return 0;
}

static void kill_child(void)
{
	if (child > 0) {
		put("freezer", NULL, "freezer.state", "THAWED");
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		child = -1;
	}
}

static void remove_tree(void)
{
	char p[512];
	size_t i;
	int tries;

	for (i = 0; i < NH; i++) {
		path_of(p, sizeof(p), hiers[i], "in", NULL);
		for (tries = 0; tries < 100 && rmdir(p) && errno == EBUSY; tries++)
			usleep(20000);
		path_of(p, sizeof(p), hiers[i], NULL, NULL);
		for (tries = 0; tries < 100 && rmdir(p) && errno == EBUSY; tries++)
			usleep(20000);
	}
}

static int check(int rc, const char *what)
{
	if (rc < 0)
		fprintf(stderr, "%s failed: %d (%s)\n", what, rc, ccr_last_error());
	return rc;
}

int main(int argc, char **argv)
{
	char p[512], pidbuf[32], images[256];
	const char *cgroot = getenv("CGROOT");
	ccr_opts *o = NULL;
	int fail = 1;
	size_t i;

	snprintf(base, sizeof(base), "%s", cgroot ? cgroot : "/sys/fs/cgroup");
	snprintf(name, sizeof(name), "ccrtest-capi-%d", (int)getpid());
	if (argc > 1)
		snprintf(images, sizeof(images), "%s", argv[1]);
	else
		snprintf(images, sizeof(images), "/tmp/%s-img", name);

	for (i = 0; i < NH; i++) {
		path_of(p, sizeof(p), hiers[i], NULL, NULL);
		if (mkdir(p, 0755)) {
			fprintf(stderr, "mkdir %s: %s\n", p, strerror(errno));
			goto out;
		}
		path_of(p, sizeof(p), hiers[i], "in", NULL);
		if (mkdir(p, 0750)) {
			fprintf(stderr, "mkdir %s: %s\n", p, strerror(errno));
			goto out;
		}
	}
	if (put("pids", NULL, "pids.max", "40") || put("pids", "in", "pids.max", "9") ||
	    put("memory", "in", "memory.limit_in_bytes", "33554432") ||
	    put("unified", NULL, "cgroup.max.descendants", "3"))
		goto out;

	child = fork();
	if (child == 0) {
		execlp("sleep", "sleep", "1000", (char *)NULL);
		_exit(127);
	}
	snprintf(pidbuf, sizeof(pidbuf), "%d", (int)child);
	for (i = 0; i < NH; i++)
		if (put(hiers[i], "in", "cgroup.procs", pidbuf))
			goto out;

	o = ccr_opts_new();
	path_of(p, sizeof(p), "freezer", NULL, NULL);
	if (!o || check(ccr_opts_set_freeze_cgroup(o, p), "set_freeze_cgroup") ||
	    check(ccr_opts_set_images_dir(o, images), "set_images_dir"))
		goto out;

	if (check(ccr_freeze(o), "ccr_freeze") || expect("freezer", NULL, "freezer.state", "FROZEN"))
		goto out;
	if (check(ccr_cgroup_save(o), "ccr_cgroup_save"))
		goto out;
	if (check(ccr_thaw(o), "ccr_thaw") || expect("freezer", NULL, "freezer.state", "THAWED"))
		goto out;

	kill_child();
	remove_tree();
	path_of(p, sizeof(p), "pids", NULL, NULL);
	if (access(p, F_OK) == 0) {
		fprintf(stderr, "could not delete %s\n", p);
		goto out;
	}

	if (check(ccr_opts_set_manage_cgroups(o, CCR_MANAGE_CGROUPS_STRICT), "set_manage_cgroups") ||
	    check(ccr_cgroup_restore(o), "ccr_cgroup_restore"))
		goto out;
	if (expect("pids", NULL, "pids.max", "40") || expect("pids", "in", "pids.max", "9") ||
	    expect("memory", "in", "memory.limit_in_bytes", "33554432") ||
	    expect("unified", NULL, "cgroup.max.descendants", "3") ||
	    expect("freezer", NULL, "freezer.state", "THAWED"))
		goto out;
	{
		struct stat st;

		path_of(p, sizeof(p), "pids", "in", NULL);
		if (stat(p, &st) || (st.st_mode & 07777) != 0750) {
			fprintf(stderr, "%s: mode not restored\n", p);
			goto out;
		}
	}
	/* A second strict restore must refuse: the cgroups exist now. */
	if (ccr_cgroup_restore(o) != -EEXIST) {
		fprintf(stderr, "strict restore over existing cgroups did not fail with EEXIST\n");
		goto out;
	}
	fail = 0;
	printf("api_cgroup: ok\n");
out:
	kill_child();
	remove_tree();
	ccr_opts_free(o);
	if (argc <= 1) {
		snprintf(p, sizeof(p), "%s/cgroup.img", images);
		unlink(p);
		rmdir(images);
	}
	return fail;
}
