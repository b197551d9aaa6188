#!/usr/bin/env bash
# GPU checkpoint on a real NVIDIA machine (driver >= 570), called by
# scripts/gpu-check:  tests/gpu/checkpoint-gpu-check.sh BUILDDIR
# A CUDA program (tests/checkpoint/cuda-pattern) fills 1 GiB of device memory
# with a known pattern; stoke's GPU + CRIU path (cuCheckpointProcessLock,
# Checkpoint, CRIU dump) checkpoints it, it is killed, restored (CRIU restore,
# cuCheckpointProcessRestore, Unlock) and it verifies its device memory byte
# for byte; then the same with --leave-running.
# Exit: 0 passed, 77 no GPU / not root / no criu, 1 failed.
set -uo pipefail
builddir=${1:-build-gpu}
if [ ! -e /dev/nvidiactl ]; then
	echo "checkpoint-gpu-check: no /dev/nvidiactl"
	exit 77
fi
if [ "$(id -u)" != 0 ]; then
	echo "checkpoint-gpu-check: needs root (CRIU)"
	exit 77
fi
test_bin=$builddir/tests/checkpoint/test-gpu-checkpoint
pattern=$builddir/tests/checkpoint/cuda-pattern
if [ ! -x "$test_bin" ] || [ ! -x "$pattern" ]; then
	echo "checkpoint-gpu-check: $test_bin or $pattern not built (meson -Dgpu=enabled)"
	exit 1
fi
nvidia-smi --query-gpu=name,driver_version,persistence_mode --format=csv,noheader 2>/dev/null
# The real driver, not the fake: no LD_LIBRARY_PATH, no --fake.
env -u LD_LIBRARY_PATH CUDA_PATTERN_MIB=${CUDA_PATTERN_MIB:-1024} \
	timeout 300 "$test_bin" "$pattern"
