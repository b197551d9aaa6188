/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Scoped cleanup for single-owner locals, and ownership transfer out of them.
 *
 *   _cleanup_free_ char *s = NULL;
 *   _cleanup_close_ int fd = -EBADF;
 *   ...
 *   *ret_fd = TAKE_FD(fd);   (the local no longer owns it)
 *
 * Every destructor here accepts "nothing to release" (NULL, a negative fd).
 * Thread-safety: these are plain functions on locals; no shared state.
 */
#ifndef STOKE_COMMON_CLEANUP_H
#define STOKE_COMMON_CLEANUP_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p)
{
	free(*(void **) p);
}

static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		(void) close(*fd);
		errno = saved;
	}
}

static inline void fclosep(FILE **f)
{
	if (*f)
		(void) fclose(*f);
}

static inline void closedirp(DIR **d)
{
	if (*d)
		(void) closedir(*d);
}

#define _cleanup_free_	   _cleanup_(freep)
#define _cleanup_close_	   _cleanup_(closep)
#define _cleanup_fclose_   _cleanup_(fclosep)
#define _cleanup_closedir_ _cleanup_(closedirp)

/* Move a pointer out of a cleanup-managed local. */
#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		typeof(p) _p_ = (p);                                                               \
		(p) = NULL;                                                                        \
		_p_;                                                                               \
	})

/* Move an fd out of a cleanup-managed local. */
#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _fd_ = (fd);                                                                   \
		(fd) = -EBADF;                                                                     \
		_fd_;                                                                              \
	})

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* Turn a libc "-1 and errno" result into -errno (and pass other values through). */
#define RET_NERRNO(expr)                                                                           \
	({                                                                                         \
		typeof(expr) _r_ = (expr);                                                         \
		_r_ < 0 ? -errno : _r_;                                                            \
	})

#endif
