#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `stoke snapshot pack|inspect|verify|unpack` end to end: a tree round-trips
# (through both reader paths), damaged files are refused with a message that
# names the file, a failed unpack leaves nothing behind, and the progress
# line appears only on a terminal.
set -u
STOKE=$(realpath "$1")
T=$(mktemp -d "${TMPDIR:-/var/tmp}/stoke-snap-cli-XXXXXX")
trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$T/src/criu/sub" "$T/src/empty-dir"
head -c 3000000 /dev/urandom > "$T/src/criu/pages-1.img"
yes "text text text" | head -c 2000000 > "$T/src/criu/mm.img"
truncate -s 50M "$T/src/criu/sparse.img"
printf '{"ociVersion":"1.0.2"}' > "$T/src/config.json"
: > "$T/src/criu/zero-length"
ln -s ../config.json "$T/src/criu/sub/cfg-link"
chmod 0600 "$T/src/criu/pages-1.img"

"$STOKE" snapshot pack --chunk-size 256K "$T/src" "$T/s.snap" || fail "pack"
[ -f "$T/s.snap" ] || fail "no snapshot file"
ls -a "$T" | grep -q '^\.s\.snap\.' && fail "temporary file left behind"

out=$("$STOKE" snapshot inspect "$T/s.snap") || fail "inspect"
echo "$out" | grep -q 'chunk size 262144' || fail "inspect: chunk size: $out"
echo "$out" | grep -Eq 'file +600 +3000000 .* criu/pages-1.img' || fail "inspect: entry: $out"
echo "$out" | grep -q '^total:' || fail "inspect: total"

"$STOKE" snapshot verify "$T/s.snap" | grep -q "OK" || fail "verify"
STOKE_SNAPSHOT_FORCE_PREAD=1 "$STOKE" snapshot verify "$T/s.snap" | grep -q "with pread" ||
	fail "verify (pread path)"

"$STOKE" snapshot unpack --stats "$T/s.snap" "$T/out" 2>"$T/stats" || fail "unpack"
grep -q "^stats: .*decompressed 5[0-9.]* MB" "$T/stats" || fail "unpack --stats: $(cat "$T/stats")"
diff -r --no-dereference "$T/src" "$T/out" || fail "unpacked tree differs"
[ "$(stat -c %a "$T/out/criu/pages-1.img")" = 600 ] || fail "mode not kept"
[ "$(readlink "$T/out/criu/sub/cfg-link")" = ../config.json ] || fail "symlink not kept"
[ "$(stat -c %b "$T/out/criu/sparse.img")" -lt 1000 ] || fail "sparse file not sparse"
STOKE_SNAPSHOT_FORCE_PREAD=1 "$STOKE" snapshot unpack "$T/s.snap" "$T/out2" || fail "unpack pread"
diff -r --no-dereference "$T/src" "$T/out2" || fail "unpacked tree differs (pread)"

# an existing non-empty target is refused and left untouched
"$STOKE" snapshot unpack "$T/s.snap" "$T/out" 2>"$T/err" && fail "unpack over a full dir"
grep -q 'not an empty directory' "$T/err" || fail "message: $(cat "$T/err")"

# damaged files: truncated, flipped bit, not a snapshot; message names the file
cp "$T/s.snap" "$T/bad.snap"
truncate -s -1 "$T/bad.snap"
"$STOKE" snapshot verify "$T/bad.snap" 2>"$T/err" && fail "truncated file verified"
grep -q "bad.snap" "$T/err" || fail "message does not name the file: $(cat "$T/err")"
cp "$T/s.snap" "$T/bad.snap"
printf '\x55' | dd of="$T/bad.snap" bs=1 seek=5000 conv=notrunc status=none
"$STOKE" snapshot verify "$T/bad.snap" 2>"$T/err" && fail "flipped file verified"
grep -q "checksum mismatch" "$T/err" || fail "message: $(cat "$T/err")"
"$STOKE" snapshot unpack "$T/bad.snap" "$T/out3" 2>"$T/err" && fail "damaged file unpacked"
[ -e "$T/out3" ] && fail "partial unpack left behind"
ls -a "$T" | grep -q 'unpack-' && fail "temporary unpack directory left behind"
"$STOKE" snapshot inspect "$T/src/config.json" 2>"$T/err" && fail "inspect of a non-snapshot"
grep -q "config.json" "$T/err" || fail "message: $(cat "$T/err")"
"$STOKE" snapshot bogus 2>/dev/null && fail "unknown subcommand accepted"

# pack of something that is not a tree fails and leaves no file
"$STOKE" snapshot pack "$T/nonexistent" "$T/n.snap" 2>/dev/null && fail "pack of a missing dir"
[ -e "$T/n.snap" ] && fail "failed pack left a file"
ls -a "$T" | grep -q '^\.n\.snap\.' && fail "failed pack left a temporary"

# progress line only on a terminal (script gives the command a pty)
"$STOKE" snapshot verify "$T/s.snap" 2>"$T/err" >/dev/null
[ -s "$T/err" ] && fail "progress printed without a terminal"
if command -v script >/dev/null; then
	script -q -c "$STOKE snapshot unpack $T/s.snap $T/out4" /dev/null >"$T/tty" ||
		fail "unpack on a pty"
	grep -q "unpack:" "$T/tty" || echo "note: no progress line (operation was too fast)"
fi
echo "ok"
