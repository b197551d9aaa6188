#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Real-GPU check of the weight loader (NVIDIA driver >= 570), for
# scripts/gpu-check: generate a 4 GiB safetensors file, load it onto cuda:0
# with `stoke load --device cuda:0` from a cold page cache (io_uring,
# O_DIRECT, pinned staging buffers, async copies) and warm, then through the
# pread path, and verify every tensor: --verify reads each tensor back from
# device memory (cuMemcpyDtoH) and compares it with the file's bytes.
# A couple of minutes at most. Exit 0 pass, 1 fail, 77 skip (no GPU).
#
#   tests/gpu/loader-gpu-check.sh [BUILD_DIR]     (default: build)
set -eu
[ -e /dev/nvidiactl ] || { echo "skip: /dev/nvidiactl absent (no NVIDIA driver)"; exit 77; }
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
stoke=$build/stoke
gen=$build/tests/loader/make-safetensors
for f in "$stoke" "$gen"; do
	[ -x "$f" ] || { echo "FAIL: $f is not built (ninja -C $build)"; exit 1; }
done
dir=$(mktemp -d "${TMPDIR:-/var/tmp}/stoke-gpu-load-XXXXXX")
trap 'rm -rf "$dir"' EXIT INT TERM
f=$dir/model.safetensors
"$gen" "$f" "${STOKE_GPU_CHECK_MIB:-4096}"

drop_caches() {
	sync
	if [ "$(id -u)" = 0 ]; then echo 3 > /proc/sys/vm/drop_caches; fi
}

echo "== cold, io_uring + O_DIRECT -> cuda:0"
drop_caches
"$stoke" load --device cuda:0 --stats --verify "$f"
echo "== warm (page cache) -> cuda:0"
"$stoke" load --device cuda:0 --stats --verify "$f"
echo "== pread path, half on the host by placement -> cuda:0"
"$stoke" load --device cuda:0 --placement 'layers.1*=cpu' --no-uring --stats --verify "$f"
echo "PASS: every tensor on cuda:0 matches the file"
