#!/usr/bin/env bash
# Every verb on real containers: create/start/state/kill/delete, run (exit
# status, --detach), list, ps, pause/resume, events --stats, update (JSON and
# flags), spec; "does not exist" for a missing container; after kill+delete
# nothing is left (process, cgroup directory, state, mounts).
source "$(dirname "$0")/lib.sh"

make_bundle "$BUNDLE" sleep 1000
edit_config "$BUNDLE" "c['linux']['cgroupsPath'] = '$(cgpath c1)'"

# create: the init waits; pid file written; state "created".
st create --bundle "$BUNDLE" --pid-file "$WORK/c1.pid" c1 </dev/null >/dev/null
pid=$(cat "$WORK/c1.pid")
[ "$(status c1)" = created ] || fail "after create: $(status c1)"
st state c1 | "$PY" -c '
import json, sys
s = json.load(sys.stdin)
assert s["id"] == "c1" and s["pid"] == int(sys.argv[1]), s
assert s["bundle"] == sys.argv[2] and s["rootfs"] == sys.argv[2] + "/rootfs", s
assert s["ociVersion"] and s["created"].endswith("Z"), s
' "$pid" "$BUNDLE" || fail "state JSON"
grep -q "^NSpid:.*[[:space:]]1$" "/proc/$pid/status" || fail "init is not pid 1 in its namespace"
[ -n "$(cgroup_dirs c1)" ] || fail "no cgroup directory for c1"
# a second create with the same id is refused
st create --bundle "$BUNDLE" c1 </dev/null 2>"$WORK/err" && fail "duplicate id accepted"
grep -q "already exists" "$WORK/err" || fail "duplicate id message: $(cat "$WORK/err")"

st start c1
wait_status c1 running
st start c1 2>/dev/null && fail "start of a running container succeeded"
[ "$(readlink "/proc/$pid/exe")" = /bin/busybox ] || fail "init did not exec busybox"

# list: table, json, quiet
st list | grep -Eq "^c1 +$pid +running +$BUNDLE" || fail "list table: $(st list)"
st list --format json | "$PY" -c 'import json,sys; l=json.load(sys.stdin); assert [c["id"] for c in l]==["c1"] and l[0]["status"]=="running", l' || fail "list json"
[ "$(st list -q)" = c1 ] || fail "list -q"

# ps
st ps --format json c1 | "$PY" -c 'import json,sys; assert json.load(sys.stdin)==[int(sys.argv[1])]' "$pid" || fail "ps json"
st ps c1 | grep -q "sleep 1000" || fail "ps table: $(st ps c1)"

# pause / resume
st pause c1
[ "$(status c1)" = paused ] || fail "after pause: $(status c1)"
grep -q '^State:.*[DS]' "/proc/$pid/status" || true
st resume c1
[ "$(status c1)" = running ] || fail "after resume: $(status c1)"
st resume c1 2>/dev/null && fail "resume of a running container succeeded"

# events --stats: one JSON event with cpu and memory data
st events --stats c1 | "$PY" -c '
import json, sys
e = json.loads(sys.stdin.readline())
assert e["type"] == "stats" and e["id"] == "c1", e
assert e["data"]["memory"]["usage"]["usage"] > 0, e
assert "pids" in e["data"] and e["data"]["pids"]["current"] >= 1, e
' || fail "events --stats"

# events without --stats: a stats event every --interval
n=$(timeout 5 "$STOKE" --root "$ROOT" events --interval 100ms c1 | head -3 | grep -c '"type":"stats"') || true
[ "$n" = 3 ] || fail "events --interval: $n stats events"

# update: JSON on stdin, then flags; read back from the cgroup
echo '{"pids":{"limit":77}}' | st update -r - c1
pidsdir=$(cgroup_dirs c1 | grep '/pids/' | head -1)
[ -n "$pidsdir" ] && { [ "$(cat "$pidsdir/pids.max")" = 77 ] || fail "update JSON: pids.max=$(cat "$pidsdir/pids.max")"; }
st update --pids-limit 88 --memory 64m c1
[ -n "$pidsdir" ] && { [ "$(cat "$pidsdir/pids.max")" = 88 ] || fail "update flag"; }
memdir=$(cgroup_dirs c1 | grep '/memory/' | head -1)
if [ -n "$memdir" ]; then
	[ "$(cat "$memdir/memory.limit_in_bytes")" = $((64 << 20)) ] || fail "update --memory 64m"
else
	[ "$(cat "$(cgroup_dirs c1 | head -1)/memory.max")" = $((64 << 20)) ] || fail "update --memory 64m (v2)"
fi
echo '{"pids":{"limit":"x"}}' | st update -r - c1 2>"$WORK/err" && fail "bad update accepted"
grep -q "pids" "$WORK/err" || fail "bad update message: $(cat "$WORK/err")"

# kill: by name, by number; a running container is not deleted without --force
st delete c1 2>"$WORK/err" && fail "delete of a running container succeeded"
grep -q "not stopped" "$WORK/err" || fail "delete message: $(cat "$WORK/err")"
st kill c1 SIGKILL
wait_status c1 stopped
st kill c1 9 2>"$WORK/err" && fail "kill of a stopped container succeeded"
grep -q "not running" "$WORK/err" || fail "kill stopped message"
st delete c1
assert_gone c1 "$pid"

# missing container: "does not exist" for every verb (containerd maps it to NotFound)
for verb in state start pause resume ps events "kill" delete exec; do
	args=(nope)
	[ "$verb" = exec ] && args=(nope true)
	st $verb "${args[@]}" 2>"$WORK/err" && fail "$verb of a missing container succeeded"
	grep -q 'container "nope" does not exist' "$WORK/err" || fail "$verb: $(cat "$WORK/err")"
done
st delete --force nope || fail "delete --force of a missing container failed"

# delete --force of a running container; kill --all
edit_config "$BUNDLE" "c['linux']['cgroupsPath'] = '$(cgpath c2)'"
st run -d --bundle "$BUNDLE" --pid-file "$WORK/c2.pid" c2 </dev/null >/dev/null
pid=$(cat "$WORK/c2.pid")
[ "$(status c2)" = running ] || fail "run -d: $(status c2)"
st exec -d c2 sleep 999
st kill --all c2 KILL
wait_status c2 stopped
st delete c2
assert_gone c2 "$pid"
st run -d --bundle "$BUNDLE" --pid-file "$WORK/c2.pid" c2 </dev/null >/dev/null
pid=$(cat "$WORK/c2.pid")
st delete --force c2
assert_gone c2 "$pid"

# a created container that is never started is deleted without --force
st create --bundle "$BUNDLE" --pid-file "$WORK/c2.pid" c2 </dev/null
pid=$(cat "$WORK/c2.pid")
st delete c2
assert_gone c2 "$pid"

# run in the foreground: output, exit status, then nothing left
edit_config "$BUNDLE" "c['process']['args'] = ['sh', '-c', 'echo out-\$((6*7)); exit 3']; c['linux']['cgroupsPath'] = '$(cgpath c3)'"
out=$(st run --bundle "$BUNDLE" c3 </dev/null) && fail "exit 3 became 0"
[ $? -eq 3 ] || true
set +e; st run --bundle "$BUNDLE" c3 </dev/null >/dev/null; rc=$?; set -e
[ $rc -eq 3 ] || fail "run exit status $rc, expected 3"
[ "$out" = out-42 ] || fail "run output \"$out\""
assert_gone c3
# a foreground run reports a signal death as 128 + signal
edit_config "$BUNDLE" "c['process']['args'] = ['sleep', '100']"
st run --bundle "$BUNDLE" c3 </dev/null &
runpid=$!
BG_PIDS+=($runpid)
wait_status c3 running
st kill c3 KILL
set +e; wait $runpid; rc=$?; set -e
[ $rc -eq 137 ] || fail "killed by SIGKILL: exit status $rc, expected 137"
assert_gone c3

# --no-pivot (chroot + MS_MOVE), --preserve-fds, --no-new-keyring
edit_config "$BUNDLE" "c['process']['args'] = ['sh', '-c', 'cat <&3; ls /proc/self/fd | wc -l']; c['linux']['cgroupsPath'] = '$(cgpath c4)'"
echo passed-fd >"$WORK/fd3"
out=$(st run --no-pivot --no-new-keyring --preserve-fds 1 --bundle "$BUNDLE" c4 3<"$WORK/fd3" 4<"$WORK/fd3" </dev/null)
[ "$(echo "$out" | head -1)" = passed-fd ] || fail "--preserve-fds: $out"
# fds 0-3 and the one ls opens: fd 4 was not preserved
[ "$(echo "$out" | tail -1)" = 5 ] || fail "an fd beyond --preserve-fds leaked: $out"
assert_gone c4

# spec: the default and the rootless config; refuses to overwrite
mkdir "$WORK/spec"
st spec --bundle "$WORK/spec"
"$PY" -c '
import json, sys
c = json.load(open(sys.argv[1]))
assert c["process"]["args"] == ["sh"] and c["root"]["path"] == "rootfs", c
assert {"type": "mount"} in c["linux"]["namespaces"]
' "$WORK/spec/config.json" || fail "spec"
st spec --bundle "$WORK/spec" 2>/dev/null && fail "spec overwrote config.json"
rm "$WORK/spec/config.json"
st spec --rootless --bundle "$WORK/spec"
"$PY" -c '
import json, sys
l = json.load(open(sys.argv[1]))["linux"]
assert {"type": "user"} in l["namespaces"] and {"type": "network"} not in l["namespaces"]
assert l["uidMappings"][0]["hostID"] == 0
' "$WORK/spec/config.json" || fail "spec --rootless"

# the --log file gets JSON lines with the error (what containerd reads back)
st --log "$WORK/log.json" --log-format json state nope 2>/dev/null && fail "state nope"
"$PY" -c '
import json, sys
l = [json.loads(x) for x in open(sys.argv[1])]
assert l[-1]["level"] == "error" and "does not exist" in l[-1]["msg"], l
' "$WORK/log.json" || fail "--log-format json"
"$STOKE" --root "$ROOT" --systemd-cgroup list 2>"$WORK/err" && fail "--systemd-cgroup accepted without systemd"
grep -q systemd "$WORK/err" || fail "--systemd-cgroup message"
echo ok
