/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The io_uring read path: the main thread queues one read per slot (a fixed
 * read into the slot's registered buffer where registration worked) and
 * reaps completions; the ring's registered eventfd wakes it when reads
 * finish, the same eventfd the workers signal, so one blocking read(2)
 * waits for both.
 */
#include <errno.h>
#include <stdlib.h>

#include <liburing.h>

#include "reader-internal.h"
#include "time-util.h"

struct rd_uring {
	struct io_uring ring;
	bool fixed;
	unsigned queued;
};

int rd_uring_new(unsigned depth, int efd, struct rd_uring **ret)
{
	struct rd_uring *u = calloc(1, sizeof(*u));
	int r;

	if (!u)
		return -ENOMEM;
	r = io_uring_queue_init(depth, &u->ring, 0);
	if (r < 0) {
		free(u);
		return r; /* -ENOSYS, -EPERM (seccomp, sysctl), -ENOMEM */
	}
	r = io_uring_register_eventfd(&u->ring, efd);
	if (r < 0) {
		io_uring_queue_exit(&u->ring);
		free(u);
		return r;
	}
	*ret = u;
	return 0;
}

struct rd_uring *rd_uring_free(struct rd_uring *u)
{
	if (u) {
		io_uring_queue_exit(&u->ring);
		free(u);
	}
	return NULL;
}

void rd_uring_register(struct rd_uring *u, const struct iovec *iov, unsigned n)
{
	u->fixed = io_uring_register_buffers(&u->ring, iov, n) == 0;
}

int rd_uring_queue_read(struct rd_uring *u, int fd, struct rd_slot *s)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	/* The ring has one entry per slot, so a free one always exists. */
	if (!sqe)
		return -EBUSY;
	if (u->fixed)
		io_uring_prep_read_fixed(sqe, fd, s->in, s->rd_len, s->rd_off, (int) s->id);
	else
		io_uring_prep_read(sqe, fd, s->in, s->rd_len, s->rd_off);
	io_uring_sqe_set_data(sqe, s);
	s->io_start_ns = cs_monotonic_ns();
	u->queued++;
	return 0;
}

int rd_uring_submit(struct rd_uring *u)
{
	int r;

	if (u->queued == 0)
		return 0;
	/* Queued reads must reach the kernel: the caller waits for their
	 * completions. In-flight reads never exceed the ring's size, so the
	 * completion queue cannot overflow and -EBUSY cannot last. */
	do
		r = io_uring_submit(&u->ring);
	while (r == -EINTR || r == -EAGAIN || r == -EBUSY);
	if (r < 0)
		return r;
	u->queued = 0;
	return 0;
}

int rd_uring_reap(struct rd_uring *u, void (*done)(struct rd_slot *s, int res, void *arg),
		  void *arg)
{
	struct io_uring_cqe *cqe;
	int n = 0;

	while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
		struct rd_slot *s = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&u->ring, cqe);
		done(s, res, arg);
		n++;
	}
	return n;
}
