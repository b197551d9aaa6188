#!/usr/bin/env bash
# containerd drives containerd-shim-stoke-v2 through `ctr`: run --rm (output,
# exit code), run -d + exec + ps + pause/resume + kill (NotFound once dead) +
# delete, run -t through a pty, metrics and a memory limit with an OOM kill,
# a read-only rootfs, file:// logs, and the order of the task events.
#   test-ctr.sh SHIM_BINARY      (STOKE_SHIM_RUNTIME: the OCI runtime, default runc)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ctd_setup "${1:?usage: test-ctr.sh SHIM_BINARY}"

c events >"$T/events.log" 2>&1 &
EVENTS_PID=$!

wait_status() { # ID STATUS
	for _ in $(seq 1 400); do
		c task ls | awk -v id="$1" '$1 == id { print $3 }' | grep -qx "$2" && return 0
		sleep 0.05
	done
	fail "task $1 did not reach $2: $(c task ls)"
}

# frozen PID: its cgroup is frozen (v1 freezer.state, or v2 cgroup.events).
frozen() {
	local v1 v2
	v1=$(awk -F: '$2 ~ /(^|,)freezer(,|$)/ { print $3 }' "/proc/$1/cgroup")
	v2=$(awk -F: '$1 == "0" { print $3 }' "/proc/$1/cgroup")
	if [ -n "$v1" ]; then
		grep -qx FROZEN "/sys/fs/cgroup/freezer$v1/freezer.state"
	else
		grep -qx 'frozen 1' "/sys/fs/cgroup$v2/cgroup.events"
	fi
}

echo "# run --rm: output and exit code"
set +e
out=$(crun_ --rm "$IMAGE" t-rm sh -c 'echo hello from busybox; echo to-stderr >&2; exit 3' 2>&1)
rc=$?
set -e
[ "$rc" -eq 3 ] || fail "run --rm exit code $rc, want 3 (output: $out)"
grep -q "hello from busybox" <<<"$out" || fail "run --rm output: $out"
grep -q "to-stderr" <<<"$out" || fail "run --rm stderr missing: $out"
c container ls -q | grep -qx t-rm && fail "run --rm left the container behind"

echo "# run -d, exec, ps, pause/resume, kill, delete"
crun_ -d "$IMAGE" t-d sleep 4242 >/dev/null
wait_status t-d RUNNING
set +e
out=$(c task exec --exec-id e1 t-d sh -c 'echo from-exec; exit 5' 2>&1)
rc=$?
set -e
[ "$rc" -eq 5 ] || fail "exec exit code $rc, want 5 (output: $out)"
grep -qx "from-exec" <<<"$out" || fail "exec output: $out"
out=$(script -q -c "ctr --address $T/containerd.sock --namespace $NS task exec -t --exec-id e-tty \
	t-d sh -c 'tty; echo exec-tty-ok'" /dev/null </dev/null 2>&1 | tr -d '\r')
grep -q "/dev/pts/" <<<"$out" && grep -q "exec-tty-ok" <<<"$out" || fail "exec -t output: $out"
out=$(c task ps t-d)
[ "$(tail -n +2 <<<"$out" | wc -l)" -ge 1 ] || fail "task ps listed no pids: $out"
init_pid=$(c task ls | awk '$1 == "t-d" { print $2 }')
grep -qw "$init_pid" <<<"$out" || fail "task ps does not list the init pid $init_pid: $out"
c task pause t-d
wait_status t-d PAUSED
frozen "$init_pid" || fail "pause did not freeze the container"
c task resume t-d
wait_status t-d RUNNING
c task kill -s KILL t-d
wait_status t-d STOPPED
set +e
out=$(c task kill -s KILL t-d 2>&1)
rc=$?
set -e
[ "$rc" -ne 0 ] && grep -qi "not found" <<<"$out" || fail "kill of a dead task: rc=$rc $out"
c task delete t-d >/dev/null
c container delete t-d
c task ls -q | grep -qx t-d && fail "task t-d still listed after delete"
kill -0 "$init_pid" 2>/dev/null && fail "init pid $init_pid still alive after delete"

echo "# containers of one pod share one shim (io.kubernetes.cri.sandbox-id)"
crun_ -d --annotation io.kubernetes.cri.sandbox-id=pod1 "$IMAGE" t-g1 sleep 4245 >/dev/null
crun_ -d --annotation io.kubernetes.cri.sandbox-id=pod1 "$IMAGE" t-g2 sleep 4246 >/dev/null
wait_status t-g1 RUNNING
wait_status t-g2 RUNNING
[ "$(shim_pids | wc -l)" -eq 1 ] || fail "two containers of one pod got $(shim_pids | wc -l) shims"
shim=$(shim_pids)
c task kill -s KILL t-g1
wait_status t-g1 STOPPED
c task delete t-g1 >/dev/null
c container delete t-g1
kill -0 "$shim" || fail "the pod's shim exited while t-g2 still runs"
[ "$(c task exec --exec-id g2 t-g2 echo alive)" = alive ] || fail "t-g2 lost after t-g1 was deleted"
c task kill -s KILL t-g2
wait_status t-g2 STOPPED
c task delete t-g2 >/dev/null
c container delete t-g2
for _ in $(seq 1 400); do kill -0 "$shim" 2>/dev/null || break; sleep 0.05; done
kill -0 "$shim" 2>/dev/null && fail "the pod's shim did not exit after its last task"

echo "# run -t through a pty"
out=$(script -q -c "ctr --address $T/containerd.sock --namespace $NS run --runtime $RUNTIME \
	--runtime-config-path $T/shim.toml -t --rm $IMAGE t-tty sh -c 'tty; echo tty-ok'" \
	/dev/null </dev/null 2>&1 | tr -d '\r')
grep -q "/dev/pts/" <<<"$out" || fail "run -t: no pty in the container: $out"
grep -q "tty-ok" <<<"$out" || fail "run -t output: $out"

echo "# memory limit: metrics, then an OOM kill"
crun_ -d --memory-limit 33554432 "$IMAGE" t-mem sleep 4242 >/dev/null
wait_status t-mem RUNNING
out=$(c task metrics t-mem)
grep -Eq "memory\.limit.*33554432|33554432" <<<"$out" || fail "metrics do not show the 32 MiB limit: $out"
c task kill -a -s KILL t-mem  # Kill{all: true}: the runtime's kill --all
wait_status t-mem STOPPED
c task delete t-mem >/dev/null
c container delete t-mem
set +e
out=$(crun_ --rm --memory-limit 16777216 "$IMAGE" t-oom sh -c 'tail /dev/zero' 2>&1)
rc=$?
set -e
[ "$rc" -eq 137 ] || fail "OOM: exit code $rc, want 137 ($out)"

echo "# read-only rootfs"
set +e
out=$(crun_ --rm --read-only "$IMAGE" t-ro sh -c 'touch /new-file' 2>&1)
rc=$?
set -e
[ "$rc" -ne 0 ] && grep -qi "read-only" <<<"$out" || fail "read-only rootfs was writable: rc=$rc $out"
out=$(crun_ --rm --read-only "$IMAGE" t-ro2 sh -c 'touch /tmp/x 2>&1 || echo cannot; cat /etc/hostname')
grep -q "stoke-test" <<<"$out" || fail "read-only rootfs unreadable: $out"

echo "# stdin, closed by CloseIO at its end"
# ctr sends CloseIO only for an EOF it reads after its NewTask returned (a
# ctr race, the same with containerd's runc shim), so stdin is written and
# closed only once the task runs: fd 7 keeps a writer open until then.
mkfifo "$T/in.fifo"
exec 7<>"$T/in.fifo"
(
	wait_status t-in RUNNING
	printf 'line1\nline2\n' >&7
) &
feeder=$!
timeout -s KILL 60 ctr --address "$T/containerd.sock" --namespace "$NS" run --runtime "$RUNTIME" \
	--runtime-config-path "$T/shim.toml" --rm "$IMAGE" t-in sh -c 'cat; echo stdin-done' \
	<"$T/in.fifo" >"$T/in.out" 2>&1 7>&- &
ctr_pid=$!
exec 7>&-
wait "$feeder" || fail "t-in never ran"
wait "$ctr_pid" || fail "ctr run with stdin failed: $(cat "$T/in.out")"
[ "$(cat "$T/in.out")" = "$(printf 'line1\nline2\nstdin-done')" ] || fail "stdin round trip: $(cat "$T/in.out")"

echo "# binary:// logger"
cat >"$T/logger.sh" <<LOGGER
#!/bin/sh
echo "\$@ \$CONTAINER_ID \$CONTAINER_NAMESPACE" >"$T/logger.args"
exec 5>&-
/bin/cat <&3 >"$T/logger.out" &
/bin/cat <&4 >"$T/logger.err" &
wait
LOGGER
chmod +x "$T/logger.sh"
crun_ --rm --log-uri "binary://$T/logger.sh?level=debug" "$IMAGE" t-bin sh -c 'echo bin-out; echo bin-err >&2'
for _ in $(seq 1 400); do grep -q bin-out "$T/logger.out" 2>/dev/null && break; sleep 0.05; done
grep -q "bin-out" "$T/logger.out" || fail "binary:// logger got no stdout"
grep -q "bin-err" "$T/logger.err" || fail "binary:// logger got no stderr"
grep -q "^level debug t-bin $NS" "$T/logger.args" || fail "binary:// logger args: $(cat "$T/logger.args")"

echo "# no stdio at all (--null-io, as CRI's pause containers)"
out=$(crun_ --rm --null-io "$IMAGE" t-null sh -c 'echo invisible; exit 7' 2>&1) && rc=0 || rc=$?
[ "$rc" -eq 7 ] || fail "null-io exit code $rc, want 7"
[ -z "$out" ] || fail "null-io printed: $out"

echo "# file:// log"
crun_ --rm --log-uri "file://$T/logs/t-file.log" "$IMAGE" t-file sh -c 'echo to-file; echo err-to-file >&2' >/dev/null
grep -q "to-file" "$T/logs/t-file.log" || fail "file:// log has no stdout: $(cat "$T/logs/t-file.log")"
grep -q "err-to-file" "$T/logs/t-file.log" || fail "file:// log has no stderr"

echo "# events, in order"
sleep 0.2
kill "$EVENTS_PID" 2>/dev/null || true
wait "$EVENTS_PID" 2>/dev/null || true
topics=$(grep '"container_id":"t-d"' "$T/events.log" | awk '$6 ~ /^\/tasks\// {print $6}' | tr '\n' ' ')
want="/tasks/create /tasks/start /tasks/exec-added /tasks/exec-started /tasks/exit /tasks/exec-added /tasks/exec-started /tasks/exit /tasks/paused /tasks/resumed /tasks/exit /tasks/delete "
[ "$topics" = "$want" ] || fail "events for t-d: got '$topics', want '$want'"
grep ' /tasks/oom ' "$T/events.log" | grep -q '"container_id":"t-oom"' || fail "no /tasks/oom event for t-oom"
echo ok
