/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One time type: nanoseconds as uint64_t. Thread-safe.
 */
#ifndef STOKE_COMMON_TIME_UTIL_H
#define STOKE_COMMON_TIME_UTIL_H

#include <stdint.h>
#include <time.h>

#define CS_NSEC_PER_SEC	 UINT64_C(1000000000)
#define CS_NSEC_PER_MSEC UINT64_C(1000000)

static inline uint64_t cs_now_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (uint64_t) ts.tv_sec * CS_NSEC_PER_SEC + (uint64_t) ts.tv_nsec;
}

static inline uint64_t cs_monotonic_ns(void)
{
	return cs_now_ns(CLOCK_MONOTONIC);
}

static inline double cs_ns_to_ms(uint64_t ns)
{
	return (double) ns / 1e6;
}

#endif
