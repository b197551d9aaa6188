#!/usr/bin/env bash
# `stoke check`: the table and the JSON object name every probe; on this
# project's machine checkpoint/restore works with CRIU >= 4.2, and on a PVM
# host hardware breakpoints are reported unusable. With a criu that hangs,
# the --criu-timeout deadline fails the check in time and leaves no process
# behind; with an old criu whose dumps fail, the check fails naming why.
# Optional: STOKE_CHECK_FAKECUDA=DIR (the fake libcuda.so.1) checks the GPU
# probe finds a driver.
set -euo pipefail
stoke=${1:?usage: test-stoke-check.sh STOKE}
py=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (CRIU)"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/stoke-check-test.XXXXXX")
# Every process a stand-in criu started, by pid (killed here whatever happens).
cleanup() {
	if [ -f "$tmp/pids" ]; then
		while read -r p; do kill -9 "$p" 2>/dev/null || true; done <"$tmp/pids"
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
export TMPDIR=$tmp

now() { date +%s.%N; }
elapsed_below() { "$py" -c "import sys; sys.exit(0 if $2 - $1 < $3 else 1)"; }

# --- The real criu ---------------------------------------------------------
t0=$(now)
rc=0
"$stoke" --root "$tmp/root" check >"$tmp/table" 2>"$tmp/err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$tmp/table" "$tmp/err" >&2; fail "stoke check exited $rc"; }
elapsed_below "$t0" "$(now)" 90 || fail "stoke check took 90 s or more (a hang)"
head -1 "$tmp/table" | grep -q '^NAME  *RESULT  *DETAIL$' || fail "table header: $(head -1 "$tmp/table")"
for row in criu checkpoint/restore "hardware breakpoints" userfaultfd "lazy pages" io_uring \
	cgroups "user namespaces" gpu "memory costs"; do
	grep -q "^$row  " "$tmp/table" || fail "table has no row \"$row\""
done
grep -q '^checkpoint/restore  *ok  ' "$tmp/table" || fail "checkpoint/restore not ok: $(cat "$tmp/table")"
ls "$tmp" | grep -q '^stoke-check\.' && fail "a successful check left its temporary directory"

pvm=0
if dmesg 2>/dev/null | grep -qi 'pvm' || grep -qi pvm /sys/hypervisor/type 2>/dev/null; then
	pvm=1
fi
"$stoke" --root "$tmp/root" check --json >"$tmp/json" || fail "stoke check --json exited $?"
PVM=$pvm "$py" - "$tmp/json" <<'EOF'
import json, os, sys
d = json.load(open(sys.argv[1]))
keys = ["criu", "checkpoint_restore", "hardware_breakpoints", "userfaultfd", "lazy_pages",
        "io_uring", "cgroups", "user_namespaces", "gpu"]
for k in keys:
    assert k in d, k
    for f in ("result", "usable", "value", "detail"):
        assert f in d[k], (k, f)
    assert d[k]["result"] in ("ok", "unusable", "failed", "n/a", "skipped"), d[k]
ver = tuple(int(x) for x in d["criu"]["value"].split("."))
assert ver >= (4, 2), d["criu"]
cr = d["checkpoint_restore"]
assert cr["result"] == "ok" and cr["usable"] is True, cr
assert d["checkpoint_restore_usable"] is True
assert d["cgroups"]["value"] in ("v1", "v2", "hybrid"), d["cgroups"]
if os.environ["PVM"] == "1":
    hw = d["hardware_breakpoints"]
    assert hw["result"] == "unusable" and hw["usable"] is False, hw
m = d["memory_profile"]
for k in ("fault_4k_us", "uffd_copy_4k_us"):
    assert m[k] > 0, (k, m)
assert 0 <= m["thp_share"] <= 1, m
for k in ("uffd_move", "madv_collapse", "huge_pages_cheaper", "from_cache"):
    assert isinstance(m[k], bool), (k, m)
assert d["memory"]["result"] == "ok", d["memory"]
EOF

# The memory profile is measured once per boot and cached in the state dir.
"$py" - "$tmp/root/host-memory-profile.json" <<'EOF' || fail "no per-boot memory profile cache"
import json, sys
c = json.load(open(sys.argv[1]))
assert c["boot_id"] == open("/proc/sys/kernel/random/boot_id").read().strip(), c
EOF
"$stoke" --root "$tmp/root" check --json | "$py" -c 'import json,sys; assert json.load(sys.stdin)["memory_profile"]["from_cache"] is True' ||
	fail "the second check did not read the cached memory profile"
"$stoke" --root "$tmp/root" check --json --remeasure | "$py" -c 'import json,sys; assert json.load(sys.stdin)["memory_profile"]["from_cache"] is False' ||
	fail "--remeasure read the cache"

# --- GPU probe: skipped on request; with the fake driver, found -------------
STOKE_CHECK_SKIP_GPU=1 "$stoke" --root "$tmp/root" check --json | "$py" -c '
import json, sys
g = json.load(sys.stdin)["gpu"]
assert g["result"] == "skipped" and g["usable"] is None, g
' || fail "STOKE_CHECK_SKIP_GPU"
if [ -n "${STOKE_CHECK_FAKECUDA:-}" ] && [ -e "$STOKE_CHECK_FAKECUDA/libcuda.so.1" ]; then
	LD_LIBRARY_PATH=$STOKE_CHECK_FAKECUDA "$stoke" --root "$tmp/root" check --json | "$py" -c '
import json, sys
g = json.load(sys.stdin)["gpu"]
assert g["result"] == "ok" and g["value"] == "found", g
' || fail "the GPU probe did not find the fake driver"
fi

# --- A criu that hangs: the deadline ends it ---------------------------------
mkdir "$tmp/hang"
cat >"$tmp/hang/criu" <<EOF
#!/bin/sh
if [ "\$1" = "--version" ]; then echo "Version: 4.2.1"; exit 0; fi
echo \$\$ >>"$tmp/pids"
sleep 1000 &
echo \$! >>"$tmp/pids"
wait
EOF
chmod +x "$tmp/hang/criu"
t0=$(now)
rc=0
PATH=$tmp/hang:$PATH timeout 30 "$stoke" --root "$tmp/root" check --criu-timeout 3 >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" -ne 0 ] || fail "a hanging criu: stoke check exited 0"
[ "$rc" -ne 124 ] || fail "a hanging criu: stoke check itself hung"
elapsed_below "$t0" "$(now)" 15 || fail "a hanging criu: stoke check took 15 s or more"
grep -q 'timed out' "$tmp/err" || fail "a hanging criu: no timeout in the reason: $(cat "$tmp/err")"
[ -s "$tmp/pids" ] || fail "the hanging criu never ran"
sleep 0.2
while read -r p; do
	if kill -0 "$p" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null; then
		fail "process $p of the hanging criu is still alive: $(tr '\0' ' ' <"/proc/$p/cmdline")"
	fi
done <"$tmp/pids"

# --- An old criu whose dumps fail ---------------------------------------------
mkdir "$tmp/old"
cat >"$tmp/old/criu" <<'EOF'
#!/bin/sh
if [ "$1" = "--version" ]; then echo "Version: 4.1.1"; exit 0; fi
echo "Error (fake-criu): this criu cannot dump" >&2
exit 1
EOF
chmod +x "$tmp/old/criu"
rc=0
PATH=$tmp/old:$PATH timeout 60 "$stoke" --root "$tmp/root" check --json >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" -ne 0 ] || fail "a failing criu: stoke check exited 0"
[ "$rc" -ne 124 ] || fail "a failing criu: stoke check hung"
grep -q 'checkpoint/restore does not work on this host: dump: criu dump failed' "$tmp/err" ||
	fail "a failing criu: the reason is not named: $(cat "$tmp/err")"
"$py" -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["criu"]["value"] == "4.1.1", d["criu"]
assert d["checkpoint_restore"]["result"] == "failed", d["checkpoint_restore"]
assert d["checkpoint_restore_usable"] is False
' "$tmp/out" || fail "a failing criu: JSON"
# The global --criu flag picks the binary too.
rc=0
"$stoke" --root "$tmp/root" --criu "$tmp/old/criu" check >"$tmp/out" 2>/dev/null || rc=$?
[ "$rc" -ne 0 ] || fail "--criu: the failing criu was not used"
grep -q "^criu  *4\.1\.1 " "$tmp/out" || fail "--criu: $(head -2 "$tmp/out")"
if [ "$pvm" = 1 ]; then
	grep -q 'older than 4.2' "$tmp/out" || fail "an old criu on PVM: no warning"
fi

# --- Bad arguments ---------------------------------------------------------
"$stoke" --root "$tmp/root" check --criu-timeout 0 2>/dev/null && fail "--criu-timeout 0 accepted"
"$stoke" --root "$tmp/root" check extra 2>/dev/null && fail "an extra argument accepted"
echo ok
