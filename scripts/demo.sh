#!/usr/bin/env bash
# ccr's main job on a real program: a python3 interpreter counting in a loop is
# checkpointed (and killed), then restored; it carries on from where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
echo "building ccr (release)..."
make -s lib >/tmp/ccr-demo-build.log 2>&1 || { cat /tmp/ccr-demo-build.log; exit 1; }
ccr=build/bin/ccr
work=$(mktemp -d /tmp/ccr-demo.XXXXXX)
trap 'kill "$pid" 2>/dev/null || true' EXIT

# The workload: stdout to a file, stdin from /dev/null, own session, and no fds
# inherited from whatever started this script (pipes are not dumpable yet).
setsid python3 -c '
import os, time
os.closerange(3, 65536)
i = 0
while True:
    i += 1
    print(i, flush=True)
    time.sleep(0.1)
' </dev/null >"$work/counter.out" 2>&1 &
pid=$!
disown
sleep 1
echo "python3 (pid $pid) has counted to $(tail -n1 "$work/counter.out")"

$ccr dump -t "$pid" -D "$work/images" -o "$work/dump.log" -v 4
while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
last=$(tail -n1 "$work/counter.out")
echo "checkpointed into $work/images and killed at $last:"
ls -l "$work/images" | sed 1d | awk '{print "   ", $5, $9}'
sleep 1
echo "nothing counted while it was gone: still $(tail -n1 "$work/counter.out")"

$ccr restore -D "$work/images" -d -o "$work/restore.log" -v 4
sleep 1
snapshot=$(cat "$work/counter.out")
now=$(tail -n1 <<<"$snapshot")
echo "restored as pid $pid (state $(ps -o stat= -p "$pid")), counted on to $now"
if [ "$(grep -c . <<<"$snapshot")" -ne "$now" ]; then
    echo "FAIL: the count has a gap or a repeat" >&2; exit 1
fi
echo "no number lost or repeated: 1..$now in order"
$ccr show "$work/images/stats.img"
