#!/usr/bin/env bash
# Restore-on-create through containerd: a container holding known memory and
# counting is checkpointed to a snapshot file by stoke, then
#   ctr run --runtime io.containerd.stoke.v2 --annotation org.stoke.snapshot=FILE IMAGE ID
# brings it back: it goes on counting from where it stopped with its memory
# intact, and containerd sees the same events as for a cold start.
#   test-restore.sh SHIM_BINARY   (STOKE_SHIM_RUNTIME: stoke)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
rt=${STOKE_SHIM_RUNTIME:-}
[ -n "$rt" ] && "$rt" --help 2>&1 | grep -q '^ *checkpoint' ||
	{ echo "skip: the runtime ($rt) has no checkpoint verb"; exit 77; }
source "$(dirname "$0")/../lib-checkpoint.sh"
require_checkpoint_restore "$rt"
ctd_setup "${1:?usage: test-restore.sh SHIM_BINARY}"

mkdir -p "$T/out"
# Mounted on a directory the image has: a new top-level mountpoint would
# change the rootfs fingerprint stoke compares at restore.
mount_out="type=bind,src=$T/out,dst=/home,options=rbind:rw"
# The same command for the warm container and the restored one (stoke
# checks that the restored container is the one the snapshot was taken of).
counter='data=$(seq 1 100000); want=$(echo "$data" | md5sum); i=0; ok=ok
while true; do
	i=$((i + 1))
	if [ $((i % 5)) = 0 ]; then
		got=$(echo "$data" | md5sum); [ "$got" = "$want" ] && ok=ok || ok=BAD
	fi
	echo "$i $ok" >/home/status.tmp; mv /home/status.tmp /home/status; sleep 0.02
done'

count() { cut -d' ' -f1 "$T/out/status" 2>/dev/null || echo 0; }
wait_count() { # N: the counter passes N with its memory intact
	for _ in $(seq 1 500); do
		if [ "$(count)" -gt "$1" ] 2>/dev/null; then
			grep -q ' ok$' "$T/out/status" || fail "memory check: $(cat "$T/out/status")"
			return 0
		fi
		sleep 0.02
	done
	fail "counter stuck at $(count) (wanted > $1)"
}
wait_status() { # ID STATUS
	for _ in $(seq 1 200); do
		c task ls | awk -v id="$1" '$1 == id { print $3 }' | grep -qx "$2" && return 0
		sleep 0.05
	done
	fail "task $1 did not reach $2: $(c task ls)"
}

echo "# warm up and checkpoint to a snapshot file"
crun_ -d --mount "$mount_out" "$IMAGE" t-warm sh -c "$counter" >/dev/null
wait_count 20
"$rt" --root "$T/runtime-root/$NS" checkpoint --snapshot "$T/warm.stoke" t-warm ||
	fail "stoke checkpoint --snapshot failed"
[ -s "$T/warm.stoke" ] || fail "no snapshot written"
wait_status t-warm STOPPED
c task delete t-warm >/dev/null
c container delete t-warm
before=$(count)

echo "# restore-on-create through ctr run --annotation"
c events >"$T/events.log" 2>&1 &
EVENTS_PID=$!
sleep 0.2
crun_ -d --annotation "org.stoke.snapshot=$T/warm.stoke" --mount "$mount_out" "$IMAGE" t-restored \
	sh -c "$counter" >/dev/null
wait_status t-restored RUNNING
wait_count $((before + 10))
[ "$(count)" -lt $((before + 400)) ] || fail "the counter restarted instead of going on"
c task kill -s KILL t-restored
wait_status t-restored STOPPED
c task delete t-restored >/dev/null
c container delete t-restored
sleep 0.2
kill "$EVENTS_PID" 2>/dev/null || true
wait "$EVENTS_PID" 2>/dev/null || true
topics=$(grep '"container_id":"t-restored"' "$T/events.log" | awk '$6 ~ /^\/tasks\// {print $6}' | tr '\n' ' ')
[ "$topics" = "/tasks/create /tasks/start /tasks/exit /tasks/delete " ] ||
	fail "events of the restored task: '$topics'"

echo "# restore-on-create with a hanging criu: a clear error soon, nothing left"
# The shim passes CriuPath from its config to the runtime as --criu (as
# containerd's runc shim); the stand-in answers --version, then hangs.
cat >"$T/fake-criu" <<EOF
#!/bin/sh
case "\$1" in --version | -V) echo "Version: 4.2.1"; exit 0 ;; esac
echo \$\$ >>"$T/fake-criu.pids"
exec sleep 1000
EOF
chmod +x "$T/fake-criu"
printf 'Root = "%s"\nCriuPath = "%s"\n' "$T/runtime-root" "$T/fake-criu" >"$T/shim-hang.toml"
rc=0
# `timeout` only turns a hang into a failure; the deadline is 3 s.
timeout -k 5 90 ctr --address "$T/containerd.sock" --namespace "$NS" run --runtime "$RUNTIME" \
	--runtime-config-path "$T/shim-hang.toml" -d \
	--annotation "org.stoke.snapshot=$T/warm.stoke" --annotation org.stoke.criu-timeout=3 \
	--mount "$mount_out" "$IMAGE" t-hung sh -c "$counter" >"$T/hung.log" 2>&1 || rc=$?
[ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "ctr run with a hanging criu hung"
[ "$rc" -ne 0 ] || fail "ctr run succeeded with a hanging criu"
grep -q 'timed out after 3 s in phase .*criu restore' "$T/hung.log" ||
	fail "the error does not say what timed out: $(cat "$T/hung.log")"
echo "# $(tail -n 1 "$T/hung.log")"
! c task ls -q | grep -qx t-hung || fail "a task t-hung is left"
c container delete t-hung >/dev/null 2>&1 || true
[ ! -e "$T/runtime-root/$NS/t-hung" ] || fail "runtime state of t-hung left"
for p in $(cat "$T/fake-criu.pids" 2>/dev/null); do
	if [ -e "/proc/$p" ] && ! grep -q '^State:.*Z' "/proc/$p/status"; then
		kill -9 "$p"
		fail "the stand-in criu $p is still running"
	fi
done
! grep -q " $T/runtime-root/$NS/t-hung" /proc/self/mountinfo || fail "a mount of t-hung is left"
echo ok
