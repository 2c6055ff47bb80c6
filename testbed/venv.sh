#!/usr/bin/env bash
# Creates the project-local Python virtualenv (.venv/ in the repository root, git-ignored)
# with moto's server and boto3 at the versions pinned in testbed/python-requirements.txt.
# Idempotent: when the venv was already built from the same requirements file it returns
# at once. pip's own cache (~/.cache/pip) makes a rebuild cheap.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REQ="$TESTBED_ROOT/python-requirements.txt"
STAMP="$VENV_DIR/.testbed-requirements.sha256"
want=$(sha256sum "$REQ" | cut -d' ' -f1)

if [[ -f $STAMP && $(<"$STAMP") == "$want" && -x $VENV_DIR/bin/moto_server ]] &&
  "$VENV_DIR/bin/python" -c 'import moto, boto3' 2>/dev/null; then
  tb_log "venv $VENV_DIR is up to date"
  exit 0
fi

PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null || tb_die "$PYTHON not found"
# A python3 that is not Debian's (pyenv) may lack venv/ensurepip where Debian's has them.
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null && /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null; then
  PYTHON=/usr/bin/python3
fi
if [[ ! -x $VENV_DIR/bin/python ]]; then
  tb_log "creating venv $VENV_DIR with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$VENV_DIR" ||
    tb_die "python venv creation failed (on Debian: apt-get install python3-venv)"
fi
t0=$SECONDS
tb_log "installing $(grep -v '^#' "$REQ" | xargs) into $VENV_DIR"
"$VENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
"$VENV_DIR/bin/python" -c 'import moto, boto3; print("moto", moto.__version__, "boto3", boto3.__version__)'
echo "$want" >"$STAMP"
tb_log "venv ready in $((SECONDS - t0))s"
