/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Memory mapping helpers shared by the runtime's host probes and the
 * loader.
 *
 * Thread-safety: no shared state.
 */
#ifndef STOKE_COMMON_MEM_UTIL_H
#define STOKE_COMMON_MEM_UTIL_H

#include <stddef.h>

#define CS_HUGE_PAGE_SIZE (2UL << 20)

/*! cs_mmap_anon_aligned() :
 *  Private anonymous read-write memory of `len` bytes whose start is a
 *  multiple of `align` (a power of two), so huge pages can back it: maps
 *  len + align bytes and unmaps the head and tail. The caller owns exactly
 *  [ret, ret + len) and releases it with munmap(ret, len).
 * @return : the start, or NULL (errno set) when the mapping fails. */
void *cs_mmap_anon_aligned(size_t len, size_t align);

#endif
