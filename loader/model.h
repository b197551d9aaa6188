/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal model description shared by the parsers, the engine and the
 * public API: files, tensors (where their bytes are in which file) and,
 * after a load, where each tensor landed.
 *
 * The parsers work on memory (the file's header bytes, or the whole file
 * mapped) so the fuzz targets drive exactly the code that reads real files.
 * They never log: a failure returns -errno and writes one sentence naming
 * the file and, where there is one, the tensor into `err`.
 */
#ifndef STOKE_LOADER_MODEL_H
#define STOKE_LOADER_MODEL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stoke-loader.h"

#define LDR_SAFETENSORS_MAX_HEADER UINT64_C(100000000)

struct ldr_tensor {
	char *name;
	char dtype[16]; /* the file's own dtype name: "BF16", "Q4_K" */
	uint32_t n_dims;
	uint64_t shape[LDR_MAX_DIMS]; /* outermost first (numpy order) */
	uint64_t offset;	      /* absolute file offset of the first byte */
	uint64_t size;		      /* bytes */
	uint32_t file;		      /* index into ldr_model.files */
	/* Filled by placement and load. */
	int device;    /* -1 host, else CUDA ordinal */
	void *host;    /* host copy (device == -1); borrowed from a region */
	uint64_t dptr; /* device pointer (device >= 0) */
};

struct ldr_tensor_list {
	struct ldr_tensor *v;
	size_t n, cap;
};

enum ldr_format {
	LDR_FORMAT_SAFETENSORS = 1,
	LDR_FORMAT_GGUF,
};

struct ldr_file {
	char *path;
	enum ldr_format format;
	uint64_t size;
	uint64_t data_start; /* first byte of the tensor data section */
	uint64_t data_end;   /* one past the last tensor byte */
};

/* Host memory owned by a loaded model: one anonymous mapping per file. */
struct ldr_region {
	void *base;
	size_t len;
};

struct ldr_device_alloc {
	int device;
	uint64_t dptr;
	uint64_t len;
};

struct ldr_model {
	int refs;
	struct ldr_file *files;
	size_t n_files;
	struct ldr_tensor_list tensors;
	bool loaded;
	struct ldr_region *regions; /* n_files entries once loaded to host */
	struct ldr_device_alloc *allocs;
	size_t n_allocs;
	struct ldr_cuda *cuda; /* set once anything went to a GPU */
};

/* Error text helper: "FILE: ..." into err (may be NULL). Returns `r`. */
int ldr_errf(char *err, size_t errlen, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Append a tensor (takes ownership of t->name, also on failure). */
int ldr_tensor_list_push(struct ldr_tensor_list *l, struct ldr_tensor *t);
void ldr_tensor_list_clear(struct ldr_tensor_list *l);

/* Element size in bits of a safetensors dtype; 0 when unknown. */
unsigned ldr_safetensors_dtype_bits(const char *dtype);

/*! ldr_safetensors_header_len() :
 *  From the first 8 bytes of a safetensors file of `file_size` bytes, the JSON
 *  header's length, bounds-checked. -EBADMSG (with `err`) when invalid. */
int ldr_safetensors_header_len(const void *buf8, uint64_t file_size, const char *fname,
			       uint64_t *ret_len, char *err, size_t errlen);

/*! ldr_safetensors_parse() :
 *  Parse a safetensors file whose first `len` bytes are in `buf` (at least
 *  the 8-byte length and the whole JSON header) and whose total size is
 *  `file_size`. Appends its tensors to `out` with `file` as their file index;
 *  on failure `out` is left as it was. Fills *ret_data_start.
 *  Validates: header bounds, JSON syntax, UTF-8, known dtypes, shapes,
 *  sizes = shape x dtype size, contiguous non-overlapping data covering the
 *  whole data section, unique names.
 * @return : 0, or -EBADMSG (bad content) / -ENOMEM, with `err` written. */
int ldr_safetensors_parse(const void *buf, size_t len, uint64_t file_size, const char *fname,
			  uint32_t file, struct ldr_tensor_list *out, uint64_t *ret_data_start,
			  char *err, size_t errlen);

/*! ldr_gguf_parse() :
 *  Parse a GGUF v3 file held entirely in `buf` (`len` bytes, e.g. mapped).
 *  Validates: magic, version, counts against the remaining bytes, string and
 *  array lengths, metadata types, general.alignment, known ggml types, n_dims,
 *  sizes, alignment of offsets, tensors inside the file, no overlaps, unique
 *  names. Same contract as ldr_safetensors_parse(). */
int ldr_gguf_parse(const void *buf, size_t len, const char *fname, uint32_t file,
		   struct ldr_tensor_list *out, uint64_t *ret_data_start, char *err, size_t errlen);

/* Sort `l` by name and fail on a duplicate (naming it). Keeps names sorted. */
int ldr_check_unique_names(struct ldr_tensor_list *l, const char *fname, char *err, size_t errlen);

#endif
