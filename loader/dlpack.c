/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DLPack export (ABI 0.8, the layout torch.from_dlpack and numpy read):
 * one allocation per exported tensor holding the DLManagedTensor, its
 * shape, and a model reference dropped by the deleter.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "model.h"

enum { DL_CPU = 1, DL_CUDA = 2 };
enum { DL_INT = 0, DL_UINT = 1, DL_FLOAT = 2, DL_BFLOAT = 4, DL_COMPLEX = 5, DL_BOOL = 6 };

struct dl_device {
	int32_t device_type;
	int32_t device_id;
};

struct dl_dtype {
	uint8_t code;
	uint8_t bits;
	uint16_t lanes;
};

struct dl_tensor {
	void *data;
	struct dl_device device;
	int32_t ndim;
	struct dl_dtype dtype;
	int64_t *shape;
	int64_t *strides; /* NULL: compact row-major */
	uint64_t byte_offset;
};

struct dl_managed_tensor {
	struct dl_tensor dl_tensor;
	void *manager_ctx;
	void (*deleter)(struct dl_managed_tensor *self);
};

struct export
{
	struct dl_managed_tensor mt;
	int64_t shape[LDR_MAX_DIMS];
};

static const struct {
	const char *name;
	struct dl_dtype dt;
} dl_types[] = {
	{"BOOL", {DL_BOOL, 8, 1}},    {"U8", {DL_UINT, 8, 1}},	    {"I8", {DL_INT, 8, 1}},
	{"I16", {DL_INT, 16, 1}},     {"U16", {DL_UINT, 16, 1}},    {"F16", {DL_FLOAT, 16, 1}},
	{"BF16", {DL_BFLOAT, 16, 1}}, {"I32", {DL_INT, 32, 1}},	    {"U32", {DL_UINT, 32, 1}},
	{"F32", {DL_FLOAT, 32, 1}},   {"F64", {DL_FLOAT, 64, 1}},   {"I64", {DL_INT, 64, 1}},
	{"U64", {DL_UINT, 64, 1}},    {"C64", {DL_COMPLEX, 64, 1}},
};

static void export_delete(struct dl_managed_tensor *self)
{
	ldr_model_unref(self->manager_ctx);
	free(self);
}

int ldr_model_dlpack(struct ldr_model *m, size_t index, void **ret_managed_tensor)
{
	if (!m || index >= m->tensors.n)
		return -ERANGE;
	if (!m->loaded)
		return -ENODATA;
	const struct ldr_tensor *t = &m->tensors.v[index];
	struct export *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	struct dl_tensor *d = &e->mt.dl_tensor;
	d->dtype = (struct dl_dtype){DL_UINT, 8, 1};
	d->ndim = 1;
	e->shape[0] = (int64_t) t->size;
	for (size_t i = 0; i < ELEMENTSOF(dl_types); i++)
		if (strcmp(dl_types[i].name, t->dtype) == 0) {
			d->dtype = dl_types[i].dt;
			d->ndim = (int32_t) t->n_dims;
			for (uint32_t k = 0; k < t->n_dims; k++)
				e->shape[k] = (int64_t) t->shape[k];
			break;
		}
	d->shape = e->shape;
	d->data = t->device < 0 ? t->host : (void *) (uintptr_t) t->dptr;
	d->device = t->device < 0 ? (struct dl_device){DL_CPU, 0}
				  : (struct dl_device){DL_CUDA, t->device};
	e->mt.manager_ctx = ldr_model_ref(m);
	e->mt.deleter = export_delete;
	*ret_managed_tensor = &e->mt;
	return 0;
}
