#!/usr/bin/env bash
# Installs the Debian packages the test bed, the demo and the tests need, when missing:
# `make tools` (and so `make test` and `make demo`) calls it first, so the README's two
# commands work on a fresh machine; .ci/run gets them the same way.
# Toolchains no Debian package provides at the needed versions (Go >= 1.26, Rust with
# rustfmt and clippy) are checked, not installed.
set -euo pipefail

# command -> Debian package that provides it
declare -A APT_FOR=(
  [make]=make [openssl]=openssl [curl]=curl [setsid]=util-linux [flock]=util-linux
  [shellcheck]=shellcheck [python3]=python3 [base64]=coreutils
  # chart-test runs the Argo CD health check (deploy/argocd/) with both: 5.1 is the
  # dialect of Argo CD's gopher-lua.
  [lua5.4]=lua5.4 [lua5.1]=lua5.1
)
missing=()
for cmd in "${!APT_FOR[@]}"; do
  command -v "$cmd" >/dev/null || missing+=("${APT_FOR[$cmd]}")
done
# The venv needs python's venv and ensurepip modules (Debian splits them out); venv.sh
# falls back to Debian's python3 when the first python3 on PATH lacks them.
if ! python3 -c 'import venv, ensurepip' 2>/dev/null && ! /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null; then
  missing+=(python3-venv)
fi
# The backing services of testbed/services/up.sh (Debian keeps PostgreSQL's server
# binaries out of PATH, in /usr/lib/postgresql/<version>/bin).
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
command -v psql >/dev/null || missing+=(postgresql-client)
command -v mariadbd >/dev/null || [[ -x /usr/sbin/mariadbd ]] || missing+=(mariadb-server)
command -v mariadb >/dev/null || missing+=(mariadb-client)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v memcached >/dev/null || missing+=(memcached)
if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if ((EUID != 0)); then
    echo "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Installing a server package starts it as a system service (on its default port).
  # The test bed starts its own copies; keep the system ones stopped, as container
  # images do, with a policy-rc.d for the duration of the install.
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
  fi
  rc=0
  apt-get install -y -qq --no-install-recommends "${missing[@]}" || rc=$?
  ((made_policy == 0)) || rm -f "$policy"
  ((rc == 0)) || exit "$rc"
fi
command -v go >/dev/null || { echo "go (>= 1.26) is required to build the test bed's tools" >&2; exit 1; }
command -v cargo >/dev/null || { echo "cargo is required" >&2; exit 1; }
cargo fmt --version >/dev/null || { echo "rustfmt is required (rustup component add rustfmt)" >&2; exit 1; }
cargo clippy --version >/dev/null || { echo "clippy is required (rustup component add clippy)" >&2; exit 1; }
