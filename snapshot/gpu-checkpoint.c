/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The GPU checkpoint driver: the CUDA driver's cuCheckpointProcess* API
 * (driver r570+, CUDA 12.8), called from outside the target process.
 *
 * libcuda.so.1 is dlopened, never linked; cuGetProcAddress is the only
 * symbol taken with dlsym and every other entry point is resolved through
 * it, for the ABI of the headers we were compiled against. All args structs
 * are zeroed before use: their reserved fields changed meaning between
 * toolkits, and the driver rejects non-zero reserved bytes.
 */
#include "criu-internal.h"
#include "stoke-checkpoint.h"

#include "cleanup.h"
#include "dlopen-table.h"

#include <cuda.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GPU_SYMS(X)                      \
	X(cuInit)                        \
	X(cuDeviceGetCount)              \
	X(cuDeviceGet)                   \
	X(cuDeviceGetUuid)               \
	X(cuGetErrorName)                \
	X(cuCheckpointProcessGetState)   \
	X(cuCheckpointProcessLock)       \
	X(cuCheckpointProcessCheckpoint) \
	X(cuCheckpointProcessRestore)    \
	X(cuCheckpointProcessUnlock)

struct gpu_table {
#define X(s) typeof(&s) s;
	GPU_SYMS(X)
#undef X
};

static const struct cs_dl_sym gpu_syms[] = {
#define X(s) CS_DL_SYM(struct gpu_table, s),
	GPU_SYMS(X)
#undef X
};

struct stoke_gpu {
	void *handle;
	struct gpu_table cu;
};

typedef CUresult (*get_proc_fn)(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
				CUdriverProcAddressQueryResult *status);

/* cuda.h maps some names to versioned ones (cuDeviceGetUuid is
 * cuDeviceGetUuid_v2), so the table carries "name_vN"; cuGetProcAddress
 * wants the base name and picks the version from cudaVersion. */
static int resolve_with_get_proc(void *handle, const char *name, void **ret_fn, void *userdata)
{
	get_proc_fn get_proc = (get_proc_fn) userdata;
	CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
	char base[128];
	void *fn = NULL;

	snprintf(base, sizeof(base), "%s", name);
	char *v = strrchr(base, '_');
	if (v && v[1] == 'v' && v[2] >= '0' && v[2] <= '9')
		*v = '\0';
	CUresult res = get_proc(base, &fn, CUDA_VERSION, CU_GET_PROC_ADDRESS_DEFAULT, &status);
	if (res != CUDA_SUCCESS || status != CU_GET_PROC_ADDRESS_SUCCESS || !fn)
		return -ENOENT;
	*ret_fn = fn;
	return 0;
}

static const char *cu_name(struct stoke_gpu *gpu, CUresult res)
{
	const char *s = NULL;
	if (gpu->cu.cuGetErrorName && gpu->cu.cuGetErrorName(res, &s) == CUDA_SUCCESS && s)
		return s;
	return "unknown CUDA error";
}

int stoke_gpu_open(struct stoke_gpu **ret_gpu)
{
	_cleanup_free_ struct stoke_gpu *gpu = calloc(1, sizeof(*gpu));
	const char *missing = NULL;
	int r;

	cr_clear_error();
	if (!gpu)
		return -ENOMEM;

	/* cuGetProcAddress itself comes from dlsym; open the library once to
	 * find it, then let the table loader resolve the rest through it. */
	void *probe = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!probe) {
		const char *e = dlerror();
		cr_set_error("cannot load libcuda.so.1: %s", e ? e : "not found");
		return -ENOENT;
	}
	get_proc_fn get_proc = (get_proc_fn) dlsym(probe, "cuGetProcAddress_v2");
	if (!get_proc) {
		dlclose(probe);
		cr_set_error("libcuda.so.1 has no cuGetProcAddress_v2 (driver older than CUDA 12)");
		return -ENOSYS;
	}
	r = cs_dl_open_table("libcuda.so.1", gpu_syms, ELEMENTSOF(gpu_syms), &gpu->cu,
			     resolve_with_get_proc, (void *) get_proc, &gpu->handle, &missing);
	/* The table holds its own reference; the probe's can go. */
	dlclose(probe);
	if (r == -ENOSYS) {
		cr_set_error("the CUDA driver lacks %s: GPU checkpoint needs driver r570 or newer",
			     missing ? missing : "a checkpoint entry point");
		return r;
	}
	if (r < 0) {
		cr_set_error("cannot load libcuda.so.1: %s", cs_dl_error());
		return r;
	}
	CUresult res = gpu->cu.cuInit(0);
	if (res != CUDA_SUCCESS) {
		cr_set_error("cuInit failed: %s", cu_name(gpu, res));
		dlclose(gpu->handle);
		return -ENODEV;
	}
	*ret_gpu = TAKE_PTR(gpu);
	return 0;
}

struct stoke_gpu *stoke_gpu_close(struct stoke_gpu *gpu)
{
	if (!gpu)
		return NULL;
	/* libcuda does not support being unloaded once initialised (its threads
	 * keep running); keep the mapping, drop only our table. */
	free(gpu);
	return NULL;
}

int stoke_gpu_get_state(struct stoke_gpu *gpu, pid_t pid, enum stoke_gpu_state *ret_state)
{
	CUprocessState st = CU_PROCESS_STATE_RUNNING;
	CUresult res = gpu->cu.cuCheckpointProcessGetState((int) pid, &st);

	switch (res) {
	case CUDA_SUCCESS:
		break;
	/* The driver's ways of saying "this process has no CUDA state". */
	case CUDA_ERROR_NOT_FOUND:
	case CUDA_ERROR_NOT_SUPPORTED:
	case CUDA_ERROR_NOT_INITIALIZED:
		*ret_state = STOKE_GPU_NONE;
		return 0;
	default:
		cr_set_error("cuCheckpointProcessGetState(%d): %s", (int) pid, cu_name(gpu, res));
		return -EIO;
	}
	switch (st) {
	case CU_PROCESS_STATE_RUNNING:
		*ret_state = STOKE_GPU_RUNNING;
		break;
	case CU_PROCESS_STATE_LOCKED:
		*ret_state = STOKE_GPU_LOCKED;
		break;
	case CU_PROCESS_STATE_CHECKPOINTED:
		*ret_state = STOKE_GPU_CHECKPOINTED;
		break;
	default:
		*ret_state = STOKE_GPU_FAILED;
		break;
	}
	return 0;
}

static int unlock(struct stoke_gpu *gpu, pid_t pid)
{
	CUcheckpointUnlockArgs args;
	memset(&args, 0, sizeof(args));
	CUresult res = gpu->cu.cuCheckpointProcessUnlock((int) pid, &args);
	if (res != CUDA_SUCCESS) {
		cr_set_error("cuCheckpointProcessUnlock(%d): %s", (int) pid, cu_name(gpu, res));
		return res == CUDA_ERROR_ILLEGAL_STATE ? -EBUSY : -EIO;
	}
	return 0;
}

int stoke_gpu_checkpoint(struct stoke_gpu *gpu, pid_t pid, unsigned int lock_timeout_ms)
{
	CUcheckpointLockArgs lock;
	CUcheckpointCheckpointArgs ckpt;
	CUresult res;

	cr_clear_error();
	memset(&lock, 0, sizeof(lock));
	lock.timeoutMs = lock_timeout_ms;
	res = gpu->cu.cuCheckpointProcessLock((int) pid, &lock);
	if (res != CUDA_SUCCESS) {
		cr_set_error("cuCheckpointProcessLock(%d, timeout %u ms): %s", (int) pid,
			     lock_timeout_ms, cu_name(gpu, res));
		if (res == CUDA_ERROR_NOT_READY || res == CUDA_ERROR_TIMEOUT)
			return -ETIMEDOUT;
		return res == CUDA_ERROR_ILLEGAL_STATE ? -EBUSY : -EIO;
	}

	memset(&ckpt, 0, sizeof(ckpt));
	res = gpu->cu.cuCheckpointProcessCheckpoint((int) pid, &ckpt);
	if (res != CUDA_SUCCESS) {
		char why[256];
		snprintf(why, sizeof(why), "cuCheckpointProcessCheckpoint(%d): %s", (int) pid,
			 cu_name(gpu, res));
		/* Leave the process running as it was. */
		(void) unlock(gpu, pid);
		cr_set_error("%s", why);
		return res == CUDA_ERROR_OUT_OF_MEMORY ? -ENOMEM : -EIO;
	}
	return 0;
}

int stoke_gpu_uuids(struct stoke_gpu *gpu, uint8_t (**ret)[16], size_t *ret_n)
{
	int n = 0;
	CUresult res = gpu->cu.cuDeviceGetCount(&n);
	if (res != CUDA_SUCCESS || n < 0) {
		cr_set_error("cuDeviceGetCount: %s", cu_name(gpu, res));
		return -EIO;
	}
	_cleanup_free_ uint8_t(*u)[16] = calloc(n > 0 ? (size_t) n : 1, 16);
	if (!u)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		CUdevice dev;
		CUuuid uuid;
		res = gpu->cu.cuDeviceGet(&dev, i);
		if (res == CUDA_SUCCESS)
			res = gpu->cu.cuDeviceGetUuid(&uuid, dev);
		if (res != CUDA_SUCCESS) {
			cr_set_error("GPU %d: cannot read its UUID: %s", i, cu_name(gpu, res));
			return -EIO;
		}
		memcpy(u[i], uuid.bytes, 16);
	}
	*ret = TAKE_PTR(u);
	*ret_n = (size_t) n;
	return 0;
}

int stoke_gpu_restore(struct stoke_gpu *gpu, pid_t pid, const uint8_t (*old_uuids)[16],
		      size_t n_old)
{
	_cleanup_free_ uint8_t(*now)[16] = NULL;
	_cleanup_free_ CUcheckpointGpuPair *pairs = NULL;
	CUcheckpointRestoreArgs args;
	size_t n = 0;
	int r;

	cr_clear_error();
	r = stoke_gpu_uuids(gpu, &now, &n);
	if (r < 0)
		return r;
	if (old_uuids && n_old != n) {
		cr_set_error("the checkpoint was taken with %zu GPU(s), this machine has %zu",
			     n_old, n);
		return -EXDEV;
	}
	/* The driver wants every GPU it can see in the map, used or not. */
	pairs = calloc(n > 0 ? n : 1, sizeof(*pairs));
	if (!pairs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		memcpy(pairs[i].oldUuid.bytes, old_uuids ? old_uuids[i] : now[i], 16);
		memcpy(pairs[i].newUuid.bytes, now[i], 16);
	}

	memset(&args, 0, sizeof(args));
	args.gpuPairs = pairs;
	args.gpuPairsCount = (unsigned int) n;
	CUresult res = gpu->cu.cuCheckpointProcessRestore((int) pid, &args);
	if (res != CUDA_SUCCESS) {
		cr_set_error("cuCheckpointProcessRestore(%d): %s", (int) pid, cu_name(gpu, res));
		if (res == CUDA_ERROR_OUT_OF_MEMORY)
			return -ENOMEM;
		return res == CUDA_ERROR_ILLEGAL_STATE ? -EBUSY : -EIO;
	}
	return unlock(gpu, pid);
}
