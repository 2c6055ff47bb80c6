#!/usr/bin/env bash
# Restarts the test bed's kube-apiserver: restart-component.sh for kube-apiserver.
# Usage: testbed/restart-apiserver.sh STATE_DIR [DOWN_SECONDS]
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/restart-component.sh" "$1" kube-apiserver "${2:-0}"
