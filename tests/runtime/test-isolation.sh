#!/usr/bin/env bash
# What the container sees: namespaces really unshared (and joined by path),
# user namespace maps, hostname/domainname, mounts (bind ro, tmpfs options,
# tmpcopyup, propagation), masked and read-only paths, read-only root,
# capabilities (/proc/self/status), CAP_SYS_RESOURCE refused by name,
# rlimits, user/groups/umask, noNewPrivileges, oomScoreAdj, sysctl, devices,
# env and cwd.
source "$(dirname "$0")/lib.sh"

make_bundle "$BUNDLE" true
# crun/runc test style: run a shell script inside and compare its output.
inside() { # inside 'python edits' 'shell script' -> stdout of the container
	cp "$BUNDLE/config.json" "$WORK/config.orig"
	edit_config "$BUNDLE" "c['linux']['cgroupsPath'] = '$(cgpath iso)'; $1; c['process']['args'] = ['sh', '-c', '''$2''']"
	local rc=0
	st run --bundle "$BUNDLE" iso </dev/null || rc=$?
	[ $rc -lt 125 ] || echo "stoke run failed ($rc)" >&2
	cp "$WORK/config.orig" "$BUNDLE/config.json"
	return 0
}

# namespaces: every one differs from the host's, except those not asked for
host_ns() { readlink "/proc/self/ns/$1"; }
out=$(inside "c['linux']['namespaces'] += [{'type': 'cgroup'}]" \
	'for n in pid net ipc uts mnt cgroup user; do echo $n $(readlink /proc/self/ns/$n); done')
for n in pid net ipc uts mnt cgroup; do
	got=$(echo "$out" | awk -v n=$n '$1==n {print $2}')
	[ -n "$got" ] && [ "$got" != "$(host_ns $n)" ] || fail "$n namespace not unshared ($got)"
done
[ "$(echo "$out" | awk '$1=="user" {print $2}')" = "$(host_ns user)" ] || fail "user ns unshared without being asked"

# joining by path: a second container in the first one's network and uts namespaces
edit_config "$BUNDLE" "c['process']['args'] = ['sleep', '100']; c['linux']['cgroupsPath'] = '$(cgpath a)'"
st run -d --bundle "$BUNDLE" --pid-file "$WORK/a.pid" a </dev/null
apid=$(cat "$WORK/a.pid")
out=$(inside "c['linux']['namespaces'] = [n if n['type'] not in ('network', 'uts') else dict(n, path='/proc/$apid/ns/' + {'network': 'net', 'uts': 'uts'}[n['type']]) for n in c['linux']['namespaces']]; c.pop('hostname')" \
	'readlink /proc/self/ns/net; readlink /proc/self/ns/uts; readlink /proc/self/ns/ipc; echo $$')
[ "$(echo "$out" | sed -n 1p)" = "$(readlink /proc/$apid/ns/net)" ] || fail "net namespace not joined"
[ "$(echo "$out" | sed -n 2p)" = "$(readlink /proc/$apid/ns/uts)" ] || fail "uts namespace not joined"
[ "$(echo "$out" | sed -n 3p)" != "$(readlink /proc/$apid/ns/ipc)" ] || fail "ipc namespace shared"
[ "$(echo "$out" | sed -n 4p)" = 1 ] || fail "slow path: the init is not pid 1"
st delete --force a

# user namespace with mappings (the rootfs is owned by host root: map container 0 to host 0 too)
out=$(inside "c['linux']['namespaces'] += [{'type': 'user'}]; c['linux']['uidMappings'] = [{'containerID': 0, 'hostID': 0, 'size': 65536}]; c['linux']['gidMappings'] = [{'containerID': 0, 'hostID': 0, 'size': 65536}]; c['mounts'] = [m for m in c['mounts'] if m['destination'] != '/sys/fs/cgroup']" \
	'cat /proc/self/uid_map; readlink /proc/self/ns/user; id -u')
echo "$out" | head -1 | grep -Eq '^ +0 +0 +65536$' || fail "uid_map: $out"
[ "$(echo "$out" | sed -n 2p)" != "$(host_ns user)" ] || fail "user namespace not unshared"

# time namespace with offsets
if [ -e /proc/self/ns/time ]; then
	out=$(inside "c['linux']['namespaces'] += [{'type': 'time'}]; c['linux']['timeOffsets'] = {'monotonic': {'secs': 86400, 'nanosecs': 0}}" \
		'cat /proc/self/timens_offsets; readlink /proc/self/ns/time')
	echo "$out" | grep -Eq '^monotonic +86400 +0' || fail "time offsets: $out"
fi

# hostname and domainname
out=$(inside "c['hostname'] = 'box1'; c['domainname'] = 'example.org'" 'hostname; cat /proc/sys/kernel/domainname')
[ "$out" = "box1
example.org" ] || fail "hostname/domainname: $out"

# mounts: a read-only bind, a tmpfs with size and mode, tmpcopyup, a file bind
mkdir -p "$WORK/data" "$BUNDLE/rootfs/opt/seed"
echo hello >"$WORK/data/file"
echo seed >"$BUNDLE/rootfs/opt/seed/s"
echo single >"$WORK/one"
out=$(inside "c['mounts'] += [
  {'destination': '/data', 'type': 'bind', 'source': '$WORK/data', 'options': ['rbind', 'ro']},
  {'destination': '/scratch', 'type': 'tmpfs', 'source': 'tmpfs', 'options': ['size=1m', 'mode=700', 'nosuid']},
  {'destination': '/opt/seed', 'type': 'tmpfs', 'source': 'tmpfs', 'options': ['tmpcopyup']},
  {'destination': '/etc/one', 'type': 'none', 'source': '$WORK/one', 'options': ['bind']}]" \
	'cat /data/file; touch /data/x 2>/dev/null && echo data-rw; stat -c %a /scratch; grep " /scratch " /proc/self/mounts; cat /opt/seed/s; grep -c " /opt/seed tmpfs" /proc/self/mounts; cat /etc/one')
echo "$out" | grep -qx hello || fail "bind mount content: $out"
! echo "$out" | grep -q data-rw || fail "ro bind is writable"
echo "$out" | grep -qx 700 || fail "tmpfs mode: $out"
echo "$out" | grep " /scratch " | grep -q "size=1024k" || fail "tmpfs size: $out"
echo "$out" | grep " /scratch " | grep -q "nosuid" || fail "tmpfs nosuid: $out"
echo "$out" | grep -qx seed || fail "tmpcopyup: $out"
echo "$out" | grep -qx single || fail "file bind: $out"

# an id-mapped bind mount (mounts[].uidMappings, "idmap"): with the map 0 -> 1000,
# files the host's root owns show as 1000, and 1000's as unmapped (65534)
mkdir -p "$WORK/idm"
touch "$WORK/idm/root-file" "$WORK/idm/user-file"
chown 1000:1000 "$WORK/idm/user-file"
out=$(inside "c['mounts'].append({'destination': '/idm', 'type': 'bind', 'source': '$WORK/idm', 'options': ['rbind', 'idmap'],
  'uidMappings': [{'containerID': 0, 'hostID': 1000, 'size': 1}], 'gidMappings': [{'containerID': 0, 'hostID': 1000, 'size': 1}]})" \
	'stat -c "%n %u %g" /idm/root-file /idm/user-file')
[ "$out" = "/idm/root-file 1000 1000
/idm/user-file 65534 65534" ] || fail "id-mapped mount: $out"
[ "$(stat -c %u "$WORK/idm/root-file")" = 0 ] || fail "id-mapped mount changed the host's file"

# propagation: an rslave bind sees a mount made on the host after start; rprivate does not
mkdir -p "$WORK/prop/sub" "$WORK/prop-tmp"
mount --bind "$WORK/prop" "$WORK/prop"
mount --make-shared "$WORK/prop"
edit_config "$BUNDLE" "c['process']['args'] = ['sleep', '100']; c['linux']['cgroupsPath'] = '$(cgpath p)'; c['mounts'] += [
  {'destination': '/slave', 'type': 'bind', 'source': '$WORK/prop', 'options': ['rbind', 'rslave']},
  {'destination': '/private', 'type': 'bind', 'source': '$WORK/prop', 'options': ['rbind', 'rprivate']}]"
st run -d --bundle "$BUNDLE" p </dev/null
mount -t tmpfs tmpfs "$WORK/prop/sub"
echo marker >"$WORK/prop/sub/m"
out=$(st exec p sh -c 'cat /slave/sub/m 2>/dev/null || echo none; cat /private/sub/m 2>/dev/null || echo none')
[ "$out" = "marker
none" ] || fail "propagation: $out"
st delete --force p
umount "$WORK/prop/sub"
umount "$WORK/prop"
cp "$WORK/config.orig" "$BUNDLE/config.json"

# masked and read-only paths; read-only root
out=$(inside "c['linux']['maskedPaths'] += ['/etc/hostname']" \
	'cat /proc/timer_list 2>/dev/null | wc -c; ls /sys/firmware | wc -l; cat /etc/hostname | wc -c; (echo 1 > /proc/sys/kernel/ns_last_pid) 2>/dev/null && echo procsys-rw; touch /rootfile 2>/dev/null && echo root-rw')
[ "$(echo "$out" | sed -n 1p)" = 0 ] || fail "/proc/timer_list not masked: $out"
[ "$(echo "$out" | sed -n 2p)" = 0 ] || fail "/sys/firmware not masked: $out"
[ "$(echo "$out" | sed -n 3p)" = 0 ] || fail "/etc/hostname (masked file) readable: $out"
! echo "$out" | grep -q procsys-rw || fail "/proc/sys writable"
! echo "$out" | grep -q root-rw || fail "read-only root writable"

# capabilities: exactly the sets asked for
out=$(inside "c['process']['capabilities'] = {'bounding': ['CAP_KILL', 'CAP_CHOWN', 'CAP_NET_RAW'], 'effective': ['CAP_KILL', 'CAP_CHOWN'], 'permitted': ['CAP_KILL', 'CAP_CHOWN'], 'inheritable': ['CAP_CHOWN'], 'ambient': ['CAP_CHOWN']}; c['process']['noNewPrivileges'] = True" \
	'grep -E "^(Cap|NoNewPrivs)" /proc/self/status')
# CHOWN=0, KILL=5, NET_RAW=13
echo "$out" | grep -q "CapBnd:.*0000000000002021" || fail "bounding: $out"
echo "$out" | grep -q "CapEff:.*0000000000000021" || fail "effective: $out"
echo "$out" | grep -q "CapPrm:.*0000000000000021" || fail "permitted: $out"
echo "$out" | grep -q "CapInh:.*0000000000000001" || fail "inheritable: $out"
echo "$out" | grep -q "CapAmb:.*0000000000000001" || fail "ambient: $out"
echo "$out" | grep -q "NoNewPrivs:.*1" || fail "noNewPrivileges: $out"

# a capability missing from the runtime's bounding set fails clearly, creating nothing
if ! grep -q "CapBnd:.*ffffffffff" /proc/self/status && [ "$(( 0x$(awk '/CapBnd/ {print $2}' /proc/self/status) >> 24 & 1 ))" = 0 ]; then
	edit_config "$BUNDLE" "c['process']['capabilities']['bounding'].append('CAP_SYS_RESOURCE')"
	st run --bundle "$BUNDLE" nocap </dev/null 2>"$WORK/err" && fail "CAP_SYS_RESOURCE accepted"
	grep -q "CAP_SYS_RESOURCE" "$WORK/err" || fail "message does not name CAP_SYS_RESOURCE: $(cat "$WORK/err")"
	grep -q "bounding" "$WORK/err" || fail "message does not name the set: $(cat "$WORK/err")"
	[ ! -e "$ROOT/nocap" ] || fail "state left after refused capability"
	cp "$WORK/config.orig" "$BUNDLE/config.json"
fi

# rlimits, user, groups, umask, oomScoreAdj, env, cwd
out=$(inside "c['process']['rlimits'] = [{'type': 'RLIMIT_NOFILE', 'soft': 321, 'hard': 654}, {'type': 'RLIMIT_CORE', 'soft': 0, 'hard': 0}]; c['process']['user'] = {'uid': 1000, 'gid': 1000, 'additionalGids': [100, 65534], 'umask': 0o027}; c['process']['oomScoreAdj'] = 200; c['process']['env'].append('FOO=bar baz'); c['process']['cwd'] = '/home/tester'; c['root']['readonly'] = False" \
	'ulimit -n; ulimit -Hn; ulimit -c; id -u; id -g; id -G; umask; cat /proc/self/oom_score_adj; echo "$FOO"; pwd; echo "$HOME"')
[ "$out" = "321
654
0
1000
1000
1000 100 65534
0027
200
bar baz
/home/tester
/home/tester" ] || fail "process settings: $out"

# sysctl (namespaced keys) and devices
out=$(inside "c['linux']['sysctl'] = {'net.ipv4.ip_forward': '1', 'kernel.shmmax': '123456789'}; c['linux']['devices'] = [{'path': '/dev/mynull', 'type': 'c', 'major': 1, 'minor': 3, 'fileMode': 0o666, 'uid': 1000, 'gid': 5}]" \
	'cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax; stat -c "%t:%T %a %u %g" /dev/mynull; echo x > /dev/mynull && echo wrote; ls -l /dev/ptmx | grep -c pts/ptmx; readlink /dev/fd')
[ "$out" = "1
123456789
1:3 666 1000 5
wrote
1
/proc/self/fd" ] || fail "sysctl/devices: $out"
[ "$(cat /proc/sys/kernel/shmmax)" != 123456789 ] || fail "sysctl leaked to the host"

# the container's cgroup is what it sees under /sys/fs/cgroup (read-only)
out=$(inside "c['linux']['resources']['pids'] = {'limit': 99}" \
	'cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; touch /sys/fs/cgroup/x 2>/dev/null && echo cg-rw')
[ "$(echo "$out" | head -1)" = 99 ] || fail "cgroup mount: $out"
! echo "$out" | grep -q cg-rw || fail "cgroup mount writable"
echo ok
