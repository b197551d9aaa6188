#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Integration: a generated 2 GiB safetensors file loaded by `stoke load
# --verify` (every tensor compared with the file) through io_uring with
# O_DIRECT, through pread, through the forced io_uring refusal, and through
# the Python binding (every tensor compared with np.fromfile).
# Args: STOKE MAKE_SAFETENSORS LIBSTOKELOADER PYTHON_DIR. The file is
# removed on exit, also on failure.
set -eu
stoke=$1 make=$2 lib=$3 pydir=$4
[ -x "$stoke" ] || { echo "skip: $stoke not built"; exit 77; }
# 2 GiB of test data: skip (not fail) on a machine without the room.
avail=$(df --output=avail -B1 "${TMPDIR:-/var/tmp}" | tail -n 1)
[ "$avail" -ge $((3 << 30)) ] || { echo "skip: less than 3 GiB free in ${TMPDIR:-/var/tmp}"; exit 77; }
dir=$(mktemp -d "${TMPDIR:-/var/tmp}/stoke-ldr-big-XXXXXX")
trap 'rm -rf "$dir"' EXIT INT TERM
f=$dir/big.safetensors
"$make" "$f" 2048 7

STOKE_LOAD_PAGES=4k "$stoke" load --stats --verify --direct "$f" | tee "$dir/out"
grep -q "engine: io_uring" "$dir/out"
grep -q " 0 buffered" "$dir/out"
grep -q "host memory: 4 KiB pages" "$dir/out"
# Host tensors in 2 MiB pages (what `stoke check`'s memory profile picks
# where huge pages are cheaper): every byte verified the same way.
STOKE_LOAD_PAGES=2m "$stoke" load --stats --verify --direct "$f" | tee "$dir/out"
grep -q "host memory: 2 MiB pages" "$dir/out"
STOKE_LOAD_PAGES=2m "$stoke" load --stats --verify --no-uring --copy "$f" | tee "$dir/out"
grep -q "host memory: 2 MiB pages" "$dir/out"
"$stoke" load --stats --verify --no-uring "$f" | tee "$dir/out"
grep -q "engine: pread" "$dir/out"
STOKE_LOADER_TEST_REFUSE_URING=1 "$stoke" load --stats --verify --copy "$f" | tee "$dir/out"
grep -q "io_uring refused" "$dir/out"
# Now wholly in the page cache: the default load maps it instead of copying.
cat "$f" >/dev/null
"$stoke" load --stats --verify "$f" | tee "$dir/out"
grep -q "engine: mmap" "$dir/out"

STOKE_LOADER_LIB=$lib PYTHONPATH=$pydir /usr/bin/python3 -B - "$f" <<'PY'
import json, struct, sys
import numpy as np
import stoke_loader as sl
path = sys.argv[1]
with open(path, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    hdr = json.loads(f.read(n))
hdr.pop("__metadata__", None)
m = sl.Model(path)
st = m.load(flags=sl.ALWAYS_DIRECT)
assert st["backend"] == "io_uring", st
for name, e in hdr.items():
    b, end = e["data_offsets"]
    want = np.fromfile(path, dtype=np.uint8, count=end - b, offset=8 + n + b)
    got = m[name]
    assert got.nbytes == end - b and got.view(np.uint8).reshape(-1).tobytes() == want.tobytes(), name
print("python: %d tensors identical" % len(hdr))
PY
echo ok
