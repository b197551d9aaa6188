/* SPDX-License-Identifier: Apache-2.0 */
#include "strv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

char **cs_strv_free(char **v)
{
	if (!v)
		return NULL;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
	return NULL;
}

size_t cs_strv_length(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

int cs_strv_push(char ***v, const char *s)
{
	size_t n = cs_strv_length(*v);
	char *copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	char **nv = realloc(*v, (n + 2) * sizeof(char *));
	if (!nv) {
		free(copy);
		return -ENOMEM;
	}
	nv[n] = copy;
	nv[n + 1] = NULL;
	*v = nv;
	return 0;
}

int cs_strv_env_set(char ***v, const char *kv)
{
	const char *eq = strchr(kv, '=');
	if (!eq)
		return -EINVAL;
	size_t klen = (size_t) (eq - kv) + 1;
	for (char **p = *v; p && *p; p++) {
		if (strncmp(*p, kv, klen) == 0) {
			char *copy = strdup(kv);
			if (!copy)
				return -ENOMEM;
			free(*p);
			*p = copy;
			return 0;
		}
	}
	return cs_strv_push(v, kv);
}
