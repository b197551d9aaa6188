/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Statistics in the shape of runc's `events --stats` "data" object
 * (runc's types.Stats: cpu, memory, pids, blkio, hugetlb), from v1 or v2
 * files. A section whose controller is missing is left out.
 */
#include "cgroup-internal.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"

static void add_u64(json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static uint64_t read_or0(const struct cg_hier *h, const char *file)
{
	uint64_t v = 0;

	(void) cg_read_u64(h, file, &v);
	return v;
}

static uint64_t keyed_or0(const struct cg_hier *h, const char *file, const char *key)
{
	uint64_t v = 0;

	(void) cg_read_keyed(h, file, key, &v);
	return v;
}

/* Every "key value" line of a flat-keyed file as an object. */
static json_object *keyed_object(const struct cg_hier *h, const char *file)
{
	_cleanup_free_ char *s = NULL;
	json_object *o = json_object_new_object();

	if (!o || cg_read(h, file, &s) < 0)
		return o;
	for (char *save = NULL, *line = strtok_r(s, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(line, ' ');
		if (!sp)
			continue;
		*sp = '\0';
		add_u64(o, line, strtoull(sp + 1, NULL, 10));
	}
	return o;
}

/* ---------------------------------------------------------------- cpu */

static json_object *cpu_stats(struct shim_cgroup *cg)
{
	struct cg_hier *acct = cg_hier_for(cg, "cpuacct"), *cpu = cg_hier_for(cg, "cpu");
	json_object *o = json_object_new_object(), *usage = json_object_new_object(),
		    *thr = json_object_new_object(), *percpu = json_object_new_array();

	if (!o || !usage || !thr || !percpu) {
		json_object_put(o);
		json_object_put(usage);
		json_object_put(thr);
		json_object_put(percpu);
		return NULL;
	}
	if (acct && acct->version == 1) {
		_cleanup_free_ char *pc = NULL;
		long hz = sysconf(_SC_CLK_TCK);
		add_u64(usage, "total", read_or0(acct, "cpuacct.usage"));
		if (cg_read(acct, "cpuacct.usage_percpu", &pc) == 0)
			for (char *p = pc, *end; *p; p = end) {
				uint64_t v = strtoull(p, &end, 10);
				if (end == p)
					break;
				json_object_array_add(percpu, json_object_new_uint64(v));
			}
		/* cpuacct.stat counts USER_HZ ticks; runc reports nanoseconds. */
		if (hz <= 0)
			hz = 100;
		add_u64(usage, "kernel",
			keyed_or0(acct, "cpuacct.stat", "system") * 1000000000 / (uint64_t) hz);
		add_u64(usage, "user",
			keyed_or0(acct, "cpuacct.stat", "user") * 1000000000 / (uint64_t) hz);
	} else if (cpu && cpu->version == 2) {
		add_u64(usage, "total", keyed_or0(cpu, "cpu.stat", "usage_usec") * 1000);
		add_u64(usage, "kernel", keyed_or0(cpu, "cpu.stat", "system_usec") * 1000);
		add_u64(usage, "user", keyed_or0(cpu, "cpu.stat", "user_usec") * 1000);
	}
	json_object_object_add(usage, "percpu", percpu);
	if (cpu) {
		add_u64(thr, "periods", keyed_or0(cpu, "cpu.stat", "nr_periods"));
		add_u64(thr, "throttledPeriods", keyed_or0(cpu, "cpu.stat", "nr_throttled"));
		add_u64(thr, "throttledTime",
			cpu->version == 2 ? keyed_or0(cpu, "cpu.stat", "throttled_usec") * 1000
					  : keyed_or0(cpu, "cpu.stat", "throttled_time"));
	}
	json_object_object_add(o, "usage", usage);
	json_object_object_add(o, "throttling", thr);
	return o;
}

/* ---------------------------------------------------------------- memory */

static json_object *mem_entry(const struct cg_hier *h, const char *prefix, bool v2)
{
	json_object *e = json_object_new_object();
	char f[96];

	if (!e)
		return NULL;
	if (v2) {
		snprintf(f, sizeof(f), "%s.current", prefix);
		add_u64(e, "usage", read_or0(h, f));
		snprintf(f, sizeof(f), "%s.max", prefix);
		add_u64(e, "limit", read_or0(h, f));
		snprintf(f, sizeof(f), "%s.peak", prefix);
		add_u64(e, "max", read_or0(h, f));
		snprintf(f, sizeof(f), "%s.events", prefix);
		add_u64(e, "failcnt", keyed_or0(h, f, "max"));
		return e;
	}
	snprintf(f, sizeof(f), "%s.usage_in_bytes", prefix);
	add_u64(e, "usage", read_or0(h, f));
	snprintf(f, sizeof(f), "%s.limit_in_bytes", prefix);
	add_u64(e, "limit", read_or0(h, f));
	snprintf(f, sizeof(f), "%s.max_usage_in_bytes", prefix);
	add_u64(e, "max", read_or0(h, f));
	snprintf(f, sizeof(f), "%s.failcnt", prefix);
	add_u64(e, "failcnt", read_or0(h, f));
	return e;
}

static json_object *memory_stats(struct cg_hier *h)
{
	json_object *o = json_object_new_object(), *raw;

	if (!o)
		return NULL;
	raw = keyed_object(h, "memory.stat");
	if (h->version == 2) {
		json_object *swap = mem_entry(h, "memory.swap", true);
		json_object_object_add(o, "usage", mem_entry(h, "memory", true));
		/* runc reports v2 swap as memory+swap, like v1's memsw. */
		if (swap) {
			json_object *v;
			uint64_t cur = read_or0(h, "memory.current");
			if (json_object_object_get_ex(swap, "usage", &v))
				add_u64(swap, "usage", json_object_get_uint64(v) + cur);
		}
		json_object_object_add(o, "swap", swap);
		add_u64(o, "cache", keyed_or0(h, "memory.stat", "file"));
	} else {
		json_object_object_add(o, "usage", mem_entry(h, "memory", false));
		json_object_object_add(o, "swap", mem_entry(h, "memory.memsw", false));
		json_object_object_add(o, "kernel", mem_entry(h, "memory.kmem", false));
		json_object_object_add(o, "kernelTCP", mem_entry(h, "memory.kmem.tcp", false));
		add_u64(o, "cache", keyed_or0(h, "memory.stat", "cache"));
	}
	json_object_object_add(o, "raw", raw);
	return o;
}

/* ---------------------------------------------------------------- pids */

static json_object *pids_stats(struct cg_hier *h)
{
	json_object *o = json_object_new_object();
	uint64_t limit = read_or0(h, "pids.max");

	if (!o)
		return NULL;
	add_u64(o, "current", read_or0(h, "pids.current"));
	add_u64(o, "limit", limit == UINT64_MAX ? 0 : limit);
	return o;
}

/* ---------------------------------------------------------------- blkio */

static void blkio_entry(json_object *a, unsigned major, unsigned minor, const char *op, uint64_t v)
{
	json_object *e = json_object_new_object();

	if (!e)
		return;
	add_u64(e, "major", major);
	add_u64(e, "minor", minor);
	if (op)
		json_object_object_add(e, "op", json_object_new_string(op));
	add_u64(e, "value", v);
	json_object_array_add(a, e);
}

/* v1 "8:0 Read 4096" lines. */
static json_object *blkio_v1_list(const struct cg_hier *h, const char *file)
{
	_cleanup_free_ char *s = NULL;
	json_object *a = json_object_new_array();

	if (!a || cg_read(h, file, &s) < 0)
		return a;
	for (char *save = NULL, *line = strtok_r(s, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned major, minor;
		char op[16];
		unsigned long long v;
		if (sscanf(line, "%u:%u %15s %llu", &major, &minor, op, &v) == 4)
			blkio_entry(a, major, minor, op, v);
	}
	return a;
}

static json_object *blkio_stats(struct cg_hier *h)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	if (h->version == 1) {
		/* The throttle files are there whatever the I/O scheduler. */
		json_object_object_add(
			o, "ioServiceBytesRecursive",
			blkio_v1_list(h, "blkio.throttle.io_service_bytes_recursive"));
		json_object_object_add(o, "ioServicedRecursive",
				       blkio_v1_list(h, "blkio.throttle.io_serviced_recursive"));
		return o;
	}
	/* v2 io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0". */
	_cleanup_free_ char *s = NULL;
	json_object *bytes = json_object_new_array(), *ios = json_object_new_array();
	if (bytes && ios && cg_read(h, "io.stat", &s) == 0)
		for (char *save = NULL, *line = strtok_r(s, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			unsigned major, minor;
			unsigned long long rb = 0, wb = 0, ri = 0, wi = 0;
			if (sscanf(line, "%u:%u rbytes=%llu wbytes=%llu rios=%llu wios=%llu",
				   &major, &minor, &rb, &wb, &ri, &wi) < 2)
				continue;
			blkio_entry(bytes, major, minor, "Read", rb);
			blkio_entry(bytes, major, minor, "Write", wb);
			blkio_entry(ios, major, minor, "Read", ri);
			blkio_entry(ios, major, minor, "Write", wi);
		}
	json_object_object_add(o, "ioServiceBytesRecursive", bytes);
	json_object_object_add(o, "ioServicedRecursive", ios);
	return o;
}

/* ---------------------------------------------------------------- hugetlb */

static json_object *hugetlb_stats(struct cg_hier *h)
{
	_cleanup_closedir_ DIR *d = opendir("/sys/kernel/mm/hugepages");
	json_object *o = json_object_new_object();
	struct dirent *de;

	if (!o || !d)
		return o;
	while ((de = readdir(d))) {
		unsigned long long kb;
		char size[32], f[96];
		if (sscanf(de->d_name, "hugepages-%llukB", &kb) != 1)
			continue;
		if (kb % (1024 * 1024) == 0)
			snprintf(size, sizeof(size), "%lluGB", kb / (1024 * 1024));
		else if (kb % 1024 == 0)
			snprintf(size, sizeof(size), "%lluMB", kb / 1024);
		else
			snprintf(size, sizeof(size), "%lluKB", kb);
		json_object *e = json_object_new_object();
		if (!e)
			continue;
		if (h->version == 2) {
			snprintf(f, sizeof(f), "hugetlb.%s.current", size);
			add_u64(e, "usage", read_or0(h, f));
			snprintf(f, sizeof(f), "hugetlb.%s.events", size);
			add_u64(e, "failcnt", keyed_or0(h, f, "max"));
		} else {
			snprintf(f, sizeof(f), "hugetlb.%s.usage_in_bytes", size);
			add_u64(e, "usage", read_or0(h, f));
			snprintf(f, sizeof(f), "hugetlb.%s.max_usage_in_bytes", size);
			add_u64(e, "max", read_or0(h, f));
			snprintf(f, sizeof(f), "hugetlb.%s.failcnt", size);
			add_u64(e, "failcnt", read_or0(h, f));
		}
		json_object_object_add(o, size, e);
	}
	return o;
}

int shim_cgroup_stats(struct shim_cgroup *cg, json_object **ret)
{
	json_object *o = json_object_new_object();
	struct cg_hier *h;

	if (!o)
		return -ENOMEM;
	if (cg_hier_for(cg, "cpu") || cg_hier_for(cg, "cpuacct"))
		json_object_object_add(o, "cpu", cpu_stats(cg));
	if ((h = cg_hier_for(cg, "memory")))
		json_object_object_add(o, "memory", memory_stats(h));
	if ((h = cg_hier_for(cg, "pids")))
		json_object_object_add(o, "pids", pids_stats(h));
	h = cg_hier_for(cg, "blkio");
	if (!h || h->version != 1)
		h = cg_hier_for(cg, "io");
	if (h)
		json_object_object_add(o, "blkio", blkio_stats(h));
	if ((h = cg_hier_for(cg, "hugetlb")))
		json_object_object_add(o, "hugetlb", hugetlb_stats(h));
	*ret = o;
	return 0;
}
