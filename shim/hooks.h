/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OCI hooks: run each hook of a list in order, with the container's state
 * JSON on its stdin, its own args and env, and its timeout.
 *
 * Errors: 0, or -errno (-ETIMEDOUT when a hook outlived its timeout and was
 * killed, -EIO when it exited non-zero or died of a signal); `err` names the hook
 * ("hooks.createRuntime[1] /usr/bin/x: exited with status 3").
 * Thread-safety: forks; single-threaded callers only.
 */
#ifndef STOKE_SHIM_HOOKS_H
#define STOKE_SHIM_HOOKS_H

#include <stddef.h>

#include "oci-config.h"

/*! shim_hooks_run() :
 *  Run every hook of kind `kind` in `cfg` in order; stop at the first that
 *  fails, except for poststart and poststop, where the spec wants the
 *  remaining hooks run anyway (the first failure is still returned). `state_json` (borrowed) is
 * written to each hook's stdin.
 * @return : 0, -ETIMEDOUT, -EIO (non-zero exit or killed by a signal), or -errno. */
int shim_hooks_run(const struct shim_config *cfg, enum shim_hook_kind kind, const char *state_json,
		   char *err, size_t errlen);

#endif
