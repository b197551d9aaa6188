/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the snapshot reader: the input is a whole snapshot
 * file. It is opened from a memfd (header, footer and index validation),
 * and when it opens, every entry is read and the file verified through both
 * I/O paths. Nothing may crash, hang or read out of bounds (ASan/UBSan).
 * The same function is replayed over tests/snapshot/corpus by
 * fuzz-replay.c in the unit suite.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fd-util.h"
#include "stoke-snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_everything(int fd, unsigned flags)
{
	struct snap_reader_options o = {.flags = flags, .threads = 2};
	struct snap_reader *r = NULL;
	static uint8_t buf[1 << 16];

	if (snap_reader_open_fd(fd, &o, &r) < 0)
		return;
	for (size_t i = 0; i < snap_reader_entry_count(r); i++) {
		struct snap_entry_info info;
		if (snap_reader_entry(r, i, &info) < 0)
			abort(); /* an index in range must describe an entry */
		(void) snap_reader_pread(r, i, buf, sizeof(buf), 0);
		if (info.size > 10)
			(void) snap_reader_pread(r, i, buf, 100, info.size - 10);
		size_t found;
		if (snap_reader_find(r, info.name, &found) < 0 || found != i)
			abort(); /* names are unique and findable */
	}
	(void) snap_reader_verify(r);
	snap_reader_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (cs_write_all(fd, data, size) == 0) {
		read_everything(fd, SNAP_READER_FORCE_PREAD);
		read_everything(fd, 0);
	}
	close(fd);
	return 0;
}
