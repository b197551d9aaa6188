#!/usr/bin/env bash
# Leaked-descriptor escapes (the class of runc's CVE-2024-21626): no host
# descriptor of the runtime reaches the container. process.cwd and
# `exec --cwd` = /proc/self/fd/N (N = 3..20), through a symlink in the rootfs,
# through a directory passed as stdin or with --preserve-fds: each run is
# refused with an error naming the cwd, or runs inside the container; it
# never reads, lists or writes the host. The init holds only its stdio (and
# the preserved fds); the host is unchanged afterwards.
source "$(dirname "$0")/lib.sh"

# Host-only markers: the secret's content and the listed file's name appear
# nowhere in the container's arguments, so seeing them means an escape.
SECRET="host-secret-$RANDOM$RANDOM"
LISTED="listed-marker-$RANDOM$RANDOM"
echo "$SECRET" >"$WORK/secret"
touch "$WORK/$LISTED"
mkdir "$WORK/hostdir"
SUM=$(sha256sum "$WORK/secret")
MKDIR_NAME="esc-mkdir-$$"

# Enough ".." to climb to the host's / from any host directory.
UP=$(printf '../%.0s' $(seq 32))
HOSTWORK=$UP${WORK#/}
SCRIPT="echo cwd=\$(pwd -P); cat $HOSTWORK/secret; ls -a . .. ../.. ../../..; ls $HOSTWORK; echo pwned >$HOSTWORK/pwned; exit 0"

make_bundle "$BUNDLE" sh -c "$SCRIPT"

# judge WHAT RC OUTPUT: refused naming the cwd, or ran inside the container.
judge() {
	local what=$1 rc=$2 out=$3
	case $out in *"$SECRET"*) fail "$what: read the host's file: $out" ;; esac
	case $out in *"$LISTED"*) fail "$what: listed a host directory: $out" ;; esac
	case $out in *"stoke-rt-$$"*) fail "$what: listed the host's cgroup tree: $out" ;; esac
	[ ! -e "$WORK/pwned" ] || fail "$what: wrote a file on the host"
	if [ "$rc" -ne 0 ]; then
		# the script always exits 0: a failure is stoke's refusal
		! grep -q '^cwd=' <<<"$out" || fail "$what: ran, then failed (rc $rc): $out"
		grep -q 'stoke.*cwd' <<<"$out" || fail "$what: failed (rc $rc) without naming the cwd: $out"
	else
		grep -q '^cwd=/' <<<"$out" || fail "$what: ran outside the container's root: $out"
	fi
}

# run_cwd ID CWD [STOKE-RUN-ARGS...]: run the bundle with process.cwd = CWD.
run_cwd() {
	local id=$1 cwd=$2 rc=0 out
	shift 2
	edit_config "$BUNDLE" "c['process']['cwd'] = '$cwd'; c['linux']['cgroupsPath'] = '$(cgpath "$id")'"
	out=$(timeout 30 "$STOKE" --root "$ROOT" run "$@" --bundle "$BUNDLE" "$id" 2>&1) || rc=$?
	[ "$rc" != 124 ] || fail "run $id (cwd $cwd) hung"
	judge "run, process.cwd $cwd" "$rc" "$out"
}

# process.cwd through each descriptor the init could have inherited.
for n in $(seq 3 20); do
	run_cwd "r$n" "/proc/self/fd/$n" </dev/null
done
# creating a missing cwd must not create it on the host either
for n in $(seq 3 20); do
	run_cwd "m$n" "/proc/self/fd/$n/$MKDIR_NAME" </dev/null
done
[ -z "$(find /sys/fs/cgroup "$WORK" -maxdepth 8 -name "$MKDIR_NAME" 2>/dev/null)" ] ||
	fail "a missing cwd was created on the host: $(find /sys/fs/cgroup "$WORK" -maxdepth 8 -name "$MKDIR_NAME")"

# the same through symlinks in the rootfs, and a ".." chain
ln -s /proc/self/fd/5 "$BUNDLE/rootfs/evil5"
ln -s "$UP" "$BUNDLE/rootfs/up"
for n in $(seq 3 12); do
	ln -sfn "/proc/self/fd/$n" "$BUNDLE/rootfs/evil"
	run_cwd "s$n" /evil </dev/null
done
run_cwd s-up /up </dev/null
run_cwd s-up2 "/up/$UP" </dev/null
run_cwd s-dots "/$UP" </dev/null
# and with --no-pivot (chroot): ".." must stop at the container's root
run_cwd s-np /up --no-pivot </dev/null
run_cwd s-np5 /evil5 --no-pivot </dev/null

# a host directory handed over on purpose (stdin, --preserve-fds) is no cwd
run_cwd d0 /proc/self/fd/0 <"$WORK/hostdir"
run_cwd d3 /proc/self/fd/3 --preserve-fds 1 3<"$WORK/hostdir" </dev/null
rm -f "$BUNDLE/rootfs/evil" "$BUNDLE/rootfs/evil5" "$BUNDLE/rootfs/up"

# exec --cwd into a running container; its init holds only its stdio
edit_config "$BUNDLE" "c['process']['cwd'] = '/'; c['process']['args'] = ['sleep', '1000']; c['linux']['cgroupsPath'] = '$(cgpath ex)'"
# (its stdio: files, not the test's pipes, which meson waits on)
st run -d --bundle "$BUNDLE" ex </dev/null >"$WORK/ex.out" 2>&1 || fail "run -d ex: $(cat "$WORK/ex.out")"
fds=$(st exec ex ls /proc/1/fd | tr '\n' ' ')
[ "$fds" = "0 1 2 " ] || fail "the init holds more than its stdio: $fds"
# (`; true`: else sh execs ls, and $$ is ls with its own directory fd)
fds=$(st exec ex sh -c 'ls /proc/$$/fd; true' | tr '\n' ' ')
[ "$fds" = "0 1 2 " ] || fail "an exec'd process holds more than its stdio: $fds"
for n in $(seq 3 20); do
	rc=0
	out=$(timeout 30 "$STOKE" --root "$ROOT" exec --cwd "/proc/self/fd/$n" ex sh -c "$SCRIPT" \
		</dev/null 2>&1) || rc=$?
	[ "$rc" != 124 ] || fail "exec --cwd /proc/self/fd/$n hung"
	judge "exec --cwd /proc/self/fd/$n" "$rc" "$out"
done
rc=0
out=$(timeout 30 "$STOKE" --root "$ROOT" exec --cwd /proc/self/fd/0 ex sh -c "$SCRIPT" \
	<"$WORK/hostdir" 2>&1) || rc=$?
judge "exec --cwd /proc/self/fd/0 (a host directory)" "$rc" "$out"
rc=0
out=$(timeout 30 "$STOKE" --root "$ROOT" exec --preserve-fds 1 --cwd /proc/self/fd/3 ex \
	sh -c "$SCRIPT" 3<"$WORK/hostdir" </dev/null 2>&1) || rc=$?
judge "exec --preserve-fds 1 --cwd /proc/self/fd/3 (a host directory)" "$rc" "$out"
st delete --force ex

# --preserve-fds: the init holds exactly stdio and the preserved fd
edit_config "$BUNDLE" "c['linux']['cgroupsPath'] = '$(cgpath pf)'"
echo passed >"$WORK/fd3"
st run -d --preserve-fds 1 --bundle "$BUNDLE" pf 3<"$WORK/fd3" </dev/null >"$WORK/pf.out" 2>&1 ||
	fail "run -d --preserve-fds 1: $(cat "$WORK/pf.out")"
fds=$(st exec pf ls /proc/1/fd | tr '\n' ' ')
[ "$fds" = "0 1 2 3 " ] || fail "with --preserve-fds 1 the init holds: $fds"
[ "$(st exec pf cat /proc/1/fd/3)" = passed ] || fail "--preserve-fds 1: fd 3 is not the file"
st delete --force pf

# the host is unchanged
[ "$(sha256sum "$WORK/secret")" = "$SUM" ] || fail "the host's sentinel changed"
[ ! -e "$WORK/pwned" ] || fail "a file was written on the host"
[ "$(stat -c '%F %t:%T' /dev/null)" = "character special file 1:3" ] ||
	fail "/dev/null is now $(stat -c '%F %t:%T' /dev/null)"
exit 0
