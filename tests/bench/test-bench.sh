#!/usr/bin/env bash
# scripts/bench end to end with a tiny model (16 MiB, 1 repetition, cold and
# warm cache) into a temp dir, then check-results.py: results.json
# well-formed, every scenario present for both caches, each either correct
# or failed with an error; runc-cold and runc-restore correct. The other
# scenarios must be correct only where their prerequisites exist (stoke's
# verbs in `stoke --help`, the loader's Python binding, the containerd shim;
# see check-results.py), because they depend on work still in progress: the
# full acceptance check (every scenario correct) is test-bench-full.sh in the
# slow suite. Also: bad options fail clearly, and an interrupted run (SIGINT)
# leaves no container, cgroup, mount or work directory behind.
#   test-bench.sh STOKE_BINARY
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bench=$here/../../scripts/bench
stoke=${1:?usage: test-bench.sh STOKE_BINARY}
build=$(cd "$(dirname "$stoke")" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "skip: needs root"; exit 77; }
command -v runc >/dev/null || { echo "skip: runc not installed"; exit 77; }

fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/stoke-benchtest.XXXXXX")
bench_pid=
cleanup() {
	[ -n "$bench_pid" ] && kill -TERM "$bench_pid" 2>/dev/null && wait "$bench_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Bad options: a clear error naming the option, no results directory.
if out=$("$bench" --scenarios runc-cold,nope --results "$tmp/bad" 2>&1); then fail "accepted an unknown scenario"; fi
grep -q "unknown nope" <<<"$out" || fail "unclear error for an unknown scenario: $out"
if out=$("$bench" --model "$tmp/none.safetensors" --results "$tmp/bad" 2>&1); then fail "accepted a missing --model"; fi
grep -q "no such file" <<<"$out" || fail "unclear error for a missing model: $out"
[ ! -e "$tmp/bad" ] || fail "a rejected run created its results directory"

# The whole harness, tiny. Its exit status is 1 while some scenario fails;
# the checker decides which failures are acceptable here.
mkdir "$tmp/work"
"$bench" --model-size 16 -n 1 --timeout 60 --build "$build" --results "$tmp/results" \
	--work-dir "$tmp/work" </dev/null &
bench_pid=$!
pids=$bench_pid
wait "$bench_pid" || true
bench_pid=
"$here/check-results.py" "$tmp/results" --build "$build" --repetitions 1 || fail "results check"
[ -z "$(ls -A "$tmp/work")" ] || fail "work directory left behind: $(ls "$tmp/work")"

# Interrupted in the middle of its runs: cleans up, says so in results.json.
"$bench" --scenarios runc-cold --cache warm -n 50 --model-size 16 --timeout 60 \
	--results "$tmp/int" --work-dir "$tmp/work" </dev/null >"$tmp/int.out" 2>&1 &
bench_pid=$!
pids="$pids $bench_pid"
for _ in $(seq 1 300); do
	grep -q "run 2/50" "$tmp/int.out" && break
	sleep 0.1
done
grep -q "run 2/50" "$tmp/int.out" || fail "interrupt test: the bench did not reach its second run: $(tail -3 "$tmp/int.out")"
kill -INT "$bench_pid"
rc=0
wait "$bench_pid" || rc=$?
bench_pid=
[ "$rc" -eq 130 ] || fail "interrupted bench exited with $rc, want 130: $(tail -3 "$tmp/int.out")"
/usr/bin/python3 - "$tmp/int/results.json" <<'PY' || fail "interrupted run's results.json"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["interrupted"] == "SIGINT", d["interrupted"]
assert [e["scenario"] for e in d["results"]] == ["runc-cold"], d["results"]
PY
[ -z "$(ls -A "$tmp/work")" ] || fail "interrupted run left its work directory: $(ls "$tmp/work")"
# A surviving container process would also keep its cgroup (checked below).
for p in /proc/[0-9]*; do
	root=$(readlink "$p/root" 2>/dev/null) || continue
	case "$root" in "$tmp"/*) fail "process $(basename "$p") still runs in $root" ;; esac
done
for pid in $pids; do
	left=$(ls -d /sys/fs/cgroup/*/stoke-bench-"$pid"-* /sys/fs/cgroup/*/*/stoke-bench-"$pid"-* 2>/dev/null || true)
	[ -z "$left" ] || fail "cgroups left behind: $left"
done
grep -q " $tmp/" /proc/self/mountinfo && fail "mounts left under $tmp"
echo "ok"
