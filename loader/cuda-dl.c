/* SPDX-License-Identifier: Apache-2.0 */
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "cuda-dl.h"
#include "dlopen-table.h"

/* Names are the unversioned base names (#s of the unexpanded argument), as
 * cuGetProcAddress wants them; the offsets use the header's macro-expanded
 * field names (cuMemAlloc -> cuMemAlloc_v2), which match the prototypes. */
static const struct cs_dl_sym cuda_syms[] = {
#define X(s) {#s, offsetof(struct ldr_cuda, s), false},
	LDR_CUDA_SYMS(X)
#undef X
};

typedef CUresult (*get_proc_fn)(const char *, void **, int, cuuint64_t,
				CUdriverProcAddressQueryResult *);

static int resolve_via_driver(void *handle, const char *name, void **ret_fn, void *userdata)
{
	get_proc_fn *getter = userdata;
	if (!*getter) {
		*getter = (get_proc_fn) dlsym(handle, "cuGetProcAddress_v2");
		if (!*getter)
			return -ENOSYS;
	}
	CUdriverProcAddressQueryResult st = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
	void *fn = NULL;
	CUresult r = (*getter)(name, &fn, LDR_CUDA_ABI_VERSION, CU_GET_PROC_ADDRESS_DEFAULT, &st);
	if (r != CUDA_SUCCESS || st != CU_GET_PROC_ADDRESS_SUCCESS || !fn)
		return -ENOENT;
	*ret_fn = fn;
	return 0;
}

int ldr_cu(CUresult r)
{
	switch (r) {
	case CUDA_SUCCESS:
		return 0;
	case CUDA_ERROR_OUT_OF_MEMORY:
		return -ENOMEM;
	case CUDA_ERROR_NOT_SUPPORTED:
		return -EOPNOTSUPP;
	case CUDA_ERROR_NO_DEVICE:
	case CUDA_ERROR_INVALID_DEVICE:
		return -ENODEV;
	case CUDA_ERROR_NOT_READY:
		return -EAGAIN;
	case CUDA_ERROR_INVALID_VALUE:
		return -EINVAL;
	default:
		return -EIO;
	}
}

int ldr_cuda_open(struct ldr_cuda **ret)
{
	struct ldr_cuda *cu = calloc(1, sizeof(*cu));
	get_proc_fn getter = NULL;
	int r;
	if (!cu)
		return -ENOMEM;
	r = cs_dl_open_table("libcuda.so.1", cuda_syms, sizeof(cuda_syms) / sizeof(cuda_syms[0]),
			     cu, resolve_via_driver, &getter, &cu->dl, NULL);
	if (r < 0) {
		free(cu);
		return r == -ENOENT ? -ENODEV : r;
	}
	r = ldr_cu(cu->cuInit(0));
	if (r >= 0)
		r = ldr_cu(cu->cuDeviceGetCount(&cu->n_devices));
	if (r >= 0 && cu->n_devices <= 0)
		r = -ENODEV;
	if (r >= 0 && cu->n_devices > LDR_MAX_GPUS)
		cu->n_devices = LDR_MAX_GPUS;
	for (int i = 0; r >= 0 && i < cu->n_devices; i++)
		r = ldr_cu(cu->cuDeviceGet(&cu->dev[i], i));
	if (r < 0) {
		ldr_cuda_close(cu);
		return r;
	}
	*ret = cu;
	return 0;
}

int ldr_cuda_set_device(struct ldr_cuda *cu, int d)
{
	if (d < 0 || d >= cu->n_devices)
		return -ENODEV;
	if (!cu->ctx[d]) {
		int r = ldr_cu(cu->cuDevicePrimaryCtxRetain(&cu->ctx[d], cu->dev[d]));
		if (r < 0) {
			cu->ctx[d] = NULL;
			return r;
		}
	}
	return ldr_cu(cu->cuCtxSetCurrent(cu->ctx[d]));
}

void ldr_cuda_close(struct ldr_cuda *cu)
{
	if (!cu)
		return;
	for (int i = 0; i < cu->n_devices; i++)
		if (cu->ctx[i])
			(void) cu->cuDevicePrimaryCtxRelease(cu->dev[i]);
	if (cu->dl)
		dlclose(cu->dl);
	free(cu);
}
