/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Replays a fuzz corpus through a libFuzzer target without libFuzzer, so CI
 * runs every saved input as a unit test: fuzz-replay-X DIR... feeds each
 * regular file of each DIR to LLVMFuzzerTestOneInput. A crash or an abort()
 * of a target invariant fails the test; an empty corpus fails too.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cleanup.h"
#include "fd-util.h"
#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	unsigned n = 0;
	for (int i = 1; i < argc; i++) {
		_cleanup_closedir_ DIR *d = opendir(argv[i]);
		if (!d)
			T_FAILF("cannot open corpus %s", argv[i]);
		struct dirent *de;
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			_cleanup_free_ char *path = NULL, *buf = NULL;
			size_t len;
			if (asprintf(&path, "%s/%s", argv[i], de->d_name) < 0)
				T_FAILF("out of memory");
			int r = cs_read_file_at(AT_FDCWD, path, 64u << 20, &buf, &len);
			if (r < 0)
				T_FAILF("%s: %s", path, strerror(-r));
			/* An exact-size copy, so reads past the end are caught by ASan/valgrind. */
			_cleanup_free_ uint8_t *exact = malloc(len ? len : 1);
			memcpy(exact, buf, len);
			LLVMFuzzerTestOneInput(exact, len);
			n++;
		}
	}
	printf("replayed %u inputs\n", n);
	return n > 0 ? T_PASS : T_FAIL;
}
