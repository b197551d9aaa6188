/* SPDX-License-Identifier: Apache-2.0 */
/* Tensor lists and error text shared by the parsers (no other dependencies,
 * so the fuzz targets build from the parsers and this file alone). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

int ldr_errf(char *err, size_t errlen, int r, const char *fmt, ...)
{
	if (err && errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return r;
}

int ldr_tensor_list_push(struct ldr_tensor_list *l, struct ldr_tensor *t)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct ldr_tensor *v = reallocarray(l->v, cap, sizeof(*v));
		if (!v) {
			free(t->name);
			t->name = NULL;
			return -ENOMEM;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *t;
	return 0;
}

void ldr_tensor_list_clear(struct ldr_tensor_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	*l = (struct ldr_tensor_list){};
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct ldr_tensor *) a)->name, ((const struct ldr_tensor *) b)->name);
}

int ldr_check_unique_names(struct ldr_tensor_list *l, const char *fname, char *err, size_t errlen)
{
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), by_name);
	for (size_t i = 1; i < l->n; i++)
		if (strcmp(l->v[i].name, l->v[i - 1].name) == 0)
			return ldr_errf(err, errlen, -EBADMSG, "%s: tensor \"%s\" appears twice",
					fname, l->v[i].name);
	return 0;
}
