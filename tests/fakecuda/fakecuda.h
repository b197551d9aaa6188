/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fakecuda: a test double of libcuda.so.1 over host memory, so CI exercises
 * every GPU code path without a GPU. Tests select it explicitly by putting
 * its directory first in LD_LIBRARY_PATH (it is never installed); the
 * production code dlopens "libcuda.so.1" and resolves every entry point
 * through cuGetProcAddress, exactly as with the real driver.
 *
 * Files: fakecuda.c (entry points, init, devices), fakecuda-mem.c (contexts,
 * memory, streams, events), fakecuda-checkpoint.c (the checkpoint state
 * machine, shared between the checkpointed process and the checkpointer).
 *
 * Knobs (environment, read by the fake only): FAKECUDA_DEVICES (device
 * count, default 1), FAKECUDA_DEVICE_MEMORY (bytes per device, default 1 GiB);
 * each file documents its own further knobs.
 */
#ifndef STOKE_FAKECUDA_H
#define STOKE_FAKECUDA_H

#include <cuda.h>

/* Whether cuInit() has run in this process. */
int fakecuda_initialized(void);

#endif
