#!/usr/bin/env bash
# Restarts one process of the test bed in STATE_DIR (kube-apiserver, or etcd) with the same
# command line and the same data (so every object survives): SIGTERM to the running process
# (SIGKILL after a grace period), DOWN_SECONDS with it stopped, then the same argv again,
# logging to the same log file, its PID appended to STATE_DIR/pids (down.sh stops it), and
# a wait for its health endpoint. The e2e tests call it through TESTBED_RESTART_APISERVER
# and TESTBED_RESTART_ETCD (up.sh's env file; restart-apiserver.sh is this script for
# kube-apiserver).
#
# Usage: testbed/restart-component.sh STATE_DIR kube-apiserver|etcd [DOWN_SECONDS]
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -ge 2 && $# -le 3 ]] || tb_die "usage: $0 STATE_DIR kube-apiserver|etcd [DOWN_SECONDS]"
STATE_DIR=$(cd "$1" && pwd)
NAME=$2
[[ $NAME == kube-apiserver || $NAME == etcd ]] || tb_die "cannot restart $NAME"
DOWN=${3:-0}
[[ $DOWN =~ ^[0-9]+(\.[0-9]+)?$ ]] || tb_die "DOWN_SECONDS must be a number: $DOWN"
PIDS="$STATE_DIR/pids"
PKI="$STATE_DIR/pki"
LOG="$STATE_DIR/logs/$NAME.log"
GRACE=${TESTBED_STOP_GRACE_SECONDS:-10}

# ours PID: a live process up.sh (or this script) started for this STATE_DIR (see down.sh).
ours() {
  { tr '\0' '\n' <"/proc/$1/environ"; } 2>/dev/null | grep -qxF "TESTBED_DIR=$STATE_DIR"
}
zombie() {
  { grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; } 2>/dev/null
}

# The running process of this bed: the last of ours whose argv[0] is NAME.
pid=""
while read -r p; do
  [[ $p =~ ^[0-9]+$ ]] || continue
  if ! ours "$p" || zombie "$p"; then continue; fi
  exe=$({ tr '\0' '\n' <"/proc/$p/cmdline"; } 2>/dev/null | head -n 1)
  [[ $(basename "$exe") == "$NAME" ]] && pid=$p
done <"$PIDS"
[[ -n $pid ]] || tb_die "no running $NAME of $STATE_DIR in $PIDS"

# Its exact command line, argument by argument.
mapfile -d '' -t argv <"/proc/$pid/cmdline"
port=""
for a in "${argv[@]}"; do
  [[ $a == --secure-port=* ]] && port=${a#--secure-port=}
  [[ $a == --listen-client-urls=* ]] && port=${a##*:}
done
[[ -n $port ]] || tb_die "$NAME (pid $pid) names no port in its command line"

# Whether it answers on its port (any answer), and whether it is healthy.
answers() {
  if [[ $NAME == etcd ]]; then
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/health"
  else
    curl -s -o /dev/null --max-time 1 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" \
      --key "$PKI/admin.key" "https://127.0.0.1:$port/readyz"
  fi
}
healthy() {
  if [[ $NAME == etcd ]]; then
    curl -sf --max-time 2 "http://127.0.0.1:$port/health"
  else
    curl -sf --max-time 2 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" \
      --key "$PKI/admin.key" "https://127.0.0.1:$port/readyz"
  fi
}

START=$SECONDS
tb_log "stopping $NAME (pid $pid)"
kill -TERM "$pid"
deadline=$((SECONDS + GRACE))
killed=0
while ours "$pid" && ! zombie "$pid"; do
  if ((SECONDS >= deadline)); then
    ((killed == 0)) || tb_die "$NAME (pid $pid) did not stop"
    tb_log "$NAME still running after ${GRACE}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    killed=1
    deadline=$((SECONDS + 5))
  fi
  sleep 0.1
done
# The port must be free before the new process binds it.
deadline=$((SECONDS + 10))
while answers; do
  ((SECONDS < deadline)) || tb_die "something still answers on port $port"
  sleep 0.1
done
tb_log "$NAME stopped ($((SECONDS - START))s); down for ${DOWN}s"
sleep "$DOWN"

export TESTBED_DIR="$STATE_DIR"
echo "----- restarted by restart-component.sh -----" >>"$LOG"
setsid "${argv[@]}" </dev/null >>"$LOG" 2>&1 &
echo $! >>"$PIDS"
new=$!
tb_log "started $NAME again (pid $new)"

deadline=$((SECONDS + 120))
until healthy >/dev/null 2>&1; do
  kill -0 "$new" 2>/dev/null || {
    tail -n 40 "$LOG" >&2
    tb_die "$NAME exited on restart"
  }
  ((SECONDS < deadline)) || tb_die "$NAME not healthy 120s after the restart"
  sleep 0.2
done
tb_log "$NAME healthy again ($((SECONDS - START))s after the stop)"
