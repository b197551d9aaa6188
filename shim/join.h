/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Putting a new process into a container's cgroup without the cost of
 * moving it from outside.
 *
 * Writing another process's pid to cgroup.procs takes the kernel's global
 * cgroup_threadgroup_rwsem for writing, whose first writer after a quiet
 * period waits for an RCU grace period: 10-25 ms on a loaded host, most of
 * a container start. Two ways around it, used here:
 *  - cgroup v2: clone3(CLONE_INTO_CGROUP) starts the child in its cgroup;
 *  - cgroup v1: the single-threaded child moves itself by writing "0" to
 *    each hierarchy's `tasks` file (the kernel skips the global lock when a
 *    thread moves itself), before it changes its credentials.
 * When clone3 is refused (old kernel, seccomp), the parent writes the v2
 * cgroup.procs itself, as before.
 *
 * Errors: 0 or -errno. Thread-safety: single-threaded callers (clone).
 */
#ifndef STOKE_SHIM_JOIN_H
#define STOKE_SHIM_JOIN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct shim_cgroup;

#define SHIM_JOIN_MAX_V1 32

struct shim_join {
	int v2_fd;	    /* O_PATH fd of the cgroup2 directory, or -1 (owned) */
	const char *v2_dir; /* borrowed from the cgroup; NULL if none */
	const char *v1_dirs[SHIM_JOIN_MAX_V1]; /* borrowed from the cgroup */
	size_t n_v1;
	bool into; /* the child was cloned into v2_dir */
};

/*! shim_join_prepare() :
 *  Plan the join for `cg` (NULL: nothing to join): open the v2 directory,
 *  list the v1 ones. `cg` must outlive `j`. Release with shim_join_done().
 * @return : 0, -E2BIG (too many hierarchies), or -errno opening the v2 dir. */
int shim_join_prepare(const struct shim_cgroup *cg, struct shim_join *j);

/*! shim_join_clone() :
 *  fork-like clone with `flags` (CLONE_NEW*): into the v2 cgroup with clone3
 *  when there is one, else (or when clone3 is refused) plain clone.
 * @return : as fork(): 0 in the child, the pid in the parent, or -errno. */
pid_t shim_join_clone(struct shim_join *j, unsigned long flags);

/*! shim_join_parent() :
 *  In the parent after the clone: write `pid` to the v2 cgroup.procs when
 *  the child was not cloned into it. */
int shim_join_parent(const struct shim_join *j, pid_t pid);

/*! shim_join_self() :
 *  In the child, before it changes credentials or namespaces that hide the
 *  host's /sys/fs/cgroup: move itself into every v1 directory. No allocation. */
int shim_join_self(const struct shim_join *j);

/*! shim_join_done() : close what `j` holds. The child calls it too, once
 *  joined: v2_fd is a host directory, a way out of the container's root
 *  through /proc/self/fd (CVE-2024-21626). */
void shim_join_done(struct shim_join *j);

#endif
