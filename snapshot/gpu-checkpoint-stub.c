/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The GPU checkpoint driver when stoke is built without CUDA headers: every
 * call says GPU checkpoint is unavailable, so trees without CUDA still
 * checkpoint and trees with CUDA are refused clearly.
 */
#include "criu-internal.h"
#include "stoke-checkpoint.h"

#include <errno.h>

int stoke_gpu_open(struct stoke_gpu **ret_gpu)
{
	cr_set_error("this stoke was built without CUDA headers (meson -Dgpu)");
	return -ENOSYS;
}

struct stoke_gpu *stoke_gpu_close(struct stoke_gpu *gpu)
{
	return NULL;
}

int stoke_gpu_get_state(struct stoke_gpu *gpu, pid_t pid, enum stoke_gpu_state *ret_state)
{
	return -ENOSYS;
}

int stoke_gpu_checkpoint(struct stoke_gpu *gpu, pid_t pid, unsigned int lock_timeout_ms)
{
	return -ENOSYS;
}

int stoke_gpu_uuids(struct stoke_gpu *gpu, uint8_t (**ret)[16], size_t *ret_n)
{
	return -ENOSYS;
}

int stoke_gpu_restore(struct stoke_gpu *gpu, pid_t pid, const uint8_t (*old_uuids)[16],
		      size_t n_old)
{
	return -ENOSYS;
}
