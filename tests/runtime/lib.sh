# Shared set-up for the runtime's integration tests (sourced, not run):
#   STOKE   the binary under test (first argument of every test)
#   ROOT    a private --root; WORK a temp dir; BUNDLE a busybox bundle in it
# The EXIT trap deletes every container left under ROOT (delete --force),
# then removes WORK, so a failing test leaves no process, mount, cgroup or
# state behind. Exit codes: 0 pass, 1 fail, 77 skip (meson's protocol).
set -euo pipefail
STOKE=${1:?usage: $0 STOKE}
STOKE=$(readlink -f "$STOKE")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FIXTURES=$(cd "$HERE/../fixtures" && pwd)
PY=/usr/bin/python3

[ "$(id -u)" = 0 ] || { echo "skip: needs root"; exit 77; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/stoke-rt-test.XXXXXX")
ROOT=$WORK/root
BUNDLE=$WORK/bundle
BG_PIDS=()

cleanup() {
	local rc=$?
	set +e
	for p in "${BG_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	if [ -d "$ROOT" ]; then
		for id in $("$STOKE" --root "$ROOT" list -q 2>/dev/null); do
			"$STOKE" --root "$ROOT" delete --force "$id" >/dev/null 2>&1
		done
	fi
	# Anything still mounted under WORK (a test's own mounts).
	grep -o " $WORK[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null; done
	find /sys/fs/cgroup -maxdepth 6 -depth -type d -path "*stoke-rt-$$*" -exec rmdir {} \; 2>/dev/null
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
st() { "$STOKE" --root "$ROOT" "$@"; }

# make_bundle DIR [ARG...]: a busybox bundle (the runtime-spec default config).
make_bundle() {
	local dir=$1; shift
	"$FIXTURES/make-busybox-bundle" "$dir" "$@" >/dev/null
}

# edit_config DIR 'python statements on c (the config dict)'
edit_config() {
	"$PY" - "$1/config.json" "$2" <<'PY'
import json, sys
p, code = sys.argv[1], sys.argv[2]
c = json.load(open(p))
exec(code)
json.dump(c, open(p, "w"), indent=1)
PY
}

# status ID: the container's status, or "none".
status() {
	st state "$1" 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>/dev/null ||
		echo none
}

# wait_status ID STATUS: poll up to ~5 s.
wait_status() {
	for _ in $(seq 100); do
		[ "$(status "$1")" = "$2" ] && return 0
		sleep 0.05
	done
	fail "container $1 is $(status "$1"), expected $2"
}

# cgroup_dirs ID: the container's cgroup directories that exist now.
cgroup_dirs() {
	find /sys/fs/cgroup -maxdepth 6 -type d -path "*/stoke-rt-$$/$1" 2>/dev/null || true
}

# assert_gone ID PID: no state, no process, no cgroup directory, no mount of the bundle.
assert_gone() {
	local id=$1 pid=${2:-}
	[ ! -e "$ROOT/$id" ] || fail "$id: state directory left: $(ls -A "$ROOT/$id")"
	if [ -n "$pid" ] && [ -e "/proc/$pid" ]; then
		grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null || fail "$id: process $pid still alive"
	fi
	[ -z "$(cgroup_dirs "$id")" ] || fail "$id: cgroup left: $(cgroup_dirs "$id")"
	! grep -q " $WORK/" /proc/self/mountinfo || fail "$id: a mount under $WORK is left"
}

# Every container of the tests gets its cgroup under stoke-rt-<pid>/ (easy to check and clean).
cgpath() { echo "stoke-rt-$$/$1"; }
