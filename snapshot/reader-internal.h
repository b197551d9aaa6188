/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The reader's internals, shared by reader.c (open, entry access, the
 * read/decompress engine), reader-uring.c (the io_uring path), reader-pread.c
 * (the pread path) and unpack.c.
 *
 * The engine keeps a ring of slots, each with an aligned input buffer (one
 * stored chunk plus alignment slack, registered with io_uring) and an output
 * buffer (one chunk). A task says which chunk to read and where its bytes
 * go (a sink). Reads are issued by the main thread through io_uring, or by
 * the workers with pread; workers verify the checksum, decompress and
 * deliver; an eventfd wakes the main thread for both completions.
 */
#ifndef STOKE_SNAPSHOT_READER_INTERNAL_H
#define STOKE_SNAPSHOT_READER_INTERNAL_H

#include <stdatomic.h>
#include <sys/uio.h>

#include "snap-internal.h"

#define RD_ALIGN 4096u

enum rd_sink {
	RD_SINK_NONE,	/* verify only */
	RD_SINK_BUF,	/* copy the slice to task.dst */
	RD_SINK_PWRITE, /* pwrite the slice to target->fd at target->base + entry offset */
	RD_SINK_STREAM, /* the main thread write()s slices in task order */
};

/* Where an entry's bytes go when it is written to a descriptor. */
struct rd_target {
	int fd;
	uint64_t base;	   /* file offset of the entry's byte 0 */
	uint64_t zero_end; /* holes below this file offset must be zeroed (old data) */
	/* unpack: the last task to finish sets mode/mtime and closes fd */
	atomic_int refs;
	bool finalize;
	uint32_t mode;
	uint64_t mtime_ns;
	struct snap_reader *r;
};

struct rd_task {
	uint64_t chunk;	    /* global chunk index */
	uint64_t entry;	    /* entry owning the chunk */
	uint64_t chunk_pos; /* offset of the chunk in its entry */
	uint32_t skip;	    /* first byte of the chunk wanted */
	uint32_t take;	    /* number of bytes wanted */
	enum rd_sink sink;
	uint8_t *dst;		  /* RD_SINK_BUF: destination of the slice */
	struct rd_target *target; /* RD_SINK_PWRITE / RD_SINK_STREAM, not owned */
};

/* Produce the next task: 1 with *t filled, 0 when there are no more, -errno. */
typedef int (*rd_next_fn)(void *gen, struct rd_task *t);

struct rd_slot {
	struct snap_job job; /* first: the pool hands jobs back as this */
	struct snap_reader *r;
	unsigned id;
	uint8_t *in;
	uint8_t *out;
	struct rd_task t;
	uint64_t seq;
	/* read geometry: rd_len bytes at rd_off, payload at in + in_skip */
	uint64_t rd_off;
	uint32_t rd_len, in_skip;
	bool need_read; /* the worker reads (pread path) */
	bool direct;	/* read with O_DIRECT (the chunk is not in the page cache) */
	int io_res;	/* io_uring result when !need_read */
	uint64_t io_start_ns;
	/* results */
	int res;
	const char *why;
	const uint8_t *data; /* RD_SINK_STREAM: the chunk's bytes */
	uint64_t read_ns, cpu_ns, bytes_read;
	bool ready;
};

struct rd_uring;

struct snap_reader {
	int fd;
	bool own_fd;
	int direct_fd; /* O_DIRECT descriptor of the same file, or -1 */
	struct snap_index *idx;
	unsigned threads;
	unsigned flags;
	int efd;
	struct snap_pool *pool;
	struct rd_uring *ring; /* NULL: pread path */
	bool ring_failed;      /* submission failed: only drain, read with pread */
	struct rd_slot *slots;
	unsigned nslots;
	size_t max_chunk; /* largest raw_length in the file: the slot buffer size */
	uint8_t *zeros;	  /* one chunk of zeros */
	void *map;	  /* PROT_READ mapping of the data area, for mincore() only */
	size_t map_len;
	atomic_int deferred_err; /* first error of a target finalization */
	snap_progress_fn progress;
	void *progress_data;
	uint64_t progress_done, progress_total;
	struct snap_stats stats;
};

/* reader.c */
int rd_run(struct snap_reader *r, rd_next_fn next, void *gen);
void rd_target_unref(struct rd_target *t);
int rd_fill_task(const struct snap_reader *r, uint64_t entry, uint64_t chunk_in_entry,
		 uint64_t from, uint64_t to, struct rd_task *t);

/* reader-pread.c: the worker-side read used by the pread path and as retry. */
int rd_pread_slot(struct snap_reader *r, struct rd_slot *s);

/* reader-uring.c */
int rd_uring_new(unsigned depth, int efd, struct rd_uring **ret);
struct rd_uring *rd_uring_free(struct rd_uring *u);
/* Register the slots' input buffers (best effort: fixed reads when it worked). */
void rd_uring_register(struct rd_uring *u, const struct iovec *iov, unsigned n);
int rd_uring_queue_read(struct rd_uring *u, int fd, struct rd_slot *s);
int rd_uring_submit(struct rd_uring *u);
/* Call done(s, res, arg) for every completion available now; returns how many. */
int rd_uring_reap(struct rd_uring *u, void (*done)(struct rd_slot *s, int res, void *arg),
		  void *arg);

#endif
