/* SPDX-License-Identifier: Apache-2.0 */
#include "fd-util.h"
#include "cleanup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

int cs_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t) n;
	}
	return 0;
}

ssize_t cs_read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, p + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t) n;
	}
	return (ssize_t) done;
}

ssize_t cs_pread_all(int fd, void *buf, size_t len, off_t offset)
{
	char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, p + done, len - done, offset + (off_t) done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t) n;
	}
	return (ssize_t) done;
}

int cs_read_file_at(int dirfd, const char *path, size_t max_size, char **ret_buf, size_t *ret_len)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	_cleanup_free_ char *buf = NULL;
	size_t cap = max_size < 4096 ? max_size : 4096, len = 0;

	if (fd < 0)
		return -errno;
	buf = malloc(cap + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len == cap) {
			if (cap >= max_size) {
				/* Full at the limit: any further byte means too large. */
				char probe;
				ssize_t n = cs_read_all(fd, &probe, 1);
				if (n < 0)
					return (int) n;
				if (n > 0)
					return -EFBIG;
				break;
			}
			size_t ncap = cap * 2 > max_size ? max_size : cap * 2;
			char *n = realloc(buf, ncap + 1);
			if (!n)
				return -ENOMEM;
			buf = n;
			cap = ncap;
		}
		ssize_t n = cs_read_all(fd, buf + len, cap - len);
		if (n < 0)
			return (int) n;
		if (n == 0)
			break;
		len += (size_t) n;
	}
	buf[len] = '\0';
	*ret_buf = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

int cs_write_file_atomic(int dirfd, const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX];
	int r;

	if ((size_t) snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, getpid()) >= sizeof(tmp))
		return -ENAMETOOLONG;
	_cleanup_close_ int fd =
		openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -errno;
	r = cs_write_all(fd, data, len);
	if (r >= 0 && fchmod(fd, mode) < 0)
		r = -errno;
	if (r >= 0 && fsync(fd) < 0)
		r = -errno;
	if (r >= 0 && renameat(dirfd, tmp, dirfd, path) < 0)
		r = -errno;
	if (r < 0)
		(void) unlinkat(dirfd, tmp, 0);
	return r;
}

int cs_mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return len == 0 ? -EINVAL : -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0) {
		struct stat st;
		if (errno != EEXIST)
			return -errno;
		if (stat(buf, &st) < 0)
			return -errno;
		if (!S_ISDIR(st.st_mode))
			return -ENOTDIR;
	}
	return 0;
}

static int rm_rf_children(int fd)
{
	_cleanup_closedir_ DIR *d = fdopendir(fd);
	struct dirent *de;
	int r = 0;

	if (!d) {
		int e = -errno;
		close(fd);
		return e;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		int q = cs_rm_rf_at(dirfd(d), de->d_name);
		if (q < 0 && r == 0)
			r = q;
	}
	return r;
}

int cs_rm_rf_at(int dirfd, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;

	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat inner;
	if (fstat(fd, &inner) < 0 || inner.st_dev != st.st_dev) {
		/* Something is mounted here: never descend into it. */
		close(fd);
		return -EBUSY;
	}
	int r = rm_rf_children(fd);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && r == 0)
		r = -errno;
	return r;
}

static int fd_toggle_flag(int fd, int get, int set, int flag, int enable)
{
	int flags = fcntl(fd, get);
	if (flags < 0)
		return -errno;
	int nflags = enable ? flags | flag : flags & ~flag;
	if (nflags != flags && fcntl(fd, set, nflags) < 0)
		return -errno;
	return 0;
}

int cs_fd_set_cloexec(int fd, int enable)
{
	return fd_toggle_flag(fd, F_GETFD, F_SETFD, FD_CLOEXEC, enable);
}

int cs_fd_set_nonblock(int fd, int enable)
{
	return fd_toggle_flag(fd, F_GETFL, F_SETFL, O_NONBLOCK, enable);
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* Close the fds in [lo, hi] that /proc/self/fd lists: RLIMIT_NOFILE may
 * have been lowered (process.rlimits) below fds that are already open.
 * getdents64 into the stack: no allocation. */
static int close_listed_fds(unsigned int lo, unsigned int hi)
{
	char buf[4096] __attribute__((aligned(8)));
	int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	long n;

	if (dfd < 0)
		return -errno;
	while ((n = syscall(SYS_getdents64, dfd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n;) {
			const struct linux_dirent64 *d = (const void *) (buf + off);
			char *end;
			unsigned long fd = strtoul(d->d_name, &end, 10);
			off += d->d_reclen;
			if (d->d_name[0] < '0' || d->d_name[0] > '9' || *end || fd < lo ||
			    fd > hi || (int) fd == dfd)
				continue;
			(void) close((int) fd);
		}
	}
	int r = n < 0 ? -errno : 0;
	close(dfd);
	return r;
}

/* close_range(lo, hi); where the kernel lacks it (or a seccomp filter on
 * the runtime refuses it), what /proc/self/fd lists, else a close() loop. */
static int close_fd_range(unsigned int lo, unsigned int hi)
{
	struct rlimit rl;

	if (syscall(SYS_close_range, lo, hi, 0) == 0)
		return 0;
	if (errno != ENOSYS && errno != EPERM)
		return -errno;
	if (close_listed_fds(lo, hi) == 0)
		return 0;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	/* No /proc: every number below the hard limit (fs.nr_open, 2^20 by
	 * default, bounds it when it says "infinity"); the best left, as a
	 * limit lowered after an fd was opened leaves that fd out. */
	rlim_t max = rl.rlim_max == RLIM_INFINITY ? (rlim_t) 1 << 20 : rl.rlim_max;
	if (max == 0)
		return 0;
	if (max > INT_MAX)
		max = INT_MAX;
	if (hi >= max)
		hi = (unsigned int) (max - 1);
	for (unsigned int fd = lo; fd <= hi; fd++)
		(void) close((int) fd);
	return 0;
}

int cs_close_fds_except(int min_fd, const int *keep, size_t n_keep)
{
	int lo = min_fd < 0 ? 0 : min_fd;

	/* Close the gap up to the next kept fd, step over it, repeat. */
	for (;;) {
		int next = -1;
		for (size_t i = 0; i < n_keep; i++)
			if (keep[i] >= lo && (next < 0 || keep[i] < next))
				next = keep[i];
		if (next < 0)
			return close_fd_range((unsigned int) lo, ~0U);
		if (next > lo) {
			int r = close_fd_range((unsigned int) lo, (unsigned int) next - 1);
			if (r < 0)
				return r;
		}
		if (next == INT_MAX)
			return 0;
		lo = next + 1;
	}
}

int cs_send_fd(int sock, int fd, const void *data, size_t len)
{
	char dummy = 0;
	struct iovec iov = {
		.iov_base = len ? (void *) data : &dummy,
		.iov_len = len ? len : 1,
	};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} control = {0};
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	for (;;) {
		ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
		if (n >= 0)
			return len && (size_t) n < len ? cs_write_all(sock, (const char *) data + n,
								      len - (size_t) n)
						       : 0;
		if (errno != EINTR)
			return -errno;
	}
}

int cs_unix_connect(const char *path, int *ret_fd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
		return -errno;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int cs_recv_fd(int sock, void *data, size_t len)
{
	char dummy;
	struct iovec iov = {
		.iov_base = len ? data : &dummy,
		.iov_len = len ? len : 1,
	};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} control = {0};
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	ssize_t n;

	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -EBADMSG;
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* The inode number of every procfs's root directory. */
#define PROC_ROOT_INO 1

int cs_proc_open(const char *name, int flags)
{
	_cleanup_close_ int proc = open("/proc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct statfs sfs;
	struct stat st;

	if (proc < 0)
		return -errno;
	if (fstatfs(proc, &sfs) < 0 || fstat(proc, &st) < 0)
		return -errno;
	if (sfs.f_type != PROC_SUPER_MAGIC || st.st_ino != PROC_ROOT_INO)
		return -EXDEV;
	struct open_how how = {
		.flags = (uint64_t) (flags | O_CLOEXEC | O_NOFOLLOW),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV,
	};
	long fd = syscall(SYS_openat2, proc, name, &how, sizeof(how));
	if (fd < 0)
		return -errno;
	/* RESOLVE_NO_XDEV keeps to /proc's mount; check the file system all the same. */
	int r = fstatfs((int) fd, &sfs) < 0 ? -errno : sfs.f_type != PROC_SUPER_MAGIC ? -EXDEV : 0;
	if (r < 0) {
		close((int) fd);
		return r;
	}
	return (int) fd;
}
