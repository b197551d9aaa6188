/* SPDX-License-Identifier: Apache-2.0 */
#include "errbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int cs_errf(int r, char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return r;
}

int cs_errf_errno(int r, char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
		size_t n = strlen(err);
		if (r < 0 && n + 1 < errlen)
			snprintf(err + n, errlen - n, ": %s", strerror(-r));
	}
	return r;
}
