/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The read engine behind ldr_model_load(): plans aligned chunk reads over
 * every file's tensor data, chooses O_DIRECT or buffered per chunk from
 * page-cache residency, and runs reader threads (io_uring, or pread when
 * io_uring is refused) that deliver chunks into host memory directly or
 * through pinned staging slots onto GPUs.
 */
#ifndef STOKE_LOADER_ENGINE_H
#define STOKE_LOADER_ENGINE_H

#include "model.h"

/* Defaults chosen by measurement (see loader/README.md). */
#define LDR_DEFAULT_REQUEST_SIZE (2u << 20)
#define LDR_DEFAULT_QUEUE_DEPTH	 16
#define LDR_DEFAULT_WORKERS_MAX	 4
#define LDR_ALIGN		 4096
#define LDR_MAX_GPUS_PUBLIC	 16 /* = LDR_MAX_GPUS in cuda-dl.h */

/* Test-only: set to make io_uring setup fail as if refused (-EPERM). */
#define LDR_TEST_REFUSE_URING_ENV "STOKE_LOADER_TEST_REFUSE_URING"

/* Free what a load allocated (host regions, device memory, the driver). */
void ldr_engine_release(struct ldr_model *m);

#endif
