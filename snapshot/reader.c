/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The snapshot reader: open and validate, entry access, and the engine that
 * reads, verifies and decompresses chunks in parallel (see reader-internal.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "cleanup.h"
#include "fd-util.h"
#include "reader-internal.h"
#include "time-util.h"

/* ---- worker side ---- */

static int pwrite_all(int fd, const uint8_t *p, size_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t) off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		off += (uint64_t) n;
		len -= (size_t) n;
	}
	return 0;
}

void rd_target_unref(struct rd_target *t)
{
	if (!t || atomic_fetch_sub(&t->refs, 1) != 1 || !t->finalize)
		return;
	/* The last chunk of an unpacked file is in: set what writing would
	 * have disturbed (set-id bits, mtime) and close it. */
	int r = 0;
	if (fchmod(t->fd, t->mode) < 0)
		r = -errno;
	if (r == 0 && t->mtime_ns) {
		struct timespec ts[2] = {
			{.tv_nsec = UTIME_OMIT},
			{.tv_sec = (time_t) (t->mtime_ns / 1000000000u),
			 .tv_nsec = (long) (t->mtime_ns % 1000000000u)},
		};
		if (futimens(t->fd, ts) < 0)
			r = -errno;
	}
	if (close(t->fd) < 0 && r == 0 && errno != EINTR)
		r = -errno;
	if (r < 0) {
		int expected = 0;
		atomic_compare_exchange_strong(&t->r->deferred_err, &expected, r);
	}
	free(t);
}

static int deliver(struct snap_reader *r, struct rd_slot *s, const uint8_t *data, bool hole)
{
	struct rd_task *t = &s->t;

	switch (t->sink) {
	case RD_SINK_NONE:
		return 0;
	case RD_SINK_BUF:
		if (hole)
			memset(t->dst, 0, t->take);
		else if (data + t->skip != t->dst)
			memcpy(t->dst, data + t->skip, t->take);
		return 0;
	case RD_SINK_PWRITE: {
		uint64_t at = t->target->base + t->chunk_pos + t->skip;
		if (!hole)
			return pwrite_all(t->target->fd, data + t->skip, t->take, at);
		if (at >= t->target->zero_end)
			return 0; /* beyond the old end: ftruncate left a hole */
		if (fallocate(t->target->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t) at,
			      t->take) == 0)
			return 0;
		return pwrite_all(t->target->fd, r->zeros, t->take, at);
	}
	case RD_SINK_STREAM:
		s->data = hole ? r->zeros : data;
		return 0;
	}
	return -EINVAL;
}

static void dctx_free(void *ctx)
{
	ZSTD_freeDCtx(ctx);
}

static int decode_chunk(struct snap_reader *r, struct rd_slot *s, void **ctx)
{
	const struct snap_disk_chunk *c = &r->idx->chunks[s->t.chunk];
	uint32_t stored = le32(c->stored_length), raw = le32(c->raw_length);
	const uint8_t *payload, *data;
	int ret;

	if (c->type == SNAP_CHUNK_HOLE)
		return deliver(r, s, NULL, true);
	if (s->need_read || s->io_res < (int) (s->in_skip + stored)) {
		/* pread path, or io_uring gave an error or a short read: (re)read here */
		ret = rd_pread_slot(r, s);
		if (ret < 0) {
			s->why = "cannot read it";
			return ret;
		}
	} else {
		s->bytes_read += (uint64_t) s->io_res;
	}
	uint64_t t0 = cs_monotonic_ns();
	payload = s->in + s->in_skip;
	if (!snap_checksum_matches(payload, stored, le64(c->checksum))) {
		s->why = "checksum mismatch";
		return -EBADMSG;
	}
	if (c->type == SNAP_CHUNK_RAW) {
		data = payload;
	} else {
		ZSTD_DCtx *d = *ctx;
		if (!d)
			*ctx = d = ZSTD_createDCtx();
		if (!d)
			return -ENOMEM;
		/* Whole chunks for a buffer decompress straight into it. */
		uint8_t *dst = s->t.sink == RD_SINK_BUF && s->t.skip == 0 && s->t.take == raw
				       ? s->t.dst
				       : s->out;
		size_t n = ZSTD_decompressDCtx(d, dst, raw, payload, stored);
		if (ZSTD_isError(n) || n != raw) {
			s->why = "does not decompress to its recorded size";
			return -EBADMSG;
		}
		data = dst;
	}
	s->cpu_ns += cs_monotonic_ns() - t0;
	ret = deliver(r, s, data, false);
	if (ret < 0)
		s->why = "cannot write it out";
	return ret;
}

static void slot_job(struct snap_job *job, void **ctx)
{
	struct rd_slot *s = (struct rd_slot *) job;

	s->res = decode_chunk(s->r, s, ctx);
	if (s->t.sink == RD_SINK_PWRITE)
		rd_target_unref(s->t.target);
}

/* ---- main-thread side ---- */

static int ensure_slots(struct snap_reader *r)
{
	size_t cs = r->max_chunk, in_cap = cs + 2 * RD_ALIGN;

	if (r->slots)
		return 0;
	r->zeros = calloc(1, cs);
	r->slots = calloc(r->nslots, sizeof(*r->slots));
	if (!r->zeros || !r->slots)
		return -ENOMEM;
	_cleanup_free_ struct iovec *iov = calloc(r->nslots, sizeof(*iov));
	if (!iov)
		return -ENOMEM;
	for (unsigned i = 0; i < r->nslots; i++) {
		struct rd_slot *s = &r->slots[i];
		s->r = r;
		s->id = i;
		s->job.fn = slot_job;
		if (posix_memalign((void **) &s->in, RD_ALIGN, in_cap) != 0)
			return -ENOMEM;
		s->out = malloc(cs);
		if (!s->out)
			return -ENOMEM;
		iov[i] = (struct iovec){s->in, in_cap};
	}
	if (r->ring)
		rd_uring_register(r->ring, iov, r->nslots);
	return 0;
}

/* O_DIRECT pays off for data that must come from the disk anyway (no copy
 * through the page cache, deep queues); data already cached is read through
 * the cache instead, at memory speed. Residency of a chunk's first page is
 * asked with mincore() on a mapping of the file made once at open (address
 * space only: nothing is ever read through it). */
static void map_for_residency(struct snap_reader *r)
{
	uint64_t len = r->idx->data_end;

	if (r->direct_fd < 0 || len > SIZE_MAX)
		return;
	void *map = mmap(NULL, (size_t) len, PROT_READ, MAP_SHARED, r->fd, 0);
	if (map == MAP_FAILED)
		return;
	r->map = map;
	r->map_len = (size_t) len;
}

static bool chunk_cached(const struct snap_reader *r, uint64_t off)
{
	uint64_t page = (uint64_t) sysconf(_SC_PAGESIZE);
	unsigned char v = 0;

	if (!r->map || off >= r->map_len)
		return false;
	return mincore((uint8_t *) r->map + (off & ~(page - 1)), 1, &v) == 0 && (v & 1);
}

static void set_geometry(struct snap_reader *r, struct rd_slot *s)
{
	const struct snap_disk_chunk *c = &r->idx->chunks[s->t.chunk];
	uint64_t off = le64(c->offset), end = off + le32(c->stored_length);

	s->direct = r->direct_fd >= 0 && !chunk_cached(r, off);
	if (s->direct) {
		s->rd_off = off & ~(uint64_t) (RD_ALIGN - 1);
		s->rd_len = (uint32_t) (((end + RD_ALIGN - 1) & ~(uint64_t) (RD_ALIGN - 1)) -
					s->rd_off);
		s->in_skip = (uint32_t) (off - s->rd_off);
	} else {
		s->rd_off = off;
		s->rd_len = le32(c->stored_length);
		s->in_skip = 0;
	}
}

struct run_state {
	struct snap_reader *r;
	unsigned *free_ids;
	unsigned nfree;
	unsigned inflight_io, inflight_jobs;
	unsigned *queued; /* slots whose reads are queued but not yet submitted */
	unsigned nqueued;
	int err;
	struct rd_slot failed; /* copy of the first failed slot, for the message */
};

static void io_done(struct rd_slot *s, int res, void *arg)
{
	struct run_state *st = arg;

	s->io_res = res;
	s->read_ns += cs_monotonic_ns() - s->io_start_ns;
	st->inflight_io--;
	st->inflight_jobs++;
	snap_pool_submit(st->r->pool, &s->job);
}

static void release(struct run_state *st, struct rd_slot *s)
{
	st->free_ids[st->nfree++] = s->id;
}

static void account(struct run_state *st, struct rd_slot *s)
{
	struct snap_reader *r = st->r;

	r->stats.bytes_read += s->bytes_read;
	r->stats.read_ns += s->read_ns;
	r->stats.decompress_ns += s->cpu_ns;
	if (s->res < 0) {
		if (!st->err) {
			st->err = s->res;
			st->failed = *s;
		}
		return;
	}
	r->stats.bytes_decompressed += s->t.take;
	r->stats.chunks++;
	r->progress_done += s->t.take;
	if (r->progress)
		r->progress(r->progress_data, r->progress_done, r->progress_total);
}

static int start_task(struct run_state *st, const struct rd_task *t, uint64_t seq)
{
	struct snap_reader *r = st->r;
	struct rd_slot *s = &r->slots[st->free_ids[--st->nfree]];
	int ret;

	s->t = *t;
	s->seq = seq;
	s->res = 0;
	s->why = NULL;
	s->ready = false;
	s->data = NULL;
	s->read_ns = s->cpu_ns = s->bytes_read = 0;
	s->io_res = 0;
	set_geometry(r, s);
	/* Holes need no read. Chunks already in the page cache are copied out
	 * by the worker itself with pread: through io_uring that copy would
	 * run inline in the submitting (main) thread, one chunk at a time. */
	if (r->idx->chunks[t->chunk].type == SNAP_CHUNK_HOLE || !r->ring || r->ring_failed ||
	    !s->direct) {
		s->need_read = r->idx->chunks[t->chunk].type != SNAP_CHUNK_HOLE;
		st->inflight_jobs++;
		snap_pool_submit(r->pool, &s->job);
		return 0;
	}
	s->need_read = false;
	ret = rd_uring_queue_read(r->ring, s->direct ? r->direct_fd : r->fd, s);
	if (ret < 0) {
		release(st, s);
		return ret;
	}
	st->queued[st->nqueued++] = s->id;
	st->inflight_io++;
	return 0;
}

/* io_uring_submit() failed for good (not a transient error): the reads it
 * did not take go to the workers as preads, and the ring only drains the
 * reads already in the kernel from now on. */
static void submit_or_fall_back(struct run_state *st)
{
	struct snap_reader *r = st->r;

	if (rd_uring_submit(r->ring) < 0) {
		r->ring_failed = true;
		for (unsigned i = 0; i < st->nqueued; i++) {
			struct rd_slot *s = &r->slots[st->queued[i]];
			s->need_read = true;
			st->inflight_io--;
			st->inflight_jobs++;
			snap_pool_submit(r->pool, &s->job);
		}
	}
	st->nqueued = 0;
}

static int wait_events(struct snap_reader *r)
{
	uint64_t v;

	for (;;) {
		if (read(r->efd, &v, sizeof(v)) == sizeof(v))
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

static struct rd_slot *find_ready(struct snap_reader *r, uint64_t seq)
{
	for (unsigned i = 0; i < r->nslots; i++)
		if (r->slots[i].ready && r->slots[i].seq == seq)
			return &r->slots[i];
	return NULL;
}

/* Write the stream sink's finished chunks in task order. */
static void flush_stream(struct run_state *st, uint64_t *seq_write)
{
	struct rd_slot *s;

	while ((s = find_ready(st->r, *seq_write))) {
		s->ready = false;
		if (!st->err) {
			int ret = cs_write_all(s->t.target->fd, s->data + s->t.skip, s->t.take);
			if (ret < 0) {
				st->err = ret;
				s->why = "cannot write it out";
				st->failed = *s;
			}
		}
		release(st, s);
		(*seq_write)++;
	}
}

int rd_run(struct snap_reader *r, rd_next_fn next, void *gen)
{
	_cleanup_free_ unsigned *free_ids = calloc(r->nslots, sizeof(unsigned));
	_cleanup_free_ unsigned *queued = calloc(r->nslots, sizeof(unsigned));
	struct run_state st = {.r = r, .free_ids = free_ids, .queued = queued};
	uint64_t seq_submit = 0, seq_write = 0, t0 = cs_monotonic_ns();
	bool gen_done = false;
	int ret;

	if (!free_ids || !queued)
		return -ENOMEM;
	ret = ensure_slots(r);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < r->nslots; i++) {
		r->slots[i].ready = false;
		free_ids[st.nfree++] = r->nslots - 1 - i;
	}
	(void) snap_pool_take_done(r->pool);

	for (;;) {
		while (!st.err && !gen_done && st.nfree > 0) {
			struct rd_task t;
			ret = next(gen, &t);
			if (ret <= 0) {
				gen_done = true;
				if (ret < 0)
					st.err = ret;
				break;
			}
			ret = start_task(&st, &t, seq_submit++);
			if (ret < 0) {
				st.err = ret;
				if (t.sink == RD_SINK_PWRITE)
					rd_target_unref(t.target);
			}
		}
		if (r->ring && st.nqueued > 0)
			submit_or_fall_back(&st);
		if (st.inflight_io + st.inflight_jobs == 0)
			break;
		ret = wait_events(r);
		if (ret < 0)
			return ret; /* cannot happen on a valid eventfd */
		if (r->ring)
			rd_uring_reap(r->ring, io_done, &st);
		for (struct snap_job *j = snap_pool_take_done(r->pool), *n; j; j = n) {
			struct rd_slot *s = (struct rd_slot *) j;
			n = j->next;
			st.inflight_jobs--;
			account(&st, s);
			if (s->t.sink == RD_SINK_STREAM && s->res >= 0 && !st.err)
				s->ready = true;
			else
				release(&st, s);
		}
		flush_stream(&st, &seq_write);
	}
	r->stats.total_ns += cs_monotonic_ns() - t0;
	if (st.err && st.failed.why) {
		const struct snap_disk_entry *e = &r->idx->entries[st.failed.t.entry];
		return snap_error(
			st.err, "entry \"%s\", chunk %llu (bytes %llu..%llu): %s",
			r->idx->names[st.failed.t.entry],
			(unsigned long long) (st.failed.t.chunk - le64(e->first_chunk)),
			(unsigned long long) st.failed.t.chunk_pos,
			(unsigned long long) (st.failed.t.chunk_pos +
					      le32(r->idx->chunks[st.failed.t.chunk].raw_length)),
			st.failed.why);
	}
	return st.err;
}

int rd_fill_task(const struct snap_reader *r, uint64_t entry, uint64_t chunk_in_entry,
		 uint64_t from, uint64_t to, struct rd_task *t)
{
	const struct snap_disk_entry *e = &r->idx->entries[entry];
	uint64_t cs = r->idx->chunk_size, pos = chunk_in_entry * cs;
	uint64_t end = pos + le32(r->idx->chunks[le64(e->first_chunk) + chunk_in_entry].raw_length);

	*t = (struct rd_task){
		.chunk = le64(e->first_chunk) + chunk_in_entry,
		.entry = entry,
		.chunk_pos = pos,
		.skip = (uint32_t) (from > pos ? from - pos : 0),
	};
	t->take = (uint32_t) ((to < end ? to : end) - pos - t->skip);
	return 0;
}

/* ---- open ---- */

static int load_index(struct snap_reader *r)
{
	/* the structs, not byte arrays: the index code reads their fields */
	struct snap_disk_header header;
	struct snap_disk_footer footer;
	uint64_t ioff, ilen;
	struct stat st;
	ssize_t n;
	int ret;

	if (fstat(r->fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return snap_error(-EBADMSG, "not a regular file");
	if ((uint64_t) st.st_size < SNAP_HEADER_SIZE + SNAP_FOOTER_SIZE)
		return snap_error(-EBADMSG, "file is too small to be a snapshot (%lld bytes)",
				  (long long) st.st_size);
	n = cs_pread_all(r->fd, &header, sizeof(header), 0);
	if (n >= 0 && n == sizeof(header))
		n = cs_pread_all(r->fd, &footer, sizeof(footer),
				 st.st_size - (off_t) sizeof(footer));
	if (n < 0)
		return n;
	if (n != sizeof(footer))
		return snap_error(-EBADMSG, "file shrank while being read");
	ret = snap_index_check_ends(&header, &footer, (uint64_t) st.st_size, &ioff, &ilen);
	if (ret < 0)
		return ret;
	void *blob = malloc(ilen);
	if (!blob)
		return -ENOMEM;
	n = cs_pread_all(r->fd, blob, ilen, (off_t) ioff);
	if (n < 0 || (uint64_t) n != ilen) {
		free(blob);
		return n < 0 ? n : snap_error(-EBADMSG, "file shrank while being read");
	}
	r->stats.bytes_read += sizeof(header) + sizeof(footer) + ilen;
	return snap_index_parse(&header, &footer, (uint64_t) st.st_size, blob, &r->idx);
}

/* A second, O_DIRECT descriptor of the same file (reopened through /proc so
 * that a caller's fd works too), or -1 where the filesystem refuses O_DIRECT
 * or the path now names another file. */
static int open_direct(int fd)
{
	char path[64];
	struct stat a, b;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int d = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (d < 0)
		return -1;
	if (fstat(fd, &a) < 0 || fstat(d, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		close(d);
		return -1;
	}
	return d;
}

/* Enough reads in flight to keep a disk queue full while every worker
 * decompresses (4 per thread, plus 8), capped at 64 slots and at about
 * 256 MiB of buffers. Buffers are sized by the largest chunk the file really
 * has, not by its declared chunk size, so a small file costs little. */
static unsigned slot_count(struct snap_reader *r)
{
	uint64_t biggest = 1;
	unsigned n = 4 * r->threads + 8;

	for (uint64_t i = 0; i < r->idx->chunk_count; i++)
		if (le32(r->idx->chunks[i].raw_length) > biggest)
			biggest = le32(r->idx->chunks[i].raw_length);
	r->max_chunk = (size_t) biggest;
	uint64_t per_slot = 2 * biggest + 2 * RD_ALIGN;
	if (n > 64)
		n = 64;
	if (n * per_slot > (UINT64_C(256) << 20))
		n = (unsigned) ((UINT64_C(256) << 20) / per_slot);
	return n < 4 ? 4 : n;
}

static int reader_init(struct snap_reader *r, const struct snap_reader_options *o)
{
	int ret;

	r->flags = o->flags;
	r->threads = o->threads ? o->threads : snap_default_threads();
	if (r->threads > 256)
		return snap_error(-EINVAL, "too many threads (%u)", r->threads);
	ret = load_index(r);
	if (ret < 0)
		return ret;
	r->nslots = slot_count(r);
	if (!(o->flags & SNAP_READER_NO_DIRECT))
		r->direct_fd = open_direct(r->fd);
	map_for_residency(r);
	r->efd = eventfd(0, EFD_CLOEXEC);
	if (r->efd < 0)
		return -errno;
	if (!(o->flags & SNAP_READER_FORCE_PREAD))
		(void) rd_uring_new(r->nslots, r->efd, &r->ring); /* refused: pread path */
	return snap_pool_new(r->threads, dctx_free, r->efd, &r->pool);
}

static struct snap_reader *reader_new(void)
{
	struct snap_reader *r = calloc(1, sizeof(*r));
	if (r)
		r->fd = r->direct_fd = r->efd = -1;
	return r;
}

int snap_reader_open(const char *path, const struct snap_reader_options *opts,
		     struct snap_reader **ret_reader)
{
	_cleanup_(snap_reader_freep) struct snap_reader *r = reader_new();
	int ret;

	snap_error_clear();
	if (!r)
		return -ENOMEM;
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0)
		return snap_error(-errno, "cannot open it");
	r->own_fd = true;
	ret = reader_init(r, opts ? opts : &(struct snap_reader_options){});
	if (ret < 0)
		return ret;
	*ret_reader = TAKE_PTR(r);
	return 0;
}

int snap_reader_open_fd(int fd, const struct snap_reader_options *opts,
			struct snap_reader **ret_reader)
{
	_cleanup_(snap_reader_freep) struct snap_reader *r = reader_new();
	int ret;

	snap_error_clear();
	if (!r)
		return -ENOMEM;
	if (fd < 0)
		return -EBADF;
	r->fd = fd;
	ret = reader_init(r, opts ? opts : &(struct snap_reader_options){});
	if (ret < 0)
		return ret;
	*ret_reader = TAKE_PTR(r);
	return 0;
}

struct snap_reader *snap_reader_free(struct snap_reader *r)
{
	if (!r)
		return NULL;
	r->pool = snap_pool_free(r->pool);
	r->ring = rd_uring_free(r->ring);
	for (unsigned i = 0; r->slots && i < r->nslots; i++) {
		free(r->slots[i].in);
		free(r->slots[i].out);
	}
	free(r->slots);
	free(r->zeros);
	if (r->map)
		munmap(r->map, r->map_len);
	if (r->efd >= 0)
		close(r->efd);
	if (r->direct_fd >= 0)
		close(r->direct_fd);
	if (r->own_fd && r->fd >= 0)
		close(r->fd);
	snap_index_free(r->idx);
	free(r);
	return NULL;
}

/* ---- entry access ---- */

const char *snap_reader_backend(const struct snap_reader *r)
{
	return r->ring ? "io_uring" : "pread";
}

uint32_t snap_reader_chunk_size(const struct snap_reader *r)
{
	return r->idx->chunk_size;
}

size_t snap_reader_entry_count(const struct snap_reader *r)
{
	return (size_t) r->idx->entry_count;
}

int snap_reader_entry(const struct snap_reader *r, size_t index, struct snap_entry_info *ret_info)
{
	if (index >= r->idx->entry_count)
		return -ERANGE;
	const struct snap_disk_entry *e = &r->idx->entries[index];
	uint64_t stored = 0, first = le64(e->first_chunk), n = le32(e->chunk_count);
	for (uint64_t c = first; c < first + n; c++)
		stored += le32(r->idx->chunks[c].stored_length);
	*ret_info = (struct snap_entry_info){
		.name = r->idx->names[index],
		.kind = (enum snap_kind) le16(e->kind),
		.mode = le32(e->mode),
		.size = le64(e->size),
		.stored_size = stored,
		.chunks = n,
		.mtime_ns = le64(e->mtime_ns),
	};
	return 0;
}

static int cmp_find(const void *key, const void *elem, void *names)
{
	return strcmp(key, ((char **) names)[*(const uint64_t *) elem]);
}

int snap_reader_find(const struct snap_reader *r, const char *name, size_t *ret_index)
{
	/* bsearch has no context argument: a small binary search instead */
	uint64_t lo = 0, hi = r->idx->entry_count;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		int c = cmp_find(name, &r->idx->by_name[mid], r->idx->names);
		if (c == 0) {
			*ret_index = (size_t) r->idx->by_name[mid];
			return 0;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -ENOENT;
}

void snap_reader_set_progress(struct snap_reader *r, snap_progress_fn fn, void *userdata)
{
	r->progress = fn;
	r->progress_data = userdata;
}

void snap_reader_get_stats(const struct snap_reader *r, struct snap_stats *ret_stats)
{
	*ret_stats = r->stats;
}

/* ---- range reads, extraction, verification ---- */

struct range_gen {
	struct snap_reader *r;
	uint64_t entry, from, to, next_chunk, last_chunk;
	enum rd_sink sink;
	uint8_t *buf;
	struct rd_target *target;
};

static int range_next(void *gen, struct rd_task *t)
{
	struct range_gen *g = gen;

	if (g->next_chunk > g->last_chunk || g->from >= g->to)
		return 0;
	rd_fill_task(g->r, g->entry, g->next_chunk++, g->from, g->to, t);
	t->sink = g->sink;
	t->target = g->target;
	if (g->sink == RD_SINK_BUF)
		t->dst = g->buf + (t->chunk_pos + t->skip - g->from);
	if (g->sink == RD_SINK_PWRITE)
		atomic_fetch_add(&g->target->refs, 1);
	return 1;
}

static void range_init(struct range_gen *g, struct snap_reader *r, uint64_t entry, uint64_t from,
		       uint64_t to)
{
	uint64_t cs = r->idx->chunk_size;
	*g = (struct range_gen){.r = r, .entry = entry, .from = from, .to = to};
	g->next_chunk = from / cs;
	g->last_chunk = to > 0 ? (to - 1) / cs : 0;
}

static int check_data_entry(struct snap_reader *r, size_t index)
{
	if (index >= r->idx->entry_count)
		return snap_error(-ERANGE, "no entry %zu", index);
	if (le16(r->idx->entries[index].kind) == SNAP_KIND_DIR)
		return snap_error(-EISDIR, "entry \"%s\" is a directory", r->idx->names[index]);
	return 0;
}

ssize_t snap_reader_pread(struct snap_reader *r, size_t index, void *buf, size_t len,
			  uint64_t offset)
{
	struct range_gen g;
	int ret;

	snap_error_clear();
	ret = check_data_entry(r, index);
	if (ret < 0)
		return ret;
	uint64_t size = le64(r->idx->entries[index].size);
	if (offset >= size || len == 0)
		return 0;
	if (len > size - offset)
		len = (size_t) (size - offset);
	range_init(&g, r, index, offset, offset + len);
	g.sink = RD_SINK_BUF;
	g.buf = buf;
	r->progress_done = 0;
	r->progress_total = len;
	ret = rd_run(r, range_next, &g);
	return ret < 0 ? ret : (ssize_t) len;
}

int snap_reader_extract_fd(struct snap_reader *r, size_t index, int fd)
{
	struct rd_target target = {.fd = fd, .r = r};
	struct range_gen g;
	struct stat st;
	int ret;

	snap_error_clear();
	ret = check_data_entry(r, index);
	if (ret < 0)
		return ret;
	if (fstat(fd, &st) < 0)
		return -errno;
	uint64_t size = le64(r->idx->entries[index].size);
	range_init(&g, r, index, 0, size);
	g.target = &target;
	atomic_init(&target.refs, 1);
	if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
		off_t base = lseek(fd, 0, SEEK_CUR);
		if (base < 0)
			return -errno;
		target.base = (uint64_t) base;
		target.zero_end = (uint64_t) st.st_size;
		if (S_ISREG(st.st_mode) && (uint64_t) st.st_size < target.base + size &&
		    ftruncate(fd, (off_t) (target.base + size)) < 0)
			return -errno;
		g.sink = RD_SINK_PWRITE;
	} else {
		g.sink = RD_SINK_STREAM;
	}
	r->progress_done = 0;
	r->progress_total = size;
	if (size == 0)
		return 0;
	return rd_run(r, range_next, &g);
}

struct verify_gen {
	struct snap_reader *r;
	uint64_t chunk, entry;
};

static int verify_next(void *gen, struct rd_task *t)
{
	struct verify_gen *g = gen;
	const struct snap_index *idx = g->r->idx;

	if (g->chunk >= idx->chunk_count)
		return 0;
	while (g->chunk >=
	       le64(idx->entries[g->entry].first_chunk) + le32(idx->entries[g->entry].chunk_count))
		g->entry++;
	uint64_t in_entry = g->chunk - le64(idx->entries[g->entry].first_chunk);
	rd_fill_task(g->r, g->entry, in_entry, 0, UINT64_MAX, t);
	t->sink = RD_SINK_NONE;
	g->chunk++;
	return 1;
}

int snap_reader_verify(struct snap_reader *r)
{
	struct verify_gen g = {.r = r};

	snap_error_clear();
	r->progress_done = 0;
	r->progress_total = 0;
	for (uint64_t i = 0; i < r->idx->entry_count; i++)
		r->progress_total += le64(r->idx->entries[i].size);
	return rd_run(r, verify_next, &g);
}
