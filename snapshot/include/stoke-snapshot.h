/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stoke snapshot files: one zstd-compressed, chunked, checksummed file that
 * holds CRIU's image files, GPU checkpoint metadata, the container's config
 * and any other blobs. The on-disk layout is specified in snapshot/FORMAT.md.
 *
 * Writing: snap_writer_open() on the final path writes to a temporary name in
 * the same directory; entries are added from buffers, from file descriptors
 * read until end of file (pipes: length unknown in advance), or as a whole
 * directory tree; snap_writer_commit() fsyncs and renames the file into place.
 * Freeing a writer that was not committed removes the temporary file, so a
 * crash or an error never leaves a partial snapshot under the real name.
 * Chunks are compressed on all cores while the caller keeps feeding data.
 *
 * Reading: snap_reader_open() checks the header, the fixed-size footer at the
 * end of the file, and the index (entry table + chunk table) with its
 * checksum, and validates every count, size and offset before anything is
 * used. Data is read with io_uring (O_DIRECT where the filesystem allows it,
 * registered buffers) or with pread when io_uring is refused, decompressed in
 * parallel and checked against the per-chunk checksum before it is handed
 * out. Any offset of any entry can be read without reading from the start.
 *
 * Conventions (all functions):
 *  - Return 0 (or a byte count) on success and -errno on failure; ret_*
 *    out-parameters are written only on success.
 *  - Errors that mean "this file is damaged or not a snapshot" are -EBADMSG;
 *    a snapshot written by a newer, incompatible version is -EPROTONOSUPPORT;
 *    an entry name that would escape a target directory is -EBADMSG too (the
 *    index is rejected when the file is opened). snap_last_error() returns a
 *    sentence saying what exactly was wrong, for the command layer to log.
 *  - The library never logs above debug level and never prints.
 *  - Descriptors it opens carry O_CLOEXEC. Descriptors passed in are borrowed:
 *    never closed, and only used for the duration of the call.
 *  - Thread-safety: a writer or a reader is used by one thread at a time
 *    (the library runs its own worker threads inside a call). Different
 *    readers and writers are independent; open several readers on the same
 *    file for concurrent use.
 */
#ifndef STOKE_SNAPSHOT_H
#define STOKE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Chunk size used when the caller passes 0 (chosen by measurement, FORMAT.md). */
#define SNAP_DEFAULT_CHUNK_SIZE (UINT32_C(1) << 20)
#define SNAP_MIN_CHUNK_SIZE	(UINT32_C(1) << 12)
#define SNAP_MAX_CHUNK_SIZE	(UINT32_C(1) << 26)
/* Longest entry name in bytes, without the terminating NUL. */
#define SNAP_NAME_MAX 4095

enum snap_kind {
	SNAP_KIND_FILE = 1,    /* regular file or blob: its data is the content */
	SNAP_KIND_DIR = 2,     /* directory: no data */
	SNAP_KIND_SYMLINK = 3, /* symbolic link: its data is the link target */
};

/*! snap_last_error() :
 *  A sentence describing the last failure of a snap_* call made by this
 *  thread ("index checksum mismatch", "entry 3 name \"../x\" escapes the
 *  target directory", ...), or "" when there is none. The string belongs to
 *  the library and stays valid until the next snap_* call on this thread. */
const char *snap_last_error(void);

/* Progress of a long operation: `done` out of `total` bytes of entry data. */
typedef void (*snap_progress_fn)(void *userdata, uint64_t done, uint64_t total);

/* ------------------------------------------------------------------------ */
/* Writer                                                                    */
/* ------------------------------------------------------------------------ */

struct snap_writer;

struct snap_writer_options {
	uint32_t chunk_size; /* power of two in [SNAP_MIN_CHUNK_SIZE, SNAP_MAX_CHUNK_SIZE]; 0 =
				default */
	int level;	     /* zstd level, 1..19; 0 = default (3) */
	unsigned threads;    /* compression threads; 0 = online CPUs */
	mode_t file_mode;    /* mode of the snapshot file; 0 = 0600 */
};

/*! snap_writer_open() :
 *  Start a snapshot that will be named `path` once committed. Data goes to a
 *  temporary file ".NAME.XXXXXX" in the same directory; `path` itself is not
 *  touched until snap_writer_commit(). `opts` may be NULL (defaults) and is
 *  copied. *ret_writer is owned by the caller: snap_writer_free() it.
 * @return : 0, -EINVAL on bad options, or -errno from creating the file. */
int snap_writer_open(const char *path, const struct snap_writer_options *opts,
		     struct snap_writer **ret_writer);

/*! snap_writer_add_buffer() :
 *  Add a regular-file entry `name` (a safe relative path: no "..", ".", empty
 *  component or leading '/') with permission bits `mode` and the `len` bytes
 *  at `data`, which are copied before the call returns.
 * @return : 0; -EINVAL for an unsafe or too long name; -EEXIST if `name` was
 *           already added; -errno from writing. After any error other than
 *           -EINVAL/-EEXIST the writer is failed: only snap_writer_free(). */
int snap_writer_add_buffer(struct snap_writer *w, const char *name, mode_t mode, const void *data,
			   size_t len);

/*! snap_writer_add_fd() :
 *  Add a regular-file entry whose content is read from `fd` until end of file
 *  (a pipe, a socket, a file at its current offset: the length need not be
 *  known). Regions of a regular file that are holes (SEEK_HOLE) are stored as
 *  holes without being read. `fd` is borrowed and read from its current
 *  offset. Errors as snap_writer_add_buffer(), plus -errno from read(). */
int snap_writer_add_fd(struct snap_writer *w, const char *name, mode_t mode, int fd);

/*! snap_writer_begin_entry() / snap_writer_write() / snap_writer_end_entry() :
 *  Push an entry's content piece by piece (a stream produced by the caller).
 *  Only one entry is open at a time; begin/end pair up. Errors as above;
 *  -EBUSY when an entry is already open, -EINVAL when none is. */
int snap_writer_begin_entry(struct snap_writer *w, const char *name, mode_t mode);
int snap_writer_write(struct snap_writer *w, const void *data, size_t len);
int snap_writer_end_entry(struct snap_writer *w);

/*! snap_writer_add_dir() / snap_writer_add_symlink() :
 *  Add a directory entry, or a symbolic link whose target is `target`
 *  (stored as is, never followed by the writer; 1..SNAP_NAME_MAX bytes).
 *  Errors as snap_writer_add_buffer(). */
int snap_writer_add_dir(struct snap_writer *w, const char *name, mode_t mode);
int snap_writer_add_symlink(struct snap_writer *w, const char *name, const char *target);

/*! snap_writer_add_tree() :
 *  Add everything under directory `dir` (regular files, directories and
 *  symbolic links, with their permission bits), named "PREFIX/relative/path",
 *  or just "relative/path" when `prefix` is NULL or "". `dir` itself is not
 *  an entry. Entries are added in a stable (sorted) order. Symlinks are
 *  stored, never followed. Other file types (devices, sockets, FIFOs) give
 *  -EOPNOTSUPP and snap_last_error() names the path.
 * @return : 0, or -errno (writer failed as for snap_writer_add_buffer()). */
int snap_writer_add_tree(struct snap_writer *w, const char *prefix, const char *dir);

/*! snap_writer_set_progress() : call `fn(userdata, done, total)` from the
 *  calling thread as data is written (total is 0 when unknown). */
void snap_writer_set_progress(struct snap_writer *w, snap_progress_fn fn, void *userdata);

/*! snap_writer_commit() :
 *  Write the index and footer, fsync the file, rename it to the final path
 *  (replacing any file there) and fsync the directory. On failure the
 *  temporary file is removed. In both cases the writer must still be freed.
 * @return : 0, or -errno. */
int snap_writer_commit(struct snap_writer *w);

/*! snap_writer_free() :
 *  Stop the worker threads and release everything. A writer that was not
 *  committed is aborted: its temporary file is removed. Accepts NULL.
 * @return : NULL. */
struct snap_writer *snap_writer_free(struct snap_writer *w);

/*! snap_writer_abort() : same as snap_writer_free(), named for the intent. */
static inline void snap_writer_abort(struct snap_writer *w)
{
	(void) snap_writer_free(w);
}

static inline void snap_writer_freep(struct snap_writer **w)
{
	*w = snap_writer_free(*w);
}

/* ------------------------------------------------------------------------ */
/* Reader                                                                    */
/* ------------------------------------------------------------------------ */

struct snap_reader;

enum snap_reader_flags {
	/* Use pread even when io_uring is available (tests use it to cover the
	 * fallback path; it is also what happens when io_uring is refused). */
	SNAP_READER_FORCE_PREAD = 1u << 0,
	/* Do not try O_DIRECT (it is also skipped where the filesystem refuses it). */
	SNAP_READER_NO_DIRECT = 1u << 1,
};

struct snap_reader_options {
	unsigned flags;	  /* enum snap_reader_flags */
	unsigned threads; /* decompression threads; 0 = online CPUs */
};

struct snap_entry_info {
	const char *name; /* owned by the reader, valid until snap_reader_free() */
	enum snap_kind kind;
	uint32_t mode;	      /* permission bits (07777) */
	uint64_t size;	      /* uncompressed size (a symlink: target length) */
	uint64_t stored_size; /* bytes it occupies in the file (holes take none) */
	uint64_t chunks;      /* number of chunks */
	uint64_t mtime_ns;    /* modification time, ns since the epoch (0 = unknown) */
};

/* Counters and timings accumulated over a reader's life (restore reports them). */
struct snap_stats {
	uint64_t bytes_read;	     /* bytes read from the file (aligned reads included) */
	uint64_t bytes_decompressed; /* uncompressed bytes produced (holes included) */
	uint64_t chunks;	     /* chunks delivered */
	uint64_t read_ns;	     /* time from issuing each read to its completion, summed
				      * over reads (overlapping reads each count) */
	uint64_t decompress_ns;	     /* time in checksum + decompression, summed over threads */
	uint64_t total_ns;	     /* wall time inside read/extract/unpack/verify calls */
};

/*! snap_reader_open() / snap_reader_open_fd() :
 *  Open a snapshot, checking its header, footer and index (checksums, counts,
 *  offsets, entry names). `opts` may be NULL. open_fd() borrows `fd` for
 *  the reader's life (it must stay open; it is never closed by the reader),
 *  which lets callers read a snapshot from a memfd or an inherited fd.
 *  *ret_reader is owned by the caller: snap_reader_free() it.
 * @return : 0; -EBADMSG for a damaged or foreign file (snap_last_error() says
 *           what); -EPROTONOSUPPORT for a newer major version; -errno. */
int snap_reader_open(const char *path, const struct snap_reader_options *opts,
		     struct snap_reader **ret_reader);
int snap_reader_open_fd(int fd, const struct snap_reader_options *opts,
			struct snap_reader **ret_reader);

/*! snap_reader_free() : release the reader and its threads. Accepts NULL. @return : NULL. */
struct snap_reader *snap_reader_free(struct snap_reader *r);

static inline void snap_reader_freep(struct snap_reader **r)
{
	*r = snap_reader_free(*r);
}

/*! snap_reader_backend() : "io_uring" or "pread", the I/O path in use. */
const char *snap_reader_backend(const struct snap_reader *r);

/*! snap_reader_chunk_size() : the file's chunk size in bytes. */
uint32_t snap_reader_chunk_size(const struct snap_reader *r);

/*! snap_reader_entry_count() : number of entries (in the order they were added). */
size_t snap_reader_entry_count(const struct snap_reader *r);

/*! snap_reader_entry() : describe entry `index`. @return : 0, or -ERANGE. */
int snap_reader_entry(const struct snap_reader *r, size_t index, struct snap_entry_info *ret_info);

/*! snap_reader_find() : index of the entry named `name`. @return : 0, or -ENOENT. */
int snap_reader_find(const struct snap_reader *r, const char *name, size_t *ret_index);

/*! snap_reader_pread() :
 *  Read up to `len` bytes of entry `index` starting at `offset` into `buf`
 *  (caller-owned, written only during the call). Only the chunks covering
 *  the range are read, verified and decompressed (in parallel).
 * @return : bytes read (less than `len` only at the end of the entry, 0 at or
 *           past it), -ERANGE for a bad index, -EISDIR for a directory,
 *           -EBADMSG when a chunk's checksum or decompression fails, -errno. */
ssize_t snap_reader_pread(struct snap_reader *r, size_t index, void *buf, size_t len,
			  uint64_t offset);

/*! snap_reader_extract_fd() :
 *  Write entry `index` whole to `fd` (borrowed). A seekable fd (regular file,
 *  memfd, tmpfs file) is written with pwrite from its current offset by all
 *  threads at once and holes are left as holes (the file is extended with
 *  ftruncate); its offset is left unchanged. A pipe or socket is written in
 *  order with write().
 * @return : 0, or errors as snap_reader_pread(), or -errno from writing. */
int snap_reader_extract_fd(struct snap_reader *r, size_t index, int fd);

enum snap_unpack_flags {
	/* Reserved; pass 0. */
	SNAP_UNPACK_DEFAULT = 0,
};

/*! snap_reader_unpack() :
 *  Recreate every entry under the directory `dir`, which must not exist or
 *  be empty. Everything is first written into a new temporary directory in
 *  `dir`'s parent, then renamed to `dir`: on any failure the temporary
 *  directory is removed and `dir` is left as it was. Nothing is ever created
 *  outside it: names were checked when the file was opened, parents are
 *  opened without following symlinks, and symlinks are created last.
 * @return : 0; -EEXIST if `dir` exists and is not empty; errors as
 *           snap_reader_pread(); -errno. */
int snap_reader_unpack(struct snap_reader *r, const char *dir, unsigned flags);

/*! snap_reader_verify() :
 *  Read every chunk, check its checksum and that it decompresses to its
 *  recorded size. Together with the checks done at open this covers every
 *  byte of the file.
 * @return : 0, or -EBADMSG (snap_last_error() names the entry and chunk). */
int snap_reader_verify(struct snap_reader *r);

/*! snap_reader_set_progress() : as snap_writer_set_progress(), for the
 *  extract, unpack and verify calls. */
void snap_reader_set_progress(struct snap_reader *r, snap_progress_fn fn, void *userdata);

/*! snap_reader_get_stats() : counters accumulated since open. */
void snap_reader_get_stats(const struct snap_reader *r, struct snap_stats *ret_stats);

#endif
