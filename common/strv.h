/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NULL-terminated string vectors (argv, envp).
 * Ownership: a strv and its strings are heap-allocated and owned by whoever
 * holds the vector; cs_strv_free() releases both and accepts NULL.
 * Errors: -ENOMEM. Thread-safety: no shared state.
 */
#ifndef STOKE_COMMON_STRV_H
#define STOKE_COMMON_STRV_H

#include <stddef.h>

char **cs_strv_free(char **v);
size_t cs_strv_length(char *const *v);

/*! cs_strv_push() : append a copy of `s`, keeping the vector NULL-terminated. */
int cs_strv_push(char ***v, const char *s);

/*! cs_strv_env_set() :
 *  Set "KEY=value" in an environment vector: replaces an entry with the same
 *  KEY, or appends. `kv` must contain '='. */
int cs_strv_env_set(char ***v, const char *kv);

static inline void cs_strv_freep(char ***v)
{
	cs_strv_free(*v);
}
#define _cleanup_strv_free_ __attribute__((cleanup(cs_strv_freep)))

#endif
