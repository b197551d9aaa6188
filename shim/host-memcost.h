/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What memory costs on this host, measured (for `stoke check`): a restore
 * or a weight load that fills hundreds of MiB is bound by page faults and
 * page-table installs, not bytes, on hosts whose page tables are shadowed
 * by the hypervisor (PVM: ~23 µs per 4 KiB fault, against ~1 µs on KVM or
 * bare metal). The right page size depends on the host, so it is measured,
 * not guessed.
 *
 * The profile is measured once per boot and cached in a small JSON file
 * keyed by the kernel's boot id, so later commands read it for free.
 *
 * Errors: measurement steps that the host refuses are reported as not
 * supported in the profile; functions return -errno only for I/O on the
 * cache. Thread-safety: single-threaded callers (the measurement maps and
 * unmaps memory of its own, and uses a userfaultfd in this process).
 */
#ifndef STOKE_SHIM_HOST_MEMCOST_H
#define STOKE_SHIM_HOST_MEMCOST_H

#include <json-c/json.h>
#include <stdbool.h>

/* The cache file's name, in stoke's state directory (--root). */
#define HM_CACHE_NAME "host-memory-profile.json"

struct hm_profile {
	char boot_id[40];
	double fault_4k_us;	     /* first touch of fresh anonymous memory, per 4 KiB page */
	double fault_2m_us;	     /* first touch with MADV_HUGEPAGE, per 2 MiB page; < 0: n/a */
	double thp_share;	     /* share of the 2 MiB test range that got huge pages */
	double uffd_copy_4k_us;	     /* UFFDIO_COPY of one 4 KiB page; < 0: n/a */
	double uffd_copy_2m_us;	     /* UFFDIO_COPY of one 2 MiB range; < 0: n/a */
	bool uffd_move;		     /* UFFDIO_MOVE offered (kernel >= 6.8) */
	bool madv_collapse;	     /* MADV_COLLAPSE worked on a populated 2 MiB range */
	bool huge_pages_cheaper;     /* 2 MiB faults cost less per byte than 4 KiB ones */
	bool from_cache;	     /* read from the cache, not measured now */
};

/*! hm_profile_get() :
 *  The profile of this boot: read from `cache_path` when it holds this
 *  boot's (unless `remeasure`), else measured (about 0.1–0.5 s; a few
 *  seconds on a PVM host the first time it backs huge pages) and written
 *  there (temporary name + rename; a cache that cannot be written is not
 *  an error). *ret is always filled.
 * @return : 0, or -errno when the measurement itself could not run. */
int hm_profile_get(const char *cache_path, bool remeasure, struct hm_profile *ret);

/*! hm_profile_to_json() :
 *  The profile as a new JSON object (the caller owns it; NULL when out of
 *  memory): the cache file's format and `stoke check --json`'s
 *  memory_profile (which adds from_cache). */
json_object *hm_profile_to_json(const struct hm_profile *p);

#endif
