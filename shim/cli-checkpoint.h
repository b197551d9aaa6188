/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `stoke checkpoint`, `stoke restore` and restore-on-create: containers
 * through snapshot/'s public checkpoint API (stoke-checkpoint.h) and the
 * snapshot file format (stoke-snapshot.h).
 *
 * What a checkpoint holds (CRIU's image directory, or the same tree inside
 * a snapshot file):
 *   CRIU's images, stoke-gpu.json (CUDA processes and GPU map),
 *   stoke-meta.json (the container's config.json, a fingerprint of its
 *   rootfs, its stdio descriptors), checked against the new bundle before
 *   any process is created.
 *
 * Errors: the verbs log once and return an exit status; the other functions
 * return 0 or -errno and write a message into `err`.
 * Thread-safety: single-threaded callers only (the runtime's rule).
 */
#ifndef STOKE_SHIM_CLI_CHECKPOINT_H
#define STOKE_SHIM_CLI_CHECKPOINT_H

#include <stddef.h>
#include <sys/types.h>

#include "oci-config.h"
#include "container.h"
#include "stoke-runtime-cli.h"

/* The annotation that turns `stoke create` into a restore. */
#define SHIM_SNAPSHOT_ANNOTATION "org.stoke.snapshot"
/* Restore-on-create's deadline for CRIU, in seconds (as --criu-timeout). */
#define SHIM_CRIU_TIMEOUT_ANNOTATION "org.stoke.criu-timeout"

/*! shim_cmd_checkpoint() / shim_cmd_restore() : the verbs (runc's flags).
 * @return : the process exit status. */
int shim_cmd_checkpoint(int argc, char **argv, const struct shim_globals *g);
int shim_cmd_restore(int argc, char **argv, const struct shim_globals *g);

/*! shim_cmd_check() : `stoke check`, what works on this host (cli-check.c).
 * @return : the process exit status (1: checkpoint/restore cannot work). */
int shim_cmd_check(int argc, char **argv, const struct shim_globals *g);

/*! shim_cr_snapshot_of() :
 *  The snapshot path named by `cfg`'s org.stoke.snapshot annotation (borrowed
 *  from cfg), or NULL when it has none. */
const char *shim_cr_snapshot_of(const struct shim_config *cfg);

/*! shim_cr_create_restore() :
 *  `stoke create` for a bundle whose config names a snapshot: restore the
 *  process tree from it into a new container `o->id`, stopped, in the
 *  "created" state; `stoke start` (the usual exec fifo) lets it run. The
 *  snapshot is checked against `cfg` before any process exists. On failure
 *  nothing is left (no process, mount, cgroup or state).
 *  Options of `o` used: id, root, pid_file, console_socket, no_pivot,
 *  criu_path. The deadline comes from the org.stoke.criu-timeout annotation.
 * @return : 0, or -errno with `err` set. *ret_pid: the restored init. */
int shim_cr_create_restore(const struct shim_config *cfg, const struct shim_create_opts *o,
			   pid_t *ret_pid, char *err, size_t errlen);

#endif
