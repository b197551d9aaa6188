#!/usr/bin/env bash
# seccomp through the runtime: a denied syscall returns the configured errno
# (with and without noNewPrivileges, and through an argument filter), the
# compiled BPF is cached under --root, and SCMP_ACT_NOTIFY delivers the
# listener fd with the container's state to listenerPath.
source "$(dirname "$0")/lib.sh"

make_bundle "$BUNDLE" true
edit_config "$BUNDLE" "c['root']['readonly'] = False"
cp "$BUNDLE/config.json" "$WORK/base.json"
run_with() { # run_with 'python edits' 'script'
	cp "$WORK/base.json" "$BUNDLE/config.json"
	edit_config "$BUNDLE" "c['linux']['cgroupsPath'] = '$(cgpath s)'; $1; c['process']['args'] = ['sh', '-c', '''$2''']"
	st run --bundle "$BUNDLE" s </dev/null 2>&1 || true
}
profile="{'defaultAction': 'SCMP_ACT_ALLOW', 'architectures': ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  'syscalls': [{'names': ['mkdir', 'mkdirat'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 18},
               {'names': ['fchmodat'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 13,
                'args': [{'index': 2, 'value': 511, 'op': 'SCMP_CMP_EQ'}]},
               {'names': ['chmod'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 13,
                'args': [{'index': 1, 'value': 511, 'op': 'SCMP_CMP_EQ'}]},
               {'names': ['fchmodat2'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 38}]}"
for nnp in True False; do
	out=$(run_with "c['linux']['seccomp'] = $profile; c['process']['noNewPrivileges'] = $nnp" \
		'mkdir /tmp/d; touch /tmp/f; chmod 777 /tmp/f; chmod 700 /tmp/f && echo chmod700-ok; grep Seccomp: /proc/self/status')
	echo "$out" | grep -q "Invalid cross-device link" || fail "errnoRet 18 (NNP=$nnp): $out"
	echo "$out" | grep -q "Permission denied" || fail "argument filter (NNP=$nnp): $out"
	echo "$out" | grep -q "chmod700-ok" || fail "argument filter too wide (NNP=$nnp): $out"
	echo "$out" | grep -q "Seccomp:.*2" || fail "no filter mode (NNP=$nnp): $out"
done
ls "$ROOT/.seccomp-cache/"*.bpf >/dev/null 2>&1 || fail "no cached BPF under $ROOT/.seccomp-cache"

# SCMP_ACT_NOTIFY: the agent gets the fd and the state, then closes it
"$PY" "$HERE/notify-agent.py" "$WORK/notify.sock" "$WORK/notify.json" &
BG_PIDS+=($!)
for _ in $(seq 100); do [ -e "$WORK/notify.json.ready" ] && break; sleep 0.05; done
out=$(run_with "c['linux']['seccomp'] = {'defaultAction': 'SCMP_ACT_ALLOW', 'listenerPath': '$WORK/notify.sock', 'listenerMetadata': 'meta-1',
  'syscalls': [{'names': ['mkdir', 'mkdirat'], 'action': 'SCMP_ACT_NOTIFY'}]}" 'mkdir /tmp/n; echo done')
echo "$out" | grep -q "done" || fail "notify container: $out"
for _ in $(seq 100); do [ -e "$WORK/notify.json" ] && break; sleep 0.05; done
"$PY" - "$WORK/notify.json" <<'PY' || fail "notify: $(cat "$WORK/notify.json" 2>/dev/null)"
import json, sys
n = json.load(open(sys.argv[1]))
assert n["fd_link"] == "anon_inode:seccomp notify", n
s = n["state"]
assert s["fds"] == ["seccompFd"] and s["metadata"] == "meta-1", s
assert s["state"]["id"] == "s" and s["pid"] > 0, s
PY
echo ok
