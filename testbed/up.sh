#!/usr/bin/env bash
# Starts the local test bed in STATE_DIR: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kwok (fake nodes and kubelet), moto (the local AWS) and the fault proxy
# in front of moto; all real processes on 127.0.0.1, on free ports. Alongside, the backing
# services of testbed/services/up.sh (PostgreSQL, MariaDB, Redis, Memcached; skipped with
# TESTBED_SERVICES=0).
#
# Writes STATE_DIR/kubeconfig, STATE_DIR/env (source it), STATE_DIR/pids (one PID a
# line, for down.sh), logs in STATE_DIR/logs/, the API server's audit log of writes in
# STATE_DIR/audit.log. On failure it prints the failing
# component's log, stops what it started and exits non-zero (TESTBED_KEEP_ON_FAILURE=1
# keeps the processes for debugging).
#
# Usage: testbed/up.sh STATE_DIR
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -eq 1 ]] || tb_die "usage: $0 STATE_DIR"
mkdir -p "$1"
STATE_DIR=$(cd "$1" && pwd)
LOGS="$STATE_DIR/logs"
PKI="$STATE_DIR/pki"
PIDS="$STATE_DIR/pids"
START=$SECONDS

for b in "${TESTBED_TOOLS[@]}"; do
  [[ -x $TESTBED_BIN/$b ]] || tb_die "$TESTBED_BIN/$b is missing: run testbed/build-tools.sh (make tools)"
done
[[ -x $VENV_DIR/bin/moto_server ]] || tb_die "$VENV_DIR/bin/moto_server is missing: run testbed/venv.sh (make venv)"
for cmd in openssl curl setsid python3; do
  command -v "$cmd" >/dev/null || tb_die "$cmd is required"
done

if [[ -s $PIDS ]]; then
  for pid in $(<"$PIDS"); do
    if kill -0 "$pid" 2>/dev/null; then
      tb_die "$STATE_DIR already has running processes (pid $pid); run testbed/down.sh $STATE_DIR first"
    fi
  done
fi
rm -rf "$STATE_DIR/etcd" "$LOGS" "$PKI"
mkdir -p "$LOGS" "$PKI" "$STATE_DIR/etcd"
chmod 700 "$STATE_DIR/etcd" "$PKI"
: >"$PIDS"

# Our own binaries come first: the machine may have another kubectl on PATH.
export PATH="$TESTBED_BIN:$PATH"
# Every started process carries this; down.sh checks it before killing a PID, so a PID
# reused by an unrelated process is never killed.
export TESTBED_DIR="$STATE_DIR"

CURRENT="" # the component being brought up, for the failure report

# Any exit before the end (a failed command under set -e, a timeout, Ctrl-C) lands here.
UP_OK=0
on_exit() {
  local rc=$?
  ((UP_OK)) && return 0
  ((rc)) || rc=1
  tb_log "FAILED while starting ${CURRENT:-the test bed} (exit $rc)"
  local f
  for f in "$LOGS"/*.log; do
    [[ -f $f ]] || continue
    if [[ -z $CURRENT || $(basename "$f" .log) == "$CURRENT" ]]; then
      echo "----- last 40 lines of $f -----" >&2
      tail -n 40 "$f" >&2 || true
    fi
  done
  echo "----- (all logs in $LOGS) -----" >&2
  # Let a still-starting services job finish recording its PIDs, so down.sh stops them all.
  [[ -z ${SVC_PID:-} ]] || wait "$SVC_PID" 2>/dev/null || true
  if [[ ${TESTBED_KEEP_ON_FAILURE:-0} == 1 ]]; then
    tb_log "TESTBED_KEEP_ON_FAILURE=1: leaving processes running; stop them with testbed/down.sh $STATE_DIR"
  else
    "$TESTBED_ROOT/down.sh" "$STATE_DIR" >&2 || true
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# free_ports N: N distinct free TCP ports on 127.0.0.1. The sockets stay open until all
# are chosen so the kernel cannot hand out the same one twice.
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# start NAME CMD...: run CMD detached (own session, so a Ctrl-C in the terminal does not
# kill it halfway; down.sh stops it), log to logs/NAME.log, record its PID.
start() {
  local name=$1
  shift
  setsid "$@" </dev/null >"$LOGS/$name.log" 2>&1 &
  echo $! >>"$PIDS"
  tb_log "started $name (pid $!)"
}

# wait_for NAME WHAT TIMEOUT_S CMD...: poll CMD until it succeeds; fail if NAME's process
# died or the time is up. WHAT says what is awaited, for the log.
wait_for() {
  local name=$1 what=$2 timeout=$3
  shift 3
  CURRENT=$name
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ! pid_alive "$name"; then
      tb_log "$name exited"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      tb_log "$name: not $what after ${timeout}s"
      return 1
    fi
    sleep 0.2
  done
  tb_log "$name: $what ($((SECONDS - START))s)"
}

declare -A PID_OF=()
pid_alive() {
  [[ -z ${PID_OF[$1]:-} ]] || kill -0 "${PID_OF[$1]}" 2>/dev/null
}
remember() { PID_OF[$1]=$(tail -n 1 "$PIDS"); }

read -r ETCD_PORT ETCD_PEER_PORT API_PORT KCM_PORT SCHED_PORT KWOK_PORT MOTO_PORT PROXY_PORT \
  < <(free_ports 8)
[[ -n ${PROXY_PORT:-} ]] || tb_die "could not pick free ports"

# --- certificates ---------------------------------------------------------------------
CURRENT=openssl
tb_log "generating certificates in $PKI"
(
  cd "$PKI"
  # RSA keys: every client (Go, kubectl, rustls and openssl in kube-rs) takes them.
  openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 30 \
    -keyout ca.key -out ca.crt -subj "/CN=grafana-ha-testbed-ca" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  # Serving cert: loopback for tests, plus the in-cluster names and the first service IP
  # of 10.0.0.0/16, which is what pods would use.
  cat >apiserver.ext <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
  cat >client.ext <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EOF
  openssl req -new -nodes -newkey rsa:2048 -keyout apiserver.key -out apiserver.csr \
    -subj "/CN=kube-apiserver" 2>/dev/null
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 \
    -days 30 -extfile apiserver.ext -out apiserver.crt 2>/dev/null
  # O=system:masters: the apiserver grants this group everything, whatever RBAC says.
  openssl req -new -nodes -newkey rsa:2048 -keyout admin.key -out admin.csr \
    -subj "/O=system:masters/CN=testbed-admin" 2>/dev/null
  openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 \
    -days 30 -extfile client.ext -out admin.crt 2>/dev/null
  # Service-account token signing key pair.
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
  openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
  rm -f ./*.csr
  chmod 600 ./*.key
)

# --- backing services (in the background, while the control plane starts) -------------
SVC_PID=""
if [[ ${TESTBED_SERVICES:-1} != 0 ]]; then
  "$TESTBED_ROOT/services/up.sh" "$STATE_DIR" >"$LOGS/services.log" 2>&1 &
  SVC_PID=$!
fi

API_URL="https://127.0.0.1:$API_PORT"
KUBECONFIG_FILE="$STATE_DIR/kubeconfig"
b64() { base64 -w0 <"$1"; }
# Certificates embedded, so the file works wherever it is copied (kubectl, kube-rs).
cat >"$KUBECONFIG_FILE" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster:
    server: $API_URL
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: testbed-admin
  user:
    client-certificate-data: $(b64 "$PKI/admin.crt")
    client-key-data: $(b64 "$PKI/admin.key")
contexts:
- name: testbed
  context:
    cluster: testbed
    user: testbed-admin
    namespace: default
current-context: testbed
EOF
chmod 600 "$KUBECONFIG_FILE"

# --- etcd, moto and the fault proxy (independent, start together) ---------------------
start etcd "$TESTBED_BIN/etcd" \
  --name=testbed \
  --data-dir="$STATE_DIR/etcd" \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="testbed=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync=true \
  --log-level=warn
remember etcd

MOTO_URL="http://127.0.0.1:$MOTO_PORT"
FAULT_PROXY_URL="http://127.0.0.1:$PROXY_PORT"
start moto "$VENV_DIR/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT"
remember moto
start fault-proxy "$VENV_DIR/bin/python" "$TESTBED_ROOT/fault_proxy.py" \
  --port "$PROXY_PORT" --upstream "$MOTO_URL"
remember fault-proxy

wait_for etcd healthy 30 curl -sf "http://127.0.0.1:$ETCD_PORT/health"

# --- kube-apiserver -------------------------------------------------------------------
# Audit log (TESTBED_AUDIT_LOG): who wrote what, when, per client user agent. Metadata
# level and only writes to the operator's own kinds, its Events and the Leases outside
# the system namespaces (kwok renews one Lease per node, the apiserver its identity
# Lease): a few lines per reconcile, nothing for the reads and pod churn of other tests.
AUDIT_POLICY="$STATE_DIR/audit-policy.yaml"
AUDIT_LOG="$STATE_DIR/audit.log"
cat >"$AUDIT_POLICY" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  resources: [{group: coordination.k8s.io, resources: [leases]}]
  namespaces: [kube-system, kube-node-lease]
- level: Metadata
  verbs: [create, update, patch, delete, deletecollection]
  resources:
  - group: grafana-ha.io
  - group: coordination.k8s.io
    resources: [leases]
  - group: ""
    resources: [secrets, configmaps, serviceaccounts, services, services/status,
      persistentvolumes, persistentvolumes/status, persistentvolumeclaims,
      persistentvolumeclaims/status, events]
  - group: events.k8s.io
    resources: [events]
  - group: apps
    resources: [deployments, deployments/status]
  - group: batch
    resources: [jobs, jobs/status]
  - group: policy
    resources: [poddisruptionbudgets, poddisruptionbudgets/status]
  - group: networking.k8s.io
    resources: [ingresses, ingresses/status, networkpolicies]
  - group: gateway.networking.k8s.io
    resources: [httproutes, httproutes/status]
  - group: monitoring.coreos.com
    resources: [servicemonitors]
- level: None
EOF
# ServiceAccount: no pod needs a token mounted here. TaintNodesByCondition would put
# node.kubernetes.io/not-ready on every new node; only node-lifecycle-controller removes
# it, and that controller would need kubelet heartbeats, which kwok does not send.
DISABLED_ADMISSION=ServiceAccount,TaintNodesByCondition
start kube-apiserver "$TESTBED_BIN/kube-apiserver" \
  --bind-address=127.0.0.1 \
  --advertise-address=127.0.0.1 \
  --secure-port="$API_PORT" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --cert-dir="$PKI" \
  --tls-cert-file="$PKI/apiserver.crt" \
  --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" \
  --service-cluster-ip-range=10.0.0.0/16 \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" \
  --service-account-signing-key-file="$PKI/sa.key" \
  --authorization-mode=RBAC \
  --allow-privileged=true \
  --disable-admission-plugins="$DISABLED_ADMISSION" \
  --endpoint-reconciler-type=none \
  --audit-policy-file="$AUDIT_POLICY" \
  --audit-log-path="$AUDIT_LOG" \
  --audit-log-format=json \
  --profiling=false
remember kube-apiserver

api_ready() {
  curl -sf --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$API_URL/readyz"
}
wait_for kube-apiserver ready 120 api_ready

# --- controllers, scheduler, kwok -----------------------------------------------------
# Controllers the operator's tests rely on: owner-reference garbage collection, namespace
# deletion, Deployment -> ReplicaSet -> Pod, Jobs, service accounts and their tokens,
# PVC -> static PV binding (and expansion), PVC/PV protection (the admission plugin adds
# those finalizers; without the controllers a PVC could never be deleted), PDB status and
# Service endpoints; kube-root-ca.crt in each namespace, as pods expect.
# The PV binder retries a claim whose first bind attempt conflicted only at its sync
# period (15s by default); 2s keeps a PVC -> static PV bind quick in tests.
KCM_CONTROLLERS=$(
  IFS=,
  list=(
    garbage-collector-controller namespace-controller
    deployment-controller replicaset-controller statefulset-controller
    job-controller ttl-after-finished-controller
    serviceaccount-controller serviceaccount-token-controller root-ca-certificate-publisher-controller
    persistentvolume-binder-controller persistentvolume-expander-controller
    persistentvolumeclaim-protection-controller persistentvolume-protection-controller
    disruption-controller endpoints-controller endpointslice-controller
  )
  echo "${list[*]}"
)
start kube-controller-manager "$TESTBED_BIN/kube-controller-manager" \
  --kubeconfig="$KUBECONFIG_FILE" \
  --leader-elect=false \
  --bind-address=127.0.0.1 \
  --secure-port="$KCM_PORT" \
  --root-ca-file="$PKI/ca.crt" \
  --service-account-private-key-file="$PKI/sa.key" \
  --controllers="$KCM_CONTROLLERS" \
  --pvclaimbinder-sync-period=2s \
  --profiling=false
remember kube-controller-manager

start kube-scheduler "$TESTBED_BIN/kube-scheduler" \
  --kubeconfig="$KUBECONFIG_FILE" \
  --leader-elect=false \
  --bind-address=127.0.0.1 \
  --secure-port="$SCHED_PORT" \
  --profiling=false
remember kube-scheduler

# Pod IPs from a range that overlaps neither the service range nor the node IPs.
start kwok "$TESTBED_BIN/kwok" \
  --kubeconfig="$KUBECONFIG_FILE" \
  --manage-all-nodes=true \
  --config="$TESTBED_ROOT/kwok/stages.yaml" \
  --cidr=10.244.0.0/16 \
  --node-ip=10.1.0.1 \
  --server-address="127.0.0.1:$KWOK_PORT"
remember kwok

wait_for kube-controller-manager healthy 60 curl -skf "https://127.0.0.1:$KCM_PORT/healthz"
wait_for kube-scheduler healthy 60 curl -skf "https://127.0.0.1:$SCHED_PORT/healthz"
wait_for kwok healthy 60 curl -sf "http://127.0.0.1:$KWOK_PORT/healthz"

CURRENT=kwok
kubectl --kubeconfig="$KUBECONFIG_FILE" apply -f "$TESTBED_ROOT/kwok/nodes.yaml" >"$LOGS/nodes.log" 2>&1
wait_for kwok "nodes Ready" 60 kubectl --kubeconfig="$KUBECONFIG_FILE" wait --for=condition=Ready node --all --timeout=2s
# The serviceaccount controller creating default/default shows the controllers work.
wait_for kube-controller-manager "default service account made" 60 kubectl --kubeconfig="$KUBECONFIG_FILE" get serviceaccount default -n default

wait_for moto answering 30 curl -sf "$MOTO_URL/moto-api/data.json"
wait_for fault-proxy answering 30 curl -sf "$FAULT_PROXY_URL/__fault"

if [[ -n $SVC_PID ]]; then
  CURRENT=services
  rc=0
  wait "$SVC_PID" || rc=$?
  SVC_PID=""
  ((rc == 0)) || exit "$rc"
  tb_log "$(tail -n 1 "$LOGS/services.log" | sed 's/^\[testbed [0-9:]*\] //')"
fi

# --- env file -------------------------------------------------------------------------
CURRENT=""
{
  echo "# Generated by testbed/up.sh; source it: . $STATE_DIR/env"
  for kv in \
    "TESTBED_DIR=$STATE_DIR" \
    "KUBECONFIG=$KUBECONFIG_FILE" \
    "TESTBED_APISERVER_URL=$API_URL" \
    "TESTBED_ETCD_URL=http://127.0.0.1:$ETCD_PORT" \
    "TESTBED_BIN=$TESTBED_BIN" \
    "TESTBED_PYTHON=$VENV_DIR/bin/python" \
    "TESTBED_RESTART_APISERVER=$TESTBED_ROOT/restart-apiserver.sh" \
    "TESTBED_RESTART_COMPONENT=$TESTBED_ROOT/restart-component.sh" \
    "TESTBED_AUDIT_LOG=$AUDIT_LOG" \
    "MOTO_URL=$MOTO_URL" \
    "FAULT_PROXY_URL=$FAULT_PROXY_URL" \
    "AWS_ENDPOINT_URL=$MOTO_URL" \
    "AWS_REGION=us-east-1" \
    "AWS_DEFAULT_REGION=us-east-1" \
    "AWS_ACCESS_KEY_ID=testing" \
    "AWS_SECRET_ACCESS_KEY=testing" \
    "AWS_EC2_METADATA_DISABLED=true"; do
    printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"
  done
  # Keeps the SDKs away from the instance metadata service and any real AWS profile.
  echo 'unset AWS_PROFILE AWS_SESSION_TOKEN'
  # shellcheck disable=SC2016 # $PATH is expanded when the env file is sourced
  printf 'export PATH=%q:"$PATH"\n' "$TESTBED_BIN"
  # Addresses and credentials of the backing services (testbed/services/up.sh).
  if [[ ${TESTBED_SERVICES:-1} != 0 ]]; then
    cat "$STATE_DIR/services.env"
  else
    echo "export TESTBED_SERVICES=0"
  fi
} >"$STATE_DIR/env"
# It holds the services' passwords; the state dir is o+x for the database users.
chmod 600 "$STATE_DIR/env"

UP_OK=1
tb_log "test bed up in $((SECONDS - START))s: $API_URL, moto $MOTO_URL, fault proxy $FAULT_PROXY_URL"
tb_log "use it: . $STATE_DIR/env && kubectl get nodes"
