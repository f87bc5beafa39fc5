/*
 * wl_packet: packet sockets as a DHCP client (busybox udhcpc) holds one. The
 * process unshares a network namespace of its own (no outside traffic), brings
 * its loopback up and holds:
 *  - dhcp: AF_PACKET SOCK_DGRAM for ETH_P_IP bound to lo, PACKET_AUXDATA on, a
 *    classic BPF filter passing only IPv4 UDP to port 6868, locked
 *    (SO_LOCK_FILTER);
 *  - arp: AF_PACKET SOCK_RAW for ETH_P_ARP bound to lo (lo carries no ARP),
 *    PACKET_ORIGDEV on, SO_RCVBUF 100000 (as getsockopt reads it), O_NONBLOCK;
 *  - idle: AF_PACKET SOCK_RAW, protocol 0, unbound (it takes nothing).
 *
 * Verify: each one's type, protocol and interface (lo by name: its index is
 * asked again); the options and O_NONBLOCK; dhcp's filter is the very program,
 * still locked, the others have none. Then traffic: of two datagrams sent to
 * 127.0.0.1:6868 and :6869, dhcp gets the first (its payload at the end of the
 * IP packet, with PACKET_AUXDATA) and not the second.
 *
 * Break: PACKET_AUXDATA is turned off on dhcp after ready.
 */
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "workload.h"

#define PORT 6868

/* IPv4, UDP, not a fragment, destination port PORT. */
static struct sock_filter prog[] = {
	BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 0, 6),
	BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 6),
	BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, 4, 0),
	BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0),
	BPF_STMT(BPF_LD | BPF_H | BPF_IND, 2),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PORT, 0, 1),
	BPF_STMT(BPF_RET | BPF_K, 0xffff),
	BPF_STMT(BPF_RET | BPF_K, 0),
};

#define NPROG (sizeof(prog) / sizeof(prog[0]))

static int dhcp, arp, idle_sock, rcvbuf;

static int opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, level, name, &v, &len))
		return -1;
	return v;
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

static int packet(int type, int proto, int bind_lo)
{
	int s = socket(AF_PACKET, type | SOCK_CLOEXEC, htons(proto));
	struct sockaddr_ll a = { .sll_family = AF_PACKET, .sll_protocol = htons(proto) };

	if (s < 0)
		WL_DIE("socket(AF_PACKET, %d, %#x)", type, proto);
	a.sll_ifindex = (int)if_nametoindex("lo");
	if (bind_lo && bind(s, (struct sockaddr *)&a, sizeof(a)))
		WL_DIE("bind to lo");
	return s;
}

static void drain(int s)
{
	char buf[2048];

	while (recv(s, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
		;
}

static void setup(void)
{
	struct sock_fprog fp = { .len = NPROG, .filter = prog };
	int one = 1, size = 100000;

	if (unshare(CLONE_NEWNET))
		WL_DIE("unshare(CLONE_NEWNET)");
	lo_up();
	dhcp = packet(SOCK_DGRAM, ETH_P_IP, 1);
	if (setsockopt(dhcp, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) ||
	    setsockopt(dhcp, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)) ||
	    setsockopt(dhcp, SOL_SOCKET, SO_LOCK_FILTER, &one, sizeof(one)))
		WL_DIE("dhcp's options and filter");
	arp = packet(SOCK_RAW, ETH_P_ARP, 1);
	if (setsockopt(arp, SOL_PACKET, PACKET_ORIGDEV, &one, sizeof(one)) ||
	    setsockopt(arp, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) ||
	    fcntl(arp, F_SETFL, fcntl(arp, F_GETFL) | O_NONBLOCK))
		WL_DIE("arp's options");
	rcvbuf = opt(arp, SOL_SOCKET, SO_RCVBUF);
	idle_sock = packet(SOCK_RAW, 0, 0);
	drain(dhcp);
	drain(arp);
}

static void check_socket(const char *name, int s, int type, int proto, int ifindex)
{
	struct sockaddr_ll a = { 0 };
	socklen_t len = sizeof(a);

	WL_CHECK(opt(s, SOL_SOCKET, SO_DOMAIN) == AF_PACKET, "%s: domain %d", name, opt(s, SOL_SOCKET, SO_DOMAIN));
	WL_CHECK(opt(s, SOL_SOCKET, SO_TYPE) == type, "%s: type %d, want %d", name, opt(s, SOL_SOCKET, SO_TYPE), type);
	if (getsockname(s, (struct sockaddr *)&a, &len)) {
		wl_fail("%s: getsockname: %s", name, strerror(errno));
		return;
	}
	WL_CHECK(a.sll_protocol == htons(proto), "%s: protocol %#x, want %#x", name, ntohs(a.sll_protocol), proto);
	WL_CHECK(a.sll_ifindex == ifindex, "%s: interface %d, want %d", name, a.sll_ifindex, ifindex);
}

/* The number of filter instructions, and the program into `out`. */
static int filter_of(int s, struct sock_filter *out, int max)
{
	socklen_t n = 0;

	if (getsockopt(s, SOL_SOCKET, SO_GET_FILTER, NULL, &n))
		return -1;
	if (!n || (int)n > max)
		return (int)n;
	if (getsockopt(s, SOL_SOCKET, SO_GET_FILTER, out, &n))
		return -1;
	return (int)n;
}

static void send_udp(int port, const char *text)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || sendto(s, text, strlen(text), 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		wl_fail("sending %s: %s", text, strerror(errno));
	close(s);
}

/* The next packet dhcp takes from the wire as the host's (not our own outgoing
 * copy): its length, and whether PACKET_AUXDATA came with it; -1 on a timeout. */
static int next_packet(char *buf, int size, int ms, int *aux)
{
	struct pollfd p = { .fd = dhcp, .events = POLLIN };

	while (poll(&p, 1, ms) == 1) {
		char ctl[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
		struct sockaddr_ll from;
		struct iovec iov = { .iov_base = buf, .iov_len = (size_t)size };
		struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov,
				    .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
		ssize_t n = recvmsg(dhcp, &m, MSG_DONTWAIT);

		if (n < 0)
			return -1;
		if (from.sll_pkttype == PACKET_OUTGOING)
			continue;
		*aux = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
			if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA)
				*aux = 1;
		return (int)n;
	}
	return -1;
}

static void check(void)
{
	int lo = (int)if_nametoindex("lo"), n, aux = 0;
	struct sock_filter got[64];
	char buf[2048];

	check_socket("dhcp", dhcp, SOCK_DGRAM, ETH_P_IP, lo);
	check_socket("arp", arp, SOCK_RAW, ETH_P_ARP, lo);
	check_socket("idle", idle_sock, SOCK_RAW, 0, 0);
	WL_CHECK(opt(dhcp, SOL_PACKET, PACKET_AUXDATA) == 1, "dhcp: PACKET_AUXDATA %d",
		 opt(dhcp, SOL_PACKET, PACKET_AUXDATA));
	WL_CHECK(opt(arp, SOL_PACKET, PACKET_ORIGDEV) == 1, "arp: PACKET_ORIGDEV %d",
		 opt(arp, SOL_PACKET, PACKET_ORIGDEV));
	WL_CHECK(opt(arp, SOL_SOCKET, SO_RCVBUF) == rcvbuf, "arp: SO_RCVBUF %d, want %d",
		 opt(arp, SOL_SOCKET, SO_RCVBUF), rcvbuf);
	WL_CHECK(fcntl(arp, F_GETFL) & O_NONBLOCK, "arp is not O_NONBLOCK");
	WL_CHECK(!(fcntl(dhcp, F_GETFL) & O_NONBLOCK), "dhcp is O_NONBLOCK");
	n = filter_of(dhcp, got, 64);
	WL_CHECK(n == (int)NPROG && !memcmp(got, prog, sizeof(prog)), "dhcp: a filter of %d instructions, not its own",
		 n);
	WL_CHECK(opt(dhcp, SOL_SOCKET, SO_LOCK_FILTER) == 1, "dhcp: its filter is not locked");
	WL_CHECK(filter_of(arp, got, 64) == 0, "arp has a filter");
	WL_CHECK(filter_of(idle_sock, got, 64) == 0, "idle has a filter");

	send_udp(PORT, "to-6868");
	send_udp(PORT + 1, "to-6869");
	n = next_packet(buf, sizeof(buf), 2000, &aux);
	WL_CHECK(n > 7 && !memcmp(buf + n - 7, "to-6868", 7), "dhcp: no datagram to port %d (%d bytes)", PORT, n);
	WL_CHECK(aux, "dhcp: no PACKET_AUXDATA with the packet");
	n = next_packet(buf, sizeof(buf), 300, &aux);
	WL_CHECK(n < 0, "dhcp took a packet its filter drops (%d bytes)", n);
}

int main(int argc, char **argv)
{
	int off = 0;

	wl_scratch(argc, argv);
	wl_install_term();
	setup();
	wl_ready();
	if (wl_selftest_break())
		setsockopt(dhcp, SOL_PACKET, PACKET_AUXDATA, &off, sizeof(off));
	wl_wait_for_term();
	check();
	return wl_finish();
}
