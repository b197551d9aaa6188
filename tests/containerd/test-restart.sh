#!/usr/bin/env bash
# The shim outlives containerd and containerd outlives the shim:
#  - containerd restarts while a task runs: it finds the shim again through
#    the bundle's address file, and exec, kill and delete still work;
#  - the shim is SIGKILLed: containerd's `delete` path (shim delete) kills
#    the container, unmounts its rootfs and the task can be deleted.
#   test-restart.sh SHIM_BINARY   (STOKE_SHIM_RUNTIME: the OCI runtime, default runc)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ctd_setup "${1:?usage: test-restart.sh SHIM_BINARY}"

task_status() {
	c task ls | awk -v id="$1" '$1 == id { print $3 }'
}

wait_status() { # ID STATUS
	for _ in $(seq 1 400); do
		[ "$(task_status "$1")" = "$2" ] && return 0
		sleep 0.05
	done
	fail "task $1 did not reach $2: $(c task ls)"
}

shim_of() { # ID -> daemon pid serving it
	local p
	for p in $(shim_pids); do
		{ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q -- "-id $1 " && echo "$p"
	done
	return 0
}

echo "# containerd restart while a task runs"
crun_ -d "$IMAGE" t-live sleep 4243 >/dev/null
wait_status t-live RUNNING
shim=$(shim_of t-live)
[ -n "$shim" ] || fail "no shim daemon found for t-live"
bundle=$(find "$T/state" -maxdepth 4 -type d -name t-live | head -n1)
[ -s "$bundle/address" ] || fail "no address file in the bundle $bundle"
ctd_stop
kill -0 "$shim" || fail "the shim died with containerd"
ctd_start
wait_status t-live RUNNING
[ "$(shim_of t-live)" = "$shim" ] || fail "containerd started another shim after its restart"
out=$(c task exec --exec-id after-restart t-live sh -c 'echo still-here')
[ "$out" = "still-here" ] || fail "exec after restart: $out"
c task kill -s KILL t-live
wait_status t-live STOPPED
c task delete t-live >/dev/null
c container delete t-live
for _ in $(seq 1 400); do kill -0 "$shim" 2>/dev/null || break; sleep 0.05; done
kill -0 "$shim" 2>/dev/null && fail "the shim did not exit after its last task was deleted"
[ -e "$(sed 's|^unix://||' "$bundle/address" 2>/dev/null || echo /nonexistent)" ] &&
	fail "the shim left its socket behind"

echo "# shim killed with SIGKILL"
crun_ -d "$IMAGE" t-orphan sleep 4244 >/dev/null
wait_status t-orphan RUNNING
shim=$(shim_of t-orphan)
[ -n "$shim" ] || fail "no shim daemon found for t-orphan"
init=$(c task ls | awk '$1 == "t-orphan" { print $2 }')
bundle=$(find "$T/state" -maxdepth 4 -type d -name t-orphan | head -n1)
grep -q " $bundle/rootfs " /proc/self/mountinfo || fail "rootfs of t-orphan is not mounted"
sock=$(sed 's|^unix://||' "$bundle/address")
[ -S "$sock" ] || fail "no socket $sock"
kill -9 "$shim"
for _ in $(seq 1 400); do
	st=$(task_status t-orphan)
	[ -z "$st" ] || [ "$st" = STOPPED ] && break
	sleep 0.05
done
st=$(task_status t-orphan)
[ -z "$st" ] || [ "$st" = STOPPED ] || fail "task t-orphan is $st after its shim was killed"
# containerd's clean-up after a dead shim runs in the background: retry.
for _ in $(seq 1 400); do
	c task delete t-orphan >/dev/null 2>&1 || true
	c container delete t-orphan >/dev/null 2>&1 && break
	sleep 0.05
done
c container ls -q | grep -qx t-orphan && fail "container t-orphan cannot be deleted"
for _ in $(seq 1 400); do
	kill -0 "$init" 2>/dev/null || [ -d "$bundle" ] || break
	sleep 0.05
done
kill -0 "$init" 2>/dev/null && fail "container init $init survived its shim's death"
grep -q " $bundle/rootfs " /proc/self/mountinfo && fail "rootfs of t-orphan still mounted"
[ -d "$bundle" ] && fail "bundle $bundle left behind"
[ -e "$sock" ] && fail "the killed shim's socket $sock was not removed"
echo ok
