#!/usr/bin/env bash
# ccr benchmarks (issue 5): builds ccr (release) and the workloads, then runs
# bench/bench.py, which prints a table and writes the same data as JSON.
# Run as root. Arguments go to bench.py (--runs N, --only a,b, --json FILE, --skip-2g).
# criu is compared against when installed and `criu check` passes; this script
# does not install it (set CCR_BENCH_INSTALL_CRIU=1 to apt-get install it first).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
bash scripts/install-deps.sh
if [ "${CCR_BENCH_INSTALL_CRIU:-0}" = 1 ] && ! command -v criu >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq criu >/dev/null
fi
log=$(mktemp /tmp/ccr-bench-build.XXXXXX)
echo "building ccr (release) and the workloads..." >&2
if ! { make -s lib && make -s -C bench/workloads; } >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
fi
rm -f "$log"
exec python3 bench/bench.py "$@"
