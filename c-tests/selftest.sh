#!/bin/bash
# Runs every workload without ccr: once as is (must print PASS and exit 0) and
# once with CCR_WL_SELFTEST_BREAK=1 (must print FAIL and exit 1). Proves that the
# workloads work and that their checks can fail.
#   c-tests/selftest.sh [wl_name ...]     (build first: make ctests)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/ccr-selftest.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for b in "$here"/bin/wl_*; do names+=("$(basename "$b")"); done
fi
bad=0

# run NAME MODE(ok|break) [env...]
run() {
	local name=$1 mode=$2 out="$tmp/$1.$2.out" pid rc i
	shift 2
	if [ "$mode" = break ]; then set -- CCR_WL_SELFTEST_BREAK=1 "$@"; fi
	env "$@" "$here/bin/$name" "$tmp/$name.$mode.scratch" </dev/null >"$out" 2>&1 &
	pid=$!
	for i in $(seq 100); do grep -qx ready "$out" && break; sleep 0.05; done
	sleep 0.2
	if [ "$name" = wl_signals ]; then kill -USR1 "$pid"; sleep 0.05; fi
	kill -TERM "$pid" 2>/dev/null || true
	rc=0; wait "$pid" || rc=$?
	if [ "$mode" = ok ] && [ $rc -eq 0 ] && grep -qx PASS "$out"; then
		echo "ok    $name ${*}"
	elif [ "$mode" = break ] && [ $rc -eq 1 ] && grep -q '^FAIL: ' "$out"; then
		echo "ok    $name broken: $(grep -m1 '^FAIL: ' "$out")"
	else
		echo "BAD   $name $mode ${*} (exit $rc):"; sed 's/^/      /' "$out"; bad=1
	fi
}

for n in "${names[@]}"; do
	run "$n" ok
	run "$n" break
	if [ "$n" = wl_sleep ]; then
		for m in relative sigwait epoll pause; do
			run "$n" ok WL_SLEEP_MODE=$m
			run "$n" break WL_SLEEP_MODE=$m
		done
	fi
	if [ "$n" = wl_userns ]; then
		run "$n" ok WL_USERNS=bare
		run "$n" break WL_USERNS=bare
		run "$n" ok WL_USERNS=bare-deny
	fi
done
exit $bad
