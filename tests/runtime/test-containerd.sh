#!/usr/bin/env bash
# containerd's own runc shim drives stoke: Debian's containerd on a unix
# socket under a temp dir (config written here, CRI plugin disabled), a
# busybox image built from the fixture and imported as an OCI image-layout
# tarball, then `ctr run --rm --runc-binary stoke`, run -d, task exec, kill,
# delete; nothing of the containers is left in stoke's state afterwards.
source "$(dirname "$0")/lib.sh"
for t in containerd ctr containerd-shim-runc-v2; do
	command -v $t >/dev/null || { echo "skip: $t not installed"; exit 77; }
done

CD=$WORK/containerd
mkdir -p "$CD"
cat >"$CD/config.toml" <<TOML
version = 2
root = "$CD/root"
state = "$CD/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$CD/containerd.sock"
[ttrpc]
  address = "$CD/containerd.sock.ttrpc"
[debug]
  address = "$CD/debug.sock"
TOML
containerd --config "$CD/config.toml" >"$CD/containerd.log" 2>&1 &
CD_PID=$!
BG_PIDS+=($CD_PID)
ns=stoke-test-$$
runc_root=/run/containerd/runc/$ns
ctr_() { ctr --address "$CD/containerd.sock" --namespace "$ns" "$@"; }
# Tasks first (they hold shims and mounts), then containerd itself.
stop_containerd() {
	for t in $(ctr_ task ls -q 2>/dev/null); do ctr_ task kill -s SIGKILL "$t" >/dev/null 2>&1; done
	sleep 0.2
	for t in $(ctr_ task ls -q 2>/dev/null); do ctr_ task delete -f "$t" >/dev/null 2>&1; done
	for c in $(ctr_ container ls -q 2>/dev/null); do ctr_ container delete "$c" >/dev/null 2>&1; done
	kill "$CD_PID" 2>/dev/null
	wait "$CD_PID" 2>/dev/null
	for m in $(grep -o " $CD[^ ]*" /proc/self/mountinfo | sort -r); do umount -l "$m" 2>/dev/null; done
	rm -rf "$runc_root"
}
trap 'rc=$?; stop_containerd; (exit $rc); cleanup' EXIT
for _ in $(seq 200); do [ -S "$CD/containerd.sock" ] && break; sleep 0.05; done
[ -S "$CD/containerd.sock" ] || fail "containerd did not start: $(tail -5 "$CD/containerd.log")"

"$FIXTURES/make-busybox-oci-image" "$WORK/busybox.tar"
ctr_ images import --base-name docker.io/stoke/busybox "$WORK/busybox.tar" >/dev/null
img=docker.io/stoke/busybox:latest
ctr_ images ls -q | grep -qx "$img" || fail "image not imported: $(ctr_ images ls)"

# ctr run --rm through the runc shim with stoke as the runtime binary
out=$(ctr_ run --rm --runc-binary "$STOKE" "$img" r1 sh -c 'echo hello-from-stoke; echo pid=$$')
echo "$out" | grep -q hello-from-stoke || fail "ctr run --rm: $out $(tail -5 "$CD/containerd.log")"
echo "$out" | grep -qx pid=1 || fail "not pid 1 in its namespace: $out"
set +e; ctr_ run --rm --runc-binary "$STOKE" "$img" r2 sh -c 'exit 5'; rc=$?; set -e
[ $rc = 5 ] || fail "exit status through containerd: $rc"
[ -z "$(ls -A "$runc_root" 2>/dev/null | grep -v '^\.')" ] || fail "state left under $runc_root: $(ls -A "$runc_root")"

# run -d, exec, kill, delete
ctr_ run -d --runc-binary "$STOKE" "$img" d1 sleep 1000 >/dev/null
[ -e "$runc_root/d1/state.json" ] || fail "stoke state for d1 missing under $runc_root"
"$STOKE" --root "$runc_root" state d1 | grep -q '"status": "running"' || fail "d1 not running per stoke"
out=$(ctr_ task exec --exec-id e1 d1 sh -c 'echo exec-ok; hostname')
echo "$out" | grep -q exec-ok || fail "task exec: $out"
ctr_ task ps d1 | grep -q "sleep\|[0-9]" || fail "task ps"
ctr_ task pause d1
ctr_ task ls | grep d1 | grep -q PAUSED || fail "pause: $(ctr_ task ls)"
ctr_ task resume d1
ctr_ task kill -s SIGKILL d1
for _ in $(seq 100); do ctr_ task ls | grep d1 | grep -q STOPPED && break; sleep 0.05; done
ctr_ task ls | grep d1 | grep -q STOPPED || fail "kill: $(ctr_ task ls)"
ctr_ task delete d1
ctr_ container delete d1
[ ! -e "$runc_root/d1" ] || fail "stoke state left for d1"
# kill of a missing task maps to NotFound
ctr_ task kill d1 2>"$WORK/err" && fail "kill of a deleted task succeeded"
echo ok
