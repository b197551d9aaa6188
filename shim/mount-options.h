/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The mount options stoke understands in an OCI config's mounts[].options:
 * one table, used both to apply mounts and to list them in `stoke features`.
 *
 * Thread-safety: read-only data.
 */
#ifndef STOKE_SHIM_MOUNT_OPTIONS_H
#define STOKE_SHIM_MOUNT_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum shim_mount_option_kind {
	SHIM_MOPT_FLAG,	       /* a mount(2) flag: set or cleared */
	SHIM_MOPT_PROPAGATION, /* MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE, maybe | MS_REC */
	SHIM_MOPT_RECURSIVE,   /* "r*" attribute applied with mount_setattr(AT_RECURSIVE) */
	SHIM_MOPT_BIND,	       /* bind / rbind */
	SHIM_MOPT_EXTENSION,   /* handled by the runtime itself (tmpcopyup, idmap, ridmap) */
};

struct shim_mount_option {
	const char *name;
	enum shim_mount_option_kind kind;
	bool clear;	     /* SHIM_MOPT_FLAG/RECURSIVE: clear rather than set */
	unsigned long flags; /* MS_* value for FLAG, PROPAGATION and BIND */
	uint64_t attr;	     /* MOUNT_ATTR_* value for RECURSIVE */
};

extern const struct shim_mount_option shim_mount_options[];
extern const size_t shim_mount_options_count;

/*! shim_mount_option_lookup() : the entry for `name`, or NULL if unknown
 *  (unknown options are passed to the filesystem as data, as runc does). */
const struct shim_mount_option *shim_mount_option_lookup(const char *name);

#endif
