#!/usr/bin/env bash
# The machine's prerequisites for stoke hold: CRIU >= 4 passes `criu check`,
# and runc runs a busybox container built from the fixture (the output is
# read back from the container). io_uring and user namespaces are checked by
# uring-userns-probe. Cleans up its bundle and container even on failure.
set -euo pipefail
fixtures=$(cd "$(dirname "$0")/../fixtures" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "skip: needs root"; exit 77; }

fail() { echo "FAIL: $*" >&2; exit 1; }

version=$(criu --version | sed -n 's/^Version: //p')
case "$version" in
[4-9].* | [1-9][0-9].*) ;;
*) fail "criu version is '$version', want 4.x or later" ;;
esac
criu check 2>&1 | grep -q "Looks good" || fail "criu check does not say 'Looks good'"

tmp=$(mktemp -d /tmp/stoke-prereq.XXXXXX)
id="stoke-prereq-$$"
cleanup() {
	runc --root "$tmp/state" delete --force "$id" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

"$fixtures/make-busybox-bundle" "$tmp/bundle" sh -c 'echo hello from $(hostname); cat /proc/self/uid_map'
out=$(cd "$tmp/bundle" && runc --root "$tmp/state" run "$id" </dev/null)
echo "$out"
grep -q "hello from stoke" <<<"$out" || fail "runc's busybox container did not print its greeting"
echo "ok"
