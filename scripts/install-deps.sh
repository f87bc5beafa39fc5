#!/usr/bin/env bash
# Installs what building and testing ccr needs on Debian 12 (run as root);
# iproute2: the network namespace tests add devices and routes with ip.
# Idempotent: does nothing when everything is there.
set -euo pipefail
need=()
for pkg in libclang-dev protobuf-compiler pkg-config make gcc python3 busybox-static iproute2; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo (Rust stable) is required" >&2; exit 1; }
