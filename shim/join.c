/* SPDX-License-Identifier: Apache-2.0 */
#include "join.h"
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int shim_join_prepare(const struct shim_cgroup *cg, struct shim_join *j)
{
	memset(j, 0, sizeof(*j));
	j->v2_fd = -1;
	if (!cg)
		return 0;
	for (size_t i = 0; i < shim_cgroup_n_dirs(cg); i++) {
		const char *dir;
		int version;
		if (shim_cgroup_dir(cg, i, NULL, &dir, &version) < 0)
			continue;
		if (version == 2 && !j->v2_dir) {
			j->v2_dir = dir;
		} else if (version == 1) {
			if (j->n_v1 == SHIM_JOIN_MAX_V1)
				return -E2BIG;
			j->v1_dirs[j->n_v1++] = dir;
		}
	}
	if (j->v2_dir) {
		j->v2_fd = open(j->v2_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (j->v2_fd < 0)
			return -errno;
	}
	return 0;
}

pid_t shim_join_clone(struct shim_join *j, unsigned long flags)
{
	if (j->v2_fd >= 0) {
		struct clone_args a = {
			.flags = flags | CLONE_INTO_CGROUP,
			.exit_signal = SIGCHLD,
			.cgroup = (uint64_t) j->v2_fd,
		};
		long pid = syscall(SYS_clone3, &a, sizeof(a));
		if (pid >= 0) {
			j->into = true;
			return (pid_t) pid;
		}
		/* Refused (old kernel, a seccomp filter on the runtime): plain clone. */
		if (errno != ENOSYS && errno != EINVAL && errno != E2BIG && errno != EPERM &&
		    errno != EOPNOTSUPP)
			return -errno;
	}
	j->into = false;
	long pid = syscall(SYS_clone, flags | SIGCHLD, 0, NULL, NULL, 0);
	return pid < 0 ? -errno : (pid_t) pid;
}

static int write_at(const char *dir, const char *file, const char *text)
{
	char path[PATH_MAX];
	if ((size_t) snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return -ENAMETOOLONG;
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, text, strlen(text));
	int r = n < 0 ? -errno : 0;
	close(fd);
	return r;
}

int shim_join_parent(const struct shim_join *j, pid_t pid)
{
	char buf[32];
	if (!j->v2_dir || j->into)
		return 0;
	snprintf(buf, sizeof(buf), "%d", (int) pid);
	return write_at(j->v2_dir, "cgroup.procs", buf);
}

int shim_join_self(const struct shim_join *j)
{
	for (size_t i = 0; i < j->n_v1; i++) {
		int r = write_at(j->v1_dirs[i], "tasks", "0");
		if (r < 0)
			return r;
	}
	return 0;
}

void shim_join_done(struct shim_join *j)
{
	if (j->v2_fd >= 0)
		close(j->v2_fd);
	j->v2_fd = -1;
}
