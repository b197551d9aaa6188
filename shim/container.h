/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Creating a container: the one clone with the namespaces, the child's
 * set-up (mounts, pivot_root, devices, hooks, rlimits, user, capabilities,
 * seccomp), and the parent's side (uid/gid maps, cgroup, hooks, state).
 *
 * Flow of shim_container_create():
 *   parent: cgroup created, seccomp BPF prepared (cached), console socket
 *           connected, exec fifo made, then ONE clone() with every new
 *           namespace flag (or, when a namespace is joined by path or a time
 *           namespace is requested, clone + setns/unshare + one fork in the
 *           child) → writes uid/gid maps, moves the child into the cgroup,
 *           runs prestart/createRuntime hooks when the child asks, waits for
 *           the child's READY record, writes the state file and the pid file.
 *   child:  mounts (shim_rootfs_prepare()), createContainer hooks,
 *           pivot_root (shim_rootfs_finish()), sysctl, hostname, rlimits,
 *           terminal, user, capabilities, no_new_privs, seccomp; sends READY
 *           and blocks on the exec fifo (create) or goes on at once (run);
 *           startContainer hooks; execve().
 * Errors in the child travel back as fixed-size records over a
 * SOCK_SEQPACKET socketpair (struct shim_sync_msg) and are logged once by the
 * command layer. Nothing created is left behind when create fails.
 *
 * Errors: 0 or -errno; `err` (may be NULL) gets a message saying which step
 * failed and why. Thread-safety: single-threaded callers only (clone()).
 */
#ifndef STOKE_SHIM_CONTAINER_H
#define STOKE_SHIM_CONTAINER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "oci-config.h"
#include "state.h"

struct shim_create_opts {
	const char *id;
	const char *root;	    /* state directory (--root) */
	const char *pid_file;	    /* NULL: none */
	const char *console_socket; /* NULL: none (required when process.terminal) */
	bool no_pivot;		    /* chroot + MS_MOVE instead of pivot_root */
	bool no_new_keyring;	    /* keep the runtime's session keyring */
	int preserve_fds;	    /* pass fds 3 .. 3+preserve_fds-1 to the container */
	bool start_now;		    /* `run`: no exec fifo, start at once */
	int console_fd;		    /* >= 0: an already connected console socket (run -t) */
	bool subreaper;		    /* foreground run: become the init's reaper */
	const char *criu_path;	    /* restore-on-create: --criu (NULL: criu from PATH) */
};

/*! shim_container_create() :
 *  Create container `o->id` from `cfg` (validated by shim_config_load()).
 *  On success the container's init is waiting for `stoke start` (or, with
 *  start_now, running), ROOT/ID/state.json exists, and *ret_pid is the
 *  init's pid. On failure everything created (cgroup, state dir, process)
 *  is removed again.
 * @return : 0, -EEXIST (id in use), or -errno (see `err`). */
int shim_container_create(const struct shim_config *cfg, const struct shim_create_opts *o,
			  pid_t *ret_pid, char *err, size_t errlen);

/*! shim_container_start() :
 *  Release a created container's init (write its exec fifo), then run the
 *  poststart hooks. `s` is updated (started = true) and saved. A failing
 *  poststart hook fails the start, as runc: the container is deleted (its
 *  poststop hooks run) and `err` holds the hook's message.
 * @return : 0, -EINVAL (not in "created" state), -ESRCH (init gone), or -errno. */
int shim_container_start(const char *root, struct shim_state *s, char *err, size_t errlen);

/*! shim_container_destroy() :
 *  Kill every process left in the container (SIGKILL), wait for the init,
 *  remove the cgroup, run the poststop hooks and remove the state
 *  directory. A failing poststop hook does not stop the deletion (the
 *  spec): on success its message is left in `err` (non-empty) for the
 *  caller to log as a warning.
 * @return : 0, or the first -errno (removal goes on past it). */
int shim_container_destroy(const char *root, struct shim_state *s, char *err, size_t errlen);

struct shim_exec_opts {
	const char *pid_file; /* NULL: none */
	const char *
		console_socket; /* NULL: none (required with process->terminal unless console_fd) */
	int console_fd;		/* >= 0: an already connected console socket */
	int preserve_fds;
	bool detach; /* return once the process runs (else the caller waits) */
};

/*! shim_container_exec() :
 *  Start `p` inside running container `s` (`stoke exec`): join its
 *  namespaces (from /proc/PID/ns) and cgroup, apply the process's user,
 *  capabilities, rlimits, terminal, the container's seccomp profile (from
 *  `cfg`, cached BPF), and execve. *ret_pid is the new process (a child of
 *  the caller, which may wait for it).
 * @return : 0, -ESRCH (container not running), or -errno (see `err`). */
int shim_container_exec(const char *root, const struct shim_state *s, const struct shim_config *cfg,
			const struct shim_process *p, const struct shim_exec_opts *o,
			pid_t *ret_pid, char *err, size_t errlen);

/* Set-up steps, usable on their own by restore (snapshot/CRIU), which
 * recreates the process tree itself but needs the same mounts. */

struct shim_cgroup;

struct shim_rootfs_opts {
	const struct shim_cgroup
		*cgroup;   /* the container's cgroup, for cgroup mounts; may be NULL */
	bool userns;	   /* running in a new user namespace (mknod refused: bind devices) */
	bool new_cgroupns; /* a new cgroup namespace: mount cgroup fs instead of binding */
};

/*! shim_write_id_map() :
 *  Write the mappings `m` (n entries) to /proc/`pid`/`file` ("uid_map" or
 *  "gid_map"), in one write as the kernel requires.
 * @return : 0, -E2BIG if they do not fit a page, or -errno. */
int shim_write_id_map(pid_t pid, const char *file, const struct shim_id_map *m, size_t n);

/*! shim_rootfs_prepare() :
 *  In a process that already has its own mount namespace: make "/"
 *  rslave (or linux.rootfsPropagation), bind the rootfs onto itself and
 *  apply every entry of mounts[] under it, then create the default and
 *  configured devices and /dev symlinks. Leaves the process's root
 *  unchanged, so the caller may still reach host paths (CRIU images).
 * @return : 0 or -errno (`err` names the mount and the reason). */
int shim_rootfs_prepare(const struct shim_config *cfg, const struct shim_rootfs_opts *o, char *err,
			size_t errlen);

/*! shim_rootfs_finish() :
 *  pivot_root into the prepared rootfs (chroot with `no_pivot`), then apply
 *  maskedPaths, readonlyPaths, root.readonly and rootfsPropagation.
 * @return : 0 or -errno (see `err`). */
int shim_rootfs_finish(const struct shim_config *cfg, bool no_pivot, char *err, size_t errlen);

#endif
