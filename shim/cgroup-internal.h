/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals shared by shim/cgroup*.c (and the isolation tests): the host's
 * hierarchies, the struct behind struct shim_cgroup, file helpers that
 * record which resource failed, and the v2 device program.
 *
 * Errors: -errno. Thread-safety: none (single-threaded runtime); the host
 * table is computed once and cached.
 */
#ifndef STOKE_SHIM_CGROUP_INTERNAL_H
#define STOKE_SHIM_CGROUP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

#include "cgroup.h"

/* One mounted hierarchy of this host. */
struct cg_mount {
	char *mount; /* mount point, e.g. /sys/fs/cgroup/memory */
	char *root;  /* the mount's root inside the hierarchy (mountinfo field 4) */
	char *ctrls; /* v1: "cpu,cpuacct" or "name=systemd"; v2: the root's cgroup.controllers */
	char *own;   /* this process's cgroup in the hierarchy, from /proc/self/cgroup */
	int version; /* 1 or 2 */
};

struct cg_host {
	int layout; /* enum shim_cgroup_layout */
	struct cg_mount *m;
	size_t n;
	int kernel_major;
};

/* One directory of a container's cgroup. */
struct cg_hier {
	char *mount;	  /* hierarchy mount point */
	char *ctrls;	  /* as in struct cg_mount */
	char *dir;	  /* the container's directory (absolute path) */
	int version;	  /* 1 or 2 */
	unsigned created; /* how many trailing path levels this library created */
};

struct shim_cgroup {
	int layout;
	char *path; /* as seen from the unified (else first) hierarchy's root */
	struct cg_hier *h;
	size_t n;
};

/*! cg_host_get() : the host's hierarchies (computed on first use, cached). */
int cg_host_get(const struct cg_host **ret);

/*! cg_host_version_for() :
 *  Where `controller` lives on this host: 1 (a v1 hierarchy), 2 (the
 *  cgroup2 hierarchy: listed in its cgroup.controllers, or "devices" and
 *  "freezer", which v2 provides without a controller), 0 (nowhere). */
int cg_host_version_for(const char *controller);

/*! cg_hier_for() : the directory of `cg` that holds `controller`, or NULL. */
struct cg_hier *cg_hier_for(struct shim_cgroup *cg, const char *controller);

/*! cg_hier_primary() : the v2 directory if any, else the first: every
 *  process of the container is in it (for pids, kill, freeze on v2). */
struct cg_hier *cg_hier_primary(struct shim_cgroup *cg);

/*! cg_set_error() : record the message returned by shim_cgroup_last_error(). */
int cg_set_error(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*! cg_write() : write `value` to dir/file; on failure records
 *  "<field>: writing <value> to <path>: <strerror>" and returns -errno. */
int cg_write(const struct cg_hier *h, const char *file, const char *value, const char *field);

/*! cg_read() : read dir/file into a new NUL-terminated string (trailing
 *  newline kept). *ret owned by the caller. */
int cg_read(const struct cg_hier *h, const char *file, char **ret);

/*! cg_read_u64() : a file holding one number ("max" gives UINT64_MAX). */
int cg_read_u64(const struct cg_hier *h, const char *file, uint64_t *ret);

/*! cg_read_keyed() : the value of "key N" in a flat-keyed file (cpu.stat, memory.stat). */
int cg_read_keyed(const struct cg_hier *h, const char *file, const char *key, uint64_t *ret);

/*! cg_has_file() : whether dir/file exists. */
bool cg_has_file(const struct cg_hier *h, const char *file);

/*! cg_apply_resources() : apply linux.resources (validated) to `cg`. */
int cg_apply_resources(struct shim_cgroup *cg, json_object *res);

/*! cg_check_host() : whether the host has what `res` asks for; message into err. */
int cg_check_host(json_object *res, char *err, size_t errlen);

/*! cg_bpf_devices_replace() :
 *  Build the device program for `rules` (an OCI linux.resources.devices
 *  array, taken as is: callers append cg_devices_default_rules()), attach it to the
 *  cgroup2 directory `dirfd` with BPF_F_ALLOW_MULTI, then detach every
 *  device program that was attached there before. */
int cg_bpf_devices_replace(int dirfd, json_object *rules);

/*! cg_bpf_devices_detach_all() : detach every device program of `dirfd`. */
int cg_bpf_devices_detach_all(int dirfd);

/*! cg_devices_default_rules() : runc's default allowed devices as an OCI
 *  devices array (new reference, owned by the caller). */
json_object *cg_devices_default_rules(void);

#endif
