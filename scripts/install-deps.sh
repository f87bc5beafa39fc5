#!/usr/bin/env bash
# Installs what building and testing ccr needs on Debian 12 (run as root);
# iproute2: the network namespace tests add devices and routes with ip; lxc and
# dnsmasq-base: the LXC test (its container gets DHCP from the test's own bridge);
# lxc-dev: its program that drives liblxc's checkpoint, restore and migrate calls.
# Idempotent: does nothing when everything is there.
set -euo pipefail
need=()
for pkg in libclang-dev protobuf-compiler pkg-config make gcc python3 busybox-static iproute2 lxc lxc-dev dnsmasq-base; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    apt-get update -qq
    # Installing starts no service (lxc-net would make a bridge on the machine's
    # own network): a policy that refuses every start, for the install only.
    policy=/usr/sbin/policy-rc.d
    made_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    if [ -n "$made_policy" ]; then rm -f "$policy"; fi
fi
command -v cargo >/dev/null || { echo "cargo (Rust stable) is required" >&2; exit 1; }
