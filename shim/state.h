/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A container's persistent state, kept under the runtime's --root
 * (default /run/stoke):
 *
 *   ROOT/ID/state.json   this struct, written atomically (temp file, rename; no fsync)
 *   ROOT/ID/exec.fifo    exists between create and start; the container's
 *                        init blocks reading it until `stoke start` writes
 *
 * state.json (version 1) holds: id, bundle, rootfs, pid and the pid's start
 * time (from /proc/PID/stat, so a reused pid is never mistaken for the
 * container), created (RFC 3339, nanoseconds), owner, annotations, the
 * cgroup (shim_cgroup_to_json()), whether `start` ran, and the container's
 * whole config.json document (for exec, poststop hooks, restore).
 *
 * The status is never stored: shim_state_status() derives it like runc
 * (process gone: stopped; fifo present: created; frozen cgroup: paused;
 * else running).
 *
 * Errors: 0 or -errno; ret_* written only on success. -ENOENT from load
 * means "container does not exist". Ownership: a struct shim_state owns its
 * strings and json objects; shim_state_free() releases them.
 * Thread-safety: none; concurrent stoke processes serialise per container
 * with shim_state_lock().
 */
#ifndef STOKE_SHIM_STATE_H
#define STOKE_SHIM_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <json-c/json.h>

#define SHIM_STATE_VERSION 1

enum shim_status {
	SHIM_STATUS_CREATING = 0,
	SHIM_STATUS_CREATED,
	SHIM_STATUS_RUNNING,
	SHIM_STATUS_PAUSED,
	SHIM_STATUS_STOPPED,
};

/*! shim_status_name() : "creating", "created", "running", "paused", "stopped". */
const char *shim_status_name(enum shim_status s);

struct shim_state {
	char *id;
	char *bundle;		  /* absolute */
	char *rootfs;		  /* absolute */
	pid_t pid;		  /* the container's init, in the runtime's pid namespace */
	uint64_t pid_start_time;  /* field 22 of /proc/PID/stat; 0: unknown */
	char *created;		  /* RFC 3339 with nanoseconds, UTC */
	char *owner;		  /* "" as runc prints for root */
	bool started;		  /* `stoke start` (or run) has released the init */
	json_object *annotations; /* owned; may be NULL */
	json_object *cgroup;	  /* owned; shim_cgroup_to_json() output; may be NULL */
	json_object *config;	  /* owned; the bundle's config.json; may be NULL */
};

/*! shim_state_dir() : ROOT/ID as a new string (caller frees). @return : 0, -EINVAL (bad id),
 * -ENOMEM. */
int shim_state_dir(const char *root, const char *id, char **ret);

/*! shim_state_id_valid() : ids are 1-1024 chars of [A-Za-z0-9_+.-], not "." or ".." (runc's rule).
 */
bool shim_state_id_valid(const char *id);

/*! shim_state_save() :
 *  Write ROOT/ID/state.json atomically (the directory must exist).
 * @return : 0 or -errno. */
int shim_state_save(const char *root, const struct shim_state *s);

/*! shim_state_load() :
 *  Read ROOT/ID/state.json. *ret is owned by the caller (shim_state_free()).
 * @return : 0, -ENOENT (no such container), -EINVAL (bad id or damaged
 *           file), -EPROTONOSUPPORT (newer state version), or -errno. */
int shim_state_load(const char *root, const char *id, struct shim_state **ret);

/*! shim_state_remove() :
 *  Remove ROOT/ID and everything in it. A missing directory is success.
 * @return : 0 or -errno. */
int shim_state_remove(const char *root, const char *id);

/*! shim_state_list() :
 *  The ids of every container under ROOT (directories holding a
 *  state.json), sorted. *ret is a NULL-terminated strv (cs_strv_free()); a
 *  missing ROOT gives an empty list.
 * @return : 0 or -errno. */
int shim_state_list(const char *root, char ***ret);

/*! shim_state_lock() :
 *  Take an exclusive flock on ROOT/ID (the directory) so two stoke
 *  processes do not change one container at once. *ret_fd holds the lock
 *  until closed. @return : 0, -ENOENT (no such container), or -errno. */
int shim_state_lock(const char *root, const char *id, int *ret_fd);

/*! shim_state_pid_alive() :
 *  Whether s->pid still runs and is the same process (start time matches)
 *  and is not a zombie. */
bool shim_state_pid_alive(const struct shim_state *s);

/*! shim_state_status() :
 *  The container's status now (see the file comment). `root` is where the
 *  state lives (for the exec fifo). Never fails: an unreadable cgroup
 *  counts as not frozen. */
enum shim_status shim_state_status(const char *root, const struct shim_state *s);

/*! shim_state_oci_json() :
 *  The runtime-spec state document as `stoke state` prints it (runc's
 *  shape: ociVersion, id, pid, status, bundle, rootfs, created, owner,
 *  annotations). pid is 0 when stopped. *ret owned by the caller.
 * @return : 0 or -ENOMEM. */
int shim_state_oci_json(const struct shim_state *s, enum shim_status status, json_object **ret);

/*! shim_pid_start_time() : field 22 (starttime) of /proc/PID/stat. @return : 0 or -errno. */
int shim_pid_start_time(pid_t pid, uint64_t *ret);

/*! shim_state_free() : release `s` (NULL is fine). @return : NULL. */
struct shim_state *shim_state_free(struct shim_state *s);

static inline void shim_state_freep(struct shim_state **s)
{
	shim_state_free(*s);
}

#endif
