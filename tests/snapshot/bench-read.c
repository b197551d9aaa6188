/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snapshot-bench-read FILE ENTRY [N]: time N (default 200) reads of 4 KiB at
 * random offsets of ENTRY (a random access costs one whole chunk: read,
 * checksum, decompress) and print the mean in microseconds, leaving out the
 * fastest and slowest 10% (a busy machine's outliers). The mean, not the
 * median: an entry mixing holes, raw and compressed chunks has a cost
 * distribution with several modes, and the median jumps between them.
 * Used by scripts/bench-snapshot --chunk-sizes; not a test.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stoke-snapshot.h"
#include "time-util.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct snap_reader *r = NULL;
	struct snap_entry_info info;
	static char buf[4096];
	size_t idx;
	int n = argc > 3 ? atoi(argv[3]) : 200;

	if (argc < 3 || n <= 0) {
		fprintf(stderr, "usage: %s FILE ENTRY [N]\n", argv[0]);
		return 2;
	}
	if (snap_reader_open(argv[1], NULL, &r) < 0 || snap_reader_find(r, argv[2], &idx) < 0 ||
	    snap_reader_entry(r, idx, &info) < 0 || info.size < sizeof(buf)) {
		fprintf(stderr, "%s: cannot open entry %s: %s\n", argv[1], argv[2],
			snap_last_error());
		return 1;
	}
	uint64_t *t = calloc((size_t) n, sizeof(*t));
	srand(1);
	for (int i = 0; i < n; i++) {
		uint64_t off = ((uint64_t) rand() * RAND_MAX + (uint64_t) rand()) %
			       (info.size - sizeof(buf));
		uint64_t t0 = cs_monotonic_ns();
		if (snap_reader_pread(r, idx, buf, sizeof(buf), off) != sizeof(buf)) {
			fprintf(stderr, "read failed: %s\n", snap_last_error());
			return 1;
		}
		t[i] = cs_monotonic_ns() - t0;
	}
	qsort(t, (size_t) n, sizeof(*t), cmp_u64);
	double sum = 0;
	int lo = n / 10, hi = n - n / 10;
	for (int i = lo; i < hi; i++)
		sum += (double) t[i];
	printf("%.0f\n", sum / (hi - lo) / 1e3);
	free(t);
	snap_reader_free(r);
	return 0;
}
