/*
 * wl_identity: per-process attributes that are not memory: PID, rlimits, umask,
 * cwd, comm (PR_SET_NAME), personality, dumpable.
 */
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "workload.h"

#define NOFILE_SOFT 512
#define CORE_SOFT (1ul << 20)
#define CORE_HARD (2ul << 20)
#define NAME "ccr-ident"

int main(int argc, char **argv)
{
	struct rlimit nofile, core, r;
	char cwd[4096], now_cwd[4096], comm[64], pname[17];
	unsigned long persona;
	pid_t pid;
	mode_t m;
	FILE *f;
	int pers;

	wl_install_term();
	wl_scratch(argc, argv);

	if (getrlimit(RLIMIT_NOFILE, &nofile))
		WL_DIE("getrlimit");
	nofile.rlim_cur = NOFILE_SOFT;
	if (setrlimit(RLIMIT_NOFILE, &nofile))
		WL_DIE("setrlimit NOFILE");
	core.rlim_cur = CORE_SOFT;
	core.rlim_max = CORE_HARD;
	if (setrlimit(RLIMIT_CORE, &core))
		WL_DIE("setrlimit CORE");
	umask(027);
	if (chdir(wl_scratch_buf) || !getcwd(cwd, sizeof(cwd)))
		WL_DIE("chdir %s", wl_scratch_buf);
	if (prctl(PR_SET_NAME, NAME))
		WL_DIE("PR_SET_NAME");
	pers = personality(0xffffffff);
	if (pers < 0 || personality(pers | ADDR_NO_RANDOMIZE) < 0)
		WL_DIE("personality");
	persona = (unsigned long)personality(0xffffffff);
	if (!(persona & ADDR_NO_RANDOMIZE))
		WL_DIE("personality did not take ADDR_NO_RANDOMIZE");
	pid = getpid();
	WL_CHECK(prctl(PR_GET_DUMPABLE) == 1, "not dumpable before the dump");

	wl_ready();
	if (wl_selftest_break())
		umask(022);
	wl_wait_for_term();

	WL_CHECK(getpid() == pid, "getpid() %d, want %d", getpid(), pid);
	f = fopen("/proc/self/comm", "r");
	if (!f || !fgets(comm, sizeof(comm), f))
		wl_fail("read /proc/self/comm: %s", strerror(errno));
	else
		WL_CHECK(!strcmp(comm, NAME "\n"), "/proc/self/comm is '%s', want '%s'", comm, NAME);
	if (f)
		fclose(f);
	memset(pname, 0, sizeof(pname));
	prctl(PR_GET_NAME, pname);
	WL_CHECK(!strcmp(pname, NAME), "PR_GET_NAME '%s', want '%s'", pname, NAME);
	WL_CHECK(getcwd(now_cwd, sizeof(now_cwd)) && !strcmp(now_cwd, cwd), "cwd '%s', want '%s'",
		 now_cwd, cwd);
	m = umask(0);
	umask(m);
	WL_CHECK(m == 027, "umask %03o, want 027", (unsigned)m);
	getrlimit(RLIMIT_NOFILE, &r);
	WL_CHECK(r.rlim_cur == NOFILE_SOFT && r.rlim_max == nofile.rlim_max,
		 "RLIMIT_NOFILE %lu/%lu, want %d/%lu", (unsigned long)r.rlim_cur,
		 (unsigned long)r.rlim_max, NOFILE_SOFT, (unsigned long)nofile.rlim_max);
	getrlimit(RLIMIT_CORE, &r);
	WL_CHECK(r.rlim_cur == CORE_SOFT && r.rlim_max == CORE_HARD, "RLIMIT_CORE %lu/%lu, want %lu/%lu",
		 (unsigned long)r.rlim_cur, (unsigned long)r.rlim_max, CORE_SOFT, CORE_HARD);
	WL_CHECK((unsigned long)personality(0xffffffff) == persona, "personality %#x, want %#lx",
		 personality(0xffffffff), persona);
	WL_CHECK(prctl(PR_GET_DUMPABLE) == 1, "PR_GET_DUMPABLE %d, want 1", prctl(PR_GET_DUMPABLE));
	return wl_finish();
}
