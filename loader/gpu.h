/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The engine's GPU side: device allocations, pinned staging slots, and
 * asynchronous host-to-device copies on per-worker streams with one event
 * per slot and device, so a slot is reused only after its copies finished.
 * Without the CUDA headers at build time these are stubs that report
 * -ENODEV (kernel style: the #if lives here, not in the engine).
 *
 * Errors: -errno. Thread-safety: ldr_gpu_open/alloc/release run on the
 * loading thread before workers start or after they finished; a worker
 * object is used by one thread only.
 */
#ifndef STOKE_LOADER_GPU_H
#define STOKE_LOADER_GPU_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "model.h"

struct ldr_gpu_worker;

#if HAVE_CUDA
/* Load the driver into m->cuda and check `max_device` exists. */
int ldr_gpu_open(struct ldr_model *m, int max_device);
/* One cuMemAlloc per device for the tensors placed on it; fills t->dptr. */
int ldr_gpu_alloc(struct ldr_model *m);
/* Free device memory and the driver; safe on a model that never used a GPU. */
void ldr_gpu_release(struct ldr_model *m);
int ldr_gpu_dtoh(struct ldr_model *m, int device, void *dst, uint64_t src, size_t len);

/* Page-lock `mem` (len bytes, anonymous) for `n_slots` slots, create a
 * stream per device in `devmask` and an event per slot and device. */
int ldr_gpu_worker_new(struct ldr_model *m, uint32_t devmask, void *mem, size_t len,
		       unsigned n_slots, struct ldr_gpu_worker **ret);
void ldr_gpu_worker_free(struct ldr_gpu_worker *w);
/* Queue a copy from staging slot `slot` (src inside it) to device memory. */
int ldr_gpu_copy(struct ldr_gpu_worker *w, unsigned slot, int device, uint64_t dst, const void *src,
		 size_t len);
/* After a slot's copies are queued: record its events. */
int ldr_gpu_slot_record(struct ldr_gpu_worker *w, unsigned slot);
/* 0 when every copy from `slot` completed, -EAGAIN while pending. */
int ldr_gpu_slot_query(struct ldr_gpu_worker *w, unsigned slot);
int ldr_gpu_slot_wait(struct ldr_gpu_worker *w, unsigned slot);
/* Wait for every stream of the worker. */
int ldr_gpu_worker_sync(struct ldr_gpu_worker *w);
#else
static inline int ldr_gpu_open(struct ldr_model *m, int max_device)
{
	return -ENODEV;
}
static inline int ldr_gpu_alloc(struct ldr_model *m)
{
	return -ENODEV;
}
static inline void ldr_gpu_release(struct ldr_model *m)
{
}
static inline int ldr_gpu_dtoh(struct ldr_model *m, int device, void *dst, uint64_t src, size_t len)
{
	return -ENODEV;
}
static inline int ldr_gpu_worker_new(struct ldr_model *m, uint32_t devmask, void *mem, size_t len,
				     unsigned n_slots, struct ldr_gpu_worker **ret)
{
	return -ENODEV;
}
static inline void ldr_gpu_worker_free(struct ldr_gpu_worker *w)
{
}
static inline int ldr_gpu_copy(struct ldr_gpu_worker *w, unsigned slot, int device, uint64_t dst,
			       const void *src, size_t len)
{
	return -ENODEV;
}
static inline int ldr_gpu_slot_record(struct ldr_gpu_worker *w, unsigned slot)
{
	return -ENODEV;
}
static inline int ldr_gpu_slot_query(struct ldr_gpu_worker *w, unsigned slot)
{
	return 0;
}
static inline int ldr_gpu_slot_wait(struct ldr_gpu_worker *w, unsigned slot)
{
	return 0;
}
static inline int ldr_gpu_worker_sync(struct ldr_gpu_worker *w)
{
	return 0;
}
#endif

#endif
