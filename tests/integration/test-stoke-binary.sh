#!/usr/bin/env bash
# The stoke binary runs: --version names the version, `features` prints a
# runc-shaped JSON document whose lists match this machine (capabilities
# from the kernel, seccomp actions, mount options), unknown verbs fail.
set -euo pipefail
stoke=${1:?usage: test-stoke-binary.sh STOKE}
py=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }

"$stoke" --version | grep -q '^stoke version [0-9]' || fail "--version"
"$stoke" features | "$py" -c '
import json, sys
f = json.load(sys.stdin)
assert f["ociVersionMin"] == "1.0.0", f["ociVersionMin"]
assert set(f["hooks"]) == {"prestart", "createRuntime", "createContainer",
                           "startContainer", "poststart", "poststop"}
for o in ("rbind", "rprivate", "ro", "nosuid", "tmpcopyup", "rro"):
    assert o in f["mountOptions"], o
assert f["mountOptions"] == sorted(f["mountOptions"])
l = f["linux"]
assert set(l["namespaces"]) >= {"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"}
# Every capability the kernel knows: cap_last_cap + 1 of them.
last = int(open("/proc/sys/kernel/cap_last_cap").read())
assert len(l["capabilities"]) == last + 1, (len(l["capabilities"]), last)
assert "CAP_SYS_ADMIN" in l["capabilities"]
assert "SCMP_ACT_NOTIFY" in l["seccomp"]["actions"]
assert "SCMP_ARCH_X86_64" in l["seccomp"]["archs"]
assert l["apparmor"]["enabled"] is False
ver = f["annotations"]["io.github.seccomp.libseccomp.version"]
assert ver.count(".") == 2, ver
' || fail "features document"

if "$stoke" no-such-verb 2>err.$$; then rm -f err.$$; fail "unknown verb succeeded"; fi
grep -q 'unknown command "no-such-verb"' err.$$ || { rm -f err.$$; fail "unknown verb message"; }
rm -f err.$$
echo ok
