/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GGUF v3 (little-endian): magic, version, tensor and metadata counts, the
 * metadata key/values, the tensor infos, padding to the alignment, then the
 * tensor data. Every length and count is checked against the bytes that
 * remain before it is used, so a hostile count cannot make us allocate or
 * loop beyond what the file could hold.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "model.h"

#define GGUF_MAGIC	       0x46554747u /* "GGUF" read as LE u32 */
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS	       4
#define GGUF_MAX_ARRAY_NESTING 8

enum {
	GGUF_UINT8 = 0,
	GGUF_INT8,
	GGUF_UINT16,
	GGUF_INT16,
	GGUF_UINT32,
	GGUF_INT32,
	GGUF_FLOAT32,
	GGUF_BOOL,
	GGUF_STRING,
	GGUF_ARRAY,
	GGUF_UINT64,
	GGUF_INT64,
	GGUF_FLOAT64,
	GGUF_TYPE_COUNT,
};

static const uint8_t scalar_size[GGUF_TYPE_COUNT] = {
	[GGUF_UINT8] = 1,  [GGUF_INT8] = 1,  [GGUF_UINT16] = 2,	 [GGUF_INT16] = 2,
	[GGUF_UINT32] = 4, [GGUF_INT32] = 4, [GGUF_FLOAT32] = 4, [GGUF_BOOL] = 1,
	[GGUF_UINT64] = 8, [GGUF_INT64] = 8, [GGUF_FLOAT64] = 8,
};

/* ggml types: name, elements per block, bytes per block (0: unknown id). */
static const struct ggml_type {
	const char *name;
	uint32_t block;
	uint32_t bytes;
} ggml_types[] = {
	[0] = {"F32", 1, 4},	     [1] = {"F16", 1, 2},	  [2] = {"Q4_0", 32, 18},
	[3] = {"Q4_1", 32, 20},	     [6] = {"Q5_0", 32, 22},	  [7] = {"Q5_1", 32, 24},
	[8] = {"Q8_0", 32, 34},	     [9] = {"Q8_1", 32, 36},	  [10] = {"Q2_K", 256, 84},
	[11] = {"Q3_K", 256, 110},   [12] = {"Q4_K", 256, 144},	  [13] = {"Q5_K", 256, 176},
	[14] = {"Q6_K", 256, 210},   [15] = {"Q8_K", 256, 292},	  [16] = {"IQ2_XXS", 256, 66},
	[17] = {"IQ2_XS", 256, 74},  [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50},
	[20] = {"IQ4_NL", 32, 18},   [21] = {"IQ3_S", 256, 110},  [22] = {"IQ2_S", 256, 82},
	[23] = {"IQ4_XS", 256, 136}, [24] = {"I8", 1, 1},	  [25] = {"I16", 1, 2},
	[26] = {"I32", 1, 4},	     [27] = {"I64", 1, 8},	  [28] = {"F64", 1, 8},
	[29] = {"IQ1_M", 256, 56},   [30] = {"BF16", 1, 2},	  [34] = {"TQ1_0", 256, 54},
	[35] = {"TQ2_0", 256, 66},   [39] = {"MXFP4", 32, 17},	  [40] = {"NVFP4", 64, 36},
	[41] = {"Q1_0", 128, 18},    [42] = {"Q2_0", 64, 18},
};

struct gr {
	const uint8_t *p, *end, *base;
	const char *fname;
	char *err;
	size_t errlen;
};

static int gr_fail(struct gr *g, const char *what)
{
	return ldr_errf(g->err, g->errlen, -EBADMSG, "%s: invalid GGUF at byte %llu: %s", g->fname,
			(unsigned long long) (g->p - g->base), what);
}

static size_t gr_left(const struct gr *g)
{
	return (size_t) (g->end - g->p);
}

static int gr_bytes(struct gr *g, void *dst, size_t n)
{
	if (gr_left(g) < n)
		return gr_fail(g, "truncated");
	memcpy(dst, g->p, n);
	g->p += n;
	return 0;
}

static int gr_u32(struct gr *g, uint32_t *v)
{
	uint32_t x = 0;
	int r = gr_bytes(g, &x, 4);
	*v = le32toh(x);
	return r;
}

static int gr_u64(struct gr *g, uint64_t *v)
{
	uint64_t x = 0;
	int r = gr_bytes(g, &x, 8);
	*v = le64toh(x);
	return r;
}

/* A gguf_string: u64 length + bytes. Borrowed pointer into the buffer. */
static int gr_str(struct gr *g, const char **ret, uint64_t *ret_len)
{
	uint64_t n = 0;
	int r = gr_u64(g, &n);
	if (r < 0)
		return r;
	if (n > gr_left(g))
		return gr_fail(g, "string length past the end of the file");
	*ret = (const char *) g->p;
	*ret_len = n;
	g->p += n;
	return 0;
}

static int gr_skip_value(struct gr *g, uint32_t type, int depth)
{
	if (type >= GGUF_TYPE_COUNT)
		return gr_fail(g, "unknown metadata value type");
	if (type == GGUF_STRING) {
		const char *s = NULL;
		uint64_t n = 0;
		return gr_str(g, &s, &n);
	}
	if (type != GGUF_ARRAY) {
		if (type == GGUF_BOOL && gr_left(g) >= 1 && *g->p > 1)
			return gr_fail(g, "boolean is neither 0 nor 1");
		if (gr_left(g) < scalar_size[type])
			return gr_fail(g, "truncated");
		g->p += scalar_size[type];
		return 0;
	}
	if (depth >= GGUF_MAX_ARRAY_NESTING)
		return gr_fail(g, "arrays nested too deeply");
	uint32_t et;
	uint64_t count;
	int r = gr_u32(g, &et);
	if (r >= 0)
		r = gr_u64(g, &count);
	if (r < 0)
		return r;
	if (et >= GGUF_TYPE_COUNT)
		return gr_fail(g, "unknown array element type");
	if (et != GGUF_STRING && et != GGUF_ARRAY && et != GGUF_BOOL) {
		/* Fixed-size elements: skip in one step, overflow-checked. */
		uint64_t bytes;
		if (__builtin_mul_overflow(count, (uint64_t) scalar_size[et], &bytes) ||
		    bytes > gr_left(g))
			return gr_fail(g, "array past the end of the file");
		g->p += bytes;
		return 0;
	}
	/* Every element takes at least one byte: bounds the loop by the file. */
	if (count > gr_left(g))
		return gr_fail(g, "array count past the end of the file");
	for (uint64_t i = 0; i < count; i++) {
		r = gr_skip_value(g, et, depth + 1);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool key_is(const char *k, uint64_t n, const char *lit)
{
	return n == strlen(lit) && memcmp(k, lit, n) == 0;
}

static int parse_metadata(struct gr *g, uint64_t n_kv, uint32_t *alignment)
{
	/* A key/value takes at least 12 bytes (u64 length, u32 type). */
	if (n_kv > gr_left(g) / 12)
		return gr_fail(g, "metadata count larger than the file can hold");
	for (uint64_t i = 0; i < n_kv; i++) {
		const char *k = NULL;
		uint64_t kn = 0;
		uint32_t type = 0;
		int r = gr_str(g, &k, &kn);
		if (r >= 0)
			r = gr_u32(g, &type);
		if (r < 0)
			return r;
		if (kn == 0 || kn > 65535)
			return gr_fail(g, "metadata key length out of bounds");
		if (key_is(k, kn, "general.alignment")) {
			if (type != GGUF_UINT32)
				return gr_fail(g, "general.alignment is not a UINT32");
			r = gr_u32(g, alignment);
			if (r < 0)
				return r;
			if (*alignment == 0 || (*alignment & (*alignment - 1)))
				return gr_fail(g, "general.alignment is not a power of two");
			continue;
		}
		r = gr_skip_value(g, type, 0);
		if (r < 0)
			return r;
	}
	return 0;
}

static int tensor_fail(struct gr *g, const char *name, const char *what)
{
	return ldr_errf(g->err, g->errlen, -EBADMSG, "%s: tensor \"%s\": %s", g->fname, name, what);
}

static int parse_tensor_info(struct gr *g, uint32_t file, struct ldr_tensor *t,
			     uint64_t *ret_rel_off)
{
	const char *s = NULL;
	uint64_t n = 0;
	uint32_t n_dims = 0, type = 0;
	uint64_t ne[GGUF_MAX_DIMS];
	int r = gr_str(g, &s, &n);
	if (r < 0)
		return r;
	if (n == 0 || n > 255 || memchr(s, 0, n))
		return gr_fail(g, "tensor name empty, too long or with a NUL");
	_cleanup_free_ char *name = strndup(s, n);
	if (!name)
		return -ENOMEM;
	r = gr_u32(g, &n_dims);
	if (r < 0)
		return r;
	if (n_dims > GGUF_MAX_DIMS)
		return tensor_fail(g, name, "more than 4 dimensions");
	for (uint32_t i = 0; i < n_dims; i++) {
		r = gr_u64(g, &ne[i]);
		if (r < 0)
			return r;
	}
	r = gr_u32(g, &type);
	if (r >= 0)
		r = gr_u64(g, ret_rel_off);
	if (r < 0)
		return r;
	if (type >= ELEMENTSOF(ggml_types) || !ggml_types[type].name)
		return tensor_fail(g, name, "unknown ggml type");
	const struct ggml_type *gt = &ggml_types[type];

	/* bytes = ne[0]/block * block_bytes * ne[1] * ne[2] * ne[3] */
	uint64_t rows = 1, bytes;
	if (n_dims > 0 && ne[0] % gt->block)
		return tensor_fail(g, name, "first dimension not a multiple of the block size");
	for (uint32_t i = 1; i < n_dims; i++)
		if (__builtin_mul_overflow(rows, ne[i], &rows))
			return tensor_fail(g, name, "shape overflows");
	uint64_t first = n_dims > 0 ? ne[0] : 1;
	if (n_dims == 0 && gt->block != 1)
		return tensor_fail(g, name, "scalar of a block type");
	if (__builtin_mul_overflow(first / gt->block, (uint64_t) gt->bytes, &bytes) ||
	    __builtin_mul_overflow(bytes, rows, &bytes))
		return tensor_fail(g, name, "shape overflows");

	*t = (struct ldr_tensor){.n_dims = n_dims, .size = bytes, .file = file, .device = -1};
	snprintf(t->dtype, sizeof(t->dtype), "%s", gt->name);
	/* GGUF lists ne[0] (fastest varying) first; we report outermost first. */
	for (uint32_t i = 0; i < n_dims; i++)
		t->shape[i] = ne[n_dims - 1 - i];
	t->name = TAKE_PTR(name);
	return 0;
}

static int by_offset(const void *a, const void *b)
{
	const struct ldr_tensor *x = a, *y = b;
	/* Ties by size: an empty tensor sorts before one starting where it is. */
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return x->size < y->size ? -1 : x->size > y->size;
}

int ldr_gguf_parse(const void *buf, size_t len, const char *fname, uint32_t file,
		   struct ldr_tensor_list *out, uint64_t *ret_data_start, char *err, size_t errlen)
{
	struct gr g = {.p = buf,
		       .end = (const uint8_t *) buf + len,
		       .base = buf,
		       .fname = fname,
		       .err = err,
		       .errlen = errlen};
	struct ldr_tensor_list l = {};
	_cleanup_free_ uint64_t *rel = NULL;
	uint32_t magic, version, alignment = GGUF_DEFAULT_ALIGNMENT;
	uint64_t n_tensors, n_kv;
	int r;

	r = gr_u32(&g, &magic);
	if (r < 0 || magic != GGUF_MAGIC)
		return ldr_errf(err, errlen, -EBADMSG, "%s: not a GGUF file (bad magic)", fname);
	r = gr_u32(&g, &version);
	if (r < 0)
		return r;
	if (version != 3)
		return ldr_errf(err, errlen, -EBADMSG,
				"%s: GGUF version %u is not supported (only 3%s)", fname, version,
				(version & 0xffff) == 0 ? "; big-endian file?" : "");
	r = gr_u64(&g, &n_tensors);
	if (r >= 0)
		r = gr_u64(&g, &n_kv);
	if (r < 0)
		return r;
	r = parse_metadata(&g, n_kv, &alignment);
	if (r < 0)
		return r;

	/* A tensor info takes at least 24 bytes (name length, n_dims, type, offset). */
	if (n_tensors > gr_left(&g) / 24)
		return gr_fail(&g, "tensor count larger than the file can hold");
	rel = calloc(n_tensors ? n_tensors : 1, sizeof(*rel));
	if (!rel)
		return -ENOMEM;
	for (uint64_t i = 0; i < n_tensors; i++) {
		struct ldr_tensor t;
		r = parse_tensor_info(&g, file, &t, &rel[i]);
		if (r >= 0)
			r = ldr_tensor_list_push(&l, &t);
		if (r < 0)
			goto fail;
		if (rel[i] % alignment) {
			r = tensor_fail(&g, t.name, "offset not a multiple of the alignment");
			goto fail;
		}
	}

	uint64_t data_start = (uint64_t) (g.p - g.base);
	data_start += (alignment - data_start % alignment) % alignment;
	if (data_start > len) /* only possible without tensors */
		data_start = len;
	for (size_t i = 0; i < l.n; i++) {
		struct ldr_tensor *t = &l.v[i];
		uint64_t end;
		if (__builtin_add_overflow(data_start, rel[i], &t->offset) ||
		    __builtin_add_overflow(t->offset, t->size, &end) || end > len) {
			r = ldr_errf(err, errlen, -EBADMSG,
				     "%s: tensor \"%s\": data (offset %llu, %llu bytes) lies "
				     "outside the file (%zu bytes)",
				     fname, t->name, (unsigned long long) rel[i],
				     (unsigned long long) t->size, len);
			goto fail;
		}
	}
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), by_offset);
	for (size_t i = 1; i < l.n; i++)
		if (l.v[i].offset < l.v[i - 1].offset + l.v[i - 1].size) {
			r = ldr_errf(err, errlen, -EBADMSG,
				     "%s: tensor \"%s\" overlaps tensor \"%s\"", fname, l.v[i].name,
				     l.v[i - 1].name);
			goto fail;
		}
	r = ldr_check_unique_names(&l, fname, err, errlen);
	if (r < 0)
		goto fail;

	size_t n0 = out->n;
	for (size_t i = 0; i < l.n; i++) {
		r = ldr_tensor_list_push(out, &l.v[i]);
		if (r < 0) {
			while (out->n > n0)
				free(out->v[--out->n].name);
			for (size_t k = i + 1; k < l.n; k++)
				free(l.v[k].name);
			free(l.v);
			return r;
		}
	}
	free(l.v);
	*ret_data_start = data_start;
	return 0;
fail:
	ldr_tensor_list_clear(&l);
	return r;
}
