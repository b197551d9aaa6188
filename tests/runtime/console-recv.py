#!/usr/bin/python3
"""Console socket receiver (runc's protocol, as containerd's shim does it):
   console-recv.py SOCKET OUT
Listens on SOCKET, accepts one connection, receives the pty master (SCM_RIGHTS;
the payload is the pty's name), writes "name\n" to OUT.name, then copies
everything the master outputs to OUT until the pty closes."""
import array, os, socket, sys

path, out = sys.argv[1], sys.argv[2]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(1)
open(out + ".ready", "w").close()
conn, _ = srv.accept()
fds = array.array("i")
msg, anc, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
for level, kind, data in anc:
    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
        fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
master = fds[0]
with open(out + ".name", "w") as f:
    f.write(msg.decode() + "\n")
with open(out, "wb") as f:
    while True:
        try:
            b = os.read(master, 4096)
        except OSError:
            break
        if not b:
            break
        f.write(b)
        f.flush()
