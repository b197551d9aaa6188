#!/usr/bin/env bash
# exec into a running container (args, --env, --cwd, --user, --cap,
# --no-new-privs, --process FILE, --detach --pid-file, exit status, joined
# namespaces and cgroup) and terminals: the console socket protocol for
# create and exec (our own pty receiver: CI has no TTY), consoleSize, and
# run/exec -t relaying a pty without a console socket.
source "$(dirname "$0")/lib.sh"

make_bundle "$BUNDLE" sleep 1000
edit_config "$BUNDLE" "c['linux']['cgroupsPath'] = '$(cgpath e)'; c['process']['noNewPrivileges'] = False; c['root']['readonly'] = False"
st run -d --bundle "$BUNDLE" --pid-file "$WORK/e.pid" e </dev/null
init=$(cat "$WORK/e.pid")

out=$(st exec --env FOO=foo1 --cwd /tmp --user 1000:100 e sh -c 'echo $FOO; pwd; id -u; id -g; grep -E "^(CapEff|NoNewPrivs)" /proc/self/status')
[ "$(echo "$out" | head -4)" = "foo1
/tmp
1000
100" ] || fail "exec env/cwd/user: $out"
echo "$out" | grep -q "NoNewPrivs:.*0" || fail "exec NoNewPrivs: $out"
out=$(st exec --cap CAP_NET_RAW --no-new-privs e grep -E "^(CapEff|NoNewPrivs)" /proc/self/status)
eff=$(echo "$out" | awk '/CapEff/ {print $2}')
[ $(( 0x$eff >> 13 & 1 )) = 1 ] || fail "exec --cap CAP_NET_RAW: $out"
echo "$out" | grep -q "NoNewPrivs:.*1" || fail "exec --no-new-privs: $out"
set +e; st exec e sh -c 'exit 7'; rc=$?; set -e
[ $rc = 7 ] || fail "exec exit status $rc, expected 7"
st exec e /no/such/binary 2>"$WORK/err" && fail "exec of a missing binary succeeded"
grep -q "no/such/binary" "$WORK/err" || fail "missing binary message: $(cat "$WORK/err")"

# the exec'd process shares every namespace and the cgroup of the init
out=$(st exec e sh -c 'for n in pid net ipc uts mnt; do readlink /proc/self/ns/$n; done; cat /proc/self/cgroup | sort')
exp=$(for n in pid net ipc uts mnt; do readlink /proc/$init/ns/$n; done; sort /proc/$init/cgroup)
[ "$out" = "$exp" ] || fail "exec namespaces/cgroup differ: $out / $exp"

# --process FILE, --detach, --pid-file
cat >"$WORK/proc.json" <<'JSON'
{"args": ["sh", "-c", "echo $BAR > /tmp/from-process; exec sleep 500"], "env": ["BAR=bar2", "PATH=/bin"],
 "cwd": "/", "user": {"uid": 1000, "gid": 1000}, "terminal": false}
JSON
st exec --process "$WORK/proc.json" --detach --pid-file "$WORK/x.pid" e
xpid=$(cat "$WORK/x.pid")
[ -e "/proc/$xpid" ] || fail "detached exec process not running"
[ "$(awk '/^Uid/ {print $2}' /proc/$xpid/status)" = 1000 ] || fail "--process user"
for _ in $(seq 50); do [ -s "$BUNDLE/rootfs/tmp/from-process" ] && break; sleep 0.05; done
[ "$(cat "$BUNDLE/rootfs/tmp/from-process")" = bar2 ] || fail "--process env"
st ps --format json e | "$PY" -c 'import json,sys; p=json.load(sys.stdin); assert int(sys.argv[1]) in p and int(sys.argv[2]) in p, p' "$init" "$xpid" || fail "ps does not list the exec'd process"

# exec with a terminal over a console socket
"$PY" "$HERE/console-recv.py" "$WORK/c1.sock" "$WORK/c1.out" &
BG_PIDS+=($!)
for _ in $(seq 100); do [ -e "$WORK/c1.out.ready" ] && break; sleep 0.05; done
st exec -t --console-socket "$WORK/c1.sock" e sh -c 'tty; echo term-ok'
for _ in $(seq 100); do grep -q term-ok "$WORK/c1.out" 2>/dev/null && break; sleep 0.05; done
grep -q "^/dev/pts/[0-9]" "$WORK/c1.out" || fail "exec -t: not a pty: $(cat "$WORK/c1.out")"
grep -q "^/dev/pts/" "$WORK/c1.out.name" || fail "console socket payload: $(cat "$WORK/c1.out.name")"
# exec -t without a console socket: stoke relays the pty itself
out=$(st exec -t e sh -c 'tty' </dev/null | tr -d '\r')
echo "$out" | grep -q "^/dev/pts/" || fail "exec -t relay: $out"
st delete --force e
assert_gone e "$init"

# create with process.terminal and consoleSize, through the console socket
edit_config "$BUNDLE" "c['process']['terminal'] = True; c['process']['consoleSize'] = {'height': 31, 'width': 101}; c['process']['args'] = ['sh', '-c', 'tty; stty size; stat -c %t /dev/console']; c['linux']['cgroupsPath'] = '$(cgpath t)'"
"$PY" "$HERE/console-recv.py" "$WORK/c2.sock" "$WORK/c2.out" &
recv=$!
BG_PIDS+=($recv)
for _ in $(seq 100); do [ -e "$WORK/c2.out.ready" ] && break; sleep 0.05; done
st create --bundle "$BUNDLE" --console-socket "$WORK/c2.sock" t </dev/null
st start t
wait $recv || true
out=$(tr -d '\r' <"$WORK/c2.out")
[ "$out" = "/dev/pts/0
31 101
88" ] || fail "create with a terminal: $out"
st delete --force t
# run in the foreground with a terminal and no console socket: relayed
out=$(st run --bundle "$BUNDLE" t </dev/null | tr -d '\r')
echo "$out" | grep -q "^31 101$" || fail "run -t relay: $out"
echo ok
