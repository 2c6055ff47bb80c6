#!/usr/bin/env bash
# Runs the scale benchmark with a fresh test bed for each large run.
#
# Deleting the 2N namespaces of a run at N = 1000 takes the namespace controller about 15
# minutes; a fresh bed per run takes under one. Small sizes share one bed (their cleanup is
# quick); each run of a size at or above BENCH_BED_PER_RUN_FROM gets its own bed, thrown
# away after it. Every run's figures accumulate in one runs file, and each invocation
# writes bench/results/latest.json (or BENCH_OUT) with the medians over all runs so far.
#
#   BENCH_SIZES=10,100,1000 BENCH_RUNS=3 bench/run-per-bed.sh
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=${BENCH_SIZES:-10,100,1000}
runs=${BENCH_RUNS:-3}
from=${BENCH_BED_PER_RUN_FROM:-500}
runs_file=${BENCH_RUNS_FILE:-$(mktemp /tmp/bench-runs.XXXXXX.json)}
rm -f "$runs_file"
export BENCH_RUNS_FILE=$runs_file
echo "bench: runs accumulate in $runs_file"

IFS=, read -r -a size_list <<<"$sizes"
IFS=, read -r -a run_list <<<"$runs"
small=() small_runs=()
for i in "${!size_list[@]}"; do
  n=${size_list[$i]}
  r=${run_list[$i]:-${run_list[-1]}}
  if (( n < from )); then
    small+=("$n") small_runs+=("$r")
  fi
done

bench() {
  testbed/with-testbed.sh "${CARGO:-cargo}" test --release --test bench_scale -- --ignored --nocapture
}

if (( ${#small[@]} > 0 )); then
  BENCH_SIZES=$(IFS=,; echo "${small[*]}") BENCH_RUNS=$(IFS=,; echo "${small_runs[*]}") bench
fi
for i in "${!size_list[@]}"; do
  n=${size_list[$i]}
  r=${run_list[$i]:-${run_list[-1]}}
  (( n >= from )) || continue
  for (( run = 0; run < r; run++ )); do
    BENCH_SIZES=$n BENCH_RUNS=1 BENCH_FIRST_RUN=$run BENCH_DISPOSABLE_BED=1 bench
  done
done
