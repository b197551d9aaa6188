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
 *  fd as SCM_RIGHTS), give the slave to process.user's uid, make it the
 *  controlling terminal (starting a new session first when the caller does
 *  not lead one) and stdio, and bind it over /dev/console when `bind_console`. */
int shim_process_setup_terminal(const struct shim_process *p, int console_sock, bool bind_console,
				char *err, size_t errlen);

/*! shim_process_close_fds() :
 *  Close every descriptor above stdio except the `n_preserve` ones from 3
 *  (--preserve-fds), which lose O_CLOEXEC, and the `n_keep` in `keep`: the
 *  runtime's own that the process still needs until execve (sync socket,
 *  exec fifo); those must carry O_CLOEXEC and must not be directories.
 *  Call before the cwd is created or entered: any directory fd left open
 *  is a way out of the rootfs through /proc/self/fd (CVE-2024-21626). */
int shim_process_close_fds(int n_preserve, const int *keep, size_t n_keep);

/*! shim_process_mkdir_cwd() :
 *  Create a missing `cwd` and its parents (0755) as runc does, resolving
 *  every component without /proc magic links, so that a cwd such as
 *  /proc/1/root/x or a symlink to /proc/self/fd/N cannot create directories
 *  outside the root. Best effort (the chdir reports what is wrong).
 * @return : 0, or -errno (-ELOOP for a magic link on the way). */
int shim_process_mkdir_cwd(const char *cwd);

/*! shim_process_chdir() :
 *  chdir(cwd), then check that the directory entered is inside the
 *  process's root: one reached through a leaked or preserved descriptor or
 *  another /proc link is refused (-EPERM) before anything runs there. */
int shim_process_chdir(const char *cwd, char *err, size_t errlen);

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
