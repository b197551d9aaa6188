/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The parsed OCI runtime configuration (a bundle's config.json), Linux part.
 *
 * shim_config_load() reads and parses config.json with json-c into the typed
 * struct below and validates everything stoke can check before creating
 * anything: value types and ranges, unknown enum values, capabilities
 * missing from this process's bounding set (CAP_SYS_RESOURCE on the
 * project's hosts), AppArmor/SELinux labels on a host that has neither,
 * namespace combinations, uid/gid mappings, cgroup resources (through
 * shim_cgroup_validate()) and the seccomp profile (shim_seccomp_validate()).
 * Every error message names the field ("process.capabilities.bounding[3]:
 * CAP_SYS_RESOURCE is not in the runtime's bounding set").
 *
 * Two parts of the config stay as json-c objects because their consumers
 * take JSON: linux.resources (the cgroup library) and linux.seccomp (the
 * seccomp library). They are borrowed from `json`, which the struct owns.
 *
 * Ownership: a struct shim_config owns every string, array and the json
 * root; shim_config_free() releases all of it. Pointers into the struct stay
 * valid until then. After clone() the child may read the struct freely (it
 * is a private copy of the parent's memory); nothing in it needs json-c.
 * Errors: 0 or -errno; ret_* written only on success; `err` (may be NULL)
 * receives a message naming the field on failure.
 * Thread-safety: none needed (single-threaded runtime); structs are not shared.
 */
#ifndef STOKE_SHIM_OCI_CONFIG_H
#define STOKE_SHIM_OCI_CONFIG_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <json-c/json.h>

/* Largest config.json accepted (a big seccomp profile is ~100 KiB). */
#define SHIM_CONFIG_MAX_SIZE (16u << 20)

enum shim_ns_type {
	SHIM_NS_USER = 0, /* first: joined/created before the others */
	SHIM_NS_MOUNT,
	SHIM_NS_NET,
	SHIM_NS_IPC,
	SHIM_NS_UTS,
	SHIM_NS_PID,
	SHIM_NS_CGROUP,
	SHIM_NS_TIME,
	SHIM_NS_COUNT,
};

struct shim_namespace {
	bool enabled; /* listed in linux.namespaces */
	char *path;   /* join this one (setns) instead of creating; NULL: create */
};

/*! shim_ns_name() : the OCI name ("network"), shim_ns_proc_name() the /proc/PID/ns name ("net"),
 *  shim_ns_clone_flag() the CLONE_NEW* flag. */
const char *shim_ns_name(enum shim_ns_type t);
const char *shim_ns_proc_name(enum shim_ns_type t);
int shim_ns_clone_flag(enum shim_ns_type t);

struct shim_id_map {
	uint32_t container_id, host_id, size;
};

struct shim_rlimit {
	int resource; /* RLIMIT_* */
	uint64_t soft, hard;
};

/* Capability sets as bit masks (bit n = capability n). */
struct shim_caps {
	uint64_t bounding, effective, inheritable, permitted, ambient;
};

struct shim_scheduler {
	uint32_t policy; /* SCHED_* */
	int32_t nice;
	uint32_t priority;
	uint64_t flags; /* SCHED_FLAG_* */
	uint64_t runtime, deadline, period;
};

struct shim_process {
	bool terminal;
	unsigned console_height, console_width; /* 0: not given */
	char **args;				/* NULL-terminated, at least one */
	char **env;				/* NULL-terminated (may be empty) */
	char *cwd;				/* absolute */
	uid_t uid;
	gid_t gid;
	gid_t *additional_gids;
	size_t n_additional_gids;
	bool has_umask;
	mode_t umask;
	struct shim_rlimit *rlimits;
	size_t n_rlimits;
	bool has_caps; /* process.capabilities present; else all sets empty */
	struct shim_caps caps;
	bool no_new_privileges;
	bool has_oom_score_adj;
	int oom_score_adj;
	bool has_io_priority;
	int io_priority; /* ioprio_set() value: class << 13 | level */
	bool has_scheduler;
	struct shim_scheduler scheduler;
	bool has_cpu_affinity_initial, has_cpu_affinity_final;
	cpu_set_t cpu_affinity_initial, cpu_affinity_final; /* execCPUAffinity */
};

/* One entry of mounts[], with options already split by kind (mount-options.h). */
struct shim_mount {
	char *destination;	     /* absolute, inside the container */
	char *type;		     /* NULL for a bind mount without a type */
	char *source;		     /* bind sources resolved against the bundle */
	unsigned long flags;	     /* MS_* to set (MS_BIND|MS_REC for rbind) */
	unsigned long propagation;   /* MS_SHARED/SLAVE/PRIVATE/UNBINDABLE [| MS_REC], or 0 */
	uint64_t attr_set, attr_clr; /* MOUNT_ATTR_* for the recursive "r*" options */
	char *data;		     /* the options the filesystem gets, comma-separated */
	bool bind;		     /* bind or rbind */
	bool tmpcopyup;
	/* Id-mapped bind mount (mounts[].uidMappings/gidMappings, "idmap"/"ridmap"):
	 * the mount is seen through a user namespace with these maps. */
	bool idmap, idmap_recursive;
	struct shim_id_map *uid_mappings, *gid_mappings;
	size_t n_uid_mappings, n_gid_mappings;
};

enum shim_hook_kind {
	SHIM_HOOK_PRESTART = 0,
	SHIM_HOOK_CREATE_RUNTIME,
	SHIM_HOOK_CREATE_CONTAINER,
	SHIM_HOOK_START_CONTAINER,
	SHIM_HOOK_POSTSTART,
	SHIM_HOOK_POSTSTOP,
	SHIM_HOOK_COUNT,
};

/*! shim_hook_kind_name() : "prestart", "createRuntime", ... */
const char *shim_hook_kind_name(enum shim_hook_kind k);

struct shim_hook {
	char *path;  /* absolute */
	char **args; /* NULL-terminated; may be NULL (then argv = { path }) */
	char **env;  /* NULL-terminated; may be NULL (empty environment) */
	int timeout; /* seconds; 0 = none */
};

struct shim_hook_list {
	struct shim_hook *v;
	size_t n;
};

struct shim_device {
	char *path; /* absolute, inside the container */
	char type;  /* 'c', 'b', 'u' or 'p' */
	int64_t major, minor;
	bool has_mode;
	mode_t mode;
	bool has_uid, has_gid;
	uid_t uid;
	gid_t gid;
};

struct shim_sysctl {
	char *key, *value;
};

struct shim_config {
	json_object *json; /* the whole document; owned */
	char *oci_version;
	char *bundle; /* absolute bundle directory */

	bool has_process;
	struct shim_process process;

	char *rootfs; /* root.path made absolute against the bundle */
	bool root_readonly;
	char *hostname;	  /* NULL: not set */
	char *domainname; /* NULL: not set */

	struct shim_mount *mounts;
	size_t n_mounts;

	struct shim_hook_list hooks[SHIM_HOOK_COUNT];

	json_object *annotations; /* borrowed from json; may be NULL */

	/* linux */
	struct shim_namespace ns[SHIM_NS_COUNT];
	struct shim_id_map *uid_mappings, *gid_mappings;
	size_t n_uid_mappings, n_gid_mappings;
	struct shim_device *devices;
	size_t n_devices;
	char *cgroups_path;	/* NULL: the default (stoke/<id>) */
	json_object *resources; /* linux.resources, borrowed from json; may be NULL */
	json_object *seccomp;	/* linux.seccomp, borrowed from json; may be NULL */
	struct shim_sysctl *sysctl;
	size_t n_sysctl;
	unsigned long rootfs_propagation; /* MS_* | MS_REC; 0: not set (rslave as runc) */
	char **masked_paths;		  /* NULL-terminated; may be NULL */
	char **readonly_paths;		  /* NULL-terminated; may be NULL */
	bool has_personality;
	unsigned long personality; /* PER_LINUX or PER_LINUX32 */
	bool has_time_offsets;
	int64_t boottime_secs, monotonic_secs;
	uint32_t boottime_nsecs, monotonic_nsecs;
};

/*! shim_config_load() :
 *  Read `bundle`/config.json, parse and validate it (see the file comment).
 *  `bundle` is made absolute. *ret is owned by the caller (shim_config_free()).
 * @return : 0, -ENOENT (no config.json), -EINVAL (invalid: see `err`),
 *           -EOPNOTSUPP (valid but not possible on this host: see `err`),
 *           -ENOMEM, or -errno reading the file. */
int shim_config_load(const char *bundle, struct shim_config **ret, char *err, size_t errlen);

/*! shim_config_parse() :
 *  As shim_config_load() for an already parsed document. Takes ownership of
 *  `json` in every case (it is released on failure). */
int shim_config_parse(json_object *json, const char *bundle, struct shim_config **ret, char *err,
		      size_t errlen);

/*! shim_process_parse() :
 *  Parse and validate one OCI "process" object (`stoke exec --process`) into
 *  `*ret` (zeroed first; release with shim_process_done()). `field` prefixes
 *  error messages ("process"). `json` is borrowed.
 * @return : 0, -EINVAL or -EOPNOTSUPP (see `err`), -ENOMEM. */
int shim_process_parse(json_object *json, const char *field, struct shim_process *ret, char *err,
		       size_t errlen);

/*! shim_process_done() : free what `p` owns (not `p` itself); leaves it zeroed. */
void shim_process_done(struct shim_process *p);

/*! shim_caps_check_bounding() :
 *  Whether every capability in `caps` is in this process's bounding set;
 *  otherwise writes "FIELD: CAP_X is not in the runtime's bounding set".
 * @return : 0 or -EOPNOTSUPP. */
int shim_caps_check_bounding(const struct shim_caps *caps, const char *field, char *err,
			     size_t errlen);

/*! shim_config_free() : release `c` and everything it owns (NULL is fine). @return : NULL. */
struct shim_config *shim_config_free(struct shim_config *c);

static inline void shim_config_freep(struct shim_config **c)
{
	shim_config_free(*c);
}

#endif
