#!/usr/bin/env bash
# Acceptance: scripts/bench with its defaults (512 MiB model, 5 repetitions,
# cold and warm page cache) completes, writes table, JSON, chart and summary,
# and every scenario has a correct answer in every run (check-results.py
# --strict). Slow suite: it takes minutes. Keeps the results directory under
# $STOKE_BENCH_KEEP if that is set (to copy its table into the README).
#   test-bench-full.sh STOKE_BINARY
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
stoke=${1:?usage: test-bench-full.sh STOKE_BINARY}
build=$(cd "$(dirname "$stoke")" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "skip: needs root"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/stoke-benchfull.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM
results=${STOKE_BENCH_KEEP:-$tmp/results}
rc=0
"$here/../../scripts/bench" --build "$build" --results "$results" </dev/null || rc=$?
"$here/check-results.py" "$results" --build "$build" --strict || { echo "FAIL: results check" >&2; exit 1; }
[ "$rc" -eq 0 ] || { echo "FAIL: scripts/bench exited with $rc" >&2; exit 1; }
echo "ok"
