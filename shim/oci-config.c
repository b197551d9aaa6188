/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.json → struct shim_config, with every check that can be made before
 * anything is created. Each parse_* function handles one part of the spec and
 * writes an error naming the field ("process.rlimits[1].type: ...").
 */
#include "oci-config.h"
#include "errbuf.h"
#include "mount-options.h"
#include "cgroup.h"
#include "seccomp.h"

#include "cleanup.h"
#include "json-util.h"
#include "path-util.h"
#include "strv.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <linux/sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/personality.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SCHED_FLAG_RESET_ON_FORK
#define SCHED_FLAG_RESET_ON_FORK 0x01
#endif

static const struct {
	const char *oci, *proc;
	int flag;
} ns_table[SHIM_NS_COUNT] = {
	[SHIM_NS_USER] = {"user", "user", CLONE_NEWUSER},
	[SHIM_NS_MOUNT] = {"mount", "mnt", CLONE_NEWNS},
	[SHIM_NS_NET] = {"network", "net", CLONE_NEWNET},
	[SHIM_NS_IPC] = {"ipc", "ipc", CLONE_NEWIPC},
	[SHIM_NS_UTS] = {"uts", "uts", CLONE_NEWUTS},
	[SHIM_NS_PID] = {"pid", "pid", CLONE_NEWPID},
	[SHIM_NS_CGROUP] = {"cgroup", "cgroup", CLONE_NEWCGROUP},
	[SHIM_NS_TIME] = {"time", "time", CLONE_NEWTIME},
};

const char *shim_ns_name(enum shim_ns_type t)
{
	return ns_table[t].oci;
}

const char *shim_ns_proc_name(enum shim_ns_type t)
{
	return ns_table[t].proc;
}

int shim_ns_clone_flag(enum shim_ns_type t)
{
	return ns_table[t].flag;
}

static const char *const hook_names[SHIM_HOOK_COUNT] = {
	"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop",
};

const char *shim_hook_kind_name(enum shim_hook_kind k)
{
	return hook_names[k];
}

/* A message for a json accessor's error: missing, or wrong type. */
static int bad_field(char *err, size_t errlen, const char *field, const char *key, int r,
		     const char *type)
{
	if (r == -ENOENT)
		return cs_errf(-EINVAL, err, errlen, "%s%s%s: required field is missing", field,
			       *key ? "." : "", key);
	if (r == -ERANGE)
		return cs_errf(-EINVAL, err, errlen, "%s%s%s: value out of range", field,
			       *key ? "." : "", key);
	return cs_errf(-EINVAL, err, errlen, "%s%s%s: must be %s", field, *key ? "." : "", key,
		       type);
}

/* Optional string: *ret stays NULL when missing. */
static int opt_string(json_object *o, const char *key, const char *field, char **ret, char *err,
		      size_t errlen)
{
	const char *s;
	int r = cs_json_get_string(o, key, &s);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return bad_field(err, errlen, field, key, r, "a string");
	char *c = strdup(s);
	if (!c)
		return -ENOMEM;
	free(*ret);
	*ret = c;
	return 0;
}

static int opt_bool(json_object *o, const char *key, const char *field, bool *ret, char *err,
		    size_t errlen)
{
	int r = cs_json_get_bool(o, key, ret);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return bad_field(err, errlen, field, key, r, "a boolean");
	return 0;
}

/* An array of strings into a NULL-terminated strv; missing → *ret NULL. */
static int opt_strv(json_object *o, const char *key, const char *field, char ***ret, char *err,
		    size_t errlen)
{
	json_object *a;
	int r = cs_json_get_array(o, key, &a);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return bad_field(err, errlen, field, key, r, "an array of strings");
	size_t n = json_object_array_length(a);
	char **v = calloc(n + 1, sizeof(char *));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(a, i);
		if (!json_object_is_type(e, json_type_string)) {
			cs_strv_free(v);
			return cs_errf(-EINVAL, err, errlen, "%s.%s[%zu]: must be a string", field,
				       key, i);
		}
		v[i] = strdup(json_object_get_string(e));
		if (!v[i]) {
			cs_strv_free(v);
			return -ENOMEM;
		}
	}
	cs_strv_free(*ret);
	*ret = v;
	return 0;
}

/* ---- capabilities ---------------------------------------------------- */

static int cap_parse_name(const char *name, int *ret)
{
	char lower[64];
	size_t i;
	cap_value_t v;

	if (strncmp(name, "CAP_", 4) != 0)
		return -EINVAL;
	for (i = 0; name[i] && i + 1 < sizeof(lower); i++)
		lower[i] = (char) tolower((unsigned char) name[i]);
	lower[i] = '\0';
	if (cap_from_name(lower, &v) < 0 || v < 0 || v > 63)
		return -EINVAL;
	/* libcap accepts bare numbers too; names must be names. */
	if (isdigit((unsigned char) lower[4]))
		return -EINVAL;
	*ret = v;
	return 0;
}

/* The highest capability this kernel knows (read once per process). */
static int kernel_last_cap(void)
{
	static int last = -1;
	if (last < 0) {
		FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
		last = CAP_LAST_CAP;
		if (f) {
			if (fscanf(f, "%d", &last) != 1)
				last = CAP_LAST_CAP;
			fclose(f);
		}
	}
	return last;
}

static int parse_cap_set(json_object *caps, const char *key, const char *field, uint64_t *ret,
			 char *err, size_t errlen)
{
	json_object *a;
	uint64_t mask = 0;
	int r = cs_json_get_array(caps, key, &a);
	if (r == -ENOENT) {
		*ret = 0;
		return 0;
	}
	if (r < 0)
		return bad_field(err, errlen, field, key, r, "an array of capability names");
	int last = kernel_last_cap();
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *e = json_object_array_get_idx(a, i);
		int c;
		if (!json_object_is_type(e, json_type_string))
			return cs_errf(-EINVAL, err, errlen, "%s.%s[%zu]: must be a string", field,
				       key, i);
		if (cap_parse_name(json_object_get_string(e), &c) < 0 || c > last)
			return cs_errf(-EINVAL, err, errlen,
				       "%s.%s[%zu]: unknown capability \"%s\"", field, key, i,
				       json_object_get_string(e));
		mask |= UINT64_C(1) << c;
	}
	*ret = mask;
	return 0;
}

int shim_caps_check_bounding(const struct shim_caps *caps, const char *field, char *err,
			     size_t errlen)
{
	static const char *const set_names[] = {"bounding", "effective", "inheritable", "permitted",
						"ambient"};
	const uint64_t sets[] = {caps->bounding, caps->effective, caps->inheritable,
				 caps->permitted, caps->ambient};

	for (size_t s = 0; s < ELEMENTSOF(sets); s++) {
		for (int c = 0; c < 64; c++) {
			if (!(sets[s] & (UINT64_C(1) << c)))
				continue;
			if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
				continue;
			char *name = cap_to_name(c);
			char upper[64];
			size_t i = 0;
			for (; name && name[i] && i + 1 < sizeof(upper); i++)
				upper[i] = (char) toupper((unsigned char) name[i]);
			upper[i] = '\0';
			cap_free(name);
			if (err && errlen)
				snprintf(
					err, errlen,
					"%s.%s: %s is not in the runtime's bounding set (this host "
					"does not allow it)",
					field, set_names[s], upper);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

/* ---- process --------------------------------------------------------- */

static const struct {
	const char *name;
	int value;
} rlimit_names[] = {
	{"RLIMIT_AS", RLIMIT_AS},
	{"RLIMIT_CORE", RLIMIT_CORE},
	{"RLIMIT_CPU", RLIMIT_CPU},
	{"RLIMIT_DATA", RLIMIT_DATA},
	{"RLIMIT_FSIZE", RLIMIT_FSIZE},
	{"RLIMIT_LOCKS", RLIMIT_LOCKS},
	{"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
	{"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
	{"RLIMIT_NICE", RLIMIT_NICE},
	{"RLIMIT_NOFILE", RLIMIT_NOFILE},
	{"RLIMIT_NPROC", RLIMIT_NPROC},
	{"RLIMIT_RSS", RLIMIT_RSS},
	{"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
	{"RLIMIT_RTTIME", RLIMIT_RTTIME},
	{"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
	{"RLIMIT_STACK", RLIMIT_STACK},
};

static int parse_rlimits(json_object *proc, const char *field, struct shim_process *p, char *err,
			 size_t errlen)
{
	json_object *a;
	int r = cs_json_get_array(proc, "rlimits", &a);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return bad_field(err, errlen, field, "rlimits", r, "an array");
	size_t n = json_object_array_length(a);
	p->rlimits = calloc(n ? n : 1, sizeof(*p->rlimits));
	if (!p->rlimits)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(a, i);
		const char *type;
		struct shim_rlimit *rl = &p->rlimits[i];
		size_t k;

		r = cs_json_get_string(e, "type", &type);
		if (r < 0)
			return cs_errf(-EINVAL, err, errlen, "%s.rlimits[%zu].type: %s", field, i,
				       r == -ENOENT ? "required field is missing"
						    : "must be a string");
		for (k = 0; k < ELEMENTSOF(rlimit_names); k++)
			if (strcmp(rlimit_names[k].name, type) == 0)
				break;
		if (k == ELEMENTSOF(rlimit_names))
			return cs_errf(-EINVAL, err, errlen,
				       "%s.rlimits[%zu].type: unknown rlimit \"%s\"", field, i,
				       type);
		rl->resource = rlimit_names[k].value;
		for (size_t j = 0; j < i; j++)
			if (p->rlimits[j].resource == rl->resource)
				return cs_errf(-EINVAL, err, errlen,
					       "%s.rlimits[%zu].type: duplicate \"%s\"", field, i,
					       type);
		r = cs_json_get_uint64(e, "soft", &rl->soft);
		if (r < 0)
			return bad_field(err, errlen, field, "rlimits[].soft", r,
					 "an unsigned integer");
		r = cs_json_get_uint64(e, "hard", &rl->hard);
		if (r < 0)
			return bad_field(err, errlen, field, "rlimits[].hard", r,
					 "an unsigned integer");
		if (rl->soft > rl->hard)
			return cs_errf(
				-EINVAL, err, errlen,
				"%s.rlimits[%zu]: soft limit %llu is above the hard limit %llu",
				field, i, (unsigned long long) rl->soft,
				(unsigned long long) rl->hard);
		p->n_rlimits++;
	}
	return 0;
}

static int parse_user(json_object *proc, const char *field, struct shim_process *p, char *err,
		      size_t errlen)
{
	json_object *u, *a;
	int64_t v;
	int r = cs_json_get_object(proc, "user", &u);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return bad_field(err, errlen, field, "user", r, "an object");

	r = cs_json_get_int64(u, "uid", &v);
	if (r < 0 && r != -ENOENT)
		return bad_field(err, errlen, field, "user.uid", r, "an integer");
	if (r == 0 && (v < 0 || v > UINT32_MAX - 1))
		return cs_errf(-EINVAL, err, errlen, "%s.user.uid: %lld is out of range", field,
			       (long long) v);
	p->uid = r == 0 ? (uid_t) v : 0;
	r = cs_json_get_int64(u, "gid", &v);
	if (r < 0 && r != -ENOENT)
		return bad_field(err, errlen, field, "user.gid", r, "an integer");
	if (r == 0 && (v < 0 || v > UINT32_MAX - 1))
		return cs_errf(-EINVAL, err, errlen, "%s.user.gid: %lld is out of range", field,
			       (long long) v);
	p->gid = r == 0 ? (gid_t) v : 0;

	r = cs_json_get_int64(u, "umask", &v);
	if (r < 0 && r != -ENOENT)
		return bad_field(err, errlen, field, "user.umask", r, "an integer");
	if (r == 0) {
		if (v < 0 || v > 0777)
			return cs_errf(-EINVAL, err, errlen,
				       "%s.user.umask: %lld is out of range 0-0777", field,
				       (long long) v);
		p->has_umask = true;
		p->umask = (mode_t) v;
	}

	r = cs_json_get_array(u, "additionalGids", &a);
	if (r < 0 && r != -ENOENT)
		return bad_field(err, errlen, field, "user.additionalGids", r, "an array");
	if (r == 0) {
		size_t n = json_object_array_length(a);
		p->additional_gids = calloc(n ? n : 1, sizeof(gid_t));
		if (!p->additional_gids)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++) {
			json_object *e = json_object_array_get_idx(a, i);
			if (!cs_json_int_in_range(e, 0, UINT32_MAX - 1))
				return cs_errf(-EINVAL, err, errlen,
					       "%s.user.additionalGids[%zu]: must be a gid (0-%u)",
					       field, i, UINT32_MAX - 1);
			p->additional_gids[i] = (gid_t) json_object_get_int64(e);
		}
		p->n_additional_gids = n;
	}
	if (json_object_object_get_ex(u, "username", NULL))
		return cs_errf(-EINVAL, err, errlen,
			       "%s.user.username: only for Windows containers", field);
	return 0;
}

static const struct {
	const char *name;
	uint32_t value;
} sched_policies[] = {
	{"SCHED_OTHER", SCHED_OTHER}, {"SCHED_FIFO", SCHED_FIFO}, {"SCHED_RR", SCHED_RR},
	{"SCHED_BATCH", SCHED_BATCH}, {"SCHED_ISO", 4},		  {"SCHED_IDLE", SCHED_IDLE},
	{"SCHED_DEADLINE", 6},
};

static const struct {
	const char *name;
	uint64_t value;
} sched_flags[] = {
	{"SCHED_FLAG_RESET_ON_FORK", 0x01},  {"SCHED_FLAG_RECLAIM", 0x02},
	{"SCHED_FLAG_DL_OVERRUN", 0x04},     {"SCHED_FLAG_KEEP_POLICY", 0x08},
	{"SCHED_FLAG_KEEP_PARAMS", 0x10},    {"SCHED_FLAG_UTIL_CLAMP_MIN", 0x20},
	{"SCHED_FLAG_UTIL_CLAMP_MAX", 0x40},
};

static int parse_scheduler(json_object *proc, const char *field, struct shim_process *p, char *err,
			   size_t errlen)
{
	json_object *s, *a;
	const char *policy;
	int64_t v;
	uint64_t u;
	size_t k;
	int r = cs_json_get_object(proc, "scheduler", &s);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return bad_field(err, errlen, field, "scheduler", r, "an object");
	r = cs_json_get_string(s, "policy", &policy);
	if (r < 0)
		return bad_field(err, errlen, field, "scheduler.policy", r, "a string");
	for (k = 0; k < ELEMENTSOF(sched_policies); k++)
		if (strcmp(policy, sched_policies[k].name) == 0)
			break;
	if (k == ELEMENTSOF(sched_policies))
		return cs_errf(-EINVAL, err, errlen, "%s.scheduler.policy: unknown policy \"%s\"",
			       field, policy);
	p->scheduler.policy = sched_policies[k].value;
	r = cs_json_get_int64(s, "nice", &v);
	if (r == 0 && (v < -20 || v > 19))
		return cs_errf(-EINVAL, err, errlen,
			       "%s.scheduler.nice: %lld is out of range -20..19", field,
			       (long long) v);
	if (r < 0 && r != -ENOENT)
		return bad_field(err, errlen, field, "scheduler.nice", r, "an integer");
	p->scheduler.nice = r == 0 ? (int32_t) v : 0;
	r = cs_json_get_int64(s, "priority", &v);
	if (r == 0 && (v < 0 || v > 99))
		return cs_errf(-EINVAL, err, errlen,
			       "%s.scheduler.priority: %lld is out of range 0..99", field,
			       (long long) v);
	if (r < 0 && r != -ENOENT)
		return bad_field(err, errlen, field, "scheduler.priority", r, "an integer");
	p->scheduler.priority = r == 0 ? (uint32_t) v : 0;
	if ((p->scheduler.policy == SCHED_FIFO || p->scheduler.policy == SCHED_RR) &&
	    p->scheduler.priority == 0)
		return cs_errf(-EINVAL, err, errlen,
			       "%s.scheduler.priority: %s needs a priority of 1..99", field,
			       policy);
	r = cs_json_get_array(s, "flags", &a);
	if (r < 0 && r != -ENOENT)
		return bad_field(err, errlen, field, "scheduler.flags", r, "an array");
	for (size_t i = 0; r == 0 && i < json_object_array_length(a); i++) {
		const char *name = json_object_get_string(json_object_array_get_idx(a, i));
		for (k = 0; name && k < ELEMENTSOF(sched_flags); k++)
			if (strcmp(name, sched_flags[k].name) == 0)
				break;
		if (!name || k == ELEMENTSOF(sched_flags))
			return cs_errf(-EINVAL, err, errlen,
				       "%s.scheduler.flags[%zu]: unknown flag \"%s\"", field, i,
				       name ? name : "");
		p->scheduler.flags |= sched_flags[k].value;
	}
	static const char *const times[] = {"runtime", "deadline", "period"};
	uint64_t *dst[] = {&p->scheduler.runtime, &p->scheduler.deadline, &p->scheduler.period};
	for (k = 0; k < 3; k++) {
		r = cs_json_get_uint64(s, times[k], &u);
		if (r < 0 && r != -ENOENT)
			return bad_field(err, errlen, field, times[k], r, "an unsigned integer");
		*dst[k] = r == 0 ? u : 0;
	}
	p->has_scheduler = true;
	return 0;
}

static int parse_io_priority(json_object *proc, const char *field, struct shim_process *p,
			     char *err, size_t errlen)
{
	static const char *const classes[] = {NULL, "IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE",
					      "IOPRIO_CLASS_IDLE"};
	json_object *o;
	const char *cls;
	int64_t prio = 0;
	int k;
	int r = cs_json_get_object(proc, "ioPriority", &o);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return bad_field(err, errlen, field, "ioPriority", r, "an object");
	r = cs_json_get_string(o, "class", &cls);
	if (r < 0)
		return bad_field(err, errlen, field, "ioPriority.class", r, "a string");
	for (k = 1; k < 4; k++)
		if (strcmp(cls, classes[k]) == 0)
			break;
	if (k == 4)
		return cs_errf(-EINVAL, err, errlen, "%s.ioPriority.class: unknown class \"%s\"",
			       field, cls);
	r = cs_json_get_int64(o, "priority", &prio);
	if (r < 0 && r != -ENOENT)
		return bad_field(err, errlen, field, "ioPriority.priority", r, "an integer");
	if (prio < 0 || prio > 7)
		return cs_errf(-EINVAL, err, errlen,
			       "%s.ioPriority.priority: %lld is out of range 0..7", field,
			       (long long) prio);
	p->has_io_priority = true;
	p->io_priority = (k << 13) | (int) prio;
	return 0;
}

/* "0-3,7" → cpu set. */
static int parse_cpu_list(const char *s, cpu_set_t *ret)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	const char *p = s;
	if (!*p)
		return -EINVAL;
	while (*p) {
		char *end;
		unsigned long a = strtoul(p, &end, 10), b;
		if (end == p)
			return -EINVAL;
		b = a;
		p = end;
		if (*p == '-') {
			p++;
			b = strtoul(p, &end, 10);
			if (end == p || b < a)
				return -EINVAL;
			p = end;
		}
		if (b >= CPU_SETSIZE)
			return -ERANGE;
		for (unsigned long c = a; c <= b; c++)
			CPU_SET(c, &set);
		if (*p == ',')
			p++;
		else if (*p)
			return -EINVAL;
	}
	*ret = set;
	return 0;
}

static int parse_affinity(json_object *proc, const char *field, struct shim_process *p, char *err,
			  size_t errlen)
{
	json_object *o;
	const char *s;
	int r = cs_json_get_object(proc, "execCPUAffinity", &o);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return bad_field(err, errlen, field, "execCPUAffinity", r, "an object");
	r = cs_json_get_string(o, "initial", &s);
	if (r == 0) {
		if (parse_cpu_list(s, &p->cpu_affinity_initial) < 0)
			return cs_errf(-EINVAL, err, errlen,
				       "%s.execCPUAffinity.initial: bad CPU list \"%s\"", field, s);
		p->has_cpu_affinity_initial = true;
	}
	r = cs_json_get_string(o, "final", &s);
	if (r == 0) {
		if (parse_cpu_list(s, &p->cpu_affinity_final) < 0)
			return cs_errf(-EINVAL, err, errlen,
				       "%s.execCPUAffinity.final: bad CPU list \"%s\"", field, s);
		p->has_cpu_affinity_final = true;
	}
	return 0;
}

int shim_process_parse(json_object *json, const char *field, struct shim_process *p, char *err,
		       size_t errlen)
{
	json_object *o;
	int64_t v;
	int r;

	memset(p, 0, sizeof(*p));
	if (!json_object_is_type(json, json_type_object))
		return cs_errf(-EINVAL, err, errlen, "%s: must be an object", field);

	r = opt_bool(json, "terminal", field, &p->terminal, err, errlen);
	if (r < 0)
		goto out;
	r = cs_json_get_object(json, "consoleSize", &o);
	if (r == 0) {
		json_object *h, *w;
		if (!json_object_object_get_ex(o, "height", &h) ||
		    !json_object_object_get_ex(o, "width", &w) ||
		    !cs_json_int_in_range(h, 0, 65535) || !cs_json_int_in_range(w, 0, 65535)) {
			r = cs_errf(-EINVAL, err, errlen,
				    "%s.consoleSize: needs height and width (0-65535)", field);
			goto out;
		}
		p->console_height = (unsigned) json_object_get_int(h);
		p->console_width = (unsigned) json_object_get_int(w);
	} else if (r != -ENOENT) {
		r = bad_field(err, errlen, field, "consoleSize", r, "an object");
		goto out;
	}

	r = opt_strv(json, "args", field, &p->args, err, errlen);
	if (r < 0)
		goto out;
	if (!p->args || !p->args[0]) {
		r = cs_errf(-EINVAL, err, errlen, "%s.args: must have at least one entry", field);
		goto out;
	}
	r = opt_strv(json, "env", field, &p->env, err, errlen);
	if (r < 0)
		goto out;
	if (!p->env) {
		p->env = calloc(1, sizeof(char *));
		if (!p->env) {
			r = -ENOMEM;
			goto out;
		}
	}
	r = opt_string(json, "cwd", field, &p->cwd, err, errlen);
	if (r < 0)
		goto out;
	if (!p->cwd) {
		r = cs_errf(-EINVAL, err, errlen, "%s.cwd: required field is missing", field);
		goto out;
	}
	if (!cs_path_is_absolute(p->cwd)) {
		r = cs_errf(-EINVAL, err, errlen, "%s.cwd: \"%s\" is not an absolute path", field,
			    p->cwd);
		goto out;
	}

	r = parse_user(json, field, p, err, errlen);
	if (r < 0)
		goto out;
	r = parse_rlimits(json, field, p, err, errlen);
	if (r < 0)
		goto out;

	r = cs_json_get_object(json, "capabilities", &o);
	if (r == 0) {
		char f[64];
		snprintf(f, sizeof(f), "%s.capabilities", field);
		p->has_caps = true;
		if ((r = parse_cap_set(o, "bounding", f, &p->caps.bounding, err, errlen)) < 0 ||
		    (r = parse_cap_set(o, "effective", f, &p->caps.effective, err, errlen)) < 0 ||
		    (r = parse_cap_set(o, "inheritable", f, &p->caps.inheritable, err, errlen)) <
			    0 ||
		    (r = parse_cap_set(o, "permitted", f, &p->caps.permitted, err, errlen)) < 0 ||
		    (r = parse_cap_set(o, "ambient", f, &p->caps.ambient, err, errlen)) < 0)
			goto out;
		r = shim_caps_check_bounding(&p->caps, f, err, errlen);
		if (r < 0)
			goto out;
	} else if (r != -ENOENT) {
		r = bad_field(err, errlen, field, "capabilities", r, "an object");
		goto out;
	}

	r = opt_bool(json, "noNewPrivileges", field, &p->no_new_privileges, err, errlen);
	if (r < 0)
		goto out;

	r = cs_json_get_int64(json, "oomScoreAdj", &v);
	if (r == 0) {
		if (v < -1000 || v > 1000) {
			r = cs_errf(-EINVAL, err, errlen,
				    "%s.oomScoreAdj: %lld is out of range -1000..1000", field,
				    (long long) v);
			goto out;
		}
		p->has_oom_score_adj = true;
		p->oom_score_adj = (int) v;
	} else if (r != -ENOENT) {
		r = bad_field(err, errlen, field, "oomScoreAdj", r, "an integer");
		goto out;
	}

	if ((r = parse_scheduler(json, field, p, err, errlen)) < 0 ||
	    (r = parse_io_priority(json, field, p, err, errlen)) < 0 ||
	    (r = parse_affinity(json, field, p, err, errlen)) < 0)
		goto out;

	/* No AppArmor and no SELinux in this build's hosts: refuse labels clearly. */
	const char *label;
	if (cs_json_get_string(json, "apparmorProfile", &label) == 0 && *label &&
	    access("/sys/kernel/security/apparmor", F_OK) < 0) {
		r = -EOPNOTSUPP;
		cs_errf(-EINVAL, err, errlen,
			"%s.apparmorProfile: \"%s\" requested but AppArmor is not enabled on this "
			"host",
			field, label);
		goto out;
	}
	if (cs_json_get_string(json, "selinuxLabel", &label) == 0 && *label) {
		r = -EOPNOTSUPP;
		cs_errf(-EINVAL, err, errlen,
			"%s.selinuxLabel: \"%s\" requested but SELinux is not supported by stoke "
			"on "
			"this host",
			field, label);
		goto out;
	}
	return 0;
out:
	shim_process_done(p);
	return r;
}

void shim_process_done(struct shim_process *p)
{
	cs_strv_free(p->args);
	cs_strv_free(p->env);
	free(p->cwd);
	free(p->additional_gids);
	free(p->rlimits);
	memset(p, 0, sizeof(*p));
}

/* ---- mounts ---------------------------------------------------------- */

static int append_data(char **data, const char *opt)
{
	size_t old = *data ? strlen(*data) : 0, add = strlen(opt);
	char *n = realloc(*data, old + add + 2);
	if (!n)
		return -ENOMEM;
	if (old)
		n[old++] = ',';
	memcpy(n + old, opt, add + 1);
	*data = n;
	return 0;
}

static int parse_id_mappings(json_object *lin, const char *field, const char *key,
			     struct shim_id_map **ret, size_t *ret_n, char *err, size_t errlen)
{
	json_object *a;
	int r = cs_json_get_array(lin, key, &a);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return bad_field(err, errlen, field, key, r, "an array");
	size_t n = json_object_array_length(a);
	struct shim_id_map *m = calloc(n ? n : 1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	*ret = m;
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(a, i), *v;
		static const char *const keys[] = {"containerID", "hostID", "size"};
		uint32_t *dst[] = {&m[i].container_id, &m[i].host_id, &m[i].size};
		for (int k = 0; k < 3; k++) {
			if (!json_object_object_get_ex(e, keys[k], &v) ||
			    !cs_json_int_in_range(v, 0, UINT32_MAX))
				return cs_errf(-EINVAL, err, errlen, "%s.%s[%zu].%s: must be 0-%u",
					       field, key, i, keys[k], UINT32_MAX);
			*dst[k] = (uint32_t) json_object_get_int64(v);
		}
		if (m[i].size == 0)
			return cs_errf(-EINVAL, err, errlen, "%s.%s[%zu].size: must not be 0",
				       field, key, i);
	}
	*ret_n = n;
	return 0;
}

static int parse_mount(json_object *o, size_t idx, const char *bundle, struct shim_mount *m,
		       char *err, size_t errlen)
{
	char field[64];
	char **opts = NULL;
	int r;

	snprintf(field, sizeof(field), "mounts[%zu]", idx);
	if (!json_object_is_type(o, json_type_object))
		return cs_errf(-EINVAL, err, errlen, "%s: must be an object", field);
	if ((r = opt_string(o, "destination", field, &m->destination, err, errlen)) < 0 ||
	    (r = opt_string(o, "type", field, &m->type, err, errlen)) < 0 ||
	    (r = opt_string(o, "source", field, &m->source, err, errlen)) < 0 ||
	    (r = opt_strv(o, "options", field, &opts, err, errlen)) < 0)
		goto out;
	if (!m->destination || !*m->destination) {
		r = cs_errf(-EINVAL, err, errlen, "%s.destination: required field is missing",
			    field);
		goto out;
	}
	if (!cs_path_is_absolute(m->destination)) {
		/* runc takes a relative destination as relative to the container's "/". */
		char *abs;
		r = cs_path_join("/", m->destination, &abs);
		if (r < 0)
			goto out;
		free(m->destination);
		m->destination = abs;
	}
	if ((r = parse_id_mappings(o, field, "uidMappings", &m->uid_mappings, &m->n_uid_mappings,
				   err, errlen)) < 0 ||
	    (r = parse_id_mappings(o, field, "gidMappings", &m->gid_mappings, &m->n_gid_mappings,
				   err, errlen)) < 0)
		goto out;

	for (size_t i = 0; opts && opts[i]; i++) {
		/* runtime-spec 1.2: "idmap"/"ridmap" ask for an id-mapped (recursive) mount. */
		if (strcmp(opts[i], "idmap") == 0 || strcmp(opts[i], "ridmap") == 0) {
			m->idmap = true;
			m->idmap_recursive = opts[i][0] == 'r';
			continue;
		}
		const struct shim_mount_option *mo = shim_mount_option_lookup(opts[i]);
		if (!mo) {
			r = append_data(&m->data, opts[i]);
			if (r < 0)
				goto out;
			continue;
		}
		switch (mo->kind) {
		case SHIM_MOPT_FLAG:
			if (mo->clear)
				m->flags &= ~mo->flags;
			else
				m->flags |= mo->flags;
			break;
		case SHIM_MOPT_PROPAGATION:
			m->propagation = mo->flags;
			break;
		case SHIM_MOPT_RECURSIVE:
			if (mo->clear) {
				m->attr_clr |= mo->attr;
				m->attr_set &= ~mo->attr;
			} else {
				m->attr_set |= mo->attr;
				m->attr_clr &= ~mo->attr;
			}
			break;
		case SHIM_MOPT_BIND:
			m->bind = true;
			m->flags |= mo->flags;
			break;
		case SHIM_MOPT_EXTENSION:
			if (strcmp(mo->name, "tmpcopyup") == 0)
				m->tmpcopyup = true;
			break;
		}
	}
	if (m->type && strcmp(m->type, "bind") == 0) {
		m->bind = true;
		m->flags |= MS_BIND;
	}
	if (m->bind) {
		if (!m->source || !*m->source) {
			r = cs_errf(-EINVAL, err, errlen, "%s.source: a bind mount needs a source",
				    field);
			goto out;
		}
		if (!cs_path_is_absolute(m->source)) {
			char *abs;
			r = cs_path_join(bundle, m->source, &abs);
			if (r < 0)
				goto out;
			free(m->source);
			m->source = abs;
		}
	} else if (!m->type || !*m->type) {
		r = cs_errf(-EINVAL, err, errlen,
			    "%s.type: required for a mount that is not a bind mount", field);
		goto out;
	}
	if (m->n_uid_mappings || m->n_gid_mappings)
		m->idmap = true;
	if (m->idmap && (!m->bind || !m->n_uid_mappings || !m->n_gid_mappings)) {
		r = cs_errf(-EINVAL, err, errlen,
			    "%s: an id-mapped mount must be a bind mount with uidMappings and "
			    "gidMappings",
			    field);
		goto out;
	}
	if (m->tmpcopyup && (!m->type || strcmp(m->type, "tmpfs") != 0)) {
		r = cs_errf(-EINVAL, err, errlen, "%s.options: tmpcopyup is only for tmpfs mounts",
			    field);
		goto out;
	}
	r = 0;
out:
	cs_strv_free(opts);
	return r;
}

/* ---- linux ----------------------------------------------------------- */

static int parse_namespaces(json_object *lin, struct shim_config *c, char *err, size_t errlen)
{
	json_object *a;
	int r = cs_json_get_array(lin, "namespaces", &a);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return bad_field(err, errlen, "linux", "namespaces", r, "an array");
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *e = json_object_array_get_idx(a, i);
		const char *type, *path;
		int t;
		r = cs_json_get_string(e, "type", &type);
		if (r < 0)
			return cs_errf(-EINVAL, err, errlen, "linux.namespaces[%zu].type: %s", i,
				       r == -ENOENT ? "required field is missing"
						    : "must be a string");
		for (t = 0; t < SHIM_NS_COUNT; t++)
			if (strcmp(type, ns_table[t].oci) == 0)
				break;
		if (t == SHIM_NS_COUNT)
			return cs_errf(-EINVAL, err, errlen,
				       "linux.namespaces[%zu].type: unknown namespace \"%s\"", i,
				       type);
		if (c->ns[t].enabled)
			return cs_errf(-EINVAL, err, errlen,
				       "linux.namespaces[%zu].type: duplicate \"%s\"", i, type);
		c->ns[t].enabled = true;
		r = cs_json_get_string(e, "path", &path);
		if (r == 0 && *path) {
			if (!cs_path_is_absolute(path))
				return cs_errf(-EINVAL, err, errlen,
					       "linux.namespaces[%zu].path: \"%s\" is not absolute",
					       i, path);
			if (access(path, F_OK) < 0)
				return cs_errf(-EINVAL, err, errlen,
					       "linux.namespaces[%zu].path: %s: %s", i, path,
					       strerror(errno));
			c->ns[t].path = strdup(path);
			if (!c->ns[t].path)
				return -ENOMEM;
		} else if (r < 0 && r != -ENOENT)
			return bad_field(err, errlen, "linux.namespaces[]", "path", r, "a string");
		char proc[64];
		snprintf(proc, sizeof(proc), "/proc/self/ns/%s", ns_table[t].proc);
		if (access(proc, F_OK) < 0) {
			cs_errf(-EINVAL, err, errlen,
				"linux.namespaces[%zu]: the kernel has no %s namespaces", i, type);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

static int parse_devices(json_object *lin, struct shim_config *c, char *err, size_t errlen)
{
	json_object *a;
	int r = cs_json_get_array(lin, "devices", &a);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return bad_field(err, errlen, "linux", "devices", r, "an array");
	size_t n = json_object_array_length(a);
	c->devices = calloc(n ? n : 1, sizeof(*c->devices));
	if (!c->devices)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(a, i);
		struct shim_device *d = &c->devices[c->n_devices];
		const char *type;
		char field[48];
		int64_t v;
		snprintf(field, sizeof(field), "linux.devices[%zu]", i);
		r = opt_string(e, "path", field, &d->path, err, errlen);
		if (r < 0)
			return r;
		c->n_devices++;
		if (!d->path || !cs_path_is_absolute(d->path))
			return cs_errf(-EINVAL, err, errlen, "%s.path: must be an absolute path",
				       field);
		r = cs_json_get_string(e, "type", &type);
		if (r < 0 || strlen(type) != 1 || !strchr("cbup", type[0]))
			return cs_errf(-EINVAL, err, errlen, "%s.type: must be one of c, b, u, p",
				       field);
		d->type = type[0];
		if (d->type != 'p') {
			if (cs_json_get_int64(e, "major", &d->major) < 0 ||
			    cs_json_get_int64(e, "minor", &d->minor) < 0 || d->major < 0 ||
			    d->minor < 0)
				return cs_errf(-EINVAL, err, errlen,
					       "%s: major and minor are required for type %c",
					       field, d->type);
		}
		r = cs_json_get_int64(e, "fileMode", &v);
		if (r == 0) {
			if (v < 0 || v > 07777)
				return cs_errf(-EINVAL, err, errlen,
					       "%s.fileMode: %lld is out of range", field,
					       (long long) v);
			d->has_mode = true;
			d->mode = (mode_t) v;
		}
		r = cs_json_get_int64(e, "uid", &v);
		if (r == 0) {
			d->has_uid = true;
			d->uid = (uid_t) v;
		}
		r = cs_json_get_int64(e, "gid", &v);
		if (r == 0) {
			d->has_gid = true;
			d->gid = (gid_t) v;
		}
	}
	return 0;
}

/* runc's sysctl rules: the namespace that owns the key must be the container's own. */
static int check_sysctl(const struct shim_config *c, const char *key, char *err, size_t errlen)
{
	static const char *const ipc_keys[] = {
		"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
		"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"};
	bool ipc = strncmp(key, "fs.mqueue.", 10) == 0;
	for (size_t i = 0; i < ELEMENTSOF(ipc_keys); i++)
		if (strcmp(key, ipc_keys[i]) == 0)
			ipc = true;
	if (ipc) {
		if (!c->ns[SHIM_NS_IPC].enabled)
			return cs_errf(-EINVAL, err, errlen,
				       "linux.sysctl.%s: needs a private IPC namespace", key);
		return 0;
	}
	if (strncmp(key, "net.", 4) == 0) {
		if (!c->ns[SHIM_NS_NET].enabled)
			return cs_errf(-EINVAL, err, errlen,
				       "linux.sysctl.%s: needs a private network namespace", key);
		return 0;
	}
	if (strcmp(key, "kernel.hostname") == 0 || strcmp(key, "kernel.domainname") == 0) {
		if (!c->ns[SHIM_NS_UTS].enabled)
			return cs_errf(-EINVAL, err, errlen,
				       "linux.sysctl.%s: needs a private UTS namespace", key);
		return 0;
	}
	return cs_errf(-EINVAL, err, errlen,
		       "linux.sysctl.%s: not namespaced, refusing to change the host's value", key);
}

static int parse_sysctl(json_object *lin, struct shim_config *c, char *err, size_t errlen)
{
	json_object *o;
	int r = cs_json_get_object(lin, "sysctl", &o);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return bad_field(err, errlen, "linux", "sysctl", r, "an object");
	c->sysctl = calloc((size_t) json_object_object_length(o) + 1, sizeof(*c->sysctl));
	if (!c->sysctl)
		return -ENOMEM;
	json_object_object_foreach (o, key, val) {
		if (!json_object_is_type(val, json_type_string))
			return cs_errf(-EINVAL, err, errlen, "linux.sysctl.%s: must be a string",
				       key);
		if (!*key || strstr(key, "..") || key[0] == '.' || strchr(key, '/'))
			return cs_errf(-EINVAL, err, errlen, "linux.sysctl.%s: bad key", key);
		r = check_sysctl(c, key, err, errlen);
		if (r < 0)
			return r;
		struct shim_sysctl *s = &c->sysctl[c->n_sysctl++];
		s->key = strdup(key);
		s->value = strdup(json_object_get_string(val));
		if (!s->key || !s->value)
			return -ENOMEM;
	}
	return 0;
}

static int parse_propagation(const char *s, unsigned long *ret)
{
	static const struct {
		const char *name;
		unsigned long flags;
	} t[] = {
		{"shared", MS_SHARED},	  {"slave", MS_SLAVE},
		{"private", MS_PRIVATE},  {"unbindable", MS_UNBINDABLE},
		{"rshared", MS_SHARED},	  {"rslave", MS_SLAVE},
		{"rprivate", MS_PRIVATE}, {"runbindable", MS_UNBINDABLE},
	};
	for (size_t i = 0; i < ELEMENTSOF(t); i++)
		if (strcmp(s, t[i].name) == 0) {
			*ret = t[i].flags | MS_REC;
			return 0;
		}
	return -EINVAL;
}

static int parse_time_offsets(json_object *lin, struct shim_config *c, char *err, size_t errlen)
{
	json_object *o;
	int r = cs_json_get_object(lin, "timeOffsets", &o);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return bad_field(err, errlen, "linux", "timeOffsets", r, "an object");
	json_object_object_foreach (o, key, val) {
		int64_t secs = 0, nsecs = 0;
		if (strcmp(key, "boottime") != 0 && strcmp(key, "monotonic") != 0)
			return cs_errf(-EINVAL, err, errlen, "linux.timeOffsets.%s: unknown clock",
				       key);
		r = cs_json_get_int64(val, "secs", &secs);
		if (r < 0 && r != -ENOENT)
			return bad_field(err, errlen, "linux.timeOffsets", "secs", r, "an integer");
		r = cs_json_get_int64(val, "nanosecs", &nsecs);
		if (r < 0 && r != -ENOENT)
			return bad_field(err, errlen, "linux.timeOffsets", "nanosecs", r,
					 "an integer");
		if (nsecs < 0 || nsecs >= 1000000000)
			return cs_errf(-EINVAL, err, errlen,
				       "linux.timeOffsets.%s.nanosecs: out of range", key);
		if (key[0] == 'b') {
			c->boottime_secs = secs;
			c->boottime_nsecs = (uint32_t) nsecs;
		} else {
			c->monotonic_secs = secs;
			c->monotonic_nsecs = (uint32_t) nsecs;
		}
		c->has_time_offsets = true;
	}
	return 0;
}

static int parse_linux(json_object *lin, struct shim_config *c, char *err, size_t errlen)
{
	json_object *o;
	const char *s;
	int r;

	if ((r = parse_namespaces(lin, c, err, errlen)) < 0 ||
	    (r = parse_id_mappings(lin, "linux", "uidMappings", &c->uid_mappings,
				   &c->n_uid_mappings, err, errlen)) < 0 ||
	    (r = parse_id_mappings(lin, "linux", "gidMappings", &c->gid_mappings,
				   &c->n_gid_mappings, err, errlen)) < 0 ||
	    (r = parse_devices(lin, c, err, errlen)) < 0 ||
	    (r = opt_string(lin, "cgroupsPath", "linux", &c->cgroups_path, err, errlen)) < 0 ||
	    (r = parse_sysctl(lin, c, err, errlen)) < 0 ||
	    (r = opt_strv(lin, "maskedPaths", "linux", &c->masked_paths, err, errlen)) < 0 ||
	    (r = opt_strv(lin, "readonlyPaths", "linux", &c->readonly_paths, err, errlen)) < 0 ||
	    (r = parse_time_offsets(lin, c, err, errlen)) < 0)
		return r;

	if (c->cgroups_path && !*c->cgroups_path) {
		free(c->cgroups_path);
		c->cgroups_path = NULL;
	}
	r = cs_json_get_object(lin, "resources", &c->resources);
	if (r < 0 && r != -ENOENT)
		return bad_field(err, errlen, "linux", "resources", r, "an object");
	r = cs_json_get_object(lin, "seccomp", &c->seccomp);
	if (r < 0 && r != -ENOENT)
		return bad_field(err, errlen, "linux", "seccomp", r, "an object");

	r = cs_json_get_string(lin, "rootfsPropagation", &s);
	if (r == 0 && *s && parse_propagation(s, &c->rootfs_propagation) < 0)
		return cs_errf(-EINVAL, err, errlen,
			       "linux.rootfsPropagation: unknown value \"%s\"", s);

	r = cs_json_get_object(lin, "personality", &o);
	if (r == 0) {
		json_object *flags;
		r = cs_json_get_string(o, "domain", &s);
		if (r < 0)
			return bad_field(err, errlen, "linux.personality", "domain", r, "a string");
		if (strcmp(s, "LINUX") == 0)
			c->personality = PER_LINUX;
		else if (strcmp(s, "LINUX32") == 0)
			c->personality = PER_LINUX32;
		else
			return cs_errf(-EINVAL, err, errlen,
				       "linux.personality.domain: unknown domain \"%s\"", s);
		if (cs_json_get_array(o, "flags", &flags) == 0 && json_object_array_length(flags))
			return cs_errf(
				-EINVAL, err, errlen,
				"linux.personality.flags: no personality flags are supported");
		c->has_personality = true;
	}

	if (cs_json_get_string(lin, "mountLabel", &s) == 0 && *s) {
		cs_errf(-EINVAL, err, errlen,
			"linux.mountLabel: \"%s\" requested but SELinux is not supported by stoke "
			"on "
			"this host",
			s);
		return -EOPNOTSUPP;
	}
	if (json_object_object_get_ex(lin, "netDevices", &o) && o &&
	    (!json_object_is_type(o, json_type_object) || json_object_object_length(o))) {
		cs_errf(-EINVAL, err, errlen,
			"linux.netDevices: moving network devices is not supported");
		return -EOPNOTSUPP;
	}
	if (json_object_object_get_ex(lin, "intelRdt", &o) && o) {
		cs_errf(-EINVAL, err, errlen, "linux.intelRdt: Intel RDT is not supported");
		return -EOPNOTSUPP;
	}
	return 0;
}

static int parse_hooks(json_object *root, struct shim_config *c, char *err, size_t errlen)
{
	json_object *hooks;
	int r = cs_json_get_object(root, "hooks", &hooks);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return bad_field(err, errlen, "", "hooks", r, "an object");
	for (int k = 0; k < SHIM_HOOK_COUNT; k++) {
		json_object *a;
		r = cs_json_get_array(hooks, hook_names[k], &a);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			return bad_field(err, errlen, "hooks", hook_names[k], r, "an array");
		size_t n = json_object_array_length(a);
		c->hooks[k].v = calloc(n ? n : 1, sizeof(struct shim_hook));
		if (!c->hooks[k].v)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++) {
			json_object *e = json_object_array_get_idx(a, i);
			struct shim_hook *h = &c->hooks[k].v[i];
			char field[64];
			int64_t t;
			c->hooks[k].n++;
			snprintf(field, sizeof(field), "hooks.%s[%zu]", hook_names[k], i);
			if (!json_object_is_type(e, json_type_object))
				return cs_errf(-EINVAL, err, errlen, "%s: must be an object",
					       field);
			if ((r = opt_string(e, "path", field, &h->path, err, errlen)) < 0 ||
			    (r = opt_strv(e, "args", field, &h->args, err, errlen)) < 0 ||
			    (r = opt_strv(e, "env", field, &h->env, err, errlen)) < 0)
				return r;
			if (!h->path || !cs_path_is_absolute(h->path))
				return cs_errf(-EINVAL, err, errlen,
					       "%s.path: must be an absolute path", field);
			r = cs_json_get_int64(e, "timeout", &t);
			if (r == 0 && (t <= 0 || t > INT32_MAX))
				return cs_errf(-EINVAL, err, errlen,
					       "%s.timeout: must be greater than zero", field);
			if (r < 0 && r != -ENOENT)
				return bad_field(err, errlen, field, "timeout", r, "an integer");
			h->timeout = r == 0 ? (int) t : 0;
		}
	}
	return 0;
}

/* Cross-field rules (runc's validator): checked after everything parsed. */
static int check_config(struct shim_config *c, char *err, size_t errlen)
{
	bool userns = c->ns[SHIM_NS_USER].enabled;
	if (userns && !c->ns[SHIM_NS_USER].path && (!c->n_uid_mappings || !c->n_gid_mappings))
		return cs_errf(-EINVAL, err, errlen,
			       "linux.uidMappings: a new user namespace needs uidMappings and "
			       "gidMappings");
	if (!userns && (c->n_uid_mappings || c->n_gid_mappings))
		return cs_errf(-EINVAL, err, errlen,
			       "linux.uidMappings: mappings given but no user namespace in "
			       "linux.namespaces");
	if (c->hostname && *c->hostname && !c->ns[SHIM_NS_UTS].enabled)
		return cs_errf(-EINVAL, err, errlen,
			       "hostname: needs a private UTS namespace (linux.namespaces)");
	if (c->domainname && *c->domainname && !c->ns[SHIM_NS_UTS].enabled)
		return cs_errf(-EINVAL, err, errlen,
			       "domainname: needs a private UTS namespace (linux.namespaces)");
	if (c->has_time_offsets && (!c->ns[SHIM_NS_TIME].enabled || c->ns[SHIM_NS_TIME].path))
		return cs_errf(-EINVAL, err, errlen,
			       "linux.timeOffsets: needs a new time namespace");
	if (c->rootfs_propagation && !c->ns[SHIM_NS_MOUNT].enabled)
		return cs_errf(-EINVAL, err, errlen,
			       "linux.rootfsPropagation: needs a mount namespace");
	if (!c->ns[SHIM_NS_MOUNT].enabled && c->n_mounts)
		return cs_errf(-EINVAL, err, errlen,
			       "mounts: mounts need a mount namespace (linux.namespaces)");
	return 0;
}

int shim_config_parse(json_object *json, const char *bundle, struct shim_config **ret, char *err,
		      size_t errlen)
{
	_cleanup_(shim_config_freep) struct shim_config *c = calloc(1, sizeof(*c));
	json_object *o, *root;
	const char *s;
	int r;

	if (!c) {
		json_object_put(json);
		return -ENOMEM;
	}
	c->json = json;
	if (!json_object_is_type(json, json_type_object))
		return cs_errf(-EINVAL, err, errlen, "config.json: the document must be an object");

	c->bundle = realpath(bundle, NULL);
	if (!c->bundle)
		return -errno;

	r = cs_json_get_string(json, "ociVersion", &s);
	if (r < 0)
		return bad_field(err, errlen, "", "ociVersion", r, "a string");
	if (strncmp(s, "1.", 2) != 0)
		return cs_errf(-EINVAL, err, errlen,
			       "ociVersion: \"%s\" is not a supported version (1.x)", s);
	c->oci_version = strdup(s);
	if (!c->oci_version)
		return -ENOMEM;

	r = cs_json_get_object(json, "root", &root);
	if (r < 0)
		return bad_field(err, errlen, "", "root", r, "an object");
	r = cs_json_get_string(root, "path", &s);
	if (r < 0 || !*s)
		return cs_errf(-EINVAL, err, errlen, "root.path: required field is missing");
	r = cs_path_is_absolute(s) ? ((c->rootfs = strdup(s)) ? 0 : -ENOMEM)
				   : cs_path_join(c->bundle, s, &c->rootfs);
	if (r < 0)
		return r;
	struct stat st;
	if (stat(c->rootfs, &st) < 0 || !S_ISDIR(st.st_mode))
		return cs_errf(-EINVAL, err, errlen, "root.path: %s is not a directory", c->rootfs);
	if ((r = opt_bool(root, "readonly", "root", &c->root_readonly, err, errlen)) < 0 ||
	    (r = opt_string(json, "hostname", "", &c->hostname, err, errlen)) < 0 ||
	    (r = opt_string(json, "domainname", "", &c->domainname, err, errlen)) < 0)
		return r;

	r = cs_json_get_object(json, "process", &o);
	if (r == 0) {
		r = shim_process_parse(o, "process", &c->process, err, errlen);
		if (r < 0)
			return r;
		c->has_process = true;
	} else if (r != -ENOENT)
		return bad_field(err, errlen, "", "process", r, "an object");

	r = cs_json_get_array(json, "mounts", &o);
	if (r == 0) {
		size_t n = json_object_array_length(o);
		c->mounts = calloc(n ? n : 1, sizeof(*c->mounts));
		if (!c->mounts)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++) {
			c->n_mounts++;
			r = parse_mount(json_object_array_get_idx(o, i), i, c->bundle,
					&c->mounts[i], err, errlen);
			if (r < 0)
				return r;
		}
	} else if (r != -ENOENT)
		return bad_field(err, errlen, "", "mounts", r, "an array");

	if ((r = parse_hooks(json, c, err, errlen)) < 0)
		return r;
	r = cs_json_get_object(json, "annotations", &c->annotations);
	if (r < 0 && r != -ENOENT)
		return bad_field(err, errlen, "", "annotations", r, "an object");
	if (c->annotations) {
		json_object_object_foreach (c->annotations, k, v) {
			if (!json_object_is_type(v, json_type_string))
				return cs_errf(-EINVAL, err, errlen,
					       "annotations.%s: must be a string", k);
		}
	}

	r = cs_json_get_object(json, "linux", &o);
	if (r == 0) {
		r = parse_linux(o, c, err, errlen);
		if (r < 0)
			return r;
		r = shim_cgroup_validate(o, err, errlen);
		if (r < 0)
			return r;
		r = shim_seccomp_validate(c->seccomp, err, errlen);
		if (r < 0)
			return r;
	} else if (r != -ENOENT)
		return bad_field(err, errlen, "", "linux", r, "an object");

	r = check_config(c, err, errlen);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(c);
	return 0;
}

int shim_config_load(const char *bundle, struct shim_config **ret, char *err, size_t errlen)
{
	_cleanup_free_ char *path = NULL;
	json_object *json;
	char jerr[256];
	int r;

	r = cs_path_join(bundle, "config.json", &path);
	if (r < 0)
		return r;
	r = cs_json_parse_file(path, SHIM_CONFIG_MAX_SIZE, &json, jerr, sizeof(jerr));
	if (r == -EINVAL)
		return cs_errf(-EINVAL, err, errlen, "%s: invalid JSON: %s", path, jerr);
	if (r < 0) {
		if (err)
			snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	return shim_config_parse(json, bundle, ret, err, errlen);
}

struct shim_config *shim_config_free(struct shim_config *c)
{
	if (!c)
		return NULL;
	free(c->oci_version);
	free(c->bundle);
	shim_process_done(&c->process);
	free(c->rootfs);
	free(c->hostname);
	free(c->domainname);
	for (size_t i = 0; i < c->n_mounts; i++) {
		free(c->mounts[i].destination);
		free(c->mounts[i].type);
		free(c->mounts[i].source);
		free(c->mounts[i].data);
		free(c->mounts[i].uid_mappings);
		free(c->mounts[i].gid_mappings);
	}
	free(c->mounts);
	for (int k = 0; k < SHIM_HOOK_COUNT; k++) {
		for (size_t i = 0; i < c->hooks[k].n; i++) {
			free(c->hooks[k].v[i].path);
			cs_strv_free(c->hooks[k].v[i].args);
			cs_strv_free(c->hooks[k].v[i].env);
		}
		free(c->hooks[k].v);
	}
	for (int t = 0; t < SHIM_NS_COUNT; t++)
		free(c->ns[t].path);
	free(c->uid_mappings);
	free(c->gid_mappings);
	for (size_t i = 0; i < c->n_devices; i++)
		free(c->devices[i].path);
	free(c->devices);
	free(c->cgroups_path);
	for (size_t i = 0; i < c->n_sysctl; i++) {
		free(c->sysctl[i].key);
		free(c->sysctl[i].value);
	}
	free(c->sysctl);
	cs_strv_free(c->masked_paths);
	cs_strv_free(c->readonly_paths);
	json_object_put(c->json);
	free(c);
	return NULL;
}
