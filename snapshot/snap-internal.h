/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals shared by the snapshot format's sources: error details, the
 * worker pool, little-endian helpers and the parsed index.
 */
#ifndef STOKE_SNAPSHOT_INTERNAL_H
#define STOKE_SNAPSHOT_INTERNAL_H

#include <endian.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "stoke-snapshot.h"

/* ---- error details (thread-local, read by snap_last_error()) ---- */

/*! snap_error() : record why a call failed; returns `r` so callers can
 *  `return snap_error(-EBADMSG, "...")`. */
int snap_error(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void snap_error_clear(void);

/* ---- worker pool ---- */

struct snap_job;
typedef void (*snap_job_fn)(struct snap_job *job, void **worker_ctx);

struct snap_job {
	snap_job_fn fn;
	struct snap_job *next; /* queue link, owned by the pool while queued */
	bool done;	       /* set under the pool lock when fn returned */
};

struct snap_pool;

/*! snap_pool_new() :
 *  Start `threads` workers. Each worker owns one context pointer (initially
 *  NULL, set by job functions, released with `ctx_free` at exit). When
 *  `notify_fd` >= 0 every finished job is appended to the done list and
 *  8 bytes (an eventfd increment) are written to `notify_fd`. */
int snap_pool_new(unsigned threads, void (*ctx_free)(void *), int notify_fd,
		  struct snap_pool **ret_pool);
struct snap_pool *snap_pool_free(struct snap_pool *p);
void snap_pool_submit(struct snap_pool *p, struct snap_job *job);
/* Block until `job` is done. */
void snap_pool_wait(struct snap_pool *p, struct snap_job *job);
/* Take the done list (finished jobs, oldest first); NULL when empty. */
struct snap_job *snap_pool_take_done(struct snap_pool *p);

/*! snap_default_threads() : CPUs this process may run on (at least 1, at most 64). */
unsigned snap_default_threads(void);

/* ---- little-endian field access ---- */

static inline uint16_t le16(uint16_t v)
{
	return le16toh(v);
}
static inline uint32_t le32(uint32_t v)
{
	return le32toh(v);
}
static inline uint64_t le64(uint64_t v)
{
	return le64toh(v);
}

/* XXH3-64 of `len` bytes (the format's only checksum). */
uint64_t snap_checksum(const void *data, size_t len);

/*! snap_checksum_matches() : whether `data` has checksum `want`.
 *  The fuzz build (-Dfuzz=true) accepts any checksum so that the fuzzer
 *  reaches the structural checks behind them instead of stopping at the
 *  first checksum; that build is never shipped. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
static inline bool snap_checksum_matches(const void *data, size_t len, uint64_t want)
{
	(void) snap_checksum(data, len);
	(void) want;
	return true;
}
#else
static inline bool snap_checksum_matches(const void *data, size_t len, uint64_t want)
{
	return snap_checksum(data, len) == want;
}
#endif

/* ---- the parsed index (index.c) ---- */

struct snap_index {
	uint32_t chunk_size;
	uint16_t minor;
	uint64_t file_size;
	uint64_t data_end; /* == index offset: stored bytes lie in [64, data_end) */
	uint64_t entry_count;
	uint64_t chunk_count;
	const struct snap_disk_entry *entries; /* point into `blob` */
	const struct snap_disk_chunk *chunks;
	char **names;	   /* NUL-terminated copies, one per entry */
	uint64_t *by_name; /* entry indices sorted by name */
	void *blob;	   /* the index bytes, owned */
};

/*! snap_index_parse() :
 *  Check `header`, `footer` (both 64 bytes, as read from the file's two
 *  ends) against `file_size`, then the index bytes `blob` (of the length the
 *  footer gives, ownership taken on success and on failure), and build the
 *  parsed index. Every count, length, offset, name and checksum is checked.
 * @return : 0, -EBADMSG (snap_error() says why), -EPROTONOSUPPORT, -ENOMEM. */
int snap_index_parse(const void *header, const void *footer, uint64_t file_size, void *blob,
		     struct snap_index **ret_index);
/*! snap_index_check_ends() : the header/footer part of snap_index_parse(),
 *  giving the index offset and length to read. */
int snap_index_check_ends(const void *header, const void *footer, uint64_t file_size,
			  uint64_t *ret_index_offset, uint64_t *ret_index_length);
struct snap_index *snap_index_free(struct snap_index *idx);

static inline bool snap_chunk_size_valid(uint64_t cs)
{
	return cs >= SNAP_MIN_CHUNK_SIZE && cs <= SNAP_MAX_CHUNK_SIZE && (cs & (cs - 1)) == 0;
}

#endif
