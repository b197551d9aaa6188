/* SPDX-License-Identifier: Apache-2.0 */
/* A restore's private anonymous memory copied over userfaultfd straight from
 * the snapshot (see restore-pages.h for why and when).
 *
 * CRIU's side of the protocol (criu restore --lazy-pages): it connects to
 * lazy-pages.socket in its work directory, sends each restored process's pid
 * (an int; negative for a zombie, with nothing after it) followed by that
 * process's userfaultfd over SCM_RIGHTS (with one dummy byte), registers
 * every premapped private anonymous VMA with it (missing-page mode), skips
 * the pagemap entries flagged PE_LAZY, and sends 0x52535446 ("ReSTore
 * Finished") when the tree is restored. With --lazy-pages CRIU premaps every
 * private VMA, so all VMAs chosen as lazy below are registered. */
#include "restore-pages.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "criu-images.pb-c.h"
#include "errbuf.h"
#include "fd-util.h"
#include "log.h"
#include "time-util.h"

#define IMG_COMMON_MAGIC 0x54564319u
#define PAGEMAP_MAGIC	 0x56084025u
#define MM_MAGIC	 0x57492820u
#define RESTORE_FINISHED 0x52535446u
#define PE_PARENT	 (1u << 0)
#define PE_LAZY		 (1u << 1)
#define PE_PRESENT	 (1u << 2)

/* CRIU's vma status bits (criu/include/image.h). */
#define VMA_AREA_REGULAR (1u << 0)
#define VMA_ANON_PRIVATE (1u << 9)
/* Never lazy: what CRIU's restorer does not register (vdso, vvar, vsyscall,
 * hugetlb, plugin and guard areas), the stack (CRIU's own lazy dumps keep
 * it eager too) and special kinds of memory. */
#define VMA_NEVER_LAZY                                                                        \
	((1u << 1) /* stack */ | (1u << 2) /* vsyscall */ | (1u << 3) /* vdso */ |            \
	 (1u << 10) /* sysvipc */ | (1u << 11) /* socket */ | (1u << 12) /* vvar */ |         \
	 (1u << 13) /* aio ring */ | (1u << 14) /* memfd */ | (1u << 15) /* shadow stack */ | \
	 (1u << 16) /* guard */ | (1u << 17) /* uprobes */ | (1u << 27) /* plugin */)

#define PAGE	    4096ul
#define COPY_STEP   (4ul << 20) /* bytes read and copied at a time */
#define MAX_WORKERS 8

struct range {
	uint64_t vaddr, len, off; /* in the process; offset in pages-N.img */
	size_t vma;		  /* UFFDIO_COPY stays inside one VMA */
};

struct range_list {
	struct range *v;
	size_t n, cap;
};

/* What the page server and its copy processes report back (MAP_SHARED). */
struct rp_shared {
	int result;
	atomic_uint faults;
	uint64_t finished_at, copied_at;
	char why[512];
	struct {
		int result;
		char why[256];
	} worker[MAX_WORKERS];
};

struct writer {
	uint8_t *buf;
	size_t len, cap;
};

/* One restored process: its lazy memory and where the bytes are. */
struct proc {
	unsigned vpid;	    /* the pid in the images (and in CRIU's messages) */
	uint32_t pages_id;  /* its pages-N.img */
	size_t pages_entry; /* that image's index in the snapshot */
	struct range_list lazy, eager;
	struct writer pagemap; /* the rewritten pagemap image */
	int uffd;	       /* in the server process, once CRIU sent it */
};

struct restore_pages {
	char *snapshot;
	unsigned reader_flags;
	struct proc *procs;
	size_t n_procs;
	uint64_t lazy_bytes, eager_bytes;

	int listen_fd;
	char *sock_path; /* removed with the struct (a --work-path outlives us) */
	pid_t server;	 /* the page server process, once started */
	struct rp_shared *sh;

	/* In the server process only. */
	pid_t workers[MAX_WORKERS];
	int worker_fds[MAX_WORKERS]; /* pidfds */
	unsigned n_workers, workers_left;
};

static int range_push(struct range_list *l, uint64_t vaddr, uint64_t len, uint64_t off, size_t vma)
{
	if (l->n && l->v[l->n - 1].vaddr + l->v[l->n - 1].len == vaddr &&
	    l->v[l->n - 1].off + l->v[l->n - 1].len == off && l->v[l->n - 1].vma == vma) {
		l->v[l->n - 1].len += len;
		return 0;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct range *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct range){vaddr, len, off, vma};
	return 0;
}

/* ---- CRIU image files: two magics, then (u32 length, message) pairs ---- */

struct img {
	char *buf;
	size_t len, pos;
};

/* The next message's bytes; 0 at the end, -EBADMSG if truncated. */
static int img_next(struct img *im, const uint8_t **ret, size_t *ret_len)
{
	uint32_t n;
	if (im->pos == im->len)
		return 0;
	if (im->len - im->pos < sizeof(n))
		return -EBADMSG;
	memcpy(&n, im->buf + im->pos, sizeof(n));
	im->pos += sizeof(n);
	if (n > im->len - im->pos)
		return -EBADMSG;
	*ret = (const uint8_t *) im->buf + im->pos;
	*ret_len = n;
	im->pos += n;
	return 1;
}

/* Read image `name`, check its magic and point *ret_msg at its first
 * message (every image read here starts with one). ret->buf is the
 * caller's to free. */
static int img_read(int dfd, const char *name, uint32_t magic, struct img *ret,
		    const uint8_t **ret_msg, size_t *ret_len, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	int r = cs_read_file_at(dfd, name, 64u << 20, &buf, &len);
	if (r < 0)
		return cs_errf(r, err, errlen, "read the image %s", name);
	uint32_t m[2];
	if (len < sizeof(m)) {
		free(buf);
		return cs_errf(-EBADMSG, err, errlen, "image %s: too short", name);
	}
	memcpy(m, buf, sizeof(m));
	if (m[0] != IMG_COMMON_MAGIC || m[1] != magic) {
		free(buf);
		return cs_errf(-EBADMSG, err, errlen, "image %s: unexpected magic %08x %08x", name,
			       m[0], m[1]);
	}
	*ret = (struct img){.buf = buf, .len = len, .pos = sizeof(m)};
	if (img_next(ret, ret_msg, ret_len) <= 0) {
		free(buf);
		return cs_errf(-EBADMSG, err, errlen, "image %s: no first entry", name);
	}
	return 0;
}

/* ---- which memory is lazy ---- */

struct vma {
	uint64_t start, end;
	bool lazy;
};

static bool vma_can_be_lazy(const StokeVmaEntry *v)
{
	const uint32_t need_flags = MAP_PRIVATE | MAP_ANONYMOUS;
	return (v->flags & need_flags) == need_flags && !(v->flags & (MAP_LOCKED | MAP_HUGETLB)) &&
	       (v->status & (VMA_AREA_REGULAR | VMA_ANON_PRIVATE)) ==
		       (VMA_AREA_REGULAR | VMA_ANON_PRIVATE) &&
	       !(v->status & VMA_NEVER_LAZY) && v->end > v->start;
}

static int read_vmas(int dfd, const char *mm_name, struct vma **ret, size_t *ret_n, char *err,
		     size_t errlen)
{
	struct img im;
	const uint8_t *msg;
	size_t len;
	int r = img_read(dfd, mm_name, MM_MAGIC, &im, &msg, &len, err, errlen);
	if (r < 0)
		return r;
	StokeMmEntry *mm = stoke_mm_entry__unpack(NULL, len, msg);
	free(im.buf);
	if (!mm)
		return cs_errf(-EBADMSG, err, errlen, "image %s: no readable mm entry", mm_name);
	struct vma *v = calloc(mm->n_vmas ? mm->n_vmas : 1, sizeof(*v));
	if (!v) {
		stoke_mm_entry__free_unpacked(mm, NULL);
		return -ENOMEM;
	}
	for (size_t i = 0; i < mm->n_vmas; i++)
		v[i] = (struct vma){mm->vmas[i]->start, mm->vmas[i]->end,
				    vma_can_be_lazy(mm->vmas[i])};
	*ret_n = mm->n_vmas;
	*ret = v;
	stoke_mm_entry__free_unpacked(mm, NULL);
	return 0;
}

/* ---- the pagemap, rewritten ---- */

struct pagemap {
	uint32_t pages_id;
	StokePagemapEntry **e;
	size_t n;
};

static void pagemap_done(struct pagemap *pm)
{
	for (size_t i = 0; i < pm->n; i++)
		stoke_pagemap_entry__free_unpacked(pm->e[i], NULL);
	free(pm->e);
}

static uint64_t pe_pages(const StokePagemapEntry *e)
{
	return e->has_nr_pages ? e->nr_pages : e->compat_nr_pages;
}

static uint32_t pe_flags(const StokePagemapEntry *e)
{
	if (e->has_flags)
		return e->flags;
	return e->has_in_parent && e->in_parent ? PE_PARENT : PE_PRESENT;
}

static int read_pagemap(int dfd, const char *name, struct pagemap *pm, char *err, size_t errlen)
{
	struct img im;
	const uint8_t *msg;
	size_t len;
	int r = img_read(dfd, name, PAGEMAP_MAGIC, &im, &msg, &len, err, errlen);
	if (r < 0)
		return r;
	StokePagemapHead *h = stoke_pagemap_head__unpack(NULL, len, msg);
	if (!h) {
		free(im.buf);
		return cs_errf(-EBADMSG, err, errlen, "image %s: no readable pagemap head", name);
	}
	pm->pages_id = h->pages_id;
	stoke_pagemap_head__free_unpacked(h, NULL);
	size_t cap = 0;
	while ((r = img_next(&im, &msg, &len)) > 0) {
		StokePagemapEntry *e = stoke_pagemap_entry__unpack(NULL, len, msg);
		if (!e) {
			r = -EBADMSG;
			break;
		}
		if (pm->n == cap) {
			cap = cap ? cap * 2 : 256;
			StokePagemapEntry **v = realloc(pm->e, cap * sizeof(*v));
			if (!v) {
				stoke_pagemap_entry__free_unpacked(e, NULL);
				r = -ENOMEM;
				break;
			}
			pm->e = v;
		}
		pm->e[pm->n++] = e;
	}
	free(im.buf);
	if (r < 0)
		return cs_errf(r, err, errlen, "image %s: damaged pagemap entry", name);
	return 0;
}

static int w_put(struct writer *w, const void *data, size_t len)
{
	if (w->len + len > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		while (cap < w->len + len)
			cap *= 2;
		uint8_t *b = realloc(w->buf, cap);
		if (!b)
			return -ENOMEM;
		w->buf = b;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, data, len);
	w->len += len;
	return 0;
}

static int w_entry(struct writer *w, uint64_t vaddr, uint64_t pages, uint32_t flags)
{
	StokePagemapEntry e = STOKE_PAGEMAP_ENTRY__INIT;
	e.vaddr = vaddr;
	e.compat_nr_pages = (uint32_t) pages;
	e.has_nr_pages = pages > UINT32_MAX;
	e.nr_pages = pages;
	e.has_flags = true;
	e.flags = flags;
	uint8_t msg[64];
	uint32_t n = (uint32_t) stoke_pagemap_entry__get_packed_size(&e);
	if (n > sizeof(msg))
		return -EOVERFLOW;
	stoke_pagemap_entry__pack(&e, msg);
	int r = w_put(w, &n, sizeof(n));
	return r < 0 ? r : w_put(w, msg, n);
}

/* Lay out the pagemap again with the parts of each present entry that lie in
 * lazy VMAs marked PE_LAZY (kept PE_PRESENT: their bytes stay where they are
 * in pages-N.img, CRIU only skips them), collecting the lazy ranges and the
 * eager ones (offsets into pages-N.img). When CRIU marked pages lazy at the
 * dump (`marked`; it leaves the pages around the stack pointer out), only
 * those are: the VMA rule above can only narrow its choice, never widen it,
 * so every lazy page lies in a VMA the restorer registers. */
static int split_pagemap(const struct pagemap *pm, const struct vma *v, size_t nv, bool marked,
			 struct writer *w, struct range_list *lazy, struct range_list *eager)
{
	uint32_t magic[2] = {IMG_COMMON_MAGIC, PAGEMAP_MAGIC};
	StokePagemapHead h = STOKE_PAGEMAP_HEAD__INIT;
	h.pages_id = pm->pages_id;
	uint8_t hb[16];
	uint32_t hn = (uint32_t) stoke_pagemap_head__get_packed_size(&h);
	stoke_pagemap_head__pack(&h, hb);
	int r = w_put(w, magic, sizeof(magic));
	if (r >= 0)
		r = w_put(w, &hn, sizeof(hn));
	if (r >= 0)
		r = w_put(w, hb, hn);

	uint64_t off = 0;
	size_t vi = 0;
	for (size_t i = 0; r >= 0 && i < pm->n; i++) {
		uint32_t flags = pe_flags(pm->e[i]);
		uint64_t at = pm->e[i]->vaddr, end = at + pe_pages(pm->e[i]) * PAGE;
		while (r >= 0 && at < end) {
			while (vi < nv && v[vi].end <= at)
				vi++;
			bool in_vma = vi < nv && v[vi].start <= at;
			uint64_t piece_end = end;
			if (in_vma && v[vi].end < end)
				piece_end = v[vi].end;
			else if (!in_vma && vi < nv && v[vi].start < end)
				piece_end = v[vi].start;
			uint64_t len = piece_end - at;
			bool lazy_piece = in_vma && v[vi].lazy && (flags & PE_PRESENT) &&
					  (!marked || (flags & PE_LAZY));
			r = w_entry(w, at, len / PAGE,
				    lazy_piece ? flags | PE_LAZY : flags & ~PE_LAZY);
			if (r >= 0 && (flags & PE_PRESENT))
				r = range_push(lazy_piece ? lazy : eager, at, len, off, vi);
			if (flags & PE_PRESENT)
				off += len;
			at = piece_end;
		}
	}
	return r;
}

/* ---- the images directory ---- */

/* The vpids of the processes with memory images (mm-PID.img), in *ret.
 * @return : their count; 0 when there are none or the images are
 *           incremental (a parent directory): out of scope; -errno. */
static int list_processes(int dfd, unsigned **ret)
{
	_cleanup_(closedirp) DIR *d = NULL;
	int fd = dup(dfd);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	unsigned *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		unsigned vpid;
		if (!strncmp(de->d_name, "parent", 6)) {
			free(v);
			return 0;
		}
		if (len < 8 || len >= 32 || strncmp(de->d_name, "mm-", 3) != 0 ||
		    strcmp(de->d_name + len - 4, ".img") != 0 ||
		    strspn(de->d_name + 3, "0123456789") != len - 7 ||
		    sscanf(de->d_name, "mm-%u.img", &vpid) != 1)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			unsigned *nv = realloc(v, cap * sizeof(*nv));
			if (!nv) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
		}
		v[n++] = vpid;
	}
	if (n > 4096) {
		free(v);
		return -E2BIG;
	}
	*ret = v;
	return (int) n;
}

/* Write the eager ranges of pages entry `index` at their offsets in `fd`,
 * reading each snapshot chunk that holds any of them once (they are small
 * and scattered: the pages around the stack pointer, special mappings). */
static int write_eager(struct snap_reader *rd, size_t index, int fd, uint64_t size,
		       const struct range_list *eager)
{
	size_t cs = snap_reader_chunk_size(rd);
	_cleanup_free_ uint8_t *buf = malloc(cs);
	uint64_t win_off = 0, win_len = 0;
	if (!buf)
		return -ENOMEM;
	for (size_t k = 0; k < eager->n; k++) {
		const struct range *g = &eager->v[k];
		if (g->off + g->len > size)
			return -EBADMSG;
		for (uint64_t pos = g->off; pos < g->off + g->len;) {
			if (pos < win_off || pos >= win_off + win_len) {
				win_off = pos - pos % cs;
				win_len = size - win_off < cs ? size - win_off : cs;
				ssize_t got = snap_reader_pread(rd, index, buf, win_len, win_off);
				if (got != (ssize_t) win_len)
					return got < 0 ? (int) got : -EBADMSG;
			}
			uint64_t part = g->off + g->len - pos;
			if (part > win_off + win_len - pos)
				part = win_off + win_len - pos;
			if (pwrite(fd, buf + (pos - win_off), part, (off_t) pos) != (ssize_t) part)
				return -errno;
			pos += part;
		}
	}
	return 0;
}

/* Fill the pages images: each process's only with its eager ranges, the
 * others (shared memory's) whole. */
static int write_pages(struct snap_reader *rd, int dfd, struct proc *procs, size_t n_procs,
		       char *err, size_t errlen)
{
	size_t n = snap_reader_entry_count(rd), found = 0;
	for (size_t i = 0; i < n; i++) {
		struct snap_entry_info e;
		unsigned id;
		int r = snap_reader_entry(rd, i, &e);
		if (r < 0)
			return r;
		if (sscanf(e.name, "pages-%u.img", &id) != 1)
			continue;
		_cleanup_close_ int fd = openat(dfd, e.name, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return cs_errf(-errno, err, errlen, "open the image %s", e.name);
		struct proc *owner = NULL;
		for (size_t k = 0; k < n_procs && !owner; k++)
			if (procs[k].pages_id == id)
				owner = &procs[k];
		if (!owner) {
			r = snap_reader_extract_fd(rd, i, fd);
			if (r < 0)
				return cs_errf(r, err, errlen, "%s: %s", e.name, snap_last_error());
			continue;
		}
		found++;
		owner->pages_entry = i;
		if (ftruncate(fd, (off_t) e.size) < 0)
			return cs_errf(-errno, err, errlen, "size the image %s", e.name);
		r = write_eager(rd, i, fd, e.size, &owner->eager);
		if (r < 0)
			return cs_errf(r, err, errlen, "%s: %s", e.name,
				       r == -EBADMSG ? snap_last_error() : strerror(-r));
	}
	if (found != n_procs)
		return cs_errf(-EBADMSG, err, errlen,
			       "the snapshot lacks a pages image that a pagemap names");
	return 0;
}

static int listen_at(const char *work_dir, int *ret_fd, char **ret_path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/lazy-pages.socket", work_dir) >=
	    (int) sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	(void) unlink(sa.sun_path);
	if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	*ret_path = strdup(sa.sun_path);
	if (!*ret_path) {
		(void) unlink(sa.sun_path);
		close(fd);
		return -ENOMEM;
	}
	*ret_fd = fd;
	return 0;
}

/* Read one process's memory map and pagemap and lay the pagemap out again
 * (into pr->pagemap). @return : 1, 0 out of scope, -errno with `err`. */
static int plan_process(int dfd, struct proc *pr, char *err, size_t errlen)
{
	char mm_name[32], pm_name[32];
	snprintf(mm_name, sizeof(mm_name), "mm-%u.img", pr->vpid);
	snprintf(pm_name, sizeof(pm_name), "pagemap-%u.img", pr->vpid);
	_cleanup_free_ struct vma *vmas = NULL;
	size_t nv = 0;
	int r = read_vmas(dfd, mm_name, &vmas, &nv, err, errlen);
	if (r < 0)
		return r;
	struct pagemap pm = {};
	r = read_pagemap(dfd, pm_name, &pm, err, errlen);
	bool marked = false; /* CRIU marks lazy-able pages PE_LAZY when it dumps */
	for (size_t i = 0; r >= 0 && i < pm.n; i++) {
		uint32_t f = pe_flags(pm.e[i]);
		if (f & PE_PARENT) {
			log_debug("pages not over userfaultfd: %s has pages in a parent", pm_name);
			pagemap_done(&pm);
			return 0;
		}
		marked |= (f & PE_LAZY) != 0;
	}
	if (r >= 0) {
		pr->pages_id = pm.pages_id;
		r = split_pagemap(&pm, vmas, nv, marked, &pr->pagemap, &pr->lazy, &pr->eager);
		r = r < 0 ? cs_errf(r, err, errlen, "lay out %s again", pm_name) : 1;
	}
	pagemap_done(&pm);
	return r;
}

static void procs_free(struct proc *v, size_t n)
{
	for (size_t k = 0; v && k < n; k++) {
		free(v[k].lazy.v);
		free(v[k].eager.v);
		free(v[k].pagemap.buf);
	}
	free(v);
}

/* Whether this kernel (and seccomp) lets CRIU use userfaultfd with the
 * events its lazy restore asks for; if not, the caller unpacks the pages. */
static bool uffd_usable(void)
{
	int fd = (int) syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return false;
	struct uffdio_api api = {.api = UFFD_API,
				 .features = UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP |
					     UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_EVENT_REMOVE};
	bool ok = ioctl(fd, UFFDIO_API, &api) == 0;
	close(fd);
	return ok;
}

int rp_prepare(struct snap_reader *rd, const char *snapshot, unsigned reader_flags,
	       const char *images_dir, const char *work_dir, struct restore_pages **ret, char *err,
	       size_t errlen)
{
	if (!uffd_usable()) {
		log_debug("pages not over userfaultfd: userfaultfd is not available here");
		return 0;
	}
	_cleanup_close_ int dfd = open(images_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return cs_errf(-errno, err, errlen, "open %s", images_dir);
	_cleanup_free_ unsigned *vpids = NULL;
	int r = list_processes(dfd, &vpids);
	if (r <= 0) {
		if (r == 0)
			log_debug("pages not over userfaultfd: no process, or incremental images");
		return r;
	}
	struct restore_pages *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->listen_fd = -EBADF;
	p->procs = calloc((size_t) r, sizeof(*p->procs));
	if (!p->procs) {
		rp_free(p);
		return -ENOMEM;
	}
	p->n_procs = (size_t) r;
	/* Everything is read and planned before any image changes: a tree out
	 * of scope is left as it was. */
	for (size_t k = 0; k < p->n_procs; k++) {
		p->procs[k].vpid = vpids[k];
		p->procs[k].uffd = -EBADF;
		r = plan_process(dfd, &p->procs[k], err, errlen);
		if (r <= 0)
			goto fail;
	}
	for (size_t k = 0; k < p->n_procs; k++) {
		struct proc *pr = &p->procs[k];
		char pm_name[32];
		snprintf(pm_name, sizeof(pm_name), "pagemap-%u.img", pr->vpid);
		r = cs_write_file_atomic(dfd, pm_name, pr->pagemap.buf, pr->pagemap.len, 0600);
		if (r < 0) {
			cs_errf(r, err, errlen, "rewrite the image %s", pm_name);
			goto fail;
		}
		for (size_t i = 0; i < pr->eager.n; i++)
			p->eager_bytes += pr->eager.v[i].len;
		for (size_t i = 0; i < pr->lazy.n; i++)
			p->lazy_bytes += pr->lazy.v[i].len;
	}
	r = write_pages(rd, dfd, p->procs, p->n_procs, err, errlen);
	if (r < 0)
		goto fail;
	r = cs_mkdir_p(work_dir, 0700);
	if (r >= 0)
		r = listen_at(work_dir, &p->listen_fd, &p->sock_path);
	if (r < 0) {
		cs_errf(r, err, errlen, "listen on %s/lazy-pages.socket", work_dir);
		goto fail;
	}
	p->sh = mmap(NULL, sizeof(*p->sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		     0);
	if (p->sh == MAP_FAILED)
		p->sh = NULL;
	p->snapshot = strdup(snapshot);
	if (!p->sh || !p->snapshot) {
		r = -ENOMEM;
		goto fail;
	}
	p->reader_flags = reader_flags;
	*ret = p;
	return 1;
fail:
	rp_free(p);
	return r;
}

/* ---- copying (in the page server process and its copy processes) ---- */

/* Copy `len` bytes at `src` to `dst` in the process. Pages already there
 * (a fault served them) are skipped. */
static int uffd_copy(int uffd, uint64_t dst, const uint8_t *src, uint64_t len)
{
	uint64_t done = 0;
	while (done < len) {
		struct uffdio_copy c = {.dst = dst + done,
					.src = (uint64_t) (uintptr_t) (src + done),
					.len = len - done};
		if (ioctl(uffd, UFFDIO_COPY, &c) == 0)
			break;
		int e = errno;
		if (c.copy > 0)
			done += (uint64_t) c.copy;
		if (e == EEXIST)
			done += c.copy > 0 ? 0 : PAGE; /* that page is in already */
		else if (e != EAGAIN && e != EINTR)
			return -e;
	}
	return 0;
}

/* Copy bytes [lo, hi) of range `g` of process `pr`. */
static int copy_range(const struct proc *pr, const struct range *g, uint64_t lo, uint64_t hi,
		      struct snap_reader *rd, uint8_t *buf, char *why, size_t whylen)
{
	for (uint64_t at = lo; at < hi; at += COPY_STEP) {
		size_t want = hi - at < COPY_STEP ? hi - at : COPY_STEP;
		ssize_t got = snap_reader_pread(rd, pr->pages_entry, buf, want, g->off + at);
		if (got != (ssize_t) want) {
			snprintf(why, whylen, "pages at offset %llu: %s",
				 (unsigned long long) (g->off + at),
				 got < 0 ? snap_last_error()
					 : "the image is shorter than its pagemap");
			return got < 0 ? (int) got : -EBADMSG;
		}
		int r = uffd_copy(pr->uffd, g->vaddr + at, buf, want);
		if (r < 0) {
			snprintf(why, whylen, "copy into process %u at %#llx: %s", pr->vpid,
				 (unsigned long long) (g->vaddr + at), strerror(-r));
			return r;
		}
	}
	return 0;
}

/* A copy process: bytes [from, to) of the lazy ranges of all processes laid
 * end to end. */
_Noreturn static void copy_share(struct restore_pages *p, unsigned k, uint64_t from, uint64_t to)
{
	struct snap_reader_options ro = {.flags = p->reader_flags, .threads = 1};
	struct snap_reader *rd = NULL;
	uint8_t *buf = NULL;
	char *why = p->sh->worker[k].why;
	size_t whylen = sizeof(p->sh->worker[k].why);
	int r = snap_reader_open(p->snapshot, &ro, &rd);
	if (r < 0)
		snprintf(why, whylen, "%s", snap_last_error());
	if (r >= 0 && posix_memalign((void **) &buf, PAGE, COPY_STEP) != 0)
		r = -ENOMEM;
	uint64_t base = 0;
	for (size_t q = 0; r >= 0 && q < p->n_procs && base < to; q++) {
		const struct proc *pr = &p->procs[q];
		for (size_t i = 0; r >= 0 && i < pr->lazy.n && base < to; i++) {
			const struct range *g = &pr->lazy.v[i];
			r = copy_range(pr, g, from > base ? from - base : 0,
				       to - base < g->len ? to - base : g->len, rd, buf, why,
				       whylen);
			base += g->len;
		}
	}
	p->sh->worker[k].result = r;
	_exit(r < 0 ? 1 : 0);
}

/* Fork the copy processes (one per CPU, at most MAX_WORKERS), each with an
 * even share of the lazy bytes. */
static int start_copy(struct restore_pages *p)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = cpus < 1 ? 1 : cpus > MAX_WORKERS ? MAX_WORKERS : (unsigned) cpus;
	if (p->lazy_bytes < (uint64_t) n * COPY_STEP)
		n = 1;
	for (unsigned k = 0; k < n; k++) {
		uint64_t from = p->lazy_bytes * k / n / PAGE * PAGE;
		uint64_t to =
			k + 1 == n ? p->lazy_bytes : p->lazy_bytes * (k + 1) / n / PAGE * PAGE;
		pid_t pid = fork();
		if (pid < 0)
			return -errno;
		if (pid == 0) {
			(void) prctl(PR_SET_PDEATHSIG, SIGKILL);
			copy_share(p, k, from, to);
		}
		int fd = (int) syscall(SYS_pidfd_open, pid, 0);
		if (fd < 0) {
			int r = -errno;
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return r;
		}
		p->workers[k] = pid;
		p->worker_fds[k] = fd;
		p->n_workers = p->workers_left = k + 1;
	}
	return 0;
}

/* A copy process ended: reap it; its failure is the restore's. */
static int reap_worker(struct restore_pages *p, unsigned k)
{
	int status = 0;
	while (waitpid(p->workers[k], &status, 0) < 0 && errno == EINTR)
		;
	close(p->worker_fds[k]);
	p->worker_fds[k] = -EBADF;
	p->workers_left--;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	int r = p->sh->worker[k].result < 0 ? p->sh->worker[k].result : -EIO;
	snprintf(p->sh->why, sizeof(p->sh->why), "%s",
		 *p->sh->worker[k].why ? p->sh->worker[k].why : "a copy process died");
	return r;
}

/* The server's own reader, for faults: opened when the first one comes and
 * closed before the copy processes are forked, so that the server is one
 * thread when it forks. */
static int fault_reader(struct restore_pages *p, struct snap_reader **rd)
{
	struct snap_reader_options ro = {.flags = p->reader_flags, .threads = 1};
	return *rd ? 0 : snap_reader_open(p->snapshot, &ro, rd);
}

/* A fault while CRIU still restores: copy that page (or zero it when the
 * snapshot has none there). */
static int serve_fault(struct restore_pages *p, struct proc *pr, struct snap_reader **rdp,
		       uint64_t addr)
{
	addr &= ~(PAGE - 1);
	atomic_fetch_add(&p->sh->faults, 1);
	size_t lo = 0, hi = pr->lazy.n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (pr->lazy.v[mid].vaddr + pr->lazy.v[mid].len <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < pr->lazy.n && pr->lazy.v[lo].vaddr <= addr) {
		uint8_t page[PAGE] __attribute__((aligned(4096)));
		const struct range *g = &pr->lazy.v[lo];
		int r = fault_reader(p, rdp);
		ssize_t got = r < 0 ? r
				    : snap_reader_pread(*rdp, pr->pages_entry, page, PAGE,
							g->off + (addr - g->vaddr));
		if (got != (ssize_t) PAGE) {
			snprintf(p->sh->why, sizeof(p->sh->why), "pages at %#llx: %s",
				 (unsigned long long) addr,
				 got < 0 ? snap_last_error() : "short image");
			return got < 0 ? (int) got : -EBADMSG;
		}
		return uffd_copy(pr->uffd, addr, page, PAGE);
	}
	struct uffdio_zeropage z = {.range = {.start = addr, .len = PAGE}};
	if (ioctl(pr->uffd, UFFDIO_ZEROPAGE, &z) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int read_uffd_events(struct restore_pages *p, struct proc *pr, struct snap_reader **rdp)
{
	struct uffd_msg msg[16];
	for (;;) {
		ssize_t n = read(pr->uffd, msg, sizeof(msg));
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		for (size_t i = 0; i < (size_t) n / sizeof(msg[0]); i++) {
			if (msg[i].event != UFFD_EVENT_PAGEFAULT) {
				/* The tree is stopped until all is copied: nothing
				 * should change its memory map meanwhile. */
				snprintf(p->sh->why, sizeof(p->sh->why),
					 "unexpected userfaultfd event %u from restored process %u",
					 msg[i].event, pr->vpid);
				return -EPROTO;
			}
			int r = serve_fault(p, pr, rdp, msg[i].arg.pagefault.address);
			if (r < 0)
				return r;
		}
	}
}

enum { WAIT_PID, WAIT_UFFD, COPYING };

struct criu_conv {
	int state;
	struct proc *pending; /* whose uffd comes next */
};

static struct proc *proc_by_vpid(struct restore_pages *p, int vpid)
{
	for (size_t k = 0; k < p->n_procs; k++)
		if ((int) p->procs[k].vpid == vpid)
			return &p->procs[k];
	return NULL;
}

/* CRIU sent "restore finished": every process must have its uffd. */
static int restore_finished(struct restore_pages *p, struct criu_conv *cv, struct snap_reader **rdp)
{
	for (size_t k = 0; k < p->n_procs; k++) {
		if (p->procs[k].uffd < 0) {
			snprintf(p->sh->why, sizeof(p->sh->why),
				 "CRIU sent no userfaultfd for process %u", p->procs[k].vpid);
			return -EPROTO;
		}
	}
	p->sh->finished_at = cs_monotonic_ns();
	cv->state = COPYING;
	*rdp = snap_reader_free(*rdp);
	return start_copy(p);
}

/* One message from CRIU: a pid (negative: a zombie, nothing follows), the
 * uffd of the process just named, or "restore finished"; 1 when CRIU closed
 * the connection. */
static int read_criu(struct restore_pages *p, int client, struct criu_conv *cv,
		     struct snap_reader **rdp)
{
	if (cv->state == WAIT_UFFD) {
		char b;
		int fd = cs_recv_fd(client, &b, 1);
		if (fd < 0)
			return fd;
		cv->pending->uffd = fd;
		(void) cs_fd_set_nonblock(fd, 1);
		cv->state = WAIT_PID;
		return 0;
	}
	int32_t word;
	ssize_t n = recv(client, &word, sizeof(word), MSG_WAITALL);
	if (n == 0)
		return 1;
	if (n != sizeof(word))
		return n < 0 ? -errno : -EPROTO;
	if (cv->state == WAIT_PID && (uint32_t) word == RESTORE_FINISHED)
		return restore_finished(p, cv, rdp);
	if (cv->state != WAIT_PID) {
		snprintf(p->sh->why, sizeof(p->sh->why), "unexpected message %#x from CRIU",
			 (unsigned) word);
		return -EPROTO;
	}
	if (word < 0)
		return 0; /* a zombie: no memory */
	cv->pending = proc_by_vpid(p, word);
	if (!cv->pending || cv->pending->uffd >= 0) {
		snprintf(p->sh->why, sizeof(p->sh->why),
			 "CRIU named process %d, which has no memory image or was named before",
			 word);
		return -EPROTO;
	}
	cv->state = WAIT_UFFD;
	return 0;
}

static int serve_loop(struct restore_pages *p)
{
	_cleanup_(snap_reader_freep) struct snap_reader *rd = NULL;
	_cleanup_free_ struct pollfd *f = calloc(1 + p->n_procs + MAX_WORKERS, sizeof(*f));
	if (!f)
		return -ENOMEM;
	_cleanup_close_ int client = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (client < 0)
		return -errno;

	struct criu_conv cv = {.state = WAIT_PID};
	bool criu_gone = false;
	int r;
	for (;;) {
		/* [0] CRIU, [1..n_procs] the uffds, then the copy processes. */
		struct pollfd *fw = f + 1 + p->n_procs;
		f[0] = (struct pollfd){.fd = criu_gone ? -1 : client, .events = POLLIN};
		for (size_t k = 0; k < p->n_procs; k++)
			f[1 + k] = (struct pollfd){.fd = p->procs[k].uffd, .events = POLLIN};
		for (unsigned k = 0; k < p->n_workers; k++)
			fw[k] = (struct pollfd){.fd = p->worker_fds[k], .events = POLLIN};
		if (poll(f, 1 + p->n_procs + p->n_workers, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (unsigned k = 0; k < p->n_workers; k++) {
			if (p->worker_fds[k] >= 0 && fw[k].revents) {
				r = reap_worker(p, k);
				if (r < 0)
					return r;
				if (p->workers_left == 0) {
					p->sh->copied_at = cs_monotonic_ns();
					return 0;
				}
			}
		}
		for (size_t k = 0; k < p->n_procs; k++) {
			if (f[1 + k].revents) {
				r = read_uffd_events(p, &p->procs[k], &rd);
				if (r < 0)
					return r;
			}
		}
		if (f[0].revents) {
			r = read_criu(p, client, &cv, &rd);
			if (r < 0)
				return r;
			if (r == 1) {
				if (cv.state != COPYING) {
					snprintf(p->sh->why, sizeof(p->sh->why),
						 "CRIU closed the lazy-pages socket before the "
						 "restore "
						 "finished");
					return -EPIPE;
				}
				criu_gone = true;
			}
		}
	}
}

/* The page server process: serves CRIU, then exits (closing the uffd, which
 * unregisters the memory) once every page is copied or on the first error;
 * its copy processes die with it. */
_Noreturn static void page_server(struct restore_pages *p)
{
	(void) prctl(PR_SET_PDEATHSIG, SIGKILL);
	int r = serve_loop(p);
	for (unsigned k = 0; k < p->n_workers; k++)
		if (p->worker_fds[k] >= 0)
			kill(p->workers[k], SIGKILL);
	p->sh->result = r;
	_exit(r < 0 ? 1 : 0);
}

int rp_start(struct restore_pages *p)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		page_server(p);
	p->server = pid;
	close(p->listen_fd); /* the server's now: CRIU's connect fails if it dies */
	p->listen_fd = -EBADF;
	return 0;
}

int rp_finish(struct restore_pages *p, struct rp_stats *ret_stats, char *err, size_t errlen)
{
	uint64_t t0 = cs_monotonic_ns();
	int status = 0;
	if (p->server > 0) {
		while (waitpid(p->server, &status, 0) < 0 && errno == EINTR)
			;
		p->server = 0;
		if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0) && p->sh->result >= 0) {
			p->sh->result = -EIO;
			snprintf(p->sh->why, sizeof(p->sh->why), "the page server died");
		}
	}
	uint64_t waited = cs_monotonic_ns() - t0;
	if (p->sh->result < 0)
		return cs_errf(p->sh->result, err, errlen,
			       "snapshot %s: serving the memory pages: %s", p->snapshot,
			       *p->sh->why ? p->sh->why : strerror(-p->sh->result));
	if (ret_stats)
		*ret_stats = (struct rp_stats){
			.copy_ns = p->sh->copied_at > p->sh->finished_at
					   ? p->sh->copied_at - p->sh->finished_at
					   : 0,
			.wait_ns = waited,
			.lazy_bytes = p->lazy_bytes,
			.eager_bytes = p->eager_bytes,
			.faults = atomic_load(&p->sh->faults),
		};
	return 0;
}

void rp_free(struct restore_pages *p)
{
	if (!p)
		return;
	if (p->server > 0) {
		kill(p->server, SIGKILL);
		while (waitpid(p->server, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (p->listen_fd >= 0)
		close(p->listen_fd);
	if (p->sock_path) {
		(void) unlink(p->sock_path);
		free(p->sock_path);
	}
	if (p->sh)
		munmap(p->sh, sizeof(*p->sh));
	procs_free(p->procs, p->n_procs);
	free(p->snapshot);
	free(p);
}
