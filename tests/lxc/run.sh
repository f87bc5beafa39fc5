#!/bin/bash
# Unmodified LXC (Debian's lxc 5.0.2) checkpoints and restores a busybox container
# through ccr, found as `criu` first in PATH:
#   tests/lxc/run.sh CCR_BINARY [CYCLES]
# The container is made by `lxc-create -t busybox` with Debian's default
# configuration (a veth on bridge lxcbr0, DHCP from the bridge's side) in a network
# and mount namespace of this script's own, where it makes lxcbr0 and runs dnsmasq:
# the machine's own network is never touched. One change: lxc.tty.max = 0 (see
# below). Each cycle: lxc-checkpoint -s, then -r; the counter inside goes on from
# where it was in the same process, lxc-info says RUNNING, lxc-attach works,
# syslogd logs, udhcpc holds its lease on eth0, the pids.max set with lxc-cgroup
# on the running container (not in its configuration) is back, a TCP connection between two
# nc processes on the container's loopback carries its line counter on, no line
# lost or doubled, and so does one to a server outside the container (in this
# script's namespace). Then liblxc's calls (tests/lxc/lxc_api.c): checkpoint() and
# restore(), migrate(MIGRATE_DUMP, MIGRATE_RESTORE), a line written to /dev/console
# inside coming out of console_getfd(), MIGRATE_FEATURE_CHECK saying no to memory
# tracking and lazy pages, and MIGRATE_PRE_DUMP refused
# with its reason in the log. Then a dump that leaves the container running, a dump ccr
# refuses (a connection still being made: LXC reports the failure, the container
# runs on, the log names the socket), and lxc-stop. Exits 0 when every check
# passed.
set -euo pipefail
ccr=$(realpath "$1")
cycles=${2:-3}
name=ccrt$$
work=$(mktemp -d /tmp/ccr-lxc.XXXXXX)
mkdir -p "$work/bin"
ln -s "$ccr" "$work/bin/criu"
cc -O1 -Wall -Wextra -Werror -o "$work/lxc_api" "$(dirname "$0")/lxc_api.c" -llxc
holder=
say() { printf '%s\n' "lxc test: $*" >&2; }
fail() {
	say "FAIL: $*"
	for f in "$work"/img*/dump.log "$work"/img*/restore.log "$work/lxc.log"; do
		[ -f "$f" ] && { echo "---- $f"; tail -n 30 "$f"; }
	done
	exit 1
}

# Runs a command in the test's namespaces, with ccr as criu.
in_ns() { nsenter -t "$holder" -n -m env PATH="$work/bin:$PATH" "$@"; }
lxc() { local cmd=$1; shift; in_ns "lxc-$cmd" -P "$work" -n "$name" "$@" </dev/null; }
attach() { lxc attach -- /bin/sh -c "$1"; }
state() { lxc info -s -H 2>/dev/null || true; }

cleanup() {
	set +e
	if [ -n "$holder" ]; then
		lxc stop -k >/dev/null 2>&1
		for p in $(pgrep -f "\[lxc monitor\] $work $name"); do kill -9 "$p"; done
		[ -f "$work/dnsmasq.pid" ] && kill "$(cat "$work/dnsmasq.pid")"
		kill "$holder"
	fi
	sleep 0.3
	# LXC's cgroups for this container (and its inner .lxc on v2), and lxc.pivot
	# when LXC left it empty.
	for d in /sys/fs/cgroup/*/lxc.payload."$name"* /sys/fs/cgroup/*/lxc.monitor."$name"* /sys/fs/cgroup/*/lxc.pivot; do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	rm -rf "$work"
}
trap cleanup EXIT
# A stopped run (SIGTERM, Ctrl-C) removes what it made too.
trap "exit 1" INT TERM

# The namespaces: sysfs mounted again so LXC sees the namespace's devices (the
# cgroup mounts under it moved over), lxcbr0 and a DHCP server on it.
cat >"$work/ns.sh" <<EOF
set -e
mount --make-rprivate /
mkdir -p "$work/cg"
mount --rbind /sys/fs/cgroup "$work/cg"
mount -t sysfs sysfs /sys
mount --move "$work/cg" /sys/fs/cgroup
ip link set lo up
ip link add lxcbr0 type bridge
ip addr add 10.0.3.1/24 dev lxcbr0
ip link set lxcbr0 up
dnsmasq --strict-order --bind-interfaces --pid-file="$work/dnsmasq.pid" --listen-address 10.0.3.1 \
	--dhcp-range 10.0.3.2,10.0.3.254 --dhcp-leasefile="$work/leases" --except-interface=lo \
	--interface=lxcbr0 --conf-file=
# A server outside the container: what a client inside sends it lands in
# outside.got; it sends a counter of its own too, while the container is away.
(i=0; while true; do i=\$((i+1)); echo \$i; sleep 0.2; done | busybox nc -l -p 5556 > "$work/outside.got") &
echo ready > "$work/ns.ready"
exec sleep infinity
EOF
unshare --net --mount bash "$work/ns.sh" >"$work/ns.log" 2>&1 &
holder=$!
for _ in $(seq 100); do [ -f "$work/ns.ready" ] && break; sleep 0.05; done
[ -f "$work/ns.ready" ] || fail "the test's namespaces did not come up: $(cat "$work/ns.log")"

lxc create -t busybox >"$work/create.log" 2>&1 || fail "lxc-create: $(tail -5 "$work/create.log")"
# LXC 5.0.2's monitor of a restored container crashes (SIGSEGV in
# lxc_terminal_free) on the first command a client sends when lxc.tty.max > 0:
# a restore never allocates the tty array it walks. Whatever engine restores it,
# the container then dies with its monitor. Hence no ttys.
echo "lxc.tty.max = 0" >>"$work/$name/config"
lxc start -l DEBUG -o "$work/lxc.log" || fail "lxc-start"
for _ in $(seq 100); do [ "$(state)" = RUNNING ] && break; sleep 0.1; done
[ "$(state)" = RUNNING ] || fail "the container did not start"
attach 'echo "i=0; while true; do i=\$((i+1)); echo \$i > /tmp/counter; sleep 0.2; done" > /tmp/count.sh'
attach 'setsid /bin/sh /tmp/count.sh </dev/null >/dev/null 2>&1 &'
for _ in $(seq 100); do ip=$(lxc info -i -H 2>/dev/null | head -1); [ -n "$ip" ] && break; sleep 0.2; done
[ -n "${ip:-}" ] || fail "the container got no address from DHCP"
# The pid (inside) of the first process whose command line matches $1.
pid_of() { attach "ps -o pid,args | grep '[${1:0:1}]${1:1}'" | awk 'NR==1 {print $1}'; }
counter_pid=$(pid_of count.sh)
[ -n "$counter_pid" ] || fail "the counter did not start"
# A limit set on the running container (its configuration says nothing): the
# checkpoint carries it, LXC would not set it again.
lxc cgroup pids.max 55 || fail "lxc-cgroup pids.max 55"
# A TCP connection inside (lxc-checkpoint passes --tcp-established): a line
# counter piped through nc to an nc server on the container's loopback.
attach 'setsid /bin/sh -c "sleep 100000 | nc -l -p 5555 > /tmp/tcp.got" </dev/null >/dev/null 2>&1 &'
sleep 0.3
attach 'echo "i=0; while true; do i=\$((i+1)); echo \$i; sleep 0.2; done | nc 127.0.0.1 5555" > /tmp/tcp.sh'
attach 'setsid /bin/sh /tmp/tcp.sh </dev/null >/dev/null 2>&1 &'
sleep 0.5
nc_server=$(pid_of "nc -l -p 5555")
nc_client=$(pid_of "nc 127.0.0.1 5555")
attach 'echo "i=0; while true; do i=\$((i+1)); echo \$i; sleep 0.2; done | nc 10.0.3.1 5556 > /tmp/in.got" > /tmp/out.sh'
attach 'setsid /bin/sh /tmp/out.sh </dev/null >/dev/null 2>&1 &'
sleep 0.5
nc_out=$(pid_of "nc 10.0.3.1 5556")
[ -n "$nc_server" ] && [ -n "$nc_client" ] && [ -n "$nc_out" ] ||
	fail "the TCP pairs did not start: $(attach 'ps -o pid,args')"
attach 'netstat -tn | grep -q "127.0.0.1:5555 *ESTABLISHED"' || fail "nc did not connect: $(attach 'netstat -tn')"
say "running: init $(lxc info -p -H), eth0 $ip, counter pid $counter_pid inside"

# The counter's value (retried while the loop rewrites the file).
counter() {
	local v
	for _ in $(seq 20); do
		v=$(attach 'cat /tmp/counter') || return 1
		[ -n "$v" ] && { echo "$v"; return 0; }
		sleep 0.05
	done
	return 1
}

check_running() {
	local what=$1 before after
	[ "$(state)" = RUNNING ] || fail "$what: lxc-info says $(state)"
	before=$(counter) || fail "$what: lxc-attach failed"
	sleep 1
	after=$(counter) || fail "$what: lxc-attach failed"
	[ "$after" -gt "$before" ] || fail "$what: the counter stopped at $before"
	[ "$(pid_of count.sh)" = "$counter_pid" ] || fail "$what: the counter is another process"
	[ "$(lxc cgroup pids.max)" = 55 ] || fail "$what: the container's pids.max is $(lxc cgroup pids.max), not 55"
	[ "$(pid_of "nc -l -p 5555")" = "$nc_server" ] && [ "$(pid_of "nc 127.0.0.1 5555")" = "$nc_client" ] ||
		fail "$what: the nc pair is gone or other processes: $(attach 'ps -o pid,args')"
	# One read of the file: its line count, its last line, the first line out of order.
	tcp_lines() { attach "awk '{ if (\$1 != NR && !bad) bad = NR; last = \$1 } END { print NR, last, bad + 0 }' ${1:-/tmp/tcp.got}"; }
	# The same of outside.got, on this side of the connection to the outside.
	out_lines() { awk '{ if ($1 != NR && !bad) bad = NR; last = $1 } END { print NR, last, bad + 0 }' "$work/outside.got"; }
	read -r _ before _ <<<"$(tcp_lines)"
	read -r _ out_before _ <<<"$(out_lines)"
	sleep 0.6
	read -r lines after bad <<<"$(tcp_lines)"
	[ "$after" -gt "$before" ] || fail "$what: the TCP connection inside carries nothing (at $before)"
	[ "$lines" -eq "$after" ] && [ "$bad" -eq 0 ] ||
		fail "$what: lines lost or doubled on the TCP connection ($lines lines, the last $after, line $bad out of order)"
	[ "$(pid_of "nc 10.0.3.1 5556")" = "$nc_out" ] || fail "$what: the client of the server outside is gone"
	read -r lines after bad <<<"$(out_lines)"
	[ "$after" -gt "$out_before" ] || fail "$what: the TCP connection to the outside carries nothing (at $out_before)"
	[ "$lines" -eq "$after" ] && [ "$bad" -eq 0 ] ||
		fail "$what: lines lost or doubled on the way out ($lines lines, the last $after, line $bad out of order)"
	# The outside server's own counter, sent on while the container was away.
	read -r lines after bad <<<"$(tcp_lines /tmp/in.got)"
	[ "$lines" -gt 0 ] && [ "$lines" -eq "$after" ] && [ "$bad" -eq 0 ] ||
		fail "$what: lines lost or doubled on the way in ($lines lines, the last $after, line $bad out of order)"
	attach "logger ccr-lxc-$what" && sleep 0.2 && attach "grep -q ccr-lxc-$what /var/log/messages" || fail "$what: syslogd did not log"
	[ -n "$(pid_of udhcpc)" ] || fail "$what: udhcpc is gone"
	[ "$(lxc info -i -H | head -1)" = "$ip" ] || fail "$what: eth0 lost $ip"
	echo "$after"
}

last=0
for c in $(seq "$cycles"); do
	# The container's network namespace held open from outside (as a manager's
	# /run/netns entry would): it outlives the dumped tasks, so only ccr taking
	# its devices down keeps it from answering the outside server with resets
	# while the server sends on, the container away.
	exec 9<"/proc/$(lxc info -p -H)/ns/net"
	lxc checkpoint -s -D "$work/img$c" -v || fail "cycle $c: lxc-checkpoint -s"
	[ "$(state)" = STOPPED ] || fail "cycle $c: the container runs on after lxc-checkpoint -s"
	sleep 0.5
	exec 9<&-
	lxc checkpoint -r -D "$work/img$c" -v >"$work/restore$c.out" 2>&1 || fail "cycle $c: lxc-checkpoint -r: $(cat "$work/restore$c.out")"
	n=$(check_running "cycle$c")
	[ "$n" -gt "$last" ] || fail "cycle $c: the counter went back from $last to $n"
	last=$n
	say "cycle $c: restored, init $(lxc info -p -H), counter at $n"
done

# The same through liblxc's calls, as a manager linking liblxc makes them.
api() { in_ns "$work/lxc_api" "$name" "$work" "$@" </dev/null >"$work/api-$1.out" 2>&1 || fail "liblxc $1: $(tail -5 "$work/api-$1.out")"; }
api checkpoint "$work/img-api"
api restore "$work/img-api"
n=$(check_running api-restore)
[ "$n" -gt "$last" ] || fail "liblxc restore: the counter went back from $last to $n"
api migrate-dump "$work/img-migrate"
api migrate-restore "$work/img-migrate"
last=$n
n=$(check_running api-migrate)
[ "$n" -gt "$last" ] || fail "liblxc migrate: the counter went back from $last to $n"
# The console LXC gave the restored container (--inherit-fd) is the one its
# monitor serves: a line written to /dev/console inside comes out of
# console_getfd's end.
marker="ccr-console-$$"
api console "$marker" &
console_api=$!
for _ in $(seq 50); do grep -q ready "$work/api-console.out" 2>/dev/null && break; sleep 0.1; done
attach "echo $marker > /dev/console"
wait "$console_api" || fail "the restored container's console: $(cat "$work/api-console.out")"
# ccr cannot pre-dump yet: MIGRATE_FEATURE_CHECK says so, MIGRATE_PRE_DUMP fails
# and the container runs on.
api features "$work/img-features"
api pre-dump "$work/img-predump"

check_running api-pre-dump >/dev/null
grep -qs "'pre-dump' is not supported" "$work"/img-predump/*.log ||
	fail "the pre-dump refusal is not in the log LXC shows: $(ls "$work/img-predump")"
say "liblxc: checkpoint(), restore(), migrate(DUMP, RESTORE) done, the console serves; migrate(PRE_DUMP) refused: $(cat "$work"/img-predump/*.log)"

# Without -s the container is dumped and runs on untouched.
init=$(lxc info -p -H)
lxc checkpoint -D "$work/img-running" -v || fail "lxc-checkpoint (leave running)"
[ "$(lxc info -p -H)" = "$init" ] || fail "leave running: init changed"
check_running leave-running >/dev/null
say "dumped, still running"

# A dump ccr refuses: a connection still being made (SYN_SENT, to an address
# nobody answers for).
attach 'setsid /bin/sh -c "nc -w 60 10.0.3.99 80" </dev/null >/dev/null 2>&1 &'
sleep 0.5
attach 'netstat -tn | grep -q "10.0.3.99:80 *SYN_SENT"' || fail "nc is not connecting: $(attach 'netstat -tn')"
if lxc checkpoint -s -D "$work/img-refused" >"$work/refused.out" 2>&1; then
	fail "a container with a connection being made was dumped"
fi
grep -q "TCP" "$work/img-refused/dump.log" || fail "the refusal does not name the connection: $(tail -3 "$work/img-refused/dump.log")"
check_running refused >/dev/null
say "refused: $(grep -m1 -o 'pid [0-9]*: fd [0-9]*[^(]*' "$work/img-refused/dump.log" || true)"
attach "kill $(pid_of 'nc -w 60')" || true

lxc stop || fail "lxc-stop"
[ "$(state)" = STOPPED ] || fail "lxc-stop left it $(state)"
say "PASS ($cycles cycles)"
