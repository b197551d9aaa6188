/* SPDX-License-Identifier: Apache-2.0 */
/* The memory of a restore from a snapshot, copied into the restored process
 * over userfaultfd straight from the snapshot, instead of being unpacked into
 * tmpfs for CRIU to read back.
 *
 * Why: unpacked, a snapshot's pages are copied twice before the process has
 * them (into tmpfs, then by CRIU into the process), and CRIU waits for the
 * first copy; runc restore from a raw image directory makes only the second.
 * Here, CRIU restores everything but the private anonymous memory (it runs
 * with --lazy-pages, the pagemap marking that memory lazy), and a server
 * process answering CRIU's lazy-pages socket copies every lazy page into the
 * process with UFFDIO_COPY from verified snapshot chunks, on all cores, once
 * CRIU has finished. The tree stays stopped until every page is in, so a
 * damaged chunk fails the restore before the process runs.
 *
 * Scope: a tree with no GPU state (the GPU restore runs the processes,
 * which must then never fault on memory not yet copied), whose images have
 * no parent, on a kernel that offers userfaultfd with the events CRIU asks
 * for. Each process gets its own userfaultfd from CRIU and its pages
 * from its own pages image; memory a child shares copy-on-write with its
 * parent at the dump comes back as a private copy in each (as CRIU's own
 * lazy restore does). rp_prepare() says when a snapshot is out of scope;
 * the caller then unpacks the pages as before.
 *
 * The server and the copiers are processes, not threads (the shim stays
 * single-threaded): rp_start() forks the page server before the restoring
 * process enters the container's cgroup; it forks one copy process per CPU
 * when CRIU has finished, and all of them die with their parent.
 *
 * Thread-safety: a struct restore_pages is used by one thread. */
#ifndef STOKE_SHIM_RESTORE_PAGES_H
#define STOKE_SHIM_RESTORE_PAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stoke-snapshot.h"

struct restore_pages;

struct rp_stats {
	uint64_t copy_ns;     /* restore finished -> every lazy page copied */
	uint64_t wait_ns;     /* of which the caller waited in rp_finish() */
	uint64_t lazy_bytes;  /* copied over userfaultfd */
	uint64_t eager_bytes; /* left to CRIU (pages-N.img, written sparse) */
	unsigned faults;      /* page faults served before the copy finished */
};

/*! rp_prepare() :
 *  `images_dir` holds the snapshot's CRIU images unpacked, except the pages
 *  images (pages-N.img), which exist and are empty. If the images are in
 *  scope (see above): rewrite the pagemap so that private anonymous memory
 *  is lazy, write into pages-N.img only the pages CRIU still restores itself
 *  (the file keeps its full size; the rest are holes), and listen on
 *  `work_dir`/lazy-pages.socket (work_dir must exist; it is CRIU's work
 *  directory). `snapshot` and `reader_flags` open the copy processes' readers.
 *  *ret is owned by the caller: rp_free() it.
 * @return : 1 prepared; 0 out of scope (nothing was changed, *ret not set);
 *           -errno with `err` naming the image and the reason. */
int rp_prepare(struct snap_reader *rd, const char *snapshot, unsigned reader_flags,
	       const char *images_dir, const char *work_dir, struct restore_pages **ret, char *err,
	       size_t errlen);

/*! rp_start() : fork the page server (before the CRIU restore, and before
 *  entering the container's cgroup, so that it is not counted there).
 * @return : 0 or -errno. */
int rp_start(struct restore_pages *p);

/*! rp_finish() :
 *  After CRIU's restore returned: wait until every lazy page is in the
 *  process and the userfaultfd is closed.
 * @return : 0; -errno with `err` (a damaged chunk: -EBADMSG; CRIU never
 *           connected or ended without finishing: -EPIPE). */
int rp_finish(struct restore_pages *p, struct rp_stats *ret_stats, char *err, size_t errlen);

/*! rp_free() : kill the page server if it runs (a failed restore; its copy
 *  processes die with it), close and free everything. Accepts NULL. */
void rp_free(struct restore_pages *p);

static inline void rp_freep(struct restore_pages **p)
{
	rp_free(*p);
	*p = NULL;
}

#endif
