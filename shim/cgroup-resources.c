/* SPDX-License-Identifier: Apache-2.0 */
/*
 * linux.resources: validation (types, ranges, known keys), host checks
 * (controllers present) and application to v1 / v2 files, following runc's
 * conversions (cpu.weight from shares, io.weight from blkio weight, v2
 * swap = memory+swap - memory) and its silent ignores (kernel memory on
 * kernels >= 6, swappiness / disableOOMKiller / kernelTCP / network on v2).
 */
#include "cgroup-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "json-util.h"

/* ---------------------------------------------------------------- validation */

enum vtype { V_I64, V_U64, V_BOOL, V_STR, V_ARRAY, V_OBJECT };

struct field {
	const char *key;
	enum vtype type;
	int64_t min, max; /* V_I64 / V_U64 (max < 0: no upper bound) */
};

static int verr(char *err, size_t errlen, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int verr(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return r;
}

static bool is_null(json_object *v)
{
	return !v || json_object_is_type(v, json_type_null);
}

/* Absent and null are the same to us (Go's omitempty vs. explicit null). */
static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (!o || !json_object_object_get_ex(o, key, &v) || is_null(v))
		return NULL;
	return v;
}

static bool is_u64(json_object *v)
{
	return json_object_is_type(v, json_type_int) &&
	       (json_object_get_int64(v) >= 0 || json_object_get_uint64(v) > 0);
}

static int check_value(json_object *v, const struct field *f, const char *field, char *err,
		       size_t errlen)
{
	switch (f->type) {
	case V_BOOL:
		if (!json_object_is_type(v, json_type_boolean))
			return verr(err, errlen, -EINVAL, "%s: must be true or false", field);
		return 0;
	case V_STR:
		if (!json_object_is_type(v, json_type_string))
			return verr(err, errlen, -EINVAL, "%s: must be a string", field);
		return 0;
	case V_ARRAY:
		if (!json_object_is_type(v, json_type_array))
			return verr(err, errlen, -EINVAL, "%s: must be an array", field);
		return 0;
	case V_OBJECT:
		if (!json_object_is_type(v, json_type_object))
			return verr(err, errlen, -EINVAL, "%s: must be an object", field);
		return 0;
	case V_U64:
		if (!is_u64(v))
			return verr(err, errlen, -EINVAL, "%s: must be an unsigned integer", field);
		if (f->max >= 0 && (json_object_get_uint64(v) > (uint64_t) f->max ||
				    json_object_get_uint64(v) < (uint64_t) f->min))
			return verr(err, errlen, -EINVAL,
				    "%s: %" PRIu64 " is out of range %" PRId64 "-%" PRId64, field,
				    json_object_get_uint64(v), f->min, f->max);
		return 0;
	case V_I64:
		if (!json_object_is_type(v, json_type_int))
			return verr(err, errlen, -EINVAL, "%s: must be an integer", field);
		if (json_object_get_int64(v) < f->min ||
		    (f->max >= 0 && json_object_get_int64(v) > f->max))
			return verr(err, errlen, -EINVAL, "%s: %" PRId64 " is out of range", field,
				    json_object_get_int64(v));
		return 0;
	}
	return -EINVAL;
}

/* Every known key of `o` must be of the right type. Unknown keys are
 * ignored: the runtime spec says a runtime MUST NOT fail on an unknown
 * property (its "Extensibility" rule), and runc ignores them too. */
static int check_object(json_object *o, const char *prefix, const struct field *fields, size_t n,
			char *err, size_t errlen)
{
	char field[160];

	if (!json_object_is_type(o, json_type_object))
		return verr(err, errlen, -EINVAL, "%s: must be an object", prefix);
	json_object_object_foreach (o, key, v) {
		size_t i;
		for (i = 0; i < n; i++)
			if (strcmp(fields[i].key, key) == 0)
				break;
		snprintf(field, sizeof(field), "%s.%s", prefix, key);
		if (i == n || is_null(v))
			continue;
		int r = check_value(v, &fields[i], field, err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

#define NOMAX (-1)

static const struct field memory_fields[] = {
	{"limit", V_I64, -1, NOMAX},	     {"reservation", V_I64, -1, NOMAX},
	{"swap", V_I64, -1, NOMAX},	     {"kernel", V_I64, -1, NOMAX},
	{"kernelTCP", V_I64, -1, NOMAX},     {"swappiness", V_U64, 0, 100},
	{"disableOOMKiller", V_BOOL, 0, 0},  {"useHierarchy", V_BOOL, 0, 0},
	{"checkBeforeUpdate", V_BOOL, 0, 0},
};

static const struct field cpu_fields[] = {
	{"shares", V_U64, 0, 262144},
	{"quota", V_I64, -1, NOMAX},
	{"burst", V_U64, 0, NOMAX},
	{"period", V_U64, 0, NOMAX},
	{"realtimeRuntime", V_I64, -1, NOMAX},
	{"realtimePeriod", V_U64, 0, NOMAX},
	{"cpus", V_STR, 0, 0},
	{"mems", V_STR, 0, 0},
	{"idle", V_I64, 0, 1},
};

static const struct field pids_fields[] = {
	{"limit", V_I64, INT64_MIN, NOMAX},
};

static const struct field blkio_fields[] = {
	{"weight", V_U64, 0, 1000},
	{"leafWeight", V_U64, 0, 1000},
	{"weightDevice", V_ARRAY, 0, 0},
	{"throttleReadBpsDevice", V_ARRAY, 0, 0},
	{"throttleWriteBpsDevice", V_ARRAY, 0, 0},
	{"throttleReadIOPSDevice", V_ARRAY, 0, 0},
	{"throttleWriteIOPSDevice", V_ARRAY, 0, 0},
};

static const struct field weight_device_fields[] = {
	{"major", V_I64, 0, NOMAX},
	{"minor", V_I64, 0, NOMAX},
	{"weight", V_U64, 0, 1000},
	{"leafWeight", V_U64, 0, 1000},
};

static const struct field throttle_fields[] = {
	{"major", V_I64, 0, NOMAX},
	{"minor", V_I64, 0, NOMAX},
	{"rate", V_U64, 0, NOMAX},
};

static const struct field hugepage_fields[] = {
	{"pageSize", V_STR, 0, 0},
	{"limit", V_U64, 0, NOMAX},
};

static const struct field network_fields[] = {
	{"classID", V_U64, 0, UINT32_MAX},
	{"priorities", V_ARRAY, 0, 0},
};

static const struct field priority_fields[] = {
	{"name", V_STR, 0, 0},
	{"priority", V_U64, 0, UINT32_MAX},
};

static const struct field rdma_fields[] = {
	{"hcaHandles", V_U64, 0, UINT32_MAX},
	{"hcaObjects", V_U64, 0, UINT32_MAX},
};

static const struct field device_fields[] = {
	{"allow", V_BOOL, 0, 0},     {"type", V_STR, 0, 0},   {"major", V_I64, -1, NOMAX},
	{"minor", V_I64, -1, NOMAX}, {"access", V_STR, 0, 0},
};

static const struct field resources_fields[] = {
	{"devices", V_ARRAY, 0, 0},  {"memory", V_OBJECT, 0, 0},  {"cpu", V_OBJECT, 0, 0},
	{"pids", V_OBJECT, 0, 0},    {"blockIO", V_OBJECT, 0, 0}, {"hugepageLimits", V_ARRAY, 0, 0},
	{"network", V_OBJECT, 0, 0}, {"rdma", V_OBJECT, 0, 0},	  {"unified", V_OBJECT, 0, 0},
};

static int check_array_of(json_object *a, const char *prefix, const struct field *fields, size_t n,
			  const char *const *required, char *err, size_t errlen)
{
	char field[160];

	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *e = json_object_array_get_idx(a, i);
		snprintf(field, sizeof(field), "%s[%zu]", prefix, i);
		int r = check_object(e, field, fields, n, err, errlen);
		if (r < 0)
			return r;
		for (const char *const *k = required; k && *k; k++)
			if (!get(e, *k))
				return verr(err, errlen, -EINVAL, "%s.%s: missing", field, *k);
	}
	return 0;
}

/* "0-3,5,7-8": what cpuset.cpus / cpuset.mems accept. */
static bool valid_cpu_list(const char *s)
{
	const char *p = s;

	if (!*s)
		return true; /* empty: leave as inherited */
	while (*p) {
		char *end;
		unsigned long a = strtoul(p, &end, 10), b;
		if (end == p)
			return false;
		p = end;
		if (*p == '-') {
			b = strtoul(p + 1, &end, 10);
			if (end == p + 1 || b < a)
				return false;
			p = end;
		}
		if (*p == ',')
			p++;
		else if (*p)
			return false;
	}
	return true;
}

/* "2MB" -> the size in kB, or 0 when malformed. */
static uint64_t page_size_kb(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	if (end == s || v == 0)
		return 0;
	if (strcmp(end, "KB") == 0)
		return v;
	if (strcmp(end, "MB") == 0)
		return v * 1024;
	if (strcmp(end, "GB") == 0)
		return v * 1024 * 1024;
	return 0;
}

static int check_devices(json_object *devs, char *err, size_t errlen)
{
	static const char *const required[] = {"allow", NULL};
	char field[96];
	int r;

	r = check_array_of(devs, "linux.resources.devices", device_fields,
			   ELEMENTSOF(device_fields), required, err, errlen);
	if (r < 0)
		return r;
	for (size_t i = 0; i < json_object_array_length(devs); i++) {
		json_object *d = json_object_array_get_idx(devs, i), *v;
		snprintf(field, sizeof(field), "linux.resources.devices[%zu]", i);
		v = get(d, "type");
		if (v && (strlen(json_object_get_string(v)) != 1 ||
			  !strchr("abc", json_object_get_string(v)[0])))
			return verr(err, errlen, -EINVAL, "%s.type: \"%s\" is not a, b or c", field,
				    json_object_get_string(v));
		v = get(d, "access");
		if (v &&
		    strspn(json_object_get_string(v), "rwm") != strlen(json_object_get_string(v)))
			return verr(err, errlen, -EINVAL,
				    "%s.access: \"%s\" may only contain r, w and m", field,
				    json_object_get_string(v));
	}
	return 0;
}

static int check_unified(json_object *u, char *err, size_t errlen)
{
	json_object_object_foreach (u, key, v) {
		if (!json_object_is_type(v, json_type_string))
			return verr(err, errlen, -EINVAL,
				    "linux.resources.unified.%s: must be a string", key);
		if (!key[0] || strchr(key, '/') || !strchr(key, '.') || key[0] == '.')
			return verr(err, errlen, -EINVAL,
				    "linux.resources.unified.%s: not a cgroup file name", key);
		if (strcmp(key, "cgroup.procs") == 0 || strcmp(key, "cgroup.threads") == 0 ||
		    strcmp(key, "cgroup.subtree_control") == 0)
			return verr(err, errlen, -EINVAL,
				    "linux.resources.unified.%s: may not be set by the config",
				    key);
	}
	return 0;
}

static int validate_resources(json_object *res, char *err, size_t errlen)
{
	static const char *const hp_required[] = {"pageSize", "limit", NULL};
	static const char *const dev_required[] = {"major", "minor", NULL};
	static const char *const throttles[] = {"throttleReadBpsDevice", "throttleWriteBpsDevice",
						"throttleReadIOPSDevice",
						"throttleWriteIOPSDevice"};
	json_object *o, *v;
	char field[96];
	int r;

	r = check_object(res, "linux.resources", resources_fields, ELEMENTSOF(resources_fields),
			 err, errlen);
	if (r < 0)
		return r;
	if ((o = get(res, "memory"))) {
		int64_t limit, swap;
		r = check_object(o, "linux.resources.memory", memory_fields,
				 ELEMENTSOF(memory_fields), err, errlen);
		if (r < 0)
			return r;
		/* OCI swap is memory+swap: never below the memory limit. */
		if ((v = get(o, "limit")) && (limit = json_object_get_int64(v)) > 0 &&
		    (v = get(o, "swap")) && (swap = json_object_get_int64(v)) > 0 && swap < limit)
			return verr(err, errlen, -EINVAL,
				    "linux.resources.memory.swap: %" PRId64
				    " (memory+swap) is below linux.resources.memory.limit %" PRId64,
				    swap, limit);
	}
	if ((o = get(res, "cpu"))) {
		r = check_object(o, "linux.resources.cpu", cpu_fields, ELEMENTSOF(cpu_fields), err,
				 errlen);
		if (r < 0)
			return r;
		if ((v = get(o, "cpus")) && !valid_cpu_list(json_object_get_string(v)))
			return verr(err, errlen, -EINVAL,
				    "linux.resources.cpu.cpus: \"%s\" is not a CPU list",
				    json_object_get_string(v));
		if ((v = get(o, "mems")) && !valid_cpu_list(json_object_get_string(v)))
			return verr(err, errlen, -EINVAL,
				    "linux.resources.cpu.mems: \"%s\" is not a node list",
				    json_object_get_string(v));
	}
	if ((o = get(res, "pids"))) {
		r = check_object(o, "linux.resources.pids", pids_fields, ELEMENTSOF(pids_fields),
				 err, errlen);
		if (r < 0)
			return r;
	}
	if ((o = get(res, "blockIO"))) {
		r = check_object(o, "linux.resources.blockIO", blkio_fields,
				 ELEMENTSOF(blkio_fields), err, errlen);
		if (r < 0)
			return r;
		for (const char *k = "weight"; k;
		     k = strcmp(k, "weight") == 0 ? "leafWeight" : NULL)
			if ((v = get(o, k)) && json_object_get_int64(v) != 0 &&
			    json_object_get_int64(v) < 10)
				return verr(err, errlen, -EINVAL,
					    "linux.resources.blockIO.%s: %" PRId64
					    " is out of range 10-1000",
					    k, json_object_get_int64(v));
		if ((v = get(o, "weightDevice"))) {
			r = check_array_of(v, "linux.resources.blockIO.weightDevice",
					   weight_device_fields, ELEMENTSOF(weight_device_fields),
					   dev_required, err, errlen);
			if (r < 0)
				return r;
		}
		for (size_t i = 0; i < ELEMENTSOF(throttles); i++) {
			static const char *const t_required[] = {"major", "minor", "rate", NULL};
			if (!(v = get(o, throttles[i])))
				continue;
			snprintf(field, sizeof(field), "linux.resources.blockIO.%s", throttles[i]);
			r = check_array_of(v, field, throttle_fields, ELEMENTSOF(throttle_fields),
					   t_required, err, errlen);
			if (r < 0)
				return r;
		}
	}
	if ((v = get(res, "hugepageLimits"))) {
		r = check_array_of(v, "linux.resources.hugepageLimits", hugepage_fields,
				   ELEMENTSOF(hugepage_fields), hp_required, err, errlen);
		if (r < 0)
			return r;
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			const char *ps = json_object_get_string(
				get(json_object_array_get_idx(v, i), "pageSize"));
			if (!page_size_kb(ps))
				return verr(
					err, errlen, -EINVAL,
					"linux.resources.hugepageLimits[%zu].pageSize: \"%s\" is "
					"not a size like 2MB or 1GB",
					i, ps);
		}
	}
	if ((o = get(res, "network"))) {
		static const char *const p_required[] = {"name", "priority", NULL};
		r = check_object(o, "linux.resources.network", network_fields,
				 ELEMENTSOF(network_fields), err, errlen);
		if (r < 0)
			return r;
		if ((v = get(o, "priorities"))) {
			r = check_array_of(v, "linux.resources.network.priorities", priority_fields,
					   ELEMENTSOF(priority_fields), p_required, err, errlen);
			if (r < 0)
				return r;
		}
	}
	if ((o = get(res, "rdma"))) {
		json_object_object_foreach (o, dev, limits) {
			snprintf(field, sizeof(field), "linux.resources.rdma.%s", dev);
			r = check_object(limits, field, rdma_fields, ELEMENTSOF(rdma_fields), err,
					 errlen);
			if (r < 0)
				return r;
		}
	}
	if ((o = get(res, "unified"))) {
		r = check_unified(o, err, errlen);
		if (r < 0)
			return r;
	}
	if ((v = get(res, "devices"))) {
		r = check_devices(v, err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---------------------------------------------------------------- host checks */

static int need(const char *controller, const char *field, char *err, size_t errlen)
{
	if (cg_host_version_for(controller))
		return 0;
	return verr(err, errlen, -EOPNOTSUPP,
		    "%s: the %s cgroup controller is not available on this host", field,
		    controller);
}

static bool any_set(json_object *o, const char *const *keys)
{
	for (; *keys; keys++)
		if (get(o, *keys))
			return true;
	return false;
}

static int check_hugepages(json_object *a, char *err, size_t errlen)
{
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		const char *ps =
			json_object_get_string(get(json_object_array_get_idx(a, i), "pageSize"));
		char path[128];
		snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB",
			 page_size_kb(ps));
		if (access(path, F_OK) < 0)
			return verr(
				err, errlen, -EOPNOTSUPP,
				"linux.resources.hugepageLimits[%zu].pageSize: this host has no "
				"%s huge pages",
				i, ps);
	}
	return 0;
}

static int check_unified_host(json_object *u, char *err, size_t errlen)
{
	const struct cg_host *host;
	const struct cg_mount *v2 = NULL;

	if (cg_host_get(&host) < 0)
		return -ENOMEDIUM;
	for (size_t i = 0; i < host->n; i++)
		if (host->m[i].version == 2)
			v2 = &host->m[i];
	json_object_object_foreach (u, key, val) {
		char ctrl[64];
		size_t n = strcspn(key, ".");
		(void) val;
		if (!v2)
			return verr(
				err, errlen, -EOPNOTSUPP,
				"linux.resources.unified.%s: this host has no cgroup v2 hierarchy",
				key);
		snprintf(ctrl, sizeof(ctrl), "%.*s", (int) n, key);
		if (strcmp(ctrl, "cgroup") == 0)
			continue;
		bool found = false;
		for (const char *p = v2->ctrls; *p;) {
			size_t len = strcspn(p, " ");
			if (len == strlen(ctrl) && strncmp(p, ctrl, len) == 0)
				found = true;
			p += len + (p[len] == ' ');
		}
		if (!found)
			return verr(err, errlen, -EOPNOTSUPP,
				    "linux.resources.unified.%s: the %s controller is not in this "
				    "host's cgroup v2 hierarchy",
				    key, ctrl);
	}
	return 0;
}

int cg_check_host(json_object *res, char *err, size_t errlen)
{
	static const char *const mem_keys[] = {"limit",	    "reservation", "swap",
					       "kernelTCP", "swappiness",  "disableOOMKiller",
					       NULL};
	static const char *const cpu_keys[] = {
		"shares",	   "quota",	     "period", "burst",
		"realtimeRuntime", "realtimePeriod", "idle",   NULL};
	static const char *const rt_keys[] = {"realtimeRuntime", "realtimePeriod", NULL};
	static const char *const cpuset_keys[] = {"cpus", "mems", NULL};
	json_object *o, *v;
	int r = 0;

	if (!res)
		return 0;
	if ((o = get(res, "memory")) && any_set(o, mem_keys))
		r = need("memory", "linux.resources.memory", err, errlen);
	if (r == 0 && (o = get(res, "cpu"))) {
		if (any_set(o, cpu_keys))
			r = need("cpu", "linux.resources.cpu", err, errlen);
		if (r == 0 && any_set(o, cpuset_keys) && get(o, "cpus") &&
		    json_object_get_string(get(o, "cpus"))[0])
			r = need("cpuset", "linux.resources.cpu.cpus", err, errlen);
		if (r == 0 && get(o, "mems") && json_object_get_string(get(o, "mems"))[0])
			r = need("cpuset", "linux.resources.cpu.mems", err, errlen);
		/* cgroup v2 has no real-time group scheduling. */
		for (const char *const *k = rt_keys; r == 0 && *k; k++)
			if ((v = get(o, *k)) && json_object_get_int64(v) != 0 &&
			    cg_host_version_for("cpu") == 2)
				r = verr(err, errlen, -EOPNOTSUPP,
					 "linux.resources.cpu.%s: real-time scheduling is not "
					 "supported by cgroup v2",
					 *k);
	}
	if (r == 0 && (o = get(res, "pids")) && get(o, "limit"))
		r = need("pids", "linux.resources.pids", err, errlen);
	if (r == 0 && (o = get(res, "blockIO")) && json_object_object_length(o) > 0 &&
	    !cg_host_version_for("blkio") && cg_host_version_for("io") != 2)
		r = verr(err, errlen, -EOPNOTSUPP,
			 "linux.resources.blockIO: the blkio/io cgroup controller is not available "
			 "on this host");
	if (r == 0 && (v = get(res, "hugepageLimits")) && json_object_array_length(v) > 0) {
		r = need("hugetlb", "linux.resources.hugepageLimits", err, errlen);
		if (r == 0)
			r = check_hugepages(v, err, errlen);
	}
	if (r == 0 && (o = get(res, "network")) && cg_host_version_for("memory") == 1) {
		/* v1 has net_cls/net_prio; runc ignores network on v2. */
		if (get(o, "classID"))
			r = need("net_cls", "linux.resources.network.classID", err, errlen);
		if (r == 0 && (v = get(o, "priorities")) && json_object_array_length(v) > 0)
			r = need("net_prio", "linux.resources.network.priorities", err, errlen);
	}
	if (r == 0 && (o = get(res, "rdma")) && json_object_object_length(o) > 0)
		r = need("rdma", "linux.resources.rdma", err, errlen);
	if (r == 0 && (o = get(res, "unified")))
		r = check_unified_host(o, err, errlen);
	return r;
}

int shim_cgroup_validate(json_object *linux_obj, char *err, size_t errlen)
{
	json_object *v;
	int r;

	if (!linux_obj)
		return 0;
	if (!json_object_is_type(linux_obj, json_type_object))
		return verr(err, errlen, -EINVAL, "linux: must be an object");
	if ((v = get(linux_obj, "cgroupsPath"))) {
		const char *p = json_object_get_string(v);
		if (!json_object_is_type(v, json_type_string))
			return verr(err, errlen, -EINVAL, "linux.cgroupsPath: must be a string");
		for (const char *s = p; *s;) {
			size_t n = strcspn(s, "/");
			if ((n == 2 && strncmp(s, "..", 2) == 0) || (n == 1 && s[0] == '.'))
				return verr(err, errlen, -EINVAL,
					    "linux.cgroupsPath: \"%s\" may not contain . or .. "
					    "components",
					    p);
			s += n + (s[n] == '/');
		}
	}
	if (!(v = get(linux_obj, "resources")))
		return 0;
	r = validate_resources(v, err, errlen);
	if (r < 0)
		return r;
	return cg_check_host(v, err, errlen);
}

/* ---------------------------------------------------------------- helpers */

static int write_u64(struct cg_hier *h, const char *file, uint64_t v, const char *field)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return cg_write(h, file, buf, field);
}

/* v1 takes -1 for "unlimited", v2 wants "max". */
static int write_limit(struct cg_hier *h, const char *file, int64_t v, const char *field)
{
	char buf[32];

	if (v < 0)
		snprintf(buf, sizeof(buf), h->version == 2 ? "max" : "-1");
	else
		snprintf(buf, sizeof(buf), "%" PRId64, v);
	return cg_write(h, file, buf, field);
}

static bool get_i64(json_object *o, const char *key, int64_t *ret)
{
	json_object *v = get(o, key);

	if (v)
		*ret = json_object_get_int64(v);
	return v != NULL;
}

static bool get_u64(json_object *o, const char *key, uint64_t *ret)
{
	json_object *v = get(o, key);

	if (v)
		*ret = json_object_get_uint64(v);
	return v != NULL;
}

static int missing(const char *field, const char *file, struct cg_hier *h)
{
	return cg_set_error(-EOPNOTSUPP, "%s: %s/%s does not exist on this host", field, h->dir,
			    file);
}

/* ---------------------------------------------------------------- memory */

static int memory_v1(struct cg_hier *h, json_object *m)
{
	const struct cg_host *host;
	int64_t limit = 0, swap = 0, v;
	bool has_limit = get_i64(m, "limit", &limit), has_swap = get_i64(m, "swap", &swap);
	json_object *b;
	int r = 0;

	/* runc: unlimited memory with swap unset means unlimited swap too. */
	if (has_limit && limit == -1 && !has_swap &&
	    cg_has_file(h, "memory.memsw.limit_in_bytes")) {
		swap = -1;
		has_swap = true;
	}
	if (has_swap && !cg_has_file(h, "memory.memsw.limit_in_bytes")) {
		if (swap != -1)
			return missing("linux.resources.memory.swap", "memory.memsw.limit_in_bytes",
				       h);
		has_swap = false;
	}
	if (has_limit && has_swap) {
		uint64_t cur = 0;
		(void) cg_read_u64(h, "memory.limit_in_bytes", &cur);
		/* The kernel keeps limit <= memsw at every step: order the writes. */
		if (swap == -1 || cur < (uint64_t) swap) {
			r = write_limit(h, "memory.memsw.limit_in_bytes", swap,
					"linux.resources.memory.swap");
			if (r == 0)
				r = write_limit(h, "memory.limit_in_bytes", limit,
						"linux.resources.memory.limit");
		} else {
			r = write_limit(h, "memory.limit_in_bytes", limit,
					"linux.resources.memory.limit");
			if (r == 0)
				r = write_limit(h, "memory.memsw.limit_in_bytes", swap,
						"linux.resources.memory.swap");
		}
	} else if (has_limit) {
		r = write_limit(h, "memory.limit_in_bytes", limit, "linux.resources.memory.limit");
	} else if (has_swap) {
		r = write_limit(h, "memory.memsw.limit_in_bytes", swap,
				"linux.resources.memory.swap");
	}
	if (r == 0 && get_i64(m, "reservation", &v))
		r = write_limit(h, "memory.soft_limit_in_bytes", v,
				"linux.resources.memory.reservation");
	/* Kernel memory limits are gone on kernels >= 6 (runc ignores them). */
	if (r == 0 && get_i64(m, "kernel", &v) && cg_host_get(&host) == 0 &&
	    host->kernel_major < 6 && cg_has_file(h, "memory.kmem.limit_in_bytes"))
		r = write_limit(h, "memory.kmem.limit_in_bytes", v,
				"linux.resources.memory.kernel");
	if (r == 0 && get_i64(m, "kernelTCP", &v)) {
		if (!cg_has_file(h, "memory.kmem.tcp.limit_in_bytes"))
			return missing("linux.resources.memory.kernelTCP",
				       "memory.kmem.tcp.limit_in_bytes", h);
		r = write_limit(h, "memory.kmem.tcp.limit_in_bytes", v,
				"linux.resources.memory.kernelTCP");
	}
	if (r == 0 && get_i64(m, "swappiness", &v))
		r = write_u64(h, "memory.swappiness", (uint64_t) v,
			      "linux.resources.memory.swappiness");
	if (r == 0 && (b = get(m, "disableOOMKiller")) && json_object_get_boolean(b))
		r = cg_write(h, "memory.oom_control", "1",
			     "linux.resources.memory.disableOOMKiller");
	return r;
}

static int memory_v2(struct cg_hier *h, json_object *m)
{
	int64_t limit = 0, swap = 0, v;
	bool has_limit = get_i64(m, "limit", &limit), has_swap = get_i64(m, "swap", &swap);
	int r = 0;

	if (has_limit)
		r = write_limit(h, "memory.max", limit, "linux.resources.memory.limit");
	if (r == 0 && (has_swap || (has_limit && limit == -1))) {
		/* OCI swap is memory+swap; v2's memory.swap.max is swap alone. */
		int64_t sw;
		if (has_limit && limit == -1 && swap == 0)
			sw = -1;
		else if (swap == -1 || swap == 0)
			sw = swap;
		else if (!has_limit || limit <= 0)
			return cg_set_error(-EINVAL, "linux.resources.memory.swap: a swap limit "
						     "needs a memory limit on cgroup v2");
		else if (swap < limit)
			return cg_set_error(-EINVAL,
					    "linux.resources.memory.swap: %" PRId64
					    " is below the memory limit %" PRId64,
					    swap, limit);
		else
			sw = swap - limit;
		/* swap == limit: no swap at all, "0" (runc). Unset: leave it. */
		if (sw != 0 || swap > 0) {
			if (cg_has_file(h, "memory.swap.max"))
				r = write_limit(h, "memory.swap.max", sw,
						"linux.resources.memory.swap");
			else if (sw > 0)
				return missing("linux.resources.memory.swap", "memory.swap.max", h);
		}
	}
	if (r == 0 && get_i64(m, "reservation", &v))
		r = write_limit(h, "memory.low", v, "linux.resources.memory.reservation");
	/* kernel, kernelTCP, swappiness, disableOOMKiller: no v2 files; runc ignores. */
	return r;
}

static int apply_memory(struct shim_cgroup *cg, json_object *m)
{
	struct cg_hier *h = cg_hier_for(cg, "memory");

	if (!h)
		return 0; /* nothing to set: cg_check_host() passed */
	return h->version == 2 ? memory_v2(h, m) : memory_v1(h, m);
}

/* ---------------------------------------------------------------- cpu */

static int cpu_v1(struct cg_hier *h, json_object *c)
{
	uint64_t u;
	int64_t quota = 0, v;
	bool has_quota = get_i64(c, "quota", &quota);
	int r = 0;

	if (get_u64(c, "shares", &u) && u)
		r = write_u64(h, "cpu.shares", u, "linux.resources.cpu.shares");
	if (r == 0 && get_u64(c, "period", &u) && u) {
		r = write_u64(h, "cpu.cfs_period_us", u, "linux.resources.cpu.period");
		/* A shorter period than the current quota is refused until the
		 * quota is lowered: write the quota, then the period again. */
		if (r == -EINVAL && has_quota) {
			r = write_limit(h, "cpu.cfs_quota_us", quota, "linux.resources.cpu.quota");
			if (r == 0)
				r = write_u64(h, "cpu.cfs_period_us", u,
					      "linux.resources.cpu.period");
		}
	}
	if (r == 0 && has_quota && quota)
		r = write_limit(h, "cpu.cfs_quota_us", quota, "linux.resources.cpu.quota");
	if (r == 0 && get_u64(c, "burst", &u)) {
		if (!cg_has_file(h, "cpu.cfs_burst_us"))
			return missing("linux.resources.cpu.burst", "cpu.cfs_burst_us", h);
		r = write_u64(h, "cpu.cfs_burst_us", u, "linux.resources.cpu.burst");
	}
	if (r == 0 && get_u64(c, "realtimePeriod", &u) && u)
		r = write_u64(h, "cpu.rt_period_us", u, "linux.resources.cpu.realtimePeriod");
	if (r == 0 && get_i64(c, "realtimeRuntime", &v) && v)
		r = write_limit(h, "cpu.rt_runtime_us", v, "linux.resources.cpu.realtimeRuntime");
	if (r == 0 && get_i64(c, "idle", &v)) {
		if (!cg_has_file(h, "cpu.idle"))
			return missing("linux.resources.cpu.idle", "cpu.idle", h);
		r = write_u64(h, "cpu.idle", (uint64_t) v, "linux.resources.cpu.idle");
	}
	return r;
}

static int cpu_v2(struct cg_hier *h, json_object *c)
{
	uint64_t shares, period = 0, burst;
	int64_t quota = 0, idle;
	bool has_quota = get_i64(c, "quota", &quota), has_period = get_u64(c, "period", &period);
	char buf[64];
	int r = 0;

	/* runc's mapping of shares [2, 262144] onto weight [1, 10000]. */
	if (get_u64(c, "shares", &shares) && shares) {
		uint64_t w = shares < 2 ? 1 : 1 + ((shares - 2) * 9999) / 262142;
		r = write_u64(h, "cpu.weight", w, "linux.resources.cpu.shares");
	}
	if (r == 0 && ((has_quota && quota) || (has_period && period))) {
		int n = quota > 0 ? snprintf(buf, sizeof(buf), "%" PRId64, quota)
				  : snprintf(buf, sizeof(buf), "max");
		if (period)
			snprintf(buf + n, sizeof(buf) - (size_t) n, " %" PRIu64, period);
		r = cg_write(h, "cpu.max", buf, "linux.resources.cpu.quota");
	}
	if (r == 0 && get_u64(c, "burst", &burst)) {
		if (!cg_has_file(h, "cpu.max.burst"))
			return missing("linux.resources.cpu.burst", "cpu.max.burst", h);
		r = write_u64(h, "cpu.max.burst", burst, "linux.resources.cpu.burst");
	}
	if (r == 0 && get_i64(c, "idle", &idle)) {
		if (!cg_has_file(h, "cpu.idle"))
			return missing("linux.resources.cpu.idle", "cpu.idle", h);
		r = write_u64(h, "cpu.idle", (uint64_t) idle, "linux.resources.cpu.idle");
	}
	return r;
}

static int apply_cpu(struct shim_cgroup *cg, json_object *c)
{
	struct cg_hier *h = cg_hier_for(cg, "cpu"), *cs = cg_hier_for(cg, "cpuset");
	json_object *v;
	int r = 0;

	if (h)
		r = h->version == 2 ? cpu_v2(h, c) : cpu_v1(h, c);
	if (r == 0 && cs && (v = get(c, "cpus")) && json_object_get_string(v)[0])
		r = cg_write(cs, "cpuset.cpus", json_object_get_string(v),
			     "linux.resources.cpu.cpus");
	if (r == 0 && cs && (v = get(c, "mems")) && json_object_get_string(v)[0])
		r = cg_write(cs, "cpuset.mems", json_object_get_string(v),
			     "linux.resources.cpu.mems");
	return r;
}

/* ---------------------------------------------------------------- pids */

static int apply_pids(struct shim_cgroup *cg, json_object *p)
{
	struct cg_hier *h = cg_hier_for(cg, "pids");
	int64_t limit;

	if (!h || !get_i64(p, "limit", &limit) || limit == 0)
		return 0;
	/* Zero or negative: unlimited (runc). */
	if (limit < 0)
		return cg_write(h, "pids.max", "max", "linux.resources.pids.limit");
	return write_u64(h, "pids.max", (uint64_t) limit, "linux.resources.pids.limit");
}

/* ---------------------------------------------------------------- blkio / io */

static const char *pick(struct cg_hier *h, const char *a, const char *b)
{
	if (cg_has_file(h, a))
		return a;
	if (b && cg_has_file(h, b))
		return b;
	return NULL;
}

static int blkio_v1(struct cg_hier *h, json_object *b)
{
	static const struct {
		const char *key, *file;
	} throttles[] = {
		{"throttleReadBpsDevice", "blkio.throttle.read_bps_device"},
		{"throttleWriteBpsDevice", "blkio.throttle.write_bps_device"},
		{"throttleReadIOPSDevice", "blkio.throttle.read_iops_device"},
		{"throttleWriteIOPSDevice", "blkio.throttle.write_iops_device"},
	};
	const char *file;
	json_object *a;
	uint64_t w;
	char buf[96];
	int r = 0;

	if (get_u64(b, "weight", &w) && w) {
		file = pick(h, "blkio.weight", "blkio.bfq.weight");
		if (!file)
			return missing("linux.resources.blockIO.weight", "blkio.weight", h);
		r = write_u64(h, file, w, "linux.resources.blockIO.weight");
	}
	/* Only CFQ had leaf weights; newer kernels have no file: ignored. */
	if (r == 0 && get_u64(b, "leafWeight", &w) && w && cg_has_file(h, "blkio.leaf_weight"))
		r = write_u64(h, "blkio.leaf_weight", w, "linux.resources.blockIO.leafWeight");
	if (r == 0 && (a = get(b, "weightDevice"))) {
		file = pick(h, "blkio.weight_device", "blkio.bfq.weight_device");
		for (size_t i = 0; r == 0 && i < json_object_array_length(a); i++) {
			json_object *d = json_object_array_get_idx(a, i);
			if (!get_u64(d, "weight", &w))
				continue;
			if (!file)
				return missing("linux.resources.blockIO.weightDevice",
					       "blkio.weight_device", h);
			snprintf(buf, sizeof(buf), "%" PRId64 ":%" PRId64 " %" PRIu64,
				 json_object_get_int64(get(d, "major")),
				 json_object_get_int64(get(d, "minor")), w);
			r = cg_write(h, file, buf, "linux.resources.blockIO.weightDevice");
		}
	}
	for (size_t t = 0; r == 0 && t < ELEMENTSOF(throttles); t++) {
		char field[80];
		if (!(a = get(b, throttles[t].key)))
			continue;
		snprintf(field, sizeof(field), "linux.resources.blockIO.%s", throttles[t].key);
		if (json_object_array_length(a) && !cg_has_file(h, throttles[t].file))
			return missing(field, throttles[t].file, h);
		for (size_t i = 0; r == 0 && i < json_object_array_length(a); i++) {
			json_object *d = json_object_array_get_idx(a, i);
			snprintf(buf, sizeof(buf), "%" PRId64 ":%" PRId64 " %" PRIu64,
				 json_object_get_int64(get(d, "major")),
				 json_object_get_int64(get(d, "minor")),
				 json_object_get_uint64(get(d, "rate")));
			r = cg_write(h, throttles[t].file, buf, field);
		}
	}
	return r;
}

static int io_v2(struct cg_hier *h, json_object *b)
{
	static const struct {
		const char *key, *name;
	} throttles[] = {
		{"throttleReadBpsDevice", "rbps"},
		{"throttleWriteBpsDevice", "wbps"},
		{"throttleReadIOPSDevice", "riops"},
		{"throttleWriteIOPSDevice", "wiops"},
	};
	json_object *a;
	uint64_t w;
	char buf[96];
	int r = 0;

	if (get_u64(b, "weight", &w) && w) {
		if (cg_has_file(h, "io.bfq.weight"))
			r = write_u64(h, "io.bfq.weight", w, "linux.resources.blockIO.weight");
		else if (cg_has_file(h, "io.weight"))
			/* runc: blkio [10, 1000] onto io.weight [1, 10000]. */
			r = write_u64(h, "io.weight", 1 + (w - 10) * 9999 / 990,
				      "linux.resources.blockIO.weight");
		else
			return missing("linux.resources.blockIO.weight", "io.weight", h);
	}
	if (r == 0 && (a = get(b, "weightDevice"))) {
		for (size_t i = 0; r == 0 && i < json_object_array_length(a); i++) {
			json_object *d = json_object_array_get_idx(a, i);
			if (!get_u64(d, "weight", &w))
				continue;
			if (!cg_has_file(h, "io.bfq.weight"))
				return missing("linux.resources.blockIO.weightDevice",
					       "io.bfq.weight", h);
			snprintf(buf, sizeof(buf), "%" PRId64 ":%" PRId64 " %" PRIu64,
				 json_object_get_int64(get(d, "major")),
				 json_object_get_int64(get(d, "minor")), w);
			r = cg_write(h, "io.bfq.weight", buf,
				     "linux.resources.blockIO.weightDevice");
		}
	}
	for (size_t t = 0; r == 0 && t < ELEMENTSOF(throttles); t++) {
		char field[80];
		if (!(a = get(b, throttles[t].key)))
			continue;
		snprintf(field, sizeof(field), "linux.resources.blockIO.%s", throttles[t].key);
		if (json_object_array_length(a) && !cg_has_file(h, "io.max"))
			return missing(field, "io.max", h);
		for (size_t i = 0; r == 0 && i < json_object_array_length(a); i++) {
			json_object *d = json_object_array_get_idx(a, i);
			uint64_t rate = json_object_get_uint64(get(d, "rate"));
			int n = snprintf(buf, sizeof(buf), "%" PRId64 ":%" PRId64 " %s=",
					 json_object_get_int64(get(d, "major")),
					 json_object_get_int64(get(d, "minor")), throttles[t].name);
			if (rate)
				snprintf(buf + n, sizeof(buf) - (size_t) n, "%" PRIu64, rate);
			else
				snprintf(buf + n, sizeof(buf) - (size_t) n, "max");
			r = cg_write(h, "io.max", buf, field);
		}
	}
	return r;
}

static int apply_blkio(struct shim_cgroup *cg, json_object *b)
{
	struct cg_hier *h = cg_hier_for(cg, "blkio");

	if (h && h->version == 1)
		return blkio_v1(h, b);
	h = cg_hier_for(cg, "io");
	return h ? io_v2(h, b) : 0;
}

/* ---------------------------------------------------------------- hugetlb */

static int apply_hugetlb(struct shim_cgroup *cg, json_object *a)
{
	struct cg_hier *h = cg_hier_for(cg, "hugetlb");
	char file[96], field[96];
	int r = 0;

	if (!h)
		return 0;
	for (size_t i = 0; r == 0 && i < json_object_array_length(a); i++) {
		json_object *e = json_object_array_get_idx(a, i);
		const char *ps = json_object_get_string(get(e, "pageSize"));
		uint64_t limit = json_object_get_uint64(get(e, "limit"));
		snprintf(field, sizeof(field), "linux.resources.hugepageLimits[%zu]", i);
		snprintf(file, sizeof(file),
			 h->version == 2 ? "hugetlb.%s.max" : "hugetlb.%s.limit_in_bytes", ps);
		if (!cg_has_file(h, file))
			return missing(field, file, h);
		r = write_u64(h, file, limit, field);
		/* Reservations too, where the kernel accounts them (runc does). */
		snprintf(file, sizeof(file),
			 h->version == 2 ? "hugetlb.%s.rsvd.max" : "hugetlb.%s.rsvd.limit_in_bytes",
			 ps);
		if (r == 0 && cg_has_file(h, file))
			r = write_u64(h, file, limit, field);
	}
	return r;
}

/* ---------------------------------------------------------------- network, rdma */

static int apply_network(struct shim_cgroup *cg, json_object *n)
{
	struct cg_hier *cls = cg_hier_for(cg, "net_cls"), *prio = cg_hier_for(cg, "net_prio");
	json_object *a;
	uint64_t id;
	char buf[128];
	int r = 0;

	if (cls && cls->version == 1 && get_u64(n, "classID", &id))
		r = write_u64(cls, "net_cls.classid", id, "linux.resources.network.classID");
	if (r == 0 && prio && prio->version == 1 && (a = get(n, "priorities")))
		for (size_t i = 0; r == 0 && i < json_object_array_length(a); i++) {
			json_object *e = json_object_array_get_idx(a, i);
			snprintf(buf, sizeof(buf), "%s %" PRIu64,
				 json_object_get_string(get(e, "name")),
				 json_object_get_uint64(get(e, "priority")));
			r = cg_write(prio, "net_prio.ifpriomap", buf,
				     "linux.resources.network.priorities");
		}
	return r;
}

static int apply_rdma(struct shim_cgroup *cg, json_object *o)
{
	struct cg_hier *h = cg_hier_for(cg, "rdma");
	char buf[256], field[128];
	int r = 0;

	if (!h)
		return 0;
	json_object_object_foreach (o, dev, lim) {
		uint64_t handles = 0, objects = 0;
		bool hh = get_u64(lim, "hcaHandles", &handles),
		     ho = get_u64(lim, "hcaObjects", &objects);
		int n = snprintf(buf, sizeof(buf), "%s", dev);
		if (!hh && !ho)
			continue;
		if (hh)
			n += snprintf(buf + n, sizeof(buf) - (size_t) n, " hca_handle=%" PRIu64,
				      handles);
		if (ho)
			snprintf(buf + n, sizeof(buf) - (size_t) n, " hca_object=%" PRIu64,
				 objects);
		snprintf(field, sizeof(field), "linux.resources.rdma.%s", dev);
		r = cg_write(h, "rdma.max", buf, field);
		if (r < 0)
			return r;
	}
	return r;
}

/* ---------------------------------------------------------------- unified */

static int apply_unified(struct shim_cgroup *cg, json_object *u)
{
	struct cg_hier *h = NULL;
	char field[160];

	for (size_t i = 0; i < cg->n; i++)
		if (cg->h[i].version == 2)
			h = &cg->h[i];
	if (!h)
		return 0;
	json_object_object_foreach (u, key, v) {
		snprintf(field, sizeof(field), "linux.resources.unified.%s", key);
		if (!cg_has_file(h, key))
			return missing(field, key, h);
		int r = cg_write(h, key, json_object_get_string(v), field);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---------------------------------------------------------------- devices */

json_object *cg_devices_default_rules(void)
{
	/* runc's AllowedDevices: mknod of anything, and the standard nodes. */
	static const char *const rules =
		"[{\"allow\":true,\"type\":\"c\",\"major\":-1,\"minor\":-1,\"access\":\"m\"},"
		"{\"allow\":true,\"type\":\"b\",\"major\":-1,\"minor\":-1,\"access\":\"m\"},"
		"{\"allow\":true,\"type\":\"c\",\"major\":1,\"minor\":3,\"access\":\"rwm\"},"
		"{\"allow\":true,\"type\":\"c\",\"major\":1,\"minor\":8,\"access\":\"rwm\"},"
		"{\"allow\":true,\"type\":\"c\",\"major\":1,\"minor\":7,\"access\":\"rwm\"},"
		"{\"allow\":true,\"type\":\"c\",\"major\":5,\"minor\":0,\"access\":\"rwm\"},"
		"{\"allow\":true,\"type\":\"c\",\"major\":1,\"minor\":5,\"access\":\"rwm\"},"
		"{\"allow\":true,\"type\":\"c\",\"major\":1,\"minor\":9,\"access\":\"rwm\"},"
		"{\"allow\":true,\"type\":\"c\",\"major\":136,\"minor\":-1,\"access\":\"rwm\"},"
		"{\"allow\":true,\"type\":\"c\",\"major\":5,\"minor\":2,\"access\":\"rwm\"},"
		"{\"allow\":true,\"type\":\"c\",\"major\":10,\"minor\":200,\"access\":\"rwm\"}]";
	return json_tokener_parse(rules);
}

static void rule_text(json_object *d, char type, char *buf, size_t len)
{
	json_object *a = get(d, "access");
	int64_t major = -1, minor = -1;
	char mj[24] = "*", mn[24] = "*";
	const char *access = a && json_object_get_string(a)[0] ? json_object_get_string(a) : "rwm";

	get_i64(d, "major", &major);
	get_i64(d, "minor", &minor);
	if (major >= 0)
		snprintf(mj, sizeof(mj), "%" PRId64, major);
	if (minor >= 0)
		snprintf(mn, sizeof(mn), "%" PRId64, minor);
	snprintf(buf, len, "%c %s:%s %s", type, mj, mn, access);
}

/* The kernel reads any "a ..." line as "every device, every access": a
 * rule of type a that names numbers or fewer accesses becomes a block
 * rule and a char rule. */
static bool type_a_is_everything(json_object *d)
{
	json_object *a = get(d, "access");
	int64_t major = -1, minor = -1;

	get_i64(d, "major", &major);
	get_i64(d, "minor", &minor);
	return major < 0 && minor < 0 &&
	       (!a || !json_object_get_string(a)[0] ||
		(strchr(json_object_get_string(a), 'r') && strchr(json_object_get_string(a), 'w') &&
		 strchr(json_object_get_string(a), 'm')));
}

/* v1: the kernel applies each write in order, which is the OCI semantics. */
static int devices_v1(struct cg_hier *h, json_object *rules)
{
	char buf[96], field[64];

	for (size_t i = 0; i < json_object_array_length(rules); i++) {
		json_object *d = json_object_array_get_idx(rules, i), *t = get(d, "type");
		const char *file =
			json_object_get_boolean(get(d, "allow")) ? "devices.allow" : "devices.deny";
		char type = t ? json_object_get_string(t)[0] : 'a';
		int r;

		snprintf(field, sizeof(field), "linux.resources.devices[%zu]", i);
		if (type == 'a' && !type_a_is_everything(d)) {
			rule_text(d, 'b', buf, sizeof(buf));
			r = cg_write(h, file, buf, field);
			if (r == 0) {
				rule_text(d, 'c', buf, sizeof(buf));
				r = cg_write(h, file, buf, field);
			}
		} else {
			rule_text(d, type, buf, sizeof(buf));
			r = cg_write(h, file, buf, field);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static int apply_devices(struct shim_cgroup *cg, json_object *devs)
{
	struct cg_hier *h = cg_hier_for(cg, "devices");
	json_object *all, *defaults;
	int r;

	if (!h || json_object_array_length(devs) == 0)
		return 0;
	/* The config's rules, then runc's defaults (so they cannot be denied
	 * by accident: containers need /dev/null). */
	all = json_object_new_array();
	defaults = cg_devices_default_rules();
	if (!all || !defaults) {
		json_object_put(all);
		json_object_put(defaults);
		return -ENOMEM;
	}
	for (size_t i = 0; i < json_object_array_length(devs); i++)
		json_object_array_add(all, json_object_get(json_object_array_get_idx(devs, i)));
	for (size_t i = 0; i < json_object_array_length(defaults); i++)
		json_object_array_add(all, json_object_get(json_object_array_get_idx(defaults, i)));
	json_object_put(defaults);

	if (h->version == 1) {
		r = devices_v1(h, all);
	} else {
		_cleanup_close_ int fd = open(h->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		r = fd < 0 ? -errno : cg_bpf_devices_replace(fd, all);
		if (r < 0 && !shim_cgroup_last_error()[0])
			cg_set_error(
				r, "linux.resources.devices: loading the device program for %s: %s",
				h->dir, strerror(-r));
	}
	json_object_put(all);
	return r;
}

/* ---------------------------------------------------------------- apply */

int cg_apply_resources(struct shim_cgroup *cg, json_object *res)
{
	char err[256] = "";
	json_object *o;
	int r;

	r = validate_resources(res, err, sizeof(err));
	if (r < 0)
		return cg_set_error(r, "%s", err);
	if ((o = get(res, "devices"))) {
		r = apply_devices(cg, o);
		if (r < 0)
			return r;
	}
	if ((o = get(res, "cpu"))) {
		r = apply_cpu(cg, o);
		if (r < 0)
			return r;
	}
	if ((o = get(res, "memory"))) {
		r = apply_memory(cg, o);
		if (r < 0)
			return r;
	}
	if ((o = get(res, "pids"))) {
		r = apply_pids(cg, o);
		if (r < 0)
			return r;
	}
	if ((o = get(res, "blockIO"))) {
		r = apply_blkio(cg, o);
		if (r < 0)
			return r;
	}
	if ((o = get(res, "hugepageLimits"))) {
		r = apply_hugetlb(cg, o);
		if (r < 0)
			return r;
	}
	if ((o = get(res, "network"))) {
		r = apply_network(cg, o);
		if (r < 0)
			return r;
	}
	if ((o = get(res, "rdma"))) {
		r = apply_rdma(cg, o);
		if (r < 0)
			return r;
	}
	/* Last: unified values override the structured ones, as in runc. */
	if ((o = get(res, "unified")))
		return apply_unified(cg, o);
	return 0;
}
