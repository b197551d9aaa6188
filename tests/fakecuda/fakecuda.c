/* SPDX-License-Identifier: Apache-2.0 */
/* fakecuda: entry point resolution, initialisation and devices. */
#include "fakecuda.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAKE_API __attribute__((visibility("default")))

static int initialized;

int fakecuda_initialized(void)
{
	return initialized;
}

static int device_count(void)
{
	const char *s = getenv("FAKECUDA_DEVICES");
	int n = s ? atoi(s) : 1;
	return n < 0 ? 0 : n;
}

FAKE_API CUresult cuInit(unsigned int flags)
{
	if (flags != 0)
		return CUDA_ERROR_INVALID_VALUE;
	if (device_count() == 0)
		return CUDA_ERROR_NO_DEVICE;
	initialized = 1;
	fakecuda_checkpoint_attach();
	return CUDA_SUCCESS;
}

FAKE_API CUresult cuDriverGetVersion(int *version)
{
	if (!version)
		return CUDA_ERROR_INVALID_VALUE;
	*version = CUDA_VERSION;
	return CUDA_SUCCESS;
}

FAKE_API CUresult cuDeviceGetCount(int *count)
{
	if (!initialized)
		return CUDA_ERROR_NOT_INITIALIZED;
	if (!count)
		return CUDA_ERROR_INVALID_VALUE;
	*count = device_count();
	return CUDA_SUCCESS;
}

FAKE_API CUresult cuDeviceGet(CUdevice *dev, int ordinal)
{
	if (!initialized)
		return CUDA_ERROR_NOT_INITIALIZED;
	if (!dev || ordinal < 0 || ordinal >= device_count())
		return CUDA_ERROR_INVALID_DEVICE;
	*dev = ordinal;
	return CUDA_SUCCESS;
}

FAKE_API CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
	if (!initialized)
		return CUDA_ERROR_NOT_INITIALIZED;
	if (!name || len <= 0 || dev < 0 || dev >= device_count())
		return CUDA_ERROR_INVALID_VALUE;
	snprintf(name, (size_t) len, "fakecuda device %d", dev);
	return CUDA_SUCCESS;
}

FAKE_API CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
	if (!initialized)
		return CUDA_ERROR_NOT_INITIALIZED;
	if (!uuid || dev < 0 || dev >= device_count())
		return CUDA_ERROR_INVALID_VALUE;
	memset(uuid->bytes, 0, sizeof(uuid->bytes));
	memcpy(uuid->bytes, "fakecuda", 8);
	uuid->bytes[15] = (char) dev;
	return CUDA_SUCCESS;
}

FAKE_API CUresult cuGetErrorString(CUresult error, const char **str)
{
	if (!str)
		return CUDA_ERROR_INVALID_VALUE;
	*str = error == CUDA_SUCCESS ? "no error" : "fakecuda error";
	return CUDA_SUCCESS;
}

FAKE_API CUresult cuGetErrorName(CUresult error, const char **str)
{
	return cuGetErrorString(error, str);
}

/* Resolve `symbol` to the fake's own export: the name itself, or its
 * versioned variants (cuMemAlloc -> cuMemAlloc_v2), as the real driver does
 * for the ABI version the caller was compiled against. */
FAKE_API CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion,
				      cuuint64_t flags, CUdriverProcAddressQueryResult *status)
{
	static const char *const suffixes[] = {"_v3", "_v2", ""};
	char name[256];

	if (!symbol || !pfn)
		return CUDA_ERROR_INVALID_VALUE;
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(name, sizeof(name), "%s%s", symbol, suffixes[i]);
		void *fn = dlsym(RTLD_DEFAULT, name);
		if (fn) {
			*pfn = fn;
			if (status)
				*status = CU_GET_PROC_ADDRESS_SUCCESS;
			return CUDA_SUCCESS;
		}
	}
	*pfn = NULL;
	if (status)
		*status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
	return CUDA_ERROR_NOT_FOUND;
}
