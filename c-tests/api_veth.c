/*
 * api_veth: a container's veth through the C ABI, as a container manager names
 * its new host end (ccr_opts_add_veth_pair()).
 *
 *   api_veth WL_VETH WORKDIR OLD_HOST NEW_HOST BRIDGE SUBNET
 *
 * Starts WL_VETH (eth0 in its own network namespace, its peer OLD_HOST in
 * BRIDGE, subnet SUBNET), dumps it, and checks: bad arguments are refused; a
 * restore naming no host end fails naming eth0 and the call to make, and leaves
 * no task and no NEW_HOST; a restore with ("eth0", NEW_HOST, BRIDGE) brings the
 * workload back, NEW_HOST up and a port of BRIDGE, and the workload then prints
 * PASS. Exits 0 when all of that held.
 */
#include <ccr.h>
#include <libgen.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "workload.h"

static char workdir[2048];

static const char *at(const char *name)
{
	static char bufs[4][2304];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, sizeof(bufs[0]), "%s/%s", workdir, name);
	return b;
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

	r = ccr_opts_add_veth_pair(NULL, "eth0", "vethx", NULL);
	WL_CHECK(r == -EINVAL, "ccr_opts_add_veth_pair(NULL, ...) = %d", r);
	r = ccr_opts_add_veth_pair(o, NULL, "vethx", NULL);
	WL_CHECK(r == -EINVAL, "ccr_opts_add_veth_pair(o, NULL, ...) = %d", r);
	r = ccr_opts_add_veth_pair(o, "eth0", "a/b", NULL);
	WL_CHECK(r == -EINVAL && strstr(ccr_last_error(), "a/b"), "ccr_opts_add_veth_pair(o, eth0, a/b) = %d: %s", r,
		 ccr_last_error());
	r = ccr_opts_add_veth_pair(o, "eth0", "vethx", "a-bridge-name-far-too-long");
	WL_CHECK(r == -EINVAL, "a bridge name too long = %d", r);
	ccr_opts_free(o);
}

static pid_t start(const char *workload, const char *host, const char *bridge, const char *subnet)
{
	char out[2400], scratch[2400];

	snprintf(out, sizeof(out), "%s", at("wl.out"));
	snprintf(scratch, sizeof(scratch), "%s", at("scratch"));
	setenv("WL_VETH_HOST", host, 1);
	setenv("WL_VETH_BRIDGE", bridge, 1);
	setenv("WL_VETH_SUBNET", subnet, 1);
	return wl_start_ready(workload, scratch, out);
}

/* Whether `dev` of this namespace is up and a port of `bridge`. */
static void check_host_end(const char *dev, const char *bridge)
{
	char link[512], target[512] = "";
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ssize_t n;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
	WL_CHECK(s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP), "%s is missing or down", dev);
	if (s >= 0)
		close(s);
	snprintf(link, sizeof(link), "/sys/class/net/%s/master", dev);
	n = readlink(link, target, sizeof(target) - 1);
	if (n > 0)
		target[n] = 0;
	WL_CHECK(n > 0 && !strcmp(basename(target), bridge), "%s is not a port of %s (%s)", dev, bridge, target);
}

static void cycle(const char *workload, const char *old_host, const char *new_host, const char *bridge,
		  const char *subnet)
{
	pid_t child, restored, w;
	ccr_opts *o;
	int r, status;

	child = start(workload, old_host, bridge, subnet);
	o = opts("dump.log");
	ccr_opts_set_pid(o, child);
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
	WL_CHECK(restored < 0 && strstr(ccr_last_error(), "veth eth0") &&
			 strstr(ccr_last_error(), "ccr_opts_add_veth_pair"),
		 "a restore without a host end for eth0: %d: %s", restored, ccr_last_error());
	WL_CHECK(kill(child, 0) < 0 && errno == ESRCH, "a refused restore left pid %d", child);
	WL_CHECK(if_nametoindex(new_host) == 0, "a refused restore left %s", new_host);
	if (restored > 0) {
		kill(restored, SIGKILL);
		waitpid(restored, NULL, 0);
	}

	o = opts("restore.log");
	r = ccr_opts_add_veth_pair(o, "eth0", new_host, bridge);
	WL_CHECK(r == 0, "ccr_opts_add_veth_pair = %d: %s", r, ccr_last_error());
	restored = ccr_restore(o);
	ccr_opts_free(o);
	if (restored < 0) {
		wl_fail("ccr_restore = %d: %s", restored, ccr_last_error());
		return;
	}
	WL_CHECK(restored == child, "restored pid %d, want %d", restored, child);
	check_host_end(new_host, bridge);
	wl_check_restored_passes(restored, at("wl.out"));
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: %s WL_VETH WORKDIR OLD_HOST NEW_HOST BRIDGE SUBNET\n", argv[0]);
		return 2;
	}
	snprintf(workdir, sizeof(workdir), "%s", argv[2]);
	if (mkdir(workdir, 0755) && errno != EEXIST)
		WL_DIE("mkdir %s", workdir);
	error_paths();
	cycle(argv[1], argv[3], argv[4], argv[5], argv[6]);
	if (wl_failures) {
		show_file(at("wl.out"));
		show_file(at("dump.log"));
		show_file(at("restore.log"));
	}
	return wl_finish();
}
