/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Round trips through the snapshot writer and reader: entry sizes 0, 1,
 * chunk-1, chunk, chunk+1 and more, in random, compressible and all-zero
 * data, added from buffers, pipes and pushed piecewise; read back whole, by
 * range, into a file and into a pipe; a multi-GiB sparse entry; a directory
 * tree with modes and symlinks. Every read runs on both I/O paths (io_uring
 * and the pread fallback).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>

#include "snap-test-util.h"
#include "stoke-snapshot.h"

static const unsigned paths[] = {0, SNAP_READER_FORCE_PREAD};

static struct snap_reader *open_reader(const char *file, unsigned flags)
{
	struct snap_reader *r = NULL;
	struct snap_reader_options o = {.flags = flags, .threads = 3};
	int ret = snap_reader_open(file, &o, &r);
	if (ret < 0)
		T_FAILF("snap_reader_open(%s): %s: %s", file, strerror(-ret), snap_last_error());
	if (flags & SNAP_READER_FORCE_PREAD)
		ASSERT_STREQ(snap_reader_backend(r), "pread");
	return r;
}

struct feeder {
	int fd;
	const uint8_t *data;
	size_t len;
};

static void *feed(void *arg)
{
	struct feeder *f = arg;
	/* Odd-sized writes, so chunk boundaries never line up with them. */
	for (size_t o = 0; o < f->len;) {
		size_t n = f->len - o < 7777 ? f->len - o : 7777;
		if (cs_write_all(f->fd, f->data + o, n) < 0)
			break;
		o += n;
	}
	close(f->fd);
	return NULL;
}

struct drainer {
	int fd;
	uint8_t *buf;
	size_t cap, len;
};

static void *drain(void *arg)
{
	struct drainer *d = arg;
	ssize_t n;
	while ((n = read(d->fd, d->buf + d->len, d->cap - d->len + 1)) > 0)
		d->len += n;
	return NULL;
}

static void check_entry(struct snap_reader *r, const char *name, const uint8_t *want, size_t len)
{
	size_t idx;
	struct snap_entry_info info;

	ASSERT_OK(snap_reader_find(r, name, &idx));
	ASSERT_OK(snap_reader_entry(r, idx, &info));
	ASSERT_EQ(info.size, len);
	ASSERT_EQ(info.kind, SNAP_KIND_FILE);

	/* whole */
	uint8_t *got = malloc(len + 16);
	ASSERT_TRUE(got);
	ASSERT_EQ(snap_reader_pread(r, idx, got, len + 16, 0), len);
	ASSERT_TRUE(len == 0 || memcmp(got, want, len) == 0);

	/* ranges: across boundaries, at the end, past the end */
	uint64_t starts[] = {0, 1, len / 2, len > 3 ? len - 3 : 0, len, len + 5};
	for (size_t i = 0; i < ELEMENTSOF(starts); i++) {
		size_t n = 70001;
		ssize_t k = snap_reader_pread(r, idx, got, n < len + 16 ? n : len + 16, starts[i]);
		ASSERT_OK(k);
		size_t expect = starts[i] >= len ? 0 : len - starts[i];
		size_t asked = n < len + 16 ? n : len + 16;
		if (expect > asked)
			expect = asked;
		ASSERT_EQ(k, expect);
		ASSERT_TRUE(k == 0 || memcmp(got, want + starts[i], k) == 0);
	}

	/* into a seekable file (parallel pwrite), starting at a non-zero offset */
	int mfd = memfd_create("x", MFD_CLOEXEC);
	ASSERT_TRUE(mfd >= 0);
	ASSERT_OK(cs_write_all(mfd, "head", 4));
	ASSERT_OK(snap_reader_extract_fd(r, idx, mfd));
	struct stat st;
	ASSERT_OK(fstat(mfd, &st));
	ASSERT_EQ(st.st_size, len + 4);
	ASSERT_EQ(cs_pread_all(mfd, got, len, 4), len);
	ASSERT_TRUE(len == 0 || memcmp(got, want, len) == 0);
	close(mfd);

	/* into a pipe (in-order writes) */
	int p[2];
	ASSERT_OK(pipe2(p, O_CLOEXEC));
	struct drainer d = {.fd = p[0], .buf = got, .cap = len + 15};
	pthread_t th;
	ASSERT_EQ(pthread_create(&th, NULL, drain, &d), 0);
	ASSERT_OK(snap_reader_extract_fd(r, idx, p[1]));
	close(p[1]);
	pthread_join(th, NULL);
	close(p[0]);
	ASSERT_EQ(d.len, len);
	ASSERT_TRUE(len == 0 || memcmp(got, want, len) == 0);
	free(got);
}

static void roundtrip_sizes(uint32_t cs)
{
	size_t sizes[] = {0, 1, cs - 1, cs, cs + 1, 3 * (size_t) cs + 17};
	char *file = test_path("sizes.snap");
	struct snap_writer *w = NULL;
	struct snap_writer_options o = {.chunk_size = cs, .threads = 3};
	size_t maxlen = 3 * (size_t) cs + 17;
	uint8_t *data[4][ELEMENTSOF(sizes)];

	ASSERT_OK(snap_writer_open(file, &o, &w));
	for (int kind = 0; kind < 4; kind++)
		for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
			char name[64];
			data[kind][i] = malloc(maxlen);
			fill_pattern(data[kind][i], sizes[i], kind, i + 7 * kind);

			snprintf(name, sizeof(name), "buf/%d/%zu", kind, sizes[i]);
			ASSERT_OK(snap_writer_add_buffer(w, name, 0644, data[kind][i], sizes[i]));

			/* the same bytes from a pipe: length unknown to the writer */
			int p[2];
			ASSERT_OK(pipe2(p, O_CLOEXEC));
			struct feeder f = {p[1], data[kind][i], sizes[i]};
			pthread_t th;
			ASSERT_EQ(pthread_create(&th, NULL, feed, &f), 0);
			snprintf(name, sizeof(name), "pipe/%d/%zu", kind, sizes[i]);
			ASSERT_OK(snap_writer_add_fd(w, name, 0600, p[0]));
			pthread_join(th, NULL);
			close(p[0]);

			/* pushed in uneven pieces */
			snprintf(name, sizeof(name), "push/%d/%zu", kind, sizes[i]);
			ASSERT_OK(snap_writer_begin_entry(w, name, 0600));
			ASSERT_ERR(snap_writer_begin_entry(w, "other", 0600), -EBUSY);
			for (size_t off = 0; off < sizes[i];) {
				size_t n = (off * 31 + 1000) % 50000 + 1;
				if (n > sizes[i] - off)
					n = sizes[i] - off;
				ASSERT_OK(snap_writer_write(w, data[kind][i] + off, n));
				off += n;
			}
			ASSERT_OK(snap_writer_end_entry(w));
		}
	ASSERT_OK(snap_writer_commit(w));
	snap_writer_free(w);

	for (size_t pi = 0; pi < ELEMENTSOF(paths); pi++) {
		struct snap_reader *r = open_reader(file, paths[pi]);
		ASSERT_EQ(snap_reader_chunk_size(r), cs);
		ASSERT_EQ(snap_reader_entry_count(r), 4 * ELEMENTSOF(sizes) * 3);
		for (int kind = 0; kind < 4; kind++)
			for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
				char name[64];
				const char *srcs[] = {"buf", "pipe", "push"};
				for (int s = 0; s < 3; s++) {
					snprintf(name, sizeof(name), "%s/%d/%zu", srcs[s], kind,
						 sizes[i]);
					check_entry(r, name, data[kind][i], sizes[i]);
				}
			}
		ASSERT_OK(snap_reader_verify(r));
		struct snap_stats st;
		snap_reader_get_stats(r, &st);
		ASSERT_TRUE(st.bytes_read > 0 && st.bytes_decompressed > 0 && st.chunks > 0);
		/* all-zero entries are holes: nothing stored */
		size_t idx;
		struct snap_entry_info info;
		ASSERT_OK(snap_reader_find(r, "buf/2/1", &idx) < 0 ? -1 : 0);
		ASSERT_OK(snap_reader_entry(r, idx, &info));
		ASSERT_EQ(info.stored_size, 0);
		/* random data is stored raw: never larger than the data */
		char big[64];
		snprintf(big, sizeof(big), "buf/0/%zu", (size_t) cs + 1);
		ASSERT_OK(snap_reader_find(r, big, &idx));
		ASSERT_OK(snap_reader_entry(r, idx, &info));
		ASSERT_EQ(info.stored_size, info.size);
		snap_reader_free(r);
	}
	for (int kind = 0; kind < 4; kind++)
		for (size_t i = 0; i < ELEMENTSOF(sizes); i++)
			free(data[kind][i]);
	unlink(file);
	free(file);
}

static void test_sizes_small_chunks(void)
{
	roundtrip_sizes(64 * 1024);
}

static void test_sizes_default_chunks(void)
{
	roundtrip_sizes(SNAP_DEFAULT_CHUNK_SIZE);
}

/* A 6 GiB sparse file with a few data islands: holes are never read or
 * stored, and come back as holes. */
static void test_sparse_multi_gib(void)
{
	const uint64_t size = UINT64_C(6) << 30;
	const uint64_t at[] = {0, (UINT64_C(2) << 30) + 12345, (UINT64_C(5) << 30) - 100,
			       size - 1000};
	uint8_t island[5000], got[5000];
	char *src = test_path("sparse.src"), *file = test_path("sparse.snap");
	struct snap_writer *w = NULL;

	int fd = open(src, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_TRUE(fd >= 0);
	ASSERT_OK(ftruncate(fd, (off_t) size));
	for (size_t i = 0; i < ELEMENTSOF(at); i++) {
		fill_pattern(island, sizeof(island), i % 2, i);
		size_t n = at[i] + sizeof(island) > size ? size - at[i] : sizeof(island);
		ASSERT_EQ(pwrite(fd, island, n, (off_t) at[i]), n);
	}
	ASSERT_OK(snap_writer_open(file, NULL, &w));
	ASSERT_OK(snap_writer_add_fd(w, "big", 0600, fd));
	ASSERT_OK(snap_writer_commit(w));
	snap_writer_free(w);
	close(fd);
	unlink(src);

	struct stat st;
	ASSERT_OK(stat(file, &st));
	ASSERT_TRUE(st.st_size < 1 << 20); /* only the islands and the index */

	for (size_t pi = 0; pi < ELEMENTSOF(paths); pi++) {
		struct snap_reader *r = open_reader(file, paths[pi]);
		struct snap_entry_info info;
		ASSERT_OK(snap_reader_entry(r, 0, &info));
		ASSERT_EQ(info.size, size);
		for (size_t i = 0; i < ELEMENTSOF(at); i++) {
			fill_pattern(island, sizeof(island), i % 2, i);
			size_t n = at[i] + sizeof(island) > size ? size - at[i] : sizeof(island);
			ASSERT_EQ(snap_reader_pread(r, 0, got, sizeof(got), at[i]), n);
			ASSERT_TRUE(memcmp(got, island, n) == 0);
			/* the bytes just before an island are a hole: zeros */
			if (at[i] >= 100) {
				ASSERT_EQ(snap_reader_pread(r, 0, got, 100, at[i] - 100), 100);
				for (int k = 0; k < 100; k++)
					ASSERT_EQ(got[k], 0);
			}
		}
		char *out = test_path("sparse.out");
		int ofd = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		ASSERT_TRUE(ofd >= 0);
		ASSERT_OK(snap_reader_extract_fd(r, 0, ofd));
		ASSERT_OK(fstat(ofd, &st));
		ASSERT_EQ(st.st_size, size);
		ASSERT_TRUE(st.st_blocks * 512 < 64 << 20); /* holes stayed holes */
		for (size_t i = 0; i < ELEMENTSOF(at); i++) {
			fill_pattern(island, sizeof(island), i % 2, i);
			size_t n = at[i] + sizeof(island) > size ? size - at[i] : sizeof(island);
			ASSERT_EQ(cs_pread_all(ofd, got, n, (off_t) at[i]), n);
			ASSERT_TRUE(memcmp(got, island, n) == 0);
		}
		close(ofd);
		unlink(out);
		free(out);
		ASSERT_OK(snap_reader_verify(r));
		snap_reader_free(r);
	}
	unlink(file);
	free(src);
	free(file);
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	ASSERT_TRUE(fd >= 0);
	ASSERT_OK(cs_write_all(fd, data, len));
	ASSERT_OK(fchmod(fd, mode));
	close(fd);
}

static void check_same(const char *a, const char *b)
{
	struct stat sa, sb;
	ASSERT_OK(lstat(a, &sa));
	ASSERT_OK(lstat(b, &sb));
	ASSERT_EQ(sa.st_mode, sb.st_mode);
	if (S_ISREG(sa.st_mode)) {
		size_t la, lb;
		uint8_t *da = read_whole(a, &la), *db = read_whole(b, &lb);
		ASSERT_EQ(la, lb);
		ASSERT_TRUE(memcmp(da, db, la) == 0);
		ASSERT_EQ(sa.st_mtim.tv_sec, sb.st_mtim.tv_sec);
		free(da);
		free(db);
	} else if (S_ISLNK(sa.st_mode)) {
		char ta[256] = "", tb[256] = "";
		ASSERT_TRUE(readlink(a, ta, sizeof(ta) - 1) > 0);
		ASSERT_TRUE(readlink(b, tb, sizeof(tb) - 1) > 0);
		ASSERT_STREQ(ta, tb);
	}
}

static void test_tree(void)
{
	char *src = test_path("tree"), *file = test_path("tree.snap"), *out = test_path("out");
	const char *files[] = {"a", "d/b", "d/e/c", "ro/f", "empty"};
	const mode_t modes[] = {0644, 0600, 0755, 0444, 0640};
	uint8_t buf[200000];
	char p[512], q[512];

	ASSERT_OK(mkdir(src, 0755));
	snprintf(p, sizeof(p), "%s/d", src);
	ASSERT_OK(mkdir(p, 0750));
	snprintf(p, sizeof(p), "%s/d/e", src);
	ASSERT_OK(mkdir(p, 0700));
	snprintf(p, sizeof(p), "%s/ro", src);
	ASSERT_OK(mkdir(p, 0755));
	for (size_t i = 0; i < ELEMENTSOF(files); i++) {
		size_t len = i == 4 ? 0 : 1000 * (i + 1) * (i + 1) * 7;
		fill_pattern(buf, len, (int) i % 4, i);
		snprintf(p, sizeof(p), "%s/%s", src, files[i]);
		write_file(p, buf, len, modes[i]);
	}
	snprintf(p, sizeof(p), "%s/d/link", src);
	ASSERT_OK(symlink("../a", p));
	snprintf(p, sizeof(p), "%s/dangling", src);
	ASSERT_OK(symlink("/nonexistent/x", p));
	snprintf(p, sizeof(p), "%s/ro", src);
	ASSERT_OK(chmod(p, 0555)); /* read-only directory: unpack must still fill it */

	struct snap_writer *w = NULL;
	ASSERT_OK(snap_writer_open(file, &(struct snap_writer_options){.chunk_size = 4096}, &w));
	ASSERT_OK(snap_writer_add_tree(w, NULL, src));
	ASSERT_OK(snap_writer_commit(w));
	snap_writer_free(w);

	const char *all[] = {"a",      "d",  "d/b",  "d/e",   "d/e/c",
			     "d/link", "ro", "ro/f", "empty", "dangling"};
	for (size_t pi = 0; pi < ELEMENTSOF(paths); pi++) {
		struct snap_reader *r = open_reader(file, paths[pi]);
		ASSERT_EQ(snap_reader_entry_count(r), ELEMENTSOF(all));
		ASSERT_OK(snap_reader_unpack(r, out, 0));
		for (size_t i = 0; i < ELEMENTSOF(all); i++) {
			snprintf(p, sizeof(p), "%s/%s", src, all[i]);
			snprintf(q, sizeof(q), "%s/%s", out, all[i]);
			check_same(p, q);
		}
		/* an existing, non-empty target is refused and left alone */
		ASSERT_ERR(snap_reader_unpack(r, out, 0), -EEXIST);
		snprintf(q, sizeof(q), "%s/a", out);
		ASSERT_OK(access(q, F_OK));
		snprintf(q, sizeof(q), "%s/ro", out);
		ASSERT_OK(chmod(q, 0755));
		ASSERT_OK(cs_rm_rf_at(AT_FDCWD, out));
		/* an empty directory is replaced */
		ASSERT_OK(mkdir(out, 0755));
		ASSERT_OK(snap_reader_unpack(r, out, 0));
		snprintf(q, sizeof(q), "%s/d/e/c", out);
		ASSERT_OK(access(q, F_OK));
		snprintf(q, sizeof(q), "%s/ro", out);
		ASSERT_OK(chmod(q, 0755));
		ASSERT_OK(cs_rm_rf_at(AT_FDCWD, out));
		snap_reader_free(r);
	}
	/* directory entries cannot be read as data */
	struct snap_reader *r = open_reader(file, 0);
	size_t idx;
	ASSERT_OK(snap_reader_find(r, "d", &idx));
	ASSERT_ERR(snap_reader_pread(r, idx, buf, 10, 0), -EISDIR);
	ASSERT_ERR(snap_reader_find(r, "nope", &idx), -ENOENT);
	snap_reader_free(r);
	snprintf(p, sizeof(p), "%s/ro", src);
	ASSERT_OK(chmod(p, 0755));
	free(src);
	free(file);
	free(out);
}

static size_t count_dir(const char *dir)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	ASSERT_TRUE(d);
	for (struct dirent *de; (de = readdir(d));)
		n += de->d_name[0] != '.' || (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."));
	closedir(d);
	return n;
}

static void test_writer_abort_and_names(void)
{
	char *sub = test_path("abort");
	ASSERT_OK(mkdir(sub, 0755));
	char *file;
	ASSERT_TRUE(asprintf(&file, "%s/x.snap", sub) > 0);
	struct snap_writer *w = NULL;

	ASSERT_OK(snap_writer_open(file, NULL, &w));
	ASSERT_EQ(count_dir(sub), 1); /* the temporary file */
	ASSERT_ERR(snap_writer_add_buffer(w, "../x", 0644, "x", 1), -EINVAL);
	ASSERT_ERR(snap_writer_add_buffer(w, "/abs", 0644, "x", 1), -EINVAL);
	ASSERT_ERR(snap_writer_add_buffer(w, "a/../b", 0644, "x", 1), -EINVAL);
	ASSERT_ERR(snap_writer_add_buffer(w, "a//b", 0644, "x", 1), -EINVAL);
	ASSERT_ERR(snap_writer_add_buffer(w, "", 0644, "x", 1), -EINVAL);
	ASSERT_ERR(snap_writer_add_symlink(w, "l", ""), -EINVAL);
	ASSERT_OK(snap_writer_add_buffer(w, "a", 0644, "x", 1));
	ASSERT_ERR(snap_writer_add_buffer(w, "a", 0644, "x", 1), -EEXIST);
	ASSERT_ERR(snap_writer_write(w, "x", 1), -EINVAL);
	ASSERT_OK(snap_writer_begin_entry(w, "open", 0644));
	ASSERT_ERR(snap_writer_commit(w), -EBUSY);
	snap_writer_abort(w);
	ASSERT_EQ(count_dir(sub), 0); /* nothing left: no final file, no temporary */

	/* a commit replaces an existing file atomically */
	write_file(file, "old", 3, 0644);
	ASSERT_OK(snap_writer_open(file, NULL, &w));
	ASSERT_OK(snap_writer_add_buffer(w, "a", 0644, "new", 3));
	ASSERT_OK(snap_writer_commit(w));
	snap_writer_free(w);
	ASSERT_EQ(count_dir(sub), 1);
	struct snap_reader *r = open_reader(file, 0);
	char got[3];
	ASSERT_EQ(snap_reader_pread(r, 0, got, 3, 0), 3);
	ASSERT_TRUE(memcmp(got, "new", 3) == 0);
	snap_reader_free(r);

	ASSERT_ERR(snap_writer_open(file, &(struct snap_writer_options){.chunk_size = 5000}, &w),
		   -EINVAL);
	free(file);
	free(sub);
}

int main(void)
{
	make_test_dir();
	RUN_TEST(test_writer_abort_and_names);
	RUN_TEST(test_sizes_small_chunks);
	RUN_TEST(test_sizes_default_chunks);
	RUN_TEST(test_tree);
	RUN_TEST(test_sparse_multi_gib);
	return 0;
}
