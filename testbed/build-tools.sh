#!/usr/bin/env bash
# Builds the test bed's binaries (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kwok, helm) from Go modules fetched through the Go module
# proxy, into a cache directory keyed by the pinned versions (testbed/versions.env).
#
# No registry ships these binaries and nothing else can be downloaded here, so we
# compile them. A binary that is already in the cache is never rebuilt; GOMODCACHE and
# GOCACHE are the user's usual ones, so a version bump mostly re-links.
#
# Usage: testbed/build-tools.sh            build what is missing, print the bin dir
#        testbed/build-tools.sh --print-bin-dir
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ ${1:-} == --print-bin-dir ]]; then
  echo "$TESTBED_BIN"
  exit 0
fi

command -v go >/dev/null || tb_die "go is not on PATH; the tools are built from Go modules"
command -v python3 >/dev/null || tb_die "python3 is needed to read go.mod files"

# The local toolchain is new enough for every pinned module; never let a module's
# 'toolchain' line trigger a toolchain download.
export GOTOOLCHAIN=local
# Static binaries, no C compiler needed, and they run from any directory.
export CGO_ENABLED=0
# No VCS stamping: the wrapper modules are not in a repository.
[[ " ${GOFLAGS:-} " == *" -buildvcs=false "* ]] || export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

SRC_DIR="$TESTBED_CACHE/src"
mkdir -p "$TESTBED_BIN" "$SRC_DIR"

# Two builds at once (e.g. `make test` in two checkouts) would race on the same files.
exec 9>"$TESTBED_CACHE/.build.lock"
if ! flock -n 9; then
  tb_log "another build-tools.sh holds $TESTBED_CACHE/.build.lock; waiting"
  flock 9
fi

START=$SECONDS
BUILT=()

# Record what this directory holds, so a later key can reuse binaries whose own
# version did not change (see reuse_binary).
cp "$TESTBED_ROOT/versions.env" "$TESTBED_BIN/versions.env"

# reuse_binary NAME VERSION_VAR: hard-link NAME from another key's directory that was
# built with the same version of that tool and the same build revision, so bumping, say,
# helm does not re-link kube-apiserver.
reuse_binary() {
  local name=$1 var=$2 want dir
  want="${var}=${!var}"
  for dir in "$TESTBED_CACHE"/bin/*/; do
    dir=${dir%/}
    [[ $dir == "$TESTBED_BIN" ]] && continue
    [[ -x $dir/$name && -f $dir/versions.env ]] || continue
    grep -qx "$want" "$dir/versions.env" || continue
    grep -qx "TESTBED_BUILD_REV=$TESTBED_BUILD_REV" "$dir/versions.env" || continue
    ln -f "$dir/$name" "$TESTBED_BIN/$name" 2>/dev/null || cp -p "$dir/$name" "$TESTBED_BIN/$name"
    tb_log "reused $name (${!var}) from $dir"
    return 0
  done
  return 1
}

# gomod_info GOMOD_FILE: prints "go <version>", then "replace OLD NEW NEWVERSION" for each
# replace directive ("-" for an empty version), then "require PATH VERSION" lines.
gomod_info() {
  go mod edit -json "$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print("go", d.get("Go") or "1.22")
for r in d.get("Replace") or []:
    print("replace", r["Old"]["Path"], r["New"]["Path"], r["New"].get("Version") or "-")
for r in d.get("Require") or []:
    print("require", r["Path"], r["Version"])
'
}

# prepare_wrapper NAME MODULE VERSION PKG...: a throwaway module (in the cache, never in
# the repository) that requires MODULE@VERSION. Upstream replace directives that point to
# local paths cannot apply to a dependency: for k8s.io/kubernetes they become the published
# staging modules at $KUBERNETES_STAGING_VERSION; elsewhere (etcd) the requires already name
# the published versions, so they are dropped. Replaces to other modules are copied.
# Prints the wrapper directory.
prepare_wrapper() {
  local name=$1 module=$2 version=$3
  shift 3
  local dir="$SRC_DIR/$name-$version-rev$TESTBED_BUILD_REV"
  if [[ -f $dir/.ready ]]; then
    echo "$dir"
    return 0
  fi
  tb_log "preparing wrapper module for $module@$version in $dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  local gomod kind a b c
  gomod=$(cd "$dir" && go mod download -json "$module@$version" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("GoMod") or sys.exit(d.get("Error")))')
  local goversion=""
  local -a edits=()
  while read -r kind a b c; do
    case $kind in
      go) goversion=$a ;;
      replace)
        if [[ $b == ./* || $b == ../* ]]; then
          if [[ $module == k8s.io/kubernetes && $b == ./staging/* ]]; then
            edits+=("-replace=$a=$a@$KUBERNETES_STAGING_VERSION")
          fi
        elif [[ $c == - ]]; then
          edits+=("-replace=$a=$b")
        else
          edits+=("-replace=$a=$b@$c")
        fi
        ;;
    esac
  done < <(gomod_info "$gomod")
  printf 'module grafana-ha-testbed/%s\n\ngo %s\n' "$name" "$goversion" >"$dir/go.mod"
  (cd "$dir" && go mod edit "-require=$module@$version" "${edits[@]}")
  # A build-tagged file that imports the main packages lets `go mod tidy` compute a
  # complete go.sum; the tag keeps it out of every build.
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    local pkg
    for pkg in "$@"; do printf '\t_ "%s"\n' "$pkg"; done
    printf ')\n'
  } >"$dir/tools.go"
  (cd "$dir" && go mod tidy) >&2
  touch "$dir/.ready"
  echo "$dir"
}

# build_bin NAME WRAPPER_DIR PKG LDFLAGS: build one binary unless it is present.
build_bin() {
  local name=$1 dir=$2 pkg=$3 ldflags=$4
  local t0=$SECONDS
  tb_log "building $name from $pkg ..."
  (cd "$dir" && go build -trimpath -ldflags="-s -w $ldflags" -o "$TESTBED_BIN/.$name.tmp" "$pkg")
  mv -f "$TESTBED_BIN/.$name.tmp" "$TESTBED_BIN/$name"
  BUILT+=("$name")
  tb_log "built $name in $((SECONDS - t0))s"
}

# need NAME VERSION_VAR: true when NAME still has to be built.
need() {
  [[ -x $TESTBED_BIN/$1 ]] && return 1
  reuse_binary "$1" "$2" && return 1
  return 0
}

tb_log "tools cache: $TESTBED_BIN"

# --- etcd ---------------------------------------------------------------------------
# go.etcd.io/etcd/server/v3 is itself the etcd main package (v3.6).
if need etcd ETCD_VERSION; then
  dir=$(prepare_wrapper etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3)
  build_bin etcd "$dir" go.etcd.io/etcd/server/v3 ""
fi

# --- kubernetes ---------------------------------------------------------------------
k8s_minor=${KUBERNETES_VERSION#v1.}
k8s_minor=${k8s_minor%%.*}
# The release build stamps these; without them the binaries report v0.0.0-master.
k8s_ldflags=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$k8s_minor -X $p.gitTreeState=clean"
done
k8s_bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
k8s_missing=()
for b in "${k8s_bins[@]}"; do
  if need "$b" KUBERNETES_VERSION; then k8s_missing+=("$b"); fi
done
if ((${#k8s_missing[@]})); then
  k8s_pkgs=()
  for b in "${k8s_bins[@]}"; do k8s_pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  dir=$(prepare_wrapper kubernetes k8s.io/kubernetes "$KUBERNETES_VERSION" "${k8s_pkgs[@]}")
  for b in "${k8s_missing[@]}"; do
    build_bin "$b" "$dir" "k8s.io/kubernetes/cmd/$b" "$k8s_ldflags"
  done
fi

# --- kwok ---------------------------------------------------------------------------
if need kwok KWOK_VERSION; then
  dir=$(prepare_wrapper kwok sigs.k8s.io/kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok)
  build_bin kwok "$dir" sigs.k8s.io/kwok/cmd/kwok "-X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
fi

# --- helm ---------------------------------------------------------------------------
if need helm HELM_VERSION; then
  dir=$(prepare_wrapper helm helm.sh/helm/v3 "$HELM_VERSION" helm.sh/helm/v3/cmd/helm)
  # helm's release build stamps its version and the Kubernetes version of its client
  # libraries (used as the default .Capabilities.KubeVersion).
  cg=$(cd "$dir" && go list -m -f '{{.Version}}' k8s.io/client-go)
  cg_minor=${cg#v0.}
  cg_minor=${cg_minor%%.*}
  helm_ldflags="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    helm_ldflags+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$cg_minor"
  done
  build_bin helm "$dir" helm.sh/helm/v3/cmd/helm "$helm_ldflags"
fi

for b in "${TESTBED_TOOLS[@]}"; do
  [[ -x $TESTBED_BIN/$b ]] || tb_die "$b is missing from $TESTBED_BIN after the build"
done

if ((${#BUILT[@]})); then
  tb_log "built ${BUILT[*]} in $((SECONDS - START))s total"
else
  tb_log "all tools present (nothing to build, $((SECONDS - START))s)"
fi
echo "$TESTBED_BIN"
