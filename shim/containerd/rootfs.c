/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The task's rootfs: containerd sends the snapshot's mounts in Create and the
 * shim mounts them on <bundle>/rootfs, with containerd's option semantics
 * (fstab words -> mount(2) flags, the rest joined as filesystem data), and
 * unmounts everything below it on Delete and in `delete`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fd-util.h"
#include "path-util.h"
#include "shim.h"

struct mount_flag {
	const char *name;
	bool clear;
	unsigned long flag;
};

/* containerd's parseMountOptions table. */
static const struct mount_flag mount_flags[] = {
	{"async", true, MS_SYNCHRONOUS},
	{"atime", true, MS_NOATIME},
	{"bind", false, MS_BIND},
	{"defaults", false, 0},
	{"dev", true, MS_NODEV},
	{"diratime", true, MS_NODIRATIME},
	{"dirsync", false, MS_DIRSYNC},
	{"exec", true, MS_NOEXEC},
	{"mand", false, MS_MANDLOCK},
	{"noatime", false, MS_NOATIME},
	{"nodev", false, MS_NODEV},
	{"nodiratime", false, MS_NODIRATIME},
	{"noexec", false, MS_NOEXEC},
	{"nomand", true, MS_MANDLOCK},
	{"norelatime", true, MS_RELATIME},
	{"nostrictatime", true, MS_STRICTATIME},
	{"nosuid", false, MS_NOSUID},
	{"rbind", false, MS_BIND | MS_REC},
	{"relatime", false, MS_RELATIME},
	{"remount", false, MS_REMOUNT},
	{"ro", false, MS_RDONLY},
	{"rw", true, MS_RDONLY},
	{"strictatime", false, MS_STRICTATIME},
	{"suid", true, MS_NOSUID},
	{"sync", false, MS_SYNCHRONOUS},
};

static const struct mount_flag *flag_lookup(const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(mount_flags); i++)
		if (strcmp(mount_flags[i].name, name) == 0)
			return &mount_flags[i];
	return NULL;
}

static int parse_options(Ctd__Mount *m, unsigned long *ret_flags, char **ret_data, char *errbuf,
			 size_t errlen)
{
	_cleanup_free_ char *data = NULL;
	unsigned long flags = 0;
	size_t dlen = 0;

	for (size_t i = 0; i < m->n_options; i++) {
		const char *o = m->options[i];
		const struct mount_flag *f = flag_lookup(o);
		size_t olen = strlen(o);
		char *n;

		if (f) {
			if (f->clear)
				flags &= ~f->flag;
			else
				flags |= f->flag;
			continue;
		}
		if (strcmp(o, "loop") == 0 || strncmp(o, "uidmap=", 7) == 0 ||
		    strncmp(o, "gidmap=", 7) == 0) {
			snprintf(errbuf, errlen, "rootfs mount option %s is not supported", o);
			return -EOPNOTSUPP;
		}
		n = realloc(data, dlen + olen + 2);
		if (!n)
			return -ENOMEM;
		data = n;
		if (dlen)
			data[dlen++] = ',';
		memcpy(data + dlen, o, olen + 1);
		dlen += olen;
	}
	if (dlen >= (size_t) sysconf(_SC_PAGESIZE)) {
		snprintf(errbuf, errlen, "rootfs mount options are longer than a page (%zu bytes)",
			 dlen);
		return -E2BIG;
	}
	*ret_flags = flags;
	*ret_data = TAKE_PTR(data);
	return 0;
}

static int mount_one(const char *rootfs, Ctd__Mount *m, char *errbuf, size_t errlen)
{
	_cleanup_free_ char *data = NULL, *target = NULL;
	unsigned long flags;
	int r;

	if (m->target && *m->target) {
		if (!cs_path_is_safe_relative(m->target[0] == '/' ? m->target + 1 : m->target)) {
			snprintf(errbuf, errlen, "rootfs mount target %s escapes the rootfs",
				 m->target);
			return -EINVAL;
		}
		r = cs_path_join(rootfs, m->target, &target);
		if (r < 0)
			return r;
	} else {
		target = strdup(rootfs);
		if (!target)
			return -ENOMEM;
	}
	r = parse_options(m, &flags, &data, errbuf, errlen);
	if (r < 0)
		return r;

	/* A read-only bind is a bind, then a read-only remount (the kernel
	 * ignores MS_RDONLY on the first). */
	if (mount(m->source, target, m->type, (flags & MS_BIND) ? flags & ~MS_RDONLY : flags,
		  data) < 0) {
		r = -errno;
		snprintf(errbuf, errlen, "mount %s (%s) on %s: %s", m->source, m->type, target,
			 strerror(-r));
		return r;
	}
	if ((flags & MS_BIND) && (flags & MS_RDONLY) &&
	    mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | (flags & ~MS_REC), NULL) < 0) {
		r = -errno;
		(void) umount2(target, MNT_DETACH);
		snprintf(errbuf, errlen, "remount %s read-only: %s", target, strerror(-r));
		return r;
	}
	return 0;
}

int rootfs_mount_all(const char *rootfs, Ctd__Mount **mounts, size_t n, char *errbuf, size_t errlen)
{
	int r;

	if (mkdir(rootfs, 0711) < 0 && errno != EEXIST)
		return -errno;
	for (size_t i = 0; i < n; i++) {
		r = mount_one(rootfs, mounts[i], errbuf, errlen);
		if (r < 0) {
			(void) rootfs_unmount(rootfs);
			return r;
		}
	}
	return 0;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *w = s;

	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '7' && p[2] && p[3]) {
			*w++ = (char) ((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
			p += 3;
		} else {
			*w++ = *p;
		}
	}
	*w = 0;
}

static bool is_below(const char *mp, const char *path, size_t plen)
{
	return strncmp(mp, path, plen) == 0 && (mp[plen] == 0 || mp[plen] == '/');
}

int rootfs_unmount(const char *path)
{
	char real[4096];
	size_t plen;
	int result = 0;

	if (!realpath(path, real))
		return errno == ENOENT ? 0 : -errno;
	plen = strlen(real);

	/* Repeat until nothing is mounted below: each pass unmounts the
	 * deepest (latest-listed) entry first, stacked mounts included. */
	for (int pass = 0; pass < 64; pass++) {
		_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
		char line[8192], best[4096] = "";

		if (!f)
			return -errno;
		while (fgets(line, sizeof(line), f)) {
			char mp[4096];
			if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
				continue;
			unescape(mp);
			if (is_below(mp, real, plen))
				snprintf(best, sizeof(best), "%s", mp);
		}
		if (!*best)
			return result;
		if (umount2(best, 0) < 0) {
			int e = errno;
			if (e == EBUSY && umount2(best, MNT_DETACH) == 0)
				continue;
			if (e != EINVAL && e != ENOENT)
				return -e;
			result = -e;
			return result;
		}
	}
	return -EBUSY;
}
