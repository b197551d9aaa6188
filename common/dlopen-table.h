/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Typed dlopen tables: load a library at run time and fill a table of
 * function pointers, never linking it (libcuda is the user: the build needs
 * only its headers, and machines without a GPU still run every binary).
 *
 * Declare the table with the real prototypes so each pointer is type-checked
 * against the header:
 *
 *   #define MY_SYMS(X) X(cuInit) X(cuDriverGetVersion)
 *   struct my_table {
 *   #define X(s) typeof(&s) s;
 *           MY_SYMS(X)
 *   #undef X
 *   };
 *   static const struct cs_dl_sym my_syms[] = {
 *   #define X(s) CS_DL_SYM(struct my_table, s),
 *           MY_SYMS(X)
 *   #undef X
 *   };
 *
 * Symbols are resolved with dlsym() by default, or through a caller-supplied
 * resolver (for CUDA, cuGetProcAddress, which picks the versioned _v2/_v3
 * entry point matching the headers' CUDA_VERSION).
 *
 * Thread-safety: cs_dl_open_table() writes only the caller's table; the
 * caller serialises loading of a given table (e.g. with pthread_once).
 */
#ifndef STOKE_COMMON_DLOPEN_TABLE_H
#define STOKE_COMMON_DLOPEN_TABLE_H

#include <stddef.h>
#include <stdbool.h>

struct cs_dl_sym {
	const char *name; /* symbol name as the resolver expects it */
	size_t offset;	  /* offset of the function pointer in the table */
	bool optional;	  /* a missing optional symbol leaves NULL and is not an error */
};

#define CS_DL_SYM(table_type, field)          { #field, offsetof(table_type, field), false }
#define CS_DL_SYM_OPTIONAL(table_type, field) { #field, offsetof(table_type, field), true }

/* Resolve `name` into *ret_fn. Returns 0 or -errno (-ENOENT when absent). */
typedef int (*cs_dl_resolver)(void *handle, const char *name, void **ret_fn, void *userdata);

/*! cs_dl_open_table() :
 *  dlopen(`soname`, RTLD_NOW | RTLD_LOCAL) and fill `table` from `syms`.
 *  `resolver` NULL means dlsym(). On success *ret_handle owns the library
 *  (dlclose() it when the table is no longer used); on failure nothing is
 *  kept open and `table` may be partly written.
 *  If `ret_missing` is not NULL, it receives the name of the first missing
 *  required symbol (a static string from `syms`).
 * @return : 0; -ENOENT if the library cannot be loaded; -ENOSYS if a
 *           required symbol is missing; or the resolver's error. */
int cs_dl_open_table(const char *soname, const struct cs_dl_sym *syms, size_t n_syms, void *table,
		     cs_dl_resolver resolver, void *userdata, void **ret_handle,
		     const char **ret_missing);

/*! cs_dl_error() : the last dlerror() text seen by cs_dl_open_table() in this thread, or "". */
const char *cs_dl_error(void);

#endif
