#!/usr/bin/env bash
# Restores whose memory pages are copied over userfaultfd straight from the
# snapshot (shim/restore-pages.c), on the AI-server fixture: one python
# process holding its weights in anonymous memory, answering /infer from
# them. Checks, with real CRIU:
#   - the restore reports "pages":"uffd", and the restored server's answer,
#     computed from its restored memory, is the host's;
#   - the same restore with STOKE_RESTORE_PAGES=tmpfs (pages unpacked for
#     CRIU) reports "pages":"tmpfs" and answers correctly too;
#   - a snapshot with a damaged chunk in its pages fails the restore with a
#     checksum error, and leaves no state, process, cgroup or temp dir.
#   test-restore-pages.sh STOKE
source "$(dirname "$0")/../runtime/lib.sh"
source "$(dirname "$0")/../lib-checkpoint.sh"
require_checkpoint_restore "$STOKE"
command -v criu >/dev/null || { echo "skip: criu not installed"; exit 77; }
"$PY" -c 'import numpy' 2>/dev/null || { echo "skip: no numpy for $PY"; exit 77; }

AI=$FIXTURES/ai-server
B=$WORK/ai
SOCK=$B/sock/ai.sock
export STOKE_RESTORE_TMPDIR=$WORK/shm
mkdir -p "$STOKE_RESTORE_TMPDIR"
"$AI/make-ai-server-bundle" "$B" --model-size 16 >/dev/null
edit_config "$B" "c['linux']['cgroupsPath'] = '$(cgpath ai)'"

# answer: wait (at most 60 s) for a correct /infer answer on the socket.
answer() {
	local out
	out=$("$AI/ai-client" --socket "$SOCK" --expect "$B/expected.json" --timeout 60 --json) ||
		fail "$1: no correct answer: $out $(cat "$B/sock/server.log" 2>/dev/null | tail -3)"
}

# restore_stats ID: restore from the snapshot, print --stats' JSON.
restore_stats() {
	rm -f "$SOCK"
	st restore -d --stats --snapshot "$WORK/ai.stoke" --bundle "$B" "$1" </dev/null
}

pages_mode() { "$PY" -c 'import json,sys; print(json.load(sys.stdin)["pages"])'; }

echo "# a warmed-up server, checkpointed to a snapshot"
rm -f "$SOCK"
st run -d --bundle "$B" srv </dev/null >/dev/null
answer "cold start"
st checkpoint --snapshot "$WORK/ai.stoke" srv
assert_gone srv

echo "# restore: pages over userfaultfd"
stats=$(restore_stats r1)
[ "$(pages_mode <<<"$stats")" = uffd ] || fail "pages not served over userfaultfd: $stats"
"$PY" -c 'import json,sys; s=json.load(sys.stdin); assert s["pages_lazy_bytes"] >= 16 << 20, s' \
	<<<"$stats" || fail "fewer lazy bytes than the weights: $stats"
answer "restore over userfaultfd"
pid=$(st state r1 | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
st delete --force r1
assert_gone r1 "$pid"

echo "# restore: pages unpacked into tmpfs (STOKE_RESTORE_PAGES=tmpfs)"
stats=$(STOKE_RESTORE_PAGES=tmpfs restore_stats r2)
[ "$(pages_mode <<<"$stats")" = tmpfs ] || fail "STOKE_RESTORE_PAGES=tmpfs ignored: $stats"
answer "restore through tmpfs"
st delete --force r2
assert_gone r2

echo "# a damaged chunk in the pages: the restore fails and leaves nothing"
cp "$WORK/ai.stoke" "$WORK/bad.stoke"
size=$(stat -c %s "$WORK/bad.stoke")
# The weights are nearly all of the file: its middle is in the pages.
printf '\xff\x00\xff\x00' | dd of="$WORK/bad.stoke" bs=1 seek=$((size / 2)) conv=notrunc status=none
rm -f "$SOCK"
if st restore -d --snapshot "$WORK/bad.stoke" --bundle "$B" r3 </dev/null 2>"$WORK/err"; then
	fail "restore from a snapshot with a damaged page chunk succeeded"
fi
grep -qi "checksum" "$WORK/err" || fail "unclear error: $(cat "$WORK/err")"
assert_gone r3
! pgrep -f "server.py.*$SOCK" >/dev/null || fail "a restored server process is left"
[ -z "$(ls -A "$STOKE_RESTORE_TMPDIR")" ] || fail "temporary images left: $(ls -A "$STOKE_RESTORE_TMPDIR")"
echo "ok"
