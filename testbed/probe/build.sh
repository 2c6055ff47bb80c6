#!/usr/bin/env bash
# Builds the wiring probe into the user's cache (never into the checkout):
#   ${GRAFANA_HA_CACHE:-~/.cache/grafana-ha-operator}/probe/probe
# Prints the binary's path on stdout. Go modules come from the Go module proxy at the
# versions pinned in go.mod/go.sum; -p=1 keeps the build to one core.
#
# Usage: testbed/probe/build.sh [--print-path]
set -euo pipefail

# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

OUT="$TESTBED_CACHE/probe/probe"
if [[ ${1:-} == --print-path ]]; then
  echo "$OUT"
  exit 0
fi
command -v go >/dev/null || tb_die "go is required to build the probe"
mkdir -p "$(dirname "$OUT")"
cd "$TESTBED_ROOT/probe"
start=$SECONDS
GOFLAGS=-p=1 GOTOOLCHAIN=local CGO_ENABLED=0 go build -trimpath -o "$OUT.tmp" .
mv "$OUT.tmp" "$OUT"
tb_log "probe built in $((SECONDS - start))s: $OUT"
echo "$OUT"
