#!/usr/bin/env bash
# Terminals and their device nodes, as runc sets them up: the pty slave
# owned by process.user, the pty as the controlling terminal also when the
# init is forked into a joined namespace (not the session leader that the
# clone made), /dev/pts and /dev/ptmx on a read-only rootfs or with a
# linux.devices ptmx entry; rootfsPropagation; stoke spec's namespaces.
source "$(dirname "$0")/lib.sh"

# console_run ID: create+start $BUNDLE with a console socket; the pty's
# output (CRs dropped) on stdout.
console_run() {
	local id=$1
	"$PY" "$HERE/console-recv.py" "$WORK/$id.sock" "$WORK/$id.out" &
	local recv=$!
	BG_PIDS+=($recv)
	for _ in $(seq 100); do [ -e "$WORK/$id.out.ready" ] && break; sleep 0.05; done
	st create --bundle "$BUNDLE" --console-socket "$WORK/$id.sock" "$id" </dev/null
	st start "$id"
	wait $recv || true
	st delete --force "$id" >/dev/null 2>&1 || true
	tr -d '\r' <"$WORK/$id.out"
}

make_bundle "$BUNDLE" true
# 'tty' and /proc/self/stat's tty_nr (field 7): the controlling terminal.
edit_config "$BUNDLE" "c['process']['terminal'] = True; c['process']['user'] = {'uid': 1000, 'gid': 1000}; c['process']['args'] = ['sh', '-c', 'stat -L -c %u:%g /proc/self/fd/0; tty; cut -d\" \" -f7 /proc/self/stat']; c['linux']['cgroupsPath'] = '$(cgpath t1)'"
out=$(console_run t1)
# runc's owner: the user, and the devpts group (gid=5 in the default mounts)
[ "$(echo "$out" | head -2)" = "1000:5
/dev/pts/0" ] || fail "terminal of user 1000:1000: $out"
[ "$(echo "$out" | sed -n 3p)" != 0 ] || fail "no controlling terminal: $out"

# A namespace joined by path: the init is forked into the pid namespace,
# so it is not the session leader that TIOCSCTTY needs (podman+conmon).
edit_config "$BUNDLE" "c['linux']['namespaces'] = [n for n in c['linux']['namespaces'] if n['type'] != 'network'] + [{'type': 'network', 'path': '/proc/self/ns/net'}]; c['linux']['cgroupsPath'] = '$(cgpath t2)'"
out=$(console_run t2)
echo "$out" | grep -q "^/dev/pts/0$" || fail "terminal with a joined namespace: $out"
[ "$(echo "$out" | sed -n 3p)" != 0 ] || fail "no controlling terminal with a joined namespace: $out"

# root.readonly (the default bundle's) with the default /dev, /dev/pts
# mounts worked above; a linux.devices entry for /dev/ptmx must not stop
# the container's own devpts: /dev/ptmx ends as runc's pts/ptmx symlink.
make_bundle "$BUNDLE" true
edit_config "$BUNDLE" "c['process']['terminal'] = True; c['root']['readonly'] = True; c['linux']['devices'] = [{'path': '/dev/ptmx', 'type': 'c', 'major': 5, 'minor': 2, 'fileMode': 0o666}]; c['process']['args'] = ['sh', '-c', 'tty; readlink /dev/ptmx']; c['linux']['cgroupsPath'] = '$(cgpath t3)'"
out=$(console_run t3)
[ "$out" = "/dev/pts/0
pts/ptmx" ] || fail "/dev/ptmx from linux.devices: $out"

# rootfsPropagation on the container's "/" (runc 1.1 cannot bind an
# unbindable rootfs: EINVAL).
make_bundle "$BUNDLE" awk '$5 == "/" {print $7}' /proc/self/mountinfo
for p in unbindable shared; do
	edit_config "$BUNDLE" "c['linux']['rootfsPropagation'] = '$p'; c['linux']['cgroupsPath'] = '$(cgpath "p-$p")'"
	out=$(st run --bundle "$BUNDLE" "p-$p" </dev/null 2>&1) || fail "rootfsPropagation $p: $out"
	case $p in
	unbindable) [ "$out" = unbindable ] || fail "rootfsPropagation unbindable: / is '$out'" ;;
	shared) echo "$out" | grep -q "^shared:" || fail "rootfsPropagation shared: / is '$out'" ;;
	esac
done

# stoke spec: runc 1.1.5's default namespaces (no cgroup namespace); the
# same list as `runc spec` where runc is installed.
mkdir "$WORK/spec"
st spec --bundle "$WORK/spec"
ns=$("$PY" -c 'import json,sys; print(" ".join(n["type"] for n in json.load(open(sys.argv[1]))["linux"]["namespaces"]))' "$WORK/spec/config.json")
[ "$ns" = "pid network ipc uts mount" ] || fail "stoke spec namespaces: $ns"
if command -v runc >/dev/null; then
	mkdir "$WORK/runc-spec"
	(cd "$WORK/runc-spec" && runc spec)
	"$PY" -c 'import json,sys; a, b = (json.load(open(f))["linux"]["namespaces"] for f in sys.argv[1:]); assert a == b, (a, b)' \
		"$WORK/spec/config.json" "$WORK/runc-spec/config.json" || fail "stoke spec namespaces differ from runc spec's"
fi
# a namespace type listed twice: a clear error
make_bundle "$BUNDLE" true
edit_config "$BUNDLE" "c['linux']['namespaces'].append({'type': 'network'})"
st run --bundle "$BUNDLE" dup </dev/null 2>"$WORK/err" && fail "a duplicate namespace was accepted"
grep -q 'linux.namespaces.*duplicate "network"' "$WORK/err" || fail "duplicate namespace message: $(cat "$WORK/err")"
echo ok
