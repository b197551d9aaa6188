/* SPDX-License-Identifier: Apache-2.0 */
#include "mem-util.h"

#include <stdint.h>
#include <sys/mman.h>

void *cs_mmap_anon_aligned(size_t len, size_t align)
{
	size_t over = len + align;
	uint8_t *p = mmap(NULL, over, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	uintptr_t start = ((uintptr_t) p + align - 1) & ~(uintptr_t) (align - 1);
	size_t head = start - (uintptr_t) p, tail = over - head - len;
	if (head)
		munmap(p, head);
	if (tail)
		munmap((uint8_t *) start + len, tail);
	return (void *) start;
}
