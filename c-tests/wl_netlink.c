/*
 * wl_netlink: netlink sockets as `ip monitor` and a device manager hold them. The
 * process unshares a network namespace of its own (so the events are its own)
 * and holds:
 *  - route: NETLINK_ROUTE bound to a port id of its choosing (pid + 77), in the
 *    link and IPv4 address groups and in group 33 (beyond the first bitmap
 *    word), NETLINK_EXT_ACK on, O_NONBLOCK;
 *  - uevent: NETLINK_KOBJECT_UEVENT datagram socket, unbound (port id 0).
 *
 * Verify: each one's protocol and type, route's port id, groups (as
 * NETLINK_LIST_MEMBERSHIPS lists them) and option, O_NONBLOCK. Then traffic:
 * bringing lo up sends route an RTM_NEWLINK event (it still listens to the link
 * group), and a link dump asked on it is answered.
 *
 * Break: route leaves group 33 after ready.
 */
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "workload.h"

static int route, uevent;
static unsigned port_id;

static int opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, level, name, &v, &len))
		return -1;
	return v;
}

static void setup(void)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR };
	int one = 1, g33 = 33;

	if (unshare(CLONE_NEWNET))
		WL_DIE("unshare(CLONE_NEWNET)");
	port_id = (unsigned)getpid() + 77;
	a.nl_pid = port_id;
	route = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (route < 0 || bind(route, (struct sockaddr *)&a, sizeof(a)))
		WL_DIE("route socket");
	if (setsockopt(route, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g33, sizeof(g33)) ||
	    setsockopt(route, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one)) ||
	    fcntl(route, F_SETFL, fcntl(route, F_GETFL) | O_NONBLOCK))
		WL_DIE("route's groups and options");
	uevent = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
	if (uevent < 0)
		WL_DIE("uevent socket");
}

/* The groups route is in, as bitmap words; the number of words. */
static int groups(int s, unsigned *words, int max)
{
	socklen_t len = (socklen_t)(max * sizeof(*words));

	memset(words, 0, max * sizeof(*words));
	if (getsockopt(s, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, words, &len))
		return -1;
	return (int)(len / sizeof(*words));
}

/* Waits for a message of `type` on route; 1 when it came. */
static int wait_for(int type, int ms)
{
	struct pollfd p = { .fd = route, .events = POLLIN };
	char buf[16384];

	while (poll(&p, 1, ms) == 1) {
		ssize_t n = recv(route, buf, sizeof(buf), 0);

		if (n < 0)
			return 0;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned)n); h = NLMSG_NEXT(h, n))
			if (h->nlmsg_type == type)
				return 1;
	}
	return 0;
}

static void lo_up(void)
{
	struct ifreq r = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	snprintf(r.ifr_name, sizeof(r.ifr_name), "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &r))
		WL_DIE("lo's flags");
	r.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &r))
		WL_DIE("lo up");
	close(s);
}

static void check(void)
{
	struct sockaddr_nl a = { 0 };
	socklen_t len = sizeof(a);
	unsigned w[4];
	int n;
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
	} req = { .h = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1 },
		  .i = { .ifi_family = AF_UNSPEC } };

	WL_CHECK(opt(route, SOL_SOCKET, SO_PROTOCOL) == NETLINK_ROUTE, "route: protocol %d",
		 opt(route, SOL_SOCKET, SO_PROTOCOL));
	WL_CHECK(opt(route, SOL_SOCKET, SO_TYPE) == SOCK_RAW, "route: type %d", opt(route, SOL_SOCKET, SO_TYPE));
	WL_CHECK(opt(uevent, SOL_SOCKET, SO_PROTOCOL) == NETLINK_KOBJECT_UEVENT, "uevent: protocol %d",
		 opt(uevent, SOL_SOCKET, SO_PROTOCOL));
	WL_CHECK(opt(uevent, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM, "uevent: type %d", opt(uevent, SOL_SOCKET, SO_TYPE));
	if (getsockname(route, (struct sockaddr *)&a, &len) == 0)
		WL_CHECK(a.nl_pid == port_id, "route: port id %u, want %u", a.nl_pid, port_id);
	else
		wl_fail("route: getsockname: %s", strerror(errno));
	n = groups(route, w, 4);
	WL_CHECK(n >= 2 && w[0] == (RTMGRP_LINK | RTMGRP_IPV4_IFADDR) && w[1] == 1,
		 "route: groups %#x %#x (%d words), want %#x 0x1", n > 0 ? w[0] : 0, n > 1 ? w[1] : 0, n,
		 RTMGRP_LINK | RTMGRP_IPV4_IFADDR);
	WL_CHECK(opt(route, SOL_NETLINK, NETLINK_EXT_ACK) == 1, "route: NETLINK_EXT_ACK %d",
		 opt(route, SOL_NETLINK, NETLINK_EXT_ACK));
	WL_CHECK(fcntl(route, F_GETFL) & O_NONBLOCK, "route is not O_NONBLOCK");
	lo_up();
	WL_CHECK(wait_for(RTM_NEWLINK, 2000), "route: no RTM_NEWLINK event when lo came up");
	if (send(route, &req, sizeof(req), 0) != (ssize_t)sizeof(req))
		wl_fail("route: sending a link dump request: %s", strerror(errno));
	else
		WL_CHECK(wait_for(RTM_NEWLINK, 2000), "route: the link dump was not answered");
}

int main(int argc, char **argv)
{
	int g33 = 33;

	wl_scratch(argc, argv);
	wl_install_term();
	setup();
	wl_ready();
	if (wl_selftest_break())
		setsockopt(route, SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, &g33, sizeof(g33));
	wl_wait_for_term();
	check();
	return wl_finish();
}
