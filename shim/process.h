/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Turning the current process into an OCI "process": the steps shared by the
 * container's init (create) and by `stoke exec`, run after clone() and
 * before execve(). Only syscalls and libc: no libcap, no libseccomp, no
 * json-c (capability names were parsed into masks by config.c).
 *
 * Errors: 0 or -errno; `err` receives "what failed" (the caller adds the
 * container). Thread-safety: the calling process only (after clone).
 */
#ifndef STOKE_SHIM_PROCESS_H
#define STOKE_SHIM_PROCESS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "oci-config.h"

struct shim_seccomp_filter;

/*! shim_process_reset_signals() : default dispositions and an empty signal mask
 *  (a runtime's ignored or blocked signals must not reach the container). */
void shim_process_reset_signals(void);

/*! shim_process_apply_early() :
 *  The settings that need the runtime's privileges and host view:
 *  rlimits, oomScoreAdj, scheduler, ioPriority, execCPUAffinity.initial. */
int shim_process_apply_early(const struct shim_process *p, char *err, size_t errlen);

/*! shim_process_setup_terminal() :
 *  Open a new pty in the container's /dev/pts, size it (consoleSize), send
 *  the master over `console_sock` (runc's protocol: the pty's name with the
 *  fd as SCM_RIGHTS), make the slave the controlling terminal and stdio,
 *  and bind it over /dev/console when `bind_console`. */
int shim_process_setup_terminal(const struct shim_process *p, int console_sock, bool bind_console,
				char *err, size_t errlen);

/*! shim_process_apply_identity() :
 *  seccomp (before the user switch when noNewPrivileges is false, as runc),
 *  bounding set, additional gids, gid, uid, capability sets, ambient set,
 *  no_new_privs, seccomp (last when noNewPrivileges). `filter` may be NULL.
 *  *ret_listener gets the seccomp notify fd or -1. */
int shim_process_apply_identity(const struct shim_process *p,
				const struct shim_seccomp_filter *filter, int *ret_listener,
				char *err, size_t errlen);

/*! shim_process_find_exec() :
 *  Resolve args[0] against the process's PATH (from its env, else the
 *  default PATH), as execvp would, into `out`.
 * @return : 0, -ENOENT, -EACCES. */
int shim_process_find_exec(const struct shim_process *p, char out[PATH_MAX]);

/*! shim_process_exec() :
 *  umask, execCPUAffinity.final, then execve(path, args, env). Returns only on failure (-errno). */
int shim_process_exec(const struct shim_process *p, const char *path);

#endif
