#!/usr/bin/env bash
# The Helm chart and the plain manifests against a real control plane (make chart-test):
#
#   1. helm lint; helm template with default and other values (RBAC without wildcards,
#      ServiceMonitor and PDB switches, watched namespaces, refused combinations);
#   2. the rendered chart and `kubectl kustomize deploy/` through `kubectl apply
#      --dry-run=server` (schema, admission, Pod Security "restricted");
#   3. helm install; then the operator binary is run outside a pod "from the chart's
#      settings": as the chart's ServiceAccount (a token from `kubectl create token`) with
#      the environment the installed Deployment gives its container. The example
#      GrafanaCluster must become Ready: a verb missing from the chart's RBAC shows as 403;
#   4. two instances at once: only the leader reconciles; SIGTERM to it and the standby
#      takes over (the Lease is released) and repairs a hand-edited Service; SIGKILL to
#      that one and the other takes over once the Lease expires, and recreates a Service
#      deleted while nobody led;
#   5. the Argo CD health check (deploy/argocd/) on the live objects: Ready -> Healthy,
#      unresolvable -> Degraded, stale generation -> Progressing;
#   6. helm upgrade to watched namespaces (Roles instead of cluster-wide rights; the
#      operator must still get the cluster Ready), the documented CRD upgrade, then helm
#      uninstall (the CRD stays).
#
# Ends with "chart_test: N passed, N failed"; exits 1 when anything failed.
#
# Usage: testbed/with-testbed.sh testbed/chart/chart-test.sh OPERATOR_BINARY
#   (needs the bed's environment: KUBECONFIG, TESTBED_DIR, MOTO_URL, TESTBED_PYTHON...)
set -euo pipefail

# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

[[ $# -eq 1 ]] || tb_die "usage: $0 OPERATOR_BINARY"
[[ -x $1 ]] || tb_die "$1 is not an executable (cargo build first)"
OPERATOR_BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
for v in TESTBED_DIR KUBECONFIG TESTBED_APISERVER_URL MOTO_URL TESTBED_PYTHON; do
  [[ -n ${!v:-} ]] || tb_die "$v is not set: run under testbed/with-testbed.sh"
done

CHART="$REPO_ROOT/deploy/helm/grafana-ha-operator"
HEALTH_LUA="$REPO_ROOT/deploy/argocd/grafanacluster-health.lua"
LUA_TEST="$TESTBED_ROOT/chart/argocd_health_test.lua"
TOOL=("$TESTBED_PYTHON" "$TESTBED_ROOT/chart/chart_tool.py")
EXAMPLE="$REPO_ROOT/examples/grafanacluster-postgres-redis-efs.yaml"
RELEASE=grafana-ha-operator
OP_NS=grafana-ha-system
SA=grafana-ha-operator
APP_NS=grafana
WORK="${TESTBED_DIR:?}/chart-test"
LOGS="$TESTBED_DIR/logs"
mkdir -p "$WORK" "$LOGS"

LUAS=()
for l in lua5.4 lua5.1; do
  command -v "$l" >/dev/null && LUAS+=("$l")
done
[[ ${LUAS[0]:-} == lua5.4 ]] || tb_die "lua5.4 is required (apt-get install lua5.4)"

START=$SECONDS
passed=0
failed=0
declare -A OPERATOR_PIDS=()
declare -A OPERATOR_PORTS=()

pass() {
  passed=$((passed + 1))
  printf 'ok    [%3ss] %s\n' "$((SECONDS - START))" "$1"
}
fail() {
  failed=$((failed + 1))
  printf 'FAIL  [%3ss] %s\n' "$((SECONDS - START))" "$1"
  if [[ -n ${2:-} && -s $2 ]]; then
    tail -n 25 "$2" | sed 's/^/      | /'
  fi
}
# check DESCRIPTION CMD...: CMD's output is shown only when it fails.
check() {
  local desc=$1
  shift
  if "$@" >"$WORK/check.out" 2>&1; then
    pass "$desc"
  else
    fail "$desc" "$WORK/check.out"
  fi
}
# wait_for SECONDS CMD...: polls CMD until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}
phase() { tb_log "== $*"; }

# --- operators run as processes of this script -----------------------------------------

# start_operator NAME IDENTITY: runs the binary with only the chart's environment, the SA
# kubeconfig and the local AWS's dummy keys (env -i: nothing else leaks in, least of all
# the bed's admin kubeconfig); /metrics on a free loopback port instead of 0.0.0.0:8080.
start_operator() {
  local name=$1 identity=$2 port
  port=$("${TOOL[@]}" free-port)
  kubectl get deployment "$RELEASE" -n "$OP_NS" -o json >"$WORK/deployment-$name.json"
  "${TOOL[@]}" env "$identity" <"$WORK/deployment-$name.json" >"$WORK/env-$name"
  local -a chart_env
  mapfile -t chart_env <"$WORK/env-$name"
  env -i HOME="$WORK" PATH=/usr/bin:/bin KUBECONFIG="$WORK/sa.kubeconfig" \
    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true \
    "${chart_env[@]}" \
    "$OPERATOR_BIN" run --identity "$identity" --metrics-addr "127.0.0.1:$port" \
    >"$LOGS/operator-$name.log" 2>&1 &
  OPERATOR_PIDS[$name]=$!
  OPERATOR_PORTS[$name]=$port
}

# stop_operator NAME: SIGTERM, as the kubelet does; returns the exit status.
stop_operator() {
  local name=$1 pid=${OPERATOR_PIDS[$1]:-} rc=0
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" || rc=$?
  unset "OPERATOR_PIDS[$name]"
  return "$rc"
}

SUMMARY_PRINTED=0
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local rc=$? name
  for name in "${!OPERATOR_PIDS[@]}"; do
    stop_operator "$name" || true
  done
  if ((!SUMMARY_PRINTED)); then
    echo "chart-test stopped early (status $rc); logs in $LOGS"
    echo "chart_test: $passed passed, $((failed + 1)) failed"
    exit 1
  fi
}
trap cleanup EXIT

http_get() { curl -sf --max-time 3 "http://127.0.0.1:${OPERATOR_PORTS[$1]}$2"; }
# metric NAME SERIES: the value of one series (0 when absent).
metric() {
  http_get "$1" /metrics | awk -v s="$2" '$1 == s { v = $2 } END { print v + 0 }'
}
metric_is() { [[ $(metric "$1" "$2") == "$3" ]]; }
metric_positive() { (($(metric "$1" "$2") > 0)); }
# An RBAC denial reads "... is forbidden: User ... cannot VERB resource ..." (403 Forbidden).
no_forbidden() {
  ! grep -i 'forbidden' "$LOGS/operator-$1.log"
}
lease_holder() {
  kubectl get lease "$RELEASE" -n "$OP_NS" -o jsonpath='{.spec.holderIdentity}'
}
holder_is() { [[ $(lease_holder) == "$1" ]]; }
condition_is() { # condition_is GFC TYPE STATUS
  [[ $(kubectl get gfc "$1" -n "$APP_NS" -o "jsonpath={.status.conditions[?(@.type==\"$2\")].status}") == "$3" ]]
}
# health NAME EXPECTED [MESSAGE_PART]: the Argo CD check on the live GrafanaCluster, with
# every Lua interpreter present.
health() {
  local gfc=$1 want=$2 part=${3:-} lua
  kubectl get gfc "$gfc" -n "$APP_NS" -o json >"$WORK/gfc-$gfc.json"
  for lua in "${LUAS[@]}"; do
    echo "$lua:"
    "$lua" "$LUA_TEST" "$HEALTH_LUA" "$WORK/gfc-$gfc.json" "$want" ${part:+"$part"} || return 1
  done
}
# Prints why the example did not get Ready.
explain() {
  kubectl describe gfc -n "$APP_NS" | tail -n 30 || true
  local name
  for name in "$@"; do
    echo "--- operator $name log (last 40 lines)"
    tail -n 40 "$LOGS/operator-$name.log" || true
  done
}

# --- 1. lint and template ---------------------------------------------------------------
phase "helm lint and helm template"
check "helm lint" helm lint "$CHART"
check "helm lint --strict (values that set every switch)" helm lint --strict "$CHART" \
  --set metrics.serviceMonitor.enabled=true --set 'watchNamespaces={a,b}' \
  --set aws.endpointUrl=http://127.0.0.1:1 --set rbac.ownerReferencesPermissionEnforcement=true

template() { helm template "$RELEASE" "$CHART" --namespace "$OP_NS" "$@"; }
template >"$WORK/rendered.yaml"
has() { grep -Eq "$2" "$1"; }
lacks() { ! grep -Eq "$2" "$1"; }

service_monitor_switch() {
  template --set metrics.serviceMonitor.enabled=true \
    --set metrics.serviceMonitor.labels.release=prom >"$WORK/t-sm.yaml"
  has "$WORK/t-sm.yaml" '^kind: ServiceMonitor' && has "$WORK/t-sm.yaml" 'release: prom' &&
    lacks "$WORK/rendered.yaml" '^kind: ServiceMonitor'
}
check "ServiceMonitor only when enabled, with its labels" service_monitor_switch
pdb_switch() {
  template --set replicaCount=1 >"$WORK/t-one.yaml"
  has "$WORK/rendered.yaml" '^kind: PodDisruptionBudget' && lacks "$WORK/t-one.yaml" '^kind: PodDisruptionBudget'
}
check "operator PDB with 2 replicas, none with 1" pdb_switch
watched_namespaces() {
  template --set 'watchNamespaces={team-a, team-b,team-a}' >"$WORK/t-ns.yaml"
  [[ $(grep -c '^kind: Role$' "$WORK/t-ns.yaml") == 3 ]] && # team-a, team-b, the Lease
    has "$WORK/t-ns.yaml" 'namespace: team-a' && has "$WORK/t-ns.yaml" 'namespace: team-b' &&
    grep -A1 'name: WATCH_NAMESPACES' "$WORK/t-ns.yaml" | grep -q '"team-a,team-b"'
}
check "watchNamespaces: a Role in team-a and in team-b, WATCH_NAMESPACES=team-a,team-b" watched_namespaces
endpoint_switch() {
  template --set aws.endpointUrl=http://moto:5000 >"$WORK/t-endpoint.yaml"
  has "$WORK/t-endpoint.yaml" 'name: AWS_ENDPOINT_URL' && lacks "$WORK/rendered.yaml" 'AWS_ENDPOINT_URL'
}
check "aws.endpointUrl sets AWS_ENDPOINT_URL (and only then)" endpoint_switch
refuses_two_writers() {
  ! template --set leaderElection.enabled=false >"$WORK/t-noleader.yaml" 2>&1 &&
    has "$WORK/t-noleader.yaml" 'needs replicaCount: 1' &&
    template --set leaderElection.enabled=false --set replicaCount=1 >/dev/null
}
check "leader election off: refused with 2 replicas, accepted with 1" refuses_two_writers

# --- 2. server-side dry runs -------------------------------------------------------------
phase "kubectl apply --dry-run=server"
# The namespace as the plain manifests make it: Pod Security "restricted" enforced.
kubectl apply -f "$REPO_ROOT/deploy/manifests/namespace.yaml" >/dev/null
dry_run() { # dry_run FILE: fails on an error or any warning (e.g. Pod Security)
  kubectl apply --dry-run=server -f "$1" -o json >"$1.json" 2>"$1.err" || { cat "$1.err"; return 1; }
  if grep -q . "$1.err"; then cat "$1.err"; return 1; fi
}
check "the rendered chart passes the API server's dry run, without warnings" dry_run "$WORK/rendered.yaml"
check_rbac() { "${TOOL[@]}" check-rbac <"$1"; }
check "no wildcard in any rule of the chart's RBAC" check_rbac "$WORK/rendered.yaml.json"
kustomize() { kubectl kustomize "$REPO_ROOT/deploy" >"$WORK/kustomized.yaml"; }
check "kubectl kustomize deploy/" kustomize
check "the kustomized manifests pass the API server's dry run, without warnings" dry_run "$WORK/kustomized.yaml"
check "no wildcard in the plain manifests' RBAC" check_rbac "$WORK/kustomized.yaml.json"

# --- 3. install, then the operator as the chart's ServiceAccount -------------------------
phase "helm install, seeding AWS"
"$TESTBED_PYTHON" "$TESTBED_ROOT/seed_aws.py" --set demo >"$LOGS/seed-aws.log" 2>&1 &
seed_pid=$!
check "helm install (pods Ready under Pod Security restricted)" \
  helm install "$RELEASE" "$CHART" --namespace "$OP_NS" \
  --set aws.region=us-east-1 --set aws.endpointUrl="$MOTO_URL" --wait --timeout 90s
check "the CRD from the chart's crds/ is Established" \
  kubectl wait --for=condition=Established crd/grafanaclusters.grafana-ha.io --timeout=30s
check "AWS seeded (seed_aws.py --set demo)" wait "$seed_pid"

kubectl create namespace "$APP_NS" >/dev/null
kubectl apply -n "$APP_NS" -f "$EXAMPLE" >/dev/null
# A cluster whose tag nothing carries: discovery finds nothing.
kubectl apply -f - >/dev/null <<EOF
apiVersion: grafana-ha.io/v1alpha1
kind: GrafanaCluster
metadata:
  name: nowhere
  namespace: $APP_NS
spec:
  replicas: 2
  aws:
    region: us-east-1
    tags:
      grafana-ha.io/cluster: nobody-has-this-tag
  database:
    credentials:
      rdsManagedSecret: true
EOF

TOKEN=$(kubectl create token "$SA" -n "$OP_NS" --duration=1h)
kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' |
  base64 -d >"$WORK/ca.crt"
(
  export KUBECONFIG="$WORK/sa.kubeconfig"
  kubectl config set-cluster testbed --server="$TESTBED_APISERVER_URL" \
    --certificate-authority="$WORK/ca.crt" --embed-certs=true
  kubectl config set-credentials "$SA" --token="$TOKEN"
  kubectl config set-context "$SA" --cluster=testbed --user="$SA" --namespace="$OP_NS"
  kubectl config use-context "$SA"
) >/dev/null
chmod 600 "$WORK/sa.kubeconfig"
whoami() {
  [[ $(kubectl --kubeconfig "$WORK/sa.kubeconfig" auth whoami -o jsonpath='{.status.userInfo.username}') == \
    "system:serviceaccount:$OP_NS:$SA" ]]
}
check "the kubeconfig authenticates as the chart's ServiceAccount" whoami

phase "operator a: the chart's environment, the chart's RBAC"
start_operator a op-a
chart_env() {
  local v
  for v in POD_NAME=op-a "POD_NAMESPACE=$OP_NS" LEADER_ELECTION=true \
    "LEADER_ELECTION_NAMESPACE=$OP_NS" "LEADER_ELECTION_LEASE=$RELEASE" \
    LEADER_ELECTION_LEASE_SECONDS=15 WATCH_NAMESPACES= LOG_LEVEL=info LOG_FORMAT=json \
    METRICS_ADDR=0.0.0.0:8080 AWS_REGION=us-east-1 "AWS_ENDPOINT_URL=$MOTO_URL" \
    DISCOVERY_REFRESH_SECONDS=60; do
    grep -qxF -- "$v" "$WORK/env-a" || { echo "missing $v in:"; cat "$WORK/env-a"; return 1; }
  done
}
check "the environment comes from the installed Deployment" chart_env
if wait_for 150 condition_is grafana Ready True; then
  pass "example GrafanaCluster Ready, reconciled by the operator as the chart's ServiceAccount"
else
  explain a >"$WORK/explain.out" 2>&1
  fail "example GrafanaCluster Ready, reconciled by the operator as the chart's ServiceAccount" "$WORK/explain.out"
fi
healthz_ok() { [[ $(http_get a /healthz) == ok ]]; }
check "/healthz answers ok" healthz_ok
check "/readyz answers 200" http_get a /readyz
leader_a() {
  http_get a /metrics | grep '^grafana_ha_operator_\(reconciles_total\|leader\) '
  metric_positive a grafana_ha_operator_reconciles_total && metric_is a grafana_ha_operator_leader 1
}
check "/metrics: grafana_ha_operator_reconciles_total > 0, grafana_ha_operator_leader 1" leader_a
check "the unresolvable GrafanaCluster is Degraded" \
  wait_for 60 condition_is nowhere Degraded True
check "operator a's log has no 403/forbidden" no_forbidden a

# --- 4. leader election -------------------------------------------------------------------
phase "operator b: a second instance on the same Lease"
start_operator b op-b
check "operator b serves /readyz while standing by" wait_for 30 http_get b /readyz
# b tries the Lease at start and every retry period (2 s): it has tried several times.
sleep 6
check "the Lease is held by op-a" holder_is op-a
only_a_leads() {
  http_get b /metrics | grep '^grafana_ha_operator_\(reconciles_total\|leader\|applies_total\)'
  metric_is b grafana_ha_operator_leader 0 && metric_is b grafana_ha_operator_reconciles_total 0 &&
    ! http_get b /metrics | grep -q '^grafana_ha_operator_applies_total{' &&
    metric_is a grafana_ha_operator_leader 1
}
check "only the leader writes: b has leader 0, no reconcile, no apply; a has leader 1" only_a_leads

phase "SIGTERM to the leader: the standby takes over"
t0=$SECONDS
a_rc=0
stop_operator a || a_rc=$?
check "operator a exits 0 on SIGTERM (and releases the Lease)" test "$a_rc" -eq 0
if wait_for 15 metric_is b grafana_ha_operator_leader 1; then
  pass "operator b leads $((SECONDS - t0)) s after the SIGTERM (lease duration 15 s)"
else
  fail "operator b did not take over within the lease duration (15 s)" "$LOGS/operator-b.log"
fi
check "the Lease is held by op-b" holder_is op-b
# A hand-edit of a child the operator owns: the new leader must put its own value back.
kubectl annotate service grafana -n "$APP_NS" --overwrite grafana-ha.io/applied-hash=tampered >/dev/null
hash_restored() {
  local h
  h=$(kubectl get service grafana -n "$APP_NS" -o jsonpath='{.metadata.annotations.grafana-ha\.io/applied-hash}')
  [[ -n $h && $h != tampered ]]
}
check "the new leader repairs a hand-edited Service grafana" wait_for 30 hash_restored
check "operator b now reconciles (reconciles_total > 0)" metric_positive b grafana_ha_operator_reconciles_total
check "operator b's log has no 403/forbidden" no_forbidden b

phase "SIGKILL to the leader: the Lease expires, the standby takes over"
start_operator a2 op-a
standing_by_a2() {
  wait_for 30 http_get a2 /readyz && sleep 6 && holder_is op-b && metric_is a2 grafana_ha_operator_leader 0
}
check "operator a, restarted, stands by while op-b holds the Lease" standing_by_a2
t0=$SECONDS
kill -KILL "${OPERATOR_PIDS[b]}"
wait "${OPERATOR_PIDS[b]}" 2>/dev/null || true
unset "OPERATOR_PIDS[b]"
# Nobody can lead until op-b's Lease expires: a child deleted now must come back through
# the next leader.
old_uid=$(kubectl get service grafana -n "$APP_NS" -o jsonpath='{.metadata.uid}')
kubectl delete service grafana -n "$APP_NS" >/dev/null
if wait_for 21 metric_is a2 grafana_ha_operator_leader 1; then
  pass "operator a leads $((SECONDS - t0)) s after op-b was killed (lease 15 s + one retry period 2 s, limit 21 s)"
else
  fail "operator a did not take over within lease duration + retry period + slack (21 s)" "$LOGS/operator-a2.log"
fi
check "the Lease is held by op-a again" holder_is op-a
service_recreated() {
  local uid
  uid=$(kubectl get service grafana -n "$APP_NS" -o jsonpath='{.metadata.uid}') &&
    [[ -n $uid && $uid != "$old_uid" ]]
}
check "the new leader recreates the Service grafana deleted while nobody led" \
  wait_for 30 service_recreated
check "operator a's log has no 403/forbidden" no_forbidden a2

# --- 5. Argo CD health on live objects ----------------------------------------------------
phase "Argo CD health check on live GrafanaClusters (${LUAS[*]})"
health_self_test() {
  local lua
  for lua in "${LUAS[@]}"; do
    "$lua" "$LUA_TEST" "$HEALTH_LUA" --self-test || return 1
  done
}
check "the health check's own edge cases (--self-test)" health_self_test
check "Ready example -> Healthy" health grafana Healthy Available
check "unresolvable cluster -> Degraded (NotFound)" health nowhere Degraded NotFound
a2_rc=0
stop_operator a2 || a2_rc=$?
check "operator a exits 0 on SIGTERM" test "$a2_rc" -eq 0
# With no operator running, a spec change leaves the status one generation behind.
kubectl patch gfc grafana -n "$APP_NS" --type merge -p '{"spec":{"replicas":2}}' >/dev/null
stale() {
  local g o
  g=$(kubectl get gfc grafana -n "$APP_NS" -o jsonpath='{.metadata.generation}')
  o=$(kubectl get gfc grafana -n "$APP_NS" -o jsonpath='{.status.observedGeneration}')
  echo "generation $g, observedGeneration $o"
  ((o < g))
}
check "the patched cluster's status is stale" stale
check "stale status (observedGeneration < generation) -> Progressing" \
  health grafana Progressing "observe generation"

# --- 6. upgrade and uninstall ---------------------------------------------------------------
phase "helm upgrade: one replica, only namespace $APP_NS watched"
check "helm upgrade --set replicaCount=1 --set watchNamespaces={$APP_NS}" \
  helm upgrade "$RELEASE" "$CHART" --namespace "$OP_NS" --reuse-values \
  --set replicaCount=1 --set "watchNamespaces={$APP_NS}" --wait --timeout 90s
absent() { ! kubectl get "$@" >/dev/null 2>&1; }
check "the operator's PDB is gone with one replica" absent pdb "$RELEASE" -n "$OP_NS"
can() { kubectl auth can-i "$@" --as "system:serviceaccount:$OP_NS:$SA"; }
namespaced_rbac() {
  can create secrets -n "$APP_NS" && ! can create secrets -n default &&
    can watch configmaps -n "$APP_NS" && can patch configmaps -n "$APP_NS" &&
    ! can list grafanaclusters.grafana-ha.io -A && can list grafanaclusters.grafana-ha.io -n "$APP_NS" &&
    can create persistentvolumes && ! can delete persistentvolumes
}
check "RBAC: namespaced rights in $APP_NS only, PVs cluster-wide (never deleted)" namespaced_rbac
lease_rbac() {
  can update "leases/$RELEASE" -n "$OP_NS" && ! can update leases/other -n "$OP_NS" &&
    ! can delete "leases/$RELEASE" -n "$OP_NS"
}
check "RBAC: the Lease can be renewed by name only, never deleted" lease_rbac
# helm never upgrades crds/; deploy/README.md says to apply the new CRD server-side. The
# CRD helm created has helm as its field manager, so that needs --force-conflicts.
crd_upgrade() {
  sed 's/description: Desired Grafana replicas$/description: Desired Grafana replicas (next)/' \
    "$CHART/crds/grafanacluster.yaml" >"$WORK/crd-next.yaml"
  grep -q 'replicas (next)' "$WORK/crd-next.yaml" || { echo "the test's CRD edit matched nothing"; return 1; }
  kubectl apply --server-side --force-conflicts -f "$WORK/crd-next.yaml" &&
    kubectl get crd grafanaclusters.grafana-ha.io \
      -o jsonpath='{.spec.versions[0].additionalPrinterColumns[0].description}' | grep -q 'replicas (next)' &&
    kubectl apply --server-side --force-conflicts -f "$CHART/crds/grafanacluster.yaml"
}
check "CRD upgrade as documented: kubectl apply --server-side --force-conflicts" crd_upgrade
start_operator c op-c
current() {
  condition_is grafana Ready True &&
    [[ $(kubectl get gfc grafana -n "$APP_NS" -o jsonpath='{.status.observedGeneration}') == \
      "$(kubectl get gfc grafana -n "$APP_NS" -o jsonpath='{.metadata.generation}')" ]]
}
if wait_for 90 current; then
  pass "with the upgraded (namespaced) RBAC the operator brings the cluster to Ready at 2 replicas"
else
  explain c >"$WORK/explain.out" 2>&1
  fail "with the upgraded (namespaced) RBAC the operator brings the cluster to Ready at 2 replicas" "$WORK/explain.out"
fi
check "current status -> Healthy again" health grafana Healthy "2 of 2"
check "operator c's log has no 403/forbidden" no_forbidden c
c_rc=0
stop_operator c || c_rc=$?
check "operator c exits 0 on SIGTERM" test "$c_rc" -eq 0

phase "helm uninstall"
check "helm uninstall" helm uninstall "$RELEASE" --namespace "$OP_NS" --wait --timeout 60s
crd_stays() {
  kubectl get crd grafanaclusters.grafana-ha.io && kubectl get gfc grafana nowhere -n "$APP_NS"
}
check "the CRD stays (helm never deletes crds/), and so do the GrafanaClusters" crd_stays
release_gone() {
  absent sa "$SA" -n "$OP_NS" && absent clusterrole "$RELEASE" &&
    absent clusterrolebinding "$RELEASE" && absent deployment "$RELEASE" -n "$OP_NS"
}
check "the chart's ServiceAccount, ClusterRole(Binding) and Deployment are gone" release_gone

echo
echo "chart-test took $((SECONDS - START)) s; operator logs in $LOGS/operator-*.log"
echo "chart_test: $passed passed, $failed failed"
SUMMARY_PRINTED=1
((failed == 0))
