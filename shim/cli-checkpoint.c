/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `stoke checkpoint`, `stoke restore` and restore-on-create.
 *
 * The container side of checkpoint/restore: which mounts are external and
 * where they come from, the cgroup, the stdio pipes, the state file; the
 * process tree and GPU part is snapshot/'s (stoke-checkpoint.h), the file
 * part the snapshot format's (stoke-snapshot.h).
 *
 * Snapshot files hold CRIU's image directory as a tree. Checkpoint dumps
 * into a temporary directory beside the snapshot, then packs it (the writer
 * compresses on all cores, keeps a chunk compressed only where zstd saves at
 * least 1/8, and renames into place only when complete). Restore unpacks
 * the small images into tmpfs; the memory pages (nearly all the bytes) of a
 * tree without GPU state are copied into its processes over userfaultfd
 * straight from the snapshot once CRIU has restored the rest
 * (restore-pages.h); otherwise (STOKE_RESTORE_PAGES=tmpfs, GPU state,
 * incremental images) the pages images are unpacked too, by a child
 * process while stoke makes the cgroup and mounts and CRIU makes the
 * namespaces, and CRIU waits for it at its post-setup-namespaces hook,
 * before it reads any page.
 *
 * Measured on the AI-server fixture (512 MiB of random float32 weights, 555
 * MB of pages; this 2-core VM, shared, so medians of alternating runs):
 *  - Raw chunks (writer.c's 1/8 rule): zstd saved only ~10% on the random
 *    weights' chunks, now stored raw (the snapshot is 0.97 of CRIU's raw
 *    images instead of ~0.9); restore
 *    fell from ~1.9 s to ~1.05-1.3 s to the first answer, decompression CPU
 *    from ~820 ms to ~60 ms (only the small images stay compressed).
 *  - Unpack vs CRIU's --stream (STOKE_RESTORE_IMAGES=stream, which stays as
 *    the alternative), with raw chunks: first answer 1.29 s vs 1.68 s cold,
 *    1.82 s vs 1.94 s warm in one noisy run of scripts/bench-restore
 *    --modes stream,unpack; --stats phases, warm, alternating: criu 1.0-1.4 s
 *    streamed against 0.55-0.7 s from tmpfs (+0.2-0.4 s unpack). CRIU's
 *    stream path reads the pages image through a pipe in its own single
 *    thread and its pre-pages part took 0.3-0.4 s instead of 0.15 s (the
 *    criu binary is exec'd: --stream is refused over RPC). Feeding the pipe
 *    with vmsplice() from reused buffers instead of write() (no second copy,
 *    no fresh pipe pages) was tried and did not help (criu 1.0-1.4 s): the
 *    cost is on CRIU's side, so it was dropped.
 *  - Overlapping the pages unpack with CRIU's start: warm, alternating
 *    (STOKE_RESTORE_OVERLAP=0 turns it off), 687-871 ms against 723-819
 *    ms total; CRIU waits 40-220 ms for the pages instead of the whole
 *    0.2-0.7 s unpack.
 * Result (scripts/bench-restore -n 3 --build build-perf --modes stream, one
 * run, medians, first correct answer): cold cache stoke restore 0.97 s,
 * streamed 1.26 s, runc restore 0.74 s, cold start 1.46 s; warm 0.80 s,
 * 1.06 s, 0.61 s, 1.27 s; fio O_DIRECT 1.13 GB/s, so reading the 555 MB of
 * pages alone takes 0.49 s. Cold, the pages unpack (0.37 s) ended before
 * CRIU reached its hook (CRIU's own start is slower cold).
 * What remained was CRIU's own: ~0.15 s before the pages, then one copy of
 * every page from tmpfs into fresh process memory (~0.42 s for 555 MB here,
 * the same copy runc restore's CRIU does from the page cache), after waiting
 * for the unpack into tmpfs, a copy runc does not make.
 *  - Pages over userfaultfd (restore-pages.h), which drops that copy: warm,
 *    --stats: total 0.47-0.53 s (criu 0.19-0.23 s without the pages, then
 *    0.23-0.25 s to copy 553 MB on 2 cores) against 0.8-1.0 s through tmpfs;
 *    cold: criu 0.31-0.35 s, copy 0.41-0.49 s (the disk's speed). First
 *    correct answer, scripts/bench-restore -n 3: warm 0.62-0.72 s against
 *    runc restore's 0.61-0.70 s, cold 0.79-0.85 s against 0.70-0.81 s
 *    (through tmpfs: 0.98 s warm, 1.03 s cold). Asking the kernel to read
 *    the snapshot ahead (fadvise WILLNEED) while CRIU runs made cold
 *    restores slower (0.95-0.97 s against 0.79-0.85 s, alternating runs):
 *    it competes with CRIU's own reads, so it was dropped.
 */
#include "cli-checkpoint.h"
#include "restore-pages.h"
#include "errbuf.h"

#include "cgroup.h"
#include "cleanup.h"
#include "oci-config.h"
#include "container.h"
#include "fd-util.h"
#include "json-util.h"
#include "log.h"
#include "path-util.h"
#include "state.h"
#include "stoke-checkpoint.h"
#include "stoke-snapshot.h"
#include "time-util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <dirent.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define META_NAME    "stoke-meta.json"
#define META_VERSION 1
#define NETNS_KEY    "stoke-netns"
/* snapshot/'s GPU record beside CRIU's images (stoke-checkpoint.h). */
#define STOKE_GPU_RECORD_NAME "stoke-gpu.json"
/* How long Lock may wait for a CUDA process to reach a lockable point. */
#define GPU_LOCK_TIMEOUT_MS 30000

static void json_putp(json_object **o)
{
	if (*o)
		json_object_put(*o);
}

static void rm_rf(const char *path)
{
	if (path && *path)
		(void) cs_rm_rf_at(AT_FDCWD, path);
}

/* --- What ties a checkpoint to a bundle ----------------------------------- */

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= UINT64_C(1099511628211);
	}
	return h;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static bool is_dir_at(int dfd, const struct dirent *de)
{
	struct stat st;
	if (de->d_type != DT_UNKNOWN)
		return de->d_type == DT_DIR;
	return fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* A fingerprint of the rootfs's identity: the names, types and sizes of the
 * entries of its program and library directories (one level), which differ
 * between images but not between runs of one image. Directory sizes,
 * top-level directories and writable places (/tmp, /var, /etc) stay out. */
static int rootfs_fingerprint(const char *rootfs, char ret[17])
{
	/* "" is the top level; symlinks are not followed (bin -> usr/bin). */
	static const char *const dirs[] = {
		"",	    "bin",     "sbin",		"lib", "lib64", "usr/bin",
		"usr/sbin", "usr/lib", "usr/local/bin", "opt", "app"};
	uint64_t h = UINT64_C(14695981039346656037);
	size_t seen = 0;

	for (size_t d = 0; d < ELEMENTSOF(dirs); d++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", rootfs, dirs[d]);
		int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		_cleanup_closedir_ DIR *dir = fdopendir(fd);
		if (!dir) {
			close(fd);
			continue;
		}
		size_t n = 0, cap = 0;
		char **names = NULL;
		struct dirent *de;
		while ((de = readdir(dir))) {
			if (de->d_name[0] == '.')
				continue;
			/* Top-level directories stay out: the runtime creates mount
			 * points there (a bind mount on /out), so they differ between
			 * the checkpointed run and a fresh bundle of the same image. */
			if (dirs[d][0] == '\0' && is_dir_at(dirfd(dir), de))
				continue;
			if (n == cap) {
				cap = cap ? 2 * cap : 256;
				char **nn = realloc(names, cap * sizeof(char *));
				if (!nn)
					goto oom;
				names = nn;
			}
			names[n] = strdup(de->d_name);
			if (!names[n])
				goto oom;
			n++;
		}
		qsort(names, n, sizeof(char *), cmp_str);
		h = fnv1a(h, dirs[d], strlen(dirs[d]) + 1);
		for (size_t i = 0; i < n; i++) {
			struct stat st;
			char rec[64];
			h = fnv1a(h, names[i], strlen(names[i]) + 1);
			if (fstatat(dirfd(dir), names[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
				unsigned long long size =
					S_ISREG(st.st_mode) ? (unsigned long long) st.st_size : 0;
				int len = snprintf(rec, sizeof(rec), "%o:%llu",
						   (unsigned) (st.st_mode & S_IFMT), size);
				h = fnv1a(h, rec, (size_t) len);
			}
			free(names[i]);
		}
		free(names);
		seen += n;
		continue;
	oom:
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
		return -ENOMEM;
	}
	if (seen == 0)
		return -ENOENT;
	snprintf(ret, 17, "%016llx", (unsigned long long) h);
	return 0;
}

static json_object *strv_to_json(char **v)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; a && v && v[i]; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}

static json_object *namespaces_json(const struct shim_config *cfg)
{
	json_object *a = json_object_new_array();
	for (int t = 0; a && t < SHIM_NS_COUNT; t++)
		if (cfg->ns[t].enabled)
			json_object_array_add(a, json_object_new_string(shim_ns_name(t)));
	return a;
}

static json_object *bind_destinations_json(const struct shim_config *cfg)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; a && i < cfg->n_mounts; i++)
		if (cfg->mounts[i].bind)
			json_object_array_add(a,
					      json_object_new_string(cfg->mounts[i].destination));
	return a;
}

/* How each of the init's stdio fds is re-attached on restore, by CRIU key:
 * a pipe is "pipe:[INODE]" (CRIU dumps it; restore hands ours in its
 * place); a file the container cannot reach from its own mounts (the host's
 * /dev/null, containerd's fifos) is "file[MNT_ID:INODE]", declared external
 * on dump; anything else is "" (CRIU restores it by itself). */
static bool mount_in_ns(pid_t pid, unsigned mnt_id)
{
	char path[64];
	_cleanup_free_ char *info = NULL;
	size_t len = 0;
	snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int) pid);
	if (cs_read_file_at(AT_FDCWD, path, 16 << 20, &info, &len) < 0)
		return true;
	for (char *save, *l = strtok_r(info, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if ((unsigned) strtoul(l, NULL, 10) == mnt_id)
			return true;
	return false;
}

static void stdio_keys(pid_t pid, char keys[3][64])
{
	for (int fd = 0; fd < 3; fd++) {
		char p[64], target[PATH_MAX], fdinfo[512] = "";
		struct stat st;
		keys[fd][0] = '\0';
		snprintf(p, sizeof(p), "/proc/%d/fd/%d", (int) pid, fd);
		ssize_t n = readlink(p, target, sizeof(target) - 1);
		if (n <= 0 || stat(p, &st) < 0)
			continue;
		target[n] = '\0';
		if (strncmp(target, "pipe:[", 6) == 0) {
			snprintf(keys[fd], 64, "%.60s", target);
			continue;
		}
		if (target[0] != '/')
			continue; /* sockets, anon inodes: CRIU's business */
		snprintf(p, sizeof(p), "/proc/%d/fdinfo/%d", (int) pid, fd);
		_cleanup_close_ int f = open(p, O_RDONLY | O_CLOEXEC);
		if (f < 0 || read(f, fdinfo, sizeof(fdinfo) - 1) < 0)
			continue;
		const char *m = strstr(fdinfo, "mnt_id:");
		unsigned mnt_id = m ? (unsigned) strtoul(m + 7, NULL, 10) : 0;
		if (m && !mount_in_ns(pid, mnt_id))
			snprintf(keys[fd], 64, "file[%x:%llx]", mnt_id,
				 (unsigned long long) st.st_ino);
	}
}

static json_object *descriptors_json(char keys[3][64])
{
	json_object *a = json_object_new_array();
	for (int fd = 0; a && fd < 3; fd++)
		json_object_array_add(a, json_object_new_string(keys[fd]));
	return a;
}

static int write_meta(const char *images_dir, const struct shim_config *cfg, char keys[3][64],
		      char *err, size_t errlen)
{
	_cleanup_(json_putp) json_object *m = json_object_new_object();
	char fp[17];
	int r;

	if (!m)
		return -ENOMEM;
	r = rootfs_fingerprint(cfg->rootfs, fp);
	if (r < 0)
		return cs_errf(r, err, errlen, "cannot fingerprint the rootfs %s", cfg->rootfs);
	json_object_object_add(m, "version", json_object_new_int(META_VERSION));
	json_object_object_add(m, "rootfs_fingerprint", json_object_new_string(fp));
	json_object_object_add(m, "args",
			       strv_to_json(cfg->has_process ? cfg->process.args : NULL));
	json_object_object_add(m, "cwd",
			       json_object_new_string(cfg->has_process ? cfg->process.cwd : ""));
	json_object_object_add(m, "namespaces", namespaces_json(cfg));
	json_object_object_add(m, "bind_destinations", bind_destinations_json(cfg));
	json_object_object_add(m, "descriptors", descriptors_json(keys));
	json_object_object_add(m, "config", json_object_get(cfg->json));

	const char *s = json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN);
	_cleanup_close_ int dfd = open(images_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return cs_errf(-errno, err, errlen, "open %s", images_dir);
	r = cs_write_file_atomic(dfd, META_NAME, s, strlen(s), 0600);
	return r < 0 ? cs_errf(r, err, errlen, "write %s/%s", images_dir, META_NAME) : 0;
}

static bool json_equal(json_object *a, json_object *b)
{
	return strcmp(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN),
		      json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN)) == 0;
}

/* Refuse a checkpoint that does not belong to this bundle, naming what
 * differs. Nothing has been created yet when this runs. */
static int check_meta(json_object *m, const struct shim_config *cfg, const char *what, char *err,
		      size_t errlen)
{
	int64_t version = 0;
	const char *fp_then = NULL;
	json_object *v;
	char fp_now[17];
	int r;

	if (cs_json_get_int64(m, "version", &version) < 0 || version != META_VERSION)
		return cs_errf(-EPROTONOSUPPORT, err, errlen, "%s: unsupported checkpoint version",
			       what);
	if (cs_json_get_string(m, "rootfs_fingerprint", &fp_then) < 0)
		return cs_errf(-EBADMSG, err, errlen, "%s: no rootfs fingerprint", what);
	r = rootfs_fingerprint(cfg->rootfs, fp_now);
	if (r < 0)
		return cs_errf(r, err, errlen, "cannot fingerprint the rootfs %s", cfg->rootfs);
	if (strcmp(fp_now, fp_then) != 0)
		return cs_errf(
			-EXDEV, err, errlen,
			"%s was taken from a different root filesystem than %s (fingerprint %s, "
			"this rootfs %s)",
			what, cfg->rootfs, fp_then, fp_now);

	_cleanup_(json_putp) json_object *args =
		strv_to_json(cfg->has_process ? cfg->process.args : NULL);
	if (cs_json_get_array(m, "args", &v) < 0 || !json_equal(v, args))
		return cs_errf(-EXDEV, err, errlen,
			       "%s: process.args differ from the checkpointed container's (%s)",
			       what, v ? json_object_to_json_string(v) : "none");
	const char *cwd = NULL;
	if (cs_json_get_string(m, "cwd", &cwd) < 0 ||
	    strcmp(cwd, cfg->has_process ? cfg->process.cwd : "") != 0)
		return cs_errf(-EXDEV, err, errlen,
			       "%s: process.cwd differs from the checkpointed container's (%s)",
			       what, cwd ? cwd : "none");
	_cleanup_(json_putp) json_object *ns = namespaces_json(cfg);
	if (cs_json_get_array(m, "namespaces", &v) < 0 || !json_equal(v, ns))
		return cs_errf(-EXDEV, err, errlen,
			       "%s: linux.namespaces differ from the checkpointed container's (%s)",
			       what, v ? json_object_to_json_string(v) : "none");
	_cleanup_(json_putp) json_object *binds = bind_destinations_json(cfg);
	if (cs_json_get_array(m, "bind_destinations", &v) < 0 || !json_equal(v, binds))
		return cs_errf(-EXDEV, err, errlen,
			       "%s: the bind mounts differ from the checkpointed container's (%s)",
			       what, v ? json_object_to_json_string(v) : "none");
	return 0;
}

static int read_meta_file(const char *images_dir, json_object **ret, char *err, size_t errlen)
{
	char path[PATH_MAX], perr[256];
	snprintf(path, sizeof(path), "%s/%s", images_dir, META_NAME);
	int r = cs_json_parse_file(path, 64 << 20, ret, perr, sizeof(perr));
	if (r == -ENOENT)
		return cs_errf(-EBADMSG, err, errlen, "%s has no %s: not a stoke checkpoint",
			       images_dir, META_NAME);
	return r < 0 ? cs_errf(r, err, errlen, "%s: %s", path, perr) : 0;
}

static int read_meta_snapshot(struct snap_reader *rd, const char *snapshot, json_object **ret,
			      char *err, size_t errlen)
{
	size_t idx;
	struct snap_entry_info info;
	char perr[256];

	if (snap_reader_find(rd, META_NAME, &idx) < 0 || snap_reader_entry(rd, idx, &info) < 0)
		return cs_errf(-EBADMSG, err, errlen,
			       "%s has no %s: not a stoke container snapshot", snapshot, META_NAME);
	if (info.size > (64u << 20))
		return cs_errf(-EBADMSG, err, errlen, "%s: %s is too large", snapshot, META_NAME);
	_cleanup_free_ char *buf = malloc(info.size + 1);
	if (!buf)
		return -ENOMEM;
	ssize_t n = snap_reader_pread(rd, idx, buf, info.size, 0);
	if (n < 0 || (uint64_t) n != info.size)
		return cs_errf(n < 0 ? (int) n : -EBADMSG, err, errlen, "%s: cannot read %s: %s",
			       snapshot, META_NAME, snap_last_error());
	int r = cs_json_parse(buf, info.size, ret, perr, sizeof(perr));
	return r < 0 ? cs_errf(-EBADMSG, err, errlen, "%s: %s: %s", snapshot, META_NAME, perr) : 0;
}

/* --- External mounts -------------------------------------------------------- */

struct ext_list {
	struct stoke_cr_ext_mount *v;
	size_t n;
	char **owned; /* strings allocated for v */
	size_t n_owned;
};

static void ext_list_done(struct ext_list *l)
{
	for (size_t i = 0; i < l->n_owned; i++)
		free(l->owned[i]);
	free(l->owned);
	free(l->v);
}

static int ext_add(struct ext_list *l, const char *key, const char *path, bool own)
{
	struct stoke_cr_ext_mount *nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	l->v = nv;
	if (own) {
		char **no = realloc(l->owned, (l->n_owned + 2) * sizeof(char *));
		if (!no)
			return -ENOMEM;
		l->owned = no;
		char *k = strdup(key), *p = strdup(path);
		if (!k || !p) {
			free(k);
			free(p);
			return -ENOMEM;
		}
		l->owned[l->n_owned++] = k;
		l->owned[l->n_owned++] = p;
		key = k;
		path = p;
	}
	l->v[l->n++] = (struct stoke_cr_ext_mount){key, path};
	return 0;
}

/* The container's cgroup mount is made of host cgroup directories bound in
 * (one per hierarchy on v1/hybrid, under DEST/<hierarchy>; DEST itself on
 * v2): each is external, keyed by its place in the container. On dump the
 * value is that place; on restore the new container's directory. */
/* The directory whose freezer holds a paused container, for CRIU's
 * freeze-cgroup option: the v1 freezer hierarchy's (hybrid and v1 hosts
 * freeze there), else the v2 directory (cgroup.freeze). */
static const char *freezer_dir(const struct shim_cgroup *cg)
{
	const char *v2 = NULL;
	for (size_t i = 0; cg && i < shim_cgroup_n_dirs(cg); i++) {
		const char *mnt, *dir, *base;
		int version;
		if (shim_cgroup_dir(cg, i, &mnt, &dir, &version) < 0)
			continue;
		base = strrchr(mnt, '/');
		if (version == 1 && base && strcmp(base + 1, "freezer") == 0)
			return dir;
		if (version == 2)
			v2 = dir;
	}
	return v2;
}

static int ext_add_cgroup(struct ext_list *l, const struct shim_mount *m,
			  const struct shim_cgroup *cg, bool restore)
{
	size_t n = cg ? shim_cgroup_n_dirs(cg) : 0;
	for (size_t i = 0; i < n; i++) {
		const char *mnt, *dir;
		char key[PATH_MAX];
		int version;
		if (shim_cgroup_dir(cg, i, &mnt, &dir, &version) < 0)
			continue;
		if (shim_cgroup_detect_layout() == SHIM_CGROUP_V2 && n == 1)
			snprintf(key, sizeof(key), "%s", m->destination);
		else {
			const char *base = strrchr(mnt, '/');
			snprintf(key, sizeof(key), "%s/%s", m->destination, base ? base + 1 : mnt);
		}
		int r = ext_add(l, key, restore ? dir : key, true);
		if (r < 0)
			return r;
	}
	return 0;
}

static int ext_build(struct ext_list *l, const struct shim_config *cfg,
		     const struct shim_cgroup *cg, bool restore)
{
	for (size_t i = 0; i < cfg->n_mounts; i++) {
		const struct shim_mount *m = &cfg->mounts[i];
		int r = 0;
		if (m->bind)
			r = ext_add(l, m->destination, restore ? m->source : m->destination, false);
		else if (m->type && (!strcmp(m->type, "cgroup") || !strcmp(m->type, "cgroup2")))
			r = ext_add_cgroup(l, m, cg, restore);
		if (r < 0)
			return r;
	}
	return 0;
}

/* --- stoke checkpoint ---------------------------------------------------- */

struct checkpoint_args {
	const char *image_path, *work_path, *snapshot, *criu_path;
	bool leave_running, tcp_established, ext_unix_sk, shell_job, file_locks;
	enum stoke_cr_cgroup_mode cg_mode;
	unsigned int criu_timeout_s; /* the deadline of CRIU's work */
};

/* --criu-timeout SECONDS (or the annotation): 1 .. one day. */
static int parse_criu_timeout(const char *verb, const char *s, unsigned int *ret)
{
	char *end = NULL;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || !end || *end || end == s || v == 0 || v > 86400) {
		log_error("%s: --criu-timeout \"%s\": expected whole seconds from 1 to 86400", verb,
			  s);
		return -EINVAL;
	}
	*ret = (unsigned int) v;
	return 0;
}

/* After a dump was killed by its deadline: CRIU may have left processes of
 * a running container stopped (ptrace or freezer stops end with CRIU, but a
 * group stop it caused would not); continue those, so the container keeps
 * running as before. A paused container stays paused. */
static void resume_stopped_tree(pid_t pid)
{
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;

	if (stoke_cr_list_tree(pid, &pids, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		char path[64], *buf = NULL;
		size_t len = 0;
		snprintf(path, sizeof(path), "/proc/%d/stat", (int) pids[i]);
		if (cs_read_file_at(AT_FDCWD, path, 4096, &buf, &len) < 0)
			continue;
		/* "pid (comm) S ...": the state follows the last ')'. */
		char *rp = strrchr(buf, ')');
		if (rp && rp[1] == ' ' && (rp[2] == 'T' || rp[2] == 't'))
			(void) kill(pids[i], SIGCONT);
		free(buf);
	}
}

static int refuse_flag(const char *verb, const char *flag)
{
	log_error("%s: %s is not supported by stoke", verb, flag);
	return 1;
}

static int parse_cg_mode(const char *verb, const char *s, enum stoke_cr_cgroup_mode *ret)
{
	if (stoke_cr_cgroup_mode_from_string(s, ret) < 0) {
		log_error("%s: --manage-cgroups-mode: unknown mode \"%s\" (soft, full, strict or "
			  "ignore)",
			  verb, s);
		return -EINVAL;
	}
	return 0;
}

static int netns_external(const struct shim_config *cfg, pid_t pid, char *buf, size_t len)
{
	struct stat st;
	char path[64];
	if (!cfg->ns[SHIM_NS_NET].enabled || !cfg->ns[SHIM_NS_NET].path)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int) pid);
	if (stat(path, &st) < 0)
		return -errno;
	snprintf(buf, len, "net[%llu]:%s", (unsigned long long) st.st_ino, NETNS_KEY);
	return 1;
}

static int do_checkpoint(const struct shim_globals *g, const char *id,
			 const struct checkpoint_args *a)
{
	_cleanup_(shim_state_freep) struct shim_state *s = NULL;
	_cleanup_(shim_config_freep) struct shim_config *cfg = NULL;
	_cleanup_(shim_cgroup_freep) struct shim_cgroup *cg = NULL;
	_cleanup_(ext_list_done) struct ext_list ext = {};
	_cleanup_close_ int lock = -EBADF;
	_cleanup_free_ char *tmp = NULL, *images = NULL, *work = NULL;
	struct stoke_cr_stats st = {};
	char err[512] = "", netext[128];
	const char *externals[5] = {};
	size_t n_ext = 0;
	char keys[3][64];
	int r;

	r = shim_state_load(g->root, id, &s);
	if (r == -ENOENT)
		return log_error("checkpoint: container \"%s\" does not exist", id), 1;
	if (r < 0)
		return log_error_errno(r, "checkpoint %s: cannot read its state: %m", id), 1;
	r = shim_state_lock(g->root, id, &lock);
	if (r < 0)
		return log_error_errno(r, "checkpoint %s: cannot lock its state: %m", id), 1;
	/* Paused is fine, as with runc: containerd pauses a task before its
	 * checkpoint. CRIU then dumps through the freezer (and leaves it frozen). */
	enum shim_status status = shim_state_status(g->root, s);
	if (status != SHIM_STATUS_RUNNING && status != SHIM_STATUS_PAUSED)
		return log_error("checkpoint %s: container is %s, not running or paused", id,
				 shim_status_name(status)),
		       1;
	if (!s->config)
		return log_error("checkpoint %s: its state has no config", id), 1;
	r = shim_config_parse(json_object_get(s->config), s->bundle, &cfg, err, sizeof(err));
	if (r < 0)
		return log_error_errno(r, "checkpoint %s: config: %s", id, err), 1;
	if (s->cgroup && shim_cgroup_from_json(s->cgroup, &cg) < 0)
		return log_error("checkpoint %s: cannot read its cgroup from the state", id), 1;
	const char *frozen_cgroup = NULL;
	if (status == SHIM_STATUS_PAUSED) {
		frozen_cgroup = freezer_dir(cg);
		if (!frozen_cgroup)
			return log_error("checkpoint %s: paused, but it has no freezer cgroup", id),
			       1;
	}
	r = ext_build(&ext, cfg, cg, false);
	if (r < 0)
		return log_error_errno(r, "checkpoint %s: %m", id), 1;
	r = netns_external(cfg, s->pid, netext, sizeof(netext));
	if (r < 0)
		return log_error_errno(r, "checkpoint %s: network namespace: %m", id), 1;
	if (r > 0)
		externals[n_ext++] = netext;
	stdio_keys(s->pid, keys);
	for (int fd = 0; fd < 3; fd++)
		if (strncmp(keys[fd], "file[", 5) == 0)
			externals[n_ext++] = keys[fd];

	/* Images: the given directory, or a temporary one beside the snapshot
	 * (same file system, removed whatever happens). */
	if (a->snapshot) {
		_cleanup_free_ char *dir = strdup(a->snapshot);
		if (!dir)
			return log_error_errno(-ENOMEM, "checkpoint: %m"), 1;
		char *slash = strrchr(dir, '/');
		const char *parent = slash ? (slash == dir ? "/" : (*slash = '\0', dir)) : ".";
		if (asprintf(&tmp, "%s/.stoke-checkpoint-XXXXXX", parent) < 0)
			return 1;
		if (!mkdtemp(tmp))
			return log_error_errno(-errno,
					       "checkpoint %s: cannot write the snapshot %s: "
					       "cannot create a directory in %s: %m",
					       id, a->snapshot, parent),
			       1;
		if (asprintf(&images, "%s/images", tmp) < 0 || asprintf(&work, "%s/work", tmp) < 0)
			return 1;
	} else {
		images = strdup(a->image_path);
		work = strdup(a->work_path ? a->work_path : a->image_path);
		if (!images || !work)
			return 1;
	}
	if (a->snapshot && a->work_path) {
		free(work);
		work = strdup(a->work_path);
	}

	struct stoke_cr_options o = {
		.images_dir = images,
		.work_dir = work,
		.ext_mounts = ext.v,
		.n_ext_mounts = ext.n,
		.externals = n_ext ? externals : NULL,
		.leave_running = a->leave_running,
		.tcp_established = a->tcp_established,
		.ext_unix_sk = a->ext_unix_sk,
		.shell_job = a->shell_job,
		.file_locks = a->file_locks,
		.cgroup_mode = a->cg_mode,
		.freeze_cgroup = frozen_cgroup,
		.criu_path = a->criu_path,
	};
	r = cs_mkdir_p(images, 0700);
	if (r >= 0)
		r = write_meta(images, cfg, keys, err, sizeof(err));
	if (r < 0) {
		rm_rf(tmp);
		return log_error_errno(r, "checkpoint %s: %s: %m", id, err), 1;
	}

	uint64_t t0 = cs_monotonic_ns();
	r = stoke_cr_deadline_arm(a->criu_timeout_s, "checkpoint", NULL);
	if (r < 0) {
		rm_rf(tmp);
		return log_error_errno(r, "checkpoint %s: cannot start its deadline: %m", id), 1;
	}
	stoke_cr_deadline_phase("gpu checkpoint");
	r = stoke_cr_checkpoint(s->pid, &o, GPU_LOCK_TIMEOUT_MS, &st);
	bool timed_out = stoke_cr_deadline_expired();
	stoke_cr_deadline_disarm();
	if (timed_out && status == SHIM_STATUS_RUNNING)
		resume_stopped_tree(s->pid);
	if (r < 0) {
		/* Name the target: a full or read-only disk shows here, in the
		 * images beside the snapshot, before the snapshot is written. */
		log_error_errno(r, "checkpoint %s into %s: %s (%m); the container keeps running",
				id, a->snapshot ? a->snapshot : a->image_path, stoke_cr_error());
		/* Keep criu's log for the user when it is in a directory of theirs. */
		if (tmp && !a->work_path)
			log_error("checkpoint %s: criu's log went with the temporary images; "
				  "--work-path DIR keeps it",
				  id);
		rm_rf(tmp);
		return 1;
	}
	uint64_t dump_ns = cs_monotonic_ns() - t0, pack_ns = 0;

	if (a->snapshot) {
		_cleanup_(snap_writer_freep) struct snap_writer *w = NULL;
		t0 = cs_monotonic_ns();
		r = snap_writer_open(a->snapshot, NULL, &w);
		if (r >= 0)
			r = snap_writer_add_tree(w, NULL, images);
		if (r >= 0)
			r = snap_writer_commit(w);
		pack_ns = cs_monotonic_ns() - t0;
		rm_rf(tmp);
		if (r < 0) {
			log_error_errno(r, "checkpoint %s: cannot write the snapshot %s: %s (%m)",
					id, a->snapshot, snap_last_error());
			if (!a->leave_running)
				log_error("checkpoint %s: the container was dumped and has stopped",
					  id);
			return 1;
		}
	}
	/* Timings to the --log file only, as for restore (runc prints nothing). */
	cs_log_set_stderr(false);
	log_info("checkpoint %s: %u process(es), %u with CUDA; gpu %.1f ms, criu %.1f ms, "
		 "pack %.1f ms",
		 id, st.n_processes, st.n_gpu_processes, cs_ns_to_ms(st.gpu_ns),
		 cs_ns_to_ms(st.criu_ns), cs_ns_to_ms(pack_ns));
	cs_log_set_stderr(true);
	(void) dump_ns;

	/* As runc: without --leave-running the container is gone afterwards. */
	if (!a->leave_running) {
		r = shim_container_destroy(g->root, s, err, sizeof(err));
		if (r < 0)
			log_warning("checkpoint %s: cleaning up the stopped container: %s", id,
				    err);
	}
	return 0;
}

int shim_cmd_checkpoint(int argc, char **argv, const struct shim_globals *g)
{
	enum {
		O_IMAGE = 0x100,
		O_WORK,
		O_PARENT,
		O_LEAVE,
		O_TCP,
		O_EXTUNIX,
		O_SHELL,
		O_LOCKS,
		O_CGMODE,
		O_SNAPSHOT,
		O_EMPTYNS,
		O_PREDUMP,
		O_PAGESERVER,
		O_LAZY,
		O_AUTODEDUP,
		O_STATUSFD,
		O_CRIU_TIMEOUT,
	};
	static const struct option opts[] = {
		{"image-path", required_argument, NULL, O_IMAGE},
		{"work-path", required_argument, NULL, O_WORK},
		{"criu-timeout", required_argument, NULL, O_CRIU_TIMEOUT},
		{"parent-path", required_argument, NULL, O_PARENT},
		{"leave-running", no_argument, NULL, O_LEAVE},
		{"tcp-established", no_argument, NULL, O_TCP},
		{"ext-unix-sk", no_argument, NULL, O_EXTUNIX},
		{"shell-job", no_argument, NULL, O_SHELL},
		{"file-locks", no_argument, NULL, O_LOCKS},
		{"manage-cgroups-mode", required_argument, NULL, O_CGMODE},
		{"snapshot", required_argument, NULL, O_SNAPSHOT},
		{"empty-ns", required_argument, NULL, O_EMPTYNS},
		{"pre-dump", no_argument, NULL, O_PREDUMP},
		{"page-server", required_argument, NULL, O_PAGESERVER},
		{"lazy-pages", no_argument, NULL, O_LAZY},
		{"auto-dedup", no_argument, NULL, O_AUTODEDUP},
		{"status-fd", required_argument, NULL, O_STATUSFD},
		{}};
	struct checkpoint_args a = {
		.criu_path = g->criu_path,
		.criu_timeout_s = STOKE_CR_DEFAULT_DEADLINE_S,
	};
	int c;

	while ((c = getopt_long_only(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_IMAGE:
			a.image_path = optarg;
			break;
		case O_WORK:
			a.work_path = optarg;
			break;
		case O_SNAPSHOT:
			a.snapshot = optarg;
			break;
		case O_LEAVE:
			a.leave_running = true;
			break;
		case O_TCP:
			a.tcp_established = true;
			break;
		case O_EXTUNIX:
			a.ext_unix_sk = true;
			break;
		case O_SHELL:
			a.shell_job = true;
			break;
		case O_LOCKS:
			a.file_locks = true;
			break;
		case O_CGMODE:
			if (parse_cg_mode("checkpoint", optarg, &a.cg_mode) < 0)
				return 1;
			break;
		case O_CRIU_TIMEOUT:
			if (parse_criu_timeout("checkpoint", optarg, &a.criu_timeout_s) < 0)
				return 1;
			break;
		case O_AUTODEDUP:
		case O_STATUSFD:
			break; /* accepted: no effect on a single dump */
		case O_PARENT:
			return refuse_flag("checkpoint", "--parent-path (incremental dumps)");
		case O_EMPTYNS:
			return refuse_flag("checkpoint", "--empty-ns");
		case O_PREDUMP:
			return refuse_flag("checkpoint", "--pre-dump");
		case O_PAGESERVER:
			return refuse_flag("checkpoint", "--page-server");
		case O_LAZY:
			return refuse_flag("checkpoint", "--lazy-pages");
		default:
			log_error("checkpoint: bad arguments (see stoke --help)");
			return 1;
		}
	}
	if (optind != argc - 1) {
		log_error("checkpoint: expected one container id");
		return 1;
	}
	if (!!a.image_path == !!a.snapshot) {
		log_error("checkpoint: give exactly one of --image-path DIR and --snapshot FILE");
		return 1;
	}
	return do_checkpoint(g, argv[optind], &a);
}

/* --- restore -------------------------------------------------------------- */

struct restore_args {
	const char *id, *root, *bundle, *image_path, *snapshot, *work_path, *pid_file,
		*console_socket, *criu_path;
	unsigned int criu_timeout_s; /* the deadline of CRIU's work and the pages' */
	bool detach, stats, tcp_established, ext_unix_sk, shell_job, file_locks, no_pivot;
	bool on_create; /* restore-on-create: stopped, "created" */
	enum stoke_cr_cgroup_mode cg_mode;
};

struct restore_timings {
	bool streamed;
	uint64_t open_ns, unpack_ns, total_ns;
	bool late_pages;	/* pages images unpacked while CRIU started */
	uint64_t pages_ns;	/* the pages images' unpack (overlapped with CRIU) */
	uint64_t pages_wait_ns; /* how long CRIU waited for them */
	bool uffd_pages;	/* pages copied over userfaultfd (restore-pages.h) */
	struct rp_stats rp;
	struct snap_stats snap;
	struct stoke_cr_stats cr;
	bool from_snapshot;
};

/* Everything a restore creates, so a failure can take it all back. */
struct restore_ctx {
	char *state_dir;
	bool state_dir_made;
	struct shim_cgroup *cg;
	char *criu_root;
	bool criu_root_mounted;
	char *tmp; /* temporary images (snapshot mode) */
	pid_t pid;
};

/* Where this process sits in each of `cg`'s hierarchies (cgroup.procs
 * paths), so it can go back after running CRIU from inside `cg`. */
struct cg_origin {
	char *procs[32];
	size_t n;
};

static void cg_origin_done(struct cg_origin *o)
{
	for (size_t i = 0; i < o->n; i++)
		free(o->procs[i]);
	o->n = 0;
}

static int cg_origin_get(const struct shim_cgroup *cg, struct cg_origin *o)
{
	_cleanup_free_ char *self = NULL;
	size_t len = 0;
	int r = cs_read_file_at(AT_FDCWD, "/proc/self/cgroup", 1 << 20, &self, &len);
	if (r < 0)
		return r;
	for (size_t i = 0; i < shim_cgroup_n_dirs(cg) && o->n < ELEMENTSOF(o->procs); i++) {
		const char *mnt, *dir;
		int version;
		if (shim_cgroup_dir(cg, i, &mnt, &dir, &version) < 0)
			continue;
		const char *base = strrchr(mnt, '/');
		base = base ? base + 1 : mnt;
		_cleanup_free_ char *copy = strdup(self);
		if (!copy)
			return -ENOMEM;
		for (char *save, *l = strtok_r(copy, "\n", &save); l;
		     l = strtok_r(NULL, "\n", &save)) {
			char *c1 = strchr(l, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
			if (!c2)
				continue;
			*c2 = '\0';
			const char *ctrls = c1 + 1, *path = c2 + 1;
			if (strncmp(ctrls, "name=", 5) == 0)
				ctrls += 5;
			bool match = version == 2 ? !*ctrls : strcmp(ctrls, base) == 0;
			if (!match)
				continue;
			if (asprintf(&o->procs[o->n], "%s%s/cgroup.procs", mnt, path) < 0)
				return -ENOMEM;
			o->n++;
			break;
		}
	}
	return 0;
}

static void cg_origin_return(const struct cg_origin *o)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d", (int) getpid());
	for (size_t i = 0; i < o->n; i++) {
		_cleanup_close_ int fd = open(o->procs[i], O_WRONLY | O_CLOEXEC);
		if (fd >= 0)
			(void) !write(fd, buf, (size_t) n);
	}
}

static void restore_ctx_undo(struct restore_ctx *c)
{
	if (c->pid > 0) {
		_cleanup_free_ pid_t *tree = NULL;
		size_t n = 0;
		(void) kill(c->pid, SIGSTOP);
		if (stoke_cr_list_tree(c->pid, &tree, &n) == 0)
			for (size_t i = n; i-- > 0;)
				(void) kill(tree[i], SIGKILL);
		(void) kill(c->pid, SIGKILL);
		(void) waitpid(c->pid, NULL, 0);
	}
	if (c->cg) {
		(void) shim_cgroup_kill_all(c->cg, SIGKILL);
		(void) shim_cgroup_destroy(c->cg);
	}
	if (c->criu_root_mounted)
		(void) umount2(c->criu_root, MNT_DETACH);
	if (c->criu_root)
		(void) rmdir(c->criu_root);
	if (c->state_dir_made)
		rm_rf(c->state_dir);
}

static void restore_ctx_done(struct restore_ctx *c)
{
	shim_cgroup_free(c->cg);
	free(c->state_dir);
	free(c->criu_root);
	if (c->tmp)
		rm_rf(c->tmp);
	free(c->tmp);
}

static int write_pid_file(const char *path, pid_t pid)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d", (int) pid);
	return cs_write_file_atomic(AT_FDCWD, path, buf, (size_t) n, 0644);
}

static void rfc3339_now(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%09ldZ", ts.tv_nsec);
}

/* Stdio pipes recorded at checkpoint are replaced by ours (containerd's). */
static int stdio_inherit(json_object *meta, struct stoke_cr_inherit_fd *v, size_t *n,
			 char keys[3][64])
{
	json_object *d;
	*n = 0;
	if (cs_json_get_array(meta, "descriptors", &d) < 0)
		return 0;
	for (int fd = 0; fd < 3 && (size_t) fd < json_object_array_length(d); fd++) {
		const char *k = json_object_get_string(json_object_array_get_idx(d, (size_t) fd));
		struct stat st;
		if (!k || !*k || fstat(fd, &st) < 0)
			continue;
		/* A pipe is replaced by a pipe only; an external file by whatever we have. */
		if (strncmp(k, "pipe:[", 6) == 0 && !S_ISFIFO(st.st_mode))
			continue;
		snprintf(keys[*n], 64, "%s", k);
		v[*n] = (struct stoke_cr_inherit_fd){fd, keys[*n]};
		(*n)++;
	}
	return 0;
}

/* Let a tree restored stopped run (SIGCONT to each of its processes). */
static void continue_tree(pid_t init)
{
	_cleanup_free_ pid_t *tree = NULL;
	size_t n = 0;
	if (stoke_cr_list_tree(init, &tree, &n) == 0)
		for (size_t i = 0; i < n; i++)
			(void) kill(tree[i], SIGCONT);
}

/* A helper waits on the exec fifo in place of an init blocked before execve:
 * `stoke start` writes it, the helper continues the stopped tree. It also
 * ends when the init dies (delete before start). */
static int spawn_start_helper(const char *fifo, pid_t init)
{
	int fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int pidfd = (int) syscall(SYS_pidfd_open, init, 0);
	if (pidfd < 0) {
		close(fd);
		return -errno;
	}
	pid_t h = fork();
	if (h < 0) {
		close(fd);
		close(pidfd);
		return -errno;
	}
	if (h == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0)
			dup2(null, 0), dup2(null, 1), dup2(null, 2);
		struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
				      {.fd = pidfd, .events = POLLIN}};
		while (poll(p, 2, -1) < 0 && errno == EINTR)
			;
		char b;
		if ((p[0].revents & POLLIN) && read(fd, &b, 1) == 1)
			continue_tree(init);
		_exit(0);
	}
	close(fd);
	close(pidfd);
	return 0;
}

/* Whether most of `path` is in the page cache (mincore over a mapping). */
static bool mostly_cached(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0)
		return false;
	size_t page = (size_t) sysconf(_SC_PAGESIZE), len = (size_t) st.st_size;
	size_t n = (len + page - 1) / page, resident = 0;
	void *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return false;
	_cleanup_free_ unsigned char *vec = malloc(n);
	if (vec && mincore(map, len, vec) == 0)
		for (size_t i = 0; i < n; i++)
			resident += vec[i] & 1;
	munmap(map, len);
	return resident * 2 > n;
}

/* Stream mode: only stoke's own records go to the directory (the GPU
 * record is read before CRIU runs); CRIU's images come through the socket. */
static int stream_prepare(struct snap_reader *rd, const char *dir)
{
	size_t idx;
	if (mkdir(dir, 0700) < 0)
		return -errno;
	if (snap_reader_find(rd, STOKE_GPU_RECORD_NAME, &idx) < 0)
		return 0;
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	_cleanup_close_ int fd =
		openat(dfd, STOKE_GPU_RECORD_NAME, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	return snap_reader_extract_fd(rd, idx, fd);
}

/* --- Pages images unpacked while CRIU starts ------------------------------ */

/* CRIU reads the memory pages (pages-N.img, nearly all of a snapshot) only
 * after it has made the namespaces and mounts and forked the tree (~0.15 s
 * here, plus stoke's cgroup and mounts before it): the other images are
 * unpacked first, the pages images by a child process while all that runs,
 * and CRIU waits for that child at its post-setup-namespaces point
 * (stoke_cr_options.before_pages). A child, not a thread: the restoring
 * process moves into the container's cgroup, and the tmpfs pages of the
 * images must not be charged to the container's memory. */
struct late_result { /* shared with the child (MAP_SHARED) */
	int result;
	uint64_t ns;
	struct snap_stats stats;
	char why[256];
};

struct late_unpack {
	const char *snapshot;
	unsigned reader_flags;
	size_t n;
	size_t *idx; /* entries written by the child */
	int *fds;    /* their files in the images directory */
	pid_t pid;
	bool joined;
	uint64_t wait_ns;
	struct late_result *res;
};

static bool is_pages_image(const char *name)
{
	return strncmp(name, "pages-", 6) == 0;
}

/* Write the pages images into their files (in the child, or now when there
 * is no CRIU hook to wait at). */
static int unpack_pages(struct snap_reader *rd, struct late_unpack *l)
{
	for (size_t i = 0; i < l->n; i++) {
		int r = snap_reader_extract_fd(rd, l->idx[i], l->fds[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

_Noreturn static void late_unpack_child(struct late_unpack *l)
{
	struct snap_reader_options ro = {.flags = l->reader_flags};
	struct snap_reader *rd = NULL;
	uint64_t t0 = cs_monotonic_ns();

	int r = snap_reader_open(l->snapshot, &ro, &rd);
	if (r >= 0)
		r = unpack_pages(rd, l);
	if (r < 0)
		snprintf(l->res->why, sizeof(l->res->why), "%s", snap_last_error());
	if (rd)
		snap_reader_get_stats(rd, &l->res->stats);
	l->res->ns = cs_monotonic_ns() - t0;
	l->res->result = r;
	_exit(r < 0 ? 1 : 0);
}

/* Wait for the child. @return : 0, or the -errno it failed with. */
static int late_unpack_join(struct late_unpack *l)
{
	if (l->pid > 0 && !l->joined) {
		uint64_t t0 = cs_monotonic_ns();
		int status = 0;
		while (waitpid(l->pid, &status, 0) < 0 && errno == EINTR)
			;
		l->wait_ns = cs_monotonic_ns() - t0;
		l->joined = true;
		if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0) && l->res->result >= 0) {
			l->res->result = -EIO;
			snprintf(l->res->why, sizeof(l->res->why), "the unpacking process died");
		}
	}
	return l->pid > 0 ? l->res->result : 0;
}

static int late_unpack_before_pages(void *userdata)
{
	return late_unpack_join(userdata);
}

static void late_unpack_done(struct late_unpack *l)
{
	(void) late_unpack_join(l);
	for (size_t i = 0; l->fds && i < l->n; i++)
		close(l->fds[i]);
	free(l->fds);
	free(l->idx);
	if (l->res)
		munmap(l->res, sizeof(*l->res));
}

/* Whether the snapshot is a flat directory of files (CRIU's images always
 * are) with at least one pages image: then it can be unpacked in two parts. */
static bool can_unpack_late(struct snap_reader *rd)
{
	size_t n = snap_reader_entry_count(rd), pages = 0;
	for (size_t i = 0; i < n; i++) {
		struct snap_entry_info e;
		if (snap_reader_entry(rd, i, &e) < 0 || e.kind != SNAP_KIND_FILE ||
		    strchr(e.name, '/') || !*e.name || !strcmp(e.name, ".") ||
		    !strcmp(e.name, ".."))
			return false;
		pages += is_pages_image(e.name);
	}
	return pages > 0;
}

/* Unpack every image but the pages images into `dir` (created); those are
 * created empty, their files kept open in `l`. */
static int unpack_except_pages(struct snap_reader *rd, const char *dir, struct late_unpack *l)
{
	size_t n = snap_reader_entry_count(rd);
	if (mkdir(dir, 0700) < 0)
		return -errno;
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	l->idx = calloc(n, sizeof(*l->idx));
	l->fds = calloc(n, sizeof(*l->fds));
	if (!l->idx || !l->fds)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct snap_entry_info e;
		int r = snap_reader_entry(rd, i, &e);
		if (r < 0)
			return r;
		int fd = openat(dfd, e.name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
				e.mode & 07777);
		if (fd < 0)
			return -errno;
		if (is_pages_image(e.name)) {
			l->idx[l->n] = i;
			l->fds[l->n++] = fd;
			continue;
		}
		r = snap_reader_extract_fd(rd, i, fd);
		close(fd);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Start the child that writes the pages images into their files. */
static int late_unpack_start(struct late_unpack *l)
{
	void *res = mmap(NULL, sizeof(*l->res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			 -1, 0);
	if (res == MAP_FAILED)
		return -ENOMEM;
	l->res = res;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		late_unpack_child(l);
	l->pid = pid;
	return 0;
}

/* How the pages reach the process: over userfaultfd straight from the
 * snapshot (restore-pages.h; the default where it applies), or unpacked
 * into tmpfs for CRIU (STOKE_RESTORE_PAGES=tmpfs, and every tree it does
 * not apply to: see rp_prepare()). */
static bool want_uffd_pages(void)
{
	const char *m = secure_getenv("STOKE_RESTORE_PAGES");
	return !(m && !strcmp(m, "tmpfs"));
}

/* Unpack the snapshot's images for CRIU with the pages served over
 * userfaultfd (*ret_pages set), or else unpacked while CRIU starts (late)
 * or before it. */
static int unpack_for_criu(struct snap_reader *rd, const char *snapshot, const char *images,
			   const char *work, bool late_ok, struct late_unpack *late,
			   struct restore_timings *t, struct restore_pages **ret_pages, char *err,
			   size_t errlen)
{
	int r = unpack_except_pages(rd, images, late);
	if (r < 0)
		return cs_errf(r, err, errlen, "snapshot %s: %s", snapshot, snap_last_error());
	if (want_uffd_pages() && stoke_cr_images_need_gpu(images) == 0) {
		r = rp_prepare(rd, snapshot, late->reader_flags, images, work, ret_pages, err,
			       errlen);
		if (r < 0)
			return r;
		if (r > 0) {
			t->uffd_pages = true;
			return 0;
		}
	}
	t->late_pages = late_ok;
	r = late_ok ? late_unpack_start(late) : unpack_pages(rd, late);
	if (r < 0)
		return cs_errf(r, err, errlen, "snapshot %s: %s", snapshot, snap_last_error());
	return 0;
}

/* A restore killed by its deadline: say which phase, and keep what the
 * phase itself said (CRIU's log lines, the page server's error) after it,
 * unless that already starts with the deadline's own words. */
static void explain_restore_timeout(char *err, size_t errlen)
{
	char when[160], detail[1024];

	stoke_cr_deadline_describe(when, sizeof(when));
	if (strstr(err, when))
		return;
	snprintf(detail, sizeof(detail), "%s", err[0] ? err : stoke_cr_error());
	if (strstr(detail, when))
		snprintf(err, errlen, "%s", detail);
	else if (detail[0])
		snprintf(err, errlen, "%s; CRIU and the page server were killed (%s)", when,
			 detail);
	else
		snprintf(err, errlen, "%s; CRIU and the page server were killed", when);
}

static int do_restore(const struct restore_args *a, const struct shim_config *cfg, pid_t *ret_pid,
		      struct restore_timings *t, char *err, size_t errlen)
{
	_cleanup_(restore_ctx_done) struct restore_ctx c = {};
	_cleanup_(snap_reader_freep) struct snap_reader *rd = NULL;
	_cleanup_(json_putp) json_object *meta = NULL;
	_cleanup_(ext_list_done) struct ext_list ext = {};
	_cleanup_free_ char *images = NULL, *work = NULL;
	_cleanup_close_ int netns_fd = -EBADF;
	_cleanup_(late_unpack_done) struct late_unpack late = {.snapshot = a->snapshot};
	_cleanup_(rp_freep) struct restore_pages *pages = NULL;
	struct stoke_cr_inherit_fd inherit[4];
	char keys[3][64];
	size_t n_inherit = 0;
	uint64_t t0 = cs_monotonic_ns(), t1;
	bool deadline_armed = false;
	int r;

	if (!shim_state_id_valid(a->id))
		return cs_errf(-EINVAL, err, errlen, "invalid container id \"%s\"", a->id);
	if (cfg->has_process && cfg->process.terminal)
		return cs_errf(-EOPNOTSUPP, err, errlen,
			       "restoring a container with process.terminal is not supported");

	/* 1. The checkpoint, checked against the bundle before anything exists. */
	if (a->snapshot) {
		t->from_snapshot = true;
		/* Buffered reads: one node restores many containers from one
		 * snapshot, and O_DIRECT would read it from the disk every time
		 * (and never leave it in the page cache). Set
		 * STOKE_RESTORE_DIRECT=1 for O_DIRECT when the file is not
		 * mostly cached already. */
		const char *direct = secure_getenv("STOKE_RESTORE_DIRECT");
		bool use_direct = direct && !strcmp(direct, "1") && !mostly_cached(a->snapshot);
		struct snap_reader_options ropts = {
			.flags = use_direct ? 0 : SNAP_READER_NO_DIRECT,
		};
		late.reader_flags = ropts.flags;
		r = snap_reader_open(a->snapshot, &ropts, &rd);
		if (r < 0)
			return cs_errf(r, err, errlen, "snapshot %s: %s", a->snapshot,
				       snap_last_error());
		r = read_meta_snapshot(rd, a->snapshot, &meta, err, errlen);
		if (r < 0)
			return r;
		r = check_meta(meta, cfg, a->snapshot, err, errlen);
		if (r < 0)
			return r;
	} else {
		r = read_meta_file(a->image_path, &meta, err, errlen);
		if (r < 0)
			return r;
		r = check_meta(meta, cfg, a->image_path, err, errlen);
		if (r < 0)
			return r;
		r = stoke_cr_images_need_gpu(a->image_path);
		if (r < 0)
			return cs_errf(r, err, errlen, "%s: %s", a->image_path, stoke_cr_error());
	}
	t->open_ns = cs_monotonic_ns() - t0;

	/* 2. The state directory: claims the id. */
	r = shim_state_dir(a->root, a->id, &c.state_dir);
	if (r < 0)
		return cs_errf(r, err, errlen, "invalid container id \"%s\"", a->id);
	r = cs_mkdir_p(a->root, 0711);
	if (r < 0)
		return cs_errf(r, err, errlen, "create the state directory %s", a->root);
	if (mkdir(c.state_dir, 0711) < 0)
		return cs_errf(errno == EEXIST ? -EEXIST : -errno, err, errlen,
			       errno == EEXIST ? "container \"%s\" already exists"
					       : "create the state of %s",
			       a->id);
	c.state_dir_made = true;

	/* 3. Images: the directory, or the snapshot unpacked into tmpfs (parallel
	 * decompression; CRIU then reads memory-speed files), or streamed to
	 * CRIU straight from the snapshot (STOKE_RESTORE_IMAGES=stream). */
	const char *mode = secure_getenv("STOKE_RESTORE_IMAGES");
	bool stream = a->snapshot && mode && strcmp(mode, "stream") == 0;
	t->streamed = stream;
	if (a->snapshot) {
		/* tmpfs: the images are read once, at memory speed, then removed. */
		const char *base = secure_getenv("STOKE_RESTORE_TMPDIR");
		if (!base || !*base)
			base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
		if (asprintf(&c.tmp, "%s/stoke-restore-XXXXXX", base) < 0 || !mkdtemp(c.tmp)) {
			r = -errno;
			goto undo;
		}
		if (asprintf(&images, "%s/images", c.tmp) < 0 ||
		    (a->work_path ? !(work = strdup(a->work_path))
				  : asprintf(&work, "%s/work", c.tmp) < 0)) {
			r = -ENOMEM;
			goto undo;
		}
		/* The pages images are unpacked while CRIU starts only where CRIU
		 * stops at post-setup-namespaces: a tree with a mount namespace. */
		const char *overlap = secure_getenv("STOKE_RESTORE_OVERLAP");
		bool late_ok =
			cfg->ns[SHIM_NS_MOUNT].enabled && !(overlap && !strcmp(overlap, "0"));
		bool by_parts = !stream && can_unpack_late(rd);
		t1 = cs_monotonic_ns();
		if (by_parts)
			r = unpack_for_criu(rd, a->snapshot, images, work, late_ok, &late, t,
					    &pages, err, errlen);
		else
			r = stream ? stream_prepare(rd, images) : snap_reader_unpack(rd, images, 0);
		t->unpack_ns = cs_monotonic_ns() - t1;
		snap_reader_get_stats(rd, &t->snap);
		if (r < 0) {
			if (!by_parts)
				cs_errf(r, err, errlen, "snapshot %s: %s", a->snapshot,
					snap_last_error());
			goto undo;
		}
	} else {
		images = strdup(a->image_path);
		work = strdup(a->work_path ? a->work_path : c.state_dir);
		if (!images || !work) {
			r = -ENOMEM;
			goto undo;
		}
	}

	/* 4. The cgroup, and what CRIU binds into the new mount namespace. */
	r = shim_cgroup_create(cfg->cgroups_path, a->id, cfg->resources, &c.cg);
	if (r < 0) {
		cs_errf(r, err, errlen, "create the cgroup: %s", shim_cgroup_last_error());
		goto undo;
	}
	r = ext_build(&ext, cfg, c.cg, true);
	if (r < 0)
		goto undo;
	if (asprintf(&c.criu_root, "%s/criu-root", c.state_dir) < 0) {
		r = -ENOMEM;
		goto undo;
	}
	if (mkdir(c.criu_root, 0755) < 0) {
		r = cs_errf(-errno, err, errlen, "mkdir %s", c.criu_root);
		goto undo;
	}
	/* CRIU wants the root as a mount point of its own. */
	if (mount(cfg->rootfs, c.criu_root, NULL, MS_BIND | MS_REC, NULL) < 0) {
		r = cs_errf(-errno, err, errlen, "bind %s on %s", cfg->rootfs, c.criu_root);
		goto undo;
	}
	c.criu_root_mounted = true;
	(void) mount(NULL, c.criu_root, NULL, MS_PRIVATE | MS_REC, NULL);

	stdio_inherit(meta, inherit, &n_inherit, keys);
	if (cfg->ns[SHIM_NS_NET].enabled && cfg->ns[SHIM_NS_NET].path) {
		netns_fd = open(cfg->ns[SHIM_NS_NET].path, O_RDONLY | O_CLOEXEC);
		if (netns_fd < 0) {
			r = cs_errf(-errno, err, errlen, "open the network namespace %s",
				    cfg->ns[SHIM_NS_NET].path);
			goto undo;
		}
		inherit[n_inherit++] = (struct stoke_cr_inherit_fd){netns_fd, NETNS_KEY};
	}

	/* 5. CRIU and the GPU. */
	struct stoke_cr_options o = {
		.images_dir = images,
		.work_dir = work,
		.root = c.criu_root,
		.ext_mounts = ext.v,
		.n_ext_mounts = ext.n,
		.inherit_fds = inherit,
		.n_inherit_fds = n_inherit,
		.tcp_established = a->tcp_established,
		.ext_unix_sk = a->ext_unix_sk,
		.shell_job = a->shell_job,
		.file_locks = a->file_locks,
		.cgroup_mode = a->cg_mode ? a->cg_mode : STOKE_CR_CG_IGNORE,
		.cgroup_root = a->cg_mode ? shim_cgroup_path(c.cg) : NULL,
		/* The new network namespace has nothing to protect unless TCP
		 * connections come back; locking it costs ~0.3 s of iptables. */
		.skip_network_lock = !a->tcp_established,
		/* Always stopped: the tree runs only once its state is saved,
		 * so a `delete` or `kill` right after its first answer finds
		 * the container (restore-on-create: only at `stoke start`). */
		.leave_stopped = true,
		.lazy_pages = t->uffd_pages,
		.before_pages = t->late_pages ? late_unpack_before_pages : NULL,
		.before_pages_data = &late,
		.criu_path = a->criu_path,
	};
	/* From here until every page is in, everything runs under the
	 * deadline: the page server, CRIU, the streamer, the late unpack. */
	r = stoke_cr_deadline_arm(a->criu_timeout_s, "restore", NULL);
	if (r < 0) {
		cs_errf(r, err, errlen, "cannot start the restore's deadline");
		goto undo;
	}
	deadline_armed = true;
	stoke_cr_deadline_phase("start the page server");
	/* As runc: CRIU runs inside the new cgroup, so the restored tree is
	 * born there and its memory is charged to it from the first page.
	 * With the default mode CRIU then leaves cgroups alone; an explicit
	 * --manage-cgroups-mode hands them to CRIU (under the new cgroup). */
	if (pages) {
		/* Forked before entering the container's cgroup. */
		r = rp_start(pages);
		if (r < 0) {
			cs_errf(r, err, errlen, "start the page server");
			goto undo;
		}
	}
	struct cg_origin origin = {};
	r = cg_origin_get(c.cg, &origin);
	if (r >= 0)
		r = shim_cgroup_enter(c.cg, getpid());
	if (r < 0) {
		cg_origin_done(&origin);
		cs_errf(r, err, errlen, "enter the cgroup %s", shim_cgroup_path(c.cg));
		goto undo;
	}
	struct stoke_cr_streamer *streamer = NULL;
	if (stream) {
		o.stream = true;
		r = stoke_cr_streamer_start(a->snapshot, images, &streamer);
		if (r < 0) {
			cg_origin_return(&origin);
			cg_origin_done(&origin);
			cs_errf(r, err, errlen, "%s", stoke_cr_error());
			goto undo;
		}
	}
	stoke_cr_deadline_phase("criu restore");
	r = stoke_cr_restore(&o, &t->cr);
	if (pages && r >= 0) {
		/* The tree is stopped: it runs once every page is in. */
		stoke_cr_deadline_phase("copy the memory pages");
		int q = rp_finish(pages, &t->rp, err, errlen);
		if (q < 0) {
			c.pid = r;
			r = q;
			cg_origin_return(&origin);
			cg_origin_done(&origin);
			goto undo;
		}
	}
	if (stream) {
		struct snap_stats ss = {};
		stoke_cr_deadline_phase("stream the images");
		int q = stoke_cr_streamer_stop(streamer, &ss);
		t->snap.bytes_read += ss.bytes_read;
		t->snap.bytes_decompressed += ss.bytes_decompressed;
		t->snap.read_ns += ss.read_ns;
		t->snap.decompress_ns += ss.decompress_ns;
		if (r >= 0 && q < 0) {
			c.pid = r;
			r = q;
			cs_errf(r, err, errlen, "streaming the snapshot's images: %s",
				strerror(-q));
			cg_origin_return(&origin);
			cg_origin_done(&origin);
			goto undo;
		}
	}
	cg_origin_return(&origin);
	cg_origin_done(&origin);
	if (t->late_pages) {
		/* Normally joined at CRIU's hook already. */
		stoke_cr_deadline_phase("unpack the memory pages");
		int q = late_unpack_join(&late);
		t->pages_ns = late.res->ns;
		t->pages_wait_ns = late.wait_ns;
		t->snap.bytes_read += late.res->stats.bytes_read;
		t->snap.bytes_decompressed += late.res->stats.bytes_decompressed;
		t->snap.read_ns += late.res->stats.read_ns;
		t->snap.decompress_ns += late.res->stats.decompress_ns;
		if (q < 0) {
			if (r > 0)
				c.pid = r;
			r = cs_errf(q, err, errlen, "snapshot %s: %s", a->snapshot, late.res->why);
			goto undo;
		}
	}
	if (r < 0) {
		cs_errf(r, err, errlen, "%s%s", stoke_cr_error(),
			a->snapshot && !a->work_path
				? " (removed with the unpacked images; --work-path DIR keeps it)"
				: "");
		goto undo;
	}
	if (stoke_cr_deadline_expired()) {
		c.pid = r;
		r = -ETIMEDOUT;
		goto undo;
	}
	stoke_cr_deadline_disarm();
	deadline_armed = false;
	c.pid = r;
	/* The restored mount namespace holds its own references. */
	(void) umount2(c.criu_root, MNT_DETACH);
	c.criu_root_mounted = false;
	(void) rmdir(c.criu_root);
	free(c.criu_root);
	c.criu_root = NULL;

	/* 6. State (and, for create, the fifo `stoke start` writes). */
	{
		char created[64];
		json_object *cgj = NULL;
		uint64_t start_time = 0;
		rfc3339_now(created, sizeof(created));
		(void) shim_pid_start_time(c.pid, &start_time);
		r = shim_cgroup_to_json(c.cg, &cgj);
		if (r < 0)
			goto undo;
		struct shim_state s = {
			.id = (char *) a->id,
			.bundle = cfg->bundle,
			.rootfs = cfg->rootfs,
			.pid = c.pid,
			.pid_start_time = start_time,
			.created = created,
			.owner = (char *) "",
			.started = !a->on_create,
			.annotations = cfg->annotations,
			.cgroup = cgj,
			.config = cfg->json,
		};
		r = shim_state_save(a->root, &s);
		json_object_put(cgj);
		if (r < 0) {
			cs_errf(r, err, errlen, "save the state");
			goto undo;
		}
	}
	if (a->on_create) {
		_cleanup_free_ char *fifo = NULL;
		r = cs_path_join(c.state_dir, "exec.fifo", &fifo);
		if (r >= 0 && mkfifo(fifo, 0600) < 0)
			r = -errno;
		if (r >= 0)
			r = spawn_start_helper(fifo, c.pid);
		if (r < 0) {
			cs_errf(r, err, errlen, "create the start fifo");
			goto undo;
		}
	}
	if (a->pid_file) {
		r = write_pid_file(a->pid_file, c.pid);
		if (r < 0) {
			cs_errf(r, err, errlen, "write the pid file %s", a->pid_file);
			goto undo;
		}
	}
	if (!a->on_create)
		continue_tree(c.pid);
	t->total_ns = cs_monotonic_ns() - t0;
	*ret_pid = c.pid;
	return 0;

undo:
	if (deadline_armed && stoke_cr_deadline_expired())
		explain_restore_timeout(err, errlen);
	if (!err[0])
		cs_errf(r, err, errlen, "%s", strerror(-r));
	stoke_cr_deadline_disarm();
	(void) late_unpack_join(&late); /* before its files are removed */
	restore_ctx_undo(&c);
	return r;
}

static void report_timings(const struct restore_args *a, const struct restore_timings *t)
{
	/* read: waiting for the file; decompress: CPU time of all threads.
	 * To the --log file only: under containerd (runc's shim, ours, or
	 * restore-on-create) our stderr is the container's own stderr. */
	cs_log_set_stderr(false);
	log_info("restore %s: total %.1f ms = open+check %.1f, unpack %.1f (read %.1f, "
		 "decompress %.1f cpu), criu %.1f, gpu %.1f; %u process(es), %u with CUDA",
		 a->id, cs_ns_to_ms(t->total_ns), cs_ns_to_ms(t->open_ns),
		 cs_ns_to_ms(t->unpack_ns), cs_ns_to_ms(t->snap.read_ns),
		 cs_ns_to_ms(t->snap.decompress_ns), cs_ns_to_ms(t->cr.criu_ns),
		 cs_ns_to_ms(t->cr.gpu_ns), t->cr.n_processes, t->cr.n_gpu_processes);
	if (t->uffd_pages)
		log_info("restore %s: pages over userfaultfd: %.1f MB copied in %.1f ms after "
			 "CRIU (waited %.1f), %.1f MB left to CRIU, %u fault(s) served",
			 a->id, (double) t->rp.lazy_bytes / 1e6, cs_ns_to_ms(t->rp.copy_ns),
			 cs_ns_to_ms(t->rp.wait_ns), (double) t->rp.eager_bytes / 1e6,
			 t->rp.faults);
	cs_log_set_stderr(true);
	if (!a->stats)
		return;
	printf("{\"id\":\"%s\",\"images\":\"%s\",\"source\":\"%s\",\"total_ms\":%.3f,\"open_ms\":%."
	       "3f,"
	       "\"unpack_ms\":%.3f,\"read_ms\":%.3f,\"decompress_ms\":%.3f,\"criu_ms\":%.3f,"
	       "\"gpu_ms\":%.3f,\"pages_unpack_ms\":%.3f,\"pages_wait_ms\":%.3f,"
	       "\"pages\":\"%s\",\"pages_copy_ms\":%.3f,\"pages_lazy_bytes\":%llu,"
	       "\"bytes_read\":%llu,\"bytes_decompressed\":%llu,"
	       "\"processes\":%u,\"gpu_processes\":%u}\n",
	       a->id,
	       t->streamed	  ? "streamed"
	       : t->from_snapshot ? "unpacked"
				  : "directory",
	       t->from_snapshot ? "snapshot" : "images", cs_ns_to_ms(t->total_ns),
	       cs_ns_to_ms(t->open_ns), cs_ns_to_ms(t->unpack_ns), cs_ns_to_ms(t->snap.read_ns),
	       cs_ns_to_ms(t->snap.decompress_ns), cs_ns_to_ms(t->cr.criu_ns),
	       cs_ns_to_ms(t->cr.gpu_ns), cs_ns_to_ms(t->pages_ns), cs_ns_to_ms(t->pages_wait_ns),
	       t->uffd_pages	  ? "uffd"
	       : t->streamed	  ? "streamed"
	       : t->from_snapshot ? "tmpfs"
				  : "directory",
	       cs_ns_to_ms(t->rp.copy_ns), (unsigned long long) t->rp.lazy_bytes,
	       (unsigned long long) t->snap.bytes_read,
	       (unsigned long long) t->snap.bytes_decompressed, t->cr.n_processes,
	       t->cr.n_gpu_processes);
	fflush(stdout);
}

const char *shim_cr_snapshot_of(const struct shim_config *cfg)
{
	const char *s = NULL, *type = NULL;
	if (!cfg->annotations ||
	    cs_json_get_string(cfg->annotations, SHIM_SNAPSHOT_ANNOTATION, &s) < 0)
		return NULL;
	/* containerd's CRI copies pod annotations onto the pod's sandbox
	 * ("pause") container too: that one always starts cold. */
	if (cs_json_get_string(cfg->annotations, "io.kubernetes.cri.container-type", &type) == 0 &&
	    strcmp(type, "sandbox") == 0)
		return NULL;
	return s && *s ? s : NULL;
}

int shim_cr_create_restore(const struct shim_config *cfg, const struct shim_create_opts *o,
			   pid_t *ret_pid, char *err, size_t errlen)
{
	struct restore_timings t = {};
	struct restore_args a = {
		.id = o->id,
		.root = o->root,
		.bundle = cfg->bundle,
		.snapshot = shim_cr_snapshot_of(cfg),
		.pid_file = o->pid_file,
		.console_socket = o->console_socket,
		.no_pivot = o->no_pivot,
		.on_create = true,
		.detach = true,
		.criu_path = o->criu_path,
		.criu_timeout_s = STOKE_CR_DEFAULT_DEADLINE_S,
	};
	if (!a.snapshot)
		return cs_errf(-EINVAL, err, errlen, "no %s annotation", SHIM_SNAPSHOT_ANNOTATION);
	const char *timeout = NULL;
	if (cfg->annotations &&
	    cs_json_get_string(cfg->annotations, SHIM_CRIU_TIMEOUT_ANNOTATION, &timeout) == 0 &&
	    parse_criu_timeout("create", timeout, &a.criu_timeout_s) < 0)
		return cs_errf(-EINVAL, err, errlen,
			       "annotation %s=\"%s\": expected whole seconds from 1 to 86400",
			       SHIM_CRIU_TIMEOUT_ANNOTATION, timeout);
	int r = do_restore(&a, cfg, ret_pid, &t, err, errlen);
	if (r == 0)
		report_timings(&a, &t);
	return r;
}

int shim_cmd_restore(int argc, char **argv, const struct shim_globals *g)
{
	enum {
		O_IMAGE = 0x100,
		O_WORK,
		O_BUNDLE,
		O_DETACH,
		O_PIDFILE,
		O_CONSOLE,
		O_STATS,
		O_TCP,
		O_EXTUNIX,
		O_SHELL,
		O_LOCKS,
		O_CGMODE,
		O_SNAPSHOT,
		O_NOSUBREAPER,
		O_NOPIVOT,
		O_PARENT,
		O_EMPTYNS,
		O_LAZY,
		O_AUTODEDUP,
		O_STATUSFD,
		O_CRIU_TIMEOUT,
	};
	static const struct option opts[] = {
		{"image-path", required_argument, NULL, O_IMAGE},
		{"work-path", required_argument, NULL, O_WORK},
		{"criu-timeout", required_argument, NULL, O_CRIU_TIMEOUT},
		{"bundle", required_argument, NULL, O_BUNDLE},
		{"detach", no_argument, NULL, O_DETACH},
		{"pid-file", required_argument, NULL, O_PIDFILE},
		{"console-socket", required_argument, NULL, O_CONSOLE},
		{"stats", no_argument, NULL, O_STATS},
		{"tcp-established", no_argument, NULL, O_TCP},
		{"ext-unix-sk", no_argument, NULL, O_EXTUNIX},
		{"shell-job", no_argument, NULL, O_SHELL},
		{"file-locks", no_argument, NULL, O_LOCKS},
		{"manage-cgroups-mode", required_argument, NULL, O_CGMODE},
		{"snapshot", required_argument, NULL, O_SNAPSHOT},
		{"no-subreaper", no_argument, NULL, O_NOSUBREAPER},
		{"no-pivot", no_argument, NULL, O_NOPIVOT},
		{"parent-path", required_argument, NULL, O_PARENT},
		{"empty-ns", required_argument, NULL, O_EMPTYNS},
		{"lazy-pages", no_argument, NULL, O_LAZY},
		{"auto-dedup", no_argument, NULL, O_AUTODEDUP},
		{"status-fd", required_argument, NULL, O_STATUSFD},
		{}};
	struct restore_args a = {
		.root = g->root,
		.criu_path = g->criu_path,
		.criu_timeout_s = STOKE_CR_DEFAULT_DEADLINE_S,
	};
	int c;

	while ((c = getopt_long_only(argc, argv, "b:d", opts, NULL)) != -1) {
		switch (c) {
		case O_IMAGE:
			a.image_path = optarg;
			break;
		case O_WORK:
			a.work_path = optarg;
			break;
		case 'b':
		case O_BUNDLE:
			a.bundle = optarg;
			break;
		case 'd':
		case O_DETACH:
			a.detach = true;
			break;
		case O_PIDFILE:
			a.pid_file = optarg;
			break;
		case O_CONSOLE:
			a.console_socket = optarg;
			break;
		case O_STATS:
			a.stats = true;
			break;
		case O_TCP:
			a.tcp_established = true;
			break;
		case O_EXTUNIX:
			a.ext_unix_sk = true;
			break;
		case O_SHELL:
			a.shell_job = true;
			break;
		case O_LOCKS:
			a.file_locks = true;
			break;
		case O_CGMODE:
			if (parse_cg_mode("restore", optarg, &a.cg_mode) < 0)
				return 1;
			break;
		case O_CRIU_TIMEOUT:
			if (parse_criu_timeout("restore", optarg, &a.criu_timeout_s) < 0)
				return 1;
			break;
		case O_SNAPSHOT:
			a.snapshot = optarg;
			break;
		case O_NOPIVOT:
			a.no_pivot = true;
			break;
		case O_NOSUBREAPER:
		case O_AUTODEDUP:
		case O_STATUSFD:
			break;
		case O_PARENT:
			return refuse_flag("restore", "--parent-path");
		case O_EMPTYNS:
			return refuse_flag("restore", "--empty-ns");
		case O_LAZY:
			return refuse_flag("restore", "--lazy-pages");
		default:
			log_error("restore: bad arguments (see stoke --help)");
			return 1;
		}
	}
	if (optind != argc - 1) {
		log_error("restore: expected one container id");
		return 1;
	}
	a.id = argv[optind];
	if (!!a.image_path == !!a.snapshot) {
		log_error("restore %s: give exactly one of --image-path DIR and --snapshot FILE",
			  a.id);
		return 1;
	}

	_cleanup_free_ char *cwd = NULL;
	if (!a.bundle) {
		cwd = getcwd(NULL, 0);
		if (!cwd)
			return log_error_errno(-errno, "restore %s: getcwd: %m", a.id), 1;
		a.bundle = cwd;
	}
	_cleanup_(shim_config_freep) struct shim_config *cfg = NULL;
	char err[1024] = "";
	int r = shim_config_load(a.bundle, &cfg, err, sizeof(err));
	if (r < 0)
		return log_error_errno(r, "restore %s: bundle %s: %s", a.id, a.bundle, err), 1;

	struct restore_timings t = {};
	pid_t pid = 0;
	r = do_restore(&a, cfg, &pid, &t, err, sizeof(err));
	if (r < 0)
		return log_error_errno(r, "restore %s: %s", a.id, err), 1;
	report_timings(&a, &t);
	if (a.detach)
		return 0;

	/* Foreground, as runc: wait for the init and exit with its status. */
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
