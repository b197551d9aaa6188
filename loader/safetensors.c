/* SPDX-License-Identifier: Apache-2.0 */
/*
 * safetensors: [u64 LE header length N][N bytes of JSON][tensor data].
 *
 * The JSON is parsed by a small dedicated parser rather than json-c because
 * the format forbids duplicate keys (json-c silently keeps the last one) and
 * we want every byte of a hostile header checked by code the fuzzer drives.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "model.h"

#define JSON_MAX_DEPTH 64

static const struct {
	const char *name;
	unsigned bits;
} dtypes[] = {
	{"BOOL", 8},	{"U8", 8},	    {"I8", 8},		{"F8_E5M2", 8}, {"F8_E4M3", 8},
	{"F8_E8M0", 8}, {"F8_E4M3FNUZ", 8}, {"F8_E5M2FNUZ", 8}, {"F4", 4},	{"F6_E2M3", 6},
	{"F6_E3M2", 6}, {"I16", 16},	    {"U16", 16},	{"F16", 16},	{"BF16", 16},
	{"I32", 32},	{"U32", 32},	    {"F32", 32},	{"F64", 64},	{"I64", 64},
	{"U64", 64},	{"C64", 64},
};

unsigned ldr_safetensors_dtype_bits(const char *dtype)
{
	for (size_t i = 0; i < ELEMENTSOF(dtypes); i++)
		if (strcmp(dtypes[i].name, dtype) == 0)
			return dtypes[i].bits;
	return 0;
}

struct jp {
	const char *p, *end;
	const char *fname;
	char *err;
	size_t errlen;
};

static int jp_fail(struct jp *j, const char *what)
{
	return ldr_errf(j->err, j->errlen, -EBADMSG, "%s: invalid safetensors header: %s", j->fname,
			what);
}

static void jp_ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static bool jp_eat(struct jp *j, char c)
{
	jp_ws(j);
	if (j->p < j->end && *j->p == c) {
		j->p++;
		return true;
	}
	return false;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int jp_hex4(struct jp *j, unsigned *ret)
{
	unsigned v = 0;
	if (j->end - j->p < 4)
		return jp_fail(j, "truncated \\u escape");
	for (int i = 0; i < 4; i++) {
		int h = hexval(j->p[i]);
		if (h < 0)
			return jp_fail(j, "bad \\u escape");
		v = v << 4 | (unsigned) h;
	}
	j->p += 4;
	*ret = v;
	return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char) cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char) (0xc0 | cp >> 6);
		o[1] = (char) (0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char) (0xe0 | cp >> 12);
		o[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char) (0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char) (0xf0 | cp >> 18);
	o[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char) (0x80 | (cp & 0x3f));
	return 4;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned cp;
	size_t len;
	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		len = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values past U+10FFFF are invalid. */
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* A JSON string, decoded to a new NUL-terminated UTF-8 string (no NULs inside). */
static int jp_string(struct jp *j, char **ret)
{
	if (!jp_eat(j, '"'))
		return jp_fail(j, "expected a string");
	const char *start = j->p;
	/* Decoded text is never longer than its escaped form. */
	while (j->p < j->end && *j->p != '"')
		j->p += (*j->p == '\\' && j->p + 1 < j->end) ? 2 : 1;
	if (j->p >= j->end)
		return jp_fail(j, "unterminated string");
	size_t raw = (size_t) (j->p - start);
	_cleanup_free_ char *s = malloc(raw + 1);
	if (!s)
		return -ENOMEM;
	size_t o = 0;
	j->p = start;
	while (*j->p != '"') {
		unsigned char c = (unsigned char) *j->p;
		if (c < 0x20)
			return jp_fail(j, "control character in string");
		if (c != '\\') {
			size_t l = utf8_len((const unsigned char *) j->p, (size_t) (j->end - j->p));
			if (l == 0)
				return jp_fail(j, "invalid UTF-8");
			memcpy(s + o, j->p, l);
			o += l;
			j->p += l;
			continue;
		}
		char e = j->p[1];
		j->p += 2;
		unsigned cp;
		int r;
		switch (e) {
		case '"':
		case '\\':
		case '/':
			s[o++] = e;
			continue;
		case 'b':
			s[o++] = '\b';
			continue;
		case 'f':
			s[o++] = '\f';
			continue;
		case 'n':
			s[o++] = '\n';
			continue;
		case 'r':
			s[o++] = '\r';
			continue;
		case 't':
			s[o++] = '\t';
			continue;
		case 'u':
			r = jp_hex4(j, &cp);
			if (r < 0)
				return r;
			if (cp >= 0xd800 && cp < 0xdc00) {
				unsigned lo;
				if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
					return jp_fail(j, "unpaired surrogate");
				j->p += 2;
				r = jp_hex4(j, &lo);
				if (r < 0)
					return r;
				if (lo < 0xdc00 || lo > 0xdfff)
					return jp_fail(j, "unpaired surrogate");
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp <= 0xdfff)
				return jp_fail(j, "unpaired surrogate");
			if (cp == 0)
				return jp_fail(j, "NUL in string");
			/* \uXXXX is 6 bytes and decodes to at most 4 (or 12 to 4). */
			o += put_utf8(s + o, cp);
			continue;
		default:
			return jp_fail(j, "bad escape in string");
		}
	}
	j->p++;
	s[o] = 0;
	*ret = TAKE_PTR(s);
	return 0;
}

/* A non-negative JSON integer (no sign, fraction or exponent). */
static int jp_uint(struct jp *j, uint64_t *ret)
{
	jp_ws(j);
	if (j->p >= j->end || *j->p < '0' || *j->p > '9')
		return jp_fail(j, "expected a non-negative integer");
	if (*j->p == '0' && j->p + 1 < j->end && j->p[1] >= '0' && j->p[1] <= '9')
		return jp_fail(j, "leading zero in integer");
	uint64_t v = 0;
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t) (*j->p - '0'), &v))
			return jp_fail(j, "integer too large");
		j->p++;
	}
	if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
		return jp_fail(j, "expected an integer, got a fraction");
	*ret = v;
	return 0;
}

static int jp_skip_value(struct jp *j, int depth);

static int jp_skip_container(struct jp *j, char close, bool keys, int depth)
{
	if (jp_eat(j, close))
		return 0;
	for (;;) {
		int r;
		if (keys) {
			_cleanup_free_ char *k = NULL;
			r = jp_string(j, &k);
			if (r < 0)
				return r;
			if (!jp_eat(j, ':'))
				return jp_fail(j, "expected ':'");
		}
		r = jp_skip_value(j, depth + 1);
		if (r < 0)
			return r;
		if (jp_eat(j, close))
			return 0;
		if (!jp_eat(j, ','))
			return jp_fail(j, "expected ',' or end of container");
	}
}

static int jp_lit(struct jp *j, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t) (j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
		return jp_fail(j, "unexpected token");
	j->p += n;
	return 0;
}

/* Skip any JSON value (for keys we do not interpret). */
static int jp_skip_value(struct jp *j, int depth)
{
	if (depth > JSON_MAX_DEPTH)
		return jp_fail(j, "nested too deeply");
	jp_ws(j);
	if (j->p >= j->end)
		return jp_fail(j, "truncated");
	switch (*j->p) {
	case '{':
		j->p++;
		return jp_skip_container(j, '}', true, depth);
	case '[':
		j->p++;
		return jp_skip_container(j, ']', false, depth);
	case '"': {
		_cleanup_free_ char *s = NULL;
		return jp_string(j, &s);
	}
	case 't':
		return jp_lit(j, "true");
	case 'f':
		return jp_lit(j, "false");
	case 'n':
		return jp_lit(j, "null");
	default:
		break;
	}
	/* A number: validate the JSON number grammar. */
	if (*j->p == '-')
		j->p++;
	if (j->p >= j->end || *j->p < '0' || *j->p > '9')
		return jp_fail(j, "unexpected token");
	if (*j->p == '0')
		j->p++;
	else
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (j->p >= j->end || *j->p < '0' || *j->p > '9')
			return jp_fail(j, "bad number");
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (j->p >= j->end || *j->p < '0' || *j->p > '9')
			return jp_fail(j, "bad number");
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	}
	return 0;
}

/* "__metadata__": an object of string -> string. */
static int jp_metadata(struct jp *j)
{
	if (!jp_eat(j, '{'))
		return jp_fail(j, "__metadata__ is not an object");
	if (jp_eat(j, '}'))
		return 0;
	for (;;) {
		_cleanup_free_ char *k = NULL, *v = NULL;
		int r = jp_string(j, &k);
		if (r < 0)
			return r;
		if (!jp_eat(j, ':'))
			return jp_fail(j, "expected ':'");
		jp_ws(j);
		if (j->p >= j->end || *j->p != '"')
			return jp_fail(j, "__metadata__ values must be strings");
		r = jp_string(j, &v);
		if (r < 0)
			return r;
		if (jp_eat(j, '}'))
			return 0;
		if (!jp_eat(j, ','))
			return jp_fail(j, "expected ',' or '}' in __metadata__");
	}
}

struct st_entry {
	char dtype[16];
	uint32_t n_dims;
	uint64_t shape[LDR_MAX_DIMS];
	uint64_t begin, end;
	unsigned seen; /* bit 0 dtype, 1 shape, 2 data_offsets */
};

static int entry_fail(struct jp *j, const char *name, const char *what)
{
	return ldr_errf(j->err, j->errlen, -EBADMSG, "%s: tensor \"%s\": %s", j->fname, name, what);
}

static int jp_uint_array(struct jp *j, const char *name, uint64_t *v, uint32_t max, uint32_t *ret_n,
			 const char *what)
{
	uint32_t n = 0;
	if (!jp_eat(j, '['))
		return entry_fail(j, name, what);
	if (!jp_eat(j, ']'))
		for (;;) {
			if (n == max)
				return entry_fail(j, name, what);
			int r = jp_uint(j, &v[n++]);
			if (r < 0)
				return r;
			if (jp_eat(j, ']'))
				break;
			if (!jp_eat(j, ','))
				return jp_fail(j, "expected ',' or ']'");
		}
	*ret_n = n;
	return 0;
}

static int jp_tensor_entry(struct jp *j, const char *name, struct st_entry *e)
{
	if (!jp_eat(j, '{'))
		return entry_fail(j, name, "entry is not an object");
	if (jp_eat(j, '}'))
		return entry_fail(j, name, "missing dtype, shape and data_offsets");
	for (;;) {
		_cleanup_free_ char *k = NULL;
		int r = jp_string(j, &k);
		if (r < 0)
			return r;
		if (!jp_eat(j, ':'))
			return jp_fail(j, "expected ':'");
		unsigned bit = strcmp(k, "dtype") == 0		? 1
			       : strcmp(k, "shape") == 0	? 2
			       : strcmp(k, "data_offsets") == 0 ? 4
								: 0;
		if (bit & e->seen)
			return entry_fail(j, name, "duplicate key in entry");
		e->seen |= bit;
		if (bit == 1) {
			_cleanup_free_ char *d = NULL;
			r = jp_string(j, &d);
			if (r < 0)
				return r;
			if (ldr_safetensors_dtype_bits(d) == 0)
				return ldr_errf(j->err, j->errlen, -EBADMSG,
						"%s: tensor \"%s\": unknown dtype \"%.32s\"",
						j->fname, name, d);
			strcpy(e->dtype, d); /* known names fit */
		} else if (bit == 2) {
			r = jp_uint_array(j, name, e->shape, LDR_MAX_DIMS, &e->n_dims,
					  "shape must be an array of at most 8 integers");
		} else if (bit == 4) {
			uint64_t off[2];
			uint32_t n;
			r = jp_uint_array(j, name, off, 2, &n, "data_offsets must be [BEGIN, END]");
			if (r >= 0 && n != 2)
				return entry_fail(j, name, "data_offsets must be [BEGIN, END]");
			e->begin = off[0];
			e->end = off[1];
		} else
			r = jp_skip_value(j, 2);
		if (r < 0)
			return r;
		if (jp_eat(j, '}'))
			break;
		if (!jp_eat(j, ','))
			return jp_fail(j, "expected ',' or '}'");
	}
	if (e->seen != 7)
		return entry_fail(j, name, "missing dtype, shape or data_offsets");
	return 0;
}

/* Byte size from shape and dtype, with overflow and partial-byte checks. */
static int entry_size(struct jp *j, const char *name, const struct st_entry *e, uint64_t *ret)
{
	uint64_t n = 1;
	for (uint32_t i = 0; i < e->n_dims; i++)
		if (__builtin_mul_overflow(n, e->shape[i], &n))
			return entry_fail(j, name, "shape overflows");
	uint64_t bits;
	if (__builtin_mul_overflow(n, (uint64_t) ldr_safetensors_dtype_bits(e->dtype), &bits))
		return entry_fail(j, name, "shape overflows");
	if (bits % 8)
		return entry_fail(j, name, "shape is not a whole number of bytes for its dtype");
	*ret = bits / 8;
	return 0;
}

int ldr_safetensors_header_len(const void *buf8, uint64_t file_size, const char *fname,
			       uint64_t *ret_len, char *err, size_t errlen)
{
	uint64_t n;
	if (file_size < 8)
		return ldr_errf(err, errlen, -EBADMSG,
				"%s: not a safetensors file: shorter than 8 bytes", fname);
	memcpy(&n, buf8, 8);
	n = le64toh(n);
	if (n < 2 || n > LDR_SAFETENSORS_MAX_HEADER)
		return ldr_errf(err, errlen, -EBADMSG,
				"%s: safetensors header length %llu out of bounds (2..%llu)", fname,
				(unsigned long long) n,
				(unsigned long long) LDR_SAFETENSORS_MAX_HEADER);
	if (n > file_size - 8)
		return ldr_errf(err, errlen, -EBADMSG,
				"%s: safetensors header length %llu exceeds the file (%llu bytes)",
				fname, (unsigned long long) n, (unsigned long long) file_size);
	*ret_len = n;
	return 0;
}

static int by_begin(const void *a, const void *b)
{
	const struct ldr_tensor *x = a, *y = b;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Tensors sorted by offset must tile the data section exactly. */
static int check_layout(struct jp *j, struct ldr_tensor *v, size_t n, uint64_t data_start,
			uint64_t file_size)
{
	if (n > 1)
		qsort(v, n, sizeof(*v), by_begin);
	uint64_t pos = data_start;
	for (size_t i = 0; i < n; i++) {
		if (v[i].offset != pos)
			return ldr_errf(
				j->err, j->errlen, -EBADMSG,
				"%s: tensor \"%s\": data starts at %llu, expected %llu "
				"(tensor data must be contiguous without overlaps or holes)",
				j->fname, v[i].name,
				(unsigned long long) (v[i].offset - data_start),
				(unsigned long long) (pos - data_start));
		pos += v[i].size;
	}
	if (pos != file_size)
		return ldr_errf(j->err, j->errlen, -EBADMSG,
				"%s: tensor data ends at byte %llu but the file has %llu bytes",
				j->fname, (unsigned long long) pos, (unsigned long long) file_size);
	return 0;
}

int ldr_safetensors_parse(const void *buf, size_t len, uint64_t file_size, const char *fname,
			  uint32_t file, struct ldr_tensor_list *out, uint64_t *ret_data_start,
			  char *err, size_t errlen)
{
	struct ldr_tensor_list l = {};
	uint64_t hlen;
	int r;

	if (len < 8)
		return ldr_errf(err, errlen, -EBADMSG, "%s: truncated safetensors header", fname);
	r = ldr_safetensors_header_len(buf, file_size, fname, &hlen, err, errlen);
	if (r < 0)
		return r;
	if (len - 8 < hlen)
		return ldr_errf(err, errlen, -EBADMSG, "%s: truncated safetensors header", fname);

	struct jp j = {
		.p = (const char *) buf + 8,
		.end = (const char *) buf + 8 + hlen,
		.fname = fname,
		.err = err,
		.errlen = errlen,
	};
	uint64_t data_start = 8 + hlen;
	bool seen_meta = false;

	if (!jp_eat(&j, '{')) {
		r = jp_fail(&j, "does not start with '{'");
		goto fail;
	}
	if (!jp_eat(&j, '}'))
		for (;;) {
			_cleanup_free_ char *name = NULL;
			r = jp_string(&j, &name);
			if (r < 0)
				goto fail;
			if (!jp_eat(&j, ':')) {
				r = jp_fail(&j, "expected ':'");
				goto fail;
			}
			if (strcmp(name, "__metadata__") == 0) {
				if (seen_meta) {
					r = jp_fail(&j, "duplicate __metadata__");
					goto fail;
				}
				seen_meta = true;
				r = jp_metadata(&j);
				if (r < 0)
					goto fail;
			} else {
				struct st_entry e = {};
				uint64_t size = 0;
				r = jp_tensor_entry(&j, name, &e);
				if (r >= 0)
					r = entry_size(&j, name, &e, &size);
				if (r < 0)
					goto fail;
				if (e.end < e.begin || e.end - e.begin != size ||
				    e.end > file_size - data_start) {
					r = ldr_errf(err, errlen, -EBADMSG,
						     "%s: tensor \"%s\": data_offsets [%llu, %llu] "
						     "do not hold %llu bytes (%s) inside the file",
						     fname, name, (unsigned long long) e.begin,
						     (unsigned long long) e.end,
						     (unsigned long long) size, e.dtype);
					goto fail;
				}
				struct ldr_tensor t = {
					.name = TAKE_PTR(name),
					.n_dims = e.n_dims,
					.offset = data_start + e.begin,
					.size = size,
					.file = file,
					.device = -1,
				};
				memcpy(t.dtype, e.dtype, sizeof(t.dtype));
				memcpy(t.shape, e.shape, sizeof(t.shape));
				r = ldr_tensor_list_push(&l, &t);
				if (r < 0)
					goto fail;
			}
			if (jp_eat(&j, '}'))
				break;
			if (!jp_eat(&j, ',')) {
				r = jp_fail(&j, "expected ',' or '}'");
				goto fail;
			}
		}
	/* Only space padding may follow the object. */
	jp_ws(&j);
	if (j.p != j.end) {
		r = jp_fail(&j, "trailing bytes after the JSON object");
		goto fail;
	}
	r = ldr_check_unique_names(&l, fname, err, errlen);
	if (r < 0)
		goto fail;
	r = check_layout(&j, l.v, l.n, data_start, file_size);
	if (r < 0)
		goto fail;

	for (size_t i = 0; i < l.n; i++) {
		r = ldr_tensor_list_push(out, &l.v[i]);
		if (r < 0) {
			/* push took l.v[i].name; roll `out` back to where it was. */
			for (size_t k = 0; k < i; k++)
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
