/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pread path: used when io_uring is refused (seccomp, the
 * kernel.io_uring_disabled sysctl, an old kernel) or not wanted. Each worker
 * reads its own chunk, so reads still run in parallel, one per worker.
 */
#include <errno.h>

#include "fd-util.h"
#include "reader-internal.h"
#include "time-util.h"

int rd_pread_slot(struct snap_reader *r, struct rd_slot *s)
{
	const struct snap_disk_chunk *c = &r->idx->chunks[s->t.chunk];
	uint64_t off = le64(c->offset);
	uint32_t stored = le32(c->stored_length);
	uint64_t t0 = cs_monotonic_ns();
	ssize_t n = -EINVAL;

	if (s->direct)
		n = cs_pread_all(r->direct_fd, s->in, s->rd_len, (off_t) s->rd_off);
	if (n < (ssize_t) (s->in_skip + stored)) {
		/* No O_DIRECT, or the filesystem refused it for this read (or a
		 * short read): read exactly the stored bytes through the cache. */
		s->in_skip = 0;
		s->rd_off = off;
		s->rd_len = stored;
		n = cs_pread_all(r->fd, s->in, stored, (off_t) off);
	}
	s->read_ns += cs_monotonic_ns() - t0;
	if (n < 0)
		return n;
	s->bytes_read += (uint64_t) n;
	if ((uint64_t) n < s->in_skip + (uint64_t) stored)
		return -EIO;
	return 0;
}
