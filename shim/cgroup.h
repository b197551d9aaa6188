/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A container's cgroup: create it, apply linux.resources, move processes in,
 * freeze, count, signal, report stats, remove.
 *
 * Layouts, detected at run time (statfs magic of /sys/fs/cgroup):
 *  - v2 only    : /sys/fs/cgroup is cgroup2; one directory per container.
 *  - v1 only    : one directory per mounted v1 hierarchy (found in
 *                 /proc/self/mountinfo, co-mounted controllers handled).
 *  - hybrid     : v1 hierarchies plus a cgroup2 mount at
 *                 /sys/fs/cgroup/unified. The container gets a directory in
 *                 every v1 hierarchy AND in the unified one; each resource is
 *                 applied where its controller lives (v1 first, else unified:
 *                 hugetlb on this project's hosts). Never refused.
 *
 * Paths (runc's rules): an absolute cgroupsPath is taken from the root of each
 * hierarchy; a relative one from the runtime's own cgroup in that hierarchy;
 * NULL means "stoke/<id>" relative to the runtime's own cgroup.
 *
 * Device rules: v1 writes devices.deny / devices.allow in order; v2 loads a
 * BPF_PROG_TYPE_CGROUP_DEVICE program (built here, no libbpf) and attaches it
 * with BPF_F_ALLOW_MULTI, replacing the previous one on update. runc's default
 * allowed devices (null, zero, full, tty, random, urandom, ptmx, pts, ...) are
 * appended after the config's rules, as runc does.
 *
 * Errors: every function returns 0 on success and -errno on failure; ret_*
 * out-parameters are written only on success. After a failing create/update
 * shim_cgroup_last_error() says which resource/file failed and why.
 * Ownership: a struct shim_cgroup is owned by the caller of create/from_json
 * and released with shim_cgroup_free() (which never removes directories;
 * shim_cgroup_destroy() does).
 * Thread-safety: none; the runtime is single-threaded. A struct must not be
 * used from two threads, and shim_cgroup_last_error() is process-global.
 */
#ifndef STOKE_SHIM_CGROUP_H
#define STOKE_SHIM_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <json-c/json.h>

struct shim_cgroup;

enum shim_cgroup_layout {
	SHIM_CGROUP_V1 = 1,
	SHIM_CGROUP_V2 = 2,
	SHIM_CGROUP_HYBRID = 3,
};

/*! shim_cgroup_detect_layout() :
 *  Which layout this host has (statfs of /sys/fs/cgroup and .../unified).
 *  Result cached after the first call.
 * @return : a enum shim_cgroup_layout value, or -ENOMEDIUM if no cgroup
 *           filesystem is mounted at /sys/fs/cgroup. */
int shim_cgroup_detect_layout(void);

/*! shim_cgroup_validate() :
 *  Check linux.cgroupsPath and linux.resources of an OCI config's "linux"
 *  object (may be NULL: nothing to check): value types, ranges, unknown keys,
 *  device rules, unified keys, hugepage sizes, and whether this host has the
 *  controllers the config needs (runc's silent ignores excepted).
 *  Creates nothing. On failure writes a message naming the field into `err`
 *  (e.g. "linux.resources.memory.swappiness: 150 is out of range 0-100").
 * @return : 0, -EINVAL (bad value), -EOPNOTSUPP (host cannot do it). */
int shim_cgroup_validate(json_object *linux_obj, char *err, size_t errlen);

/*! shim_cgroup_create() :
 *  Create the container's cgroup directories (parents too) and apply
 *  `resources` (an OCI linux.resources object, may be NULL). `cgroups_path`
 *  NULL means the default "stoke/<id>". Directories this call created are
 *  removed again on failure; existing ones are reused (joining a cgroup),
 *  unless frozen (v1 freezer.state, v2 cgroup.freeze or an ancestor's):
 *  a process moved there would hang, so that is refused, as runc does.
 *  *ret is owned by the caller (shim_cgroup_free()).
 * @return : 0, -EINVAL, -EOPNOTSUPP (controller missing), -EBUSY (frozen),
 *           or the -errno of the failing write (see shim_cgroup_last_error()). */
int shim_cgroup_create(const char *cgroups_path, const char *id, json_object *resources,
		       struct shim_cgroup **ret);

/*! shim_cgroup_enter() :
 *  Move `pid` (a process, all its threads) into every directory of `cg`.
 * @return : 0, or -errno (-ESRCH if the process is gone). */
int shim_cgroup_enter(struct shim_cgroup *cg, pid_t pid);

/*! shim_cgroup_update() :
 *  Apply `resources` to a live cgroup (`stoke update`): only the keys
 *  present are written; device rules replace the previous set.
 * @return : 0, or -errno (see shim_cgroup_last_error()). */
int shim_cgroup_update(struct shim_cgroup *cg, json_object *resources);

/*! shim_cgroup_freeze() :
 *  Freeze (v1 freezer.state FROZEN / v2 cgroup.freeze 1) or thaw, and wait
 *  until the kernel reports the new state (at most ~10 s).
 * @return : 0, -ETIMEDOUT, -EOPNOTSUPP (no freezer), or -errno. */
int shim_cgroup_freeze(struct shim_cgroup *cg, bool frozen);

/*! shim_cgroup_is_frozen() : whether the cgroup is frozen now (`stoke state`: "paused"). */
int shim_cgroup_is_frozen(struct shim_cgroup *cg, bool *ret);

/*! shim_cgroup_pids() :
 *  Every process in the cgroup and its descendants (cgroup.procs), sorted,
 *  no duplicates. *ret is a malloc()ed array owned by the caller; it is NULL
 *  when *ret_n is 0.
 * @return : 0, or -errno. */
int shim_cgroup_pids(struct shim_cgroup *cg, pid_t **ret, size_t *ret_n);

/*! shim_cgroup_stats() :
 *  The "data" object of `runc events --stats`: {"cpu":{"usage":{total,
 *  percpu,kernel,user},"throttling":{...}},"memory":{"usage":{...},"swap":
 *  {...},"kernel":{...},"raw":{...}},"pids":{current,limit},"blkio":{...},
 *  "hugetlb":{"2MB":{usage,max,failcnt}}}. Sections whose controller is
 *  missing are left out. *ret is owned by the caller (json_object_put()).
 * @return : 0, or -errno. */
int shim_cgroup_stats(struct shim_cgroup *cg, json_object **ret);

/*! shim_cgroup_oom_kill_count() :
 *  How many processes the OOM killer killed in this cgroup (v2
 *  memory.events oom_kill, v1 memory.oom_control oom_kill), for `events`.
 * @return : 0, -EOPNOTSUPP (no memory controller / kernel without the
 *           counter), or -errno. */
int shim_cgroup_oom_kill_count(struct shim_cgroup *cg, uint64_t *ret);

/*! shim_cgroup_kill_all() :
 *  Send `sig` to every process in the cgroup: v2 cgroup.kill for SIGKILL
 *  where present; otherwise freeze, signal each pid, thaw (so no process
 *  forks out of reach meanwhile). A paused (frozen) container stays
 *  paused, its signals pending, except for SIGKILL, which thaws it.
 * @return : 0 (also when the cgroup was already empty), or -errno. */
int shim_cgroup_kill_all(struct shim_cgroup *cg, int sig);

/*! shim_cgroup_destroy() :
 *  Remove the container's directories (deepest first, and parents this
 *  library created, e.g. the default "stoke" parent, when they are empty).
 *  Retries briefly while the kernel still reports EBUSY (processes exiting);
 *  detaches the v2 device program. Missing directories are fine.
 *  Does not free `cg`.
 * @return : 0, -EBUSY (processes remain), or -errno. */
int shim_cgroup_destroy(struct shim_cgroup *cg);

/*! shim_cgroup_to_json() / shim_cgroup_from_json() :
 *  Serialise what later `stoke kill/pause/delete/update/events` need (the
 *  layout and every directory) for the container's state file, and read it
 *  back. No filesystem access in either. Objects returned are owned by the
 *  caller (json_object_put() / shim_cgroup_free()).
 * @return : 0, -ENOMEM, or -EINVAL (from_json: malformed object). */
int shim_cgroup_to_json(const struct shim_cgroup *cg, json_object **ret);
int shim_cgroup_from_json(json_object *o, struct shim_cgroup **ret);

/*! shim_cgroup_path() :
 *  The container's cgroup path as seen from the unified (or, v1 only, the
 *  first) hierarchy's root, e.g. "/stoke/abc" (for /proc/<pid>/cgroup and
 *  cgroup namespace set-up). Borrowed from `cg`. */
const char *shim_cgroup_path(const struct shim_cgroup *cg);

/*! shim_cgroup_n_dirs() / shim_cgroup_dir() :
 *  The directories of `cg`, for mounting the container's /sys/fs/cgroup:
 *  for index i < n, *ret_mount is the hierarchy's mount point
 *  ("/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"),
 *  *ret_dir the container's directory in it, *ret_version 1 or 2. Strings
 *  are borrowed from `cg`. @return : 0, or -ERANGE for a bad index. */
size_t shim_cgroup_n_dirs(const struct shim_cgroup *cg);
int shim_cgroup_dir(const struct shim_cgroup *cg, size_t i, const char **ret_mount,
		    const char **ret_dir, int *ret_version);

/*! shim_cgroup_last_error() :
 *  A message about the last failure of create/update/validate-time host
 *  checks ("linux.resources.memory.limit: writing 1048576 to
 *  /sys/fs/cgroup/memory/x/memory.limit_in_bytes: Device or resource busy"),
 *  or "" if none. Process-global static buffer, overwritten by the next failure. */
const char *shim_cgroup_last_error(void);

/*! shim_cgroup_free() : release `cg` (NULL is fine); removes nothing. @return : NULL. */
struct shim_cgroup *shim_cgroup_free(struct shim_cgroup *cg);

static inline void shim_cgroup_freep(struct shim_cgroup **p)
{
	shim_cgroup_free(*p);
}

#endif
