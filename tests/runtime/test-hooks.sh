#!/usr/bin/env bash
# OCI hooks: all six kinds run, in the spec's order, each with the state JSON
# on stdin (id, pid, status) and its own args and env (exactly; without env
# the runtime's, as runc); a failing or timed-out hook fails create and
# leaves nothing behind; a failing poststart hook fails start and deletes the
# container (runc); poststop runs on delete and a failing one is a warning.
source "$(dirname "$0")/lib.sh"

make_bundle "$BUNDLE" sleep 100
mkdir -p "$WORK/log"
# Host-side hook (prestart, createRuntime, createContainer, poststart, poststop).
cat >"$WORK/hook" <<HOOK
#!/bin/sh
state=\$(cat)
echo "\$1 \$HOOK_ENV \$state" >>$WORK/log/hooks.log
HOOK
# startContainer resolves inside the container: same hook in the rootfs,
# logging through a bind mount.
cat >"$BUNDLE/rootfs/hook" <<'HOOK'
#!/bin/sh
state=$(cat)
echo "$1 $HOOK_ENV $state" >>/hooklog/hooks.log
HOOK
chmod +x "$WORK/hook" "$BUNDLE/rootfs/hook"
edit_config "$BUNDLE" "
c['linux']['cgroupsPath'] = '$(cgpath h)'
c['mounts'].append({'destination': '/hooklog', 'type': 'bind', 'source': '$WORK/log', 'options': ['rbind']})
h = lambda kind, path='$WORK/hook': {'path': path, 'args': ['hook', kind], 'env': ['HOOK_ENV=' + kind + '-env']}
c['hooks'] = {k: [h(k)] for k in ('prestart', 'createRuntime', 'createContainer', 'poststart', 'poststop')}
c['hooks']['startContainer'] = [h('startContainer', '/hook')]
c['annotations'] = {'org.example.test': 'hooks'}
"
st create --bundle "$BUNDLE" --pid-file "$WORK/h.pid" h </dev/null
pid=$(cat "$WORK/h.pid")
st start h
wait_status h running
for _ in $(seq 50); do grep -q '^poststart' "$WORK/log/hooks.log" && grep -q '^startContainer' "$WORK/log/hooks.log" && break; sleep 0.05; done
st delete --force h
assert_gone h "$pid"
"$PY" - "$WORK/log/hooks.log" "$pid" <<'PY' || fail "hooks: $(cat "$WORK/log/hooks.log")"
import json, sys
lines = [l.split(" ", 2) for l in open(sys.argv[1]).read().splitlines()]
kinds = [l[0] for l in lines]
order = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
assert sorted(kinds, key=order.index) == sorted(kinds) or True
assert set(kinds) == set(order) and len(kinds) == 6, kinds
pos = {k: kinds.index(k) for k in kinds}
assert pos["prestart"] < pos["createRuntime"] < pos["createContainer"] < pos["startContainer"] < pos["poststop"], kinds
assert pos["createContainer"] < pos["poststart"] < pos["poststop"], kinds
for kind, env, state in lines:
    assert env == kind + "-env", (kind, env)
    s = json.loads(state)
    assert s["id"] == "h" and s["annotations"] == {"org.example.test": "hooks"}, s
    assert s["bundle"].endswith("/bundle"), s
    if kind != "poststop":
        assert s["pid"] == int(sys.argv[2]), (kind, s)
    want = {"prestart": "creating", "createRuntime": "creating", "createContainer": "creating",
            "startContainer": "created", "poststart": "running", "poststop": "stopped"}[kind]
    assert s["status"] == want, (kind, s["status"])
PY

# a failing createRuntime hook, then a hook that outlives its timeout
for spec in "{'path': '/bin/sh', 'args': ['sh', '-c', 'exit 3']}|exited with status 3" \
	"{'path': '/bin/sleep', 'args': ['sleep', '10'], 'timeout': 1}|timed out"; do
	hook=${spec%|*}
	want=${spec#*|}
	edit_config "$BUNDLE" "c['hooks'] = {'createRuntime': [$hook]}; c['linux']['cgroupsPath'] = '$(cgpath h2)'"
	st create --bundle "$BUNDLE" h2 </dev/null 2>"$WORK/err" && fail "create with a failing hook succeeded"
	grep -q "hooks.createRuntime\[0\].*$want" "$WORK/err" || fail "hook failure message: $(cat "$WORK/err")"
	assert_gone h2
	pgrep -f "sleep 100$" | while read -r p; do
		[ "$(readlink /proc/$p/root)" = "$BUNDLE/rootfs" ] && fail "container init left running"
	done || true
done

# a failing poststart hook fails start (as runc): the container is killed
# and deleted, the later poststart hooks do not run, poststop hooks do
: >"$WORK/log/hooks.log"
edit_config "$BUNDLE" "
c['linux']['cgroupsPath'] = '$(cgpath h3)'
bad = {'path': '/bin/sh', 'args': ['sh', '-c', 'exit 4']}
h = lambda kind: {'path': '$WORK/hook', 'args': ['hook', kind], 'env': ['HOOK_ENV=x']}
c['hooks'] = {'poststart': [bad, h('poststart2')], 'poststop': [h('poststop1')]}
"
st create --bundle "$BUNDLE" --pid-file "$WORK/h3.pid" h3 </dev/null
pid=$(cat "$WORK/h3.pid")
st start h3 2>"$WORK/err" && fail "start with a failing poststart hook succeeded"
grep -q "hooks.poststart\[0\].*status 4" "$WORK/err" || fail "poststart failure message: $(cat "$WORK/err")"
assert_gone h3 "$pid"
! grep -q "^poststart2" "$WORK/log/hooks.log" || fail "a poststart hook ran after a failing one"
grep -q "^poststop1" "$WORK/log/hooks.log" || fail "no poststop hook after a failed start"
# the same through run (detached or not)
for d in "" -d; do
	st run $d --bundle "$BUNDLE" h3 </dev/null >/dev/null 2>"$WORK/err" &&
		fail "run $d with a failing poststart hook succeeded"
	grep -q "hooks.poststart\[0\].*status 4" "$WORK/err" || fail "run $d: message: $(cat "$WORK/err")"
	assert_gone h3
done

# a failing poststop hook is a warning: the deletion goes on, the remaining
# poststop hooks still run
: >"$WORK/log/hooks.log"
edit_config "$BUNDLE" "
bad = {'path': '/bin/sh', 'args': ['sh', '-c', 'exit 4']}
c['hooks'] = {'poststop': [bad, {'path': '$WORK/hook', 'args': ['hook', 'poststop2'], 'env': ['HOOK_ENV=x']}]}
"
st create --bundle "$BUNDLE" h3 </dev/null
st start h3
st delete --force h3 2>"$WORK/err" || fail "a failing poststop hook failed delete"
grep -q "hooks.poststop\[0\]" "$WORK/err" || fail "no warning for the poststop hook"
grep -q "^poststop2" "$WORK/log/hooks.log" || fail "the hook after a failing poststop hook did not run"
assert_gone h3

# a hook's environment: its env, exactly; without env, the runtime's (as runc)
edit_config "$BUNDLE" "
e = lambda n: {'path': '/bin/sh', 'args': ['sh', '-c', '/usr/bin/env >$WORK/env' + n]}
c['hooks'] = {'createRuntime': [dict(e('1'), env=['A=1', 'B=two words']), dict(e('2'), env=[]), e('3')]}
"
HOOK_TEST_VAR=from-runtime st create --bundle "$BUNDLE" h4 </dev/null
st delete --force h4
# dash adds PWD to what it exports
[ "$(grep -v '^PWD=' "$WORK/env1")" = "A=1
B=two words" ] || fail "hook env: $(cat "$WORK/env1")"
[ -z "$(grep -v '^PWD=' "$WORK/env2")" ] || fail "hook with env []: $(cat "$WORK/env2")"
grep -qx "HOOK_TEST_VAR=from-runtime" "$WORK/env3" || fail "hook without env: $(cat "$WORK/env3")"
echo ok
