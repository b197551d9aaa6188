/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Error messages for a caller's buffer: library functions that cannot log
 * (docs/ARCHITECTURE.md: only the command layer logs) describe a failure in `err`
 * (capacity `errlen`; NULL or 0 means "no message wanted") and return the
 * -errno, so the caller logs once with the whole context.
 *
 * Thread-safety: no shared state.
 */
#ifndef STOKE_COMMON_ERRBUF_H
#define STOKE_COMMON_ERRBUF_H

#include <stddef.h>

/*! cs_errf() : write the formatted message into `err`. @return : `r`. */
int cs_errf(int r, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*! cs_errf_errno() :
 *  As cs_errf(), then, when `r` is negative, append ": " and strerror(-r).
 * @return : `r`. */
int cs_errf_errno(int r, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
