#!/usr/bin/env bash
# docs/ARCHITECTURE.md's module boundaries, checked on the sources: each module includes
# only the libraries its row allows. (meson already hides other modules'
# private headers and the CUDA headers from modules that may not use them;
# this catches system libraries, whose headers are always on the path.)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
status=0

# forbid MODULE_DIR REGEX WHY
forbid() {
	local dir=$1 re=$2 why=$3 hits
	hits=$(grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]($re)[>\"]" "$dir" \
		--include='*.c' --include='*.h' || true)
	if [ -n "$hits" ]; then
		echo "FAIL: $dir may not include $why:" >&2
		echo "$hits" >&2
		status=1
	fi
}

ext='zstd\.h|zstd_errors\.h|liburing\.h|xxhash\.h|seccomp\.h|sys/capability\.h|cuda\.h|cudaTypedefs\.h|criu/criu\.h|criu\.h|protobuf-c/protobuf-c\.h'
forbid common "$ext|stoke-[a-z-]*\.h" "external libraries other than json-c, or any module's header"
forbid shim "zstd\.h|zstd_errors\.h|liburing\.h|xxhash\.h|cuda\.h|cudaTypedefs\.h|criu/criu\.h|criu\.h|stoke-loader[a-z-]*\.h" \
	"zstd, liburing, xxhash, CUDA, libcriu or the loader (it uses snapshot's public API only)"
forbid snapshot "seccomp\.h|sys/capability\.h|protobuf-c/protobuf-c\.h|stoke-runtime[a-z-]*\.h|stoke-loader[a-z-]*\.h" \
	"libseccomp, libcap, protobuf-c, the runtime or the loader"
forbid loader "zstd\.h|seccomp\.h|sys/capability\.h|criu\.h|criu/criu\.h|protobuf-c/protobuf-c\.h|stoke-runtime[a-z-]*\.h|stoke-snapshot[a-z-]*\.h|stoke-checkpoint[a-z-]*\.h" \
	"zstd, libseccomp, libcap, libcriu, protobuf-c, the runtime or snapshot"

# The runtime never loads CUDA and stays single-threaded.
if grep -rnE 'pthread_create|dlopen\("libcuda' shim --include='*.c' | grep -v '^shim/main.c' >/dev/null; then
	echo "FAIL: shim/ starts threads or loads libcuda:" >&2
	grep -rnE 'pthread_create|dlopen\("libcuda' shim --include='*.c' >&2
	status=1
fi
[ "$status" -eq 0 ] && echo ok
exit "$status"
