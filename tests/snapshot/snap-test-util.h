/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the snapshot format's tests. */
#ifndef STOKE_TESTS_SNAP_TEST_UTIL_H
#define STOKE_TESTS_SNAP_TEST_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fd-util.h"
#include "harness.h"

static char test_dir[256];

static inline void remove_test_dir(void)
{
	if (test_dir[0])
		(void) cs_rm_rf_at(AT_FDCWD, test_dir);
}

/* A fresh directory under $TMPDIR (or /var/tmp: a real disk filesystem, so
 * O_DIRECT and holes behave as they do for snapshots), removed at exit. */
static inline const char *make_test_dir(void)
{
	const char *base = getenv("TMPDIR");
	snprintf(test_dir, sizeof(test_dir), "%s/stoke-snap-test-XXXXXX", base ? base : "/var/tmp");
	if (!mkdtemp(test_dir))
		T_FAILF("mkdtemp: %s", strerror(errno));
	atexit(remove_test_dir);
	return test_dir;
}

static inline char *test_path(const char *name)
{
	char *p;
	if (asprintf(&p, "%s/%s", test_dir, name) < 0)
		T_FAILF("asprintf");
	return p;
}

/* Deterministic data: 0 random, 1 text-like (compressible), 2 zeros, 3 mixed. */
static inline void fill_pattern(uint8_t *buf, size_t len, int kind, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		switch (kind) {
		case 0:
			buf[i] = (uint8_t) x;
			break;
		case 1:
			buf[i] = "the quick brown fox jumps over the lazy dog\n"[(i + seed) % 44];
			break;
		case 2:
			buf[i] = 0;
			break;
		default:
			buf[i] = (i / 4096) % 3 == 0   ? 0
				 : (i / 4096) % 3 == 1 ? (uint8_t) x
						       : 'a' + i % 7;
		}
	}
}

static inline uint8_t *read_whole(const char *path, size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		T_FAILF("open %s: %s", path, strerror(errno));
	uint8_t *b = malloc(st.st_size ? st.st_size : 1);
	if (!b || cs_pread_all(fd, b, st.st_size, 0) != st.st_size)
		T_FAILF("read %s", path);
	close(fd);
	*ret_len = st.st_size;
	return b;
}

static inline int memfd_with(const void *data, size_t len)
{
	int fd = memfd_create("snap", MFD_CLOEXEC);
	if (fd < 0 || cs_write_all(fd, data, len) < 0)
		T_FAILF("memfd: %s", strerror(errno));
	return fd;
}

#endif
