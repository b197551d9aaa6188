#!/usr/bin/env bash
# The AI-server fixture works with runc: make-model is deterministic; the
# bundle cold-starts and gives the correct /infer answer (checked against the
# answer computed on the host from the model file); a wrong expected answer
# is reported as wrong; `runc checkpoint` then `runc restore` (twice from the
# same images) brings back a server whose answer, computed from its restored
# memory, is still correct; bad builder input fails clearly and leaves
# nothing behind. Cleans up its containers and temp dir even on failure.
set -euo pipefail
fixture=$(cd "$(dirname "$0")/../fixtures/ai-server" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "skip: needs root"; exit 77; }
command -v runc >/dev/null || { echo "skip: runc not installed"; exit 77; }

fail() { echo "FAIL: $*" >&2; [ -f "${b:-/nonexistent}/sock/server.log" ] && cat "$b/sock/server.log" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/stoke-aifix.XXXXXX")
id="stoke-aifix-$$"
state=$tmp/state
cleanup() {
	runc --root "$state" delete --force "$id" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Deterministic generator: same arguments, same bytes; data 4096-aligned.
"$fixture/make-model" "$tmp/m1" --size 2
"$fixture/make-model" "$tmp/m2" --size 2
cmp -s "$tmp/m1" "$tmp/m2" || fail "make-model wrote different bytes for the same arguments"
"$fixture/make-model" "$tmp/m3" --size 2 --seed 1
cmp -s "$tmp/m1" "$tmp/m3" && fail "make-model ignored --seed"
hlen=$(/usr/bin/python3 -c 'import struct,sys; print(struct.unpack("<Q", open(sys.argv[1],"rb").read(8))[0])' "$tmp/m1")
[ $(((8 + hlen) % 4096)) -eq 0 ] || fail "tensor data does not start on a 4096-byte boundary (header $hlen)"

# Bad input: clear error, non-zero exit, nothing half-built.
if out=$("$fixture/make-ai-server-bundle" "$tmp/bad" --model-size zero 2>&1); then fail "accepted --model-size zero"; fi
grep -q "model-size" <<<"$out" || fail "unclear error for a bad --model-size: $out"
[ ! -e "$tmp/bad" ] || fail "a failed build left $tmp/bad behind"
if out=$("$fixture/make-ai-server-bundle" "$tmp/bad" --model "$tmp/nonexistent" 2>&1); then fail "accepted a missing --model"; fi
grep -q "no such file" <<<"$out" || fail "unclear error for a missing model: $out"
[ ! -e "$tmp/bad" ] || fail "a failed build left $tmp/bad behind"

b=$tmp/bundle
"$fixture/make-ai-server-bundle" "$b" --model-size 8
for f in config.json config.crun.json expected.json model.safetensors; do
	[ -s "$b/$f" ] || fail "bundle lacks $f"
done
for l in bin lib lib64 sbin; do
	[ "$(readlink "$b/rootfs/$l")" = "usr/$l" ] || fail "rootfs/$l is not a symlink into usr"
done

client() { "$fixture/ai-client" --socket "$b/sock/ai.sock" --timeout 60 "$@"; }

# Cold start with runc: correct answer.
out=$(client --expect "$b/expected.json" --json -- runc --root "$state" --log "$tmp/runc.log" run -d --bundle "$b" "$id") ||
	fail "runc cold start: $out $(cat "$tmp/runc.log" 2>/dev/null)"
grep -q '"ok": true' <<<"$out" || fail "runc cold start: $out"

# A wrong expectation is caught, not waved through.
/usr/bin/python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); e["result"][3]+=1.0; json.dump(e,open(sys.argv[2],"w"))' \
	"$b/expected.json" "$tmp/wrong.json"
if out=$(client --expect "$tmp/wrong.json" 2>&1); then fail "a wrong answer was accepted"; fi
grep -q "wrong answer" <<<"$out" || fail "wrong answer not reported as such: $out"

# Checkpoint (the container goes away), then restore twice from the images.
runc --root "$state" --log "$tmp/runc.log" checkpoint --image-path "$tmp/img" "$id" ||
	fail "runc checkpoint: $(tail -5 "$tmp/runc.log")"
[ -z "$(runc --root "$state" list -q)" ] || fail "container still listed after checkpoint"
for round in 1 2; do
	rm -f "$b/sock/ai.sock"
	out=$(client --expect "$b/expected.json" --json -- \
		runc --root "$state" --log "$tmp/runc.log" restore -d --image-path "$tmp/img" --bundle "$b" "$id") ||
		fail "runc restore round $round: $out $(tail -5 "$tmp/runc.log")"
	grep -q '"ok": true' <<<"$out" || fail "runc restore round $round: $out"
	runc --root "$state" delete --force "$id"
done
echo "ok"
