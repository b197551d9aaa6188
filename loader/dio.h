/* SPDX-License-Identifier: Apache-2.0 */
#ifndef STOKE_LOADER_DIO_H
#define STOKE_LOADER_DIO_H

#include <stdint.h>

/*! ldr_dio_align() :
 *  The alignment (bytes) that direct I/O on `fd` needs for file offsets,
 *  lengths and buffers, or 0 when the file does not support direct I/O.
 * @return : 0; -EOPNOTSUPP when the kernel or filesystem does not say
 *           (before Linux 6.1); other -errno from statx. Thread-safe. */
int ldr_dio_align(int fd, uint32_t *ret_align);

#endif
