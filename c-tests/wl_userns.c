/*
 * wl_userns: a tree in a user namespace of its own, as an unprivileged LXC
 * container has one: uid_map and gid_map "0 100000 65536", setgroups allowed.
 *
 * usage: wl_userns [SCRATCH]    (WL_USERNS=bare: the user namespace alone;
 *                               WL_USERNS=bare-fork: and a child in it;
 *                               WL_USERNS=bare-deny: setgroups denied)
 *
 * The launcher (this process, host root) clones the tree's root into new user,
 * mount, UTS, PID, network, cgroup and IPC namespaces (with WL_USERNS=bare: a new
 * user namespace only), writes its maps and lets it go; it then only waits for it
 * and exits with its status (the tests dump and restore the root, not it), passing
 * a SIGTERM it gets on to the root.
 *
 * The root takes uid and gid 0 of its namespace (host 100000) and no supplementary
 * groups (bare-deny: keeps the launcher's), and sets its namespace's
 * user.max_user_namespaces to 77. Full: it makes its mounts private,
 * mounts a tmpfs on SCRATCH/tm (its cwd is SCRATCH) holding "owned" (contents
 * "userns", owner 1000:1001 inside, mode 0640), sets hostname "wl-userns", makes
 * SysV objects (an attached segment, a semaphore set, a message queue with a
 * message) and a POSIX queue in its IPC namespace, enters a time namespace of its
 * own a day ahead, starts a second thread, and forks a child (PID 2 inside) that takes uid 1000 gid 1001
 * and waits for SIGTERM. Then it reports ready.
 *
 * On SIGTERM the root checks: /proc/self/uid_map and gid_map are still "0 100000
 * 65536", setgroups "allow", getresuid/getresgid all 0, no groups (bare-deny:
 * setgroups "deny", still the two host groups 0 and 1234 the launcher gave it, and
 * setgroups fails), max_user_namespaces 77, its effective capabilities as they were (full) and that it can
 * use them (full: sethostname again; bare: setresuid to 0 again); full: the
 * hostname, the tmpfs file with its contents, owner and mode, the IPC objects
 * (ids, contents, owners 0 inside), the clock still a day ahead, the thread runs, and the child,
 * whose own check (getresuid/getresgid 1000/1001) exits 0 after the root passes
 * SIGTERM on.
 *
 * Self test: the root's hostname is changed after ready (bare: its uid is checked
 * against 1).
 */
#include <mqueue.h>
#include <sched.h>
#include <time.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <grp.h>
#include <pthread.h>

#include "workload.h"

#define MAP "0 100000 65536"
#define HOST "wl-userns"

#define IPC_KEY 0x75e45
/* The time namespace's CLOCK_MONOTONIC offset: a day. */
#define DAY (24LL * 3600)

static int go[2];
static int bare, bare_fork, deny;
static volatile pid_t root_pid;

/* The launcher passes SIGTERM on to the root (as a test without ccr sends it). */
static void forward(int sig)
{
	if (root_pid > 0)
		kill(root_pid, sig);
}
static char stack[1 << 16];

/* The map file's lines with runs of blanks squeezed: "0 100000 65536". */
static void read_map(const char *name, char *out, size_t len)
{
	char path[64], buf[256];
	size_t o = 0;
	int blank = 1;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/self/%s", name);
	out[0] = 0;
	f = fopen(path, "r");
	if (!f)
		return;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	for (char *p = buf; *p && o + 1 < len; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n') {
			if (!blank)
				out[o++] = ' ';
			blank = 1;
		} else {
			out[o++] = *p;
			blank = 0;
		}
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = 0;
}

static unsigned long long cap_eff(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	unsigned long long v = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &v) == 1)
			break;
	fclose(f);
	return v;
}

static void take_ids(uid_t uid, gid_t gid)
{
	/* Where setgroups is denied the groups stay the launcher's. */
	if (!deny && setgroups(0, NULL))
		WL_DIE("setgroups");
	if (setresgid(gid, gid, gid))
		WL_DIE("setresgid %d", gid);
	if (setresuid(uid, uid, uid))
		WL_DIE("setresuid %d", uid);
	/* As after an exec: its /proc files its own again (timens_offsets). */
	if (prctl(PR_SET_DUMPABLE, 1))
		WL_DIE("PR_SET_DUMPABLE");
}

/* The child: uid 1000, gid 1001 inside; checks them on SIGTERM. */
static int kid(void)
{
	uid_t r, e, s;
	gid_t gr, ge, gs;

	wl_install_term();
	take_ids(1000, 1001);
	wl_wait_for_term();
	getresuid(&r, &e, &s);
	getresgid(&gr, &ge, &gs);
	return r == 1000 && e == 1000 && s == 1000 && gr == 1001 && ge == 1001 && gs == 1001 ? 0 : 1;
}

static int shm_id = -1, sem_id = -1, msg_id = -1;
static char *shm_mem;

/* Its IPC namespace: a segment (attached, holding a text), a semaphore set
 * (value 7), a message queue (one message) and an empty POSIX queue with a
 * mode, all owned by its root (0 inside). */
static void ipc_setup(void)
{
	struct sembuf up = { 0, 7, 0 };
	struct {
		long mtype;
		char text[16];
	} m = { 3, "userns-msg" };
	struct mq_attr a = { .mq_maxmsg = 4, .mq_msgsize = 64 };
	mqd_t q;

	shm_id = shmget(IPC_KEY, 4096, IPC_CREAT | IPC_EXCL | 0600);
	sem_id = semget(IPC_KEY, 1, IPC_CREAT | IPC_EXCL | 0600);
	msg_id = msgget(IPC_KEY, IPC_CREAT | IPC_EXCL | 0600);
	if (shm_id < 0 || sem_id < 0 || msg_id < 0)
		WL_DIE("SysV objects");
	shm_mem = shmat(shm_id, NULL, 0);
	if (shm_mem == (void *)-1)
		WL_DIE("shmat");
	strcpy(shm_mem, "userns-shm");
	if (semop(sem_id, &up, 1) || msgsnd(msg_id, &m, sizeof(m.text), 0))
		WL_DIE("semop/msgsnd");
	q = mq_open("/wl-userns", O_CREAT | O_EXCL | O_RDWR, 0640, &a);
	if (q == (mqd_t)-1)
		WL_DIE("mq_open");
	mq_close(q);
}

static void ipc_check(void)
{
	struct {
		long mtype;
		char text[16];
	} m = { 0, "" };
	struct shmid_ds ds;
	struct mq_attr a;
	mqd_t q;

	WL_CHECK(shmget(IPC_KEY, 0, 0) == shm_id, "segment %#x is not id %d", IPC_KEY, shm_id);
	WL_CHECK(!strcmp(shm_mem, "userns-shm"), "segment holds \"%.16s\"", shm_mem);
	WL_CHECK(!shmctl(shm_id, IPC_STAT, &ds) && ds.shm_perm.uid == 0 && ds.shm_perm.gid == 0,
		 "segment owner %d:%d", ds.shm_perm.uid, ds.shm_perm.gid);
	WL_CHECK(semget(IPC_KEY, 0, 0) == sem_id && semctl(sem_id, 0, GETVAL) == 7, "semaphore %d value %d", sem_id,
		 semctl(sem_id, 0, GETVAL));
	WL_CHECK(msgget(IPC_KEY, 0) == msg_id && msgrcv(msg_id, &m, sizeof(m.text), 0, IPC_NOWAIT) > 0 &&
			 m.mtype == 3 && !strcmp(m.text, "userns-msg"),
		 "message queue %d: type %ld \"%s\"", msg_id, m.mtype, m.text);
	q = mq_open("/wl-userns", O_RDWR);
	WL_CHECK(q != (mqd_t)-1 && !mq_getattr(q, &a) && a.mq_maxmsg == 4 && a.mq_msgsize == 64,
		 "POSIX queue /wl-userns: %s", q == (mqd_t)-1 ? strerror(errno) : "other sizes");
	if (q != (mqd_t)-1)
		mq_close(q);
}

static long long mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static long long host_mono;

/* Its time namespace, CLOCK_MONOTONIC a day ahead of the host's, entered by the
 * root itself (unshare affects only children; setns puts it in). */
static void time_setup(void)
{
	char text[64];
	int fd;

	host_mono = mono_s();
	if (unshare(CLONE_NEWTIME))
		WL_DIE("unshare(CLONE_NEWTIME)");
	snprintf(text, sizeof(text), "monotonic %lld 0", DAY);
	fd = open("/proc/self/timens_offsets", O_WRONLY);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		WL_DIE("timens_offsets");
	close(fd);
	fd = open("/proc/self/ns/time_for_children", O_RDONLY);
	if (fd < 0 || setns(fd, CLONE_NEWTIME))
		WL_DIE("setns(time)");
	close(fd);
	if (mono_s() - host_mono < DAY - 5)
		WL_DIE("the time namespace's clock is not a day ahead");
}

static volatile int thread_beats;

/* A second thread of the root (cloned again with its TID inside the namespace). */
static void *beat(void *arg)
{
	sigset_t term;

	(void)arg;
	/* SIGTERM is the main thread's to take. */
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, NULL);
	for (;;) {
		thread_beats++;
		usleep(10000);
	}
	return NULL;
}

static int root_main(void *arg)
{
	char c, map[256], host[256] = "", buf[64] = "";
	unsigned long long caps;
	pthread_t thread;
	int ngroups, beats;
	pid_t child = -1;
	uid_t r, e, s;
	gid_t gr, ge, gs;
	struct stat st;
	int fd, status;

	(void)arg;
	close(go[1]);
	if (read(go[0], &c, 1) != 1)
		WL_DIE("the launcher wrote no maps");
	close(go[0]);
	wl_install_term();
	if (setsid() < 0)
		WL_DIE("setsid");
	take_ids(0, 0);
	/* A limit of its user namespace's own. */
	fd = open("/proc/sys/user/max_user_namespaces", O_WRONLY);
	if (fd < 0 || write(fd, "77", 2) != 2)
		WL_DIE("max_user_namespaces");
	close(fd);
	if (!bare) {
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
			WL_DIE("make / private");
		if (mount("wl-userns", "tm", "tmpfs", 0, "size=1m,mode=0755"))
			WL_DIE("mount tmpfs");
		fd = open("tm/owned", O_WRONLY | O_CREAT | O_EXCL, 0640);
		if (fd < 0 || write(fd, "userns", 6) != 6 || fchown(fd, 1000, 1001) || fchmod(fd, 0640))
			WL_DIE("tm/owned");
		close(fd);
		if (sethostname(HOST, strlen(HOST)))
			WL_DIE("sethostname");
		ipc_setup();
		time_setup();
		if (pthread_create(&thread, NULL, beat, NULL))
			WL_DIE("pthread_create");
		child = fork();
		if (child < 0)
			WL_DIE("fork");
		if (child == 0)
			exit(kid());
	}
	if (bare_fork) {
		child = fork();
		if (child < 0)
			WL_DIE("fork");
		if (child == 0)
			exit(kid());
	}
	caps = cap_eff();
	ngroups = getgroups(0, NULL);
	wl_info("uid map %s, %d supplementary groups", MAP, ngroups);
	wl_ready();
	wl_wait_for_term();
	if (wl_selftest_break() && !bare)
		sethostname("broken", 6);

	read_map("uid_map", map, sizeof(map));
	WL_CHECK(!strcmp(map, MAP), "uid_map is \"%s\"", map);
	read_map("gid_map", map, sizeof(map));
	WL_CHECK(!strcmp(map, MAP), "gid_map is \"%s\"", map);
	WL_CHECK(wl_file_has_line("/proc/self/setgroups", deny ? "deny" : "allow"), "setgroups is not %s",
		 deny ? "deny" : "allow");
	getresuid(&r, &e, &s);
	getresgid(&gr, &ge, &gs);
	WL_CHECK(r == (wl_selftest_break() && bare ? 1u : 0u) && e == 0 && s == 0, "uids %d %d %d", r, e, s);
	WL_CHECK(gr == 0 && ge == 0 && gs == 0, "gids %d %d %d", gr, ge, gs);
	WL_CHECK(getgroups(0, NULL) == ngroups, "%d supplementary groups, was %d", getgroups(0, NULL), ngroups);
	WL_CHECK(!deny || setgroups(0, NULL) < 0, "setgroups worked in a namespace that denies it");
	WL_CHECK(cap_eff() == caps, "CapEff %llx, was %llx", cap_eff(), caps);
	WL_CHECK(wl_file_has_line("/proc/sys/user/max_user_namespaces", "77"), "max_user_namespaces is not 77");
	if (bare) {
		WL_CHECK(!setresuid(0, 0, 0), "setresuid(0) in its namespace: %s", strerror(errno));
		if (bare_fork) {
			kill(child, SIGTERM);
			WL_CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && !WEXITSTATUS(status),
				 "the child (uid 1000) failed its check: status %#x", status);
		}
		exit(wl_finish()); /* all threads: clone()'s child would end only this one */
	}
	gethostname(host, sizeof(host));
	WL_CHECK(!strcmp(host, HOST), "hostname is %s", host);
	WL_CHECK(!sethostname(HOST, strlen(HOST)), "sethostname in its namespace: %s", strerror(errno));
	fd = open("tm/owned", O_RDONLY);
	WL_CHECK(fd >= 0 && read(fd, buf, sizeof(buf) - 1) == 6 && !strcmp(buf, "userns"), "tm/owned reads \"%s\"",
		 buf);
	WL_CHECK(fd >= 0 && !fstat(fd, &st) && st.st_uid == 1000 && st.st_gid == 1001 && (st.st_mode & 07777) == 0640,
		 "tm/owned is %d:%d mode %o", st.st_uid, st.st_gid, st.st_mode & 07777);
	if (fd >= 0)
		close(fd);
	ipc_check();
	beats = thread_beats;
	usleep(100000);
	WL_CHECK(thread_beats > beats, "its second thread does not run (%d beats)", thread_beats);
	/* Still a day ahead: the dump and restore took less than an hour. */
	WL_CHECK(mono_s() - host_mono >= DAY - 5 && mono_s() - host_mono < DAY + 3600,
		 "CLOCK_MONOTONIC is %lld s past the host's at setup", mono_s() - host_mono);
	kill(child, SIGTERM);
	WL_CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		 "the child (uid 1000) failed its check: status %#x", status);
	exit(wl_finish()); /* all threads: clone()'s child would end only this one */
}

static void write_file(pid_t pid, const char *name, const char *text)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	fd = open(path, O_WRONLY);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		WL_DIE("write %s", path);
	close(fd);
}

int main(int argc, char **argv)
{
	int flags = CLONE_NEWUSER, status;
	const char *mode = getenv("WL_USERNS");
	pid_t pid;

	bare_fork = mode && !strcmp(mode, "bare-fork");
	deny = mode && !strcmp(mode, "bare-deny");
	bare = bare_fork || deny || (mode && !strcmp(mode, "bare"));
	if (!bare)
		flags |= CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP | CLONE_NEWIPC;
	wl_scratch(argc, argv);
	/* The root works relative to its cwd: the scratch directory's parents may be
	 * closed to ids of its namespace (0700, owned by the host's root). */
	if (chdir(wl_scratch_buf))
		WL_DIE("chdir %s", wl_scratch_buf);
	if (!bare && mkdir("tm", 0755) && errno != EEXIST)
		WL_DIE("mkdir tm");
	if (deny) {
		/* Groups of the host's the root keeps, unmapped in its namespace. */
		gid_t keep[2] = { 0, 1234 };

		if (setgroups(2, keep))
			WL_DIE("setgroups");
	}
	if (pipe(go))
		WL_DIE("pipe");
	fflush(stdout);
	pid = clone(root_main, stack + sizeof(stack), flags | SIGCHLD, NULL);
	if (pid < 0)
		WL_DIE("clone");
	root_pid = pid;
	signal(SIGTERM, forward);
	close(go[0]);
	write_file(pid, "setgroups", deny ? "deny" : "allow");
	write_file(pid, "gid_map", MAP);
	write_file(pid, "uid_map", MAP);
	if (write(go[1], "g", 1) != 1)
		WL_DIE("go");
	close(go[1]);
	/* Ended by the dump (SIGKILL) or its own verdict. */
	while (waitpid(pid, &status, 0) != pid)
		if (errno != EINTR)
			WL_DIE("waitpid");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
