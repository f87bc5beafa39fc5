/*
 * Drives liblxc's checkpoint calls as a container manager linking liblxc makes
 * them, with ccr found as criu:
 *   lxc_api NAME LXCPATH checkpoint|restore|migrate-dump|migrate-restore|pre-dump DIR
 * checkpoint: c->checkpoint(DIR, stop, verbose); restore: c->restore(DIR);
 * migrate-dump / migrate-restore: c->migrate(MIGRATE_DUMP / MIGRATE_RESTORE)
 * with DIR, stop and verbose set; pre-dump: c->migrate(MIGRATE_PRE_DUMP),
 * which must fail (ccr has no pre-dump yet) and leave the container running;
 * features: MIGRATE_FEATURE_CHECK of memory tracking and lazy pages, which must
 * say no; console: c->console_getfd() on the console, then up to 10 s for the line DIR
 * (here a marker) to come out of it.
 * Exits 0 when the call did what it should, 1 otherwise, saying why.
 */
#include <lxc/lxccontainer.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Reads the console until `marker` comes out of it, 10 s at most. */
static int console_shows(int ptx, const char *marker)
{
	char buf[8192];
	size_t got = 0;
	time_t end = time(NULL) + 10;

	while (time(NULL) < end) {
		struct pollfd p = { .fd = ptx, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 500) != 1)
			continue;
		n = read(ptx, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			return 0;
		got += (size_t)n;
		buf[got] = 0;
		if (strstr(buf, marker))
			return 1;
		if (got > sizeof(buf) / 2) {
			memmove(buf, buf + got / 2, got - got / 2);
			got -= got / 2;
		}
	}
	return 0;
}

static int fail(const char *what, struct lxc_container *c)
{
	fprintf(stderr, "lxc_api: %s (state %s, error %d: %s)\n", what, c ? c->state(c) : "?",
		c ? c->error_num : 0, c && c->error_string ? c->error_string : "");
	return 1;
}

int main(int argc, char **argv)
{
	struct lxc_container *c;
	struct migrate_opts opts;
	const char *mode;
	char *dir;
	int r;

	if (argc != 5) {
		fprintf(stderr, "usage: lxc_api NAME LXCPATH MODE DIR\n");
		return 2;
	}
	mode = argv[3];
	dir = argv[4];
	c = lxc_container_new(argv[1], argv[2]);
	if (!c || !c->is_defined(c))
		return fail("no such container", c);
	memset(&opts, 0, sizeof(opts));
	opts.directory = dir;
	opts.verbose = true;
	opts.stop = true;
	if (!strcmp(mode, "checkpoint")) {
		if (!c->checkpoint(c, dir, true, true))
			return fail("checkpoint() failed", c);
		if (c->is_running(c))
			return fail("checkpoint(stop) left it running", c);
	} else if (!strcmp(mode, "restore")) {
		if (!c->restore(c, dir, true))
			return fail("restore() failed", c);
		if (!c->is_running(c))
			return fail("restore() left it stopped", c);
	} else if (!strcmp(mode, "migrate-dump")) {
		r = c->migrate(c, MIGRATE_DUMP, &opts, sizeof(opts));
		if (r)
			return fail("migrate(MIGRATE_DUMP) failed", c);
		if (c->is_running(c))
			return fail("migrate(MIGRATE_DUMP, stop) left it running", c);
	} else if (!strcmp(mode, "migrate-restore")) {
		r = c->migrate(c, MIGRATE_RESTORE, &opts, sizeof(opts));
		if (r)
			return fail("migrate(MIGRATE_RESTORE) failed", c);
		if (!c->is_running(c))
			return fail("migrate(MIGRATE_RESTORE) left it stopped", c);
	} else if (!strcmp(mode, "pre-dump")) {
		opts.stop = false;
		r = c->migrate(c, MIGRATE_PRE_DUMP, &opts, sizeof(opts));
		if (!r)
			return fail("migrate(MIGRATE_PRE_DUMP) succeeded, which ccr cannot do yet", c);
		if (!c->is_running(c))
			return fail("a failed pre-dump stopped it", c);
	} else if (!strcmp(mode, "features")) {
		opts.features_to_check = FEATURE_MEM_TRACK | FEATURE_LAZY_PAGES;
		r = c->migrate(c, MIGRATE_FEATURE_CHECK, &opts, sizeof(opts));
		if (!r)
			return fail("MIGRATE_FEATURE_CHECK says ccr tracks memory and pages lazily", c);
	} else if (!strcmp(mode, "console")) {
		int ttynum = 0, ptx = -1;

		if (c->console_getfd(c, &ttynum, &ptx) < 0)
			return fail("console_getfd() on the console failed", c);
		printf("ready\n");
		fflush(stdout);
		if (!console_shows(ptx, dir))
			return fail("the marker never came out of the console", c);
	} else {
		fprintf(stderr, "lxc_api: unknown mode %s\n", mode);
		return 2;
	}
	lxc_container_put(c);
	return 0;
}
