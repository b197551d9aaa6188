/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Replays fuzz inputs through LLVMFuzzerTestOneInput without libFuzzer:
 * each argument is a file or a directory of files. Run as a unit test over
 * tests/snapshot/corpus, so the corpus (and every crash reproducer added to
 * it) is checked in CI with the normal compiler. Fails if the corpus is
 * missing or empty (a test that cannot see its inputs must not pass).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fd-util.h"
#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t replay_file(int dirfd, const char *name)
{
	char *buf = NULL;
	size_t len = 0;
	int r = cs_read_file_at(dirfd, name, 64 << 20, &buf, &len);
	if (r < 0)
		T_FAILF("cannot read %s: %s", name, strerror(-r));
	LLVMFuzzerTestOneInput((const uint8_t *) buf, len);
	free(buf);
	return 1;
}

int main(int argc, char **argv)
{
	size_t n = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0)
			T_FAILF("%s: %s", argv[i], strerror(errno));
		if (!S_ISDIR(st.st_mode)) {
			n += replay_file(AT_FDCWD, argv[i]);
			continue;
		}
		DIR *d = opendir(argv[i]);
		if (!d)
			T_FAILF("%s: %s", argv[i], strerror(errno));
		for (struct dirent *de; (de = readdir(d));)
			if (de->d_name[0] != '.')
				n += replay_file(dirfd(d), de->d_name);
		closedir(d);
	}
	printf("replayed %zu inputs\n", n);
	ASSERT_TRUE(n > 0);
	return 0;
}
