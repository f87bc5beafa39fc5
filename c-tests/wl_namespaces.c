/*
 * wl_namespaces: a process in namespaces of its own, each holding state that is
 * lost when the process comes back in another namespace of that type:
 *   uts     hostname and domainname
 *   ipc     a SysV segment with a pattern, a message queued, a semaphore's value,
 *           its sysctls (msgmnb, shmmni, sem, mqueue msg_max) changed, and an
 *           empty POSIX message queue (maxmsg 5, msgsize 64, mode 0640); with
 *           WL_MQ_FULL a message waits in it (a dump must refuse that)
 *   mnt     a tmpfs (private mount tree) with a file in it
 *   net     loopback up with an IPv4 address (labelled) and an IPv6 one added and
 *           ::1 removed; ip_default_ttl, somaxconn, ip_local_port_range changed
 *   cgroup  its cgroups seen from inside as they were after the unshare: the
 *           namespace root ("0::/"), or "/NAME" for the cgroups WL_CGROUP_MOVE
 *           names (directories NAME below the ones it unshared in, ':'-separated),
 *           which it moves into after the unshare
 *   pid_children, time_children  namespaces unshared for children not yet born
 *           (nothing to check: a dump must refuse them)
 * WL_NS lists the types to unshare (default: all of the above). With WL_NS_THREAD
 * set to one type, a second thread unshares that type instead of the process and
 * keeps the state in it; the main thread stays in the namespaces it had.
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <mqueue.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/vfs.h>

#include "workload.h"

#define HOST "ccr-wl-uts"
#define DOMAIN "ccr-wl-domain"
#define IPC_KEY 0x63637231
#define TMPFS_MAGIC_NR 0x01021994
#define TTL "77"
#define LO_V4 "10.11.12.13"
#define LO_V4_LABEL "lo:ccr"
#define LO_V6 "fd00:cc::13"

struct kind {
	const char *name;
	int flag;
	void (*setup)(void);
	void (*check)(void);
};

static char *shm_at;
static int shm_id, msg_id, sem_id;

struct wl_msg {
	long type;
	char text[32];
};

static void uts_setup(void)
{
	if (sethostname(HOST, strlen(HOST)) || setdomainname(DOMAIN, strlen(DOMAIN)))
		WL_DIE("sethostname");
}

static void uts_check(void)
{
	char h[128] = "", d[128] = "";

	gethostname(h, sizeof(h));
	getdomainname(d, sizeof(d));
	WL_CHECK(!strcmp(h, HOST), "hostname is \"%s\", set \"%s\"", h, HOST);
	WL_CHECK(!strcmp(d, DOMAIN), "domainname is \"%s\", set \"%s\"", d, DOMAIN);
}

/* Writes each (path, value) of `t`. */
static void set_sysctls(const char *const t[][2], size_t n)
{
	for (size_t i = 0; i < n; i++) {
		FILE *f = fopen(t[i][0], "w");

		if (!f || fprintf(f, "%s\n", t[i][1]) < 0 || fclose(f))
			WL_DIE("write %s", t[i][0]);
	}
}

/* Checks each (path, value) of `t` reads back as written (tabs as spaces:
 * kernel/sem and ip_local_port_range read back tab-separated). */
static void check_sysctls(const char *const t[][2], size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char buf[128] = "";
		FILE *f = fopen(t[i][0], "r");

		if (f) {
			if (!fgets(buf, sizeof(buf), f))
				buf[0] = 0;
			fclose(f);
		}
		buf[strcspn(buf, "\n")] = 0;
		for (char *c = buf; *c; c++)
			if (*c == '\t')
				*c = ' ';
		WL_CHECK(!strcmp(buf, t[i][1]), "%s is \"%s\", set \"%s\"", t[i][0], buf, t[i][1]);
	}
}

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

/* IPC namespace sysctls set away from their defaults, and checked. */
static const char *const ipc_sysctls[][2] = {
	{ "/proc/sys/kernel/msgmnb", "32768" },
	{ "/proc/sys/kernel/shmmni", "2048" },
	{ "/proc/sys/kernel/sem", "250 32001 64 129" },
	{ "/proc/sys/fs/mqueue/msg_max", "21" },
};

static void ipc_setup(void)
{
	struct wl_msg m = { 7, "queued-message" };

	set_sysctls(ipc_sysctls, NITEMS(ipc_sysctls));
	shm_id = shmget(IPC_KEY, 65536, IPC_CREAT | IPC_EXCL | 0600);
	msg_id = msgget(IPC_KEY, IPC_CREAT | IPC_EXCL | 0600);
	sem_id = semget(IPC_KEY, 1, IPC_CREAT | IPC_EXCL | 0600);
	if (shm_id < 0 || msg_id < 0 || sem_id < 0)
		WL_DIE("SysV objects with key %#x", IPC_KEY);
	shm_at = shmat(shm_id, NULL, 0);
	if (shm_at == (void *)-1)
		WL_DIE("shmat");
	for (int i = 0; i < 65536; i++)
		shm_at[i] = (char)(i * 7);
	if (msgsnd(msg_id, &m, sizeof(m.text), 0) || semctl(sem_id, 0, SETVAL, 5))
		WL_DIE("msgsnd/semctl");
	{
		struct mq_attr a = { .mq_maxmsg = 5, .mq_msgsize = 64 };
		mqd_t q = mq_open("/ccr-wl-mq", O_CREAT | O_EXCL | O_RDWR, 0640, &a);

		if (q < 0 || (getenv("WL_MQ_FULL") && mq_send(q, "waiting", 7, 1)))
			WL_DIE("POSIX message queue");
		mq_close(q);
	}
}

static void ipc_check(void)
{
	struct wl_msg m = { 0, "" };
	int bad = 0;

	WL_CHECK(shmget(IPC_KEY, 0, 0) == shm_id, "segment %#x is not id %d any more", IPC_KEY, shm_id);
	for (int i = 0; i < 65536; i++)
		bad += shm_at[i] != (char)(i * 7);
	WL_CHECK(!bad, "%d bytes of the segment changed", bad);
	WL_CHECK(msgget(IPC_KEY, 0) == msg_id, "message queue %#x is not id %d any more", IPC_KEY, msg_id);
	WL_CHECK(msgrcv(msg_id, &m, sizeof(m.text), 0, IPC_NOWAIT) > 0 && m.type == 7 &&
			 !strcmp(m.text, "queued-message"),
		 "the queued message is gone (%s)", strerror(errno));
	WL_CHECK(semget(IPC_KEY, 0, 0) == sem_id, "semaphore set %#x is not id %d any more", IPC_KEY, sem_id);
	WL_CHECK(semctl(sem_id, 0, GETVAL) == 5, "semaphore value is %d, set 5", semctl(sem_id, 0, GETVAL));
	{
		struct mq_attr a = { 0 };
		mqd_t q = mq_open("/ccr-wl-mq", O_RDWR);
		struct stat st;
		long want = getenv("WL_MQ_FULL") ? 1 : 0;

		WL_CHECK(q >= 0 && !mq_getattr(q, &a) && a.mq_maxmsg == 5 && a.mq_msgsize == 64 && a.mq_curmsgs == want,
			 "POSIX message queue /ccr-wl-mq lost (%s, maxmsg %ld, msgsize %ld)", strerror(errno),
			 (long)a.mq_maxmsg, (long)a.mq_msgsize);
		WL_CHECK(q >= 0 && !fstat(q, &st) && (st.st_mode & 07777) == 0640, "queue mode %o", st.st_mode & 07777);
		if (q >= 0)
			mq_close(q);
		mq_unlink("/ccr-wl-mq");
	}
	shmdt(shm_at);
	shmctl(shm_id, IPC_RMID, NULL);
	msgctl(msg_id, IPC_RMID, NULL);
	semctl(sem_id, 0, IPC_RMID);
	check_sysctls(ipc_sysctls, NITEMS(ipc_sysctls));
}

static void mnt_setup(void)
{
	const char *dir = wl_path("ns-tmpfs");
	int fd;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		WL_DIE("make / private");
	if (mkdir(dir, 0755) && errno != EEXIST)
		WL_DIE("mkdir %s", dir);
	if (mount("wl-tmpfs", dir, "tmpfs", 0, "size=1m,mode=0750"))
		WL_DIE("mount tmpfs on %s", dir);
	fd = open(wl_path("ns-tmpfs/data"), O_CREAT | O_WRONLY, 0600);
	if (fd < 0 || write(fd, "tmpfs-data", 10) != 10)
		WL_DIE("write into the tmpfs");
	close(fd);
}

static void mnt_check(void)
{
	char buf[32] = "";
	struct statfs sf;
	int fd = open(wl_path("ns-tmpfs/data"), O_RDONLY);

	WL_CHECK(!statfs(wl_path("ns-tmpfs"), &sf) && sf.f_type == TMPFS_MAGIC_NR, "ns-tmpfs is no tmpfs");
	WL_CHECK(fd >= 0 && read(fd, buf, sizeof(buf) - 1) == 10 && !strcmp(buf, "tmpfs-data"),
		 "the file in the tmpfs reads \"%s\"", buf);
	if (fd >= 0)
		close(fd);
	umount2(wl_path("ns-tmpfs"), MNT_DETACH);
}

static int lo_flags(void)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = -1;

	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (s >= 0 && !ioctl(s, SIOCGIFFLAGS, &ifr))
		r = ifr.ifr_flags;
	if (s >= 0)
		close(s);
	return r;
}

/* Network namespace sysctls set away from their defaults, and checked. */
static const char *const net_sysctls[][2] = {
	{ "/proc/sys/net/ipv4/ip_default_ttl", TTL },
	{ "/proc/sys/net/core/somaxconn", "1234" },
	{ "/proc/sys/net/ipv4/ip_local_port_range", "20000 30000" },
};

/* RTM_NEWADDR or RTM_DELADDR of `addr`/`prefix` on lo (index 1), over rtnetlink. */
static int lo_addr(int type, int family, const char *addr, int prefix, const char *label)
{
	struct {
		struct nlmsghdr h;
		struct ifaddrmsg a;
		char attrs[128];
	} req;
	char reply[1024];
	unsigned char bin[16];
	size_t alen = family == AF_INET ? 4 : 16;
	struct rtattr *rta;
	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), r = -1;
	ssize_t n;

	if (s < 0 || inet_pton(family, addr, bin) != 1)
		return -1;
	memset(&req, 0, sizeof(req));
	req.h.nlmsg_len = NLMSG_LENGTH(sizeof(req.a));
	req.h.nlmsg_type = type;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (type == RTM_NEWADDR ? NLM_F_CREATE | NLM_F_EXCL : 0);
	req.a.ifa_family = family;
	req.a.ifa_prefixlen = prefix;
	req.a.ifa_index = if_nametoindex("lo");
	for (int t = IFA_ADDRESS; t <= (label ? IFA_LABEL : IFA_LOCAL); t++) {
		const void *v = t == IFA_LABEL ? (const void *)label : bin;
		size_t len = t == IFA_LABEL ? strlen(label) + 1 : alen;

		rta = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.h.nlmsg_len));
		rta->rta_type = t;
		rta->rta_len = RTA_LENGTH(len);
		memcpy(RTA_DATA(rta), v, len);
		req.h.nlmsg_len = NLMSG_ALIGN(req.h.nlmsg_len) + RTA_ALIGN(rta->rta_len);
	}
	if (send(s, &req, req.h.nlmsg_len, 0) == (ssize_t)req.h.nlmsg_len && (n = recv(s, reply, sizeof(reply), 0)) > 0) {
		struct nlmsghdr *h = (struct nlmsghdr *)reply;

		if (h->nlmsg_type == NLMSG_ERROR)
			r = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
	}
	close(s);
	return r;
}

/* Whether lo has `addr` with `prefix` (and, for IPv4, named `label`). */
static int lo_has(int family, const char *addr, int prefix, const char *label)
{
	struct ifaddrs *all, *i;
	int found = 0;

	if (getifaddrs(&all))
		return 0;
	for (i = all; i; i = i->ifa_next) {
		char text[INET6_ADDRSTRLEN] = "";
		int bits = 0;

		if (!i->ifa_addr || i->ifa_addr->sa_family != family || !i->ifa_netmask)
			continue;
		if (family == AF_INET) {
			inet_ntop(family, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, text, sizeof(text));
			bits = __builtin_popcount(((struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr);
		} else {
			inet_ntop(family, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, text, sizeof(text));
			for (int b = 0; b < 16; b++)
				bits += __builtin_popcount(((struct sockaddr_in6 *)i->ifa_netmask)->sin6_addr.s6_addr[b]);
		}
		found |= !strcmp(text, addr) && bits == prefix && !strcmp(i->ifa_name, label ? label : "lo");
	}
	freeifaddrs(all);
	return found;
}

static void net_setup(void)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	ifr.ifr_flags = IFF_UP;
	if (s < 0 || ioctl(s, SIOCSIFFLAGS, &ifr))
		WL_DIE("bring lo up");
	close(s);
	set_sysctls(net_sysctls, NITEMS(net_sysctls));
	if (lo_addr(RTM_NEWADDR, AF_INET, LO_V4, 24, LO_V4_LABEL) || lo_addr(RTM_NEWADDR, AF_INET6, LO_V6, 64, NULL) ||
	    lo_addr(RTM_DELADDR, AF_INET6, "::1", 128, NULL))
		WL_DIE("addresses on lo");
}

static void net_check(void)
{
	WL_CHECK(lo_flags() >= 0 && (lo_flags() & IFF_UP), "lo is down");
	check_sysctls(net_sysctls, NITEMS(net_sysctls));
	WL_CHECK(lo_has(AF_INET, LO_V4, 24, LO_V4_LABEL), "lo has no " LO_V4 "/24 labelled " LO_V4_LABEL);
	WL_CHECK(lo_has(AF_INET, "127.0.0.1", 8, NULL), "lo has no 127.0.0.1/8");
	WL_CHECK(lo_has(AF_INET6, LO_V6, 64, NULL), "lo has no " LO_V6 "/64");
	WL_CHECK(!lo_has(AF_INET6, "::1", 128, NULL), "lo has ::1 again (removed at setup)");
}

/* Loses the state a restore must bring back, as a restore that forgot it would. */
static void net_break(void)
{
	lo_addr(RTM_DELADDR, AF_INET, LO_V4, 24, NULL);
}

static char cgroup_seen[4096];
static char cgroup_break_dir[4096];

static void read_cgroups(char *buf, size_t size)
{
	FILE *f = fopen("/proc/thread-self/cgroup", "r");
	size_t n = f ? fread(buf, 1, size - 1, f) : 0;

	buf[n] = 0;
	if (f)
		fclose(f);
}

static void write_pid0(const char *dir)
{
	char path[4096 + 32];
	FILE *f;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "w");
	if (!f || fprintf(f, "0\n") < 0 || fclose(f))
		WL_DIE("move into %s", dir);
}

static void cgroup_setup(void)
{
	const char *move = getenv("WL_CGROUP_MOVE");
	char list[4096], *save = NULL;

	snprintf(list, sizeof(list), "%s", move ? move : "");
	for (char *d = strtok_r(list, ":", &save); d; d = strtok_r(NULL, ":", &save))
		write_pid0(d);
	read_cgroups(cgroup_seen, sizeof(cgroup_seen));
	/* Relative to the namespace root, at or below it: "N:CTL:/..." never "/.." */
	if (!*cgroup_seen || strstr(cgroup_seen, ":/..") || !strstr(cgroup_seen, ":/"))
		WL_DIE("cgroups seen after the unshare:\n%s", cgroup_seen);
}

static void cgroup_check(void)
{
	char now[sizeof(cgroup_seen)];

	read_cgroups(now, sizeof(now));
	WL_CHECK(!strcmp(now, cgroup_seen), "cgroups seen from inside are\n%swere\n%s", now, cgroup_seen);
	if (*cgroup_break_dir) {
		char child[sizeof(cgroup_break_dir) + 32];

		snprintf(child, sizeof(child), "%s/ccr-wl-break", cgroup_break_dir);
		write_pid0(cgroup_break_dir);
		rmdir(child);
		umount2(cgroup_break_dir, MNT_DETACH);
	}
}

/*
 * The self-test's break: into a child cgroup of its own below the namespace
 * root (on cgroup2, mounted in a private mount namespace, which shows that
 * root), so it sees "0::/ccr-wl-break"; the check moves it back and removes it.
 */
static void cgroup_break(void)
{
	const char *dir = wl_path("cgroup2-break");
	char child[4096 + 32];

	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		WL_DIE("private mount namespace");
	if ((mkdir(dir, 0755) && errno != EEXIST) || mount("cgroup2", dir, "cgroup2", 0, NULL))
		WL_DIE("mount cgroup2 on %s", dir);
	snprintf(cgroup_break_dir, sizeof(cgroup_break_dir), "%s", dir);
	snprintf(child, sizeof(child), "%s/ccr-wl-break", dir);
	if (mkdir(child, 0755) && errno != EEXIST)
		WL_DIE("mkdir %s", child);
	write_pid0(child);
}

static void nothing(void)
{
}

static const struct kind kinds[] = {
	{ "uts", CLONE_NEWUTS, uts_setup, uts_check },
	{ "ipc", CLONE_NEWIPC, ipc_setup, ipc_check },
	{ "mnt", CLONE_NEWNS, mnt_setup, mnt_check },
	{ "net", CLONE_NEWNET, net_setup, net_check },
	{ "cgroup", CLONE_NEWCGROUP, cgroup_setup, cgroup_check },
	{ "pid_children", CLONE_NEWPID, nothing, nothing },
	{ "time_children", CLONE_NEWTIME, nothing, nothing },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static int chosen[NKINDS];

static int is_chosen(const char *name)
{
	for (unsigned i = 0; i < NKINDS; i++)
		if (!strcmp(kinds[i].name, name))
			return chosen[i];
	return 0;
}

static void unshare_chosen(void)
{
	int flags = 0;

	for (unsigned i = 0; i < NKINDS; i++)
		if (chosen[i])
			flags |= kinds[i].flag;
	if (unshare(flags))
		WL_DIE("unshare %#x", flags);
	for (unsigned i = 0; i < NKINDS; i++)
		if (chosen[i])
			kinds[i].setup();
}

static void check_chosen(void)
{
	for (unsigned i = 0; i < NKINDS; i++)
		if (chosen[i])
			kinds[i].check();
}

static volatile int thread_ready;

static void *thread_main(void *arg)
{
	(void)arg;
	unshare_chosen();
	thread_ready = 1;
	while (!wl_term)
		usleep(10000);
	check_chosen();
	return NULL;
}

int main(int argc, char **argv)
{
	const char *list = getenv("WL_NS") ? getenv("WL_NS") : "uts,ipc,mnt,net,cgroup";
	const char *in_thread = getenv("WL_NS_THREAD");
	pthread_t t;

	wl_scratch(argc, argv);
	wl_install_term();
	for (unsigned i = 0; i < NKINDS; i++) {
		const char *want = in_thread ? in_thread : list;
		const char *p = strstr(want, kinds[i].name);
		size_t n = strlen(kinds[i].name);

		chosen[i] = p && (p == want || p[-1] == ',') && (p[n] == ',' || p[n] == 0);
	}
	if (in_thread) {
		if (pthread_create(&t, NULL, thread_main, NULL))
			WL_DIE("pthread_create");
		while (!thread_ready)
			usleep(1000);
	} else {
		unshare_chosen();
	}
	wl_ready();
	if (wl_selftest_break()) {
		if (is_chosen("uts") && !in_thread)
			sethostname("broken", 6);
		else if (is_chosen("net") && !in_thread)
			net_break();
		else if (is_chosen("cgroup") && !in_thread)
			cgroup_break();
		else
			wl_fail("selftest break");
	}
	wl_wait_for_term();
	if (in_thread)
		pthread_join(t, NULL);
	else
		check_chosen();
	return wl_finish();
}
