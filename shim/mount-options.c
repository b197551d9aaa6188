/* SPDX-License-Identifier: Apache-2.0 */
#include "mount-options.h"

#include <linux/mount.h>
#include <string.h>
#include <sys/mount.h>

#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif

/* One option per line reads best as a table. */
/* clang-format off */
#define FLAG(n, f)	  { n, SHIM_MOPT_FLAG, false, f, 0 }
#define CLEAR(n, f)	  { n, SHIM_MOPT_FLAG, true, f, 0 }
#define PROP(n, f)	  { n, SHIM_MOPT_PROPAGATION, false, f, 0 }
#define RSET(n, a)	  { n, SHIM_MOPT_RECURSIVE, false, 0, a }
#define RCLEAR(n, a)	  { n, SHIM_MOPT_RECURSIVE, true, 0, a }

/* Sorted by name (as `runc features` prints them). */
const struct shim_mount_option shim_mount_options[] = {
	CLEAR("async", MS_SYNCHRONOUS),
	CLEAR("atime", MS_NOATIME),
	{ "bind", SHIM_MOPT_BIND, false, MS_BIND, 0 },
	{ "defaults", SHIM_MOPT_FLAG, false, 0, 0 },
	CLEAR("dev", MS_NODEV),
	CLEAR("diratime", MS_NODIRATIME),
	FLAG("dirsync", MS_DIRSYNC),
	CLEAR("exec", MS_NOEXEC),
	{ "idmap", SHIM_MOPT_EXTENSION, false, 0, 0 },
	FLAG("iversion", MS_I_VERSION),
	FLAG("lazytime", MS_LAZYTIME),
	CLEAR("loud", MS_SILENT),
	FLAG("mand", MS_MANDLOCK),
	FLAG("noatime", MS_NOATIME),
	FLAG("nodev", MS_NODEV),
	FLAG("nodiratime", MS_NODIRATIME),
	FLAG("noexec", MS_NOEXEC),
	CLEAR("noiversion", MS_I_VERSION),
	CLEAR("nolazytime", MS_LAZYTIME),
	CLEAR("nomand", MS_MANDLOCK),
	CLEAR("norelatime", MS_RELATIME),
	CLEAR("nostrictatime", MS_STRICTATIME),
	FLAG("nosuid", MS_NOSUID),
	FLAG("nosymfollow", MS_NOSYMFOLLOW),
	PROP("private", MS_PRIVATE),
	RCLEAR("ratime", MOUNT_ATTR_NOATIME),
	{ "rbind", SHIM_MOPT_BIND, false, MS_BIND | MS_REC, 0 },
	RCLEAR("rdev", MOUNT_ATTR_NODEV),
	RCLEAR("rdiratime", MOUNT_ATTR_NODIRATIME),
	FLAG("relatime", MS_RELATIME),
	FLAG("remount", MS_REMOUNT),
	RCLEAR("rexec", MOUNT_ATTR_NOEXEC),
	{ "ridmap", SHIM_MOPT_EXTENSION, false, 0, 0 },
	RSET("rnoatime", MOUNT_ATTR_NOATIME),
	RSET("rnodev", MOUNT_ATTR_NODEV),
	RSET("rnodiratime", MOUNT_ATTR_NODIRATIME),
	RSET("rnoexec", MOUNT_ATTR_NOEXEC),
	RCLEAR("rnorelatime", MOUNT_ATTR_RELATIME),
	RCLEAR("rnostrictatime", MOUNT_ATTR_STRICTATIME),
	RSET("rnosuid", MOUNT_ATTR_NOSUID),
	RSET("rnosymfollow", MOUNT_ATTR_NOSYMFOLLOW),
	FLAG("ro", MS_RDONLY),
	PROP("rprivate", MS_PRIVATE | MS_REC),
	RSET("rrelatime", MOUNT_ATTR_RELATIME),
	RSET("rro", MOUNT_ATTR_RDONLY),
	RCLEAR("rrw", MOUNT_ATTR_RDONLY),
	PROP("rshared", MS_SHARED | MS_REC),
	PROP("rslave", MS_SLAVE | MS_REC),
	RSET("rstrictatime", MOUNT_ATTR_STRICTATIME),
	RCLEAR("rsuid", MOUNT_ATTR_NOSUID),
	RCLEAR("rsymfollow", MOUNT_ATTR_NOSYMFOLLOW),
	PROP("runbindable", MS_UNBINDABLE | MS_REC),
	CLEAR("rw", MS_RDONLY),
	PROP("shared", MS_SHARED),
	FLAG("silent", MS_SILENT),
	PROP("slave", MS_SLAVE),
	FLAG("strictatime", MS_STRICTATIME),
	CLEAR("suid", MS_NOSUID),
	CLEAR("symfollow", MS_NOSYMFOLLOW),
	FLAG("sync", MS_SYNCHRONOUS),
	{ "tmpcopyup", SHIM_MOPT_EXTENSION, false, 0, 0 },
	PROP("unbindable", MS_UNBINDABLE),
};

/* clang-format on */

const size_t shim_mount_options_count = sizeof(shim_mount_options) / sizeof(shim_mount_options[0]);

const struct shim_mount_option *shim_mount_option_lookup(const char *name)
{
	size_t lo = 0, hi = shim_mount_options_count;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(name, shim_mount_options[mid].name);
		if (c == 0)
			return &shim_mount_options[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}
