/*
 * wl_creds (run as root): drops to uid 1000 / gid 100 with supplementary groups
 * {10, 20}, keeping only CAP_NET_BIND_SERVICE (permitted and effective), with
 * keepcaps and no_new_privs set. All of it must read back the same after
 * restore, the bounding set and securebits included.
 */
#include <grp.h>
#include <linux/capability.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "workload.h"

#define UID 1000
#define GID 100
#define KEEP_CAP CAP_NET_BIND_SERVICE

static int capget2(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };

	return (int)syscall(SYS_capget, &h, d);
}

static int capset2(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };

	return (int)syscall(SYS_capset, &h, d);
}

static int last_cap(void)
{
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "r");
	int n = CAP_LAST_CAP;

	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = CAP_LAST_CAP;
		fclose(f);
	}
	return n;
}

int main(int argc, char **argv)
{
	const gid_t groups[2] = { 10, 20 };
	gid_t g[16];
	struct __user_cap_data_struct caps[2], now[2];
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	unsigned long long bset = 0, bset_now = 0;
	int ncap = last_cap(), secbits, n;

	(void)argc;
	(void)argv;
	wl_install_term();
	if (geteuid() != 0) {
		printf("FAIL: setup: wl_creds must run as root\n");
		return 2;
	}
	if (setgroups(2, groups))
		WL_DIE("setgroups");
	if (setresgid(GID, GID, GID))
		WL_DIE("setresgid");
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0))
		WL_DIE("PR_SET_KEEPCAPS");
	if (setresuid(UID, UID, UID))
		WL_DIE("setresuid");
	memset(caps, 0, sizeof(caps));
	caps[0].permitted = caps[0].effective = 1u << KEEP_CAP;
	if (capset2(caps))
		WL_DIE("capset");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		WL_DIE("PR_SET_NO_NEW_PRIVS");
	for (int c = 0; c <= ncap; c++)
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
			bset |= 1ull << c;
	secbits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);

	wl_ready();
	if (wl_selftest_break()) {
		caps[0].effective = 0;
		capset2(caps);
		caps[0].effective = 1u << KEEP_CAP;
	}
	wl_wait_for_term();

	getresuid(&ru, &eu, &su);
	getresgid(&rg, &eg, &sg);
	WL_CHECK(ru == UID && eu == UID && su == UID, "uids %u/%u/%u, want %d", ru, eu, su, UID);
	WL_CHECK(rg == GID && eg == GID && sg == GID, "gids %u/%u/%u, want %d", rg, eg, sg, GID);
	WL_CHECK(setfsuid(-1) == UID && setfsgid(-1) == GID, "fsuid %d fsgid %d", setfsuid(-1),
		 setfsgid(-1));
	n = getgroups(16, g);
	WL_CHECK(n == 2 && g[0] == 10 && g[1] == 20, "%d supplementary groups (first %u), want {10, 20}",
		 n, n > 0 ? g[0] : 0);
	memset(now, 0, sizeof(now));
	if (capget2(now))
		wl_fail("capget: %s", strerror(errno));
	WL_CHECK(now[0].effective == caps[0].effective && now[1].effective == 0,
		 "effective caps %#x %#x, want %#x 0", now[0].effective, now[1].effective,
		 caps[0].effective);
	WL_CHECK(now[0].permitted == caps[0].permitted && now[1].permitted == 0,
		 "permitted caps %#x %#x, want %#x 0", now[0].permitted, now[1].permitted,
		 caps[0].permitted);
	WL_CHECK(now[0].inheritable == 0 && now[1].inheritable == 0, "inheritable caps %#x %#x",
		 now[0].inheritable, now[1].inheritable);
	for (int c = 0; c <= ncap; c++)
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
			bset_now |= 1ull << c;
	WL_CHECK(bset_now == bset, "bounding set %#llx, want %#llx", bset_now, bset);
	WL_CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, KEEP_CAP, 0, 0) == 0,
		 "ambient CAP_NET_BIND_SERVICE set");
	WL_CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1, "no_new_privs is off");
	WL_CHECK(prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0) == 1, "keepcaps is off");
	WL_CHECK(prctl(PR_GET_SECUREBITS, 0, 0, 0, 0) == secbits, "securebits %#x, want %#x",
		 prctl(PR_GET_SECUREBITS, 0, 0, 0, 0), secbits);
	return wl_finish();
}
