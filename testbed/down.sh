#!/usr/bin/env bash
# Stops the test bed started by up.sh in STATE_DIR: every PID in STATE_DIR/pids gets
# SIGTERM, then SIGKILL after a grace period; checks they are gone; removes etcd's data.
# The backing services in STATE_DIR/services/pids (testbed/services/up.sh) likewise, and
# their data.
# Logs and certificates stay for inspection. Safe to run twice or on a half-started bed.
#
# Usage: testbed/down.sh STATE_DIR
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -eq 1 ]] || tb_die "usage: $0 STATE_DIR"
if [[ ! -d $1 ]]; then
  tb_log "$1 does not exist; nothing to stop"
  exit 0
fi
STATE_DIR=$(cd "$1" && pwd)
PIDS="$STATE_DIR/pids"
GRACE=${TESTBED_STOP_GRACE_SECONDS:-10}
START=$SECONDS

# ours PID: true while PID is a live process started by up.sh for this STATE_DIR. up.sh
# gives each one TESTBED_DIR=STATE_DIR in its environment, so a PID number reused by
# some unrelated process since is left alone.
ours() {
  { tr '\0' '\n' <"/proc/$1/environ"; } 2>/dev/null | grep -qxF "TESTBED_DIR=$STATE_DIR"
}

# zombie PID: true while PID has exited but its parent has not reaped it yet. Our
# processes' parent (up.sh) is gone, so init reaps them, a moment after they exit.
zombie() {
  { grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; } 2>/dev/null
}

pids=()
# services/pids: the backing services (testbed/services/up.sh), which start alongside the
# control plane and write their own list.
for f in "$PIDS" "$STATE_DIR/services/pids"; do
  [[ -f $f ]] || continue
  while read -r pid; do
    [[ $pid =~ ^[0-9]+$ ]] || continue
    if ours "$pid"; then
      pids+=("$pid")
    fi
  done <"$f"
done

if ((${#pids[@]})); then
  tb_log "stopping ${#pids[@]} processes: ${pids[*]}"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  deadline=$((SECONDS + GRACE))
  while ((SECONDS < deadline)); do
    alive=()
    for pid in "${pids[@]}"; do
      if ours "$pid"; then alive+=("$pid"); fi
    done
    ((${#alive[@]})) || break
    sleep 0.2
  done
  left=()
  for pid in "${pids[@]}"; do
    if ours "$pid"; then left+=("$pid"); fi
  done
  if ((${#left[@]})); then
    tb_log "still running after ${GRACE}s, sending SIGKILL: ${left[*]}"
    kill -KILL "${left[@]}" 2>/dev/null || true
    sleep 0.5
  fi
  for pid in "${pids[@]}"; do
    if ours "$pid"; then
      tb_die "process $pid ($({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | cut -c1-80)) did not stop"
    fi
  done
  # Wait for init to reap them, so that nothing, not even a <defunct> entry, is left.
  deadline=$((SECONDS + 5))
  while ((SECONDS < deadline)); do
    zombies=()
    for pid in "${pids[@]}"; do
      if zombie "$pid"; then zombies+=("$pid"); fi
    done
    ((${#zombies[@]})) || break
    sleep 0.1
  done
  if ((${#zombies[@]})); then
    tb_log "exited but not yet reaped by init (they hold no ports or files): ${zombies[*]}"
  fi
else
  tb_log "no running processes recorded in $PIDS"
fi

: >"$PIDS" 2>/dev/null || true
rm -rf "$STATE_DIR/etcd"
if [[ -d $STATE_DIR/services ]]; then
  : >"$STATE_DIR/services/pids" 2>/dev/null || true
  # The services' data dir is a link to /tmp when the state dir was out of their reach.
  if [[ -L $STATE_DIR/services/data ]]; then
    rm -rf "$(readlink -f "$STATE_DIR/services/data")"
  fi
  rm -rf "$STATE_DIR/services/data"
fi
tb_log "test bed in $STATE_DIR stopped in $((SECONDS - START))s"
