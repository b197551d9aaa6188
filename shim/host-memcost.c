/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Memory costs of this host (host-memcost.h): each figure is the time of a
 * real operation on memory of our own, divided by the pages it covered.
 * Sizes are small (32 MiB of 4 KiB pages, 16 huge pages) so that the whole
 * measurement stays well under a second where faults are cheap; the first
 * huge-page touch on a PVM host is slow once (the hypervisor backs 2 MiB
 * of its own), which is what a restore would pay too.
 */
#include "host-memcost.h"

#include "cleanup.h"
#include "fd-util.h"
#include "json-util.h"
#include "mem-util.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
/* Kernel 6.8's UFFDIO_MOVE; Debian 12's headers predate it. */
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)
#endif

#define PAGE_4K	    4096UL
#define PAGE_2M	    (2UL << 20)
#define SMALL_BYTES (32UL << 20)
#define HUGE_PAGES  16UL

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec * 1e6 + (double) ts.tv_nsec / 1e3;
}

/* Memory huge pages can back: a 2 MiB-aligned start. */
static void *map_aligned(size_t len)
{
	return cs_mmap_anon_aligned(len, PAGE_2M);
}

/* First touch of fresh memory, one write per `step` bytes; µs per step. */
static double touch_cost(uint8_t *p, size_t len, size_t step)
{
	double t0 = now_us();
	for (size_t off = 0; off < len; off += step)
		((volatile uint8_t *) p)[off] = 1;
	return (now_us() - t0) / (double) (len / step);
}

static void measure_faults(struct hm_profile *p)
{
	uint8_t *small = map_aligned(SMALL_BYTES);
	if (small) {
		(void) madvise(small, SMALL_BYTES, MADV_NOHUGEPAGE);
		p->fault_4k_us = touch_cost(small, SMALL_BYTES, PAGE_4K);
		munmap(small, SMALL_BYTES);
	}

	size_t huge_len = HUGE_PAGES * PAGE_2M;
	uint8_t *huge = map_aligned(huge_len);
	p->fault_2m_us = -1;
	if (!huge)
		return;
	if (madvise(huge, huge_len, MADV_HUGEPAGE) == 0) {
		p->fault_2m_us = touch_cost(huge, huge_len, PAGE_2M);
		/* Which of it really got huge pages (THP may be off or short). */
		unsigned char vec[HUGE_PAGES * (PAGE_2M / PAGE_4K)];
		size_t huge_backed = 0;
		if (mincore(huge, huge_len, vec) == 0)
			for (size_t i = 0; i < HUGE_PAGES; i++)
				huge_backed += vec[i * (PAGE_2M / PAGE_4K) + 1] & 1;
		p->thp_share = (double) huge_backed / HUGE_PAGES;
		/* A 2 MiB page whose second 4 KiB was never written is only
		 * resident when the fault installed the whole huge page. */
		p->madv_collapse = madvise(huge, PAGE_2M, MADV_COLLAPSE) == 0;
	}
	munmap(huge, huge_len);
}

static int uffd_open(uint64_t *ret_features)
{
	int fd = (int) syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	struct uffdio_api api = {.api = UFFD_API};
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	*ret_features = api.features;
	return fd;
}

/* UFFDIO_COPY into `len` bytes of fresh registered memory, `unit` bytes a
 * call, from `src`; µs per call, or -1 when the host refuses. */
static double uffd_copy_cost(int fd, const uint8_t *src, size_t len, size_t unit)
{
	uint8_t *dst = map_aligned(len);
	double cost = -1;
	if (!dst)
		return -1;
	struct uffdio_register reg = {
		.range = {.start = (uintptr_t) dst, .len = len},
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	if (ioctl(fd, UFFDIO_REGISTER, &reg) == 0) {
		double t0 = now_us();
		size_t off = 0;
		for (; off < len; off += unit) {
			struct uffdio_copy c = {
				.dst = (uintptr_t) dst + off, .src = (uintptr_t) src, .len = unit};
			if (ioctl(fd, UFFDIO_COPY, &c) < 0)
				break;
		}
		if (off >= len)
			cost = (now_us() - t0) / (double) (len / unit);
		struct uffdio_range range = {.start = (uintptr_t) dst, .len = len};
		(void) ioctl(fd, UFFDIO_UNREGISTER, &range);
	}
	munmap(dst, len);
	return cost;
}

static void measure_uffd(struct hm_profile *p)
{
	uint64_t features = 0;
	p->uffd_copy_4k_us = p->uffd_copy_2m_us = -1;
	int fd = uffd_open(&features);
	if (fd < 0)
		return;
	p->uffd_move = features & UFFD_FEATURE_MOVE;
	uint8_t *src = map_aligned(PAGE_2M);
	if (src) {
		memset(src, 0x5a, PAGE_2M);
		p->uffd_copy_4k_us = uffd_copy_cost(fd, src, SMALL_BYTES, PAGE_4K);
		p->uffd_copy_2m_us = uffd_copy_cost(fd, src, HUGE_PAGES * PAGE_2M, PAGE_2M);
		munmap(src, PAGE_2M);
	}
	close(fd);
}

static void read_boot_id(char *buf, size_t len)
{
	_cleanup_free_ char *id = NULL;
	size_t n = 0;
	buf[0] = '\0';
	if (cs_read_file_at(AT_FDCWD, "/proc/sys/kernel/random/boot_id", 64, &id, &n) < 0)
		return;
	while (n && (id[n - 1] == '\n' || id[n - 1] == ' '))
		id[--n] = '\0';
	snprintf(buf, len, "%s", id);
}

static bool json_double(json_object *o, const char *key, double *ret)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) ||
	    (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)))
		return false;
	*ret = json_object_get_double(v);
	return true;
}

/* The cached profile, when it is this boot's. */
static bool cache_read(const char *path, const char *boot_id, struct hm_profile *ret)
{
	json_object *o = NULL;
	const char *id = NULL;
	struct hm_profile p = {.from_cache = true};
	bool ok = false;

	if (cs_json_parse_file(path, 1 << 16, &o, NULL, 0) < 0)
		return false;
	if (cs_json_get_string(o, "boot_id", &id) == 0 && boot_id[0] && !strcmp(id, boot_id) &&
	    json_double(o, "fault_4k_us", &p.fault_4k_us) &&
	    json_double(o, "fault_2m_us", &p.fault_2m_us) &&
	    json_double(o, "thp_share", &p.thp_share) &&
	    json_double(o, "uffd_copy_4k_us", &p.uffd_copy_4k_us) &&
	    json_double(o, "uffd_copy_2m_us", &p.uffd_copy_2m_us) &&
	    cs_json_get_bool(o, "uffd_move", &p.uffd_move) == 0 &&
	    cs_json_get_bool(o, "madv_collapse", &p.madv_collapse) == 0 &&
	    cs_json_get_bool(o, "huge_pages_cheaper", &p.huge_pages_cheaper) == 0) {
		snprintf(p.boot_id, sizeof(p.boot_id), "%s", id);
		*ret = p;
		ok = true;
	}
	json_object_put(o);
	return ok;
}

json_object *hm_profile_to_json(const struct hm_profile *p)
{
	json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	json_object_object_add(o, "boot_id", json_object_new_string(p->boot_id));
	json_object_object_add(o, "fault_4k_us", json_object_new_double(p->fault_4k_us));
	json_object_object_add(o, "fault_2m_us", json_object_new_double(p->fault_2m_us));
	json_object_object_add(o, "thp_share", json_object_new_double(p->thp_share));
	json_object_object_add(o, "uffd_copy_4k_us", json_object_new_double(p->uffd_copy_4k_us));
	json_object_object_add(o, "uffd_copy_2m_us", json_object_new_double(p->uffd_copy_2m_us));
	json_object_object_add(o, "uffd_move", json_object_new_boolean(p->uffd_move));
	json_object_object_add(o, "madv_collapse", json_object_new_boolean(p->madv_collapse));
	json_object_object_add(o, "huge_pages_cheaper",
			       json_object_new_boolean(p->huge_pages_cheaper));
	return o;
}

static void cache_write(const char *path, const struct hm_profile *p)
{
	json_object *o = hm_profile_to_json(p);
	if (!o)
		return;
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	_cleanup_free_ char *dir = strdup(path);
	char *slash = dir ? strrchr(dir, '/') : NULL;
	if (slash && slash != dir) {
		*slash = '\0';
		(void) cs_mkdir_p(dir, 0711);
	}
	(void) cs_write_file_atomic(AT_FDCWD, path, text, strlen(text), 0644);
	json_object_put(o);
}

int hm_profile_get(const char *cache_path, bool remeasure, struct hm_profile *ret)
{
	struct hm_profile p = {0};

	read_boot_id(p.boot_id, sizeof(p.boot_id));
	if (!remeasure && cache_path && cache_read(cache_path, p.boot_id, ret))
		return 0;
	measure_faults(&p);
	measure_uffd(&p);
	/* Per byte: a 2 MiB fault covers 512 pages of 4 KiB. */
	p.huge_pages_cheaper = p.fault_2m_us >= 0 && p.thp_share > 0.5 &&
			       p.fault_2m_us < p.fault_4k_us * (double) (PAGE_2M / PAGE_4K);
	*ret = p;
	if (cache_path)
		cache_write(cache_path, &p);
	return 0;
}
