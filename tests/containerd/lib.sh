# Shared by the containerd integration tests (sourced, bash).
#
# ctd_setup SHIM_BINARY: start Debian's containerd on sockets under a temp
# dir ($T) with a config written here (CRI disabled), with the shim on its
# PATH and STOKE_SHIM_RUNTIME (default runc) in its environment, and import
# the busybox image ($IMAGE). `c` runs ctr against it. Everything (tasks,
# containers, shims, mounts, containerd, $T) is removed by ctd_cleanup, which
# the EXIT trap runs even when a test fails.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGE=docker.io/library/stoke-busybox:test
NS=stoke-test
RUNTIME=io.containerd.stoke.v2

fail() {
	echo "FAIL: $*" >&2
	[ -n "${T:-}" ] && [ -f "$T/containerd.log" ] && tail -n 40 "$T/containerd.log" >&2
	exit 1
}

c() {
	ctr --address "$T/containerd.sock" --namespace "$NS" "$@"
}

ctd_start() {
	PATH="$T/bin:$PATH" STOKE_SHIM_RUNTIME="$STOKE_SHIM_RUNTIME" \
		containerd --config "$T/config.toml" >>"$T/containerd.log" 2>&1 &
	CTD_PID=$!
	for _ in $(seq 1 200); do
		ctr --address "$T/containerd.sock" version >/dev/null 2>&1 && return 0
		kill -0 "$CTD_PID" 2>/dev/null || fail "containerd exited at start-up"
		sleep 0.05
	done
	fail "containerd did not answer on $T/containerd.sock"
}

ctd_stop() {
	[ -n "${CTD_PID:-}" ] || return 0
	kill "$CTD_PID" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$CTD_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -9 "$CTD_PID" 2>/dev/null || true
	wait "$CTD_PID" 2>/dev/null || true
	CTD_PID=
}

# Shim daemons started for this containerd (their socket address names $T).
shim_pids() {
	local p
	for p in $(pgrep -f 'containerd-shim-(stoke|runc)-v2' || true); do
		{ tr "\0" " " <"/proc/$p/cmdline"; } 2>/dev/null | grep -q -- "$T/containerd.sock" && echo "$p"
	done
	return 0
}

ctd_cleanup() {
	local rc=$? id p
	set +e
	if [ -n "${CTD_PID:-}" ] && kill -0 "$CTD_PID" 2>/dev/null; then
		for id in $(c task ls -q 2>/dev/null); do
			c task kill -s KILL "$id" >/dev/null 2>&1
			c task delete -f "$id" >/dev/null 2>&1
		done
		for id in $(c container ls -q 2>/dev/null); do
			c container delete "$id" >/dev/null 2>&1
		done
	fi
	ctd_stop
	for p in $(shim_pids); do kill -9 "$p" 2>/dev/null; done
	if [ -n "${T:-}" ] && [ -d "$T" ]; then
		# Sockets of shims that did not shut down cleanly.
		for a in $(find "$T/state" -name address 2>/dev/null); do
			rm -f "$(sed 's|^unix://||' "$a")"
		done
		# Deepest mounts first.
		grep -o " $T/[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do
			umount -l "$m" 2>/dev/null
		done
		for id in $(ls "$T/runtime-root/$NS" 2>/dev/null); do
			"$STOKE_SHIM_RUNTIME" --root "$T/runtime-root/$NS" delete --force "$id" >/dev/null 2>&1
		done
		rm -rf "$T"
	fi
	# The namespace's parent cgroups (removal fails while others use them).
	find /sys/fs/cgroup -maxdepth 3 -type d -name "$NS" 2>/dev/null | while read -r d; do
		find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	exit $rc
}

# ctd_setup SHIM_BINARY
ctd_setup() {
	local shim=$1
	[ "$(id -u)" -eq 0 ] || { echo "skip: needs root"; exit 77; }
	command -v containerd >/dev/null && command -v ctr >/dev/null ||
		{ echo "skip: containerd and ctr are not installed"; exit 77; }
	: "${STOKE_SHIM_RUNTIME:=$(command -v runc)}"
	[ -x "$STOKE_SHIM_RUNTIME" ] || { echo "skip: no OCI runtime ($STOKE_SHIM_RUNTIME)"; exit 77; }
	export STOKE_SHIM_RUNTIME
	T=$(mktemp -d "${TMPDIR:-/tmp}/stoke-ctd.XXXXXX")
	trap ctd_cleanup EXIT
	mkdir -p "$T/bin"
	ln -s "$(readlink -f "$shim")" "$T/bin/containerd-shim-stoke-v2"
	# The shim reads Root from this file (runtimeoptions ConfigPath), so the
	# runtime's state stays under $T.
	printf 'Root = "%s"\n' "$T/runtime-root" >"$T/shim.toml"
	cat >"$T/config.toml" <<TOML
version = 2
root = "$T/root"
state = "$T/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$T/containerd.sock"
[ttrpc]
  address = "$T/containerd.sock.ttrpc"
[debug]
  level = "info"
TOML
	ctd_start
	# The project's one image builder (tests/fixtures/); the tag is the
	# manifest's ref name, the repository comes from --base-name.
	"$here/../fixtures/make-busybox-oci-image" "$T/busybox.tar" "${IMAGE##*:}"
	c images import --base-name "${IMAGE%:*}" "$T/busybox.tar" >/dev/null ||
		fail "ctr images import failed"
	c images ls -q | grep -qx "$IMAGE" || fail "image $IMAGE not listed after import"
}

# ctr run with the stoke runtime and the test's runtime root; its IO fifos
# under $T too (not /run/containerd/fifo, where a task whose shim died
# leaves them).
crun_() {
	c run --runtime "$RUNTIME" --runtime-config-path "$T/shim.toml" --fifo-dir "$T/fifo" "$@"
}
