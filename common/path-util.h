/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Path helpers.
 * Errors: -errno; ret_* written only on success; returned strings are owned
 * by the caller (free()). Thread-safety: no shared state.
 */
#ifndef STOKE_COMMON_PATH_UTIL_H
#define STOKE_COMMON_PATH_UTIL_H

#include <stdbool.h>

/*! cs_path_join() : "a" + "/" + "b" with duplicate slashes at the seam removed. */
int cs_path_join(const char *a, const char *b, char **ret);

/*! cs_path_is_safe_relative() :
 *  True when `path` is non-empty, relative, and has no "..", "." or empty
 *  component: it names something strictly inside whatever directory it is
 *  resolved against (symlinks aside, which callers handle with O_NOFOLLOW
 *  or openat2(RESOLVE_BENEATH)). */
bool cs_path_is_safe_relative(const char *path);

/*! cs_path_is_absolute() : starts with '/'. */
static inline bool cs_path_is_absolute(const char *p)
{
	return p && p[0] == '/';
}

#endif
