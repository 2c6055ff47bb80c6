# shellcheck shell=bash
# Shared definitions for the test bed scripts. Sourced, never executed.

TESTBED_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$TESTBED_ROOT/.." && pwd)
export TESTBED_ROOT REPO_ROOT

# shellcheck source=versions.env
source "$TESTBED_ROOT/versions.env"

# The cache lives outside the checkout so that CI's fresh clone reuses it.
TESTBED_CACHE=${GRAFANA_HA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/grafana-ha-operator}
TESTBED_KEY="k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}_rev${TESTBED_BUILD_REV}"
TESTBED_BIN="$TESTBED_CACHE/bin/$TESTBED_KEY"
VENV_DIR="$REPO_ROOT/.venv"
export TESTBED_CACHE TESTBED_KEY TESTBED_BIN VENV_DIR

# Every binary build-tools.sh produces; up.sh checks for these.
# shellcheck disable=SC2034 # used by the scripts that source this file
TESTBED_TOOLS=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok helm)

# '|| true': a log line must never abort a cleanup when the terminal or pipe is gone.
tb_log() { printf '[testbed %(%H:%M:%S)T] %s\n' -1 "$*" >&2 || true; }
tb_die() { tb_log "ERROR: $*"; exit 1; }
