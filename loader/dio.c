/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Direct I/O alignment of a file from statx(STATX_DIOALIGN) (Linux 6.1).
 * Its own file: glibc 2.36's struct statx lacks the stx_dio_* fields, and
 * <linux/stat.h>, which has them, cannot share a unit with <sys/stat.h>.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/stat.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dio.h"

int ldr_dio_align(int fd, uint32_t *ret_align)
{
	struct statx sx = {};
	if (syscall(SYS_statx, fd, "", AT_EMPTY_PATH | AT_STATX_SYNC_AS_STAT, STATX_DIOALIGN, &sx) <
	    0)
		return -errno;
	if (!(sx.stx_mask & STATX_DIOALIGN))
		return -EOPNOTSUPP;
	/* 0 means the file does not support direct I/O at all. */
	uint32_t a = sx.stx_dio_offset_align > sx.stx_dio_mem_align ? sx.stx_dio_offset_align
								    : sx.stx_dio_mem_align;
	*ret_align = sx.stx_dio_offset_align == 0 ? 0 : a;
	return 0;
}
