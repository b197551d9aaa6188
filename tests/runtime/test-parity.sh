#!/usr/bin/env bash
# runc parity where the host's safety is at stake:
#  - a bind-mounted /dev (or a node or directory of it) is never changed:
#    no node is unlinked, re-created, relinked or re-moded (checked on a fake
#    "host /dev" tmpfs, never on the real one, whose /dev/null is only
#    watched);
#  - delete --force (and kill KILL) of a paused container thaws and kills it;
#  - an existing frozen cgroup (v1 freezer, v2 cgroup.freeze) is refused at
#    once instead of hanging the init;
#  - kill takes signal 0 and numbers.
#  - lo is up in a new network namespace (runc brings it up);
#  - process.cwd is entered as root, before the user switch and seccomp;
#  - the CLI: --version's shape, exit statuses, --debug's runc-style lines.
source "$(dirname "$0")/lib.sh"

# What the real host's /dev/null must still be at the end.
host_null() { stat -c '%i %F %t:%T %a' /dev/null; }
HOST_NULL=$(host_null)

# Frozen cgroups this test made: thawed before lib.sh's cleanup removes them.
FROZEN_DIRS=()
thaw_frozen() {
	local d
	for d in "${FROZEN_DIRS[@]}"; do
		[ -e "$d/freezer.state" ] && echo THAWED >"$d/freezer.state"
		[ -e "$d/cgroup.freeze" ] && echo 0 >"$d/cgroup.freeze"
		rmdir "$d" 2>/dev/null
	done
	return 0
}
parity_cleanup() {
	local rc=$?
	set +e
	thaw_frozen
	(exit $rc)
	cleanup
}
trap parity_cleanup EXIT

make_bundle "$BUNDLE" true
cp "$BUNDLE/config.json" "$WORK/config.orig"

# ---- a bind-mounted /dev -------------------------------------------------

# A fake host /dev: its own tmpfs, nodes with modes runc's defaults do not
# use, the usual symlinks (stdout pointing somewhere else, to see a relink),
# the mount-point directories and a regular sentinel file.
FAKEDEV=$WORK/fakedev
mkdir "$FAKEDEV"
mount -t tmpfs -o mode=755 fakedev "$FAKEDEV"
(
	cd "$FAKEDEV"
	mknod -m 600 null c 1 3
	mknod -m 640 zero c 1 5
	mknod -m 600 full c 1 7
	mknod -m 600 random c 1 8
	mknod -m 600 urandom c 1 9
	mknod -m 600 tty c 5 0
	ln -s /proc/self/fd fd
	ln -s /proc/self/fd/0 stdin
	ln -s /proc/self/fd/9 stdout
	ln -s pts/ptmx ptmx
	mkdir pts shm mqueue
	echo host-sentinel >sentinel
)

# snapshot DIR: every entry's inode, type, device, mode, owner, times and link target.
snapshot() {
	local f
	(
		cd "$1"
		for f in $(ls -A | sort); do
			stat -c '%n %i %F %t:%T %a %u:%g %Y %Z' "$f"
			if [ -L "$f" ]; then echo "  -> $(readlink "$f")"; fi
		done
		cat sentinel
	)
}
snapshot "$FAKEDEV" >"$WORK/fakedev.before"

# dev_case NAME 'python edits': run a container with the edits, then the fake
# /dev must be exactly as before, and the container must have succeeded.
dev_case() {
	cp "$WORK/config.orig" "$BUNDLE/config.json"
	edit_config "$BUNDLE" "c['linux']['cgroupsPath'] = '$(cgpath dev)'; $2"
	local out rc=0
	out=$(st run --bundle "$BUNDLE" dev </dev/null 2>&1) || rc=$?
	snapshot "$FAKEDEV" >"$WORK/fakedev.after"
	diff -u "$WORK/fakedev.before" "$WORK/fakedev.after" >&2 ||
		fail "$1: the bind-mounted (host) /dev changed"
	[ "$(host_null)" = "$HOST_NULL" ] || fail "$1: the host's /dev/null changed: $(host_null)"
	[ $rc -eq 0 ] || fail "$1: run failed ($rc): $out"
	echo "$out"
}

# The whole /dev bound (on top of the default tmpfs); the container sees it.
out=$(dev_case "bind /dev" "c['mounts'].append({'destination': '/dev', 'type': 'bind', 'source': '$FAKEDEV', 'options': ['rbind']}); c['process']['args'] = ['sh', '-c', 'cat /dev/sentinel; echo x >/dev/null']")
[ "$out" = host-sentinel ] || fail "bind /dev: the container did not see the bound /dev: $out"
# In place of the tmpfs, as "/dev/" (the same directory), with linux.devices.
dev_case "bind /dev/ in place" "c['mounts'] = [dict(m, type='bind', source='$FAKEDEV', destination='/dev/', options=['rbind']) if m['destination'] == '/dev' else m for m in c['mounts']]; c['linux']['devices'] = [{'path': '/dev/null', 'type': 'c', 'major': 1, 'minor': 3}, {'path': '/dev/zero', 'type': 'c', 'major': 1, 'minor': 5, 'fileMode': 438}]" >/dev/null
# A directory of the host bound below the container's own /dev tmpfs, with
# linux.devices naming nodes that exist there.
out=$(dev_case "bind /dev/custom" "c['mounts'].append({'destination': '/dev/custom', 'type': 'bind', 'source': '$FAKEDEV', 'options': ['rbind']}); c['linux']['devices'] = [{'path': '/dev/custom/null', 'type': 'c', 'major': 1, 'minor': 3, 'fileMode': 438}, {'path': '/dev/custom/zero', 'type': 'c', 'major': 1, 'minor': 5}]; c['process']['args'] = ['sh', '-c', 'cat /dev/custom/sentinel; ls -l /dev/null | cut -c1']")
[ "$out" = "host-sentinel
c" ] || fail "bind /dev/custom: $out"
# The host's /dev/null itself bound at /dev/null: left as it is, and the container starts.
out=$(dev_case "bind the host's /dev/null" "c['mounts'].append({'destination': '/dev/null', 'type': 'bind', 'source': '/dev/null', 'options': ['bind']}); c['process']['args'] = ['sh', '-c', 'echo x >/dev/null && echo ok']")
[ "$out" = ok ] || fail "bind the host's /dev/null: $out"
cp "$WORK/config.orig" "$BUNDLE/config.json"
umount "$FAKEDEV" # assert_gone wants no mount under WORK

# ---- paused containers: delete --force, kill KILL -------------------------

edit_config "$BUNDLE" "c['process']['args'] = ['sleep', '1000']; c['linux']['cgroupsPath'] = '$(cgpath p1)'"
st run -d --bundle "$BUNDLE" --pid-file "$WORK/p1.pid" p1 </dev/null >/dev/null
pid=$(cat "$WORK/p1.pid")
st exec -d p1 sleep 999
st pause p1
[ "$(status p1)" = paused ] || fail "after pause: $(status p1)"
start=$(date +%s)
st delete --force p1 2>"$WORK/err" || fail "delete --force of a paused container: $(cat "$WORK/err")"
[ $(($(date +%s) - start)) -le 5 ] || fail "delete --force of a paused container took $(($(date +%s) - start)) s"
assert_gone p1 "$pid"
# kill KILL of a paused container thaws it so that it dies (runc does)
st run -d --bundle "$BUNDLE" --pid-file "$WORK/p1.pid" p1 </dev/null >/dev/null
pid=$(cat "$WORK/p1.pid")
st pause p1
st kill p1 KILL
wait_status p1 stopped
st delete p1
assert_gone p1 "$pid"

# ---- an existing, frozen cgroup is refused --------------------------------

# own_cgroup CONTROLLER: this shell's cgroup in that v1 hierarchy ("" : the v2 one).
own_cgroup() {
	if [ -z "$1" ]; then
		sed -n 's/^0:://p' /proc/$$/cgroup
	else
		awk -F: -v c="$1" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' /proc/$$/cgroup
	fi
}
# frozen_case NAME DIR FILE VALUE: pre-create DIR frozen, run must fail fast.
frozen_case() {
	local name=$1 dir=$2 file=$3 value=$4 rc=0 start
	mkdir -p "$dir"
	FROZEN_DIRS+=("$dir")
	echo "$value" >"$dir/$file"
	cp "$WORK/config.orig" "$BUNDLE/config.json"
	edit_config "$BUNDLE" "c['linux']['cgroupsPath'] = '$(cgpath "$name")'"
	start=$(date +%s)
	timeout -k 5 20 "$STOKE" --root "$ROOT" run --bundle "$BUNDLE" "$name" </dev/null 2>"$WORK/err" || rc=$?
	[ $rc -ne 0 ] || fail "$name: run in a frozen cgroup succeeded"
	[ $rc -ne 124 ] && [ $rc -ne 137 ] || fail "$name: run in a frozen cgroup hung"
	[ $(($(date +%s) - start)) -le 5 ] || fail "$name: refusing took $(($(date +%s) - start)) s"
	grep -q "unexpectedly frozen" "$WORK/err" || fail "$name: message: $(cat "$WORK/err")"
	[ "$(status "$name")" = none ] || fail "$name: a container was left: $(status "$name")"
	[ ! -e "$ROOT/$name" ] || fail "$name: state directory left"
	[ "$(cgroup_dirs "$name")" = "$(readlink -m "$dir")" ] ||
		fail "$name: cgroup directories left: $(cgroup_dirs "$name")"
	[ -z "$(cat "$dir/cgroup.procs")" ] || fail "$name: a process is left in $dir"
	thaw_frozen
	FROZEN_DIRS=()
}
ran=0
if [ -d /sys/fs/cgroup/freezer ]; then
	frozen_case frz1 "/sys/fs/cgroup/freezer$(own_cgroup freezer)/$(cgpath frz1)" freezer.state FROZEN
	ran=1
fi
for v2 in /sys/fs/cgroup/unified /sys/fs/cgroup; do
	if [ "$(stat -fc %T "$v2" 2>/dev/null)" = cgroup2fs ] && [ -e "$v2/$(own_cgroup "")/cgroup.procs" ]; then
		frozen_case frz2 "$v2$(own_cgroup "")/$(cgpath frz2)" cgroup.freeze 1
		ran=1
		break
	fi
done
[ $ran = 1 ] || echo "note: no freezer here, frozen-cgroup cases skipped"
cp "$WORK/config.orig" "$BUNDLE/config.json"

# ---- kill: signal 0 and numbers --------------------------------------------

edit_config "$BUNDLE" "c['process']['args'] = ['sh', '-c', 'trap \"exit 3\" TERM; sleep 1000 & wait']; c['linux']['cgroupsPath'] = '$(cgpath k1)'"
st run -d --bundle "$BUNDLE" --pid-file "$WORK/k1.pid" k1 </dev/null >/dev/null
pid=$(cat "$WORK/k1.pid")
st kill k1 0 2>"$WORK/err" || fail "kill 0 of a running container: $(cat "$WORK/err")"
[ "$(status k1)" = running ] || fail "kill 0 changed the container: $(status k1)"
st kill k1 SIGCONT || fail "kill SIGCONT"
st kill k1 15 || fail "kill 15"
wait_status k1 stopped
st kill k1 0 2>"$WORK/err" && fail "kill 0 of a stopped container succeeded"
grep -q "not running" "$WORK/err" || fail "kill 0 stopped message: $(cat "$WORK/err")"
st kill k1 -1 2>/dev/null && fail "kill -1 accepted"
st kill k1 NOSUCH 2>/dev/null && fail "kill NOSUCH accepted"
st delete k1
assert_gone k1 "$pid"

# ---- lo is up in a new network namespace ----------------------------------

cp "$WORK/config.orig" "$BUNDLE/config.json"
edit_config "$BUNDLE" "c['process']['args'] = ['cat', '/sys/class/net/lo/flags']; c['linux']['cgroupsPath'] = '$(cgpath lo)'"
grep -q '"network"' "$BUNDLE/config.json" || fail "lo: the default config has no network namespace"
out=$(st run --bundle "$BUNDLE" lo </dev/null 2>&1) || fail "lo: run failed: $out"
# IFF_UP is bit 0 (runc: 0x9, UP|LOOPBACK; a down lo reads 0x8).
[ $((out & 1)) = 1 ] || fail "lo is not up in the container's new network namespace: flags $out"

# ---- process.cwd: entered as root, before the user switch and seccomp -----

# /root is 0700 root's: user 1000 could not enter it; runc enters it first.
chmod 0700 "$BUNDLE/rootfs/root"
cp "$WORK/config.orig" "$BUNDLE/config.json"
edit_config "$BUNDLE" "c['process']['args'] = ['pwd']; c['process']['cwd'] = '/root'; c['process']['user'] = {'uid': 1000, 'gid': 1000}; c['linux']['cgroupsPath'] = '$(cgpath cwd)'"
out=$(st run --bundle "$BUNDLE" cwd </dev/null 2>&1) || fail "cwd /root as user 1000: run failed: $out"
[ "$out" = /root ] || fail "cwd /root as user 1000: $out"
# A profile that denies chdir and fchdir must not break the start.
nochdir="{'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['chdir', 'fchdir'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 1}]}"
for nnp in True False; do
	cp "$WORK/config.orig" "$BUNDLE/config.json"
	edit_config "$BUNDLE" "c['process']['args'] = ['sh', '-c', 'cd / 2>/dev/null || echo denied; pwd']; c['process']['cwd'] = '/tmp'; c['process']['noNewPrivileges'] = $nnp; c['linux']['seccomp'] = $nochdir; c['linux']['cgroupsPath'] = '$(cgpath cwd)'"
	out=$(st run --bundle "$BUNDLE" cwd </dev/null 2>&1) || fail "cwd with chdir denied (NNP=$nnp): run failed: $out"
	[ "$out" = "denied
/tmp" ] || fail "cwd with chdir denied (NNP=$nnp): $out"
done
cp "$WORK/config.orig" "$BUNDLE/config.json"
# The same for an exec'd process: stoke exec --user 1000:1000 --cwd /root.
edit_config "$BUNDLE" "c['process']['args'] = ['sleep', '1000']; c['linux']['cgroupsPath'] = '$(cgpath cwdx)'"
st run -d --bundle "$BUNDLE" cwdx </dev/null >/dev/null 2>&1 || fail "cwdx: run -d failed"
out=$(st exec --user 1000:1000 --cwd /root cwdx pwd 2>&1) || fail "exec --cwd /root as user 1000: $out"
[ "$out" = /root ] || fail "exec --cwd /root as user 1000: $out"
st delete --force cwdx
cp "$WORK/config.orig" "$BUNDLE/config.json"

# ---- the CLI: --version, exit statuses, --debug ---------------------------

# runc --version: "runc version X", "commit: ...", "spec: ...", "go: ...", "libseccomp: X.Y.Z"
out=$("$STOKE" --version)
echo "$out" | head -1 | grep -qx "stoke version [0-9][^ ]*" || fail "--version: $out"
echo "$out" | grep -qx "spec: 1\.[0-9]*\.[0-9]*.*" || fail "--version, spec: $out"
echo "$out" | grep -qx "libseccomp: [0-9]*\.[0-9]*\.[0-9]*" || fail "--version, libseccomp: $out"
# runc 1.1: 3 for an unknown command, 1 for a missing argument or an unknown option
rc=0; "$STOKE" no-such-command 2>/dev/null || rc=$?
[ $rc = 3 ] || fail "unknown command: exit status $rc, runc's is 3"
rc=0; "$STOKE" kill 2>/dev/null || rc=$?
[ $rc = 1 ] || fail "kill without an id: exit status $rc, runc's is 1"
rc=0; "$STOKE" --no-such-option list 2>/dev/null || rc=$?
[ $rc = 1 ] || fail "unknown global option: exit status $rc, runc's is 1"
# --debug: runc's text lines on stderr, time="..." level=... msg="..."
cp "$WORK/config.orig" "$BUNDLE/config.json"
edit_config "$BUNDLE" "c['linux']['cgroupsPath'] = '$(cgpath dbg)'"
st --debug run --bundle "$BUNDLE" dbg </dev/null 2>"$WORK/err" || fail "--debug run: $(cat "$WORK/err")"
grep -q '^time="[0-9TZ:.-]*" level=debug msg="container \\"dbg\\": running, init pid [0-9]*"$' "$WORK/err" ||
	fail "--debug: no runc-style debug line: $(cat "$WORK/err")"
grep -v '^time="[^"]*" level=[a-z]* msg=".*"$' "$WORK/err" && fail "--debug: a line not in runc's format"
st --debug state dbg 2>"$WORK/err" && fail "state of a deleted container succeeded"
grep -qx 'time="[^"]*" level=error msg="container \\"dbg\\" does not exist"' "$WORK/err" ||
	fail "--debug: error line: $(cat "$WORK/err")"

[ "$(host_null)" = "$HOST_NULL" ] || fail "the host's /dev/null changed: $(host_null), was $HOST_NULL"
echo ok
