#!/usr/bin/env bash
# The local demo: starts the test bed in STATE_DIR (default .testbed), seeds the local AWS
# with the "demo" resources, installs the CRDs, builds and runs the operator, applies
# examples/grafanacluster-postgres-redis-efs.yaml into namespace grafana, waits for it to
# be Ready and shows what the operator made. Then it waits; Ctrl-C stops the operator and
# the test bed.
#
# Usage: testbed/demo.sh [STATE_DIR]     (make demo)
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STATE_ARG=${1:-$REPO_ROOT/.testbed}
mkdir -p "$STATE_ARG"
STATE_DIR=$(cd "$STATE_ARG" && pwd)
EXAMPLE="$REPO_ROOT/examples/grafanacluster-postgres-redis-efs.yaml"
NS=grafana
OPERATOR_PID=""

[[ -f $EXAMPLE ]] || tb_die "$EXAMPLE not found"
[[ -d $REPO_ROOT/crds ]] || tb_die "$REPO_ROOT/crds not found (make crds)"

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # Finish the cleanup even if stdout is a pipe whose reader died with the Ctrl-C
  # (make demo | tee log): no SIGPIPE, no exit on a failed write.
  trap '' PIPE
  set +e
  echo 2>/dev/null
  if [[ -n $OPERATOR_PID ]] && kill -0 "$OPERATOR_PID" 2>/dev/null; then
    tb_log "stopping the operator (pid $OPERATOR_PID)"
    kill -TERM "$OPERATOR_PID" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$OPERATOR_PID" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$OPERATOR_PID" 2>/dev/null || true
    wait "$OPERATOR_PID" 2>/dev/null || true
  fi
  "$TESTBED_ROOT/down.sh" "$STATE_DIR" || rc=1
  exit "$rc"
}
trap cleanup EXIT
# Ctrl-C is how a demo ends, so it is a clean exit.
trap 'exit 0' INT
trap 'exit 143' TERM

# A bed left over from an earlier run (say, after a kill -9) is stopped first.
"$TESTBED_ROOT/down.sh" "$STATE_DIR" >/dev/null
"$TESTBED_ROOT/up.sh" "$STATE_DIR"
# shellcheck source=/dev/null
source "$STATE_DIR/env"

tb_log "seeding the local AWS ($AWS_ENDPOINT_URL)"
"$TESTBED_PYTHON" "$TESTBED_ROOT/seed_aws.py" --set demo

tb_log "installing the CRDs"
kubectl apply -f "$REPO_ROOT/crds/"
kubectl wait --for=condition=Established crd --all --timeout=60s

# A debug build: it shares the test suite's build cache, so a demo after `make test` (or
# the other way round) compiles only the operator itself.
tb_log "building the operator (cargo build)"
(cd "$REPO_ROOT" && cargo build --bin grafana-ha-operator)
tb_log "starting the operator; log: $STATE_DIR/logs/operator.log"
# The metrics port is picked free like the bed's own ports.
METRICS_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Kept in this process group on purpose: Ctrl-C reaches it too.
(cd "$REPO_ROOT" && exec cargo run --quiet --bin grafana-ha-operator -- run --metrics-addr "127.0.0.1:$METRICS_PORT") >"$STATE_DIR/logs/operator.log" 2>&1 &
OPERATOR_PID=$!

kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -n "$NS" -f "$EXAMPLE"

tb_log "waiting for GrafanaCluster grafana to be Ready (up to 300s)"
ready=1
if ! kubectl wait --for=condition=Ready gfc/grafana -n "$NS" --timeout=300s; then
  ready=0
  tb_log "GrafanaCluster did not become Ready; its status and the operator's log follow"
  kubectl describe gfc/grafana -n "$NS" || true
  tail -n 50 "$STATE_DIR/logs/operator.log" || true
fi

echo
echo "===== kubectl get gfc -A"
kubectl get gfc -A
echo
echo "===== kubectl get deploy,svc,pvc,pv,pdb,secret -n $NS"
kubectl get deploy,svc,pvc,pv,pdb,secret -n "$NS"
echo
# Names and sources of the containers' environment, never the values.
for d in $(kubectl get deploy -n "$NS" -o name); do
  # Literal values are shown: the operator never puts a secret in one (Grafana reads
  # secrets from files through $__file{...}; the files' Secrets and keys are listed below,
  # never their values).
  echo "===== env wiring of $d"
  kubectl get "$d" -n "$NS" -o go-template='{{range .spec.template.spec.containers}}container {{.name}}{{"\n"}}{{range .env}}  {{.name}}{{if .value}} = {{.value}}{{end}}{{with .valueFrom}}{{with .secretKeyRef}} <- Secret {{.name}} key {{.key}}{{end}}{{with .fieldRef}} <- {{.fieldPath}}{{end}}{{end}}{{"\n"}}{{end}}{{end}}'
  echo "===== secret files of $d (/etc/grafana/secrets)"
  # shellcheck disable=SC2016 # a go-template variable, not a shell one
  kubectl get "$d" -n "$NS" -o go-template='{{range .spec.template.spec.volumes}}{{with .projected}}{{range .sources}}{{with .secret}}{{$s := .name}}{{range .items}}  {{.path}} <- Secret {{$s}} key {{.key}}{{"\n"}}{{end}}{{end}}{{end}}{{end}}{{end}}'
done

echo
echo "KUBECONFIG=$KUBECONFIG"
echo "In another shell: . $STATE_DIR/env && kubectl get gfc,pods -n $NS"
echo "Operator log: $STATE_DIR/logs/operator.log"
echo "Operator metrics: curl -s http://127.0.0.1:$METRICS_PORT/metrics"
if ((!ready)) && [[ ! -t 0 ]]; then
  exit 1
fi
echo "Press Ctrl-C to stop the operator and the test bed."
while kill -0 "$OPERATOR_PID" 2>/dev/null; do
  sleep 1
done
wait "$OPERATOR_PID" || tb_log "the operator exited with status $?"
tail -n 30 "$STATE_DIR/logs/operator.log" || true
exit 1
