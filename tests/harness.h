/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A minimal test harness: each test program is its own main() that runs its
 * cases with RUN_TEST() and exits 0 (pass), 1 (fail) or 77 (skip), which is
 * meson's exitcode protocol. Failed assertions print file:line and the
 * expression, then exit 1 at once (cleanup runs through atexit handlers that
 * tests register for anything outside the process: mounts, cgroups, dirs).
 */
#ifndef STOKE_TESTS_HARNESS_H
#define STOKE_TESTS_HARNESS_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { T_PASS = 0, T_FAIL = 1, T_SKIP = 77 };

#define T_FAILF(...)                                                                               \
	do {                                                                                       \
		fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                    \
		fprintf(stderr, __VA_ARGS__);                                                      \
		fputc('\n', stderr);                                                               \
		exit(T_FAIL);                                                                      \
	} while (0)

#define ASSERT_TRUE(e)                                                                             \
	do {                                                                                       \
		if (!(e))                                                                          \
			T_FAILF("assertion failed: %s", #e);                                       \
	} while (0)

#define ASSERT_FALSE(e) ASSERT_TRUE(!(e))

/* For functions returning -errno. */
#define ASSERT_OK(e)                                                                               \
	do {                                                                                       \
		long long _r = (long long) (e);                                                    \
		if (_r < 0)                                                                        \
			T_FAILF("%s = %lld (%s)", #e, _r, strerror((int) -_r));                    \
	} while (0)

#define ASSERT_ERR(e, expected)                                                                    \
	do {                                                                                       \
		long long _r = (long long) (e);                                                    \
		if (_r != (long long) (expected))                                                  \
			T_FAILF("%s = %lld (%s), expected %s = %lld", #e, _r,                      \
				_r < 0 ? strerror((int) -_r) : "no error", #expected,              \
				(long long) (expected));                                           \
	} while (0)

#define ASSERT_EQ(a, b)                                                                            \
	do {                                                                                       \
		long long _a = (long long) (a), _b = (long long) (b);                              \
		if (_a != _b)                                                                      \
			T_FAILF("%s == %s: %lld != %lld", #a, #b, _a, _b);                         \
	} while (0)

#define ASSERT_STREQ(a, b)                                                                         \
	do {                                                                                       \
		const char *_a = (a), *_b = (b);                                                   \
		if (!_a || !_b || strcmp(_a, _b) != 0)                                             \
			T_FAILF("%s == %s: \"%s\" != \"%s\"", #a, #b, _a ? _a : "(null)",          \
				_b ? _b : "(null)");                                               \
	} while (0)

/* Skip the whole program (exit 77) when a prerequisite is missing. */
#define T_REQUIRE(cond, why)                                                                       \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			printf("skip: %s\n", why);                                                 \
			exit(T_SKIP);                                                              \
		}                                                                                  \
	} while (0)

#define RUN_TEST(fn)                                                                               \
	do {                                                                                       \
		printf("# %s\n", #fn);                                                             \
		fflush(stdout);                                                                    \
		fn();                                                                              \
		printf("ok %s\n", #fn);                                                            \
	} while (0)

#endif
