#!/usr/bin/env bash
# Runs CMD with only the backing services of testbed/services/up.sh (no control plane,
# no moto): a temporary STATE_DIR, services up, STATE_DIR/services.env exported, CMD,
# and the services always stopped (testbed/down.sh) when CMD ends, fails or is
# interrupted. Exits with CMD's status. `make probe-selftest` uses it.
#
# Usage: testbed/services/with-services.sh CMD [ARG...]
#   TESTBED_KEEP_STATE=1   keep the state dir (logs, certs) afterwards
#   TESTBED_STATE_PARENT   where the state dir is made (default: $TMPDIR or /tmp)
set -euo pipefail

# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

[[ $# -ge 1 ]] || tb_die "usage: $0 CMD [ARG...]"

STATE_DIR=$(mktemp -d "${TESTBED_STATE_PARENT:-${TMPDIR:-/tmp}}/grafana-ha-services.XXXXXX")

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  trap '' PIPE
  set +e
  "$TESTBED_ROOT/down.sh" "$STATE_DIR" || rc=1
  if [[ ${TESTBED_KEEP_STATE:-0} == 1 || $rc -ne 0 ]]; then
    tb_log "state and logs kept in $STATE_DIR"
  else
    rm -rf "$STATE_DIR"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$TESTBED_ROOT/services/up.sh" "$STATE_DIR"
# shellcheck source=/dev/null
source "$STATE_DIR/services.env"
export TESTBED_DIR="$STATE_DIR"

tb_log "running: $*"
set +e
"$@"
rc=$?
set -e
tb_log "command exited with status $rc"
exit "$rc"
