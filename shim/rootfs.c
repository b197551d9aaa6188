/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The container's filesystem: the rootfs bind, mounts[], devices, /dev
 * symlinks, pivot_root, sysctl, masked and read-only paths, read-only root.
 * Runs in the container's mount namespace (after clone, or in restore's
 * helper), so it only uses syscalls and libc.
 */
#include "container.h"
#include "errbuf.h"
#include "cgroup.h"

#include "cleanup.h"
#include "fd-util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * Resolve `path` inside `root` like a chroot would: symlinks (absolute ones
 * too) never leave `root`; ".." stops at it. Components that do not exist
 * are appended as they are. `out` gets root + resolved path.
 */
static int resolve_in_root(const char *root, const char *path, char out[PATH_MAX])
{
	char rest[PATH_MAX], cur[PATH_MAX] = "";
	int links = 0;

	if (strlen(path) >= sizeof(rest))
		return -ENAMETOOLONG;
	strcpy(rest, path);
	char *p = rest;
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		char *slash = strchr(p, '/');
		size_t len = slash ? (size_t) (slash - p) : strlen(p);
		char comp[NAME_MAX + 1];
		if (len > NAME_MAX)
			return -ENAMETOOLONG;
		memcpy(comp, p, len);
		comp[len] = '\0';
		p += len;
		if (strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			char *last = strrchr(cur, '/');
			if (last)
				*last = '\0';
			continue;
		}
		char full[PATH_MAX], next[PATH_MAX];
		if ((size_t) snprintf(next, sizeof(next), "%s/%s", cur, comp) >= sizeof(next))
			return -ENAMETOOLONG;
		snprintf(full, sizeof(full), "%s%s", root, next);
		struct stat st;
		if (lstat(full, &st) == 0 && S_ISLNK(st.st_mode)) {
			char target[PATH_MAX], tmp[PATH_MAX];
			ssize_t n = readlink(full, target, sizeof(target) - 1);
			if (n < 0)
				return -errno;
			target[n] = '\0';
			if (++links > 40)
				return -ELOOP;
			if ((size_t) snprintf(tmp, sizeof(tmp), "%s/%s", target, p) >= sizeof(tmp))
				return -ENAMETOOLONG;
			strcpy(rest, tmp);
			p = rest;
			if (target[0] == '/')
				cur[0] = '\0';
			continue;
		}
		strcpy(cur, next);
	}
	if ((size_t) snprintf(out, PATH_MAX, "%s%s", root, cur[0] ? cur : "/") >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

/*
 * Whether an existing component of `path` under `root` is a symlink. procfs
 * and sysfs are only mounted where the path says: a rootfs whose /proc is a
 * symlink would have the container (and stoke's own later writes to
 * /proc/sys) use whatever that link leads to (the CVE-2025-52881 class).
 */
static bool has_symlink_component(const char *root, const char *path)
{
	char full[PATH_MAX];
	size_t base = strlen(root);

	if ((size_t) snprintf(full, sizeof(full), "%s/%s", root, path) >= sizeof(full))
		return true;
	for (char *p = full + base + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		struct stat st;
		*p = '\0';
		bool link = lstat(full, &st) == 0 && S_ISLNK(st.st_mode);
		*p = c;
		if (link)
			return true;
		if (!c)
			return false;
	}
}

static int mkdir_p(const char *path, mode_t mode)
{
	return cs_mkdir_p(path, mode);
}

/* Create the mount point `dst`: a directory, or an empty file when `as_file`. */
static int make_mountpoint(const char *dst, bool as_file)
{
	struct stat st;
	if (stat(dst, &st) == 0)
		return 0;
	if (!as_file)
		return mkdir_p(dst, 0755);
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", dst);
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = '\0';
		int r = mkdir_p(parent, 0755);
		if (r < 0)
			return r;
	}
	int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

/*
 * Create the mount point `rel` (from resolve_in_root(), relative to the
 * rootfs: no symlink and no ".." in it when it was resolved) one component
 * at a time, each opened with O_NOFOLLOW under the last: a component swapped
 * for a symlink meanwhile makes this fail instead of creating a directory
 * or a file outside the rootfs. The last one is an empty file when `as_file`.
 */
static int make_mountpoint_in(const char *rootfs, const char *rel, bool as_file)
{
	char buf[PATH_MAX], *save = NULL;
	_cleanup_close_ int dir = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (dir < 0)
		return -errno;
	if ((size_t) snprintf(buf, sizeof(buf), "%s", rel) >= sizeof(buf))
		return -ENAMETOOLONG;
	for (char *name = strtok_r(buf, "/", &save); name;) {
		char *next = strtok_r(NULL, "/", &save);
		if (!next && as_file) {
			int fd = openat(dir, name,
					O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY |
						O_CLOEXEC,
					0644);
			if (fd < 0 && errno != EEXIST)
				return -errno;
			if (fd >= 0)
				close(fd);
			return 0;
		}
		if (mkdirat(dir, name, 0755) < 0 && errno != EEXIST)
			return -errno;
		int sub = openat(dir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			return -errno;
		close(dir);
		dir = sub;
		name = next;
	}
	return 0;
}

/* The flags a remount must keep (locked ones in a user namespace). */
static unsigned long locked_flags(const char *path)
{
	struct statvfs sv;
	unsigned long f = 0;
	if (statvfs(path, &sv) < 0)
		return 0;
	if (sv.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sv.f_flag & ST_RDONLY)
		f |= MS_RDONLY;
	if (sv.f_flag & ST_NOATIME)
		f |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

static int bind_remount(const char *path, unsigned long flags)
{
	unsigned long f = MS_BIND | MS_REMOUNT | flags;
	if (mount(NULL, path, NULL, f, NULL) == 0)
		return 0;
	if (errno != EPERM)
		return -errno;
	/* In a user namespace the source's nodev/nosuid/noexec are locked: keep them. */
	if (mount(NULL, path, NULL, f | (locked_flags(path) & ~MS_RDONLY), NULL) < 0)
		return -errno;
	return 0;
}

static int mount_setattr_rec(const char *path, uint64_t set, uint64_t clr)
{
	struct mount_attr a = {.attr_set = set, .attr_clr = clr};
	if (syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &a, sizeof(a)) < 0)
		return -errno;
	return 0;
}

/* Copy the tree under directory fd `from` into directory fd `to` (tmpcopyup). */
static int copy_tree(int from, int to)
{
	int dup_from = fcntl(from, F_DUPFD_CLOEXEC, 3);
	if (dup_from < 0)
		return -errno;
	_cleanup_closedir_ DIR *d = fdopendir(dup_from);
	if (!d) {
		close(dup_from);
		return -errno;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat st;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(from, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		if (S_ISDIR(st.st_mode)) {
			if (mkdirat(to, de->d_name, st.st_mode & 07777) < 0 && errno != EEXIST)
				return -errno;
			_cleanup_close_ int a =
				openat(from, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			_cleanup_close_ int b =
				openat(to, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (a < 0 || b < 0)
				return -errno;
			int r = copy_tree(a, b);
			if (r < 0)
				return r;
		} else if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t n = readlinkat(from, de->d_name, target, sizeof(target) - 1);
			if (n < 0)
				return -errno;
			target[n] = '\0';
			if (symlinkat(target, to, de->d_name) < 0)
				return -errno;
		} else if (S_ISREG(st.st_mode)) {
			_cleanup_close_ int a = openat(from, de->d_name, O_RDONLY | O_CLOEXEC);
			_cleanup_close_ int b =
				openat(to, de->d_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
				       st.st_mode & 07777);
			char buf[65536];
			ssize_t n;
			if (a < 0 || b < 0)
				return -errno;
			while ((n = read(a, buf, sizeof(buf))) > 0)
				if (cs_write_all(b, buf, (size_t) n) < 0)
					return -errno;
			if (n < 0)
				return -errno;
		} else if (mknodat(to, de->d_name, st.st_mode, st.st_rdev) < 0) {
			return -errno;
		}
		(void) fchownat(to, de->d_name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
	}
	return 0;
}

/*
 * A mount destination held open inside the rootfs. `at` (/proc/self/fd/N)
 * names it to mount(2) without a path walk that a component swapped for a
 * symlink in the meantime could lead out of the rootfs (CVE-2021-30465).
 * A descriptor keeps naming the mount it was opened on: after each mount on
 * the destination, mount_target_open() again makes `at` name the new top
 * (the rootfs is opened again too, for a mount on "/" itself).
 */
struct mount_target {
	const char *root; /* the rootfs, a host path */
	const char *path; /* as in the config, resolved as if root were / */
	int fd;
	char at[32];
};

static int mount_target_open(struct mount_target *t)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	_cleanup_close_ int rootfd = open(t->root, O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (rootfd < 0)
		return -errno;
	int fd = (int) syscall(SYS_openat2, rootfd, t->path, &how, sizeof(how));
	if (fd < 0)
		return -errno;
	if (t->fd < 0) {
		t->fd = fd;
		snprintf(t->at, sizeof(t->at), "/proc/self/fd/%d", fd);
		return 0;
	}
	/* Same number, so `at` stays valid. */
	int r = dup3(fd, t->fd, O_CLOEXEC) < 0 ? -errno : 0;
	close(fd);
	return r;
}

/* The container's /sys/fs/cgroup: its own cgroup directories, bound (or cgroup2 mounted). */
static int mount_cgroup(const struct shim_mount *m, struct mount_target *tgt,
			const struct shim_rootfs_opts *o, char *err, size_t errlen)
{
	const char *dst = tgt->at;
	unsigned long flags = m->flags & ~(MS_BIND | MS_REC);
	int r;

	if (!o->cgroup)
		return cs_errf_errno(-EINVAL, err, errlen, "mount %s: no cgroup to mount",
				     m->destination);
	size_t n = shim_cgroup_n_dirs(o->cgroup);
	if (shim_cgroup_detect_layout() == SHIM_CGROUP_V2 && n == 1) {
		const char *mnt, *dir;
		int version;
		r = shim_cgroup_dir(o->cgroup, 0, &mnt, &dir, &version);
		if (r < 0)
			return cs_errf_errno(r, err, errlen, "mount %s", m->destination);
		if (o->new_cgroupns) {
			if (mount("cgroup2", dst, "cgroup2", flags, NULL) == 0) {
				r = mount_target_open(tgt);
				return r < 0 ? cs_errf_errno(r, err, errlen, "mount %s: reopen",
							     m->destination)
					     : 0;
			}
		}
		if (mount(dir, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
			return cs_errf_errno(-errno, err, errlen, "mount %s: bind %s",
					     m->destination, dir);
		r = mount_target_open(tgt);
		if (r >= 0)
			r = bind_remount(dst, flags);
		return r < 0 ? cs_errf_errno(r, err, errlen, "mount %s: remount", m->destination)
			     : 0;
	}

	/* v1 and hybrid: a tmpfs with one bound directory per hierarchy, as runc does. */
	if (mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755") < 0)
		return cs_errf_errno(-errno, err, errlen, "mount %s: tmpfs", m->destination);
	r = mount_target_open(tgt);
	if (r < 0)
		return cs_errf_errno(r, err, errlen, "mount %s: reopen", m->destination);
	for (size_t i = 0; i < n; i++) {
		const char *mnt, *dir;
		char sub[PATH_MAX];
		int version;
		if (shim_cgroup_dir(o->cgroup, i, &mnt, &dir, &version) < 0)
			continue;
		const char *base = strrchr(mnt, '/');
		base = base ? base + 1 : mnt;
		if ((size_t) snprintf(sub, sizeof(sub), "%s/%s", dst, base) >= sizeof(sub))
			return cs_errf_errno(-ENAMETOOLONG, err, errlen, "mount %s",
					     m->destination);
		if (mkdir(sub, 0755) < 0 && errno != EEXIST)
			return cs_errf_errno(-errno, err, errlen, "mount %s: mkdir %s",
					     m->destination, sub);
		if (mount(dir, sub, NULL, MS_BIND | MS_REC, NULL) < 0)
			return cs_errf_errno(-errno, err, errlen, "mount %s: bind %s",
					     m->destination, dir);
		r = bind_remount(sub, flags | MS_NOSUID | MS_NODEV | MS_NOEXEC);
		if (r < 0)
			return cs_errf_errno(r, err, errlen, "mount %s: remount %s", m->destination,
					     sub);
		/* "cpu,cpuacct" is also reachable as "cpu" and "cpuacct". */
		if (strchr(base, ',')) {
			char names[256], *save = NULL;
			snprintf(names, sizeof(names), "%s", base);
			for (char *t = strtok_r(names, ",", &save); t;
			     t = strtok_r(NULL, ",", &save)) {
				char link[PATH_MAX];
				if ((size_t) snprintf(link, sizeof(link), "%s/%s", dst, t) <
				    sizeof(link))
					(void) symlink(base, link);
			}
		}
	}
	if (flags & MS_RDONLY) {
		r = bind_remount(dst, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
		if (r < 0 && mount(NULL, dst, NULL,
				   MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
				   "mode=755") < 0)
			return cs_errf_errno(-errno, err, errlen, "mount %s: read-only",
					     m->destination);
	}
	return 0;
}

int shim_write_id_map(pid_t pid, const char *file, const struct shim_id_map *m, size_t n)
{
	char path[64], buf[4096];
	size_t len = 0;
	for (size_t i = 0; i < n && len < sizeof(buf); i++)
		len += (size_t) snprintf(buf + len, sizeof(buf) - len, "%u %u %u\n",
					 m[i].container_id, m[i].host_id, m[i].size);
	if (len >= sizeof(buf))
		return -E2BIG;
	snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, file);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return write(fd, buf, len) == (ssize_t) len ? 0 : -errno;
}

/* The pid of a pidfd's process as the mounted /proc numbers it. */
static pid_t proc_pid_of(int pidfd)
{
	char path[64], line[128];
	pid_t pid = -1;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Pid: %d", &pid) == 1)
			break;
	fclose(f);
	return pid;
}

/* A user namespace with the mount's maps, as an fd: a child that only
 * waits is cloned into a new one, its maps written, its ns opened. */
static int idmap_userns(const struct shim_mount *m, int *ret)
{
	int p[2], r;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	int pidfd = -1;
	pid_t pid = (pid_t) syscall(SYS_clone, CLONE_NEWUSER | CLONE_PIDFD | SIGCHLD, 0, &pidfd,
				    NULL, 0);
	if (pid < 0) {
		r = -errno;
		close(p[0]);
		close(p[1]);
		return r;
	}
	if (pid == 0) {
		char b;
		close(p[1]);
		(void) read(p[0], &b, 1);
		_exit(0);
	}
	close(p[0]);
	/* We may be in a new pid namespace while /proc is still the host's: its
	 * pid for that /proc comes from the pidfd's fdinfo. */
	pid_t procpid = proc_pid_of(pidfd);
	close(pidfd);
	r = procpid > 0 ? shim_write_id_map(procpid, "uid_map", m->uid_mappings, m->n_uid_mappings)
			: -ESRCH;
	if (r >= 0)
		r = shim_write_id_map(procpid, "gid_map", m->gid_mappings, m->n_gid_mappings);
	if (r >= 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int) procpid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			r = -errno;
		else
			*ret = fd;
	}
	close(p[1]); /* the child exits */
	(void) waitpid(pid, NULL, 0);
	return r;
}

/* open_tree + MOUNT_ATTR_IDMAP + move_mount (the new mount API; no mount(2) way). */
static int idmapped_bind(const struct shim_mount *m, int dst_fd)
{
	bool rec = (m->flags & MS_REC) || m->idmap_recursive;
	_cleanup_close_ int userns = -EBADF;
	int r = idmap_userns(m, &userns);
	if (r < 0)
		return r;
	_cleanup_close_ int tree =
		(int) syscall(SYS_open_tree, AT_FDCWD, m->source,
			      OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (rec ? AT_RECURSIVE : 0));
	if (tree < 0)
		return -errno;
	struct mount_attr a = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t) userns};
	if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | (rec ? AT_RECURSIVE : 0), &a,
		    sizeof(a)) < 0)
		return -errno;
	if (syscall(SYS_move_mount, tree, "", dst_fd, "",
		    MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return -errno;
	return 0;
}

static int do_mount(const struct shim_config *cfg, const struct shim_mount *m,
		    const struct shim_rootfs_opts *o, char *err, size_t errlen)
{
	char dst[PATH_MAX];
	int r = resolve_in_root(cfg->rootfs, m->destination, dst);
	if (r < 0)
		return cs_errf_errno(r, err, errlen, "mount %s", m->destination);
	if (!m->bind && m->type &&
	    (strcmp(m->type, "proc") == 0 || strcmp(m->type, "sysfs") == 0) &&
	    has_symlink_component(cfg->rootfs, m->destination))
		return cs_errf_errno(
			-ELOOP, err, errlen,
			"mount %s (type %s): the destination is a symlink in the rootfs",
			m->destination, m->type);

	bool as_file = false;
	if (m->bind) {
		struct stat st;
		if (stat(m->source, &st) < 0)
			return cs_errf_errno(-errno, err, errlen, "mount %s: source %s",
					     m->destination, m->source);
		as_file = !S_ISDIR(st.st_mode);
	}
	r = make_mountpoint_in(cfg->rootfs, dst + strlen(cfg->rootfs), as_file);
	if (r < 0)
		return cs_errf_errno(r, err, errlen, "mount %s: create mount point %s",
				     m->destination, dst);

	/* From here on the destination is only reached through `t`, opened
	 * inside the rootfs whatever was swapped into the path meanwhile. */
	struct mount_target t = {.root = cfg->rootfs, .path = m->destination, .fd = -EBADF};
	r = mount_target_open(&t);
	if (r < 0)
		return cs_errf_errno(r, err, errlen, "mount %s: open the mount point in the rootfs",
				     m->destination);
	_cleanup_close_ int tfd = t.fd; /* closes t.fd: mount_target_open() keeps its number */
	const char *at = t.at;

	if (m->type && (strcmp(m->type, "cgroup") == 0 || strcmp(m->type, "cgroup2") == 0) &&
	    !m->bind) {
		r = mount_cgroup(m, &t, o, err, errlen);
		if (r < 0)
			return r;
	} else if (m->bind) {
		if (m->idmap) {
			r = idmapped_bind(m, t.fd);
			if (r < 0)
				return cs_errf_errno(r, err, errlen,
						     "mount %s: id-mapped bind of %s",
						     m->destination, m->source);
		} else if (mount(m->source, at, NULL, MS_BIND | (m->flags & MS_REC), NULL) < 0) {
			return cs_errf_errno(-errno, err, errlen, "mount %s: bind %s",
					     m->destination, m->source);
		}
		r = mount_target_open(&t);
		if (r < 0)
			return cs_errf_errno(r, err, errlen, "mount %s: reopen", m->destination);
		unsigned long extra = m->flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
		if (extra) {
			r = bind_remount(at, extra);
			if (r < 0)
				return cs_errf_errno(r, err, errlen,
						     "mount %s: remount with options",
						     m->destination);
		}
	} else {
		_cleanup_close_ int under = -EBADF;
		if (m->tmpcopyup)
			under = open(at, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		unsigned long flags = m->flags & ~MS_REC;
		/* Mount read-write first when copying up, read-only afterwards. */
		unsigned long first = m->tmpcopyup ? flags & ~MS_RDONLY : flags;
		if (mount(m->source ? m->source : m->type, at, m->type, first, m->data) < 0) {
			int e = errno;
			/* sysfs/mqueue in a user namespace without its own net/ipc: bind the
			 * host's. */
			const char *host = NULL;
			if (e == EPERM && strcmp(m->type, "sysfs") == 0)
				host = "/sys";
			else if (e == EPERM && strcmp(m->type, "mqueue") == 0)
				host = "/dev/mqueue";
			if (!host || mount(host, at, NULL, MS_BIND | MS_REC, NULL) < 0)
				return cs_errf_errno(-e, err, errlen, "mount %s (type %s)",
						     m->destination, m->type);
			if (mount_target_open(&t) == 0 && (flags & MS_RDONLY))
				(void) bind_remount(at, MS_RDONLY);
		}
		r = mount_target_open(&t);
		if (r < 0)
			return cs_errf_errno(r, err, errlen, "mount %s: reopen", m->destination);
		if (m->tmpcopyup && under >= 0) {
			_cleanup_close_ int top = open(at, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (top < 0 || (r = copy_tree(under, top)) < 0)
				return cs_errf_errno(top < 0 ? -errno : r, err, errlen,
						     "mount %s: tmpcopyup", m->destination);
			if (flags & MS_RDONLY &&
			    mount(NULL, at, NULL, MS_REMOUNT | flags, m->data) < 0)
				return cs_errf_errno(-errno, err, errlen, "mount %s: read-only",
						     m->destination);
		}
	}
	if (m->propagation && mount(NULL, at, NULL, m->propagation, NULL) < 0)
		return cs_errf_errno(-errno, err, errlen, "mount %s: propagation", m->destination);
	if ((m->attr_set || m->attr_clr) &&
	    (r = mount_setattr_rec(at, m->attr_set, m->attr_clr)) < 0)
		return cs_errf_errno(r, err, errlen, "mount %s: recursive attributes",
				     m->destination);
	return 0;
}

struct default_dev {
	const char *name;
	int major, minor;
};

static const struct default_dev default_devs[] = {
	{"null", 1, 3},	  {"zero", 1, 5},    {"full", 1, 7},
	{"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
};

/*
 * mknod, or (in a user namespace, where mknod is refused) bind the host's
 * node. An existing node is left as it is, as runc does: it may be on a
 * bind mount (the host's /dev, or one of its nodes), and unlinking it there
 * would replace the host's node.
 */
static int make_device(const char *dst, char type, int64_t major, int64_t minor, mode_t mode,
		       bool has_uid, uid_t uid, bool has_gid, gid_t gid, const char *host)
{
	mode_t fmt = type == 'b' ? S_IFBLK : type == 'p' ? S_IFIFO : S_IFCHR;
	if (mknod(dst, fmt | (mode & 07777), makedev(major, minor)) == 0) {
		if (chmod(dst, mode & 07777) < 0)
			return -errno;
		if ((has_uid || has_gid) &&
		    chown(dst, has_uid ? uid : (uid_t) -1, has_gid ? gid : (gid_t) -1) < 0)
			return -errno;
		return 0;
	}
	if (errno == EEXIST)
		return 0;
	if (errno != EPERM || !host)
		return -errno;
	int r = make_mountpoint(dst, true);
	if (r < 0)
		return r;
	if (mount(host, dst, NULL, MS_BIND, NULL) < 0)
		return -errno;
	return 0;
}

/*
 * Whether the /dev the container sees is a bind mount: the last mount on
 * /dev is the one on top. Destinations are compared once resolved in the
 * rootfs, as do_mount() mounted them ("/dev/", "/dev/." are /dev too).
 */
static bool dev_is_bind_mounted(const struct shim_config *cfg)
{
	char dev[PATH_MAX], dst[PATH_MAX];

	if (resolve_in_root(cfg->rootfs, "/dev", dev) < 0)
		return false;
	for (size_t i = cfg->n_mounts; i-- > 0;) {
		if (resolve_in_root(cfg->rootfs, cfg->mounts[i].destination, dst) < 0 ||
		    strcmp(dst, dev) != 0)
			continue;
		return cfg->mounts[i].bind;
	}
	return false;
}

/* `dir`/`name` into `out` (PATH_MAX). */
static int dev_entry(const char *dir, const char *name, char out[PATH_MAX])
{
	if ((size_t) snprintf(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

/* `dir` (the rootfs's /dev, resolved in the rootfs so that a symlink there
 * cannot lead out of it) gets the default devices; one that linux.devices
 * made already (with its own mode and owner) stays. */
static int make_default_devices(const char *dir, char *err, size_t errlen)
{
	char dst[PATH_MAX], host[64];

	for (size_t i = 0; i < ELEMENTSOF(default_devs); i++) {
		int r = dev_entry(dir, default_devs[i].name, dst);
		if (r < 0)
			return cs_errf_errno(r, err, errlen, "device /dev/%s",
					     default_devs[i].name);
		snprintf(host, sizeof(host), "/dev/%s", default_devs[i].name);
		r = make_device(dst, 'c', default_devs[i].major, default_devs[i].minor, 0666, false,
				0, false, 0, host);
		if (r < 0)
			return cs_errf_errno(r, err, errlen, "device /dev/%s",
					     default_devs[i].name);
	}
	return 0;
}

/* The /dev symlinks; whatever already has one of their names stays. */
static int make_dev_symlinks(const char *dir, char *err, size_t errlen)
{
	static const char *const links[][2] = {
		{"/proc/self/fd", "fd"},       {"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
		{"pts/ptmx", "ptmx"},
	};
	char dst[PATH_MAX];

	for (size_t i = 0; i < ELEMENTSOF(links); i++) {
		int r = dev_entry(dir, links[i][1], dst);
		if (r < 0)
			return cs_errf_errno(r, err, errlen, "symlink /dev/%s", links[i][1]);
		/* The ptmx of the container's own devpts, whatever linux.devices
		 * made there (runc replaces it too): a 5:2 node would depend on
		 * the kernel finding the pts next to it. */
		if (strcmp(links[i][1], "ptmx") == 0 && unlink(dst) < 0 && errno != ENOENT)
			return cs_errf_errno(-errno, err, errlen, "replace /dev/ptmx");
		if (symlink(links[i][0], dst) < 0 && errno != EEXIST)
			return cs_errf_errno(-errno, err, errlen, "symlink /dev/%s", links[i][1]);
	}
	if (access("/proc/kcore", F_OK) == 0 && dev_entry(dir, "core", dst) == 0)
		(void) symlink("/proc/kcore", dst);
	return 0;
}

static int make_config_devices(const struct shim_config *cfg, char *err, size_t errlen)
{
	char dst[PATH_MAX];

	for (size_t i = 0; i < cfg->n_devices; i++) {
		const struct shim_device *d = &cfg->devices[i];
		int r = resolve_in_root(cfg->rootfs, d->path, dst);
		if (r < 0)
			return cs_errf_errno(r, err, errlen, "linux.devices[%zu] %s", i, d->path);
		char *slash = strrchr(dst, '/');
		if (slash) {
			*slash = '\0';
			(void) mkdir_p(dst, 0755);
			*slash = '/';
		}
		r = make_device(dst, d->type == 'u' ? 'c' : d->type, d->major, d->minor,
				d->has_mode ? d->mode : 0666, d->has_uid, d->uid, d->has_gid,
				d->gid, d->path);
		if (r < 0)
			return cs_errf_errno(r, err, errlen, "linux.devices[%zu]: create %s", i,
					     d->path);
	}
	return 0;
}

static int setup_devices(const struct shim_config *cfg, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	int r;

	/* A bind-mounted /dev is someone else's (the host's): leave it alone,
	 * devices of linux.devices included, as runc does. Otherwise (a tmpfs,
	 * or no /dev mount at all: then in the rootfs itself, as runc does too)
	 * create the default devices, the /dev symlinks and linux.devices. */
	if (dev_is_bind_mounted(cfg))
		return 0;
	r = resolve_in_root(cfg->rootfs, "/dev", dir);
	if (r < 0)
		return cs_errf_errno(r, err, errlen, "resolve /dev in the rootfs");
	(void) mkdir(dir, 0755);
	r = make_config_devices(cfg, err, errlen);
	if (r < 0)
		return r;
	r = make_default_devices(dir, err, errlen);
	if (r < 0)
		return r;
	return make_dev_symlinks(dir, err, errlen);
}

/* pivot_root needs the new root's parent mount not to be shared. */
static int make_parent_mount_private(const char *rootfs)
{
	char line[8192], best[PATH_MAX] = "/";
	size_t best_len = 1;
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char mp[PATH_MAX];
		if (sscanf(line, "%*d %*d %*s %*s %4095s", mp) != 1)
			continue;
		size_t n = strlen(mp);
		if (strncmp(rootfs, mp, n) == 0 &&
		    (rootfs[n] == '/' || rootfs[n] == '\0' || n == 1) && n >= best_len) {
			snprintf(best, sizeof(best), "%s", mp);
			best_len = n;
		}
	}
	if (mount(NULL, best, NULL, MS_PRIVATE, NULL) < 0)
		return -errno;
	return 0;
}

int shim_rootfs_prepare(const struct shim_config *cfg, const struct shim_rootfs_opts *o, char *err,
			size_t errlen)
{
	unsigned long prop = cfg->rootfs_propagation ? cfg->rootfs_propagation : MS_SLAVE | MS_REC;
	int r;

	/* An unbindable rootfs could not be bound onto itself below: until the
	 * pivot it is only a slave; shim_rootfs_finish() makes "/" unbindable
	 * (runc 1.1 fails such a container with EINVAL). */
	if (prop & MS_UNBINDABLE)
		prop = MS_SLAVE | MS_REC;

	/* Nothing mounted from here on may reach back into the host. */
	if (mount(NULL, "/", NULL, prop, NULL) < 0)
		return cs_errf_errno(-errno, err, errlen, "make / %s",
				     prop & MS_SHARED	 ? "shared"
				     : prop & MS_PRIVATE ? "private"
							 : "slave");
	if (prop & MS_SHARED) {
		r = make_parent_mount_private(cfg->rootfs);
		if (r < 0)
			return cs_errf_errno(r, err, errlen,
					     "make the rootfs's parent mount private");
	}
	if (mount(cfg->rootfs, cfg->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		return cs_errf_errno(-errno, err, errlen, "bind the rootfs %s", cfg->rootfs);

	for (size_t i = 0; i < cfg->n_mounts; i++) {
		r = do_mount(cfg, &cfg->mounts[i], o, err, errlen);
		if (r < 0)
			return r;
	}
	return setup_devices(cfg, err, errlen);
}

static int pivot(const char *rootfs, bool no_pivot, char *err, size_t errlen)
{
	if (chdir(rootfs) < 0)
		return cs_errf_errno(-errno, err, errlen, "chdir %s", rootfs);
	if (no_pivot) {
		if (mount(rootfs, "/", NULL, MS_MOVE, NULL) < 0)
			return cs_errf_errno(-errno, err, errlen, "move the rootfs to /");
		if (chroot(".") < 0)
			return cs_errf_errno(-errno, err, errlen, "chroot");
		return chdir("/") < 0 ? cs_errf_errno(-errno, err, errlen, "chdir /") : 0;
	}
	_cleanup_close_ int old = open("/", O_DIRECTORY | O_PATH | O_CLOEXEC);
	if (old < 0)
		return cs_errf_errno(-errno, err, errlen, "open /");
	/* pivot_root(".", "."): the old root ends up stacked on "/" and is lazily detached. */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return cs_errf_errno(-errno, err, errlen, "pivot_root %s", rootfs);
	if (fchdir(old) < 0)
		return cs_errf_errno(-errno, err, errlen, "fchdir to the old root");
	if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		return cs_errf_errno(-errno, err, errlen, "make the old root slave");
	if (umount2(".", MNT_DETACH) < 0)
		return cs_errf_errno(-errno, err, errlen, "detach the old root");
	return chdir("/") < 0 ? cs_errf_errno(-errno, err, errlen, "chdir /") : 0;
}

static int write_sysctls(const struct shim_config *cfg, char *err, size_t errlen)
{
	for (size_t i = 0; i < cfg->n_sysctl; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "sys/%s", cfg->sysctl[i].key);
		for (char *p = path + 4; *p; p++)
			if (*p == '.')
				*p = '/';
		/* Only into the container's procfs: never a file a symlink or a
		 * mount in the rootfs put in its place. */
		_cleanup_close_ int fd = cs_proc_open(path, O_WRONLY);
		if (fd < 0)
			return cs_errf_errno(fd, err, errlen, "linux.sysctl.%s: open /proc/%s%s",
					     cfg->sysctl[i].key, path,
					     fd == -EXDEV ? " (not on /proc's own procfs)" : "");
		int r = cs_write_all(fd, cfg->sysctl[i].value, strlen(cfg->sysctl[i].value));
		if (r < 0)
			return cs_errf_errno(r, err, errlen, "linux.sysctl.%s: write \"%s\"",
					     cfg->sysctl[i].key, cfg->sysctl[i].value);
	}
	return 0;
}

static int readonly_path(const char *p)
{
	if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0)
		return errno == ENOENT ? 0 : -errno;
	return bind_remount(p, MS_RDONLY | MS_REC);
}

/*
 * The container's /dev/null, checked to be the null device itself: the rootfs
 * (or a /dev bound from it) may hold a symlink there, to a file that binding
 * over a masked path would expose or redirect writes to (CVE-2025-31133), or
 * no node at all, which must not quietly leave the paths unmasked.
 */
static int open_dev_null(void)
{
	_cleanup_close_ int fd = open("/dev/null", O_PATH | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
		return -ENODEV;
	return TAKE_FD(fd);
}

/* Mask `p` with a tmpfs (a directory) or the verified null device `null_fd`,
 * bound through its descriptor so no path is looked up again. */
static int mask_path(const char *p, int null_fd)
{
	char src[64];
	struct stat st;

	if (stat(p, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISDIR(st.st_mode)) {
		if (mount("tmpfs", p, "tmpfs", MS_RDONLY, NULL) < 0)
			return -errno;
		return 0;
	}
	/* A clone of the node's own mount, moved onto `p`: neither the name
	 * /dev/null nor the container's /proc is looked up again. */
	_cleanup_close_ int tree = (int) syscall(
		SYS_open_tree, null_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
	if (tree >= 0) {
		if (syscall(SYS_move_mount, tree, "", AT_FDCWD, p, MOVE_MOUNT_F_EMPTY_PATH) < 0)
			return errno == ENOENT ? 0 : -errno;
		return 0;
	}
	if (errno != ENOSYS)
		return -errno;
	snprintf(src, sizeof(src), "/proc/self/fd/%d", null_fd);
	if (mount(src, p, NULL, MS_BIND, NULL) < 0)
		return errno == ENOENT ? 0 : -errno;
	return 0;
}

static int mask_paths(const struct shim_config *cfg, char *err, size_t errlen)
{
	_cleanup_close_ int null_fd = -EBADF;

	if (!cfg->masked_paths || !cfg->masked_paths[0])
		return 0;
	null_fd = open_dev_null();
	if (null_fd < 0)
		return cs_errf_errno(null_fd, err, errlen,
				     "linux.maskedPaths: the container's /dev/null is not the "
				     "null device (char 1:3)");
	for (size_t i = 0; cfg->masked_paths[i]; i++) {
		int r = mask_path(cfg->masked_paths[i], null_fd);
		if (r < 0)
			return cs_errf_errno(r, err, errlen, "linux.maskedPaths: %s",
					     cfg->masked_paths[i]);
	}
	return 0;
}

int shim_rootfs_finish(const struct shim_config *cfg, bool no_pivot, char *err, size_t errlen)
{
	int r = pivot(cfg->rootfs, no_pivot, err, errlen);
	if (r < 0)
		return r;
	r = write_sysctls(cfg, err, errlen);
	if (r < 0)
		return r;
	for (size_t i = 0; cfg->readonly_paths && cfg->readonly_paths[i]; i++) {
		r = readonly_path(cfg->readonly_paths[i]);
		if (r < 0)
			return cs_errf_errno(r, err, errlen, "linux.readonlyPaths: %s",
					     cfg->readonly_paths[i]);
	}
	r = mask_paths(cfg, err, errlen);
	if (r < 0)
		return r;
	if (cfg->root_readonly) {
		r = bind_remount("/", MS_RDONLY);
		if (r < 0)
			return cs_errf_errno(r, err, errlen, "root.readonly: remount / read-only");
	}
	/* Last: the readonlyPaths and maskedPaths binds above cannot be made
	 * under an (r)unbindable root. */
	if (cfg->rootfs_propagation && mount(NULL, "/", NULL, cfg->rootfs_propagation, NULL) < 0)
		return cs_errf_errno(-errno, err, errlen, "linux.rootfsPropagation");
	return 0;
}
