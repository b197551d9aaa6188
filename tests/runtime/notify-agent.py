#!/usr/bin/python3
"""A seccomp notify agent for tests: notify-agent.py SOCKET OUT
Accepts one connection on SOCKET, receives the listener fd and the
containerProcessState JSON, writes {"state": ..., "fd_link": readlink of the
fd} to OUT, then closes the fd (pending and later notified syscalls then fail
with ENOSYS in the container)."""
import array, json, os, socket, sys

path, out = sys.argv[1], sys.argv[2]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(1)
open(out + ".ready", "w").close()
conn, _ = srv.accept()
fds = array.array("i")
buf = b""
msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4 * fds.itemsize))
for level, kind, data in anc:
    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
        fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
buf = msg
conn.settimeout(0.5)
try:
    while True:
        more = conn.recv(65536)
        if not more:
            break
        buf += more
except (socket.timeout, OSError):
    pass
link = os.readlink(f"/proc/self/fd/{fds[0]}")
with open(out + ".tmp", "w") as f:
    json.dump({"state": json.loads(buf.decode()), "fd_link": link}, f)
os.rename(out + ".tmp", out)
os.close(fds[0])
