#!/usr/bin/env bash
# govulncheck over the Go code the test bed runs: each binary build-tools.sh built
# (binary mode: the vulnerable symbols linked in) and the wiring probe (source mode: the
# call graph of our own code). Part of `make supply-chain`, so of `make lint`/`make test`.
#
# Offline from the Go module proxy only: govulncheck (GOVULNCHECK_VERSION) is built from
# the proxy into the cache; the database is golang.org/x/vulndb at GO_VULNDB_VERSION,
# fetched through the proxy and laid out in govulncheck's local format by vulndb_index.py
# (vuln.go.dev itself is unreachable). What fails and what is only reported:
# govulncheck_report.py and docs/reliability.md.
#
# Each scan's JSON is cached under a key of everything it depends on (govulncheck, the
# database, the Go toolchain, the binary or the probe's sources), so a warm run only
# re-reads the cached results: seconds.
#
# Usage: testbed/govulncheck.sh   (after testbed/build-tools.sh)
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v go >/dev/null || tb_die "go is not on PATH; govulncheck is built from Go modules"
export GOTOOLCHAIN=local CGO_ENABLED=0
[[ " ${GOFLAGS:-} " == *" -buildvcs=false "* ]] || export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

GVC_DIR="$TESTBED_CACHE/bin/govulncheck-$GOVULNCHECK_VERSION"
GVC="$GVC_DIR/govulncheck"
DB="$TESTBED_CACHE/vulndb/$GO_VULNDB_VERSION"
SCANS="$TESTBED_CACHE/govulncheck"
ACCEPTED="$TESTBED_ROOT/govulncheck-accepted.txt"
mkdir -p "$SCANS"

exec 8>"$SCANS/.lock"
flock 8

if [[ ! -x $GVC ]]; then
  tb_log "building govulncheck $GOVULNCHECK_VERSION into $GVC_DIR (once)"
  rm -rf "$GVC_DIR.tmp"
  # -p=1: one core; the machine is shared.
  GOBIN="$GVC_DIR.tmp" GOFLAGS="$GOFLAGS -p=1" \
    go install -trimpath "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION"
  rm -rf "$GVC_DIR"
  mv "$GVC_DIR.tmp" "$GVC_DIR"
fi

if [[ ! -f $DB/index/modules.json ]]; then
  tb_log "fetching golang.org/x/vulndb@$GO_VULNDB_VERSION through the Go module proxy"
  # Outside any module, so that no go.mod around the caller is consulted or changed.
  src=$(cd "$SCANS" && go mod download -json "golang.org/x/vulndb@$GO_VULNDB_VERSION" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error")))')
  # The pseudo-version's timestamp (vX.Y.Z-YYYYMMDDhhmmss-commit) is the database's date.
  stamp=$(sed -E 's/^.*-([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})-[0-9a-f]+$/\1-\2-\3T\4:\5:\6Z/' <<<"$GO_VULNDB_VERSION")
  [[ $stamp == *T*Z ]] || tb_die "cannot read a date from GO_VULNDB_VERSION=$GO_VULNDB_VERSION"
  mkdir -p "$(dirname "$DB")"
  python3 "$TESTBED_ROOT/vulndb_index.py" "$src/data/osv" "$DB" "$stamp"
fi

go_version=$(go env GOVERSION)
base_key="$GOVULNCHECK_VERSION $GO_VULNDB_VERSION $go_version"

# scan NAME KEY CMD...: run govulncheck (JSON) unless a result for KEY is cached; prints
# the result file. A failed scan (not a finding: govulncheck -format json exits 0 with
# findings) is an error.
scan() {
  local name=$1 key=$2
  shift 2
  local out
  out="$SCANS/$name-$(sha256sum <<<"$base_key $key" | cut -c1-16).json"
  if [[ ! -s $out ]]; then
    local t0=$SECONDS
    if ! nice -n 19 "$@" >"$out.tmp" 2>"$out.err"; then
      cat "$out.err" >&2
      tb_die "govulncheck failed on $name"
    fi
    mv "$out.tmp" "$out"
    tb_log "scanned $name in $((SECONDS - t0))s"
  fi
  echo "$out"
}

start=$SECONDS
results=()
for tool in "${TESTBED_TOOLS[@]}"; do
  bin="$TESTBED_BIN/$tool"
  [[ -x $bin ]] || tb_die "$bin is missing; run testbed/build-tools.sh (make tools) first"
  # The binaries of one cache key are only ever replaced by a rebuild: size and mtime
  # identify them without reading 100 MB.
  f=$(scan "$tool" "$(stat -c '%s %Y' "$bin") $bin" \
    "$GVC" -db "file://$DB" -mode binary -format json "$bin")
  results+=("$tool=$f")
done

probe_key=$(cd "$TESTBED_ROOT/probe" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-16)
f=$(cd "$TESTBED_ROOT/probe" && scan probe "$probe_key" \
  "$GVC" -db "file://$DB" -format json ./...)
results+=("probe=$f")

python3 "$TESTBED_ROOT/govulncheck_report.py" "$ACCEPTED" probe "${results[@]}"
tb_log "govulncheck done in $((SECONDS - start))s (database $GO_VULNDB_VERSION, $go_version)"
