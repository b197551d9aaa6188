/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the safetensors parser on a whole file image. */
#include <stdint.h>
#include <stdlib.h>

#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ldr_tensor_list l = {};
	char err[256];
	uint64_t data_start;
	if (ldr_safetensors_parse(data, size, size, "fuzz.safetensors", 0, &l, &data_start, err,
				  sizeof(err)) == 0) {
		/* What the engine relies on: every tensor inside the file. */
		for (size_t i = 0; i < l.n; i++)
			if (l.v[i].offset < data_start || l.v[i].offset > size ||
			    l.v[i].size > size - l.v[i].offset)
				abort();
	}
	ldr_tensor_list_clear(&l);
	return 0;
}
