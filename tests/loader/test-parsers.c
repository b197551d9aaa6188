/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: safetensors and GGUF parsers, sharded index, model-level checks. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "fd-util.h"
#include "harness.h"
#include "model.h"

static char tmpdir[100]; /* $TMPDIR/stoke-ldr-parse-XXXXXX (or /tmp/...) */

static void cleanup_tmpdir(void)
{
	(void) cs_rm_rf_at(AT_FDCWD, tmpdir);
}

/* [u64 len][json][data_len bytes of a counting pattern] */
static uint8_t *make_st(const char *json, size_t data_len, size_t *ret_len)
{
	size_t jl = strlen(json);
	uint8_t *b = malloc(8 + jl + data_len + 1);
	uint64_t n = jl;
	memcpy(b, &n, 8);
	memcpy(b + 8, json, jl);
	for (size_t i = 0; i < data_len; i++)
		b[8 + jl + i] = (uint8_t) (i * 7 + 1);
	*ret_len = 8 + jl + data_len;
	return b;
}

static int parse_st(const char *json, size_t data_len, struct ldr_tensor_list *l, char *err)
{
	size_t len;
	_cleanup_free_ uint8_t *b = make_st(json, data_len, &len);
	uint64_t ds;
	return ldr_safetensors_parse(b, len, len, "m.safetensors", 0, l, &ds, err, 512);
}

static void expect_st_error(const char *json, size_t data_len, const char *needle)
{
	struct ldr_tensor_list l = {};
	char err[512] = "";
	int r = parse_st(json, data_len, &l, err);
	if (r != -EBADMSG)
		T_FAILF("expected -EBADMSG for %s, got %d (%s)", json, r, err);
	if (!strstr(err, needle) || !strstr(err, "m.safetensors"))
		T_FAILF("error \"%s\" lacks \"%s\" or the file name", err, needle);
	ASSERT_EQ(l.n, 0);
}

static void test_safetensors_valid(void)
{
	struct ldr_tensor_list l = {};
	char err[512] = "";
	ASSERT_OK(parse_st(
		"{\"__metadata__\":{\"format\":\"pt\"},"
		"\"b\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[16,28]},"
		"\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
		"\"s\":{\"dtype\":\"I8\",\"shape\":[],\"data_offsets\":[28,29]},"
		"\"e\":{\"dtype\":\"U8\",\"shape\":[0,5],\"data_offsets\":[29,29]},"
		"\"q\\u00e9\":{\"dtype\":\"F4\",\"shape\":[2],\"data_offsets\":[29,30]}}   ",
		30, &l, err));
	ASSERT_EQ(l.n, 5);
	/* Names come back sorted; check "b". */
	ASSERT_STREQ(l.v[1].name, "b");
	ASSERT_STREQ(l.v[1].dtype, "F16");
	ASSERT_EQ(l.v[1].n_dims, 2);
	ASSERT_EQ(l.v[1].shape[1], 3);
	ASSERT_EQ(l.v[1].size, 12);
	ASSERT_STREQ(l.v[4].name, "q\xc3\xa9");
	ldr_tensor_list_clear(&l);
	/* Empty header: no tensors, no data. */
	ASSERT_OK(parse_st("{}", 0, &l, err));
	ASSERT_EQ(l.n, 0);
}

static void test_safetensors_invalid(void)
{
	expect_st_error("[]", 0, "does not start with '{'");
	expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8,
			"expected ',' or '}'");
	expect_st_error("{\"a\":{\"dtype\":\"X9\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
			"unknown dtype");
	expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
			"tensor \"a\": data_offsets");
	expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
			"\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
			8, "contiguous");
	expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
			"contiguous");
	expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8,
			"file has");
	expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
			"\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
			8, "appears twice");
	expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],"
			"\"data_offsets\":[0,8]}}",
			8, "overflows");
	expect_st_error("{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2,
			"whole number of bytes");
	expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", 8,
			"non-negative integer");
	expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8,
			"fraction");
	expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 0, "missing");
	expect_st_error("{\"a\xff\":{}}", 0, "invalid UTF-8");
	expect_st_error("{\"__metadata__\":{\"k\":1}}", 0, "must be strings");
	expect_st_error("{} x", 0, "trailing");

	/* Header length bounds. */
	uint8_t b[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	char err[512];
	uint64_t n;
	ASSERT_ERR(ldr_safetensors_header_len(b, 16, "f", &n, err, sizeof(err)), -EBADMSG);
	ASSERT_TRUE(strstr(err, "out of bounds"));
	uint64_t big = 100;
	memcpy(b, &big, 8);
	ASSERT_ERR(ldr_safetensors_header_len(b, 16, "f", &n, err, sizeof(err)), -EBADMSG);
	ASSERT_TRUE(strstr(err, "exceeds the file"));
	ASSERT_ERR(ldr_safetensors_header_len(b, 4, "f", &n, err, sizeof(err)), -EBADMSG);
}

/* --- GGUF --- */

struct buf {
	uint8_t *p;
	size_t n, cap;
};

static void put(struct buf *b, const void *d, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
}
static void put32(struct buf *b, uint32_t v)
{
	put(b, &v, 4);
}
static void put64(struct buf *b, uint64_t v)
{
	put(b, &v, 8);
}
static void putstr(struct buf *b, const char *s)
{
	put64(b, strlen(s));
	put(b, s, strlen(s));
}

struct gt {
	const char *name;
	uint32_t n_dims;
	uint64_t ne[4];
	uint32_t type;
	uint64_t off;
};

/* A GGUF v3 file: one string kv, an optional alignment kv, an array kv, the tensors, data. */
static struct buf make_gguf(const struct gt *t, size_t n, int alignment, size_t data_len)
{
	struct buf b = {};
	put(&b, "GGUF", 4);
	put32(&b, 3);
	put64(&b, n);
	put64(&b, alignment ? 3 : 2);
	putstr(&b, "general.architecture");
	put32(&b, 8);
	putstr(&b, "llama");
	putstr(&b, "tokenizer.ggml.tokens");
	put32(&b, 9);
	put32(&b, 8);
	put64(&b, 2);
	putstr(&b, "a");
	putstr(&b, "bc");
	if (alignment) {
		putstr(&b, "general.alignment");
		put32(&b, 4);
		put32(&b, (uint32_t) alignment);
	}
	for (size_t i = 0; i < n; i++) {
		putstr(&b, t[i].name);
		put32(&b, t[i].n_dims);
		/* n_dims may exceed what ne[] holds (the "too many dims" case) */
		for (uint32_t k = 0; k < t[i].n_dims; k++)
			put64(&b, k < ELEMENTSOF(t[i].ne) ? t[i].ne[k] : 1);
		put32(&b, t[i].type);
		put64(&b, t[i].off);
	}
	size_t a = alignment ? (size_t) alignment : 32;
	while (b.n % a)
		put(&b, "", 1);
	for (size_t i = 0; i < data_len; i++) {
		uint8_t v = (uint8_t) i;
		put(&b, &v, 1);
	}
	return b;
}

static int parse_gguf(struct buf *b, struct ldr_tensor_list *l, char *err)
{
	uint64_t ds;
	int r = ldr_gguf_parse(b->p, b->n, "m.gguf", 0, l, &ds, err, 512);
	free(b->p);
	return r;
}

static void expect_gguf_error(struct buf b, const char *needle)
{
	struct ldr_tensor_list l = {};
	char err[512] = "";
	int r = parse_gguf(&b, &l, err);
	if (r != -EBADMSG)
		T_FAILF("expected -EBADMSG (%s), got %d (%s)", needle, r, err);
	if (!strstr(err, needle) || !strstr(err, "m.gguf"))
		T_FAILF("error \"%s\" lacks \"%s\" or the file name", err, needle);
	ASSERT_EQ(l.n, 0);
}

static void test_gguf_valid(void)
{
	const struct gt t[] = {
		{"tok_embd.weight", 2, {64, 3}, 0, 0},	       /* F32: 768 bytes */
		{"blk.0.attn_q.weight", 2, {256, 2}, 12, 768}, /* Q4_K: 288 */
		{"norm", 1, {5}, 1, 1088},		       /* F16: 10 */
	};
	struct buf b = make_gguf(t, 3, 0, 1098);
	struct ldr_tensor_list l = {};
	char err[512] = "";
	ASSERT_OK(parse_gguf(&b, &l, err));
	ASSERT_EQ(l.n, 3);
	ASSERT_STREQ(l.v[0].name, "blk.0.attn_q.weight");
	ASSERT_STREQ(l.v[0].dtype, "Q4_K");
	ASSERT_EQ(l.v[0].size, 288);
	ASSERT_EQ(l.v[0].shape[0], 2); /* outermost first */
	ASSERT_EQ(l.v[0].shape[1], 256);
	ASSERT_EQ(l.v[2].size, 768);
	ASSERT_EQ(l.v[2].offset % 32, 0);
	ldr_tensor_list_clear(&l);

	struct gt t2[] = {{"x", 1, {4}, 0, 64}};
	b = make_gguf(t2, 1, 64, 80);
	ASSERT_OK(parse_gguf(&b, &l, err));
	ASSERT_EQ(l.v[0].offset % 64, 0);
	ldr_tensor_list_clear(&l);
}

static void test_gguf_invalid(void)
{
	struct gt ok = {"x", 1, {8}, 0, 0};
	struct buf b = make_gguf(&ok, 1, 0, 32);
	b.p[4] = 2;
	expect_gguf_error(b, "version 2");
	b = make_gguf(&ok, 1, 0, 32);
	b.p[0] = 'X';
	expect_gguf_error(b, "bad magic");

	struct gt bad_type = {"x", 1, {8}, 4, 0};
	expect_gguf_error(make_gguf(&bad_type, 1, 0, 32), "unknown ggml type");
	struct gt dims = {"x", 5, {1, 1, 1, 1}, 0, 0};
	expect_gguf_error(make_gguf(&dims, 1, 0, 32), "");
	struct gt block = {"x", 1, {33}, 2, 0};
	expect_gguf_error(make_gguf(&block, 1, 0, 64), "multiple of the block size");
	struct gt past = {"x", 1, {8}, 0, 0};
	expect_gguf_error(make_gguf(&past, 1, 0, 16), "outside the file");
	struct gt unaligned = {"x", 1, {8}, 0, 8};
	expect_gguf_error(make_gguf(&unaligned, 1, 0, 64), "multiple of the alignment");
	struct gt overlap[] = {{"x", 1, {16}, 0, 0}, {"y", 1, {8}, 0, 32}};
	expect_gguf_error(make_gguf(overlap, 2, 0, 96), "overlaps");
	struct gt dup[] = {{"x", 1, {8}, 0, 0}, {"x", 1, {8}, 0, 32}};
	expect_gguf_error(make_gguf(dup, 2, 0, 64), "appears twice");
	struct gt huge = {"x", 4, {UINT64_MAX / 2, 4, 4, 4}, 0, 0};
	expect_gguf_error(make_gguf(&huge, 1, 0, 64), "overflows");
	expect_gguf_error(make_gguf(&ok, 1, 48, 64), "power of two");

	/* A count the file cannot hold is rejected before any allocation. */
	b = make_gguf(&ok, 1, 0, 32);
	uint64_t many = UINT64_MAX / 4;
	memcpy(b.p + 8, &many, 8);
	expect_gguf_error(b, "tensor count");
	/* Truncation anywhere in the header. */
	b = make_gguf(&ok, 1, 0, 32);
	for (size_t cut = 0; cut < b.n - 32; cut += 3) {
		struct ldr_tensor_list l = {};
		char err[512];
		uint64_t ds;
		ASSERT_ERR(ldr_gguf_parse(b.p, cut, "m.gguf", 0, &l, &ds, err, sizeof(err)),
			   -EBADMSG);
	}
	free(b.p);
}

/* --- files, shards --- */

static void write_file(const char *name, const void *d, size_t n)
{
	_cleanup_free_ char *p = NULL;
	ASSERT_TRUE(asprintf(&p, "%s/%s", tmpdir, name) > 0);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_TRUE(fd >= 0);
	ASSERT_OK(cs_write_all(fd, d, n));
	close(fd);
}

static void write_st(const char *name, const char *json, size_t data_len)
{
	size_t len;
	_cleanup_free_ uint8_t *b = make_st(json, data_len, &len);
	write_file(name, b, len);
}

static int open_one(const char *name, struct ldr_model **m, char *err)
{
	_cleanup_free_ char *p = NULL;
	ASSERT_TRUE(asprintf(&p, "%s/%s", tmpdir, name) > 0);
	const char *paths[] = {p};
	return ldr_model_open(paths, 1, m, err, 512);
}

static void test_sharded(void)
{
	struct ldr_model *m = NULL;
	char err[512] = "";
	write_st("s1.safetensors",
		 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
	write_st("s2.safetensors",
		 "{\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
		 "\"c\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[3,4]}}",
		 4);
	const char *idx =
		"{\"metadata\":{\"total_size\":12},\"weight_map\":{"
		"\"a\":\"s1.safetensors\",\"b\":\"s2.safetensors\",\"c\":\"s2.safetensors\"}}";
	write_file("model.safetensors.index.json", idx, strlen(idx));
	ASSERT_OK(open_one("model.safetensors.index.json", &m, err));
	ASSERT_EQ(ldr_model_n_tensors(m), 3);
	struct ldr_tensor_info ti;
	ASSERT_OK(ldr_model_tensor(m, (size_t) ldr_model_find(m, "c"), &ti));
	ASSERT_TRUE(strstr(ti.file, "s2.safetensors"));
	ASSERT_EQ(ldr_model_find(m, "zz"), -ENOENT);
	m = ldr_model_unref(m);

	/* Map says a tensor lives in the wrong shard. */
	idx = "{\"weight_map\":{\"a\":\"s2.safetensors\",\"b\":\"s2.safetensors\","
	      "\"c\":\"s2.safetensors\"}}";
	write_file("bad1.index.json", idx, strlen(idx));
	ASSERT_ERR(open_one("bad1.index.json", &m, err), -EBADMSG);
	ASSERT_TRUE(strstr(err, "tensor \"a\""));
	/* Map names a tensor no shard has. */
	idx = "{\"weight_map\":{\"a\":\"s1.safetensors\",\"zz\":\"s1.safetensors\"}}";
	write_file("bad2.index.json", idx, strlen(idx));
	ASSERT_ERR(open_one("bad2.index.json", &m, err), -EBADMSG);
	ASSERT_TRUE(strstr(err, "zz"));
	/* Shard outside the directory. */
	idx = "{\"weight_map\":{\"a\":\"../s1.safetensors\"}}";
	write_file("bad3.index.json", idx, strlen(idx));
	ASSERT_ERR(open_one("bad3.index.json", &m, err), -EBADMSG);
	/* Missing shard file. */
	idx = "{\"weight_map\":{\"a\":\"nope.safetensors\"}}";
	write_file("bad4.index.json", idx, strlen(idx));
	ASSERT_ERR(open_one("bad4.index.json", &m, err), -ENOENT);
	ASSERT_TRUE(strstr(err, "nope.safetensors"));

	/* The same tensor name in two files given together. */
	write_st("dup.safetensors",
		 "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
	_cleanup_free_ char *p1 = NULL, *p2 = NULL;
	ASSERT_TRUE(asprintf(&p1, "%s/s1.safetensors", tmpdir) > 0);
	ASSERT_TRUE(asprintf(&p2, "%s/dup.safetensors", tmpdir) > 0);
	const char *both[] = {p1, p2};
	ASSERT_ERR(ldr_model_open(both, 2, &m, err, sizeof(err)), -EBADMSG);
	ASSERT_TRUE(strstr(err, "appears in both"));
	/* A file too short to be anything. */
	write_file("short.safetensors", "abc", 3);
	ASSERT_ERR(open_one("short.safetensors", &m, err), -EBADMSG);
	ASSERT_TRUE(strstr(err, "short.safetensors"));
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/stoke-ldr-parse-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ASSERT_TRUE(mkdtemp(tmpdir));
	atexit(cleanup_tmpdir);
	RUN_TEST(test_safetensors_valid);
	RUN_TEST(test_safetensors_invalid);
	RUN_TEST(test_gguf_valid);
	RUN_TEST(test_gguf_invalid);
	RUN_TEST(test_sharded);
	return T_PASS;
}
