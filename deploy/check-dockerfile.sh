#!/usr/bin/env bash
# Checks the Dockerfile without a container engine (part of `make lint`):
#   - the builder stage's cargo command is exactly the one `make image-check` runs, so
#     the binary measured on the host is the binary the image ships;
#   - the builder image is pinned to a Rust version (not latest);
#   - the final stage is distroless, runs as a non-root user, and never needs a shell:
#     no RUN, no SHELL, ENTRYPOINT and CMD in exec (JSON) form.
#
# Usage: deploy/check-dockerfile.sh [DOCKERFILE [MAKEFILE]]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DOCKERFILE=${1:-$ROOT/Dockerfile}
MAKEFILE=${2:-$ROOT/Makefile}

failures=0
fail() {
  echo "check-dockerfile: $*" >&2
  failures=$((failures + 1))
}

# The Dockerfile as logical instructions: continuation lines joined, comments dropped.
instructions() {
  awk '
    /^[[:space:]]*#/ { next }
    {
      line = $0
      if (sub(/\\[[:space:]]*$/, "", line)) { buf = buf line " "; next }
      buf = buf line
      if (buf ~ /[^[:space:]]/) print buf
      buf = ""
    }
    END { if (buf ~ /[^[:space:]]/) print buf }
  ' "$1" | tr -s ' \t' '  ' | sed 's/^ //; s/ $//'
}

# "cargo build ..." up to the end of the shell command it is part of.
cargo_command() {
  grep -o 'cargo build[^&;|]*' | sed 's/[[:space:]]*$//'
}

mapfile -t lines < <(instructions "$DOCKERFILE")
((${#lines[@]})) || { echo "check-dockerfile: $DOCKERFILE has no instructions" >&2; exit 1; }

# Resolve the ARG defaults that FROM lines use.
declare -A args=()
for l in "${lines[@]}"; do
  if [[ $l =~ ^ARG\ ([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]]; then
    args[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
  fi
done
resolve() {
  local v=$1 name
  while [[ $v =~ \$\{([A-Za-z_][A-Za-z0-9_]*)\} ]]; do
    name=${BASH_REMATCH[1]}
    v=${v//\$\{$name\}/${args[$name]:-}}
  done
  printf '%s' "$v"
}

# Index of every FROM; the final stage is everything after the last one.
froms=()
for i in "${!lines[@]}"; do
  [[ ${lines[$i]} =~ ^FROM\  ]] && froms+=("$i")
done
((${#froms[@]} >= 2)) || fail "expected a multi-stage build (a builder and a runtime stage)"
last=${froms[-1]}

# --- builder ---------------------------------------------------------------------------
builder_image=$(resolve "$(awk '{print $2}' <<<"${lines[${froms[0]}]}")")
[[ $builder_image =~ ^rust:[0-9]+\.[0-9]+ ]] ||
  fail "builder image '$builder_image' is not pinned to a Rust version (rust:X.Y-...)"

docker_cargo=$(printf '%s\n' "${lines[@]:0:$last}" | grep '^RUN ' | cargo_command || true)
[[ $(grep -c . <<<"$docker_cargo") == 1 ]] ||
  fail "expected exactly one 'cargo build' in the builder stage, found: ${docker_cargo:-none}"

# The recipe of the Makefile's image-check target, with $(CARGO) as cargo.
# shellcheck disable=SC2016 # $(CARGO) is make's, matched literally
make_cargo=$(awk '
  /^image-check:/ { in_target = 1; next }
  in_target && /^[^\t]/ { in_target = 0 }
  in_target { print }
' "$MAKEFILE" | sed 's/\$(CARGO)/cargo/g' | cargo_command || true)
[[ -n $make_cargo ]] || fail "the Makefile's image-check target runs no 'cargo build'"

if [[ -n $docker_cargo && -n $make_cargo && $docker_cargo != "$make_cargo" ]]; then
  fail "Dockerfile builds with '$docker_cargo' but make image-check runs '$make_cargo'"
fi

# --- final stage -----------------------------------------------------------------------
runtime_image=$(resolve "$(awk '{print $2}' <<<"${lines[$last]}")")
[[ $runtime_image == gcr.io/distroless/* ]] ||
  fail "final image '$runtime_image' is not distroless"
[[ $runtime_image == *:nonroot* ]] ||
  fail "final image '$runtime_image' is not a :nonroot variant"

user=""
entrypoint=""
for l in "${lines[@]:$last}"; do
  case $l in
    RUN\ * | SHELL\ *) fail "the final stage has no shell, yet runs: $l" ;;
    USER\ *) user=${l#USER } ;;
    ENTRYPOINT\ *)
      entrypoint=${l#ENTRYPOINT }
      [[ $entrypoint == \[* ]] || fail "ENTRYPOINT is in shell form (needs a shell): $l"
      ;;
    CMD\ *) [[ ${l#CMD } == \[* ]] || fail "CMD is in shell form (needs a shell): $l" ;;
  esac
done
case ${user%%:*} in
  65532 | nonroot) ;;
  "") fail "the final stage sets no USER (would inherit whatever the base image says)" ;;
  *) fail "the final stage runs as '$user', expected 65532 (nonroot)" ;;
esac
[[ -n $entrypoint ]] || fail "the final stage has no ENTRYPOINT"

if ((failures)); then
  echo "check-dockerfile: $failures problem(s) in $DOCKERFILE" >&2
  exit 1
fi
echo "check-dockerfile: ok ($docker_cargo; runtime $runtime_image as ${user})"
