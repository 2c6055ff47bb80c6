#!/usr/bin/env bash
# Runs the probe's IPv6 gossip test in a private network namespace (unshare -n): its lo
# gets IPv6 addresses that stand for IPv6 pod addresses (fd00:cafe::2..4), so replicas
# gossip on [addr]:port as on an IPv6 cluster. Nothing on the machine's own network
# changes; the namespace goes away with the test. Needs root (CI runs as root); skipped
# with a note otherwise.
#
# Usage: testbed/probe/ipv6-selftest.sh
set -euo pipefail

# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

if ((EUID != 0)) || ! command -v unshare >/dev/null || ! command -v ip >/dev/null; then
  tb_log "ipv6-selftest: skipped (needs root, unshare and ip to make a private network namespace)"
  exit 0
fi
BIN="$TESTBED_CACHE/probe/probe.test"
mkdir -p "$(dirname "$BIN")"
(cd "$TESTBED_ROOT/probe" && GOFLAGS=-p=1 GOTOOLCHAIN=local CGO_ENABLED=0 go test -c -o "$BIN" .)
ADDRS=fd00:cafe::2,fd00:cafe::3,fd00:cafe::4
# shellcheck disable=SC2016 # expanded inside the namespace's shell
unshare --net -- bash -c '
  set -euo pipefail
  ip link set lo up
  for a in ${0//,/ }; do ip -6 addr add "$a/128" dev lo nodad; done
  PROBE_IPV6_ADDRS=$0 "$1" -test.run "IPv6" -test.v -test.count=1
' "$ADDRS" "$BIN"
