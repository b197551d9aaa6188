#!/usr/bin/env bash
# No stoke command waits forever on CRIU:
#   test-criu-timeout.sh STOKE
# A stand-in `criu` (given with stoke's global --criu, as runc's) answers
# --version and then hangs in every other role (swrk for libcriu, restore
# for the streamed path). Each command must come back soon after its
# --criu-timeout (or org.stoke.criu-timeout annotation) with an error that
# names the phase, kill everything CRIU started, and leave nothing behind:
#  - checkpoint: the container keeps running and answering, no snapshot or
#    temporary directory is written;
#  - restore (pages over userfaultfd, through tmpfs, and streamed images)
#    and restore-on-create: no container state, cgroup, mount, process or
#    temporary images.
# A hang would be cut by `timeout` (HANG_LIMIT) and fail the test: that limit
# is only there to turn a hang into a failure, not to time anything.
source "$(dirname "$0")/../runtime/lib.sh"
source "$(dirname "$0")/../lib-checkpoint.sh"
require_checkpoint_restore "$STOKE"

DEADLINE=3
HANG_LIMIT=60
OUT=$WORK/out
FAKE=$WORK/fake-criu
PIDS=$WORK/fake-criu.pids
export STOKE_RESTORE_TMPDIR=$WORK/shm
mkdir -p "$OUT" "$STOKE_RESTORE_TMPDIR"
: >"$PIDS"

cat >"$FAKE" <<EOF
#!/bin/sh
case "\$1" in
--version | -V) echo "Version: 4.2.1"; exit 0 ;;
esac
echo \$\$ >>"$PIDS"
exec sleep 1000
EOF
chmod +x "$FAKE"

# Whatever the stand-in started must be gone, whether or not the test passes.
kill_fakes() {
	local p
	for p in $(cat "$PIDS" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
}
on_exit() {
	local rc=$?
	set +e
	kill_fakes
	(exit $rc) # cleanup exits with the status it finds in $?
	cleanup
}
trap on_exit EXIT

make_bundle "$BUNDLE" /bin/sh -c \
	'i=0; while true; do i=$((i+1)); echo $i >/out/n.tmp; mv /out/n.tmp /out/n; sleep 0.05; done'
edit_config "$BUNDLE" "c['mounts'].append({'destination': '/out', 'type': 'bind', 'source': '$OUT', 'options': ['rbind', 'rw']})"

# Each container gets its own cgroup under the test's parent.
config_for() { # ID: point the bundle's cgroupsPath at this id
	edit_config "$BUNDLE" "c['linux']['cgroupsPath'] = '$(cgpath "$1")'"
}

count() { cat "$OUT/n" 2>/dev/null || echo 0; }
wait_count_above() { # N
	for _ in $(seq 1 300); do
		[ "$(count)" -gt "$1" ] 2>/dev/null && return 0
		sleep 0.05
	done
	fail "the counter is stuck at $(count) (wanted > $1)"
}

# no_fake_left: every stand-in criu (and its sleep) was killed.
no_fake_left() {
	local p
	for p in $(cat "$PIDS"); do
		if [ -e "/proc/$p" ] && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null; then
			fail "the stand-in criu $p ($(tr '\0' ' ' <"/proc/$p/cmdline")) is still running"
		fi
	done
}

# nothing_left ID: no state, cgroup, mount or temporary images of ID.
nothing_left() {
	local id=$1
	[ "$(status "$id")" = none ] || fail "$id: state left behind ($(status "$id"))"
	[ ! -e "$ROOT/$id" ] || fail "$id: $ROOT/$id left behind"
	[ -z "$(cgroup_dirs "$id")" ] || fail "$id: cgroup left behind: $(cgroup_dirs "$id")"
	! grep -q "$ROOT/$id" /proc/self/mountinfo || fail "$id: mount left behind"
	! ls -A "$STOKE_RESTORE_TMPDIR" | grep -q . ||
		fail "temporary images left in $STOKE_RESTORE_TMPDIR: $(ls -A "$STOKE_RESTORE_TMPDIR")"
	! ls -a "$WORK" | grep -q '^\.stoke-checkpoint-' || fail "temporary images left in $WORK"
	no_fake_left
}

# expect_timeout WHAT PHASE CMD...: CMD fails, soon, naming the deadline and PHASE.
expect_timeout() {
	local what=$1 phase=$2 rc=0 t0 t1
	shift 2
	t0=$(date +%s)
	timeout -k 5 "$HANG_LIMIT" "$@" >"$WORK/out.log" 2>&1 || rc=$?
	t1=$(date +%s)
	[ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "$what hung (cut after ${HANG_LIMIT} s)"
	[ "$rc" -ne 0 ] || fail "$what succeeded with a hanging criu: $(cat "$WORK/out.log")"
	grep -q "timed out after $DEADLINE s" "$WORK/out.log" ||
		fail "$what: the error does not name the deadline: $(cat "$WORK/out.log")"
	grep -q "$phase" "$WORK/out.log" ||
		fail "$what: the error does not name the phase \"$phase\": $(cat "$WORK/out.log")"
	echo "# $what: failed after $((t1 - t0)) s (deadline $DEADLINE s): $(tail -n 1 "$WORK/out.log")"
}

echo "# a running container, and a real snapshot of it"
config_for warm
st run -d --bundle "$BUNDLE" warm >/dev/null || fail "run warm"
wait_count_above 5
st checkpoint --leave-running --snapshot "$WORK/warm.stoke" warm || fail "real checkpoint failed"
[ -s "$WORK/warm.stoke" ] || fail "no snapshot written"

echo "# checkpoint with a hanging criu: the container keeps running"
pid=$(st state warm | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
expect_timeout checkpoint "criu dump" \
	"$STOKE" --root "$ROOT" --criu "$FAKE" checkpoint --criu-timeout "$DEADLINE" \
	--snapshot "$WORK/hung.stoke" warm
[ ! -e "$WORK/hung.stoke" ] || fail "a snapshot was written by a timed-out checkpoint"
! ls -a "$WORK" | grep -q '^\.stoke-checkpoint-' || fail "temporary checkpoint images left in $WORK"
! ls -a "$WORK" | grep -q 'hung.stoke' || fail "a partial snapshot was left: $(ls -a "$WORK")"
no_fake_left
[ "$(status warm)" = running ] || fail "the container is $(status warm) after a timed-out checkpoint"
[ "$(st state warm | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["pid"])')" = "$pid" ] ||
	fail "the container's init changed"
grep -q '^State:.*[RS]' "/proc/$pid/status" || fail "the container's init is not running: $(grep State "/proc/$pid/status")"
n=$(count)
wait_count_above $((n + 3))
[ "$(st exec warm echo alive)" = alive ] || fail "exec into the container after the timed-out checkpoint"

echo "# a paused container stays paused"
st pause warm || fail "pause"
expect_timeout "checkpoint (paused)" "criu dump" \
	"$STOKE" --root "$ROOT" --criu "$FAKE" checkpoint --criu-timeout "$DEADLINE" \
	--snapshot "$WORK/hung.stoke" warm
[ "$(status warm)" = paused ] || fail "the paused container is $(status warm)"
st resume warm || fail "resume"
n=$(count)
wait_count_above $((n + 3))
st kill warm KILL
wait_status warm stopped
st delete warm

# Restores need /out as it was at the dump (CRIU checks open files' sizes);
# with a hanging criu no file is ever opened, so any state of /out does.
echo "# restore with a hanging criu, pages over userfaultfd"
config_for r1
expect_timeout "restore (uffd pages)" "criu restore" \
	"$STOKE" --root "$ROOT" --criu "$FAKE" restore --criu-timeout "$DEADLINE" -d \
	--snapshot "$WORK/warm.stoke" --bundle "$BUNDLE" r1
nothing_left r1

echo "# restore with a hanging criu, pages through tmpfs"
config_for r2
expect_timeout "restore (tmpfs pages)" "criu restore" \
	env STOKE_RESTORE_PAGES=tmpfs "$STOKE" --root "$ROOT" --criu "$FAKE" restore \
	--criu-timeout "$DEADLINE" -d --snapshot "$WORK/warm.stoke" --bundle "$BUNDLE" r2
nothing_left r2

echo "# restore with a hanging criu, images streamed (the criu binary itself)"
config_for r3
expect_timeout "restore (streamed)" "criu restore" \
	env STOKE_RESTORE_IMAGES=stream "$STOKE" --root "$ROOT" --criu "$FAKE" restore \
	--criu-timeout "$DEADLINE" -d --snapshot "$WORK/warm.stoke" --bundle "$BUNDLE" r3
nothing_left r3

echo "# restore-on-create with a hanging criu (annotations)"
config_for r4
edit_config "$BUNDLE" "c.setdefault('annotations', {}).update({'org.stoke.snapshot': '$WORK/warm.stoke', 'org.stoke.criu-timeout': '$DEADLINE'})"
expect_timeout "restore-on-create" "criu restore" \
	"$STOKE" --root "$ROOT" --criu "$FAKE" create --bundle "$BUNDLE" r4
nothing_left r4

echo "# a bad annotation is refused before anything is created"
edit_config "$BUNDLE" "c['annotations']['org.stoke.criu-timeout'] = 'soon'"
if st create --bundle "$BUNDLE" r5 >"$WORK/out.log" 2>&1; then
	fail "create accepted org.stoke.criu-timeout=soon"
fi
grep -q "org.stoke.criu-timeout" "$WORK/out.log" || fail "the error does not name the annotation: $(cat "$WORK/out.log")"
nothing_left r5

echo "# --criu-timeout must be whole seconds"
if st checkpoint --criu-timeout 0 --snapshot "$WORK/x.stoke" none 2>"$WORK/out.log"; then
	fail "--criu-timeout 0 accepted"
fi
grep -q "criu-timeout" "$WORK/out.log" || fail "no clear error for --criu-timeout 0"
echo ok
