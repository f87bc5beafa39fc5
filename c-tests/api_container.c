/*
 * api_container: a small container manager on libccr, doing what LXC does, then
 * checkpointing and restoring its container CYCLES times in a row.
 *
 * usage: api_container WORKDIR CYCLES
 *
 * The container: a busybox-static root filesystem in WORKDIR/rootfs (bound as its
 * root and pivoted into), new mount, PID, UTS, IPC, network and cgroup
 * namespaces, proc, a sysfs of its own, a tmpfs /dev with device nodes, a devpts
 * instance, mqueue, a tmpfs /run; /dev/console and /dev/tty1 are binds of host
 * ptys whose masters this manager holds; v1 pids (with pids.max) and freezer
 * cgroups; a SysV segment, a POSIX queue and a hostname. Its init is a shell that
 * counts into /run/counter; a second shell, a session of its own with tty1 as its
 * controlling terminal, answers each line typed on tty1 with "got:LINE".
 *
 * Its /sys/fs/cgroup/pids is the pids hierarchy mounted inside its cgroup
 * namespace (showing the namespace's root).
 *
 * Each cycle: freeze → cgroup-save → dump (the ttys let go with --external) → the
 * cgroups are deleted and new ptys made → cgroup-restore under a new name
 * (--cgroup-root, as on another host) → restore (the new ttys handed over). Then
 * it checks: the counter goes on from where it was, the hostname, segment and
 * queue are back, pids.max is back and init is in its new cgroups, which its own
 * /sys/fs/cgroup/pids shows, and a line typed on the new tty1 master comes back
 * answered.
 * Exits 0 and prints PASS when every cycle passed.
 */
#include <ccr.h>

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "workload.h"

#define SHM_KEY 0x63637232
#define HOST "ccr-ctr"

static char work[512], rootfs[600], images[600], cg_pids[256], cg_freezer[256];
static pid_t init_pid = -1;

#define DIE(...)                                                          \
	do {                                                              \
		fprintf(stderr, "api_container: " __VA_ARGS__);           \
		fprintf(stderr, " (%s:%d: %s)\n", __FILE__, __LINE__, strerror(errno)); \
		cleanup();                                                \
		exit(1);                                                  \
	} while (0)

static void cleanup(void)
{
	char p[300];

	if (init_pid > 0) {
		snprintf(p, sizeof(p), "%s/freezer.state", cg_freezer);
		FILE *f = fopen(p, "w");
		if (f) {
			fputs("THAWED", f);
			fclose(f);
		}
		kill(init_pid, SIGKILL);
		waitpid(init_pid, NULL, 0);
	}
	usleep(100000);
	rmdir(cg_pids);
	rmdir(cg_freezer);
}

static void put(const char *dir, const char *file, const char *val)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	f = fopen(p, "w");
	if (!f || fputs(val, f) < 0 || fclose(f))
		DIE("write %s to %s", val, p);
}

static long get_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* A host pty: the master (kept here), the slave's path and its --external key. */
struct pty {
	int master;
	char path[64];
	char key[64];
};

static void new_pty(struct pty *p)
{
	struct stat st;

	p->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (p->master < 0 || grantpt(p->master) || unlockpt(p->master) ||
	    ptsname_r(p->master, p->path, sizeof(p->path)) || stat(p->path, &st))
		DIE("a pty");
	snprintf(p->key, sizeof(p->key), "tty[%lx:%lx]", (unsigned long)st.st_rdev, (unsigned long)st.st_dev);
	fcntl(p->master, F_SETFL, O_NONBLOCK);
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
	char buf[65536];
	int in = open(from, O_RDONLY), out = open(to, O_CREAT | O_WRONLY | O_TRUNC, mode);
	ssize_t n;

	if (in < 0 || out < 0)
		DIE("copy %s to %s", from, to);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, n) != n)
			DIE("write %s", to);
	close(in);
	close(out);
}

static void at_root(char *buf, size_t n, const char *rel)
{
	snprintf(buf, n, "%s/%s", rootfs, rel);
}

static void make_rootfs(void)
{
	const char *dirs[] = { "bin", "proc", "sys", "dev", "run", "tmp", "etc" };
	char p[700];

	mkdir(rootfs, 0755);
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		at_root(p, sizeof(p), dirs[i]);
		mkdir(p, 0755);
	}
	at_root(p, sizeof(p), "bin/busybox");
	copy_file("/bin/busybox", p, 0755);
	at_root(p, sizeof(p), "bin/sh");
	unlink(p);
	if (symlink("busybox", p))
		DIE("symlink sh");
}

static void must(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "container setup: %s: %s\n", what, strerror(errno));
		_exit(2);
	}
}

/* In the container's init, before it becomes busybox. */
static void container_init(struct pty *console, struct pty *tty1)
{
	char p[700], q[700];
	const char *script =
		"setsid sh -c 'exec 0<>/dev/tty1 1>&0 2>&0; while read l; do echo \"got:$l\"; done' &\n"
		"i=0; while :; do i=$((i+1)); echo $i > /run/counter; sleep 0.05; done\n";
	int shm, fd;
	struct mq_attr a = { .mq_maxmsg = 4, .mq_msgsize = 32 };

	must(!sethostname(HOST, strlen(HOST)), "sethostname");
	shm = shmget(SHM_KEY, 4096, IPC_CREAT | 0600);
	must(shm >= 0, "shmget");
	char *m = shmat(shm, NULL, 0);
	must(m != (void *)-1, "shmat");
	strcpy(m, "segment of the container");
	shmdt(m);
	must(mq_open("/ctr", O_CREAT | O_RDWR, 0600, &a) >= 0, "mq_open");
	must(!mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "make / private");
	must(!mount(rootfs, rootfs, NULL, MS_BIND, NULL), "bind the rootfs");
	at_root(p, sizeof(p), "proc");
	must(!mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL), "proc");
	at_root(p, sizeof(p), "sys");
	must(!mount("sysfs", p, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL), "sysfs");
	/* Its own view of its pids cgroup: the cgroup namespace's root. */
	at_root(p, sizeof(p), "sys/fs/cgroup");
	must(!mount("ctr-cgroup", p, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=755"), "cgroup tmpfs");
	at_root(p, sizeof(p), "sys/fs/cgroup/pids");
	must(!mkdir(p, 0755), "mkdir pids");
	must(!mount("cgroup", p, "cgroup", MS_NOSUID | MS_NODEV | MS_NOEXEC, "pids"), "the pids cgroup");
	at_root(p, sizeof(p), "dev");
	must(!mount("ctr-dev", p, "tmpfs", MS_NOSUID, "size=1m,mode=755"), "/dev");
	at_root(p, sizeof(p), "dev/null");
	must(!mknod(p, S_IFCHR | 0666, makedev(1, 3)), "mknod null");
	at_root(p, sizeof(p), "dev/zero");
	must(!mknod(p, S_IFCHR | 0666, makedev(1, 5)), "mknod zero");
	at_root(p, sizeof(p), "dev/console");
	close(open(p, O_CREAT | O_WRONLY, 0600));
	must(!mount(console->path, p, NULL, MS_BIND, NULL), "bind the console");
	at_root(p, sizeof(p), "dev/tty1");
	close(open(p, O_CREAT | O_WRONLY, 0600));
	must(!mount(tty1->path, p, NULL, MS_BIND, NULL), "bind tty1");
	at_root(p, sizeof(p), "dev/pts");
	mkdir(p, 0755);
	must(!mount("devpts", p, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620"), "devpts");
	at_root(p, sizeof(p), "dev/mqueue");
	mkdir(p, 0755);
	must(!mount("mqueue", p, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL), "mqueue");
	at_root(p, sizeof(p), "run");
	must(!mount("ctr-run", p, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755"), "/run");
	must(!chdir(rootfs), "chdir rootfs");
	must(!syscall(SYS_pivot_root, ".", "."), "pivot_root");
	must(!umount2(".", MNT_DETACH), "umount the old root");
	must(!chdir("/"), "chdir /");
	fd = open("/dev/console", O_RDWR | O_NOCTTY);
	must(fd >= 0 && dup2(fd, 0) >= 0 && dup2(fd, 1) >= 0 && dup2(fd, 2) >= 0, "the console as stdio");
	if (fd > 2)
		close(fd);
	(void)q;
	execl("/bin/busybox", "sh", "-c", script, (char *)NULL);
	must(0, "exec busybox");
}

static void start(struct pty *console, struct pty *tty1)
{
	pid_t mid;
	int ready[2];

	if (pipe2(ready, O_CLOEXEC))
		DIE("pipe");
	mid = fork();
	if (mid < 0)
		DIE("fork");
	if (mid == 0) {
		pid_t in;
		char pid[32];

		setsid();
		snprintf(pid, sizeof(pid), "%d", getpid());
		put(cg_pids, "cgroup.procs", pid);
		put(cg_freezer, "cgroup.procs", pid);
		must(!unshare(CLONE_NEWCGROUP | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWPID),
		     "unshare");
		in = fork();
		must(in >= 0, "fork init");
		if (in == 0)
			container_init(console, tty1);
		if (write(ready[1], &in, sizeof(in)) != sizeof(in))
			_exit(2);
		waitpid(in, NULL, 0);
		_exit(0);
	}
	close(ready[1]);
	if (read(ready[0], &init_pid, sizeof(init_pid)) != sizeof(init_pid))
		DIE("the container did not start");
	close(ready[0]);
	/* init_pid is as the container's parent saw it: outside the namespace. */
}

static long counter(void)
{
	char p[128];

	snprintf(p, sizeof(p), "/proc/%d/root/run/counter", init_pid);
	return get_long(p);
}

/* Waits until `t` answers a line typed on it. */
static int answered(struct pty *t, const char *line)
{
	char want[64], got[512] = "";
	size_t len = 0;

	snprintf(want, sizeof(want), "got:%s", line);
	if (write(t->master, line, strlen(line)) < 0 || write(t->master, "\n", 1) != 1)
		return 0;
	for (int i = 0; i < 500 && !strstr(got, want); i++) {
		ssize_t n = read(t->master, got + len, sizeof(got) - 1 - len);

		if (n > 0) {
			len += n;
			got[len] = 0;
		} else {
			usleep(10000);
		}
	}
	if (!strstr(got, want))
		fprintf(stderr, "tty1 answered %s\n", got);
	return strstr(got, want) != NULL;
}

/* Enters the namespace `kind` of init (this process is single-threaded). */
static void enter(const char *kind, int flag)
{
	char p[64];
	int fd;

	snprintf(p, sizeof(p), "/proc/%d/ns/%s", init_pid, kind);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, flag))
		DIE("setns %s", kind);
	close(fd);
}

static void check_inside(int cycle)
{
	char host[64] = "", *m;
	int shm, self_uts = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC),
		 self_ipc = open("/proc/self/ns/ipc", O_RDONLY | O_CLOEXEC);
	mqd_t q;

	enter("uts", CLONE_NEWUTS);
	gethostname(host, sizeof(host));
	enter("ipc", CLONE_NEWIPC);
	shm = shmget(SHM_KEY, 0, 0);
	m = shm >= 0 ? shmat(shm, NULL, SHM_RDONLY) : (void *)-1;
	q = mq_open("/ctr", O_RDONLY);
	if (strcmp(host, HOST))
		DIE("cycle %d: hostname is %s", cycle, host);
	if (m == (void *)-1 || strcmp(m, "segment of the container"))
		DIE("cycle %d: the SysV segment is lost", cycle);
	if (q < 0)
		DIE("cycle %d: the POSIX queue is lost", cycle);
	shmdt(m);
	mq_close(q);
	if (setns(self_uts, CLONE_NEWUTS) || setns(self_ipc, CLONE_NEWIPC))
		DIE("back to our namespaces");
	close(self_uts);
	close(self_ipc);
}

static ccr_opts *opts_for(void)
{
	ccr_opts *o = ccr_opts_new();

	if (!o || ccr_opts_set_images_dir(o, images) || ccr_opts_set_freeze_cgroup(o, cg_freezer) ||
	    ccr_opts_set_log_level(o, CCR_LOG_LEVEL_DEBUG))
		DIE("options: %s", ccr_last_error());
	return o;
}

int main(int argc, char **argv)
{
	struct pty console, tty1;
	int cycles;
	char p[400], dir[700];

	if (argc != 3)
		return fprintf(stderr, "usage: api_container WORKDIR CYCLES\n"), 2;
	snprintf(work, sizeof(work), "%s", argv[1]);
	cycles = atoi(argv[2]);
	mkdir(work, 0755);
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", work);
	snprintf(cg_pids, sizeof(cg_pids), "/sys/fs/cgroup/pids/ccrtest-ctr-%d", getpid());
	snprintf(cg_freezer, sizeof(cg_freezer), "/sys/fs/cgroup/freezer/ccrtest-ctr-%d", getpid());
	make_rootfs();
	if ((mkdir(cg_pids, 0755) && errno != EEXIST) || (mkdir(cg_freezer, 0755) && errno != EEXIST))
		DIE("test cgroups");
	put(cg_pids, "pids.max", "64");
	new_pty(&console);
	new_pty(&tty1);
	start(&console, &tty1);
	for (int i = 0; i < 100 && counter() < 3; i++)
		usleep(20000);
	if (counter() < 3)
		DIE("the container does not count");
	if (!answered(&tty1, "before"))
		DIE("tty1 does not answer before any dump");
	for (int c = 1; c <= cycles; c++) {
		ccr_opts *o;
		long before;
		pid_t got;

		snprintf(images, sizeof(images), "%s/ckpt-%d", work, c);
		o = opts_for();
		if (ccr_opts_set_pid(o, init_pid) || ccr_opts_add_external(o, console.key) ||
		    ccr_opts_add_external(o, tty1.key))
			DIE("options: %s", ccr_last_error());
		snprintf(dir, sizeof(dir), "%s/dump-%d.log", work, c);
		ccr_opts_set_log_file(o, dir);
		if (ccr_freeze(o) < 0)
			DIE("cycle %d: freeze: %s", c, ccr_last_error());
		before = counter();
		if (ccr_cgroup_save(o) < 0)
			DIE("cycle %d: cgroup-save: %s", c, ccr_last_error());
		if (ccr_dump(o) < 0)
			DIE("cycle %d: dump: %s", c, ccr_last_error());
		if (ccr_thaw(o) < 0)
			DIE("cycle %d: thaw: %s", c, ccr_last_error());
		waitpid(init_pid, NULL, 0);
		/* The container's first parent, outside its namespaces, goes too. */
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		ccr_opts_free(o);
		usleep(100000);
		if (rmdir(cg_pids) || rmdir(cg_freezer))
			DIE("cycle %d: removing the cgroups", c);
		/* The restored cgroups get a name of their own, as on another host. */
		snprintf(cg_pids, sizeof(cg_pids), "/sys/fs/cgroup/pids/ccrtest-ctr-%d-%d", getpid(), c);
		snprintf(cg_freezer, sizeof(cg_freezer), "/sys/fs/cgroup/freezer/ccrtest-ctr-%d-%d", getpid(), c);
		char moved[128];
		snprintf(moved, sizeof(moved), "/ccrtest-ctr-%d-%d", getpid(), c);
		close(console.master);
		close(tty1.master);
		char old_console[64], old_tty1[64];
		snprintf(old_console, sizeof(old_console), "%s", console.key);
		snprintf(old_tty1, sizeof(old_tty1), "%s", tty1.key);
		new_pty(&console);
		new_pty(&tty1);
		int cfd = open(console.path, O_RDWR | O_NOCTTY | O_CLOEXEC), tfd = open(tty1.path, O_RDWR | O_NOCTTY | O_CLOEXEC);
		o = opts_for();
		snprintf(dir, sizeof(dir), "%s/restore-%d.log", work, c);
		ccr_opts_set_log_file(o, dir);
		ccr_opts_set_manage_cgroups(o, CCR_MANAGE_CGROUPS_FULL);
		if (ccr_opts_set_cgroup_root(o, "pids", moved) || ccr_opts_set_cgroup_root(o, "freezer", moved))
			DIE("options: %s", ccr_last_error());
		if (cfd < 0 || tfd < 0 || ccr_opts_add_inherit_fd(o, cfd, old_console) ||
		    ccr_opts_add_inherit_fd(o, tfd, old_tty1))
			DIE("options: %s", ccr_last_error());
		if (ccr_cgroup_restore(o) < 0)
			DIE("cycle %d: cgroup-restore: %s", c, ccr_last_error());
		got = ccr_restore(o);
		if (got < 0)
			DIE("cycle %d: restore: %s", c, ccr_last_error());
		init_pid = got;
		close(cfd);
		close(tfd);
		ccr_opts_free(o);
		/* The new ttys are the ones handed over: their keys are the next dump's. */
		if (get_long(strcat(strcpy(p, cg_pids), "/pids.max")) != 64)
			DIE("cycle %d: pids.max is not back", c);
		for (int i = 0; i < 100 && counter() <= before + 2; i++)
			usleep(20000);
		if (counter() <= before + 2 || counter() > before + 1000)
			DIE("cycle %d: the counter went from %ld to %ld", c, before, counter());
		snprintf(dir, sizeof(dir), "/proc/%d/cgroup", init_pid);
		FILE *f = fopen(dir, "r");
		char line[256];
		int in_pids = 0;
		while (f && fgets(line, sizeof(line), f))
			in_pids |= strstr(line, ":pids:") && strstr(line, strrchr(cg_pids, '/'));
		if (f)
			fclose(f);
		if (!in_pids)
			DIE("cycle %d: init is not in its pids cgroup", c);
		snprintf(dir, sizeof(dir), "/proc/%d/root/sys/fs/cgroup/pids/pids.max", init_pid);
		if (get_long(dir) != 64)
			DIE("cycle %d: the container's own view of its pids cgroup is lost (%s: %ld)", c, dir, get_long(dir));
		snprintf(dir, sizeof(dir), "/proc/%d/root/sys/fs/cgroup/pids/cgroup.procs", init_pid);
		/* Pids read from out here are as this manager sees them. */
		snprintf(line, sizeof(line), "%d", init_pid);
		if (!wl_file_has_line(dir, line))
			DIE("cycle %d: its own view of its pids cgroup does not hold init", c);
		check_inside(c);
		snprintf(dir, sizeof(dir), "cycle%d", c);
		if (!answered(&tty1, dir))
			DIE("cycle %d: tty1 does not answer after the restore", c);
		printf("cycle %d: counter %ld -> %ld, tty1 answers\n", c, before, counter());
		fflush(stdout);
	}
	cleanup();
	printf("PASS\n");
	return 0;
}
