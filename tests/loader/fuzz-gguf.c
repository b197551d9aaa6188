/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the GGUF parser on a whole file image. */
#include <stdint.h>
#include <stdlib.h>

#include "model.h"

static int by_offset(const void *a, const void *b)
{
	const struct ldr_tensor *x = a, *y = b;
	/* Ties by size: an empty tensor sorts before one starting where it is. */
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return x->size < y->size ? -1 : x->size > y->size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ldr_tensor_list l = {};
	char err[256];
	uint64_t data_start;
	if (ldr_gguf_parse(data, size, "fuzz.gguf", 0, &l, &data_start, err, sizeof(err)) == 0) {
		if (l.n > 1)
			qsort(l.v, l.n, sizeof(*l.v), by_offset);
		for (size_t i = 0; i < l.n; i++) {
			if (l.v[i].offset < data_start || l.v[i].offset > size ||
			    l.v[i].size > size - l.v[i].offset)
				abort();
			/* Sorted by offset and disjoint. */
			if (i > 0 && l.v[i].offset < l.v[i - 1].offset + l.v[i - 1].size)
				abort();
		}
	}
	ldr_tensor_list_clear(&l);
	return 0;
}
