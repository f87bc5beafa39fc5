/*
 * api_container: a small container manager on libccr, doing what LXC does, then
 * checkpointing and restoring its container CYCLES times in a row.
 *
 * usage: api_container WORKDIR CYCLES [userns]
 *
 * The container: a busybox-static root filesystem in WORKDIR/rootfs (bound as its
 * root and pivoted into), new mount, PID, UTS, IPC, network and cgroup
 * namespaces, proc (LXC's proc:mixed: /proc/sys bound read-only, its net
 * writable), a sysfs of its own (LXC's sys:mixed: bound on itself read-only,
 * /sys/devices/virtual/net writable), a tmpfs /dev with device nodes, a devpts
 * instance (its ptmx bound on /dev/ptmx, as LXC does; /dev/fd a link), mqueue,
 * a tmpfs /run; /dev/console and /dev/tty1 are binds of host
 * ptys whose masters this manager holds; v1 pids (with pids.max) and freezer
 * cgroups; a SysV segment and a POSIX queue. Its PID 1 is busybox init reading
 * /etc/inittab, as in an LXC busybox container: a sysinit sets the hostname from
 * /etc/hostname; init spawns (respawn) busybox syslogd (its datagram socket
 * bound at /dev/log in the tmpfs /dev, in the container's network namespace,
 * logging into /var/log/messages), busybox httpd (listening on 127.0.0.1:80 of
 * that namespace's loopback, which a sysinit brings up), a shell loop counting into /run/counter,
 * a daemon (su to "daemon", uid 1000 gid 1001, execing a long sleep), a
 * getty on tty1 (its own session, tty1 its controlling terminal, raw termios,
 * printing /etc/issue and "ccr-ctr login: " for each empty line) and, once Enter
 * is pressed on the console (askfirst), a login shell there.
 *
 * Its /sys/fs/cgroup/pids is the pids hierarchy mounted inside its cgroup
 * namespace (showing the namespace's root).
 *
 * Each cycle: the manager sets tty1's window size and a termios control
 * character (through the master) → freeze → cgroup-save → dump (the ttys let go
 * with --external) → the cgroups are deleted and new ptys made → cgroup-restore
 * under a new name (--cgroup-root, as on another host) → restore (the new ttys
 * handed over). Then it checks: the counter goes on from where it was; init's
 * children are the very processes they were (same pids and names: init respawned
 * nothing, so ccr lost no process); the hostname, segment and queue are back;
 * pids.max is back and every process of the container is in its new pids and
 * freezer cgroups, which its own /sys/fs/cgroup/pids shows; tty1's termios and
 * window size are the ones set before the dump; a command typed on the new
 * console master is run by the shell and its output comes back (its logger line
 * reaches syslogd through /dev/log and lands in /var/log/messages; its wget gets
 * httpd's page); and getty on the
 * new tty1 answers an empty line with the issue and its login prompt.
 * Exits 0 and prints PASS when every cycle passed.
 *
 * With "userns" the container is an unprivileged one, as LXC makes it: a user
 * namespace of its own (uid_map and gid_map "0 100000 65536", made by the same
 * unshare as its other namespaces, which it therefore owns), its init uid and
 * gid 0 inside (100000 on the host). What differs, done as LXC does it: the
 * rootfs copy and the two ptys are chowned to the mapped root; /dev holds no
 * device nodes (none can be made inside) but binds of the host's null, zero,
 * full, random, urandom and tty onto empty files; sysfs is mounted inside (the
 * network namespace is the user namespace's). The cgroups are the manager's
 * (ccr manages them from outside) and delegated: each directory, its
 * cgroup.procs and tasks are the mapped root's, which ccr gives back to the
 * restored ones, and the console's shell makes and removes a child of its pids
 * cgroup. Its root also makes a cgroup of its own, "inner" (pids.max 7), kept
 * through every cycle: it comes back the mapped root's, with its limit. Each cycle also checks that the restored
 * init's uid_map and gid_map are the ones it had, and that the Uid and Gid lines
 * of /proc/PID/status of init and its children read the same before and after:
 * 0 read from inside the user namespace, 100000 from the host (the daemon's
 * 1000/1001 and 101000/101001); that the
 * namespaces are owned by the user namespace; that /dev's entries are the
 * host's devices; and that "/" and /dev/null (binds of host paths) still have
 * the host's mount flags locked for the container's root (a remount changing
 * their atime flag is refused) while its own /run's are not. In both variants
 * init's mount table (each mount, its parent, options, type, source, super
 * options) is the same after each restore.
 */
#include <ccr.h>

#include <errno.h>
#include <grp.h>
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
#include <termios.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "workload.h"

#define SHM_KEY 0x63637232
#define HOST "ccr-ctr"
/* The console's login shell's prompt (its /etc/profile sets it). */
#define PROMPT "ctr# "

static char work[512], rootfs[600], images[600], cg_pids[256], cg_freezer[256];
static pid_t init_pid = -1;
/* The "userns" variant: the container has a user namespace of its own. */
static int userns;
#define MAP "0 100000 65536"
#define MAPPED_ROOT 100000
/* The userns variant: the host's nodes bound on the container's /dev. */
static const char *const bound_nodes[] = { "null", "zero", "full", "random", "urandom", "tty" };

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
	snprintf(p, sizeof(p), "%s/inner", cg_pids);
	rmdir(p);
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
	/* As LXC does: the container's root owns its terminals (getty opens tty1). */
	if (userns && chown(p->path, MAPPED_ROOT, MAPPED_ROOT))
		DIE("chown %s", p->path);
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

/* Whether a line of the file at `path` contains `text`. */
static int file_mentions(const char *path, const char *text)
{
	FILE *f = fopen(path, "r");
	char buf[1024];
	int found = 0;

	while (f && !found && fgets(buf, sizeof(buf), f))
		found = strstr(buf, text) != NULL;
	if (f)
		fclose(f);
	return found;
}

static void at_root(char *buf, size_t n, const char *rel)
{
	snprintf(buf, n, "%s/%s", rootfs, rel);
}

static void write_file(const char *rel, const char *text, mode_t mode)
{
	char p[700];
	int fd;

	at_root(p, sizeof(p), rel);
	fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, mode);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || close(fd))
		DIE("write %s", p);
}

/*
 * The container's init is busybox init: what it runs is its inittab's. The
 * counter's loop is a script of its own (init runs it as its child, respawned
 * if it ever dies), getty is the real one (no autologin), the console gets a
 * login shell once Enter is pressed on it.
 */
static const char inittab[] =
	"::sysinit:/bin/hostname -F /etc/hostname\n"
	"::sysinit:/bin/ifconfig lo 127.0.0.1 up\n"
	"::respawn:/bin/syslogd -n -O /var/log/messages\n"
	"::respawn:/bin/httpd -f -p 127.0.0.1:80 -h /www\n"
	"::respawn:/bin/counter\n"
	"::respawn:/bin/su -s /bin/sh daemon -c 'exec /bin/sleep 1000000'\n"
	"tty1::respawn:/bin/getty 38400 tty1\n"
	"console::askfirst:-/bin/sh\n";

static const char counter_script[] =
	"#!/bin/sh\n"
	"i=0\n"
	"while :; do i=$((i+1)); echo $i > /run/counter; sleep 0.05; done\n";

static void make_rootfs(void)
{
	const char *dirs[] = { "bin", "proc", "sys", "dev", "run", "tmp", "etc", "root", "var", "var/log", "www" };
	const char *applets[] = { "sh",	   "init",  "getty",   "login",  "hostname", "sleep",	"mkdir",
				  "rmdir", "su",    "syslogd", "logger", "ifconfig", "httpd", "wget" };
	char p[700];

	mkdir(rootfs, 0755);
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		at_root(p, sizeof(p), dirs[i]);
		mkdir(p, 0755);
	}
	at_root(p, sizeof(p), "bin/busybox");
	copy_file("/bin/busybox", p, 0755);
	for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++) {
		char rel[64];

		snprintf(rel, sizeof(rel), "bin/%s", applets[i]);
		at_root(p, sizeof(p), rel);
		unlink(p);
		if (symlink("busybox", p))
			DIE("symlink %s", rel);
	}
	write_file("etc/inittab", inittab, 0644);
	write_file("etc/hostname", HOST "\n", 0644);
	write_file("etc/issue", "ccr container \\n\n", 0644);
	write_file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1000:1001:daemon:/:/bin/sh\n", 0644);
	write_file("etc/group", "root:x:0:\ndaemon:x:1001:\n", 0644);
	write_file("etc/profile", "PS1='" PROMPT "'\n", 0644);
	write_file("bin/counter", counter_script, 0755);
	write_file("www/index.html", "served by httpd\n", 0644);
	if (userns) {
		/* The rootfs copy is the mapped root's, as LXC's for an unprivileged container. */
		if (lchown(rootfs, MAPPED_ROOT, MAPPED_ROOT))
			DIE("chown %s", rootfs);
		for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
			at_root(p, sizeof(p), dirs[i]);
			if (lchown(p, MAPPED_ROOT, MAPPED_ROOT))
				DIE("chown %s", p);
		}
		const char *files[] = { "bin/busybox", "bin/counter", "etc/inittab", "etc/hostname",
					"etc/issue",   "etc/passwd",  "etc/group",   "etc/profile", "www/index.html" };
		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
			at_root(p, sizeof(p), files[i]);
			if (lchown(p, MAPPED_ROOT, MAPPED_ROOT))
				DIE("chown %s", p);
		}
		for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++) {
			char rel[64];

			snprintf(rel, sizeof(rel), "bin/%s", applets[i]);
			at_root(p, sizeof(p), rel);
			if (lchown(p, MAPPED_ROOT, MAPPED_ROOT))
				DIE("chown %s", p);
		}
	}
}

static void must(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "container setup: %s: %s\n", what, strerror(errno));
		_exit(2);
	}
}

/* An empty file at `rel` (below the cwd) with `from` bound onto it. */
static void bind_file(const char *from, const char *rel, const char *what)
{
	int fd = open(rel, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);

	must(fd >= 0, what);
	close(fd);
	must(!mount(from, rel, NULL, MS_BIND, NULL), what);
}

/* Takes uid and gid 0 of the container's user namespace, no supplementary groups. */
static void take_root(void)
{
	must(!setgroups(0, NULL), "setgroups");
	must(!setresgid(0, 0, 0), "setresgid 0");
	must(!setresuid(0, 0, 0), "setresuid 0");
}

/*
 * In the container's init, before it becomes busybox init. It works below the
 * rootfs bound on itself, by relative paths: in the userns variant it takes its
 * namespace's root ids once the rootfs is bound (the host's directories above
 * it are not the mapped root's to walk).
 */
static void container_init(struct pty *console, struct pty *tty1)
{
	char *const argv[] = { "init", NULL };
	char *const envp[] = { "HOME=/", "PATH=/bin", "TERM=linux", NULL };
	int shm, fd;
	struct mq_attr a = { .mq_maxmsg = 4, .mq_msgsize = 32 };

	must(!mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "make / private");
	must(!mount(rootfs, rootfs, NULL, MS_BIND, NULL), "bind the rootfs");
	must(!chdir(rootfs), "chdir rootfs");
	if (userns)
		take_root();
	shm = shmget(SHM_KEY, 4096, IPC_CREAT | 0600);
	must(shm >= 0, "shmget");
	char *m = shmat(shm, NULL, 0);
	must(m != (void *)-1, "shmat");
	strcpy(m, "segment of the container");
	shmdt(m);
	must(mq_open("/ctr", O_CREAT | O_RDWR, 0600, &a) >= 0, "mq_open");
	must(!mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL), "proc");
	/* LXC's proc:mixed: /proc/sys read-only, /proc/sys/net (its own netns's) writable. */
	must(!mount("proc/sys", "proc/sys", NULL, MS_BIND, NULL), "bind /proc/sys");
	must(!mount(NULL, "proc/sys", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL),
	     "/proc/sys read-only");
	must(!mount("proc/sys/net", "proc/sys/net", NULL, MS_BIND, NULL), "bind /proc/sys/net");
	must(!mount(NULL, "proc/sys/net", NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL),
	     "/proc/sys/net writable");
	/* In the userns variant too: its network namespace is its user namespace's. */
	/* LXC's sys:mixed: sysfs, bound on itself read-only, its net devices writable. */
	must(!mount("sysfs", "sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL), "sysfs");
	must(!mount("sys", "sys", NULL, MS_BIND, NULL), "bind /sys");
	must(!mount("sys/devices/virtual/net", "sys/devices/virtual/net", NULL, MS_BIND, NULL), "bind the net devices");
	must(!mount(NULL, "sys", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL),
	     "/sys read-only");
	/* Its own view of its pids cgroup: the cgroup namespace's root. */
	must(!mount("ctr-cgroup", "sys/fs/cgroup", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=755"),
	     "cgroup tmpfs");
	must(!mkdir("sys/fs/cgroup/pids", 0755), "mkdir pids");
	must(!mount("cgroup", "sys/fs/cgroup/pids", "cgroup", MS_NOSUID | MS_NODEV | MS_NOEXEC, "pids"),
	     "the pids cgroup");
	must(!mount("ctr-dev", "dev", "tmpfs", MS_NOSUID, "size=1m,mode=755"), "/dev");
	if (userns) {
		/* No device node can be made inside: the host's, bound (as LXC does). */
		for (size_t i = 0; i < sizeof(bound_nodes) / sizeof(bound_nodes[0]); i++) {
			char from[32], rel[32];

			snprintf(from, sizeof(from), "/dev/%s", bound_nodes[i]);
			snprintf(rel, sizeof(rel), "dev/%s", bound_nodes[i]);
			bind_file(from, rel, from);
		}
	} else {
		must(!mknod("dev/null", S_IFCHR | 0666, makedev(1, 3)), "mknod null");
		must(!mknod("dev/zero", S_IFCHR | 0666, makedev(1, 5)), "mknod zero");
	}
	bind_file(console->path, "dev/console", "bind the console");
	bind_file(tty1->path, "dev/tty1", "bind tty1");
	mkdir("dev/pts", 0755);
	must(!mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620"),
	     "devpts");
	/* As LXC sets up /dev/ptmx (its devpts instance's, bound) and /dev/fd. */
	bind_file("dev/pts/ptmx", "dev/ptmx", "bind /dev/ptmx");
	must(!symlink("/proc/self/fd", "dev/fd"), "symlink /dev/fd");
	mkdir("dev/mqueue", 0755);
	must(!mount("mqueue", "dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL), "mqueue");
	must(!mount("ctr-run", "run", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755"), "/run");
	must(!syscall(SYS_pivot_root, ".", "."), "pivot_root");
	must(!umount2(".", MNT_DETACH), "umount the old root");
	must(!chdir("/"), "chdir /");
	fd = open("/dev/console", O_RDWR | O_NOCTTY);
	must(fd >= 0 && dup2(fd, 0) >= 0 && dup2(fd, 1) >= 0 && dup2(fd, 2) >= 0, "the console as stdio");
	if (fd > 2)
		close(fd);
	execve("/bin/init", argv, envp);
	must(0, "exec /bin/init");
}

/* Writes `text` to /proc/PID/`name` (a map of `pid`'s user namespace, or its setgroups). */
static void put_proc(pid_t pid, const char *name, const char *text)
{
	char p[64];
	int fd;

	snprintf(p, sizeof(p), "/proc/%d/%s", pid, name);
	fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || close(fd))
		DIE("write %s to %s", text, p);
}

static void start(struct pty *console, struct pty *tty1)
{
	pid_t mid;
	int ready[2], go[2];

	if (pipe2(ready, O_CLOEXEC) || pipe2(go, O_CLOEXEC))
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
		close(go[1]);
		/* With CLONE_NEWUSER the kernel makes the user namespace first: it owns the others. */
		must(!unshare((userns ? CLONE_NEWUSER : 0) | CLONE_NEWCGROUP | CLONE_NEWNS | CLONE_NEWUTS |
			      CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWPID),
		     "unshare");
		if (userns) {
			char c = 'u';

			/* The manager writes the maps, then lets it go on. */
			must(write(ready[1], &c, 1) == 1, "unshared");
			must(read(go[0], &c, 1) == 1, "the maps");
		}
		close(go[0]);
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
	close(go[0]);
	if (userns) {
		char c;

		/* As LXC does for an unprivileged container: the maps, from outside. */
		if (read(ready[0], &c, 1) != 1)
			DIE("the container did not unshare");
		put_proc(mid, "setgroups", "allow");
		put_proc(mid, "gid_map", MAP);
		put_proc(mid, "uid_map", MAP);
		if (write(go[1], "g", 1) != 1)
			DIE("letting the container go on");
	}
	close(go[1]);
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

/* What `t`'s master has to read now, thrown away. */
static void drain(struct pty *t)
{
	char buf[4096];

	while (read(t->master, buf, sizeof(buf)) > 0)
		;
}

/*
 * Types `typed` on `t` (after what was pending there is read away; NULL: types
 * nothing, reads on) and waits up to 5 s until `want` comes back; what came is
 * left in `got`.
 */
static int reply(struct pty *t, const char *typed, const char *want, char *got, size_t size)
{
	size_t len = 0;

	got[0] = 0;
	if (typed)
		drain(t);
	if (typed && write(t->master, typed, strlen(typed)) != (ssize_t)strlen(typed))
		return 0;
	for (int i = 0; i < 500 && !strstr(got, want); i++) {
		ssize_t n = len + 1 < size ? read(t->master, got + len, size - 1 - len) : 0;

		if (n > 0) {
			len += n;
			got[len] = 0;
		} else {
			usleep(10000);
		}
	}
	return strstr(got, want) != NULL;
}

/*
 * The console's shell runs a command line typed on it (a program, then
 * builtins, one writing to its /dev/null): their output comes back, then its prompt (once shown, the shell is idle again, reading its next line with
 * its terminal raw).
 */
static void console_answers(struct pty *console, const char *when)
{
	char typed[400], want[160], got[4096], line[64], log[700];

	/* A child of its own first: the shell puts it in the foreground and back. */
	/* Unprivileged, its root uses the pids cgroup delegated to it (a child made and removed). */
	/* logger reaches syslogd through /dev/log, the socket it bound in the container's /dev. */
	/* wget reaches httpd, listening on the loopback of the container's network namespace. */
	snprintf(typed, sizeof(typed),
		 "/bin/hostname && echo to-null >/dev/null && logger -t ccr log-%s && wget -q -O - http://127.0.0.1/ && "
		 "%secho con$((40+2))-%s\n",
		 when, userns ? "mkdir /sys/fs/cgroup/pids/sub && rmdir /sys/fs/cgroup/pids/sub && " : "", when);
	snprintf(want, sizeof(want), HOST "\r\nserved by httpd\r\ncon42-%s\r\n" PROMPT, when);
	if (!reply(console, typed, want, got, sizeof(got)))
		DIE("%s: the console's shell did not answer \"" HOST "\", httpd's page, \"con42-%s\" and prompt again (it wrote "
		    "\"%s\")",
		    when, when, got);
	/* syslogd writes what it received into /var/log/messages (the rootfs's). */
	snprintf(line, sizeof(line), "ccr: log-%s", when);
	at_root(log, sizeof(log), "var/log/messages");
	for (int i = 0; i < 500 && !file_mentions(log, line); i++)
		usleep(10000);
	if (!file_mentions(log, line))
		DIE("%s: syslogd did not log \"%s\" into %s", when, line, log);
}

/* getty on tty1 answers an empty line with the issue and its prompt again. */
static void getty_answers(struct pty *tty1, const char *when)
{
	char got[4096];

	if (!reply(tty1, "\n", HOST " login: ", got, sizeof(got)) || !strstr(got, "ccr container " HOST))
		DIE("%s: getty on tty1 did not answer an empty line with the issue and \"" HOST
		    " login: \" (it wrote \"%s\")",
		    when, got);
}

/* The pids (host ones) of the children of `pid`, 0-terminated; returns how many. */
static int children_of(pid_t pid, pid_t *out, int max)
{
	char p[64];
	FILE *f;
	int n = 0;

	snprintf(p, sizeof(p), "/proc/%d/task/%d/children", pid, pid);
	f = fopen(p, "r");
	while (f && n < max - 1 && fscanf(f, "%d", &out[n]) == 1)
		n++;
	if (f)
		fclose(f);
	out[n] = 0;
	return n;
}

/* The pid `pid` has inside the container's PID namespace (NSpid's last). */
static long inner_pid(pid_t pid)
{
	char p[64], line[256];
	long inner = -1;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/status", pid);
	f = fopen(p, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "NSpid:", 6)) {
			char *last = strrchr(line, '\t');

			inner = last ? atol(last + 1) : -1;
		}
	if (f)
		fclose(f);
	return inner;
}

/*
 * init's children as the container sees them, "PID:COMM ..." in pid order: the
 * same string after a restore means init respawned nothing.
 */
static void init_children(char *out, size_t size)
{
	pid_t kids[32];
	long inner[32];
	int n = children_of(init_pid, kids, 32);
	size_t len = 0;

	for (int i = 0; i < n; i++)
		inner[i] = inner_pid(kids[i]);
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (inner[j] < inner[i]) {
				long t = inner[i];
				pid_t k = kids[i];

				inner[i] = inner[j], kids[i] = kids[j];
				inner[j] = t, kids[j] = k;
			}
	out[0] = 0;
	for (int i = 0; i < n; i++) {
		char p[64], comm[32] = "?";
		FILE *f;

		snprintf(p, sizeof(p), "/proc/%d/comm", kids[i]);
		f = fopen(p, "r");
		if (f) {
			if (fgets(comm, sizeof(comm), f))
				comm[strcspn(comm, "\n")] = 0;
			fclose(f);
		}
		len += snprintf(out + len, size - len, "%s%ld:%s", i ? " " : "", inner[i], comm);
		if (len >= size)
			break;
	}
}

/* The host pid of init's child named `comm` (0: none). */
static pid_t child_named(const char *comm)
{
	pid_t kids[32];
	int n = children_of(init_pid, kids, 32);

	for (int i = 0; i < n; i++) {
		char p[64], c[32] = "";
		FILE *f;

		snprintf(p, sizeof(p), "/proc/%d/comm", kids[i]);
		f = fopen(p, "r");
		if (f) {
			if (fgets(c, sizeof(c), f))
				c[strcspn(c, "\n")] = 0;
			fclose(f);
		}
		if (!strcmp(c, comm))
			return kids[i];
	}
	return 0;
}

/*
 * The signal state /proc/PID/status shows of `pid` and the syscall it sleeps in:
 * "blocked/ignored/caught in syscall N" (in rt_sigtimedwait, "blocked" is the
 * mask the wait leaves, less the signals waited for).
 */
static void signals_of(pid_t pid, char *out, size_t size)
{
	char p[64], line[256], blk[32] = "?", ign[32] = "?", cgt[32] = "?";
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/status", pid);
	f = fopen(p, "r");
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (!strncmp(line, "SigBlk:\t", 8))
			snprintf(blk, sizeof(blk), "%.16s", line + 8);
		else if (!strncmp(line, "SigIgn:\t", 8))
			snprintf(ign, sizeof(ign), "%.16s", line + 8);
		else if (!strncmp(line, "SigCgt:\t", 8))
			snprintf(cgt, sizeof(cgt), "%.16s", line + 8);
	}
	if (f)
		fclose(f);
	snprintf(p, sizeof(p), "/proc/%d/syscall", pid);
	f = fopen(p, "r");
	if (!f || !fgets(line, sizeof(line), f))
		snprintf(line, sizeof(line), "?");
	if (f)
		fclose(f);
	line[strcspn(line, " \n")] = 0;
	snprintf(out, size, "%s/%s/%s in syscall %.8s", blk, ign, cgt, line);
}

/*
 * The signal masks, ignored and caught signals of init and of its idle
 * children and the syscall each sleeps in, "init B/I/C in syscall 128; getty
 * ...": busybox init blocks the signals it waits for in rt_sigtimedwait
 * (SIGCHLD among them), getty and the shell read their terminals. The same
 * after a restore: each waits where it waited (an init whose wait failed
 * would be in its sleep(1) before waiting again). (The counter's shell changes
 * its own as it forks.)
 */
static void tree_signals(char *out, size_t size)
{
	const char *names[] = { "init", "getty", "sh" };
	size_t len = 0;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && len < size; i++) {
		char sig[128];
		pid_t pid = i ? child_named(names[i]) : init_pid;

		signals_of(pid, sig, sizeof(sig));
		len += snprintf(out + len, size - len, "%s%s %s", i ? "; " : "", names[i], sig);
	}
}

/*
 * Waits (up to 2 s) until init, getty and the shell sleep where they stay: the
 * same syscall twice 30 ms apart (a getty that just wrote its prompt may not be
 * back in its read yet).
 */
static void settle(void)
{
	char a[512], b[512];

	tree_signals(a, sizeof(a));
	for (int i = 0; i < 60; i++) {
		usleep(30000);
		tree_signals(b, sizeof(b));
		if (!strcmp(a, b))
			return;
		memcpy(a, b, sizeof(a));
	}
}

/* Whether /proc/PID/cgroup puts `pid` in `cg` (a path below /sys/fs/cgroup/CTRL). */
static int in_cgroup(pid_t pid, const char *ctrl, const char *cg)
{
	char p[64], line[512], want[300];
	const char *rel = cg + strlen("/sys/fs/cgroup/") + strlen(ctrl);
	int in = 0;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/cgroup", pid);
	snprintf(want, sizeof(want), ":%s:%s\n", ctrl, rel);
	f = fopen(p, "r");
	while (f && fgets(line, sizeof(line), f))
		in |= strstr(line, want) != NULL;
	if (f)
		fclose(f);
	return in;
}

/* Whether `pid` exited (a zombie, or reaped). */
static int gone(pid_t pid)
{
	char p[64], line[512] = "", *f;
	FILE *fp;

	snprintf(p, sizeof(p), "/proc/%d/stat", pid);
	fp = fopen(p, "r");
	if (fp) {
		if (!fgets(line, sizeof(line), fp))
			line[0] = 0;
		fclose(fp);
	}
	f = strrchr(line, ')');
	return !f || f[1] != ' ' || f[2] == 'Z' || f[2] == 'X';
}

/* Every process of the container (init and its descendants) is in both cgroups. */
static void check_cgroups_of_tree(int cycle, pid_t pid)
{
	pid_t kids[64];
	int n;

	if (!in_cgroup(pid, "pids", cg_pids) || !in_cgroup(pid, "freezer", cg_freezer)) {
		if (gone(pid))
			return; /* a sleep of the counter's that just ended */
		DIE("cycle %d: pid %d (%ld in the container) is not in %s and %s", cycle, pid, inner_pid(pid),
		    cg_pids, cg_freezer);
	}
	n = children_of(pid, kids, 64);
	for (int i = 0; i < n; i++)
		check_cgroups_of_tree(cycle, kids[i]);
}

/*
 * init's child `comm` leads a session whose controlling terminal is `t`, and is
 * its foreground process group (an idle getty or shell reads its terminal).
 */
static void check_terminal(int cycle, const char *comm, struct pty *t)
{
	pid_t pid = child_named(comm);
	char p[64], line[1024] = "", *f;
	int pgrp = 0, sid = 0, tpgid = 0;
	unsigned int tty_nr = 0;
	struct stat st;
	FILE *fp;

	snprintf(p, sizeof(p), "/proc/%d/stat", pid);
	fp = fopen(p, "r");
	if (fp) {
		if (!fgets(line, sizeof(line), fp))
			line[0] = 0;
		fclose(fp);
	}
	f = strrchr(line, ')');
	if (!pid || !f || sscanf(f + 1, " %*c %*d %d %d %u %d", &pgrp, &sid, &tty_nr, &tpgid) != 4 ||
	    stat(t->path, &st))
		DIE("cycle %d: init's child %s (pid %d) cannot be read", cycle, comm, pid);
	if (sid != pid || tty_nr != st.st_rdev || tpgid != pgrp)
		DIE("cycle %d: %s (pid %d) leads session %d with terminal %u:%u and foreground group %d, not its own on %s "
		    "(%u:%u) with its group %d in the foreground",
		    cycle, comm, pid, sid, major(tty_nr), minor(tty_nr), tpgid, t->path, major(st.st_rdev),
		    minor(st.st_rdev), pgrp);
}

struct tty_state {
	struct termios t;
	struct winsize ws;
};

static void tty_state(struct pty *t, struct tty_state *s)
{
	memset(s, 0, sizeof(*s));
	/* On a pty the master reports (and sets) the slave's termios and size. */
	if (tcgetattr(t->master, &s->t) || ioctl(t->master, TIOCGWINSZ, &s->ws))
		DIE("the settings of %s", t->path);
}

static int same_tty_state(const struct tty_state *a, const struct tty_state *b)
{
	return a->t.c_iflag == b->t.c_iflag && a->t.c_oflag == b->t.c_oflag && a->t.c_cflag == b->t.c_cflag &&
	       a->t.c_lflag == b->t.c_lflag && !memcmp(a->t.c_cc, b->t.c_cc, sizeof(a->t.c_cc)) &&
	       cfgetispeed(&a->t) == cfgetispeed(&b->t) && cfgetospeed(&a->t) == cfgetospeed(&b->t) &&
	       !memcmp(&a->ws, &b->ws, sizeof(a->ws));
}

static void describe_tty_state(const char *what, const struct tty_state *s)
{
	fprintf(stderr, "%s: iflag %x oflag %x cflag %x lflag %x speed %u/%u werase %d, %dx%d\n", what,
		s->t.c_iflag, s->t.c_oflag, s->t.c_cflag, s->t.c_lflag, (unsigned)cfgetispeed(&s->t),
		(unsigned)cfgetospeed(&s->t), s->t.c_cc[VWERASE], s->ws.ws_row, s->ws.ws_col);
}

/*
 * What a manager does to a terminal it holds: it sets its window size (as a
 * terminal emulator resized) and one control character, through the master.
 */
static void resize(struct pty *t, int cycle)
{
	struct termios tio;
	struct winsize ws = { .ws_row = 30 + cycle, .ws_col = 90 + cycle };

	if (tcgetattr(t->master, &tio))
		DIE("tcgetattr %s", t->path);
	tio.c_cc[VWERASE] = 0x10 + cycle;
	if (tcsetattr(t->master, TCSANOW, &tio) || ioctl(t->master, TIOCSWINSZ, &ws))
		DIE("setting %s", t->path);
}

/* /proc/PID/`name` with runs of blanks squeezed to one space: "0 100000 65536". */
static void read_squeezed(pid_t pid, const char *name, char *out, size_t len)
{
	char p[64], buf[512];
	size_t o = 0, n = 0;
	int blank = 1;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/%s", pid, name);
	out[0] = 0;
	f = fopen(p, "r");
	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = 0;
	for (char *c = buf; *c && o + 1 < len; c++) {
		if (*c == ' ' || *c == '\t' || *c == '\n') {
			if (!blank)
				out[o++] = ' ';
			blank = 1;
		} else {
			out[o++] = *c;
			blank = 0;
		}
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = 0;
}

/* The user namespace of init as "uid_map U; gid_map G; setgroups S" (the host's view). */
static void userns_maps(char *out, size_t size)
{
	char u[256], g[256], sg[32];

	read_squeezed(init_pid, "uid_map", u, sizeof(u));
	read_squeezed(init_pid, "gid_map", g, sizeof(g));
	read_squeezed(init_pid, "setgroups", sg, sizeof(sg));
	snprintf(out, size, "uid_map %s; gid_map %s; setgroups %s", u, g, sg);
}

/* The Uid: and Gid: values of /proc/PID/status, "U U U U/G G G G", as this process reads them. */
static void ids_of(pid_t pid, char *out, size_t size)
{
	char p[64], line[256], uid[64] = "?", gid[64] = "?";
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/status", pid);
	f = fopen(p, "r");
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		for (char *c = line; *c; c++)
			if (*c == '\t')
				*c = ' ';
		if (!strncmp(line, "Uid: ", 5))
			snprintf(uid, sizeof(uid), "%.60s", line + 5);
		else if (!strncmp(line, "Gid: ", 5))
			snprintf(gid, sizeof(gid), "%.60s", line + 5);
	}
	if (f)
		fclose(f);
	snprintf(out, size, "%s/%s", uid, gid);
}

static void enter(const char *kind, int flag);

/*
 * The ids of init, the counter, getty and the console's shell, "init U/G;
 * counter ...": read here (the host's view), or by a child of this process that
 * entered init's user namespace (/proc/PID/status shows ids as the reader's
 * namespace maps them).
 */
static void tree_ids(int inside, char *out, size_t size)
{
	const char *names[] = { "init", "counter", "getty", "sh", "sleep" };
	pid_t pids[5], kid;
	int fds[2], status;
	ssize_t n;

	out[0] = 0;
	for (size_t i = 0; i < 5; i++)
		pids[i] = i ? child_named(names[i]) : init_pid;
	if (pipe2(fds, O_CLOEXEC))
		DIE("pipe");
	kid = fork();
	if (kid < 0)
		DIE("fork");
	if (kid == 0) {
		char buf[1024];
		size_t len = 0;

		if (inside)
			enter("user", CLONE_NEWUSER);
		for (size_t i = 0; i < 5 && len < sizeof(buf); i++) {
			char ids[160];

			ids_of(pids[i], ids, sizeof(ids));
			len += snprintf(buf + len, sizeof(buf) - len, "%s%s %s", i ? "; " : "", names[i], ids);
		}
		_exit(write(fds[1], buf, strlen(buf)) < 0);
	}
	close(fds[1]);
	n = read(fds[0], out, size - 1);
	out[n > 0 ? n : 0] = 0;
	close(fds[0]);
	if (waitpid(kid, &status, 0) != kid || status)
		DIE("reading the ids of the container's processes%s", inside ? " from inside" : "");
}

/* The container's /dev/ptmx is its devpts instance's ptmx, its /dev/fd a link to /proc/self/fd. */
static void check_dev(int cycle)
{
	char p[128], link[64] = "";
	struct stat st;

	snprintf(p, sizeof(p), "/proc/%d/root/dev/ptmx", init_pid);
	if (stat(p, &st) || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(5, 2))
		DIE("cycle %d: %s is not a ptmx", cycle, p);
	snprintf(p, sizeof(p), "/proc/%d/root/dev/fd", init_pid);
	if (readlink(p, link, sizeof(link) - 1) < 0 || strcmp(link, "/proc/self/fd"))
		DIE("cycle %d: %s links to \"%s\"", cycle, p, link);
}

static int compare_lines(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * init's mount table as it sees it, one "MOUNTPOINT on PARENT'S-MOUNTPOINT
 * OPTIONS FSTYPE SOURCE SUPEROPTIONS" a mount, sorted (mount ids, devices, roots
 * and propagation left out: new ones after a restore, the ptys' numbers new;
 * the kernel lists mounts in the order they were made, which a restore need
 * not keep).
 */
static void mount_table(char *out, size_t size)
{
	enum { MAX = 64 };
	static char lines[MAX][900], mnts[MAX][256];
	static int ids[MAX], parents[MAX];
	char p[64], line[1024], *sorted[MAX];
	size_t len = 0;
	int n = 0;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/mountinfo", init_pid);
	f = fopen(p, "r");
	if (!f)
		DIE("open %s", p);
	while (fgets(line, sizeof(line), f)) {
		char opts[256], fstype[64], source[256], super[256] = "";
		char *dash = strstr(line, " - ");

		line[strcspn(line, "\n")] = 0;
		if (n == MAX || !dash ||
		    sscanf(line, "%d %d %*s %*s %255s %255s", &ids[n], &parents[n], mnts[n], opts) != 4 ||
		    sscanf(dash + 3, "%63s %255s %255s", fstype, source, super) < 2)
			DIE("%s: a line \"%s\" (or more than %d)", p, line, MAX);
		snprintf(lines[n], sizeof(lines[n]), "%s %s %s %s", opts, fstype, source, super);
		n++;
	}
	fclose(f);
	for (int i = 0; i < n; i++) {
		const char *parent = "-";
		char *whole = malloc(1500);

		for (int j = 0; j < n; j++)
			if (ids[j] == parents[i])
				parent = mnts[j];
		if (!whole)
			DIE("malloc");
		snprintf(whole, 1500, "%.255s on %.255s %.899s", mnts[i], parent, lines[i]);
		sorted[i] = whole;
	}
	qsort(sorted, n, sizeof(sorted[0]), compare_lines);
	out[0] = 0;
	for (int i = 0; i < n; i++) {
		if (len < size)
			len += snprintf(out + len, size - len, "%s\n", sorted[i]);
		free(sorted[i]);
	}
}

/*
 * The container's /dev entries are the host's nodes (the same device), and its
 * namespaces are owned by its user namespace.
 */
static void check_userns_tree(int cycle)
{
	const char *kinds[] = { "mnt", "uts", "ipc", "net", "pid", "cgroup" };
	struct stat host, in, user;
	char p[128];

	for (size_t i = 0; i < sizeof(bound_nodes) / sizeof(bound_nodes[0]); i++) {
		snprintf(p, sizeof(p), "/proc/%d/root/dev/%s", init_pid, bound_nodes[i]);
		if (stat(p, &in) || stat(p + strlen(p) - strlen(bound_nodes[i]) - 5, &host) || !S_ISCHR(in.st_mode) ||
		    in.st_rdev != host.st_rdev)
			DIE("cycle %d: %s is not the host's /dev/%s", cycle, p, bound_nodes[i]);
	}
	snprintf(p, sizeof(p), "/proc/%d/ns/user", init_pid);
	if (stat(p, &user))
		DIE("stat %s", p);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		int fd, owner;

		snprintf(p, sizeof(p), "/proc/%d/ns/%s", init_pid, kinds[i]);
		fd = open(p, O_RDONLY | O_CLOEXEC);
		owner = fd >= 0 ? ioctl(fd, NS_GET_USERNS) : -1;
		if (owner < 0 || fstat(owner, &in))
			DIE("cycle %d: the owner of %s", cycle, p);
		if (in.st_ino != user.st_ino || in.st_dev != user.st_dev)
			DIE("cycle %d: init's %s namespace is not owned by its user namespace", cycle, kinds[i]);
		close(owner);
		close(fd);
	}
}

/*
 * Whether the container's root may change the atime flag of its mount at
 * `path` (its "/" or its /dev/null, a bind of the host's): a mount it made from
 * its namespace's copy of the host's keeps the host's flags locked (EPERM).
 * Tried by a child of this process that entered the container's user and
 * mount namespaces; a change that worked is undone. 1: locked, 0: not.
 */
static int atime_locked(const char *path)
{
	pid_t kid = fork();
	int status;

	if (kid < 0)
		DIE("fork");
	if (kid == 0) {
		enter("user", CLONE_NEWUSER);
		enter("mnt", CLONE_NEWNS);
		if (!mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_NOATIME, NULL))
			_exit(mount(NULL, path, NULL, MS_REMOUNT | MS_BIND, NULL) ? 3 : 0);
		_exit(errno == EPERM ? 1 : 2);
	}
	if (waitpid(kid, &status, 0) != kid || !WIFEXITED(status) || WEXITSTATUS(status) > 1)
		DIE("remounting the container's %s from inside: status %#x", path, status);
	return WEXITSTATUS(status);
}

/*
 * The container's "/" and /dev/null (binds of host paths) have the host's flags
 * locked, its /run (a tmpfs of its own) not.
 */
static void check_locks(int cycle)
{
	const char *locked[] = { "/", "/dev/null" };

	for (size_t i = 0; i < sizeof(locked) / sizeof(locked[0]); i++)
		if (!atime_locked(locked[i]))
			DIE("cycle %d: the flags of the container's %s, a bind of a host path, are not locked", cycle,
			    locked[i]);
	if (atime_locked("/run"))
		DIE("cycle %d: the flags of the container's own /run are locked", cycle);
}

/* The files LXC gives an unprivileged container's root in each of its cgroups. */
static const char *const delegated[] = { "", "cgroup.procs", "tasks" };

/* Delegates (`set`) or checks the delegation of the container's cgroups to its root. */
static void delegation(int cycle, int set)
{
	const char *cgs[] = { cg_pids, cg_freezer };

	for (size_t i = 0; i < 2; i++)
		for (size_t j = 0; j < sizeof(delegated) / sizeof(delegated[0]); j++) {
			char p[512];
			struct stat st;

			snprintf(p, sizeof(p), "%s/%s", cgs[i], delegated[j]);
			if (set && chown(p, MAPPED_ROOT, MAPPED_ROOT))
				DIE("chown %s", p);
			if (stat(p, &st))
				DIE("stat %s", p);
			if (st.st_uid != MAPPED_ROOT || st.st_gid != MAPPED_ROOT)
				DIE("cycle %d: %s is owned by %d:%d, not the container's root", cycle, p, st.st_uid, st.st_gid);
		}
}

/* The cgroup its root made inside (the userns variant) is there, its own, with its limit. */
static void inner_cgroup(int cycle)
{
	char p[512];
	struct stat st;

	snprintf(p, sizeof(p), "%s/inner", cg_pids);
	if (stat(p, &st) || st.st_uid != MAPPED_ROOT || st.st_gid != MAPPED_ROOT)
		DIE("cycle %d: %s, made inside, is not there or not the container root's", cycle, p);
	snprintf(p, sizeof(p), "%s/inner/pids.max", cg_pids);
	if (stat(p, &st) || st.st_uid != MAPPED_ROOT || get_long(p) != 7)
		DIE("cycle %d: %s is not the container root's 7 (%ld)", cycle, p, get_long(p));
}

/*
 * The userns variant: init's maps are `maps`, and init and its children are
 * uid and gid 0 inside, 100000 on the host.
 */
static void check_ids(int cycle, const char *maps)
{
	char now[600], inside[1024], host[1024], want_in[1024], want_host[1024];
	const char *names[] = { "init", "counter", "getty", "sh", "sleep" };
	size_t li = 0, lh = 0;

	userns_maps(now, sizeof(now));
	if (strcmp(now, maps))
		DIE("cycle %d: init's user namespace has %s, not %s", cycle, now, maps);
	for (size_t i = 0; i < 5; i++) {
		/* The daemon's sleep is uid 1000, gid 1001 inside (its su's). */
		int u = i == 4 ? 1000 : 0, g = i == 4 ? 1001 : 0;

		li += snprintf(want_in + li, sizeof(want_in) - li, "%s%s %d %d %d %d/%d %d %d %d", i ? "; " : "",
			       names[i], u, u, u, u, g, g, g, g);
		u += MAPPED_ROOT, g += MAPPED_ROOT;
		lh += snprintf(want_host + lh, sizeof(want_host) - lh, "%s%s %d %d %d %d/%d %d %d %d", i ? "; " : "",
			       names[i], u, u, u, u, g, g, g, g);
	}
	tree_ids(1, inside, sizeof(inside));
	tree_ids(0, host, sizeof(host));
	if (strcmp(inside, want_in))
		DIE("cycle %d: inside the container the ids are %s, not %s", cycle, inside, want_in);
	if (strcmp(host, want_host))
		DIE("cycle %d: on the host the container's ids are %s, not %s", cycle, host, want_host);
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
	char p[400], dir[700], buf[4096], kids[512], now[512], sigs[512], sigs_now[512];
	static char mounts[8192], mounts_now[8192];

	if (argc != 3 && !(argc == 4 && !strcmp(argv[3], "userns")))
		return fprintf(stderr, "usage: api_container WORKDIR CYCLES [userns]\n"), 2;
	userns = argc == 4;
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
	if (userns)
		delegation(0, 1);
	new_pty(&console);
	new_pty(&tty1);
	start(&console, &tty1);
	for (int i = 0; i < 100 && counter() < 3; i++)
		usleep(20000);
	if (counter() < 3)
		DIE("the container does not count");
	/* init started getty on tty1 and asks first on the console. */
	if (!reply(&tty1, NULL, HOST " login: ", buf, sizeof(buf)))
		DIE("getty on tty1 shows no login prompt (it wrote \"%s\")", buf);
	if (!reply(&console, NULL, "Please press Enter to activate this console.", buf, sizeof(buf)))
		DIE("init does not ask for Enter on the console (it wrote \"%s\")", buf);
	if (write(console.master, "\n", 1) != 1)
		DIE("Enter on the console");
	console_answers(&console, "before");
	if (userns) {
		/* Its root makes a cgroup of its own below its pids cgroup, with a limit. */
		if (!reply(&console,
			   "mkdir /sys/fs/cgroup/pids/inner && echo 7 >/sys/fs/cgroup/pids/inner/pids.max && echo "
			   "inner-$((1+1))\n",
			   "inner-2\r\n" PROMPT, buf, sizeof(buf)))
			DIE("the container's root did not make a cgroup of its own (the console wrote \"%s\")", buf);
		inner_cgroup(0);
	}
	getty_answers(&tty1, "before");
	init_children(kids, sizeof(kids));
	if (!strstr(kids, ":counter") || !strstr(kids, ":getty") || !strstr(kids, ":sh") || !strstr(kids, ":sleep"))
		DIE("init's children are %s, not the counter, getty, the console's shell and the daemon's sleep", kids);
	check_terminal(0, "getty", &tty1);
	check_terminal(0, "sh", &console);
	if (userns) {
		char maps[600];

		userns_maps(maps, sizeof(maps));
		if (strcmp(maps, "uid_map " MAP "; gid_map " MAP "; setgroups allow"))
			DIE("the container's user namespace has %s", maps);
		check_ids(0, maps);
		check_userns_tree(0);
		check_locks(0);
		printf("user namespace: %s; ids 0 inside, %d on the host\n", maps, MAPPED_ROOT);
	}
	mount_table(mounts, sizeof(mounts));
	for (int c = 1; c <= cycles; c++) {
		char maps[600] = "";
		ccr_opts *o;
		long before;
		pid_t got;

		struct tty_state tty1_set, console_set, back;

		snprintf(images, sizeof(images), "%s/ckpt-%d", work, c);
		resize(&tty1, c);
		settle();
		o = opts_for();
		if (ccr_opts_set_pid(o, init_pid) || ccr_opts_add_external(o, console.key) ||
		    ccr_opts_add_external(o, tty1.key))
			DIE("options: %s", ccr_last_error());
		snprintf(dir, sizeof(dir), "%s/dump-%d.log", work, c);
		ccr_opts_set_log_file(o, dir);
		if (ccr_freeze(o) < 0)
			DIE("cycle %d: freeze: %s", c, ccr_last_error());
		before = counter();
		/* Frozen, no task changes its terminal (an idle shell's is raw). */
		tty_state(&tty1, &tty1_set);
		tty_state(&console, &console_set);
		init_children(now, sizeof(now));
		if (strcmp(now, kids))
			DIE("cycle %d: before the dump init's children are %s, not %s", c, now, kids);
		tree_signals(sigs, sizeof(sigs));
		if (userns)
			userns_maps(maps, sizeof(maps));
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
		/* Its cgroups go with what was made in them (the userns variant's "inner"). */
		snprintf(p, sizeof(p), "%s/inner", cg_pids);
		if ((userns && rmdir(p)) || rmdir(cg_pids) || rmdir(cg_freezer))
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
		tty_state(&tty1, &back);
		if (!same_tty_state(&tty1_set, &back)) {
			describe_tty_state("tty1 before the dump", &tty1_set);
			describe_tty_state("tty1 after the restore", &back);
			DIE("cycle %d: tty1's termios or window size is not back", c);
		}
		tty_state(&console, &back);
		if (!same_tty_state(&console_set, &back)) {
			describe_tty_state("the console before the dump", &console_set);
			describe_tty_state("the console after the restore", &back);
			DIE("cycle %d: the console's termios or window size is not back", c);
		}
		if (get_long(strcat(strcpy(p, cg_pids), "/pids.max")) != 64)
			DIE("cycle %d: pids.max is not back", c);
		for (int i = 0; i < 100 && counter() <= before + 2; i++)
			usleep(20000);
		if (counter() <= before + 2 || counter() > before + 1000)
			DIE("cycle %d: the counter went from %ld to %ld", c, before, counter());
		init_children(now, sizeof(now));
		if (strcmp(now, kids))
			DIE("cycle %d: init's children were %s and are %s: a process was lost and respawned", c, kids, now);
		check_cgroups_of_tree(c, init_pid);
		tree_signals(sigs_now, sizeof(sigs_now));
		if (strcmp(sigs, sigs_now))
			DIE("cycle %d: signal masks, ignored and caught signals and syscalls were %s and are %s", c, sigs,
			    sigs_now);
		if (c == 1)
			printf("signals (blocked/ignored/caught) and syscalls: %s\n", sigs);
		check_terminal(c, "getty", &tty1);
		check_terminal(c, "sh", &console);
		if (userns) {
			check_ids(c, maps);
			check_userns_tree(c);
			delegation(c, 0);
			inner_cgroup(c);
			check_locks(c);
		}
		check_dev(c);
		mount_table(mounts_now, sizeof(mounts_now));
		if (strcmp(mounts, mounts_now))
			DIE("cycle %d: init's mounts were\n%sand are\n%s", c, mounts, mounts_now);
		snprintf(dir, sizeof(dir), "/proc/%d/root/sys/fs/cgroup/pids/pids.max", init_pid);
		if (get_long(dir) != 64)
			DIE("cycle %d: the container's own view of its pids cgroup is lost (%s: %ld)", c, dir, get_long(dir));
		snprintf(dir, sizeof(dir), "/proc/%d/root/sys/fs/cgroup/pids/cgroup.procs", init_pid);
		/* Pids read from out here are as this manager sees them. */
		snprintf(p, sizeof(p), "%d", init_pid);
		if (!wl_file_has_line(dir, p))
			DIE("cycle %d: its own view of its pids cgroup does not hold init", c);
		check_inside(c);
		snprintf(dir, sizeof(dir), "cycle%d", c);
		console_answers(&console, dir);
		getty_answers(&tty1, dir);
		init_children(now, sizeof(now));
		if (strcmp(now, kids))
			DIE("cycle %d: once answered, init's children are %s, not %s", c, now, kids);
		printf("cycle %d: counter %ld -> %ld, init's children %s kept, tty1 %dx%d lflag %#x werase %#x back,%s the "
		       "console answers, getty on tty1 answers\n",
		       c, before, counter(), kids, tty1_set.ws.ws_row, tty1_set.ws.ws_col, tty1_set.t.c_lflag,
		       tty1_set.t.c_cc[VWERASE], userns ? " user namespace and ids back," : "");
		fflush(stdout);
	}
	/* The restored init still does its work: a child that dies is respawned. */
	{
		pid_t old = child_named("counter"), now_pid = 0;

		if (!old || kill(old, SIGKILL))
			DIE("killing the counter");
		for (int i = 0; i < 300 && (!(now_pid = child_named("counter")) || now_pid == old); i++)
			usleep(10000);
		if (!now_pid || now_pid == old)
			DIE("init did not respawn the counter it lost after %d restores", cycles);
		printf("init respawns the counter after %d restores\n", cycles);
	}
	/* And getty takes a login name: it runs login, which asks for the password. */
	if (!reply(&tty1, "root\n", "Password: ", buf, sizeof(buf)))
		DIE("getty did not take a login name to login (tty1 wrote \"%s\")", buf);
	printf("getty runs login\n");
	cleanup();
	printf("PASS\n");
	return 0;
}
