/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cuda-pattern: a CUDA program for checkpoint tests. It allocates MIB MiB of
 * device memory through the driver API, fills it with a known pattern, then
 * counts forever; on SIGUSR1 it copies the device memory back and checks it
 * byte for byte. Its status file holds "COUNT VERIFIES RESULT" (RESULT: ok,
 * BAD or none), rewritten every few milliseconds.
 *
 *   cuda-pattern STATUS_FILE MIB
 *
 * libcuda.so.1 is dlopened and resolved through cuGetProcAddress, like
 * stoke itself: LD_LIBRARY_PATH picks the fake driver in CI and the real one
 * on a GPU machine. MIB 0 makes a CUDA process without device memory.
 * Exit status: 77 when no driver or no device, 1 on a CUDA error.
 */
#include <cuda.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef CUresult (*get_proc_fn)(const char *, void **, int, cuuint64_t,
				CUdriverProcAddressQueryResult *);

static struct {
	typeof(&cuInit) init;
	typeof(&cuDeviceGet) device_get;
	typeof(&cuDevicePrimaryCtxRetain) primary_ctx_retain;
	typeof(&cuCtxSetCurrent) ctx_set_current;
	typeof(&cuMemAlloc) mem_alloc;
	typeof(&cuMemcpyHtoD) htod;
	typeof(&cuMemcpyDtoH) dtoh;
} cu;

static volatile sig_atomic_t verify_requested;

static void on_usr1(int sig)
{
	(void) sig;
	verify_requested = 1;
}

static void *resolve(get_proc_fn get_proc, const char *name)
{
	void *fn = NULL;
	CUdriverProcAddressQueryResult st;
	if (get_proc(name, &fn, CUDA_VERSION, CU_GET_PROC_ADDRESS_DEFAULT, &st) != CUDA_SUCCESS ||
	    st != CU_GET_PROC_ADDRESS_SUCCESS)
		return NULL;
	return fn;
}

static uint8_t pattern(size_t i)
{
	return (uint8_t) ((i * 131u) ^ (i >> 12) ^ 0x5a);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: cuda-pattern STATUS_FILE MIB\n");
		return 2;
	}
	size_t size = (size_t) strtoul(argv[2], NULL, 10) << 20;

	void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		fprintf(stderr, "cuda-pattern: no libcuda.so.1: %s\n", dlerror());
		return 77;
	}
	get_proc_fn get_proc = (get_proc_fn) dlsym(lib, "cuGetProcAddress_v2");
	if (!get_proc)
		return 77;
	cu.init = resolve(get_proc, "cuInit");
	cu.device_get = resolve(get_proc, "cuDeviceGet");
	cu.primary_ctx_retain = resolve(get_proc, "cuDevicePrimaryCtxRetain");
	cu.ctx_set_current = resolve(get_proc, "cuCtxSetCurrent");
	cu.mem_alloc = resolve(get_proc, "cuMemAlloc");
	cu.htod = resolve(get_proc, "cuMemcpyHtoD");
	cu.dtoh = resolve(get_proc, "cuMemcpyDtoH");
	if (!cu.init || cu.init(0) != CUDA_SUCCESS) {
		fprintf(stderr, "cuda-pattern: cuInit failed (no device)\n");
		return 77;
	}

	CUdeviceptr dptr = 0;
	uint8_t *host = NULL;
	if (size > 0) {
		CUdevice dev;
		CUcontext ctx;
		if (!cu.device_get || !cu.primary_ctx_retain || !cu.ctx_set_current ||
		    !cu.mem_alloc || !cu.htod || !cu.dtoh) {
			fprintf(stderr, "cuda-pattern: the driver lacks the memory API\n");
			return 77;
		}
		host = malloc(size);
		if (!host || cu.device_get(&dev, 0) != CUDA_SUCCESS ||
		    cu.primary_ctx_retain(&ctx, dev) != CUDA_SUCCESS ||
		    cu.ctx_set_current(ctx) != CUDA_SUCCESS ||
		    cu.mem_alloc(&dptr, size) != CUDA_SUCCESS)
			return 1;
		for (size_t i = 0; i < size; i++)
			host[i] = pattern(i);
		if (cu.htod(dptr, host, size) != CUDA_SUCCESS)
			return 1;
		memset(host, 0, size); /* the only copy is on the device now */
	}

	signal(SIGUSR1, on_usr1);
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return 1;
	unsigned long verifies = 0;
	const char *result = "none";
	for (unsigned long count = 1;; count++) {
		if (verify_requested) {
			verify_requested = 0;
			result = "ok";
			if (size > 0) {
				if (cu.dtoh(host, dptr, size) != CUDA_SUCCESS)
					result = "BAD";
				for (size_t i = 0; i < size && result[0] == 'o'; i++)
					if (host[i] != pattern(i))
						result = "BAD";
				memset(host, 0, size);
			}
			verifies++;
		}
		char line[96];
		/* Fixed width, rewritten in place: a reader never sees it empty. */
		int n = snprintf(line, sizeof(line), "%20lu %20lu %-4s\n", count, verifies, result);
		if (pwrite(fd, line, (size_t) n, 0) != n)
			return 1;
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}
