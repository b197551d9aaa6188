/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Damaged and hostile snapshot files: every truncation, a flipped bit in
 * every byte, wrong magic, a newer major version, an index outside the file,
 * absurd counts and sizes, entry names that escape the target directory,
 * duplicate names, and symlink tricks at unpack. None may pass as good: the
 * reader refuses to open the file, or the read of the damaged chunk fails;
 * never is wrong data returned, and nothing is written outside the target.
 * Forged files get their checksums recomputed, so each check is reached.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include <xxhash.h>

#include "format.h"
#include "snap-test-util.h"
#include "stoke-snapshot.h"

static uint8_t *good;
static size_t good_len;
static uint8_t content[3][20000];
static const char *names[3] = {"aa/one", "aa/two", "three"};

/* The index and the footer sit at any byte offset of a file (chunk payloads
 * and names have any length), so their fields are read and written byte-wise:
 * a cast to the struct would be a misaligned access (UBSan reports it).
 * GET/SET(p, struct, field) work on the struct at `p`, little-endian. */
static uint64_t get_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	while (n--)
		v = v << 8 | p[n];
	return v;
}

static void set_le(uint8_t *p, size_t n, uint64_t v)
{
	for (size_t i = 0; i < n; i++, v >>= 8)
		p[i] = (uint8_t) v;
}

#define GET(p, type, field)    get_le((p) + offsetof(type, field), sizeof(((type *) 0)->field))
#define SET(p, type, field, v) set_le((p) + offsetof(type, field), sizeof(((type *) 0)->field), v)

static void build_good(void)
{
	char *file = test_path("good.snap");
	struct snap_writer *w = NULL;

	fill_pattern(content[0], sizeof(content[0]), 1, 1); /* compressible: zstd chunks */
	fill_pattern(content[1], sizeof(content[1]), 0, 2); /* random: raw chunks */
	fill_pattern(content[2], sizeof(content[2]), 3, 3); /* mixed, with holes */
	ASSERT_OK(snap_writer_open(file, &(struct snap_writer_options){.chunk_size = 4096}, &w));
	for (int i = 0; i < 3; i++)
		ASSERT_OK(
			snap_writer_add_buffer(w, names[i], 0644, content[i], sizeof(content[i])));
	ASSERT_OK(snap_writer_commit(w));
	snap_writer_free(w);
	good = read_whole(file, &good_len);
	unlink(file);
	free(file);
}

static int try_open(const uint8_t *data, size_t len, unsigned flags, struct snap_reader **ret)
{
	int fd = memfd_with(data, len);
	struct snap_reader_options o = {.flags = flags, .threads = 2};
	int r = snap_reader_open_fd(fd, &o, ret);
	if (r < 0)
		close(fd);
	return r < 0 ? r : fd;
}

/* Opening must fail with `err`, and the message must mention `what`. */
static void expect_refused(const uint8_t *data, size_t len, int err, const char *what)
{
	struct snap_reader *r = NULL;
	int fd = try_open(data, len, 0, &r);
	if (fd >= 0)
		T_FAILF("damaged file (%s) was opened", what);
	ASSERT_EQ(fd, err);
	if (!strstr(snap_last_error(), what))
		T_FAILF("error \"%s\" does not mention \"%s\"", snap_last_error(), what);
}

/* Either open fails, or reading the entries gives exactly the original bytes
 * or an error, and at least one read or verify fails. */
static void expect_not_good(const uint8_t *data, size_t len, unsigned flags, const char *what)
{
	struct snap_reader *r = NULL;
	int fd = try_open(data, len, flags, &r);
	if (fd < 0)
		return;
	bool failed = snap_reader_verify(r) < 0;
	static uint8_t got[20000];
	for (size_t i = 0; i < snap_reader_entry_count(r); i++) {
		struct snap_entry_info info;
		ASSERT_OK(snap_reader_entry(r, i, &info));
		ssize_t n = snap_reader_pread(r, i, got, sizeof(got), 0);
		if (n < 0) {
			ASSERT_EQ(n, -EBADMSG);
			failed = true;
			continue;
		}
		int k = 0;
		while (k < 3 && strcmp(names[k], info.name))
			k++;
		ASSERT_TRUE(k < 3);
		ASSERT_EQ(n, sizeof(content[k]));
		if (memcmp(got, content[k], n) != 0)
			T_FAILF("%s: entry %s read back wrong data", what, info.name);
	}
	snap_reader_free(r);
	close(fd);
	if (!failed)
		T_FAILF("%s: damaged file passed as good", what);
}

static void test_good_opens(void)
{
	struct snap_reader *r = NULL;
	int fd = try_open(good, good_len, 0, &r);
	ASSERT_OK(fd);
	ASSERT_OK(snap_reader_verify(r));
	snap_reader_free(r);
	close(fd);
}

static void test_truncated(void)
{
	for (size_t len = 0; len < good_len; len++)
		expect_refused(good, len, -EBADMSG, len < 128 ? "too small" : "");
	/* appended garbage is damage too */
	uint8_t *longer = malloc(good_len + 1);
	memcpy(longer, good, good_len);
	longer[good_len] = 0;
	expect_refused(longer, good_len + 1, -EBADMSG, "footer");
	free(longer);
}

static void test_bit_flips(void)
{
	uint8_t *bad = malloc(good_len);
	uint64_t data_end =
		GET(good + good_len - SNAP_FOOTER_SIZE, struct snap_disk_footer, index_offset);
	/* Every byte of the header, index and footer; every 7th of chunk data
	 * (each chunk still gets dozens of flips) to keep the test short. */
	for (size_t i = 0; i < good_len; i += i >= 64 && i + 7 < data_end ? 7 : 1) {
		char what[64];
		memcpy(bad, good, good_len);
		bad[i] ^= (uint8_t) (1u << (i % 8));
		snprintf(what, sizeof(what), "bit %zu of byte %zu", i % 8, i);
		/* alternate the I/O path so both see damaged chunks */
		expect_not_good(bad, good_len, i % 2 ? SNAP_READER_FORCE_PREAD : 0, what);
	}
	free(bad);
}

static uint8_t *copy_good(void)
{
	uint8_t *b = malloc(good_len);
	memcpy(b, good, good_len);
	return b;
}

static struct snap_disk_header *hdr(uint8_t *b)
{
	return (struct snap_disk_header *) b;
}

/* Where the footer, the index and entry `i` of a copy of the good file are
 * (unaligned: use GET and SET). */
static uint8_t *ftr(uint8_t *b)
{
	return b + good_len - SNAP_FOOTER_SIZE;
}

static uint8_t *idx(uint8_t *b)
{
	return b + GET(ftr(b), struct snap_disk_footer, index_offset);
}

static uint8_t *entry(uint8_t *b, size_t i)
{
	return idx(b) + sizeof(struct snap_disk_index) + i * sizeof(struct snap_disk_entry);
}

/* Recompute every checksum after a forgery, so that the check under test is
 * the one that must catch it. */
static void reseal(uint8_t *b, size_t index_len)
{
	struct snap_disk_header *h = hdr(b);
	uint8_t *f = ftr(b);
	h->checksum = htole64(XXH3_64bits(h, offsetof(struct snap_disk_header, checksum)));
	if (index_len)
		SET(f, struct snap_disk_footer, index_checksum, XXH3_64bits(idx(b), index_len));
	SET(f, struct snap_disk_footer, checksum,
	    XXH3_64bits(f, offsetof(struct snap_disk_footer, checksum)));
}

static void test_wrong_magic(void)
{
	uint8_t *b = copy_good();
	memcpy(b, "NOTASNAP", 8);
	expect_refused(b, good_len, -EBADMSG, "magic");
	free(b);
}

static void test_newer_major(void)
{
	uint8_t *b = copy_good();
	hdr(b)->major = htole16(2);
	reseal(b, 0);
	expect_refused(b, good_len, -EPROTONOSUPPORT, "newer");
	free(b);
}

static void test_index_outside(void)
{
	const uint64_t offs[] = {0, 10, good_len, good_len + 4096, UINT64_MAX - 10};
	for (size_t i = 0; i < ELEMENTSOF(offs); i++) {
		uint8_t *b = copy_good();
		SET(ftr(b), struct snap_disk_footer, index_offset, offs[i]);
		reseal(b, 0);
		expect_refused(b, good_len, -EBADMSG, "outside the file");
		free(b);
	}
	uint8_t *b = copy_good();
	SET(ftr(b), struct snap_disk_footer, index_length, UINT64_C(1) << 40);
	reseal(b, 0);
	expect_refused(b, good_len, -EBADMSG, "absurd index length");
	free(b);
}

static void test_absurd_counts(void)
{
	size_t ilen = GET(ftr(good), struct snap_disk_footer, index_length);
	const uint64_t counts[] = {UINT64_C(1) << 40, UINT64_MAX, 4};
	for (size_t i = 0; i < ELEMENTSOF(counts); i++) {
		uint8_t *b = copy_good();
		SET(idx(b), struct snap_disk_index, entry_count, counts[i]);
		reseal(b, ilen);
		expect_refused(b, good_len, -EBADMSG, "absurd index counts");
		free(b);

		b = copy_good();
		SET(idx(b), struct snap_disk_index, chunk_count, counts[i]);
		reseal(b, ilen);
		expect_refused(b, good_len, -EBADMSG, "absurd index counts");
		free(b);
	}
	uint8_t *b = copy_good();
	SET(entry(b, 0), struct snap_disk_entry, size, UINT64_C(1) << 60);
	reseal(b, ilen);
	expect_refused(b, good_len, -EBADMSG, "absurd size");
	free(b);

	b = copy_good();
	SET(entry(b, 1), struct snap_disk_entry, chunk_count, 0xffffffff);
	reseal(b, ilen);
	expect_refused(b, good_len, -EBADMSG, "chunks for");
	free(b);

	b = copy_good();
	SET(entry(b, 2), struct snap_disk_entry, name_length, 0x7fffffff);
	reseal(b, ilen);
	expect_refused(b, good_len, -EBADMSG, "name out of bounds");
	free(b);
}

/* Replace entry `i`'s name with `name` (same length) and reseal. */
static uint8_t *with_name_len(size_t i, const char *name, size_t len)
{
	size_t ilen = GET(ftr(good), struct snap_disk_footer, index_length);
	uint8_t *b = copy_good();
	uint64_t ne = GET(idx(b), struct snap_disk_index, entry_count);
	uint64_t nc = GET(idx(b), struct snap_disk_index, chunk_count);
	uint8_t *nm = entry(b, ne) + nc * sizeof(struct snap_disk_chunk);
	ASSERT_EQ(GET(entry(b, i), struct snap_disk_entry, name_length), len);
	memcpy(nm + GET(entry(b, i), struct snap_disk_entry, name_offset), name, len);
	reseal(b, ilen);
	return b;
}

static uint8_t *with_name(size_t i, const char *name)
{
	return with_name_len(i, name, strlen(name));
}

static void test_escaping_names(void)
{
	/* names[0] is "aa/one" (6 bytes), names[2] "three" (5 bytes) */
	const char *bad6[] = {"../one", "/a/one", "aa/../", "aa//on", "./aone", "aa/one"};
	for (size_t i = 0; i < ELEMENTSOF(bad6) - 1; i++) {
		uint8_t *b = with_name(0, bad6[i]);
		expect_refused(b, good_len, -EBADMSG, "escapes the target directory");
		free(b);
	}
	uint8_t *b = with_name(1, "aa/one");
	expect_refused(b, good_len, -EBADMSG, "appears twice");
	free(b);
	b = with_name_len(2, "th\0ee", 5);
	expect_refused(b, good_len, -EBADMSG, "NUL");
	free(b);
}

static size_t count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	ASSERT_TRUE(d);
	for (struct dirent *de; (de = readdir(d));)
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

/* A symlink entry pointing outside, then entries "through" it: unpack fails,
 * writes nothing outside, and leaves no target and no temporary behind. */
static void test_symlink_tricks(void)
{
	char *outside = test_path("outside"), *file = test_path("trick.snap");
	char *parent = test_path("unpack"), *target = test_path("unpack/target");
	ASSERT_OK(mkdir(outside, 0755));
	ASSERT_OK(mkdir(parent, 0755));

	const char *links[] = {outside, "..", "../../..", "."};
	for (size_t i = 0; i < ELEMENTSOF(links); i++) {
		struct snap_writer *w = NULL;
		ASSERT_OK(snap_writer_open(file, NULL, &w));
		ASSERT_OK(snap_writer_add_symlink(w, "link", links[i]));
		ASSERT_OK(snap_writer_add_buffer(w, "link/evil", 0644, "pwned", 5));
		ASSERT_OK(snap_writer_add_dir(w, "link/dir", 0755));
		ASSERT_OK(snap_writer_commit(w));
		snap_writer_free(w);
		struct snap_reader *r = NULL;
		ASSERT_OK(snap_reader_open(file, NULL, &r));
		int ret = snap_reader_unpack(r, target, 0);
		ASSERT_TRUE(ret < 0);
		snap_reader_free(r);
		ASSERT_EQ(count_entries(outside), 0);
		ASSERT_EQ(count_entries(parent), 0); /* no target, no temporary */
		ASSERT_ERR(access(target, F_OK), -1);
	}
	/* a file entry where an earlier entry made a regular file: a parent is not a dir */
	struct snap_writer *w = NULL;
	ASSERT_OK(snap_writer_open(file, NULL, &w));
	ASSERT_OK(snap_writer_add_buffer(w, "f", 0644, "x", 1));
	ASSERT_OK(snap_writer_add_buffer(w, "f/g", 0644, "y", 1));
	ASSERT_OK(snap_writer_commit(w));
	snap_writer_free(w);
	struct snap_reader *r = NULL;
	ASSERT_OK(snap_reader_open(file, NULL, &r));
	ASSERT_TRUE(snap_reader_unpack(r, target, 0) < 0);
	snap_reader_free(r);
	ASSERT_EQ(count_entries(parent), 0);

	/* a damaged chunk fails the unpack: nothing is left under the target */
	ASSERT_OK(snap_writer_open(file, &(struct snap_writer_options){.chunk_size = 4096}, &w));
	for (int i = 0; i < 3; i++)
		ASSERT_OK(
			snap_writer_add_buffer(w, names[i], 0644, content[i], sizeof(content[i])));
	ASSERT_OK(snap_writer_commit(w));
	snap_writer_free(w);
	int fd = open(file, O_RDWR | O_CLOEXEC);
	ASSERT_TRUE(fd >= 0);
	uint8_t byte;
	ASSERT_EQ(pread(fd, &byte, 1, 64 + 100), 1);
	byte ^= 0x10;
	ASSERT_EQ(pwrite(fd, &byte, 1, 64 + 100), 1);
	close(fd);
	ASSERT_OK(snap_reader_open(file, NULL, &r));
	ASSERT_ERR(snap_reader_unpack(r, target, 0), -EBADMSG);
	ASSERT_TRUE(strstr(snap_last_error(), "checksum mismatch") != NULL);
	snap_reader_free(r);
	ASSERT_EQ(count_entries(parent), 0);

	free(outside);
	free(file);
	free(parent);
	free(target);
}

static void test_not_a_snapshot(void)
{
	struct snap_reader *r = NULL;
	char *dir = test_path("");
	ASSERT_ERR(snap_reader_open(dir, NULL, &r), -EBADMSG);
	ASSERT_ERR(snap_reader_open("/nonexistent/x.snap", NULL, &r), -ENOENT);
	uint8_t zeros[4096] = {0};
	expect_refused(zeros, sizeof(zeros), -EBADMSG, "magic");
	free(dir);
}

int main(void)
{
	make_test_dir();
	build_good();
	RUN_TEST(test_good_opens);
	RUN_TEST(test_truncated);
	RUN_TEST(test_wrong_magic);
	RUN_TEST(test_newer_major);
	RUN_TEST(test_index_outside);
	RUN_TEST(test_absurd_counts);
	RUN_TEST(test_escaping_names);
	RUN_TEST(test_not_a_snapshot);
	RUN_TEST(test_symlink_tricks);
	RUN_TEST(test_bit_flips);
	free(good);
	return 0;
}
