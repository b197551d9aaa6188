#!/usr/bin/env bash
# The machine's prerequisites for stoke hold: CRIU >= 4.2 (older CRIU hangs
# in every dump where hardware breakpoints never fire) passes `criu check`,
# `stoke check` says checkpoint/restore really works here (a dump and
# restore within a deadline; its table is printed for the log), and runc
# runs a busybox container built from the fixture (the output is read back
# from the container). io_uring and user namespaces are checked by
# uring-userns-probe. Cleans up its bundle and container even on failure.
#   test-prerequisites.sh STOKE
set -euo pipefail
fixtures=$(cd "$(dirname "$0")/../fixtures" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "skip: needs root"; exit 77; }

fail() { echo "FAIL: $*" >&2; exit 1; }

stoke=${1:?usage: test-prerequisites.sh STOKE}

version=$(criu --version | sed -n 's/^Version: //p')
case "$version" in
4.[2-9]* | 4.[1-9][0-9]* | [5-9].* | [1-9][0-9].*) ;;
*) fail "criu version is '$version', want 4.2 or later (scripts/install-deps builds it)" ;;
esac
criu check 2>&1 | grep -q "Looks good" || fail "criu check does not say 'Looks good'"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/stoke-prereq.XXXXXX")
id="stoke-prereq-$$"
cleanup() {
	runc --root "$tmp/state" delete --force "$id" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

rc=0
timeout -k 5 120 "$stoke" --root "$tmp/check-root" check || rc=$?
[ "$rc" -eq 0 ] || fail "stoke check says checkpoint/restore does not work here (status $rc)"

"$fixtures/make-busybox-bundle" "$tmp/bundle" sh -c 'echo hello from $(hostname); cat /proc/self/uid_map'
out=$(cd "$tmp/bundle" && runc --root "$tmp/state" run "$id" </dev/null)
echo "$out"
grep -q "hello from stoke" <<<"$out" || fail "runc's busybox container did not print its greeting"
echo "ok"
