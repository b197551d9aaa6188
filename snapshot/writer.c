/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The snapshot writer. Entry data is cut into chunks as it arrives; each
 * full chunk goes to a worker that detects all-zero chunks (holes),
 * compresses the rest with zstd (keeping it raw when that does not make it
 * smaller) and checksums the stored bytes. Slots form a ring, so chunks are
 * written to the file in the order they were cut while up to one ring's
 * worth is being compressed, and the caller never waits unless the ring is
 * full. The index and footer are written at commit.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "cleanup.h"
#include "fd-util.h"
#include "path-util.h"
#include "snap-internal.h"

struct wr_slot {
	struct snap_job job; /* first: the pool hands jobs back as this */
	struct snap_writer *w;
	uint8_t *in;
	uint32_t len;
	uint8_t *out;
	/* results, valid when the job is done */
	const uint8_t *stored;
	uint32_t stored_len;
	uint8_t type;
	uint64_t checksum;
	uint64_t chunk; /* index in w->chunks */
	bool busy;	/* submitted and not yet written */
};

struct wr_entry {
	char *name;
	uint16_t kind;
	uint32_t mode;
	uint64_t size, first_chunk, chunk_count, mtime_ns;
};

struct wr_chunk {
	uint64_t offset, checksum;
	uint32_t stored, raw;
	uint8_t type;
};

struct snap_writer {
	int fd;
	int dirfd;
	char *tmp_path;
	char *final_path;
	uint32_t chunk_size;
	int level;
	mode_t file_mode;
	struct snap_pool *pool;
	struct wr_slot *slots;
	unsigned nslots, cur;
	uint64_t pos; /* next write offset */

	struct wr_entry *entries;
	size_t nentries, entries_cap;
	struct wr_chunk *chunks;
	size_t nchunks, chunks_cap;
	void *names; /* tsearch() tree of entry names, for duplicates */
	size_t names_len;

	bool entry_open;
	int failed; /* first write error: the writer is unusable */
	bool committed;

	snap_progress_fn progress;
	void *progress_data;
	uint64_t done_bytes;
};

static bool is_all_zero(const uint8_t *p, size_t n)
{
	/* Comparing the buffer with itself shifted by one byte runs at memcmp speed. */
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static void compress_job(struct snap_job *job, void **ctx)
{
	struct wr_slot *s = (struct wr_slot *) job;
	ZSTD_CCtx *cctx = *ctx;

	if (is_all_zero(s->in, s->len)) {
		s->type = SNAP_CHUNK_HOLE;
		s->stored = NULL;
		s->stored_len = 0;
		s->checksum = 0;
		return;
	}
	if (!cctx)
		*ctx = cctx = ZSTD_createCCtx();
	/* A chunk is kept compressed only if zstd saves at least 1/8: less
	 * (random float weights save ~10%) costs more decompression CPU at
	 * restore than the disk time it saves. A capacity of 7/8 of the input
	 * makes zstd give up early; such chunks are stored raw. */
	size_t n = cctx && s->len > 1 ? ZSTD_compressCCtx(cctx, s->out, s->len - s->len / 8, s->in,
							  s->len, s->w->level)
				      : (size_t) -1;
	if (!cctx || ZSTD_isError(n) || n == 0 || n >= s->len) {
		s->type = SNAP_CHUNK_RAW;
		s->stored = s->in;
		s->stored_len = s->len;
	} else {
		s->type = SNAP_CHUNK_ZSTD;
		s->stored = s->out;
		s->stored_len = (uint32_t) n;
	}
	s->checksum = snap_checksum(s->stored, s->stored_len);
}

static void cctx_free(void *ctx)
{
	ZSTD_freeCCtx(ctx);
}

static int add_chunk(struct snap_writer *w, uint32_t raw, uint8_t type, uint64_t *ret_index)
{
	if (w->nchunks == w->chunks_cap) {
		size_t cap = w->chunks_cap ? w->chunks_cap * 2 : 256;
		struct wr_chunk *c = reallocarray(w->chunks, cap, sizeof(*c));
		if (!c)
			return -ENOMEM;
		w->chunks = c;
		w->chunks_cap = cap;
	}
	w->chunks[w->nchunks] = (struct wr_chunk){.raw = raw, .type = type};
	*ret_index = w->nchunks++;
	return 0;
}

/* Wait for slot `s` to be compressed and append its bytes to the file. */
static int drain_slot(struct snap_writer *w, struct wr_slot *s)
{
	int r;

	if (!s->busy)
		return 0;
	snap_pool_wait(w->pool, &s->job);
	s->busy = false;
	struct wr_chunk *c = &w->chunks[s->chunk];
	c->type = s->type;
	c->stored = s->stored_len;
	c->checksum = s->checksum;
	if (s->type != SNAP_CHUNK_HOLE) {
		r = cs_write_all(w->fd, s->stored, s->stored_len);
		if (r < 0)
			return snap_error(r, "cannot write to the snapshot file");
		c->offset = w->pos;
		w->pos += s->stored_len;
	}
	w->done_bytes += s->len;
	if (w->progress)
		w->progress(w->progress_data, w->done_bytes, 0);
	s->len = 0;
	return 0;
}

static int drain_all(struct snap_writer *w)
{
	for (unsigned k = 0; k < w->nslots; k++) {
		int r = drain_slot(w, &w->slots[(w->cur + k) % w->nslots]);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The slot being filled; waits for its previous chunk to be written first. */
static int current_slot(struct snap_writer *w, struct wr_slot **ret)
{
	struct wr_slot *s = &w->slots[w->cur];
	int r = drain_slot(w, s);
	if (r < 0)
		return r;
	*ret = s;
	return 0;
}

static int submit_slot(struct snap_writer *w, struct wr_slot *s)
{
	int r = add_chunk(w, s->len, SNAP_CHUNK_ZSTD, &s->chunk);
	if (r < 0)
		return r;
	s->busy = true;
	s->job.fn = compress_job;
	snap_pool_submit(w->pool, &s->job);
	w->cur = (w->cur + 1) % w->nslots;
	return 0;
}

static int fail(struct snap_writer *w, int r)
{
	if (r < 0 && r != -EINVAL && r != -EEXIST && r != -EBUSY && !w->failed)
		w->failed = r;
	return r;
}

static int names_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int begin_entry(struct snap_writer *w, const char *name, uint16_t kind, mode_t mode,
		       uint64_t mtime_ns)
{
	if (w->failed)
		return w->failed;
	if (w->entry_open)
		return snap_error(-EBUSY, "entry \"%s\" is still open",
				  w->entries[w->nentries - 1].name);
	if (strlen(name) > SNAP_NAME_MAX || !cs_path_is_safe_relative(name))
		return snap_error(-EINVAL, "entry name \"%s\" is not a safe relative path", name);
	if (w->nentries >= SNAP_MAX_ENTRIES)
		return snap_error(-E2BIG, "too many entries");
	if (w->names && tfind(name, &w->names, names_cmp))
		return snap_error(-EEXIST, "entry \"%s\" was already added", name);
	if (w->nentries == w->entries_cap) {
		size_t cap = w->entries_cap ? w->entries_cap * 2 : 64;
		struct wr_entry *e = reallocarray(w->entries, cap, sizeof(*e));
		if (!e)
			return -ENOMEM;
		w->entries = e;
		w->entries_cap = cap;
	}
	char *copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	if (!tsearch(copy, &w->names, names_cmp)) {
		free(copy);
		return -ENOMEM;
	}
	w->entries[w->nentries++] = (struct wr_entry){
		.name = copy,
		.kind = kind,
		.mode = mode & 07777,
		.first_chunk = w->nchunks,
		.mtime_ns = mtime_ns,
	};
	w->names_len += strlen(copy);
	w->entry_open = true;
	return 0;
}

static int write_data(struct snap_writer *w, const void *data, size_t len)
{
	const uint8_t *p = data;
	struct wr_entry *e = &w->entries[w->nentries - 1];
	int r;

	while (len > 0) {
		struct wr_slot *s;
		r = current_slot(w, &s);
		if (r < 0)
			return r;
		size_t n = w->chunk_size - s->len;
		if (n > len)
			n = len;
		memcpy(s->in + s->len, p, n);
		s->len += n;
		p += n;
		len -= n;
		e->size += n;
		if (s->len == w->chunk_size) {
			r = submit_slot(w, s);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int end_entry(struct snap_writer *w)
{
	struct wr_entry *e = &w->entries[w->nentries - 1];
	struct wr_slot *s = &w->slots[w->cur];
	int r;

	if (!s->busy && s->len > 0) {
		r = submit_slot(w, s);
		if (r < 0)
			return r;
	}
	e->chunk_count = w->nchunks - e->first_chunk;
	if (e->size > SNAP_MAX_ENTRY_SIZE || e->chunk_count > UINT32_MAX)
		return snap_error(-EFBIG, "entry \"%s\" is too large", e->name);
	w->entry_open = false;
	return 0;
}

int snap_writer_begin_entry(struct snap_writer *w, const char *name, mode_t mode)
{
	snap_error_clear();
	return fail(w, begin_entry(w, name, SNAP_KIND_FILE, mode, 0));
}

int snap_writer_write(struct snap_writer *w, const void *data, size_t len)
{
	if (w->failed)
		return w->failed;
	if (!w->entry_open)
		return snap_error(-EINVAL, "no entry is open");
	return fail(w, write_data(w, data, len));
}

int snap_writer_end_entry(struct snap_writer *w)
{
	if (w->failed)
		return w->failed;
	if (!w->entry_open)
		return snap_error(-EINVAL, "no entry is open");
	return fail(w, end_entry(w));
}

int snap_writer_add_buffer(struct snap_writer *w, const char *name, mode_t mode, const void *data,
			   size_t len)
{
	int r;

	snap_error_clear();
	r = begin_entry(w, name, SNAP_KIND_FILE, mode, 0);
	if (r < 0)
		return fail(w, r);
	r = write_data(w, data, len);
	if (r < 0)
		return fail(w, r);
	return fail(w, end_entry(w));
}

/* Whole chunks inside a hole of a regular file are recorded as holes without
 * reading them; returns how many bytes were skipped. */
static int skip_holes(struct snap_writer *w, int fd, uint64_t *ret_skipped)
{
	struct wr_entry *e = &w->entries[w->nentries - 1];
	off_t pos = lseek(fd, 0, SEEK_CUR), data, end;
	uint64_t holes;
	int r;

	*ret_skipped = 0;
	if (pos < 0)
		return 0;
	data = lseek(fd, pos, SEEK_DATA);
	if (data < 0 && errno == ENXIO) {
		struct stat st;
		if (fstat(fd, &st) < 0)
			return -errno;
		end = st.st_size;
	} else if (data < 0) {
		return lseek(fd, pos, SEEK_SET) < 0 ? -errno : 0;
	} else {
		end = data;
	}
	holes = end > pos ? (uint64_t) (end - pos) / w->chunk_size : 0;
	for (uint64_t i = 0; i < holes; i++) {
		uint64_t idx;
		r = add_chunk(w, w->chunk_size, SNAP_CHUNK_HOLE, &idx);
		if (r < 0)
			return r;
	}
	e->size += holes * w->chunk_size;
	if (lseek(fd, pos + (off_t) (holes * w->chunk_size), SEEK_SET) < 0)
		return -errno;
	*ret_skipped = holes * w->chunk_size;
	return 0;
}

static int copy_fd(struct snap_writer *w, int fd)
{
	struct wr_entry *e = &w->entries[w->nentries - 1];
	struct stat st;
	bool regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	int r;

	for (;;) {
		struct wr_slot *s;
		r = current_slot(w, &s);
		if (r < 0)
			return r;
		if (regular && s->len == 0) {
			uint64_t skipped;
			r = skip_holes(w, fd, &skipped);
			if (r < 0)
				return snap_error(r, "cannot seek in the input of \"%s\"", e->name);
		}
		ssize_t n = read(fd, s->in + s->len, w->chunk_size - s->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return snap_error(-errno, "cannot read the input of \"%s\"", e->name);
		if (n == 0)
			return 0;
		s->len += n;
		e->size += n;
		if (s->len == w->chunk_size) {
			r = submit_slot(w, s);
			if (r < 0)
				return r;
		}
	}
}

static int add_fd(struct snap_writer *w, const char *name, mode_t mode, int fd, uint64_t mtime_ns)
{
	int r = begin_entry(w, name, SNAP_KIND_FILE, mode, mtime_ns);
	if (r < 0)
		return fail(w, r);
	r = copy_fd(w, fd);
	if (r < 0)
		return fail(w, r);
	return fail(w, end_entry(w));
}

int snap_writer_add_fd(struct snap_writer *w, const char *name, mode_t mode, int fd)
{
	struct stat st;

	snap_error_clear();
	return add_fd(w, name, mode, fd,
		      fstat(fd, &st) == 0 && S_ISREG(st.st_mode)
			      ? (uint64_t) st.st_mtim.tv_sec * 1000000000u + st.st_mtim.tv_nsec
			      : 0);
}

static int add_dir(struct snap_writer *w, const char *name, mode_t mode, uint64_t mtime_ns)
{
	int r = begin_entry(w, name, SNAP_KIND_DIR, mode, mtime_ns);
	if (r < 0)
		return fail(w, r);
	return fail(w, end_entry(w));
}

int snap_writer_add_dir(struct snap_writer *w, const char *name, mode_t mode)
{
	snap_error_clear();
	return add_dir(w, name, mode, 0);
}

static int add_symlink(struct snap_writer *w, const char *name, const char *target,
		       uint64_t mtime_ns)
{
	size_t len = strlen(target);
	int r;

	if (len == 0 || len > SNAP_NAME_MAX)
		return snap_error(-EINVAL, "symlink \"%s\": invalid target length", name);
	r = begin_entry(w, name, SNAP_KIND_SYMLINK, 0777, mtime_ns);
	if (r < 0)
		return fail(w, r);
	r = write_data(w, target, len);
	if (r < 0)
		return fail(w, r);
	return fail(w, end_entry(w));
}

int snap_writer_add_symlink(struct snap_writer *w, const char *name, const char *target)
{
	snap_error_clear();
	return add_symlink(w, name, target, 0);
}

static uint64_t stat_mtime_ns(const struct stat *st)
{
	return (uint64_t) st->st_mtim.tv_sec * 1000000000u + (uint64_t) st->st_mtim.tv_nsec;
}

static void free_namelist(struct dirent **list, int n)
{
	for (int i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

static int add_tree_at(struct snap_writer *w, int dfd, const char *prefix, unsigned depth)
{
	struct dirent **list = NULL;
	int n, r = 0;

	if (depth > 256)
		return snap_error(-ELOOP, "directory tree under \"%s\" is too deep", prefix);
	n = scandirat(dfd, ".", &list, NULL, alphasort);
	if (n < 0)
		return snap_error(-errno, "cannot list \"%s\"", prefix[0] ? prefix : ".");
	for (int i = 0; i < n && r >= 0; i++) {
		const char *d = list[i]->d_name;
		_cleanup_free_ char *name = NULL;
		struct stat st;

		if (strcmp(d, ".") == 0 || strcmp(d, "..") == 0)
			continue;
		r = prefix[0] ? cs_path_join(prefix, d, &name) : ((name = strdup(d)) ? 0 : -ENOMEM);
		if (r < 0)
			break;
		if (fstatat(dfd, d, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = snap_error(-errno, "cannot stat \"%s\"", name);
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int sub =
				openat(dfd, d, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				r = snap_error(-errno, "cannot open directory \"%s\"", name);
				break;
			}
			r = add_dir(w, name, st.st_mode, stat_mtime_ns(&st));
			if (r >= 0)
				r = add_tree_at(w, sub, name, depth + 1);
		} else if (S_ISREG(st.st_mode)) {
			_cleanup_close_ int fd = openat(dfd, d, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0) {
				r = snap_error(-errno, "cannot open \"%s\"", name);
				break;
			}
			r = add_fd(w, name, st.st_mode, fd, stat_mtime_ns(&st));
		} else if (S_ISLNK(st.st_mode)) {
			char target[SNAP_NAME_MAX + 2];
			ssize_t len = readlinkat(dfd, d, target, sizeof(target));
			if (len < 0 || len > SNAP_NAME_MAX) {
				r = snap_error(len < 0 ? -errno : -ENAMETOOLONG,
					       "cannot read symlink \"%s\"", name);
				break;
			}
			target[len] = '\0';
			r = add_symlink(w, name, target, stat_mtime_ns(&st));
		} else {
			r = snap_error(-EOPNOTSUPP,
				       "\"%s\" is not a regular file, directory or symlink", name);
		}
	}
	free_namelist(list, n);
	return r;
}

int snap_writer_add_tree(struct snap_writer *w, const char *prefix, const char *dir)
{
	_cleanup_close_ int dfd = -EBADF;

	snap_error_clear();
	if (w->failed)
		return w->failed;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return snap_error(-errno, "cannot open directory \"%s\"", dir);
	return add_tree_at(w, dfd, prefix ? prefix : "", 0);
}

void snap_writer_set_progress(struct snap_writer *w, snap_progress_fn fn, void *userdata)
{
	w->progress = fn;
	w->progress_data = userdata;
}

static int write_header(struct snap_writer *w)
{
	struct snap_disk_header h = {
		.major = htole16(SNAP_FORMAT_MAJOR),
		.minor = htole16(SNAP_FORMAT_MINOR),
		.chunk_size = htole32(w->chunk_size),
	};
	memcpy(h.magic, SNAP_HEADER_MAGIC, SNAP_MAGIC_LEN);
	h.checksum = htole64(snap_checksum(&h, offsetof(struct snap_disk_header, checksum)));
	int r = cs_write_all(w->fd, &h, sizeof(h));
	if (r < 0)
		return snap_error(r, "cannot write the snapshot header");
	w->pos = sizeof(h);
	return 0;
}

static int write_index(struct snap_writer *w)
{
	size_t len = sizeof(struct snap_disk_index) + w->nentries * sizeof(struct snap_disk_entry) +
		     w->nchunks * sizeof(struct snap_disk_chunk) + w->names_len;
	_cleanup_free_ uint8_t *blob = calloc(1, len);
	int r;

	if (!blob)
		return -ENOMEM;
	struct snap_disk_index *ih = (struct snap_disk_index *) blob;
	memcpy(ih->magic, SNAP_INDEX_MAGIC, SNAP_MAGIC_LEN);
	ih->entry_count = htole64(w->nentries);
	ih->chunk_count = htole64(w->nchunks);
	ih->names_length = htole64(w->names_len);
	struct snap_disk_entry *de = (struct snap_disk_entry *) (ih + 1);
	struct snap_disk_chunk *dc = (struct snap_disk_chunk *) (de + w->nentries);
	char *names = (char *) (dc + w->nchunks);
	uint64_t name_off = 0;
	for (size_t i = 0; i < w->nentries; i++) {
		const struct wr_entry *e = &w->entries[i];
		size_t nl = strlen(e->name);
		de[i] = (struct snap_disk_entry){
			.size = htole64(e->size),
			.first_chunk = htole64(e->first_chunk),
			.name_offset = htole64(name_off),
			.mtime_ns = htole64(e->mtime_ns),
			.name_length = htole32((uint32_t) nl),
			.mode = htole32(e->mode),
			.kind = htole16(e->kind),
			.chunk_count = htole32((uint32_t) e->chunk_count),
		};
		memcpy(names + name_off, e->name, nl);
		name_off += nl;
	}
	for (size_t i = 0; i < w->nchunks; i++) {
		const struct wr_chunk *c = &w->chunks[i];
		dc[i] = (struct snap_disk_chunk){
			.offset = htole64(c->offset),
			.stored_length = htole32(c->stored),
			.raw_length = htole32(c->raw),
			.checksum = htole64(c->checksum),
			.type = c->type,
		};
	}

	struct snap_disk_footer f = {
		.index_offset = htole64(w->pos),
		.index_length = htole64(len),
		.file_size = htole64(w->pos + len + sizeof(f)),
		.index_checksum = htole64(snap_checksum(blob, len)),
		.major = htole16(SNAP_FORMAT_MAJOR),
		.minor = htole16(SNAP_FORMAT_MINOR),
	};
	memcpy(f.magic, SNAP_FOOTER_MAGIC, SNAP_MAGIC_LEN);
	f.checksum = htole64(snap_checksum(&f, offsetof(struct snap_disk_footer, checksum)));
	r = cs_write_all(w->fd, blob, len);
	if (r >= 0)
		r = cs_write_all(w->fd, &f, sizeof(f));
	if (r < 0)
		return snap_error(r, "cannot write the snapshot index");
	w->pos += len + sizeof(f);
	return 0;
}

static int commit(struct snap_writer *w)
{
	int r;

	if (w->committed)
		return snap_error(-EALREADY, "snapshot already committed");
	if (w->failed)
		return w->failed;
	if (w->entry_open)
		return snap_error(-EBUSY, "entry \"%s\" is still open",
				  w->entries[w->nentries - 1].name);
	r = drain_all(w);
	if (r < 0)
		return r;
	r = write_index(w);
	if (r < 0)
		return r;
	if (fchmod(w->fd, w->file_mode) < 0 || fsync(w->fd) < 0)
		return snap_error(-errno, "cannot sync the snapshot file");
	if (rename(w->tmp_path, w->final_path) < 0)
		return snap_error(-errno, "cannot rename the snapshot into place");
	w->committed = true;
	if (fsync(w->dirfd) < 0)
		return snap_error(-errno, "cannot sync the snapshot's directory");
	return 0;
}

int snap_writer_commit(struct snap_writer *w)
{
	snap_error_clear();
	int r = commit(w);
	if (r < 0 && !w->committed) {
		w->failed = w->failed ?: r;
		(void) unlink(w->tmp_path);
	}
	return r;
}

struct snap_writer *snap_writer_free(struct snap_writer *w)
{
	if (!w)
		return NULL;
	/* Workers may still be compressing into the slots: stop them first. */
	w->pool = snap_pool_free(w->pool);
	if (!w->committed && w->tmp_path)
		(void) unlink(w->tmp_path);
	if (w->fd >= 0)
		close(w->fd);
	if (w->dirfd >= 0)
		close(w->dirfd);
	for (unsigned i = 0; w->slots && i < w->nslots; i++) {
		free(w->slots[i].in);
		free(w->slots[i].out);
	}
	free(w->slots);
	tdestroy(w->names, free);
	free(w->entries);
	free(w->chunks);
	free(w->tmp_path);
	free(w->final_path);
	free(w);
	return NULL;
}

static int open_tmp(struct snap_writer *w, const char *path)
{
	_cleanup_free_ char *d = strdup(path), *b = strdup(path);
	if (!d || !b)
		return -ENOMEM;
	const char *dir = dirname(d), *base = basename(b);
	if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || strcmp(base, "/") == 0)
		return snap_error(-EINVAL, "\"%s\" is not a file name", path);
	if (asprintf(&w->tmp_path, "%s/.%s.XXXXXX", dir, base) < 0) {
		w->tmp_path = NULL;
		return -ENOMEM;
	}
	w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0)
		return snap_error(-errno, "cannot open directory \"%s\"", dir);
	w->fd = mkostemp(w->tmp_path, O_CLOEXEC);
	if (w->fd < 0) {
		int r = -errno;
		free(w->tmp_path);
		w->tmp_path = NULL;
		return snap_error(r, "cannot create a temporary file in \"%s\"", dir);
	}
	w->final_path = strdup(path);
	return w->final_path ? 0 : -ENOMEM;
}

int snap_writer_open(const char *path, const struct snap_writer_options *opts,
		     struct snap_writer **ret_writer)
{
	struct snap_writer_options o = opts ? *opts : (struct snap_writer_options){};
	_cleanup_(snap_writer_freep) struct snap_writer *w = NULL;
	unsigned threads;
	int r;

	snap_error_clear();
	if (o.chunk_size == 0)
		o.chunk_size = SNAP_DEFAULT_CHUNK_SIZE;
	if (!snap_chunk_size_valid(o.chunk_size))
		return snap_error(-EINVAL, "chunk size %u is not a power of two in [%u, %u]",
				  o.chunk_size, SNAP_MIN_CHUNK_SIZE, SNAP_MAX_CHUNK_SIZE);
	if (o.level == 0)
		o.level = 3;
	if (o.level < 1 || o.level > 19)
		return snap_error(-EINVAL, "zstd level %d is not in 1..19", o.level);
	threads = o.threads ? o.threads : snap_default_threads();
	if (threads > 256)
		return snap_error(-EINVAL, "too many threads (%u)", threads);

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = w->dirfd = -EBADF;
	w->chunk_size = o.chunk_size;
	w->level = o.level;
	w->file_mode = o.file_mode ? o.file_mode & 07777 : 0600;
	/* Two chunks per worker keep every worker busy while the oldest is written. */
	w->nslots = 2 * threads + 1;
	w->slots = calloc(w->nslots, sizeof(*w->slots));
	if (!w->slots)
		return -ENOMEM;
	for (unsigned i = 0; i < w->nslots; i++) {
		w->slots[i].w = w;
		w->slots[i].in = malloc(o.chunk_size);
		w->slots[i].out = malloc(o.chunk_size);
		if (!w->slots[i].in || !w->slots[i].out)
			return -ENOMEM;
	}
	r = open_tmp(w, path);
	if (r < 0)
		return r;
	r = snap_pool_new(threads, cctx_free, -1, &w->pool);
	if (r < 0)
		return r;
	r = write_header(w);
	if (r < 0)
		return r;
	*ret_writer = TAKE_PTR(w);
	return 0;
}
