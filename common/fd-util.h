/* SPDX-License-Identifier: Apache-2.0 */
/*
 * File descriptor and file helpers.
 *
 * Errors: every function returns 0 (or a byte count) on success and -errno on
 * failure; out-parameters named ret_* are written only on success.
 * All descriptors opened here carry O_CLOEXEC.
 * Thread-safety: no shared state; safe from any thread.
 */
#ifndef STOKE_COMMON_FD_UTIL_H
#define STOKE_COMMON_FD_UTIL_H

#include <stddef.h>
#include <sys/types.h>

/*! cs_write_all() : write all `len` bytes, retrying on EINTR and short writes.
 * @return : 0, or -errno (-EIO if write() returned 0). */
int cs_write_all(int fd, const void *buf, size_t len);

/*! cs_read_all() : read until `len` bytes or end of file.
 * @return : bytes read (less than `len` only at end of file), or -errno. */
ssize_t cs_read_all(int fd, void *buf, size_t len);

/*! cs_pread_all() : like cs_read_all() at `offset`, without moving the file offset. */
ssize_t cs_pread_all(int fd, void *buf, size_t len, off_t offset);

/*! cs_read_file() :
 *  Read a whole file (at most `max_size` bytes) into a new NUL-terminated buffer.
 *  `dirfd` may be AT_FDCWD. *ret_buf is owned by the caller (free()).
 * @return : 0, -EFBIG if the file is larger than `max_size`, or -errno. */
int cs_read_file_at(int dirfd, const char *path, size_t max_size, char **ret_buf, size_t *ret_len);

/*! cs_write_file_atomic() :
 *  Write `len` bytes to `path` (relative to `dirfd`) by writing a temporary
 *  file in the same directory, fsyncing it, and renaming it over `path`: a
 *  crash leaves either the old file or the new one, never a partial one.
 * @return : 0, or -errno (the temporary file is removed on failure). */
int cs_write_file_atomic(int dirfd, const char *path, const void *data, size_t len, mode_t mode);

/*! cs_mkdir_p() : create `path` and missing parents with `mode`; existing directories are fine. */
int cs_mkdir_p(const char *path, mode_t mode);

/*! cs_rm_rf_at() :
 *  Remove `name` under `dirfd` recursively without following symlinks and
 *  without crossing into other mounts' contents (a mount point that cannot
 *  be removed gives -EBUSY). A missing `name` is success.
 * @return : 0, or the first -errno met (removal continues past it). */
int cs_rm_rf_at(int dirfd, const char *name);

/*! cs_fd_set_cloexec() / cs_fd_set_nonblock() : set or clear the flag. */
int cs_fd_set_cloexec(int fd, int enable);
int cs_fd_set_nonblock(int fd, int enable);

/*! cs_close_fds_except() :
 *  Close every descriptor >= `min_fd` except the `n_keep` ones in `keep`
 *  (in any order; those below `min_fd` are ignored). close_range() where the
 *  kernel has it (5.9), else those /proc/self/fd lists, else one close() per
 *  number below RLIMIT_NOFILE's hard limit.
 *  No allocation: safe in a child between clone() and execve().
 * @return : 0, or -errno from close_range(). */
int cs_close_fds_except(int min_fd, const int *keep, size_t n_keep);

/*! cs_send_fd() / cs_recv_fd() :
 *  Pass one descriptor over a unix socket with SCM_RIGHTS, together with
 *  `len` bytes of `data` (at least one byte is always sent; on a stream
 *  socket what the first sendmsg() did not take follows it). The received
 *  descriptor has O_CLOEXEC.
 * @return : 0 / the received fd, or -errno (-EBADMSG if no fd arrived). */
int cs_send_fd(int sock, int fd, const void *data, size_t len);
int cs_recv_fd(int sock, void *data, size_t len);

/*! cs_unix_connect() :
 *  Connect a new SOCK_STREAM unix socket (O_CLOEXEC) to `path`; *ret_fd is
 *  owned by the caller.
 * @return : 0, -ENAMETOOLONG if `path` does not fit a sockaddr_un, or -errno. */
int cs_unix_connect(const char *path, int *ret_fd);

/*! cs_proc_open() :
 *  Open `name` (relative, e.g. "sys/net/ipv4/ip_forward") under the procfs
 *  mounted on /proc, with `flags` | O_CLOEXEC. /proc itself must be the root
 *  of a procfs (not a symlink, nor anything mounted or bound in its place)
 *  and `name` is resolved without symlinks and without crossing a mount, so
 *  a rootfs or a mount over a proc file cannot redirect the access to another
 *  file (the CVE-2025-52881 class).
 * @return : the fd, -EXDEV if /proc or `name` is not on that procfs, or -errno. */
int cs_proc_open(const char *name, int flags);

#endif
