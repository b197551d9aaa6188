#!/usr/bin/env bash
# The runtime binary is not writable through /proc/<pid>/exe (the class of
# runc's CVE-2019-5736). While `stoke exec` sets up a process inside the
# container, a stoke process is visible in the container's pid namespace;
# a container process that opened its /proc/PID/exe (read-only: writing a
# running binary fails with ETXTBSY) could reopen it for writing through
# /proc/self/fd/N once stoke exits. stoke makes itself non-dumpable, so
# that open is refused. The test runs a copy of the binary (never the build
# output), 20 execs against a container that scans /proc/*/exe without a
# pause, and checks the copy's hash and the container's log afterwards.
source "$(dirname "$0")/lib.sh"

COPY=$WORK/stoke-copy
cp "$STOKE" "$COPY"
chmod 0755 "$COPY"
SUM=$(sha256sum <"$COPY")

# Every exe that is not busybox (the rootfs's only binary) is the runtime's.
# Each one opened read-only gets a writer that keeps the fd and retries the
# write for 5 s, the time for the stoke that exec'ed into it to exit.
SCRIPT='
n=0
while :; do
	for e in /proc/[0-9]*/exe; do
		[ "$e" -ef /bin/busybox ] && continue
		command exec 3<"$e" 2>/dev/null || continue
		# the process may have run busybox since the first look
		if [ /proc/self/fd/3 -ef /bin/busybox ]; then
			exec 3<&-
			continue
		fi
		n=$((n + 1))
		echo "opened $e" >>/log
		(
			for i in $(seq 50); do
				if echo PWNED 2>/dev/null >/proc/self/fd/3; then
					echo "wrote $e" >>/log
					break
				fi
				sleep 0.1
			done
		) &
		exec 3<&-
	done
	[ -e /stop ] && break
done
echo "scanner done" >>/log
sleep 999
'
make_bundle "$BUNDLE" sh -c "$SCRIPT"
edit_config "$BUNDLE" "c['root']['readonly'] = False; c['linux']['cgroupsPath'] = '$(cgpath c1)'"
"$COPY" --root "$ROOT" run -d --bundle "$BUNDLE" c1 </dev/null >/dev/null 2>&1 || fail "run the scanner"
wait_status c1 running

# An exec that fails is judged below: the attack makes the copy unrunnable.
for i in $(seq 20); do
	timeout 30 "$COPY" --root "$ROOT" exec c1 true </dev/null ||
		{ echo "exec $i failed"; break; }
done
sleep 6	# the writers' retries
touch "$BUNDLE/rootfs/stop"

# The container's own processes are dumpable again after their execve (CRIU
# needs that; checked through what a container process may read of another:
# environ needs the same access as exe).
st exec -d c1 sleep 4321 </dev/null || fail "exec -d sleep"
DUMP=$(st exec c1 sh -c 'cat /proc/1/environ >/dev/null && echo init-dumpable
	for p in $(pidof sleep); do
		tr "\0" " " </proc/$p/cmdline | grep -q 4321 || continue
		cat /proc/$p/environ >/dev/null && echo exec-dumpable
	done' </dev/null 2>&1) || true
grep -q init-dumpable <<<"$DUMP" || fail "the container's init is not dumpable: $DUMP"
grep -q exec-dumpable <<<"$DUMP" || fail "an exec'ed process is not dumpable: $DUMP"
sleep 0.5
LOG=$(cat "$BUNDLE/rootfs/log" 2>/dev/null || true)
echo "container log: ${LOG:-(empty)}"
[ "$(sha256sum <"$COPY")" = "$SUM" ] ||
	fail "the stoke binary was overwritten from the container: $(head -c 40 "$COPY" | od -c | head -2)"
! grep -q '^wrote' <<<"$LOG" || fail "a container process wrote stoke's exe: $LOG"
! grep -q '^opened' <<<"$LOG" || fail "a container process opened stoke's exe: $LOG"
echo "ok: stoke's exe could not be opened from the container"
