#!/usr/bin/env bash
# Each malformed or unsupported config.json is refused by `create` with an
# error naming the field, a non-zero exit, and nothing created: no state
# directory, no cgroup, no process.
source "$(dirname "$0")/lib.sh"

make_bundle "$BUNDLE" true
cp "$BUNDLE/config.json" "$WORK/good.json"
edit_config "$BUNDLE" "c['linux']['cgroupsPath'] = '$(cgpath bad)'"
cp "$BUNDLE/config.json" "$WORK/good.json"

n=0
check() { # check 'python edit' 'expected text in the error'
	cp "$WORK/good.json" "$BUNDLE/config.json"
	edit_config "$BUNDLE" "$1"
	n=$((n + 1))
	if st create --bundle "$BUNDLE" bad </dev/null >/dev/null 2>"$WORK/err"; then
		fail "config #$n ($1) was accepted"
	fi
	grep -qF -- "$2" "$WORK/err" || fail "config #$n ($1): error does not say \"$2\": $(cat "$WORK/err")"
	[ ! -e "$ROOT/bad" ] || fail "config #$n: state directory created"
	[ -z "$(cgroup_dirs bad)" ] || fail "config #$n: cgroup created"
}

check "c['ociVersion'] = '2.0.0'" 'ociVersion'
check "del c['root']" 'root'
check "c['root']['path'] = 'nowhere'" 'root.path'
check "c['process']['args'] = []" 'process.args'
check "c['process']['cwd'] = 'relative'" 'process.cwd'
check "c['process']['env'] = 'PATH=/bin'" 'process.env'
check "c['process']['rlimits'] = [{'type': 'RLIMIT_FOO', 'soft': 1, 'hard': 1}]" 'process.rlimits[0].type'
check "c['process']['rlimits'] = [{'type': 'RLIMIT_NOFILE', 'soft': 10, 'hard': 1}]" 'process.rlimits[0]'
check "c['process']['rlimits'] += [{'type': 'RLIMIT_NOFILE', 'soft': 1, 'hard': 1}]" 'duplicate'
check "c['process']['capabilities']['bounding'].append('CAP_FOO')" 'unknown capability "CAP_FOO"'
check "c['process']['user']['uid'] = -1" 'process.user.uid'
check "c['process']['oomScoreAdj'] = 5000" 'process.oomScoreAdj'
check "c['process']['apparmorProfile'] = 'docker-default'" 'process.apparmorProfile'
check "c['process']['selinuxLabel'] = 'system_u:system_r:container_t:s0'" 'process.selinuxLabel'
check "c['process']['scheduler'] = {'policy': 'SCHED_WHATEVER'}" 'process.scheduler.policy'
check "c['process']['ioPriority'] = {'class': 'IOPRIO_CLASS_BE', 'priority': 9}" 'process.ioPriority.priority'
check "c['process']['terminal'] = True" 'console-socket'
check "c['linux']['namespaces'].append({'type': 'foo'})" 'unknown namespace "foo"'
check "c['linux']['namespaces'].append({'type': 'pid'})" 'duplicate'
check "c['linux']['namespaces'].append({'type': 'user'})" 'uidMappings'
check "c['linux']['uidMappings'] = [{'containerID': 0, 'hostID': 1000, 'size': 1}]" 'linux.uidMappings'
check "c['linux']['namespaces'] = [n for n in c['linux']['namespaces'] if n['type'] != 'uts']" 'hostname'
check "c['linux']['namespaces'][0]['path'] = '/proc/self/ns/nothing'" 'linux.namespaces[0].path'
check "c['linux']['timeOffsets'] = {'monotonic': {'secs': 1}}" 'linux.timeOffsets'
check "c['linux']['sysctl'] = {'kernel.panic': '1'}" 'linux.sysctl.kernel.panic'
check "c['linux']['devices'] = [{'path': '/dev/x', 'type': 'x', 'major': 1, 'minor': 1}]" 'linux.devices[0].type'
check "c['linux']['rootfsPropagation'] = 'sideways'" 'linux.rootfsPropagation'
check "c['linux']['personality'] = {'domain': 'WINDOWS'}" 'linux.personality.domain'
check "c['linux']['netDevices'] = {'eth9': {'name': 'eth0'}}" 'linux.netDevices'
check "c['linux']['mountLabel'] = 'system_u:object_r:container_file_t:s0'" 'linux.mountLabel'
check "c['linux']['resources']['memory'] = {'limit': 'lots'}" 'linux.resources.memory'
check "c['linux']['resources']['pids'] = {'limit': 'x'}" 'linux.resources.pids'
check "c['linux']['seccomp'] = {'defaultAction': 'SCMP_ACT_BOGUS'}" 'linux.seccomp'
check "c['mounts'].append({'type': 'tmpfs', 'source': 'tmpfs'})" 'mounts[7].destination'
check "c['mounts'].append({'destination': '/x', 'source': 'x'})" 'mounts[7].type'
check "c['mounts'].append({'destination': '/x', 'type': 'bind', 'source': '/nonexistent-dir-xyz', 'options': ['bind']})" '/nonexistent-dir-xyz'
check "c['mounts'].append({'destination': '/x', 'type': 'tmpfs', 'source': 'tmpfs', 'options': ['idmap']})" 'mounts[7]: an id-mapped mount must be a bind mount'
check "c['mounts'].append({'destination': '/x', 'type': 'bind', 'source': '/tmp', 'options': ['rbind'], 'uidMappings': [{'containerID': 0, 'hostID': 1000, 'size': 0}]})" 'mounts[7].uidMappings[0].size'
check "c['hooks'] = {'prestart': [{'path': 'relative/hook'}]}" 'hooks.prestart[0].path'
check "c['hooks'] = {'poststart': [{'path': '/bin/true', 'timeout': 0}]}" 'hooks.poststart[0].timeout'
check "c['annotations'] = {'a': 1}" 'annotations.a'

# not even JSON
printf '{"ociVersion": "1.0.2",' >"$BUNDLE/config.json"
st create --bundle "$BUNDLE" bad 2>"$WORK/err" && fail "truncated JSON accepted"
grep -q "invalid JSON" "$WORK/err" || fail "truncated JSON message: $(cat "$WORK/err")"
[ ! -e "$ROOT/bad" ] || fail "state directory after bad JSON"
rm "$BUNDLE/config.json"
st create --bundle "$BUNDLE" bad 2>"$WORK/err" && fail "missing config.json accepted"
grep -q "config.json" "$WORK/err" || fail "missing config message"
# a bad id
cp "$WORK/good.json" "$BUNDLE/config.json"
st create --bundle "$BUNDLE" "../evil" 2>"$WORK/err" && fail "bad id accepted"
grep -q "invalid container id" "$WORK/err" || fail "bad id message"
echo "ok ($n configs)"
