#!/usr/bin/env bash
# stoke checkpoint / restore on real containers (real CRIU, root):
#   test-container-checkpoint.sh STOKE
# A busybox container runs a counter that holds 600 KB of known content in
# memory and checks it every few steps, writing "COUNT ok|BAD" to a bind
# mounted directory. It is checkpointed to a snapshot file, deleted,
# restored and must go on counting with its memory intact; the same through
# restore-on-create (org.stoke.snapshot); --leave-running; and every failure
# (a dump CRIU refuses, a corrupted snapshot, a snapshot of another bundle,
# a restore CRIU cannot finish) must leave nothing behind.
source "$(dirname "$0")/../runtime/lib.sh"
source "$(dirname "$0")/../lib-checkpoint.sh"
require_checkpoint_restore "$STOKE"

OUT=$WORK/out
mkdir -p "$OUT"
# Restores unpack here (not the shared /dev/shm), so leftovers are ours.
export STOKE_RESTORE_TMPDIR=$WORK/shm
mkdir -p "$STOKE_RESTORE_TMPDIR"
make_bundle "$BUNDLE" /bin/sh /counter.sh
cat >"$BUNDLE/rootfs/counter.sh" <<'EOF'
#!/bin/sh
# GHOST=1: also hold a deleted 2 MiB file open (CRIU refuses to dump it).
if [ "$GHOST" = 1 ]; then
	dd if=/dev/zero of=/dev/shm/ghost bs=1M count=2 2>/dev/null
	exec 3</dev/shm/ghost
	rm /dev/shm/ghost
fi
data=$(seq 1 100000)
want=$(echo "$data" | md5sum)
i=0
ok=ok
while true; do
	i=$((i + 1))
	if [ $((i % 5)) = 0 ]; then
		got=$(echo "$data" | md5sum)
		[ "$got" = "$want" ] && ok=ok || ok=BAD
	fi
	echo "$i $ok" >/out/status.tmp
	mv /out/status.tmp /out/status
	sleep 0.02
done
EOF
chmod +x "$BUNDLE/rootfs/counter.sh"
edit_config "$BUNDLE" "c['mounts'].append({'destination': '/out', 'type': 'bind', 'source': '$OUT', 'options': ['rbind', 'rw']})"

count() { cut -d' ' -f1 "$OUT/status" 2>/dev/null || echo 0; }
verdict() { cut -d' ' -f2 "$OUT/status" 2>/dev/null; }

# wait_count N: wait (at most 10 s) until the counter passes N, memory ok.
wait_count() {
	local n=$1 i
	for i in $(seq 1 500); do
		if [ "$(count)" -gt "$n" ] 2>/dev/null; then
			[ "$(verdict)" = ok ] || fail "memory check: $(cat "$OUT/status")"
			return 0
		fi
		sleep 0.02
	done
	fail "counter stuck at $(count) (wanted > $n)"
}

# nothing_left ID: no state, no cgroup directory, no mount, no temp dir.
nothing_left() {
	local id=$1
	[ "$(status "$id")" = none ] || fail "$id: state left behind ($(status "$id"))"
	[ ! -e "$ROOT/$id" ] || fail "$id: $ROOT/$id left behind"
	if find /sys/fs/cgroup -maxdepth 6 -type d -path "*/stoke/$id" 2>/dev/null | grep -q .; then
		fail "$id: cgroup left behind: $(find /sys/fs/cgroup -maxdepth 6 -type d -path "*/stoke/$id")"
	fi
	! grep -q "$ROOT/$id" /proc/self/mountinfo || fail "$id: mount left behind"
	! ls "$STOKE_RESTORE_TMPDIR" | grep -q . || fail "temporary images left in $STOKE_RESTORE_TMPDIR"
	! ls -a "$WORK" | grep -q '^\.stoke-checkpoint-' || fail "temporary images left in $WORK"
}

# CRIU reopens a restored process's files by path and checks their size, so
# a restore needs the file system as it was at the dump (containerd keeps a
# rootfs diff for the same reason). The counter may be caught holding
# /out/status.tmp open; keep_out NAME saves /out while the container is
# frozen or gone, put_back_out NAME brings that state back before a restore.
keep_out() { rm -rf "$WORK/out.$1" && cp -a "$OUT" "$WORK/out.$1"; }
put_back_out() {
	find "$OUT" -mindepth 1 -delete
	cp -a "$WORK/out.$1/." "$OUT/"
}

start_counter() {
	local id=$1 bundle=${2:-$BUNDLE}
	rm -f "$OUT/status"
	st create --bundle "$bundle" "$id" </dev/null >/dev/null
	st start "$id"
	wait_count 5
}

echo "# checkpoint to a snapshot file, delete, restore"
start_counter c1
st checkpoint --snapshot "$WORK/s1.stoke" c1
[ -s "$WORK/s1.stoke" ] || fail "no snapshot written"
keep_out s1
nothing_left c1 # without --leave-running the container is gone (as runc)
before=$(count)
sleep 0.3
[ "$(count)" = "$before" ] || fail "the counter still runs after the checkpoint"
put_back_out s1
stats=$(st restore --snapshot "$WORK/s1.stoke" --bundle "$BUNDLE" --detach --stats c2 </dev/null)
echo "$stats" | "$PY" -c 'import json,sys; s=json.load(sys.stdin); assert s["criu_ms"] > 0 and s["total_ms"] >= s["criu_ms"] and s["source"] == "snapshot" and s["pages"] == "uffd", s' ||
	fail "bad --stats output: $stats"
[ "$(status c2)" = running ] || fail "c2 is $(status c2) after restore"
wait_count $((before + 10))

echo "# --leave-running"
st checkpoint --leave-running --snapshot "$WORK/s2.stoke" c2
[ "$(status c2)" = running ] || fail "c2 is $(status c2) after checkpoint --leave-running"
st snapshot verify "$WORK/s2.stoke" >/dev/null || fail "the --leave-running snapshot does not verify"
wait_count $(($(count) + 10))

echo "# a paused container (containerd pauses before a checkpoint): stays paused"
st pause c2
frozen=$(count)
st checkpoint --leave-running --snapshot "$WORK/s3.stoke" c2
[ "$(status c2)" = paused ] || fail "c2 is $(status c2) after checkpointing it paused"
keep_out s3
sleep 0.3
[ "$(count)" = "$frozen" ] || fail "the paused counter ran during or after the checkpoint"
st resume c2
wait_count $((frozen + 10))
st delete --force c2
nothing_left c2
put_back_out s3
before=$(count)
st restore --snapshot "$WORK/s3.stoke" --bundle "$BUNDLE" --detach c3p </dev/null
[ "$(status c3p)" = running ] || fail "c3p is $(status c3p) after restoring a paused checkpoint"
wait_count $((before + 10))
st delete --force c3p
nothing_left c3p

echo "# --image-path / --work-path (containerd's runc shim's way)"
start_counter c9
st checkpoint --image-path "$WORK/img9" --work-path "$WORK/work9" c9
[ -s "$WORK/img9/inventory.img" ] && [ -s "$WORK/work9/dump.log" ] || fail "no images or log"
nothing_left c9
before=$(count)
st restore --image-path "$WORK/img9" --work-path "$WORK/work9" --bundle "$BUNDLE" --detach \
	--pid-file "$WORK/c10.pid" --no-subreaper c10 </dev/null
[ "$(cat "$WORK/c10.pid")" = "$(st state c10 | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["pid"])')" ] ||
	fail "pid file does not name the restored init"
wait_count $((before + 10))
st delete --force c10
nothing_left c10

echo "# restore with CRIU's images streamed from the snapshot (no unpacking)"
put_back_out s3
stats=$(STOKE_RESTORE_IMAGES=stream st restore --snapshot "$WORK/s3.stoke" --bundle "$BUNDLE" --detach --stats c8 </dev/null)
echo "$stats" | grep -q '"images":"streamed"' || fail "not streamed: $stats"
wait_count $(($(count) + 10))
st delete --force c8
nothing_left c8

echo "# restore-on-create (annotation $WORK/s3.stoke)"
B2=$WORK/bundle2
mkdir -p "$B2"
cp "$BUNDLE/config.json" "$B2/"
edit_config "$B2" "c['root']['path'] = '$BUNDLE/rootfs'; c.setdefault('annotations', {})['org.stoke.snapshot'] = '$WORK/s3.stoke'"
put_back_out s3
st create --bundle "$B2" c3 </dev/null >/dev/null
[ "$(status c3)" = created ] || fail "c3 is $(status c3) after create"
before=$(count)
sleep 0.3
[ "$(count)" = "$before" ] || fail "a restored container runs before start"
st start c3
[ "$(status c3)" = running ] || fail "c3 is $(status c3) after start"
wait_count $((before + 10))
st delete --force c3
nothing_left c3

echo "# a dump CRIU refuses leaves the container running and no snapshot"
B3=$WORK/bundle3
mkdir -p "$B3"
cp "$BUNDLE/config.json" "$B3/"
edit_config "$B3" "c['root']['path'] = '$BUNDLE/rootfs'; c['process']['env'].append('GHOST=1')"
start_counter c4 "$B3"
if st checkpoint --snapshot "$WORK/s4.stoke" c4 2>"$WORK/err"; then
	fail "checkpoint of a container holding a big deleted file succeeded"
fi
grep -q "keeps running" "$WORK/err" || fail "unclear error: $(cat "$WORK/err")"
[ ! -e "$WORK/s4.stoke" ] || fail "a failed checkpoint left $WORK/s4.stoke"
! ls -a "$WORK" | grep -q '^\.s4\.stoke\.' || fail "a failed checkpoint left a temporary snapshot"
[ "$(status c4)" = running ] || fail "c4 is $(status c4) after a failed checkpoint"
wait_count $(($(count) + 10))
st delete --force c4
nothing_left c4

echo "# a corrupted snapshot is refused before any process exists"
cp "$WORK/s1.stoke" "$WORK/bad.stoke"
size=$(stat -c %s "$WORK/bad.stoke")
printf 'XXXXXXXX' | dd of="$WORK/bad.stoke" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
if st restore --snapshot "$WORK/bad.stoke" --bundle "$BUNDLE" --detach c5 </dev/null 2>"$WORK/err"; then
	fail "restore from a corrupted snapshot succeeded"
fi
echo "  $(cat "$WORK/err")"
nothing_left c5

echo "# a snapshot of another bundle is refused, naming the difference"
B4=$WORK/bundle4
mkdir -p "$B4"
cp "$BUNDLE/config.json" "$B4/"
edit_config "$B4" "c['root']['path'] = '$BUNDLE/rootfs'; c['process']['args'] = ['/bin/sh', '-c', 'sleep 100']"
if st restore --snapshot "$WORK/s1.stoke" --bundle "$B4" --detach c6 </dev/null 2>"$WORK/err"; then
	fail "restore into a bundle with other process.args succeeded"
fi
grep -q "process.args differ" "$WORK/err" || fail "unclear error: $(cat "$WORK/err")"
nothing_left c6
edit_config "$B4" "c['process']['args'] = ['/bin/sh', '/counter.sh']; c['root']['path'] = '$WORK/otherroot'"
"$FIXTURES/make-busybox-rootfs" "$WORK/otherroot" >/dev/null
rm -f "$WORK/otherroot/bin/md5sum"
if st restore --snapshot "$WORK/s1.stoke" --bundle "$B4" --detach c6 </dev/null 2>"$WORK/err"; then
	fail "restore onto another root filesystem succeeded"
fi
grep -q "different root filesystem" "$WORK/err" || fail "unclear error: $(cat "$WORK/err")"
nothing_left c6

echo "# a restore CRIU cannot finish leaves nothing behind"
B5=$WORK/bundle5
mkdir -p "$B5"
cp "$BUNDLE/config.json" "$B5/"
edit_config "$B5" "c['root']['path'] = '$BUNDLE/rootfs'; [m.update(source='$WORK/missing') for m in c['mounts'] if m['destination'] == '/out']"
if st restore --snapshot "$WORK/s1.stoke" --bundle "$B5" --detach c7 </dev/null 2>"$WORK/err"; then
	fail "restore with a missing bind source succeeded"
fi
echo "  $(cat "$WORK/err")"
nothing_left c7
echo "ok"
