/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging, for the command layer only.
 *
 * Library code (snapshot/, loader/, most of shim/) never logs above debug
 * level: it returns -errno and the command layer logs once, with the context
 * a user needs ("what failed, on which file or container, and why").
 *
 * Messages go to stderr and, when cs_log_open() was called (the runtime's
 * --log flag), also to that file, as text or as one JSON object per line
 * ({"level":"error","msg":"...","time":"..."}), which is what containerd's
 * runc shim reads back to report a runtime error.
 *
 * "%m" in a format is expanded to strerror() of the error passed to the
 * *_errno() functions (not of errno).
 *
 * Thread-safety: the sink is process-global and set up once at start-up;
 * logging calls themselves may be made from any thread (each line is
 * written with one write(2)).
 */
#ifndef STOKE_COMMON_LOG_H
#define STOKE_COMMON_LOG_H

#include <stdbool.h>
#include <stdarg.h>

enum cs_log_level {
	CS_LOG_ERROR = 0,
	CS_LOG_WARNING,
	CS_LOG_INFO,
	CS_LOG_DEBUG,
};

enum cs_log_format {
	CS_LOG_TEXT = 0,
	CS_LOG_JSON,
};

/*! cs_log_open() :
 *  Also send log lines to `path` (appended, created 0600), in `format`.
 *  `path` NULL or "" means stderr only. The path string is not retained.
 * @return : 0, or -errno if the file cannot be opened. */
int cs_log_open(const char *path, enum cs_log_format format);

/*! cs_log_set_level() : lines above `level` are dropped (default CS_LOG_INFO). */
void cs_log_set_level(enum cs_log_level level);

/*! cs_log_set_stderr() : whether lines also go to stderr (default true). */
void cs_log_set_stderr(bool enabled);

/*! cs_log_set_stderr_logfmt() : stderr lines in runc's text format,
 *  time="..." level=... msg="..." (for --debug), instead of "ident: msg". */
void cs_log_set_stderr_logfmt(bool enabled);

/*! cs_log_set_ident() : prefix for stderr lines (default "stoke"); not copied. */
void cs_log_set_ident(const char *ident);

/*! cs_log_errno() :
 *  Log at `level`; "%m" expands to strerror(|error|).
 * @return : `error` when it is negative, else -EIO, so a caller can write
 *           `return log_error_errno(r, "...")`. */
int cs_log_errno(enum cs_log_level level, int error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

void cs_log(enum cs_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cs_logv(enum cs_log_level level, int error, const char *fmt, va_list ap);

#define log_error(...)		 cs_log(CS_LOG_ERROR, __VA_ARGS__)
#define log_warning(...)	 cs_log(CS_LOG_WARNING, __VA_ARGS__)
#define log_info(...)		 cs_log(CS_LOG_INFO, __VA_ARGS__)
#define log_debug(...)		 cs_log(CS_LOG_DEBUG, __VA_ARGS__)
#define log_error_errno(r, ...)	 cs_log_errno(CS_LOG_ERROR, (r), __VA_ARGS__)
#define log_warning_errno(r, ...) cs_log_errno(CS_LOG_WARNING, (r), __VA_ARGS__)
#define log_debug_errno(r, ...)	 cs_log_errno(CS_LOG_DEBUG, (r), __VA_ARGS__)

#endif
