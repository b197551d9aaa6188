# Sourced by the checkpoint tests (bash): fail fast, with the reason, where
# checkpoint/restore cannot work, instead of hanging until meson's timeout.
#
# require_checkpoint_restore STOKE
#   Runs `stoke check --json` (bounded by its own deadlines). When its real
#   dump and restore works, returns. Otherwise prints stoke check's reason
#   and exits: 77 (skip) only when the host itself cannot checkpoint (no
#   criu binary, or `criu check` rejects the kernel), 1 otherwise (CRIU is
#   there and the kernel can do it, so a failure is stoke's or the install's).
require_checkpoint_restore() {
	local stoke=$1 json reason
	local root
	root=$(mktemp -d "${TMPDIR:-/tmp}/stoke-check-root.XXXXXX")
	json=$(timeout -k 5 120 "$stoke" --root "$root" check --json 2>/dev/null) || true
	rm -rf "$root"
	if /usr/bin/python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1]).get("checkpoint_restore_usable") else 1)' "$json" 2>/dev/null; then
		return 0
	fi
	reason=$(/usr/bin/python3 -c 'import json,sys; c=json.loads(sys.argv[1])["checkpoint_restore"]; print(c.get("detail") or c.get("result"))' "$json" 2>/dev/null ||
		echo "stoke check gave no answer: $json")
	if ! command -v criu >/dev/null; then
		echo "skip: this host has no criu binary (stoke check: $reason)"
		exit 77
	fi
	if ! criu check >/dev/null 2>&1; then
		echo "skip: this host's kernel cannot checkpoint: criu check fails ($(criu check 2>&1 | grep -m1 -i error || true)); stoke check: $reason"
		exit 77
	fi
	echo "FAIL: checkpoint/restore does not work here although criu check passes: $reason (see: $stoke check)" >&2
	exit 1
}
