/* SPDX-License-Identifier: Apache-2.0 */
/*
 * make-safetensors PATH MIB [SEED]: write a valid safetensors file of about
 * MIB MiB, fast: mixed dtypes and odd tensor sizes (so tensors straddle
 * 4 KiB and chunk boundaries), filled with xorshift noise. Written to a
 * temporary name and renamed, so a failure leaves nothing behind.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
	const char *dtype;
	unsigned size;
} kinds[] = {{"F32", 4}, {"BF16", 2}, {"F16", 2}, {"I64", 8}, {"U8", 1}};

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: make-safetensors PATH MIB [SEED]\n");
		return 2;
	}
	uint64_t target = strtoull(argv[2], NULL, 10) << 20;
	uint64_t x = argc > 3 ? strtoull(argv[3], NULL, 10) * 0x9E3779B97F4A7C15ull + 1
			      : 88172645463325252ull;
	size_t cap = 1 << 20, len = 0;
	char *hdr = malloc(cap);
	uint64_t off = 0;
	unsigned n = 0;

	len += (size_t) snprintf(hdr + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
	while (off < target && len + 256 < cap) {
		/* Sizes from 1 element to ~24 MiB, most around a few MiB. */
		unsigned k = n % 5;
		uint64_t elems = n % 7 == 3 ? 1 + n % 13 : ((n * 2654435761u) % (6u << 20)) + 1;
		if (off + elems * kinds[k].size > target)
			elems = (target - off) / kinds[k].size + 1;
		uint64_t rows = elems % 3 == 0 ? 3 : 1;
		len += (size_t) snprintf(
			hdr + len, cap - len,
			",\"layers.%u.w\":{\"dtype\":\"%s\",\"shape\":[%" PRIu64 ",%" PRIu64
			"],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}",
			n, kinds[k].dtype, rows, elems / rows, off, off + elems * kinds[k].size);
		off += elems * kinds[k].size;
		n++;
	}
	len += (size_t) snprintf(hdr + len, cap - len, "}");
	while (len % 8)
		hdr[len++] = ' ';

	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", argv[1], (int) getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		perror(tmp);
		return 1;
	}
	uint64_t hl = len; /* little-endian hosts only, as the loader */
	size_t bufsz = 8 << 20;
	uint64_t *buf = malloc(bufsz);
	int ok = write(fd, &hl, 8) == 8 && write(fd, hdr, len) == (ssize_t) len;
	for (uint64_t done = 0; ok && done < off;) {
		for (size_t i = 0; i < bufsz / 8; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = x;
		}
		size_t w = off - done < bufsz ? (size_t) (off - done) : bufsz;
		ok = write(fd, buf, w) == (ssize_t) w;
		done += w;
	}
	if (!ok || close(fd) < 0 || rename(tmp, argv[1]) < 0) {
		perror(argv[1]);
		unlink(tmp);
		return 1;
	}
	printf("%s: %u tensors, %" PRIu64 " bytes of data\n", argv[1], n, off);
	return 0;
}
