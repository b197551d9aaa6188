/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CUDA Driver API, loaded at run time: libcuda.so.1 is dlopened and
 * every entry point below is resolved through cuGetProcAddress (never
 * linked, never raw dlsym except for cuGetProcAddress itself), so binaries
 * run on machines without a GPU and pick the ABI version matching the
 * prototypes in the headers we compiled against.
 *
 * Errors: -errno (ldr_cu() maps CUresult). Thread-safety: a table is filled
 * once by ldr_cuda_open() and then only read; contexts are per device and
 * made current per thread by ldr_cuda_set_device().
 */
#ifndef STOKE_LOADER_CUDA_DL_H
#define STOKE_LOADER_CUDA_DL_H

#include <cuda.h>

#define LDR_MAX_GPUS 16

/* The driver ABI we ask cuGetProcAddress for: every call below has had
 * this ABI since CUDA 12.0, so any driver >= 525 serves it. */
#define LDR_CUDA_ABI_VERSION 12000

#define LDR_CUDA_SYMS(X)             \
	X(cuInit)                    \
	X(cuDriverGetVersion)        \
	X(cuDeviceGetCount)          \
	X(cuDeviceGet)               \
	X(cuDevicePrimaryCtxRetain)  \
	X(cuDevicePrimaryCtxRelease) \
	X(cuCtxSetCurrent)           \
	X(cuMemAlloc)                \
	X(cuMemFree)                 \
	X(cuMemHostRegister)         \
	X(cuMemHostUnregister)       \
	X(cuMemcpyHtoDAsync)         \
	X(cuMemcpyDtoH)              \
	X(cuStreamCreate)            \
	X(cuStreamDestroy)           \
	X(cuStreamSynchronize)       \
	X(cuEventCreate)             \
	X(cuEventRecord)             \
	X(cuEventQuery)              \
	X(cuEventSynchronize)        \
	X(cuEventDestroy)            \
	X(cuGetErrorString)

struct ldr_cuda {
	void *dl;
#define X(s) typeof(&s) s;
	LDR_CUDA_SYMS(X)
#undef X
	int n_devices;
	CUdevice dev[LDR_MAX_GPUS];
	CUcontext ctx[LDR_MAX_GPUS]; /* retained primary contexts, NULL until used */
};

/*! ldr_cuda_open() :
 *  Load the driver, resolve the table, cuInit(0), count devices.
 *  *ret is owned by the caller (ldr_cuda_close()).
 * @return : 0; -ENODEV no libcuda.so.1 or no device; -ENOSYS an entry point
 *           is missing (driver too old); -EIO cuInit failed. */
int ldr_cuda_open(struct ldr_cuda **ret);

/*! ldr_cuda_close() : release retained contexts and the library; NULL ok. */
void ldr_cuda_close(struct ldr_cuda *cu);

/*! ldr_cuda_set_device() : retain device `d`'s primary context (once) and
 *  make it current in the calling thread. -ENODEV for a bad ordinal. */
int ldr_cuda_set_device(struct ldr_cuda *cu, int d);

/* CUresult -> -errno. */
int ldr_cu(CUresult r);

#endif
