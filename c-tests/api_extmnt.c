/*
 * api_extmnt: an external bind mount through the C ABI, as a container manager
 * names one (ccr_opts_add_ext_mount(), mount point -> key on a dump, key -> path
 * on a restore).
 *
 *   api_extmnt WL_MOUNTS WORKDIR
 *
 * Makes WORKDIR/ext-a (marker "first") and WORKDIR/ext-b (marker "second"),
 * starts WL_MOUNTS with WL_MNT=ext binding ext-a on its scratch/ext, and checks:
 * a dump naming a path that is no mount fails naming it and the tree runs on; a
 * dump naming scratch/ext with the key "extkey" succeeds; a restore without a
 * path for the key fails naming the key and leaves no task; a restore mapping
 * the key to ext-b brings the workload back, which then reads "second" at
 * scratch/ext/marker and prints PASS. Exits 0 when all of that held.
 */
#include <ccr.h>
#include <sys/wait.h>

#include "workload.h"

static char workdir[2048];

/* WORKDIR/name into a static buffer (one of four). */
static const char *at(const char *name)
{
	static char bufs[4][2304];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, sizeof(bufs[0]), "%s/%s", workdir, name);
	return b;
}

static void write_text(const char *path, const char *text)
{
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		WL_DIE("write %s", path);
	close(fd);
}

static void marked_dir(const char *name, const char *marker)
{
	char path[2400];

	if (mkdir(at(name), 0755) && errno != EEXIST)
		WL_DIE("mkdir %s", at(name));
	snprintf(path, sizeof(path), "%s/marker", at(name));
	write_text(path, marker);
}

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

static pid_t start(const char *workload)
{
	char out[2400], scratch[2400];

	snprintf(out, sizeof(out), "%s", at("wl.out"));
	snprintf(scratch, sizeof(scratch), "%s", at("scratch"));
	setenv("WL_MNT", "ext", 1);
	setenv("WL_EXT_SRC", at("ext-a"), 1);
	return wl_start_ready(workload, scratch, out);
}

static ccr_opts *opts(const char *log)
{
	ccr_opts *o = ccr_opts_new();

	if (!o)
		WL_DIE("ccr_opts_new");
	ccr_opts_set_images_dir(o, at("images"));
	ccr_opts_set_log_file(o, at(log));
	ccr_opts_set_log_level(o, 4);
	return o;
}

static void error_paths(void)
{
	ccr_opts *o = ccr_opts_new();
	int r;

	r = ccr_opts_add_ext_mount(NULL, "/lib", "lib");
	WL_CHECK(r == -EINVAL, "ccr_opts_add_ext_mount(NULL, ...) = %d", r);
	r = ccr_opts_add_ext_mount(o, NULL, "lib");
	WL_CHECK(r == -EINVAL, "ccr_opts_add_ext_mount(o, NULL, ...) = %d", r);
	r = ccr_opts_add_ext_mount(o, "/lib", "");
	WL_CHECK(r == -EINVAL, "ccr_opts_add_ext_mount(o, \"/lib\", \"\") = %d", r);
	ccr_opts_free(o);
	/* A mount given as a tty key names nothing ccr lets go of: refused, not ignored. */
	o = opts("dump-bad-key.log");
	ccr_opts_set_pid(o, getpid());
	ccr_opts_add_external(o, "mnt[/lib]:lib");
	r = ccr_dump(o);
	WL_CHECK(r == -EINVAL && strstr(ccr_last_error(), "ccr_opts_add_ext_mount"),
		 "ccr_dump with the external key mnt[/lib]:lib = %d: %s", r, ccr_last_error());
	ccr_opts_free(o);
}

static void cycle(const char *workload)
{
	char point[2400], nomount[2400];
	pid_t child, restored, w;
	ccr_opts *o;
	int r, status;

	snprintf(point, sizeof(point), "%s", at("scratch/ext"));
	snprintf(nomount, sizeof(nomount), "%s", at("scratch/tm/dir"));
	child = start(workload);

	o = opts("dump-refused.log");
	ccr_opts_set_pid(o, child);
	ccr_opts_add_ext_mount(o, nomount, "nope");
	r = ccr_dump(o);
	ccr_opts_free(o);
	WL_CHECK(r < 0 && strstr(ccr_last_error(), nomount), "a dump naming %s external: %d: %s", nomount, r,
		 ccr_last_error());
	WL_CHECK(kill(child, 0) == 0 && waitpid(child, NULL, WNOHANG) == 0, "the tree is gone after a refused dump");

	o = opts("dump.log");
	ccr_opts_set_pid(o, child);
	r = ccr_opts_add_ext_mount(o, point, "extkey");
	WL_CHECK(r == 0, "ccr_opts_add_ext_mount(dump) = %d: %s", r, ccr_last_error());
	r = ccr_dump(o);
	ccr_opts_free(o);
	if (r) {
		wl_fail("ccr_dump(pid %d) = %d: %s", child, r, ccr_last_error());
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		return;
	}
	w = waitpid(child, &status, 0);
	WL_CHECK(w == child && WIFSIGNALED(status), "after the dump pid %d ended with status %#x", child, status);

	o = opts("restore-refused.log");
	restored = ccr_restore(o);
	ccr_opts_free(o);
	WL_CHECK(restored < 0 && strstr(ccr_last_error(), "extkey"), "a restore without a path for extkey: %d: %s",
		 restored, ccr_last_error());
	WL_CHECK(kill(child, 0) < 0 && errno == ESRCH, "a refused restore left pid %d", child);
	if (restored > 0) {
		kill(restored, SIGKILL);
		waitpid(restored, NULL, 0);
	}

	write_text(at("scratch/ext-want"), "second");
	o = opts("restore.log");
	r = ccr_opts_add_ext_mount(o, "extkey", at("ext-b"));
	WL_CHECK(r == 0, "ccr_opts_add_ext_mount(restore) = %d: %s", r, ccr_last_error());
	restored = ccr_restore(o);
	ccr_opts_free(o);
	if (restored < 0) {
		wl_fail("ccr_restore = %d: %s", restored, ccr_last_error());
		return;
	}
	WL_CHECK(restored == child, "restored pid %d, want %d", restored, child);
	wl_check_restored_passes(restored, at("wl.out"));
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s WL_MOUNTS WORKDIR\n", argv[0]);
		return 2;
	}
	snprintf(workdir, sizeof(workdir), "%s", argv[2]);
	if (mkdir(workdir, 0755) && errno != EEXIST)
		WL_DIE("mkdir %s", workdir);
	marked_dir("ext-a", "first");
	marked_dir("ext-b", "second");
	error_paths();
	cycle(argv[1]);
	if (wl_failures) {
		show_file(at("wl.out"));
		show_file(at("dump.log"));
		show_file(at("restore.log"));
	}
	return wl_finish();
}
