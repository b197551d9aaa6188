/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A container's cgroup seen from the shim: statistics for Stats (in the
 * io.containerd.cgroups.v1 or .v2 Metrics shape, by the hierarchy the
 * container's memory controller lives in) and the OOM watch that publishes
 * /tasks/oom (v1: memory.oom_control through cgroup.event_control; v2:
 * inotify on memory.events and its oom_kill counter).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "cleanup.h"
#include "fd-util.h"
#include "log.h"
#include "metrics.pb-c.h"
#include "shim.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

struct oom_watch {
	struct ev_source ev;
	int ctl_fd;	   /* v1: memory.oom_control, kept open while registered */
	char *events_path; /* v2: memory.events */
	uint64_t oom_kills;
};

/* The cgroup directory of `pid` for v1 controller `ctrl`, or for v2 (ctrl NULL). */
static int cgroup_dir(pid_t pid, const char *ctrl, char **ret)
{
	char path[64], line[4096];
	_cleanup_fclose_ FILE *f = NULL;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2, *nl;
		if (!c1 || !(c2 = strchr(c1 + 1, ':')))
			continue;
		*c1 = 0;
		*c2 = 0;
		nl = strchr(c2 + 1, '\n');
		if (nl)
			*nl = 0;
		if (!ctrl && strcmp(line, "0") == 0 && c1[1] == 0)
			return asprintf(ret, CGROUP_ROOT "%s", c2 + 1) < 0 ? -ENOMEM : 0;
		if (ctrl) {
			/* The controller list may be "cpu,cpuacct". */
			char *save = NULL;
			for (char *w = strtok_r(c1 + 1, ",", &save); w;
			     w = strtok_r(NULL, ",", &save))
				if (strcmp(w, ctrl) == 0)
					return asprintf(ret, CGROUP_ROOT "/%s%s", ctrl, c2 + 1) < 0
						       ? -ENOMEM
						       : 0;
		}
	}
	return -ENOENT;
}

static bool unified_only(void)
{
	return access(CGROUP_ROOT "/cgroup.controllers", F_OK) == 0;
}

static uint64_t read_u64(const char *dir, const char *file)
{
	char path[4096], buf[64];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	if (strncmp(buf, "max", 3) == 0)
		return UINT64_MAX;
	return strtoull(buf, NULL, 10);
}

/* Calls fn(key, value) for each "key value" line of a flat-keyed file. */
static void read_keyed(const char *dir, const char *file,
		       void (*fn)(void *, const char *, uint64_t), void *arg)
{
	char path[4096], key[128];
	unsigned long long v;
	_cleanup_fclose_ FILE *f = NULL;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fscanf(f, "%127s %llu", key, &v) == 2)
		fn(arg, key, v);
}

static void v1_mem_key(void *arg, const char *k, uint64_t v)
{
	Ctd__V1MemoryStat *m = arg;
	static const struct {
		const char *name;
		size_t off;
	} map[] = {
#define F(n, f) {n, offsetof(Ctd__V1MemoryStat, f)}
		F("cache", cache),
		F("rss", rss),
		F("rss_huge", rss_huge),
		F("mapped_file", mapped_file),
		F("dirty", dirty),
		F("writeback", writeback),
		F("pgpgin", pg_pg_in),
		F("pgpgout", pg_pg_out),
		F("pgfault", pg_fault),
		F("pgmajfault", pg_maj_fault),
		F("inactive_anon", inactive_anon),
		F("active_anon", active_anon),
		F("inactive_file", inactive_file),
		F("active_file", active_file),
		F("unevictable", unevictable),
		F("hierarchical_memory_limit", hierarchical_memory_limit),
		F("hierarchical_memsw_limit", hierarchical_swap_limit),
		F("total_cache", total_cache),
		F("total_rss", total_rss),
		F("total_rss_huge", total_rss_huge),
		F("total_mapped_file", total_mapped_file),
		F("total_dirty", total_dirty),
		F("total_writeback", total_writeback),
		F("total_pgpgin", total_pg_pg_in),
		F("total_pgpgout", total_pg_pg_out),
		F("total_pgfault", total_pg_fault),
		F("total_pgmajfault", total_pg_maj_fault),
		F("total_inactive_anon", total_inactive_anon),
		F("total_active_anon", total_active_anon),
		F("total_inactive_file", total_inactive_file),
		F("total_active_file", total_active_file),
		F("total_unevictable", total_unevictable),
#undef F
	};
	for (size_t i = 0; i < ELEMENTSOF(map); i++)
		if (strcmp(map[i].name, k) == 0)
			*(uint64_t *) ((char *) m + map[i].off) = v;
}

static void v2_mem_key(void *arg, const char *k, uint64_t v)
{
	Ctd__V2MemoryStat *m = arg;
	static const struct {
		const char *name;
		size_t off;
	} map[] = {
#define F(n) {#n, offsetof(Ctd__V2MemoryStat, n)}
		F(anon),
		F(file),
		F(kernel_stack),
		F(slab),
		F(sock),
		F(shmem),
		F(file_mapped),
		F(file_dirty),
		F(file_writeback),
		F(anon_thp),
		F(inactive_anon),
		F(active_anon),
		F(inactive_file),
		F(active_file),
		F(unevictable),
		F(slab_reclaimable),
		F(slab_unreclaimable),
		F(pgfault),
		F(pgmajfault),
		F(workingset_refault),
		F(workingset_activate),
		F(workingset_nodereclaim),
		F(pgrefill),
		F(pgscan),
		F(pgsteal),
		F(pgactivate),
		F(pgdeactivate),
		F(pglazyfree),
		F(pglazyfreed),
		F(thp_fault_alloc),
		F(thp_collapse_alloc),
#undef F
	};
	for (size_t i = 0; i < ELEMENTSOF(map); i++)
		if (strcmp(map[i].name, k) == 0)
			*(uint64_t *) ((char *) m + map[i].off) = v;
}

static void v2_cpu_key(void *arg, const char *k, uint64_t v)
{
	Ctd__V2CPUStat *c = arg;

	if (!strcmp(k, "usage_usec"))
		c->usage_usec = v;
	else if (!strcmp(k, "user_usec"))
		c->user_usec = v;
	else if (!strcmp(k, "system_usec"))
		c->system_usec = v;
	else if (!strcmp(k, "nr_periods"))
		c->nr_periods = v;
	else if (!strcmp(k, "nr_throttled"))
		c->nr_throttled = v;
	else if (!strcmp(k, "throttled_usec"))
		c->throttled_usec = v;
}

static void v2_events_key(void *arg, const char *k, uint64_t v)
{
	Ctd__V2MemoryEvents *e = arg;

	if (!strcmp(k, "low"))
		e->low = v;
	else if (!strcmp(k, "high"))
		e->high = v;
	else if (!strcmp(k, "max"))
		e->max = v;
	else if (!strcmp(k, "oom"))
		e->oom = v;
	else if (!strcmp(k, "oom_kill"))
		e->oom_kill = v;
}

static int pack_any(const ProtobufCMessage *m, const char *type, char **ret_type, uint8_t **ret_buf,
		    size_t *ret_len)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	char *t = strdup(type);

	if (!buf || !t) {
		free(buf);
		free(t);
		return -ENOMEM;
	}
	protobuf_c_message_pack(m, buf);
	*ret_type = t;
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

static int stats_v2(const char *dir, char **ret_type, uint8_t **ret_buf, size_t *ret_len)
{
	Ctd__V2Metrics m = CTD__V2_METRICS__INIT;
	Ctd__V2PidsStat pids = CTD__V2_PIDS_STAT__INIT;
	Ctd__V2CPUStat cpu = CTD__V2_CPUSTAT__INIT;
	Ctd__V2MemoryStat mem = CTD__V2_MEMORY_STAT__INIT;
	Ctd__V2MemoryEvents ev = CTD__V2_MEMORY_EVENTS__INIT;

	pids.current = read_u64(dir, "pids.current");
	pids.limit = read_u64(dir, "pids.max");
	read_keyed(dir, "cpu.stat", v2_cpu_key, &cpu);
	read_keyed(dir, "memory.stat", v2_mem_key, &mem);
	mem.usage = read_u64(dir, "memory.current");
	mem.usage_limit = read_u64(dir, "memory.max");
	mem.swap_usage = read_u64(dir, "memory.swap.current");
	mem.swap_limit = read_u64(dir, "memory.swap.max");
	read_keyed(dir, "memory.events", v2_events_key, &ev);
	m.pids = &pids;
	m.cpu = &cpu;
	m.memory = &mem;
	m.memory_events = &ev;
	return pack_any(&m.base, "io.containerd.cgroups.v2.Metrics", ret_type, ret_buf, ret_len);
}

static int stats_v1(pid_t pid, char **ret_type, uint8_t **ret_buf, size_t *ret_len)
{
	Ctd__V1Metrics m = CTD__V1_METRICS__INIT;
	Ctd__V1PidsStat pids = CTD__V1_PIDS_STAT__INIT;
	Ctd__V1CPUStat cpu = CTD__V1_CPUSTAT__INIT;
	Ctd__V1CPUUsage usage = CTD__V1_CPUUSAGE__INIT;
	Ctd__V1MemoryStat mem = CTD__V1_MEMORY_STAT__INIT;
	Ctd__V1MemoryEntry mu = CTD__V1_MEMORY_ENTRY__INIT, sw = CTD__V1_MEMORY_ENTRY__INIT,
			   kn = CTD__V1_MEMORY_ENTRY__INIT;
	_cleanup_free_ char *memdir = NULL, *cpudir = NULL, *piddir = NULL;

	if (cgroup_dir(pid, "memory", &memdir) < 0)
		return -ENOENT;
	if (cgroup_dir(pid, "pids", &piddir) == 0) {
		pids.current = read_u64(piddir, "pids.current");
		pids.limit = read_u64(piddir, "pids.max");
		m.pids = &pids;
	}
	if (cgroup_dir(pid, "cpuacct", &cpudir) == 0) {
		usage.total = read_u64(cpudir, "cpuacct.usage");
		usage.user = read_u64(cpudir, "cpuacct.usage_user");
		usage.kernel = read_u64(cpudir, "cpuacct.usage_sys");
		cpu.usage = &usage;
		m.cpu = &cpu;
	}
	read_keyed(memdir, "memory.stat", v1_mem_key, &mem);
	mu.usage = read_u64(memdir, "memory.usage_in_bytes");
	mu.limit = read_u64(memdir, "memory.limit_in_bytes");
	mu.max = read_u64(memdir, "memory.max_usage_in_bytes");
	mu.failcnt = read_u64(memdir, "memory.failcnt");
	sw.usage = read_u64(memdir, "memory.memsw.usage_in_bytes");
	sw.limit = read_u64(memdir, "memory.memsw.limit_in_bytes");
	kn.usage = read_u64(memdir, "memory.kmem.usage_in_bytes");
	kn.limit = read_u64(memdir, "memory.kmem.limit_in_bytes");
	mem.usage = &mu;
	mem.swap = &sw;
	mem.kernel = &kn;
	m.memory = &mem;
	return pack_any(&m.base, "io.containerd.cgroups.v1.Metrics", ret_type, ret_buf, ret_len);
}

int cgroup_stats(pid_t pid, char **ret_type, uint8_t **ret_buf, size_t *ret_len)
{
	_cleanup_free_ char *dir = NULL;

	if (unified_only()) {
		int r = cgroup_dir(pid, NULL, &dir);
		if (r < 0)
			return r;
		return stats_v2(dir, ret_type, ret_buf, ret_len);
	}
	return stats_v1(pid, ret_type, ret_buf, ret_len);
}

static void publish_oom(struct shim *s, struct container *c)
{
	Ctd__TaskOOM ev = CTD__TASK_OOM__INIT;

	ev.container_id = c->id;
	publish_event(s, "/tasks/oom", "containerd.events.TaskOOM", &ev.base);
}

static void on_oom_v1(struct shim *s, struct ev_source *src, uint32_t events)
{
	struct container *c = src->data;
	uint64_t n;

	if (read(src->fd, &n, sizeof(n)) != sizeof(n))
		return;
	/* The eventfd also fires when the cgroup is removed. */
	if (access(c->oom->events_path, F_OK) < 0) {
		ev_del(s, src);
		return;
	}
	publish_oom(s, c);
}

static void on_oom_v2(struct shim *s, struct ev_source *src, uint32_t events)
{
	struct container *c = src->data;
	char buf[4096];
	Ctd__V2MemoryEvents ev = CTD__V2_MEMORY_EVENTS__INIT;
	_cleanup_free_ char *dir = strdup(c->oom->events_path);
	char *slash;

	while (read(src->fd, buf, sizeof(buf)) > 0)
		;
	if (!dir || !(slash = strrchr(dir, '/')))
		return;
	*slash = 0;
	read_keyed(dir, "memory.events", v2_events_key, &ev);
	if (ev.oom_kill > c->oom->oom_kills) {
		c->oom->oom_kills = ev.oom_kill;
		publish_oom(s, c);
	}
}

int oom_watch_start(struct shim *s, struct container *c, pid_t pid)
{
	_cleanup_free_ char *dir = NULL, *ctl = NULL;
	struct oom_watch *w;
	int r;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->ctl_fd = -1;
	w->ev = (struct ev_source){.fd = -1, .data = c, .epfd = -1};

	if (unified_only()) {
		Ctd__V2MemoryEvents ev = CTD__V2_MEMORY_EVENTS__INIT;
		r = cgroup_dir(pid, NULL, &dir);
		if (r < 0)
			goto fail;
		if (asprintf(&w->events_path, "%s/memory.events", dir) < 0) {
			r = -ENOMEM;
			goto fail;
		}
		read_keyed(dir, "memory.events", v2_events_key, &ev);
		w->oom_kills = ev.oom_kill;
		w->ev.fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
		if (w->ev.fd < 0 || inotify_add_watch(w->ev.fd, w->events_path, IN_MODIFY) < 0) {
			r = -errno;
			goto fail;
		}
		w->ev.handler = on_oom_v2;
	} else {
		char line[64];
		r = cgroup_dir(pid, "memory", &dir);
		if (r < 0)
			goto fail;
		if (asprintf(&w->events_path, "%s/memory.oom_control", dir) < 0 ||
		    asprintf(&ctl, "%s/cgroup.event_control", dir) < 0) {
			r = -ENOMEM;
			goto fail;
		}
		w->ctl_fd = open(w->events_path, O_RDONLY | O_CLOEXEC);
		w->ev.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (w->ctl_fd < 0 || w->ev.fd < 0) {
			r = -errno;
			goto fail;
		}
		snprintf(line, sizeof(line), "%d %d", w->ev.fd, w->ctl_fd);
		{
			int fd = open(ctl, O_WRONLY | O_CLOEXEC);
			if (fd < 0) {
				r = -errno;
				goto fail;
			}
			r = cs_write_all(fd, line, strlen(line));
			close(fd);
			if (r < 0)
				goto fail;
		}
		w->ev.handler = on_oom_v1;
	}
	r = ev_add(s, &w->ev, true, EPOLLIN);
	if (r < 0)
		goto fail;
	c->oom = w;
	return 0;
fail:
	if (w->ev.fd >= 0)
		close(w->ev.fd);
	if (w->ctl_fd >= 0)
		close(w->ctl_fd);
	free(w->events_path);
	free(w);
	return r;
}

void oom_watch_stop(struct shim *s, struct container *c)
{
	struct oom_watch *w = c->oom;

	if (!w)
		return;
	ev_del(s, &w->ev);
	close(w->ev.fd);
	if (w->ctl_fd >= 0)
		close(w->ctl_fd);
	free(w->events_path);
	free(w);
	c->oom = NULL;
}
