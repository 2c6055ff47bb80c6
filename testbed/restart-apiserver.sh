#!/usr/bin/env bash
# Restarts the test bed's kube-apiserver in STATE_DIR with the same command line and the
# same etcd (so every object survives): SIGTERM to the running process (SIGKILL after a
# grace period), DOWN_SECONDS with no API server at all, then the same argv again, logging
# to the same log file, its PID appended to STATE_DIR/pids (down.sh stops it), and a wait
# for /readyz. The e2e tests call it through TESTBED_RESTART_APISERVER (up.sh's env file).
#
# Usage: testbed/restart-apiserver.sh STATE_DIR [DOWN_SECONDS]
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -ge 1 && $# -le 2 ]] || tb_die "usage: $0 STATE_DIR [DOWN_SECONDS]"
STATE_DIR=$(cd "$1" && pwd)
DOWN=${2:-0}
[[ $DOWN =~ ^[0-9]+(\.[0-9]+)?$ ]] || tb_die "DOWN_SECONDS must be a number: $DOWN"
PIDS="$STATE_DIR/pids"
PKI="$STATE_DIR/pki"
LOG="$STATE_DIR/logs/kube-apiserver.log"
GRACE=${TESTBED_STOP_GRACE_SECONDS:-10}

# ours PID: a live process up.sh (or this script) started for this STATE_DIR (see down.sh).
ours() {
  { tr '\0' '\n' <"/proc/$1/environ"; } 2>/dev/null | grep -qxF "TESTBED_DIR=$STATE_DIR"
}
zombie() {
  { grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; } 2>/dev/null
}

# The running kube-apiserver of this bed: the last of ours whose argv[0] is kube-apiserver.
pid=""
while read -r p; do
  [[ $p =~ ^[0-9]+$ ]] || continue
  if ! ours "$p" || zombie "$p"; then continue; fi
  exe=$({ tr '\0' '\n' <"/proc/$p/cmdline"; } 2>/dev/null | head -n 1)
  [[ $(basename "$exe") == kube-apiserver ]] && pid=$p
done <"$PIDS"
[[ -n $pid ]] || tb_die "no running kube-apiserver of $STATE_DIR in $PIDS"

# Its exact command line, argument by argument.
mapfile -d '' -t argv <"/proc/$pid/cmdline"
port=""
for a in "${argv[@]}"; do
  [[ $a == --secure-port=* ]] && port=${a#--secure-port=}
done
[[ -n $port ]] || tb_die "kube-apiserver (pid $pid) has no --secure-port in its command line"

START=$SECONDS
tb_log "stopping kube-apiserver (pid $pid)"
kill -TERM "$pid"
deadline=$((SECONDS + GRACE))
killed=0
while ours "$pid" && ! zombie "$pid"; do
  if ((SECONDS >= deadline)); then
    ((killed == 0)) || tb_die "kube-apiserver (pid $pid) did not stop"
    tb_log "kube-apiserver still running after ${GRACE}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    killed=1
    deadline=$((SECONDS + 5))
  fi
  sleep 0.1
done
# The port must be free before the new process binds it.
api_up() {
  curl -s -o /dev/null --max-time 1 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" \
    --key "$PKI/admin.key" "https://127.0.0.1:$port/readyz"
}
deadline=$((SECONDS + 10))
while api_up; do
  ((SECONDS < deadline)) || tb_die "something still answers on port $port"
  sleep 0.1
done
tb_log "kube-apiserver stopped ($((SECONDS - START))s); down for ${DOWN}s"
sleep "$DOWN"

export TESTBED_DIR="$STATE_DIR"
echo "----- restarted by restart-apiserver.sh -----" >>"$LOG"
setsid "${argv[@]}" </dev/null >>"$LOG" 2>&1 &
echo $! >>"$PIDS"
new=$!
tb_log "started kube-apiserver again (pid $new)"

api_ready() {
  curl -sf --max-time 2 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" \
    --key "$PKI/admin.key" "https://127.0.0.1:$port/readyz"
}
deadline=$((SECONDS + 120))
until api_ready >/dev/null 2>&1; do
  kill -0 "$new" 2>/dev/null || {
    tail -n 40 "$LOG" >&2
    tb_die "kube-apiserver exited on restart"
  }
  ((SECONDS < deadline)) || tb_die "kube-apiserver not ready 120s after the restart"
  sleep 0.2
done
tb_log "kube-apiserver ready again ($((SECONDS - START))s after the stop)"
