/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The read engine (see engine.h).
 *
 * Reads are planned as fixed-size chunks over the 4 KiB-aligned superset of
 * each file's tensor data, independent of tensor boundaries: large aligned
 * requests are what both O_DIRECT and the page cache want, and tensors are
 * sliced out of the chunks afterwards.
 *
 * Host destinations: each file's data lands in one anonymous mapping that
 * mirrors the file's aligned range, read into directly (no staging copy);
 * a tensor is a pointer into it.
 * GPU destinations: each worker owns a ring of staging slots (anonymous
 * memory, page-locked with cuMemHostRegister and registered with io_uring);
 * a completed read queues async copies of the tensor pieces it holds on the
 * worker's stream for that device and records an event; the slot is reused
 * only after that event completed.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cleanup.h"
#include "dio.h"
#include "engine.h"
#include "fd-util.h"
#include "gpu.h"
#include "json-util.h"
#include "mem-util.h"
#include "time-util.h"

enum { SLOT_FREE = 0, SLOT_READING, SLOT_COPYING };

struct chunk {
	uint64_t off;
	uint32_t len;
	uint32_t file;
	bool direct;
};

struct plan {
	struct ldr_model *m;
	bool staged; /* GPU mode: reads go through staging slots */
	uint32_t devmask;
	size_t req;
	unsigned qd;
	int *fds; /* per file: [2f] buffered, [2f+1] O_DIRECT or -1 */
	uint64_t *range_start;
	struct ldr_tensor **sorted; /* by (file, offset) */
	size_t *file_first;	    /* n_files + 1 entries into sorted */
	struct chunk *chunks;
	size_t n_chunks;
	atomic_size_t next;
	atomic_bool failed;
	pthread_mutex_t lock;
	int error;
	char *err;
	size_t errlen;
	bool force_refuse_uring;
	unsigned no_uring;
	bool map;  /* LDR_LOAD_MAP on a host-only load */
	bool huge; /* host regions in 2 MiB pages (host_regions_huge()) */
};

struct worker {
	struct plan *p;
	pthread_t thread;
	uint64_t bytes_direct, bytes_buffered;
	int uring_error;
	bool used_uring, fixed_buffers;
	/* GPU mode */
	uint8_t *slot_mem;
	unsigned n_slots;
	uint8_t *slot_state;
	uint64_t *slot_seq;
	uint64_t seq;
	struct ldr_gpu_worker *gw;
};

static int plan_fail(struct plan *p, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int plan_fail(struct plan *p, int r, const char *fmt, ...)
{
	pthread_mutex_lock(&p->lock);
	if (!p->error) {
		p->error = r;
		if (p->err && p->errlen) {
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(p->err, p->errlen, fmt, ap);
			va_end(ap);
		}
	}
	pthread_mutex_unlock(&p->lock);
	atomic_store(&p->failed, true);
	return r;
}

static struct chunk *take_chunk(struct plan *p, size_t *ret_idx)
{
	if (atomic_load(&p->failed))
		return NULL;
	size_t i = atomic_fetch_add(&p->next, 1);
	if (i >= p->n_chunks)
		return NULL;
	*ret_idx = i;
	return &p->chunks[i];
}

static uint8_t *host_dst(struct plan *p, const struct chunk *c)
{
	return (uint8_t *) p->m->regions[c->file].base + (c->off - p->range_start[c->file]);
}

/* Bytes of `c` that exist in the file (the last chunk may run past EOF). */
static uint64_t chunk_need(struct plan *p, const struct chunk *c)
{
	uint64_t size = p->m->files[c->file].size;
	return c->off + c->len <= size ? c->len : size - c->off;
}

/* Finish a chunk whose first `got` bytes arrived: a short read (EOF races,
 * signals) is completed with buffered pread; a file shorter than its header
 * said is an error. */
static int complete_read(struct plan *p, struct worker *w, const struct chunk *c, uint8_t *dst,
			 uint64_t got)
{
	uint64_t need = chunk_need(p, c);
	if (got < need) {
		ssize_t n = cs_pread_all(p->fds[2 * c->file], dst + got, need - got,
					 (off_t) (c->off + got));
		if (n < 0)
			return plan_fail(p, (int) n, "%s: read at offset %llu failed: %s",
					 p->m->files[c->file].path,
					 (unsigned long long) (c->off + got), strerror((int) -n));
		if ((uint64_t) n < need - got)
			return plan_fail(p, -EBADMSG,
					 "%s: file is shorter than its header says (changed "
					 "while loading?)",
					 p->m->files[c->file].path);
	}
	if (c->direct)
		w->bytes_direct += need;
	else
		w->bytes_buffered += need;
	return 0;
}

/* Copy the tensor pieces a staged chunk holds to their destinations. */
static int deliver_staged(struct plan *p, struct worker *w, const struct chunk *c, unsigned slot)
{
	const uint8_t *src = w->slot_mem + (size_t) slot * p->req;
	uint64_t c_end = c->off + chunk_need(p, c);
	size_t lo = p->file_first[c->file], hi = p->file_first[c->file + 1];

	/* First tensor ending after the chunk's start. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct ldr_tensor *t = p->sorted[mid];
		if (t->offset + t->size <= c->off)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < p->file_first[c->file + 1]; i++) {
		struct ldr_tensor *t = p->sorted[i];
		if (t->offset >= c_end)
			break;
		uint64_t a = t->offset > c->off ? t->offset : c->off;
		uint64_t b = t->offset + t->size < c_end ? t->offset + t->size : c_end;
		if (a >= b)
			continue;
		if (t->device < 0) {
			memcpy((uint8_t *) t->host + (a - t->offset), src + (a - c->off), b - a);
			continue;
		}
		int r = ldr_gpu_copy(w->gw, slot, t->device, t->dptr + (a - t->offset),
				     src + (a - c->off), b - a);
		if (r < 0)
			return plan_fail(p, r, "%s: tensor \"%s\": copy to cuda:%d failed: %s",
					 p->m->files[c->file].path, t->name, t->device,
					 strerror(-r));
	}
	int r = ldr_gpu_slot_record(w->gw, slot);
	if (r < 0)
		return plan_fail(p, r, "cannot record a copy event: %s", strerror(-r));
	w->slot_state[slot] = SLOT_COPYING;
	w->slot_seq[slot] = w->seq++;
	return 0;
}

/* A free staging slot, or -1 when all are reading or still copying. */
static int find_free_slot(struct worker *w)
{
	for (unsigned s = 0; s < w->n_slots; s++)
		if (w->slot_state[s] == SLOT_FREE)
			return (int) s;
	for (unsigned s = 0; s < w->n_slots; s++)
		if (w->slot_state[s] == SLOT_COPYING && ldr_gpu_slot_query(w->gw, s) == 0) {
			w->slot_state[s] = SLOT_FREE;
			return (int) s;
		}
	return -1;
}

/* Block until the oldest copying slot is free; -1 if none is copying. */
static int wait_oldest_slot(struct plan *p, struct worker *w)
{
	int best = -1;
	for (unsigned s = 0; s < w->n_slots; s++)
		if (w->slot_state[s] == SLOT_COPYING &&
		    (best < 0 || w->slot_seq[s] < w->slot_seq[best]))
			best = (int) s;
	if (best < 0)
		return -1;
	int r = ldr_gpu_slot_wait(w->gw, (unsigned) best);
	if (r < 0)
		return plan_fail(p, r, "waiting for a host-to-device copy failed: %s",
				 strerror(-r));
	w->slot_state[best] = SLOT_FREE;
	return best;
}

static int get_slot(struct plan *p, struct worker *w)
{
	int s = find_free_slot(w);
	return s >= 0 ? s : wait_oldest_slot(p, w);
}

static int read_chunk_sync(struct plan *p, struct worker *w, struct chunk *c, uint8_t *dst)
{
	int fd = p->fds[2 * c->file + (c->direct ? 1 : 0)];
	ssize_t n = cs_pread_all(fd, dst, c->len, (off_t) c->off);
	if (n == -EINVAL && c->direct) {
		/* O_DIRECT refused at read time: this chunk goes buffered. */
		c->direct = false;
		n = 0;
	}
	if (n < 0)
		return plan_fail(p, (int) n, "%s: read at offset %llu failed: %s",
				 p->m->files[c->file].path, (unsigned long long) c->off,
				 strerror((int) -n));
	return complete_read(p, w, c, dst, (uint64_t) n);
}

static int run_pread(struct worker *w)
{
	struct plan *p = w->p;
	struct chunk *c;
	size_t idx;
	int r = 0;

	for (;;) {
		int slot = -1;
		if (p->staged) {
			slot = get_slot(p, w);
			if (slot < 0)
				break;
		}
		c = take_chunk(p, &idx);
		if (!c)
			break;
		uint8_t *dst = p->staged ? w->slot_mem + (size_t) slot * p->req : host_dst(p, c);
		r = read_chunk_sync(p, w, c, dst);
		if (r >= 0 && p->staged)
			r = deliver_staged(p, w, c, (unsigned) slot);
		if (r < 0)
			break;
	}
	return r;
}

static int ring_init(struct plan *p, struct io_uring *ring, unsigned entries)
{
	if (p->force_refuse_uring)
		return -EPERM;
	/* One ring per thread, completions run only when we wait: the setup
	 * io_uring_setup(2) recommends. Older kernels refuse the flags. */
	int r = io_uring_queue_init(entries, ring,
				    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
					    IORING_SETUP_COOP_TASKRUN);
	if (r == -EINVAL)
		r = io_uring_queue_init(entries, ring, 0);
	return r;
}

static int handle_cqe(struct plan *p, struct worker *w, struct io_uring *ring,
		      struct io_uring_cqe *cqe)
{
	size_t idx = (size_t) (cqe->user_data >> 16);
	unsigned slot = (unsigned) (cqe->user_data & 0xffff);
	struct chunk *c = &p->chunks[idx];
	uint8_t *dst = p->staged ? w->slot_mem + (size_t) slot * p->req : host_dst(p, c);
	int res = cqe->res;
	int r;

	if (res == -EINVAL && c->direct)
		r = read_chunk_sync(p, w, c, dst);
	else if (res < 0)
		r = plan_fail(p, res, "%s: read at offset %llu failed: %s",
			      p->m->files[c->file].path, (unsigned long long) c->off,
			      strerror(-res));
	else
		r = complete_read(p, w, c, dst, (uint64_t) res);
	if (r >= 0 && p->staged)
		r = deliver_staged(p, w, c, slot);
	else if (p->staged)
		w->slot_state[slot] = SLOT_FREE;
	return r;
}

static int run_uring(struct worker *w)
{
	struct plan *p = w->p;
	struct io_uring ring;
	unsigned n_fds = (unsigned) (2 * p->m->n_files);
	bool fixed_files, fixed_bufs = false;
	unsigned inflight = 0;
	int r = ring_init(p, &ring, p->qd);

	if (r < 0) {
		w->uring_error = r;
		return run_pread(w);
	}
	w->used_uring = true;
	/* -1 entries (no O_DIRECT fd) are sparse slots. */
	fixed_files = io_uring_register_files(&ring, p->fds, n_fds) >= 0;
	if (p->staged) {
		_cleanup_free_ struct iovec *iov = calloc(w->n_slots, sizeof(*iov));
		if (iov) {
			for (unsigned s = 0; s < w->n_slots; s++)
				iov[s] = (struct iovec){w->slot_mem + (size_t) s * p->req, p->req};
			/* Refused under a low RLIMIT_MEMLOCK: plain reads then. */
			fixed_bufs = io_uring_register_buffers(&ring, iov, w->n_slots) >= 0;
		}
	}
	w->fixed_buffers = fixed_bufs;

	for (;;) {
		while (inflight < p->qd) {
			int slot = 0;
			if (p->staged) {
				slot = find_free_slot(w);
				if (slot < 0)
					break;
			}
			size_t idx;
			struct chunk *c = take_chunk(p, &idx);
			if (!c)
				break;
			if (!c->direct) {
				/* Cached data is a memory copy: do it here. Through the
				 * ring it would be punted to io-wq threads whenever the
				 * destination pages still need faulting in, and those
				 * threads only contend with us for the same CPUs. */
				uint8_t *dst = p->staged ? w->slot_mem + (size_t) slot * p->req
							 : host_dst(p, c);
				r = read_chunk_sync(p, w, c, dst);
				if (r >= 0 && p->staged)
					r = deliver_staged(p, w, c, (unsigned) slot);
				if (r < 0)
					break;
				continue;
			}
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			if (!sqe) { /* cannot happen: entries == qd */
				r = plan_fail(p, -EBUSY, "io_uring submission queue full");
				break;
			}
			int fd = 2 * (int) c->file + (c->direct ? 1 : 0);
			int real_fd = p->fds[fd];
			if (p->staged) {
				uint8_t *dst = w->slot_mem + (size_t) slot * p->req;
				if (fixed_bufs)
					io_uring_prep_read_fixed(sqe, fixed_files ? fd : real_fd,
								 dst, c->len, c->off, slot);
				else
					io_uring_prep_read(sqe, fixed_files ? fd : real_fd, dst,
							   c->len, c->off);
				w->slot_state[slot] = SLOT_READING;
			} else
				io_uring_prep_read(sqe, fixed_files ? fd : real_fd, host_dst(p, c),
						   c->len, c->off);
			if (fixed_files)
				sqe->flags |= IOSQE_FIXED_FILE;
			sqe->user_data = (uint64_t) idx << 16 | (unsigned) slot;
			inflight++;
		}
		if (inflight == 0) {
			if (p->staged && !atomic_load(&p->failed) &&
			    atomic_load(&p->next) < p->n_chunks && wait_oldest_slot(p, w) >= 0)
				continue;
			break;
		}
		r = io_uring_submit_and_wait(&ring, 1);
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			plan_fail(p, r, "io_uring submission failed: %s", strerror(-r));
			break;
		}
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&ring, head, cqe)
		{
			seen++;
			(void) handle_cqe(p, w, &ring, cqe);
		}
		io_uring_cq_advance(&ring, seen);
		inflight -= seen;
	}
	/* Never leave reads in flight into memory we are about to free. */
	while (inflight > 0) {
		struct io_uring_cqe *cqe;
		if (io_uring_wait_cqe(&ring, &cqe) < 0)
			break;
		io_uring_cqe_seen(&ring, cqe);
		inflight--;
	}
	io_uring_queue_exit(&ring);
	return p->error;
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#endif

/* LDR_LOAD_MAP: the regions map the files; bring each chunk into the page
 * cache (readahead starts the whole chunk's I/O at once instead of fault by
 * fault) and map it, so later access never faults. */
static int run_map(struct worker *w)
{
	struct plan *p = w->p;
	struct chunk *c;
	size_t idx;
	while ((c = take_chunk(p, &idx))) {
		uint8_t *dst = host_dst(p, c);
		uint64_t need = chunk_need(p, c);
		size_t len = (size_t) (need + LDR_ALIGN - 1) / LDR_ALIGN * LDR_ALIGN;
		(void) readahead(p->fds[2 * c->file], (off64_t) c->off, (size_t) need);
		if (madvise(dst, len, MADV_POPULATE_READ) < 0) {
			if (errno != EINVAL)
				return plan_fail(p, -errno, "%s: cannot map offset %llu: %s",
						 p->m->files[c->file].path,
						 (unsigned long long) c->off, strerror(errno));
			/* Before 5.14: touch every page. */
			for (size_t o = 0; o < len; o += LDR_ALIGN)
				(void) *(volatile uint8_t *) (dst + o);
		}
		w->bytes_buffered += need;
	}
	return p->error;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	if (w->p->map)
		(void) run_map(w);
	else if (w->p->no_uring)
		(void) run_pread(w);
	else
		(void) run_uring(w);
	if (w->gw) {
		int r = ldr_gpu_worker_sync(w->gw);
		if (r < 0)
			plan_fail(w->p, r, "waiting for host-to-device copies failed: %s",
				  strerror(-r));
	}
	return NULL;
}

/* --- planning --- */

static int parse_device(const char *s, int *ret)
{
	if (!s || strcmp(s, "cpu") == 0) {
		*ret = -1;
		return 0;
	}
	if (strcmp(s, "cuda") == 0) {
		*ret = 0;
		return 0;
	}
	if (strncmp(s, "cuda:", 5) == 0 && s[5] >= '0' && s[5] <= '9') {
		char *end;
		long d = strtol(s + 5, &end, 10);
		if (*end == 0 && d < LDR_MAX_GPUS_PUBLIC) {
			*ret = (int) d;
			return 0;
		}
	}
	return -EINVAL;
}

/* Rules "PAT=DEV,PAT=DEV": first fnmatch wins, else the default device. */
static int place_tensors(struct ldr_model *m, const struct ldr_load_options *o, char *err,
			 size_t errlen)
{
	int def;
	if (parse_device(o->device, &def) < 0)
		return ldr_errf(err, errlen, -EINVAL,
				"unknown device \"%s\" (cpu, cuda or cuda:N with N < %d)",
				o->device, LDR_MAX_GPUS_PUBLIC);
	_cleanup_free_ char *rules = o->placement ? strdup(o->placement) : NULL;
	if (o->placement && !rules)
		return -ENOMEM;
	struct {
		const char *pat;
		int dev;
	} rule[64];
	size_t n_rules = 0;
	char *save = NULL;
	for (char *tok = rules ? strtok_r(rules, ",", &save) : NULL; tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strrchr(tok, '=');
		if (!eq || eq == tok || n_rules == ELEMENTSOF(rule))
			return ldr_errf(err, errlen, -EINVAL,
					"placement rule \"%s\" is not PATTERN=DEVICE", tok);
		*eq = 0;
		if (parse_device(eq + 1, &rule[n_rules].dev) < 0)
			return ldr_errf(err, errlen, -EINVAL,
					"placement rule \"%s\": unknown device \"%s\"", tok,
					eq + 1);
		rule[n_rules++].pat = tok;
	}
	for (size_t i = 0; i < m->tensors.n; i++) {
		struct ldr_tensor *t = &m->tensors.v[i];
		t->device = def;
		for (size_t k = 0; k < n_rules; k++)
			if (fnmatch(rule[k].pat, t->name, 0) == 0) {
				t->device = rule[k].dev;
				break;
			}
	}
	return 0;
}

static int open_files(struct plan *p, const struct ldr_load_options *o, char *err, size_t errlen)
{
	struct ldr_model *m = p->m;
	for (size_t f = 0; f < m->n_files; f++) {
		p->fds[2 * f + 1] = -1;
		p->fds[2 * f] = open(m->files[f].path, O_RDONLY | O_CLOEXEC);
		if (p->fds[2 * f] < 0)
			return ldr_errf(err, errlen, -errno, "%s: cannot open: %s",
					m->files[f].path, strerror(errno));
		if (o->flags & LDR_LOAD_NO_DIRECT)
			continue;
		/* Filesystems without O_DIRECT (tmpfs, some overlays) refuse it. */
		int dfd = open(m->files[f].path, O_RDONLY | O_CLOEXEC | O_DIRECT);
		uint32_t align;
		/* Where the kernel says (6.1+), trust it: no direct I/O at all, or
		 * an alignment our 4 KiB plan does not meet, means buffered. */
		if (dfd >= 0 && ldr_dio_align(dfd, &align) >= 0 &&
		    (align == 0 || LDR_ALIGN % align != 0)) {
			close(dfd);
			dfd = -1;
		}
		p->fds[2 * f + 1] = dfd;
	}
	return 0;
}

/* Page-cache residency of [start, end) of a file, one byte per page. */
static uint8_t *residency(int fd, uint64_t start, uint64_t end)
{
	size_t len = (size_t) (end - start);
	if (len == 0)
		return NULL;
	void *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, (off_t) start);
	if (map == MAP_FAILED)
		return NULL;
	uint8_t *vec = malloc((len + LDR_ALIGN - 1) / LDR_ALIGN);
	if (vec && mincore(map, len, vec) < 0) {
		free(vec);
		vec = NULL;
	}
	munmap(map, len);
	return vec;
}

/* Whether the page cache holds (nearly) all the tensor data of the files of
 * `m`: then a host load maps the files instead of copying (see
 * LDR_LOAD_COPY), and the few missing pages are read in by the mapping's
 * readahead. "Nearly" because a cached file rarely stays whole: a direct
 * read of the same range by another tool (fio, a previous O_DIRECT load)
 * drops a page here and there. */
#define LDR_MAP_RESIDENT_PERCENT 90

static bool model_mostly_cached(const struct ldr_model *m)
{
	uint64_t pages = 0, resident = 0;

	for (size_t f = 0; f < m->n_files; f++) {
		const struct ldr_file *file = &m->files[f];
		if (file->data_end <= file->data_start)
			continue;
		_cleanup_close_ int fd = open(file->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return false;
		uint64_t start = file->data_start / LDR_ALIGN * LDR_ALIGN;
		uint64_t end = file->data_end < file->size ? file->data_end : file->size;
		_cleanup_free_ uint8_t *vec = residency(fd, start, end);
		if (!vec)
			return false;
		size_t n = (end - start + LDR_ALIGN - 1) / LDR_ALIGN;
		for (size_t i = 0; i < n; i++)
			resident += vec[i] & 1;
		pages += n;
	}
	return pages > 0 && resident * 100 >= pages * LDR_MAP_RESIDENT_PERCENT;
}

static int plan_chunks(struct plan *p, unsigned flags)
{
	struct ldr_model *m = p->m;
	size_t n = 0;
	for (size_t f = 0; f < m->n_files; f++) {
		struct ldr_file *file = &m->files[f];
		p->range_start[f] = file->data_start / LDR_ALIGN * LDR_ALIGN;
		uint64_t end = (file->data_end + LDR_ALIGN - 1) / LDR_ALIGN * LDR_ALIGN;
		if (file->data_end > file->data_start)
			n += (end - p->range_start[f] + p->req - 1) / p->req;
	}
	p->chunks = calloc(n ? n : 1, sizeof(*p->chunks));
	if (!p->chunks)
		return -ENOMEM;
	for (size_t f = 0; f < m->n_files; f++) {
		struct ldr_file *file = &m->files[f];
		if (file->data_end <= file->data_start)
			continue;
		uint64_t start = p->range_start[f];
		uint64_t end = (file->data_end + LDR_ALIGN - 1) / LDR_ALIGN * LDR_ALIGN;
		bool can_direct = p->fds[2 * f + 1] >= 0;
		_cleanup_free_ uint8_t *vec = NULL;
		if (can_direct && !(flags & LDR_LOAD_ALWAYS_DIRECT))
			vec = residency(p->fds[2 * f], start, end < file->size ? end : file->size);
		for (uint64_t off = start; off < end; off += p->req) {
			struct chunk *c = &p->chunks[p->n_chunks++];
			c->file = (uint32_t) f;
			c->off = off;
			c->len = (uint32_t) (end - off < p->req ? end - off : p->req);
			c->direct = can_direct;
			if (can_direct && vec) {
				/* Buffered when the page cache holds the whole chunk. */
				uint64_t last = off + chunk_need(p, c);
				bool cached = true;
				for (uint64_t q = off; q < last && cached; q += LDR_ALIGN)
					cached = vec[(q - start) / LDR_ALIGN] & 1;
				c->direct = !cached;
			}
		}
	}
	return 0;
}

static void *map_anon(size_t len, bool populate)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0), -1, 0);
	/* No MADV_HUGEPAGE here (staging buffers): see host_regions_huge(). */
	return p == MAP_FAILED ? NULL : p;
}

/* Fresh anonymous memory for host tensors, 2 MiB aligned with
 * MADV_HUGEPAGE, so a first touch installs 512 pages at once. */
static void *map_anon_huge(size_t len)
{
	void *p = cs_mmap_anon_aligned(len, CS_HUGE_PAGE_SIZE);
	if (p)
		(void) madvise(p, len, MADV_HUGEPAGE);
	return p;
}

/* The page size for host tensor memory, by measurement, not by guess: on
 * hosts whose page faults exit to the hypervisor (PVM: ~25 us per 4 KiB
 * fault) 2 MiB pages fill memory an order of magnitude faster; on a KVM
 * guest whose free 2 MiB blocks were handed back to the host by a balloon
 * they were measured 2-3x slower. `stoke check` measures both once per
 * boot into the profile read here (huge_pages_cheaper, same boot id).
 * STOKE_LOAD_PAGES=2m|4k overrides; no profile (a container without
 * /run/stoke) keeps 4 KiB pages. */
static bool host_regions_huge(void)
{
	const char *force = secure_getenv("STOKE_LOAD_PAGES");
	if (force && (!strcmp(force, "2m") || !strcmp(force, "4k")))
		return !strcmp(force, "2m");
	const char *path = secure_getenv("STOKE_HOST_PROFILE");
	json_object *o = NULL;
	_cleanup_free_ char *boot = NULL;
	const char *id = NULL;
	size_t n = 0;
	bool cheaper = false;
	if (cs_json_parse_file(path && *path ? path : "/run/stoke/host-memory-profile.json",
			       1 << 16, &o, NULL, 0) < 0)
		return false;
	if (cs_read_file_at(AT_FDCWD, "/proc/sys/kernel/random/boot_id", 64, &boot, &n) >= 0 &&
	    cs_json_get_string(o, "boot_id", &id) == 0 && n >= strlen(id) &&
	    strncmp(boot, id, strlen(id)) == 0)
		(void) cs_json_get_bool(o, "huge_pages_cheaper", &cheaper);
	json_object_put(o);
	return cheaper;
}

static int alloc_regions(struct plan *p)
{
	struct ldr_model *m = p->m;
	m->regions = calloc(m->n_files ? m->n_files : 1, sizeof(*m->regions));
	if (!m->regions)
		return -ENOMEM;
	for (size_t f = 0; f < m->n_files; f++) {
		bool host = false;
		for (size_t i = p->file_first[f]; i < p->file_first[f + 1] && !host; i++)
			host = p->sorted[i]->device < 0;
		uint64_t end = (m->files[f].data_end + LDR_ALIGN - 1) / LDR_ALIGN * LDR_ALIGN;
		size_t len = (size_t) (end - p->range_start[f]);
		if (!host || len == 0)
			continue;
		if (p->map) {
			void *b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE,
				       p->fds[2 * f], (off_t) p->range_start[f]);
			m->regions[f].base = b == MAP_FAILED ? NULL : b;
		} else {
			m->regions[f].base = p->huge ? map_anon_huge(len) : map_anon(len, false);
		}
		if (!m->regions[f].base)
			return -ENOMEM;
		m->regions[f].len = len;
		for (size_t i = p->file_first[f]; i < p->file_first[f + 1]; i++)
			if (p->sorted[i]->device < 0)
				p->sorted[i]->host = (uint8_t *) m->regions[f].base +
						     (p->sorted[i]->offset - p->range_start[f]);
	}
	return 0;
}

static int by_file_offset(const void *a, const void *b)
{
	const struct ldr_tensor *x = *(struct ldr_tensor *const *) a;
	const struct ldr_tensor *y = *(struct ldr_tensor *const *) b;
	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

void ldr_engine_release(struct ldr_model *m)
{
	if (m->regions)
		for (size_t f = 0; f < m->n_files; f++)
			if (m->regions[f].base)
				munmap(m->regions[f].base, m->regions[f].len);
	free(m->regions);
	m->regions = NULL;
	ldr_gpu_release(m);
	for (size_t i = 0; i < m->tensors.n; i++) {
		m->tensors.v[i].host = NULL;
		m->tensors.v[i].dptr = 0;
	}
	m->loaded = false;
}

static void plan_free(struct plan *p)
{
	if (p->fds)
		for (size_t f = 0; f < 2 * p->m->n_files; f++)
			if (p->fds[f] >= 0)
				close(p->fds[f]);
	free(p->fds);
	free(p->range_start);
	free(p->sorted);
	free(p->file_first);
	free(p->chunks);
	pthread_mutex_destroy(&p->lock);
}

static int workers_setup_staging(struct plan *p, struct worker *w)
{
	/* Every read in flight holds a slot, plus some whose copies are still
	 * queued (copies run at PCIe speed, far ahead of the disk). */
	w->n_slots = p->qd + (p->qd + 1) / 2;
	size_t len = (size_t) w->n_slots * p->req;
	w->slot_mem = map_anon(len, true);
	w->slot_state = calloc(w->n_slots, 1);
	w->slot_seq = calloc(w->n_slots, sizeof(*w->slot_seq));
	if (!w->slot_mem || !w->slot_state || !w->slot_seq)
		return -ENOMEM;
	return ldr_gpu_worker_new(p->m, p->devmask, w->slot_mem, len, w->n_slots, &w->gw);
}

static void worker_free(struct plan *p, struct worker *w)
{
	ldr_gpu_worker_free(w->gw);
	if (w->slot_mem)
		munmap(w->slot_mem, (size_t) w->n_slots * p->req);
	free(w->slot_state);
	free(w->slot_seq);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/* Host destinations are fresh memory: materialising it (zeroing, and on a
 * VM the hypervisor backing it) can cost as much as the disk read. This
 * thread populates the O_DIRECT chunks' destinations in order, ahead of the
 * readers, so page faults overlap the I/O instead of stalling the thread
 * that submits it (direct I/O pins the destination pages at submission). */
static void *prefault_main(void *arg)
{
	struct plan *p = arg;
	for (size_t i = 0; i < p->n_chunks && !atomic_load(&p->failed); i++) {
		const struct chunk *c = &p->chunks[i];
		/* Cached chunks are copied by a worker that faults the pages in
		 * as it goes; populating them here would only compete with it. */
		if (!p->m->regions[c->file].base || !c->direct)
			continue;
		uint8_t *dst = host_dst(p, c);
		if (madvise(dst, c->len, MADV_POPULATE_WRITE) < 0)
			for (size_t o = 0; o < c->len; o += LDR_ALIGN)
				/* Kernels before 5.14: touch each page (a racing read's data
				 * is never overwritten: the add keeps the value). */
				__atomic_fetch_add(&dst[o], 0, __ATOMIC_RELAXED);
	}
	return NULL;
}

static unsigned default_workers(size_t n_chunks)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = cpus > 0 ? (unsigned) cpus : 1;
	if (n > LDR_DEFAULT_WORKERS_MAX)
		n = LDR_DEFAULT_WORKERS_MAX;
	return n;
}

static int run_workers(struct plan *p, unsigned n_workers, struct ldr_load_stats *st, char *err,
		       size_t errlen)
{
	_cleanup_free_ struct worker *w = calloc(n_workers, sizeof(*w));
	unsigned started = 0;
	uint64_t setup0 = cs_monotonic_ns();
	int r = 0;
	if (!w)
		return -ENOMEM;
	for (unsigned i = 0; i < n_workers; i++) {
		w[i].p = p;
		if (p->staged) {
			r = workers_setup_staging(p, &w[i]);
			if (r < 0) {
				ldr_errf(err, errlen, r, "cannot set up pinned staging buffers: %s",
					 strerror(-r));
				goto out;
			}
		}
	}
	uint64_t t0 = cs_monotonic_ns();
	st->plan_ns += t0 - setup0; /* staging buffers: allocation and pinning */
	pthread_t prefault;
	bool prefaulting = false;
	/* (Not for mapped files: populating for write would copy every page.) */
	for (size_t f = 0; f < p->m->n_files && !prefaulting && !p->map; f++)
		prefaulting = p->m->regions[f].base &&
			      pthread_create(&prefault, NULL, prefault_main, p) == 0;
	for (; started < n_workers; started++) {
		r = -pthread_create(&w[started].thread, NULL, worker_main, &w[started]);
		if (r < 0) {
			plan_fail(p, r, "cannot start a reader thread: %s", strerror(-r));
			break;
		}
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(w[i].thread, NULL);
	if (prefaulting) {
		atomic_store(&p->failed, true); /* nothing left to read: stop it */
		pthread_join(prefault, NULL);
	}
	st->read_ns = cs_monotonic_ns() - t0;
	r = p->error;
	st->backend = "io_uring";
	st->fixed_buffers = p->staged;
	st->mapped = p->map;
	for (unsigned i = 0; i < n_workers; i++) {
		st->bytes_direct += w[i].bytes_direct;
		st->bytes_buffered += w[i].bytes_buffered;
		if (p->map)
			st->backend = "mmap";
		else if (!w[i].used_uring)
			st->backend = "pread";
		if (w[i].uring_error)
			st->uring_fallback_error = w[i].uring_error;
		if (!w[i].fixed_buffers)
			st->fixed_buffers = 0;
	}
out:
	for (unsigned i = 0; i < n_workers; i++)
		worker_free(p, &w[i]);
	return r;
}

int ldr_model_load(struct ldr_model *m, const struct ldr_load_options *opts,
		   struct ldr_load_stats *ret_stats, char *err, size_t errlen)
{
	static const struct ldr_load_options defaults = {};
	const struct ldr_load_options *o = opts ? opts : &defaults;
	struct ldr_load_stats st = {};
	struct plan p = {.m = m, .err = err, .errlen = errlen};
	uint64_t t0 = cs_monotonic_ns();
	int r, max_dev = -1;

	if (!m)
		return -EINVAL;
	if (m->loaded)
		return ldr_errf(err, errlen, -EALREADY, "model is already loaded");
	p.req = o->request_size ? o->request_size : LDR_DEFAULT_REQUEST_SIZE;
	p.qd = o->queue_depth ? o->queue_depth : LDR_DEFAULT_QUEUE_DEPTH;
	if (p.req % LDR_ALIGN || p.req > (1u << 30) || p.qd > 4096)
		return ldr_errf(err, errlen, -EINVAL,
				"request size must be a multiple of 4 KiB up to 1 GiB, queue "
				"depth at most 4096");
	r = place_tensors(m, o, err, errlen);
	if (r < 0)
		return r;
	pthread_mutex_init(&p.lock, NULL);
	p.no_uring = o->flags & LDR_LOAD_NO_URING;
	p.map = (o->flags & LDR_LOAD_MAP) != 0;
	p.force_refuse_uring = getenv(LDR_TEST_REFUSE_URING_ENV) != NULL;

	for (size_t i = 0; i < m->tensors.n; i++)
		if (m->tensors.v[i].device >= 0) {
			p.devmask |= 1u << m->tensors.v[i].device;
			if (m->tensors.v[i].device > max_dev)
				max_dev = m->tensors.v[i].device;
		}
	p.staged = p.devmask != 0;
	if (p.staged)
		p.map = false;
	else if (!(o->flags & (LDR_LOAD_COPY | LDR_LOAD_ALWAYS_DIRECT | LDR_LOAD_NO_DIRECT |
			       LDR_LOAD_NO_URING)))
		p.map = model_mostly_cached(m);
	if (p.staged) {
		r = ldr_gpu_open(m, max_dev);
		if (r < 0) {
			ldr_errf(err, errlen, r,
				 r == -ENODEV ? "cuda:%d: no such GPU (libcuda.so.1 missing, no "
						"device, or fewer devices)"
					      : "cuda:%d: cannot initialise the CUDA driver: %s",
				 max_dev, strerror(-r));
			goto fail;
		}
		r = ldr_gpu_alloc(m);
		if (r < 0) {
			ldr_errf(err, errlen, r, "cannot allocate device memory: %s", strerror(-r));
			goto fail;
		}
	}

	p.fds = malloc(2 * (m->n_files ? m->n_files : 1) * sizeof(int));
	p.range_start = calloc(m->n_files ? m->n_files : 1, sizeof(uint64_t));
	p.sorted = calloc(m->tensors.n ? m->tensors.n : 1, sizeof(*p.sorted));
	p.file_first = calloc(m->n_files + 1, sizeof(size_t));
	for (size_t f = 0; p.fds && f < 2 * m->n_files; f++)
		p.fds[f] = -1;
	if (!p.fds || !p.range_start || !p.sorted || !p.file_first) {
		r = ldr_errf(err, errlen, -ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < m->tensors.n; i++)
		p.sorted[i] = &m->tensors.v[i];
	qsort(p.sorted, m->tensors.n, sizeof(*p.sorted), by_file_offset);
	for (size_t f = 0, i = 0; f <= m->n_files; f++) {
		while (i < m->tensors.n && p.sorted[i]->file < f)
			i++;
		p.file_first[f] = i;
	}
	r = open_files(&p, o, err, errlen);
	if (r < 0)
		goto fail;
	r = plan_chunks(&p, o->flags);
	p.huge = !p.map && host_regions_huge();
	st.huge_pages = p.huge;
	if (r >= 0)
		r = alloc_regions(&p);
	if (r < 0) {
		ldr_errf(err, errlen, r, "cannot plan the reads: %s", strerror(-r));
		goto fail;
	}
	unsigned n_workers = o->n_workers ? o->n_workers : default_workers(p.n_chunks);
	if (n_workers > p.n_chunks)
		n_workers = p.n_chunks ? (unsigned) p.n_chunks : 1;
	st.plan_ns = cs_monotonic_ns() - t0;
	r = run_workers(&p, n_workers, &st, err, errlen);
	if (r < 0)
		goto fail;
	plan_free(&p);
	for (size_t i = 0; i < m->tensors.n; i++)
		st.bytes += m->tensors.v[i].size;
	st.bytes_read = st.bytes_direct + st.bytes_buffered;
	st.queue_depth = st.backend && strcmp(st.backend, "pread") == 0 ? 1 : p.qd;
	st.request_size = p.req;
	st.n_workers = n_workers;
	st.total_ns = cs_monotonic_ns() - t0;
	m->loaded = true;
	if (ret_stats)
		*ret_stats = st;
	return 0;
fail:
	if (p.fds || p.file_first)
		plan_free(&p);
	else
		pthread_mutex_destroy(&p.lock);
	ldr_engine_release(m);
	return r;
}

int ldr_model_copy_to_host(struct ldr_model *m, size_t index, uint64_t offset, void *dst,
			   size_t len)
{
	if (!m || index >= m->tensors.n)
		return -ERANGE;
	if (!m->loaded)
		return -ENODATA;
	struct ldr_tensor *t = &m->tensors.v[index];
	if (offset > t->size || len > t->size - offset)
		return -ERANGE;
	if (t->device < 0) {
		memcpy(dst, (const uint8_t *) t->host + offset, len);
		return 0;
	}
	return ldr_gpu_dtoh(m, t->device, dst, t->dptr + offset, len);
}
