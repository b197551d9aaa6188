/* SPDX-License-Identifier: Apache-2.0 */
#include "path-util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cs_path_join(const char *a, const char *b, char **ret)
{
	size_t la = strlen(a);

	while (la > 1 && a[la - 1] == '/')
		la--;
	while (*b == '/')
		b++;
	size_t lb = strlen(b);
	char *s = malloc(la + 1 + lb + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, a, la);
	size_t o = la;
	if (lb > 0 && !(la == 1 && a[0] == '/'))
		s[o++] = '/';
	memcpy(s + o, b, lb + 1);
	*ret = s;
	return 0;
}

bool cs_path_is_safe_relative(const char *path)
{
	if (!path || !*path || path[0] == '/')
		return false;
	for (const char *p = path; *p;) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t) (e - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!e)
			break;
		p = e + 1;
		if (!*p)
			return false; /* trailing slash */
	}
	return true;
}
