/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The OCI names of seccomp actions, operators, architectures and filter
 * flags, mapped to libseccomp's values: one table, used both to compile
 * profiles and to list them in `stoke features`.
 *
 * Thread-safety: read-only data.
 */
#ifndef STOKE_SHIM_SECCOMP_NAMES_H
#define STOKE_SHIM_SECCOMP_NAMES_H

#include <stddef.h>
#include <stdint.h>

struct shim_seccomp_name {
	const char *name;
	uint64_t value;
};

extern const struct shim_seccomp_name shim_seccomp_actions[];	/* SCMP_ACT_*; value is the base */
extern const struct shim_seccomp_name shim_seccomp_operators[]; /* SCMP_CMP_* */
extern const struct shim_seccomp_name shim_seccomp_archs[];	/* SCMP_ARCH_* */
extern const struct shim_seccomp_name shim_seccomp_flags[];	/* SECCOMP_FILTER_FLAG_* */
extern const size_t shim_seccomp_actions_count, shim_seccomp_operators_count,
	shim_seccomp_archs_count, shim_seccomp_flags_count;

/*! shim_seccomp_name_lookup() : the entry named `name` in `table`, or NULL. */
const struct shim_seccomp_name *shim_seccomp_name_lookup(const struct shim_seccomp_name *table,
							 size_t count, const char *name);

#endif
