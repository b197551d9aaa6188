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

# --- Host snapshot for the mount-escape classes below (CVE-2025-31133,
# CVE-2021-30465, CVE-2025-52881): every case ends with host_unchanged.
echo "$SECRET" >"$WORK/sentinel"
SENT_SUM=$(sha256sum "$WORK/sentinel")
NULL_ID=$(stat -c '%F %t:%T %u:%g %i' /dev/null)
# (mount ids dropped; what other tests running alongside mount under /tmp/stoke-*
# and /run is left out, this test's own WORK is kept)
host_mounts() {
	sed 's/^[0-9]* [0-9]* //' /proc/self/mountinfo |
		grep -Ev "^[^ ]+ [^ ]+ (/tmp/stoke-|/run/(containerd|netns|stoke))" | sort
	{ grep -F " $WORK" /proc/self/mountinfo || true; } | sed 's/^[0-9]* [0-9]* //' | sort
}
MI_BEFORE=$(host_mounts)
SYSCTLS="kernel/core_pattern kernel/hostname net/ipv4/ip_forward kernel/domainname kernel/printk_ratelimit_burst"
sysctl_snap() { for k in $SYSCTLS; do printf '%s=%s\n' "$k" "$(cat "/proc/sys/$k")"; done; }
SYS_BEFORE=$(sysctl_snap)
host_unchanged() {
	local what=$1
	[ "$(sha256sum "$WORK/sentinel")" = "$SENT_SUM" ] || fail "$what: the host's sentinel changed"
	[ "$(stat -c '%F %t:%T %u:%g %i' /dev/null)" = "$NULL_ID" ] ||
		fail "$what: /dev/null is now $(stat -c '%F %t:%T %u:%g %i' /dev/null)"
	[ "$(sysctl_snap)" = "$SYS_BEFORE" ] || fail "$what: host sysctls changed: $(sysctl_snap)"
	local now
	now=$(host_mounts)
	[ "$now" = "$MI_BEFORE" ] || fail "$what: the host's mounts changed: $(diff <(echo "$MI_BEFORE") <(echo "$now"))"
	[ -z "$(find /tmp /run -maxdepth 2 -name "esc-created-$$" 2>/dev/null)" ] ||
		fail "$what: a mount point was created on the host"
}

# fresh_bundle SCRIPT: a new bundle (default config) whose process runs sh -c SCRIPT.
fresh_bundle() {
	rm -rf "$BUNDLE"
	make_bundle "$BUNDLE" sh -c "$1"
}

# run_expect ID MODE [NEEDLE]: run the bundle, then check the host. MODE ok: it
# runs and its script prints "checks-ok"; refuse: stoke fails it, with an
# error naming NEEDLE, before the script runs.
run_expect() {
	local id=$1 mode=$2 needle=${3:-} rc=0 out
	edit_config "$BUNDLE" "c['linux']['cgroupsPath'] = '$(cgpath "$id")'"
	out=$(timeout 30 "$STOKE" --root "$ROOT" run --bundle "$BUNDLE" "$id" </dev/null 2>&1) || rc=$?
	[ "$rc" != 124 ] || fail "$id hung"
	case $mode in
	ok) [ "$rc" = 0 ] && grep -q '^checks-ok$' <<<"$out" || fail "$id: rc $rc: $out" ;;
	refuse)
		[ "$rc" != 0 ] || fail "$id: ran although it must be refused: $out"
		! grep -q '^checks-ok$' <<<"$out" || fail "$id: the process ran: $out"
		grep -qi "$needle" <<<"$out" || fail "$id: refused without naming $needle: $out"
		;;
	esac
	st delete --force "$id" >/dev/null 2>&1 || true
	host_unchanged "$id"
}

# 1. CVE-2025-31133: maskedPaths are masked with the container's /dev/null,
# which the rootfs controls once no /dev tmpfs is mounted over it.
# (of the masked files, those this kernel has; /proc/keys always exists)
MASKCHK='n=0; for p in /proc/kcore /proc/timer_list /proc/keys; do [ -e $p ] || continue; n=$((n+1)); [ "$(stat -c %F:%t:%T $p)" = "character special file:1:3" ] || { echo unmasked $p; exit 1; }; done; [ $n -gt 0 ] && echo checks-ok'
NODEVTMPFS="c['mounts'] = [m for m in c['mounts'] if m['destination'] != '/dev']"
# a symlink to a sensitive procfs file, and to a host file
for tgt in /proc/sys/kernel/core_pattern "$WORK/sentinel" ../proc/sysrq-trigger; do
	fresh_bundle "$MASKCHK"
	edit_config "$BUNDLE" "$NODEVTMPFS"
	mkdir -p "$BUNDLE/rootfs/dev"
	rm -f "$BUNDLE/rootfs/dev/null"
	ln -s "$tgt" "$BUNDLE/rootfs/dev/null"
	run_expect "null-link" refuse "maskedPaths"
done
# a regular file, and a fifo, in place of the node
fresh_bundle "$MASKCHK"
edit_config "$BUNDLE" "$NODEVTMPFS"
mkdir -p "$BUNDLE/rootfs/dev"
rm -f "$BUNDLE/rootfs/dev/null"
echo fake >"$BUNDLE/rootfs/dev/null"
run_expect null-file refuse "maskedPaths"
rm -f "$BUNDLE/rootfs/dev/null"
mkfifo "$BUNDLE/rootfs/dev/null"
run_expect null-fifo refuse "maskedPaths"
# no node at all: /dev bound from a rootfs directory (stoke leaves a bound /dev alone)
fresh_bundle "$MASKCHK"
mkdir -p "$BUNDLE/rootfs/fakedev"
edit_config "$BUNDLE" "$NODEVTMPFS; c['mounts'].append({'destination': '/dev', 'type': 'bind', 'source': '$BUNDLE/rootfs/fakedev', 'options': ['rbind']})"
run_expect null-missing refuse "maskedPaths"
# the same with a symlink in the bound /dev
ln -s /proc/sys/kernel/core_pattern "$BUNDLE/rootfs/fakedev/null"
run_expect null-bound-link refuse "maskedPaths"
# and the legitimate cases still mask: on the /dev tmpfs, on the rootfs's /dev
# (stoke makes the node), and with a node already there (the last run's)
fresh_bundle "$MASKCHK"
run_expect null-tmpfs ok
edit_config "$BUNDLE" "$NODEVTMPFS"
run_expect null-rootfs-made ok
mknod "$BUNDLE/rootfs/dev/null" c 1 3 2>/dev/null || true
run_expect null-rootfs-node ok

# 2. CVE-2021-30465 class: mount destinations through symlinks in the
# rootfs land inside it (resolved as in a chroot), never on the host.
mkdir -p "$WORK/host-target"
DESTCHK='for d in /etc/evil/x /up/y /abs/z /deep/w; do [ -f $d/marker ] || { echo missing $d; exit 1; }; done; echo checks-ok'
fresh_bundle "$DESTCHK"
mkdir -p "$WORK/vol" "$BUNDLE/rootfs/a/b/c"
touch "$WORK/vol/marker"
ln -s / "$BUNDLE/rootfs/etc/evil"
ln -s "$UP" "$BUNDLE/rootfs/up"
ln -s "$WORK/host-target" "$BUNDLE/rootfs/abs"
ln -s "../../../$UP/tmp/esc-created-$$" "$BUNDLE/rootfs/a/b/c/link"
ln -s a/b/c/link "$BUNDLE/rootfs/deep"
edit_config "$BUNDLE" "
for d in ['/etc/evil/x', '/up/y', '/abs/z', '/deep/w']:
    c['mounts'].append({'destination': d, 'type': 'bind', 'source': '$WORK/vol', 'options': ['bind']})"
run_expect dest-links ok
# what those mounts really created lies in the rootfs
[ -d "$BUNDLE/rootfs/x" ] && [ -d "$BUNDLE/rootfs/y" ] && [ -d "$BUNDLE/rootfs$WORK/host-target/z" ] &&
	[ -d "$BUNDLE/rootfs/tmp/esc-created-$$/w" ] || fail "dest-links: mount points not made in the rootfs"
[ -z "$(ls -A "$WORK/host-target")" ] || fail "dest-links: a mount point was made on the host"
# a tmpfs over "/" through a symlink covers the container's root, not the host's
fresh_bundle 'echo checks-ok'
ln -s / "$BUNDLE/rootfs/etc/evil"
edit_config "$BUNDLE" "c['mounts'].append({'destination': '/etc/evil/tmp/esc-created-$$', 'type': 'tmpfs', 'source': 'tmpfs'})"
run_expect dest-tmpfs ok
rmdir "$WORK/host-target"

# The race (CVE-2021-30465 itself): a rootfs directory on a mount's path is
# swapped with a symlink to a host directory while stoke runs (RENAME_EXCHANGE
# in a loop). Each run either fails or mounts inside the rootfs; nothing is
# created or mounted on the host. Minutes: only with STOKE_TEST_SLOW=1.
if [ -n "${STOKE_TEST_SLOW:-}" ]; then
	RACE="$WORK/race-target"
	mkdir -p "$RACE"
	fresh_bundle 'echo checks-ok'
	mkdir -p "$BUNDLE/rootfs/vol" "$WORK/vol"
	ln -s "$RACE" "$BUNDLE/rootfs/vol-link"
	edit_config "$BUNDLE" "c['mounts'].append({'destination': '/vol/a/b', 'type': 'bind', 'source': '$WORK/vol', 'options': ['bind']})
c['mounts'].append({'destination': '/vol/t', 'type': 'tmpfs', 'source': 'tmpfs'})"
	"$PY" - "$BUNDLE/rootfs" <<'PY' &
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
d = os.open(sys.argv[1], os.O_PATH)
while True:  # renameat2(RENAME_EXCHANGE): "vol" is a directory, then the symlink
    libc.renameat2(d, b"vol", d, b"vol-link", 2)
PY
	BG_PIDS+=($!)
	for i in $(seq 100); do
		edit_config "$BUNDLE" "c['linux']['cgroupsPath'] = '$(cgpath "race$i")'"
		timeout 30 "$STOKE" --root "$ROOT" run --bundle "$BUNDLE" "race$i" </dev/null \
			>/dev/null 2>&1 || true
		st delete --force "race$i" >/dev/null 2>&1 || true
		[ -z "$(ls -A "$RACE")" ] || fail "race $i: created on the host: $(ls -AR "$RACE")"
	done
	kill "${BG_PIDS[-1]}"
	host_unchanged race
	rmdir "$RACE"
fi

# 3. CVE-2025-52881 class: procfs writes (linux.sysctl) must land in the
# container's procfs, never in a file a rootfs symlink or a mount puts there.
SYSCHK='echo checks-ok'
# the rootfs's /proc a symlink (absolute, and a ".." chain) to a directory of
# fake sysctls: stoke refuses to mount proc through it
for tgt in /fakeproc "../../$UP/fakeproc"; do
	fresh_bundle "$SYSCHK"
	mkdir -p "$BUNDLE/rootfs/fakeproc/sys/net/ipv4"
	echo 0 >"$BUNDLE/rootfs/fakeproc/sys/net/ipv4/ip_forward"
	rm -rf "$BUNDLE/rootfs/proc"
	ln -s "$tgt" "$BUNDLE/rootfs/proc"
	edit_config "$BUNDLE" "c['linux']['sysctl'] = {'net.ipv4.ip_forward': '1'}"
	run_expect proc-link refuse "symlink"
	[ "$(cat "$BUNDLE/rootfs/fakeproc/sys/net/ipv4/ip_forward")" = 0 ] ||
		fail "proc-link: the sysctl went to the rootfs's fake file"
done
# a mount over the sysctl's file (a rootfs file, or another procfs file of the
# host): the write is refused, neither file changes
fresh_bundle "$SYSCHK"
echo 0 >"$BUNDLE/rootfs/fake_sysctl"
edit_config "$BUNDLE" "c['linux']['sysctl'] = {'net.ipv4.ip_forward': '1'}
c['mounts'].append({'destination': '/proc/sys/net/ipv4/ip_forward', 'type': 'bind', 'source': '$BUNDLE/rootfs/fake_sysctl', 'options': ['bind']})"
run_expect proc-overmount refuse "sysctl"
[ "$(cat "$BUNDLE/rootfs/fake_sysctl")" = 0 ] || fail "proc-overmount: the sysctl went to the rootfs's file"
BURST=$(cat /proc/sys/kernel/printk_ratelimit_burst)
fresh_bundle "$SYSCHK"
edit_config "$BUNDLE" "c['linux']['sysctl'] = {'net.ipv4.ip_forward': '$((BURST + 1))'}
c['mounts'].append({'destination': '/proc/sys/net/ipv4/ip_forward', 'type': 'bind', 'source': '/proc/sys/kernel/printk_ratelimit_burst', 'options': ['bind']})"
run_expect proc-host-file refuse "sysctl"
# /proc/sys overmounted by a tmpfs
fresh_bundle "$SYSCHK"
edit_config "$BUNDLE" "c['linux']['sysctl'] = {'net.ipv4.ip_forward': '1'}
c['mounts'].append({'destination': '/proc/sys', 'type': 'tmpfs', 'source': 'tmpfs'})"
run_expect proc-sys-tmpfs refuse "sysctl"
# and a plain sysctl still applies, in the container's namespace only
fresh_bundle '[ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ] && echo checks-ok'
edit_config "$BUNDLE" "c['linux']['sysctl'] = {'net.ipv4.ip_forward': '1'}; c['process']['oomScoreAdj'] = 100"
run_expect sysctl-ok ok

# the host is unchanged
[ "$(sha256sum "$WORK/secret")" = "$SUM" ] || fail "the host's sentinel changed"
[ ! -e "$WORK/pwned" ] || fail "a file was written on the host"
[ "$(stat -c '%F %t:%T' /dev/null)" = "character special file 1:3" ] ||
	fail "/dev/null is now $(stat -c '%F %t:%T' /dev/null)"
exit 0
