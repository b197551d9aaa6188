/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The parent ↔ child protocol across clone(): fixed-size records over a
 * SOCK_SEQPACKET|SOCK_CLOEXEC socketpair (one record per message, so no
 * framing and no partial reads). The child's end is closed by execve(): EOF
 * after READY means the process image was replaced.
 *
 * Thread-safety: one sender per socket end.
 */
#ifndef STOKE_SHIM_SYNC_H
#define STOKE_SHIM_SYNC_H

#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <errno.h>

#include "fd-util.h"

enum shim_sync_type {
	SHIM_SYNC_GO = 1,     /* parent → child: maps written, cgroup joined; value = host pid */
	SHIM_SYNC_MAPS_REQ,   /* child → parent: write uid/gid maps of pid `value` */
	SHIM_SYNC_MAPS_DONE,  /* parent → child */
	SHIM_SYNC_PID,	      /* child → parent: the container's init is pid `value` (host) */
	SHIM_SYNC_HOOKS_REQ,  /* child → parent: run prestart + createRuntime hooks now */
	SHIM_SYNC_HOOKS_DONE, /* parent → child */
	SHIM_SYNC_LISTENER,   /* child → parent: seccomp notify fd attached (SCM_RIGHTS) */
	SHIM_SYNC_LISTENER_DONE, /* parent → child */
	SHIM_SYNC_READY, /* child → parent: set up, waiting for start (or about to exec) */
	SHIM_SYNC_ERROR, /* either way: `err` (positive errno) and `msg` */
};

struct shim_sync_msg {
	uint32_t type;
	int32_t err;   /* positive errno for SHIM_SYNC_ERROR */
	int64_t value; /* a pid, for GO / MAPS_REQ / PID */
	char msg[496]; /* NUL-terminated, truncated if needed */
};

_Static_assert(sizeof(struct shim_sync_msg) == 512, "sync record size");

static inline int shim_sync_send(int fd, uint32_t type, int64_t value)
{
	struct shim_sync_msg m = {.type = type, .value = value};
	for (;;) {
		if (send(fd, &m, sizeof(m), MSG_NOSIGNAL) == (ssize_t) sizeof(m))
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

static inline int shim_sync_send_error(int fd, int error, const char *msg)
{
	struct shim_sync_msg m = {.type = SHIM_SYNC_ERROR, .err = error < 0 ? -error : error};
	strncpy(m.msg, msg ? msg : "", sizeof(m.msg) - 1);
	return send(fd, &m, sizeof(m), MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* Receive one record (and an fd, if one came with it: *ret_fd, else -1).
 * @return : 0, -EPIPE on EOF, -EBADMSG on a short record, or -errno. */
static inline int shim_sync_recv(int fd, struct shim_sync_msg *m, int *ret_fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf)};
	ssize_t n;
	do
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -EPIPE;
	if (n != (ssize_t) sizeof(*m))
		return -EBADMSG;
	m->msg[sizeof(m->msg) - 1] = '\0';
	if (ret_fd) {
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		*ret_fd = -1;
		if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(ret_fd, CMSG_DATA(c), sizeof(int));
	}
	return 0;
}

#endif
