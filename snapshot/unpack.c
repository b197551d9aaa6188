/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unpacking a snapshot into a directory, safely:
 *  - everything goes into a fresh temporary directory next to the target,
 *    renamed into place only when every entry was written and verified, and
 *    removed on any failure, so no partial unpack is ever left under the
 *    target's name;
 *  - entry names were checked at open (relative, no "." or ".." component);
 *    parents are opened one component at a time with O_NOFOLLOW, files are
 *    created with O_EXCL|O_NOFOLLOW, and symlinks are created only after
 *    all data is written, so no write can go through a symlink;
 *  - file data is written by the decompression workers with pwrite, in
 *    parallel across files and chunks; holes stay holes.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fd-util.h"
#include "reader-internal.h"

struct unpack_gen {
	struct snap_reader *r;
	int rootfd;
	uint64_t entry, chunk_in_entry;
	struct rd_target *cur; /* the file being queued; the generator holds one ref */
	char *parent_path;     /* cache of the last parent directory opened */
	int parent_fd;
};

static struct timespec ns_to_ts(uint64_t ns)
{
	return (struct timespec){.tv_sec = (time_t) (ns / 1000000000u),
				 .tv_nsec = (long) (ns % 1000000000u)};
}

/* Open the directory holding `name` (relative to rootfd), creating missing
 * parents, never following a symlink. *ret_leaf points into `name`. */
static int open_parent(int rootfd, const char *name, int *ret_fd, const char **ret_leaf)
{
	_cleanup_close_ int fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
	const char *p = name;

	if (fd < 0)
		return -errno;
	for (;;) {
		const char *slash = strchr(p, '/');
		if (!slash)
			break;
		char comp[SNAP_NAME_MAX + 1];
		size_t n = (size_t) (slash - p);
		memcpy(comp, p, n);
		comp[n] = '\0';
		int sub = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0 && errno == ENOENT) {
			if (mkdirat(fd, comp, 0755) < 0 && errno != EEXIST)
				return snap_error(-errno, "cannot create the parent of \"%s\"",
						  name);
			sub = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (sub < 0)
			return snap_error(errno == ELOOP || errno == ENOTDIR ? -EBADMSG : -errno,
					  "a parent of \"%s\" is not a directory (symlink?)", name);
		close(fd);
		fd = sub;
		p = slash + 1;
	}
	*ret_fd = TAKE_FD(fd);
	*ret_leaf = p;
	return 0;
}

static int gen_parent(struct unpack_gen *g, const char *name, int *ret_fd, const char **ret_leaf)
{
	const char *slash = strrchr(name, '/');
	size_t plen = slash ? (size_t) (slash - name) : 0;

	if (g->parent_path && strlen(g->parent_path) == plen &&
	    strncmp(g->parent_path, name, plen) == 0) {
		*ret_fd = g->parent_fd;
		*ret_leaf = slash ? slash + 1 : name;
		return 0;
	}
	int fd, r = open_parent(g->rootfd, name, &fd, ret_leaf);
	if (r < 0)
		return r;
	free(g->parent_path);
	if (g->parent_fd >= 0)
		close(g->parent_fd);
	g->parent_path = strndup(name, plen);
	g->parent_fd = fd;
	if (!g->parent_path)
		return -ENOMEM;
	*ret_fd = fd;
	return 0;
}

static int start_file(struct unpack_gen *g, uint64_t i)
{
	const struct snap_disk_entry *e = &g->r->idx->entries[i];
	const char *name = g->r->idx->names[i], *leaf;
	int pfd, r;

	r = gen_parent(g, name, &pfd, &leaf);
	if (r < 0)
		return r;
	_cleanup_close_ int fd =
		openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return snap_error(-errno, "cannot create \"%s\"", name);
	if (ftruncate(fd, (off_t) le64(e->size)) < 0)
		return snap_error(-errno, "cannot size \"%s\"", name);
	struct rd_target *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->fd = TAKE_FD(fd);
	t->finalize = true;
	t->mode = le32(e->mode);
	t->mtime_ns = le64(e->mtime_ns);
	t->r = g->r;
	atomic_init(&t->refs, 1);
	g->cur = t;
	g->chunk_in_entry = 0;
	return 0;
}

static int make_dir(struct unpack_gen *g, uint64_t i)
{
	const char *name = g->r->idx->names[i], *leaf;
	int pfd, r;
	struct stat st;

	r = gen_parent(g, name, &pfd, &leaf);
	if (r < 0)
		return r;
	/* 0700 until the end, so read-only directories can still be filled. */
	if (mkdirat(pfd, leaf, 0700) < 0) {
		/* Created already as the missing parent of an earlier entry. */
		if (errno != EEXIST || fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode))
			return snap_error(-errno, "cannot create directory \"%s\"", name);
	}
	return 0;
}

static int unpack_next(void *gen, struct rd_task *t)
{
	struct unpack_gen *g = gen;
	const struct snap_index *idx = g->r->idx;
	int r;

	for (;;) {
		if (g->cur) {
			const struct snap_disk_entry *e = &idx->entries[g->entry];
			if (g->chunk_in_entry < le32(e->chunk_count)) {
				rd_fill_task(g->r, g->entry, g->chunk_in_entry++, 0, UINT64_MAX, t);
				t->sink = RD_SINK_PWRITE;
				t->target = g->cur;
				atomic_fetch_add(&g->cur->refs, 1);
				return 1;
			}
			rd_target_unref(TAKE_PTR(g->cur));
			g->entry++;
		}
		if (g->entry >= idx->entry_count)
			return 0;
		switch (le16(idx->entries[g->entry].kind)) {
		case SNAP_KIND_FILE:
			r = start_file(g, g->entry);
			if (r < 0)
				return r;
			continue; /* g->entry advances once its chunks are queued */
		case SNAP_KIND_DIR:
			r = make_dir(g, g->entry);
			if (r < 0)
				return r;
			break;
		default:
			break; /* symlinks come last */
		}
		g->entry++;
	}
}

static int make_symlink(struct snap_reader *r, int rootfd, uint64_t i)
{
	const char *name = r->idx->names[i], *leaf;
	uint64_t size = le64(r->idx->entries[i].size);
	char target[SNAP_NAME_MAX + 1];
	_cleanup_close_ int pfd = -EBADF;
	ssize_t n;
	int ret;

	n = snap_reader_pread(r, i, target, size, 0);
	if (n < 0)
		return (int) n;
	target[n] = '\0';
	if (memchr(target, '\0', (size_t) n))
		return snap_error(-EBADMSG, "symlink \"%s\" has a NUL byte in its target", name);
	ret = open_parent(rootfd, name, &pfd, &leaf);
	if (ret < 0)
		return ret;
	if (symlinkat(target, pfd, leaf) < 0)
		return snap_error(-errno, "cannot create symlink \"%s\"", name);
	uint64_t mt = le64(r->idx->entries[i].mtime_ns);
	if (mt) {
		struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, ns_to_ts(mt)};
		(void) utimensat(pfd, leaf, ts, AT_SYMLINK_NOFOLLOW);
	}
	return 0;
}

static int finish_dir(struct snap_reader *r, int rootfd, uint64_t i)
{
	const char *name = r->idx->names[i], *leaf;
	_cleanup_close_ int pfd = -EBADF, fd = -EBADF;
	int ret;

	ret = open_parent(rootfd, name, &pfd, &leaf);
	if (ret < 0)
		return ret;
	fd = openat(pfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fchmod(fd, le32(r->idx->entries[i].mode)) < 0)
		return snap_error(-errno, "cannot set the mode of directory \"%s\"", name);
	uint64_t mt = le64(r->idx->entries[i].mtime_ns);
	if (mt) {
		struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, ns_to_ts(mt)};
		(void) futimens(fd, ts);
	}
	return 0;
}

static int unpack_into(struct snap_reader *r, int rootfd)
{
	struct unpack_gen g = {.r = r, .rootfd = rootfd, .parent_fd = -1};
	int ret;

	r->progress_done = 0;
	r->progress_total = 0;
	for (uint64_t i = 0; i < r->idx->entry_count; i++)
		r->progress_total += le64(r->idx->entries[i].size);
	atomic_store(&r->deferred_err, 0);
	ret = rd_run(r, unpack_next, &g);
	rd_target_unref(g.cur);
	free(g.parent_path);
	if (g.parent_fd >= 0)
		close(g.parent_fd);
	if (ret < 0)
		return ret;
	ret = atomic_load(&r->deferred_err);
	if (ret < 0)
		return snap_error(ret, "cannot finish writing the unpacked files");
	for (uint64_t i = 0; i < r->idx->entry_count; i++)
		if (le16(r->idx->entries[i].kind) == SNAP_KIND_SYMLINK) {
			ret = make_symlink(r, rootfd, i);
			if (ret < 0)
				return ret;
		}
	/* Children before parents: a read-only parent must stay writable until then. */
	for (uint64_t i = r->idx->entry_count; i-- > 0;)
		if (le16(r->idx->entries[i].kind) == SNAP_KIND_DIR) {
			ret = finish_dir(r, rootfd, i);
			if (ret < 0)
				return ret;
		}
	return 0;
}

static bool dir_is_empty(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return false;
	}
	struct dirent *de;
	bool empty = true;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			empty = false;
			break;
		}
	closedir(d);
	return empty;
}

int snap_reader_unpack(struct snap_reader *r, const char *dir, unsigned flags)
{
	_cleanup_free_ char *d = strdup(dir), *b = strdup(dir), *tmp = NULL;
	_cleanup_close_ int parentfd = -EBADF, rootfd = -EBADF;
	struct stat st;
	bool replace = false;
	int ret;

	snap_error_clear();
	if (!d || !b)
		return -ENOMEM;
	if (flags != 0)
		return snap_error(-EINVAL, "unknown unpack flags");
	const char *parent = dirname(d), *base = basename(b);
	if (strcmp(base, "/") == 0 || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return snap_error(-EINVAL, "\"%s\" cannot be an unpack target", dir);
	parentfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (parentfd < 0)
		return snap_error(-errno, "cannot open directory \"%s\"", parent);
	if (fstatat(parentfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!S_ISDIR(st.st_mode) || !dir_is_empty(parentfd, base))
			return snap_error(-EEXIST, "target exists and is not an empty directory");
		replace = true;
	} else if (errno != ENOENT) {
		return snap_error(-errno, "cannot stat the target");
	}

	if (asprintf(&tmp, "%s/.%s.unpack-XXXXXX", parent, base) < 0) {
		tmp = NULL;
		return -ENOMEM;
	}
	if (!mkdtemp(tmp))
		return snap_error(-errno, "cannot create a temporary directory in \"%s\"", parent);
	const char *tmp_name = strrchr(tmp, '/') + 1;
	rootfd = openat(parentfd, tmp_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	ret = rootfd < 0 ? -errno : unpack_into(r, rootfd);
	if (ret >= 0) {
		if (replace)
			ret = renameat(parentfd, tmp_name, parentfd, base);
		else
			ret = renameat2(parentfd, tmp_name, parentfd, base, RENAME_NOREPLACE);
		if (ret < 0)
			ret = snap_error(-errno, "cannot rename the unpacked tree into place");
	}
	if (ret < 0)
		(void) cs_rm_rf_at(parentfd, tmp_name);
	return ret;
}
