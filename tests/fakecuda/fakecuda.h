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

/* fakecuda-checkpoint.c. Device memory lives in pages of its own so the
 * checkpoint state machine can move it out and back: cuMemAlloc/cuMemFree
 * should use fakecuda_dev_alloc()/fakecuda_dev_free() (0 or -errno), and
 * every entry point that touches device state should run between
 * fakecuda_gate_enter() and fakecuda_gate_leave(), which block while the
 * process is locked for a checkpoint. cuInit calls
 * fakecuda_checkpoint_attach() (makes the process checkpointable). */
int fakecuda_dev_alloc(size_t size, void **ret);
int fakecuda_dev_free(void *addr);
void fakecuda_gate_enter(void);
void fakecuda_gate_leave(void);
void fakecuda_checkpoint_attach(void);

#endif
