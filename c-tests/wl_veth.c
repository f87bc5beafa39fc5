/*
 * wl_veth: a container's network: a network namespace of its own whose eth0 is
 * one end of a veth pair, the other end on the host (in a bridge when asked).
 *
 * Set-up, with iproute2's ip (as a container manager would): the pair is made
 * in the host's namespace (host end $WL_VETH_HOST, default ccrw<pid>), the
 * workload unshares its network namespace, the other end is moved in and
 * becomes eth0 with MAC 02:cc:00:00:N:01, MTU 1400, 10.213.N.2/24 and
 * fd00:cc:N::2/64 (N: $WL_VETH_SUBNET, default pid % 200 + 20), up, default
 * routes via 10.213.N.1 and fd00:cc:N::1, its own sysctls accept_ra 0 and
 * rp_filter 2. The host end goes up, and into the
 * bridge $WL_VETH_BRIDGE when that is set. The test may give the bridge the
 * gateway's address: then the host reaches the container through it. Inside,
 * a second pair in0/in1 with both ends there: MACs 02:cd:00:00:N:01 and :02,
 * MTU 9000, 10.214.N.1/30 on in0, both up.
 *
 * Verify: eth0 is up with its MAC, MTU, ifindex, both addresses and its
 * sysctls, and both default routes go through it via their gateways; in0 and
 * in1 have their MACs, MTUs, ifindexes, in0 its address, both up. Break: the IPv4 default route goes.
 *
 * The pair needs no clean-up: it goes with the workload's namespace.
 */
#include "workload.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

static int subnet;
static char v4[32], gw4[32], v6[64], gw6[64], mac[32];

/* Runs `cmd` with /bin/sh in the network namespace `ns` (-1: ours); its status. */
static int run_in(int ns, const char *cmd)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		WL_DIE("fork");
	if (pid == 0) {
		if (ns >= 0 && setns(ns, CLONE_NEWNET))
			_exit(126);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) != pid)
		WL_DIE("waitpid");
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

__attribute__((format(printf, 2, 3))) static void must(int ns, const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (run_in(ns, cmd))
		WL_DIE("%s", cmd);
}

static int dev_ioctl(const char *dev, unsigned long req, struct ifreq *ifr)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r;

	memset(ifr, 0, sizeof(*ifr));
	snprintf(ifr->ifr_name, sizeof(ifr->ifr_name), "%s", dev);
	if (s < 0)
		return -1;
	r = ioctl(s, req, ifr);
	close(s);
	return r;
}

/* Whether `dev` has `addr`/`prefix`. */
static int dev_has(const char *dev, int family, const char *addr, int prefix)
{
	struct ifaddrs *all, *i;
	int found = 0;

	if (getifaddrs(&all))
		return 0;
	for (i = all; i; i = i->ifa_next) {
		char text[INET6_ADDRSTRLEN] = "";
		int bits = 0;

		if (!i->ifa_addr || i->ifa_addr->sa_family != family || !i->ifa_netmask || strcmp(i->ifa_name, dev))
			continue;
		if (family == AF_INET) {
			inet_ntop(family, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, text, sizeof(text));
			bits = __builtin_popcount(((struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr);
		} else {
			inet_ntop(family, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, text, sizeof(text));
			for (int b = 0; b < 16; b++)
				bits += __builtin_popcount(((struct sockaddr_in6 *)i->ifa_netmask)->sin6_addr.s6_addr[b]);
		}
		found |= !strcmp(text, addr) && bits == prefix;
	}
	freeifaddrs(all);
	return found;
}

/* Whether /proc/net/route has the default route via `gw` on eth0. */
static int default_v4(const char *gw)
{
	FILE *f = fopen("/proc/net/route", "r");
	char line[256], dev[32];
	unsigned dst, via, mask;
	struct in_addr want;
	int found = 0;

	if (!f || inet_pton(AF_INET, gw, &want) != 1)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%31s %x %x %*x %*d %*d %*d %x", dev, &dst, &via, &mask) == 4)
			found |= !strcmp(dev, "eth0") && dst == 0 && mask == 0 && via == want.s_addr;
	fclose(f);
	return found;
}

/* Whether /proc/net/ipv6_route has ::/0 via `gw` on eth0. */
static int default_v6(const char *gw)
{
	FILE *f = fopen("/proc/net/ipv6_route", "r");
	char line[512], dst[33], via[33], dev[32], want[33];
	unsigned char bin[16];
	unsigned len;
	int found = 0;

	if (!f || inet_pton(AF_INET6, gw, bin) != 1)
		return 0;
	for (int i = 0; i < 16; i++)
		sprintf(want + 2 * i, "%02x", bin[i]);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%32s %x %*s %*x %32s %*x %*x %*x %*x %31s", dst, &len, via, dev) == 4)
			found |= !strcmp(dev, "eth0") && len == 0 && !strcmp(dst, "00000000000000000000000000000000") &&
				 !strcmp(via, want);
	fclose(f);
	return found;
}

/* `dev` is up with MAC `want_mac`, MTU `mtu` and ifindex `index`. */
static void check_dev(const char *dev, const char *want_mac, int mtu, unsigned index)
{
	struct ifreq ifr;

	WL_CHECK(dev_ioctl(dev, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP), "%s is missing or down", dev);
	WL_CHECK(dev_ioctl(dev, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu == mtu, "%s's MTU is %d, not %d", dev, ifr.ifr_mtu,
		 mtu);
	WL_CHECK(if_nametoindex(dev) == index, "%s's ifindex is %u, not %u", dev, if_nametoindex(dev), index);
	if (dev_ioctl(dev, SIOCGIFHWADDR, &ifr) == 0) {
		unsigned char *m = (unsigned char *)ifr.ifr_hwaddr.sa_data;
		char got[32];

		snprintf(got, sizeof(got), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
		WL_CHECK(!strcmp(got, want_mac), "%s's MAC is %s, not %s", dev, got, want_mac);
	} else {
		wl_fail("SIOCGIFHWADDR %s: %s", dev, strerror(errno));
	}
}

int main(int argc, char **argv)
{
	const char *host = getenv("WL_VETH_HOST"), *bridge = getenv("WL_VETH_BRIDGE");
	char host_buf[IFNAMSIZ], temp[IFNAMSIZ], in_mac[2][32], in_v4[32];
	unsigned eth0_index, in_index[2];
	int outer;

	wl_scratch(argc, argv);
	wl_install_term();
	subnet = getenv("WL_VETH_SUBNET") ? atoi(getenv("WL_VETH_SUBNET")) : getpid() % 200 + 20;
	if (!host) {
		snprintf(host_buf, sizeof(host_buf), "ccrw%d", getpid());
		host = host_buf;
	}
	snprintf(temp, sizeof(temp), "ccrwi%d", getpid());
	snprintf(v4, sizeof(v4), "10.213.%d.2", subnet);
	snprintf(gw4, sizeof(gw4), "10.213.%d.1", subnet);
	snprintf(v6, sizeof(v6), "fd00:cc:%d::2", subnet);
	snprintf(gw6, sizeof(gw6), "fd00:cc:%d::1", subnet);
	snprintf(mac, sizeof(mac), "02:cc:00:00:%02x:01", subnet & 0xff);
	snprintf(in_mac[0], sizeof(in_mac[0]), "02:cd:00:00:%02x:01", subnet & 0xff);
	snprintf(in_mac[1], sizeof(in_mac[1]), "02:cd:00:00:%02x:02", subnet & 0xff);
	snprintf(in_v4, sizeof(in_v4), "10.214.%d.1", subnet);

	outer = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (outer < 0)
		WL_DIE("open /proc/self/ns/net");
	must(-1, "ip link add %s type veth peer name %s", host, temp);
	if (unshare(CLONE_NEWNET)) {
		run_in(outer, "ip link del ccrwi$PPID 2>/dev/null");
		WL_DIE("unshare(CLONE_NEWNET)");
	}
	must(outer, "ip link set %s netns %d", temp, getpid());
	must(outer, "ip link set %s up%s%s", host, bridge ? " master " : "", bridge ? bridge : "");
	close(outer);
	must(-1, "ip link set lo up && ip link set %s name eth0 address %s mtu 1400", temp, mac);
	must(-1, "echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_ra && echo 2 > /proc/sys/net/ipv4/conf/eth0/rp_filter");
	must(-1, "ip link set eth0 up");
	must(-1, "ip addr add %s/24 dev eth0 && ip -6 addr add %s/64 dev eth0 nodad", v4, v6);
	must(-1, "ip route add default via %s && ip -6 route add default via %s dev eth0", gw4, gw6);
	must(-1, "ip link add in0 address %s mtu 9000 type veth peer name in1 address %s mtu 9000", in_mac[0], in_mac[1]);
	must(-1, "ip addr add %s/30 dev in0 && ip link set in0 up && ip link set in1 up", in_v4);
	eth0_index = if_nametoindex("eth0");
	in_index[0] = if_nametoindex("in0");
	in_index[1] = if_nametoindex("in1");
	wl_info("eth0 %s %s/24 %s/64 via %s, host end %s%s%s", mac, v4, v6, gw4, host, bridge ? " in " : "",
		bridge ? bridge : "");
	wl_ready();
	if (wl_selftest_break())
		run_in(-1, "ip route del default");
	wl_wait_for_term();

	check_dev("eth0", mac, 1400, eth0_index);
	check_dev("in0", in_mac[0], 9000, in_index[0]);
	check_dev("in1", in_mac[1], 9000, in_index[1]);
	WL_CHECK(dev_has("eth0", AF_INET, v4, 24), "eth0 has no %s/24", v4);
	WL_CHECK(dev_has("eth0", AF_INET6, v6, 64), "eth0 has no %s/64", v6);
	WL_CHECK(dev_has("in0", AF_INET, in_v4, 30), "in0 has no %s/30", in_v4);
	WL_CHECK(wl_file_has_line("/proc/sys/net/ipv6/conf/eth0/accept_ra", "0"), "eth0's accept_ra is not 0");
	WL_CHECK(wl_file_has_line("/proc/sys/net/ipv4/conf/eth0/rp_filter", "2"), "eth0's rp_filter is not 2");
	WL_CHECK(default_v4(gw4), "no default route via %s on eth0", gw4);
	WL_CHECK(default_v6(gw6), "no IPv6 default route via %s on eth0", gw6);
	return wl_finish();
}
