/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>

#include "cuda-dl.h"
#include "gpu.h"

#define DEVICE_ALIGN 256 /* cudaMalloc's alignment; keeps every tensor aligned */

struct ldr_gpu_worker {
	struct ldr_cuda *cu;
	void *mem; /* page-locked here; not owned */
	uint32_t devmask;
	unsigned n_slots;
	CUstream stream[LDR_MAX_GPUS];
	CUevent *ev;	    /* n_slots x LDR_MAX_GPUS */
	uint32_t *pending;  /* per slot: devices with queued copies */
	uint32_t *recorded; /* per slot: devices with a recorded event */
};

int ldr_gpu_open(struct ldr_model *m, int max_device)
{
	int r;
	if (!m->cuda) {
		r = ldr_cuda_open(&m->cuda);
		if (r < 0)
			return r;
	}
	if (max_device >= m->cuda->n_devices)
		return -ENODEV;
	return 0;
}

int ldr_gpu_alloc(struct ldr_model *m)
{
	struct ldr_cuda *cu = m->cuda;
	uint64_t need[LDR_MAX_GPUS] = {};

	for (size_t i = 0; i < m->tensors.n; i++) {
		struct ldr_tensor *t = &m->tensors.v[i];
		if (t->device < 0)
			continue;
		t->dptr = need[t->device]; /* offset for now */
		need[t->device] += (t->size + DEVICE_ALIGN - 1) / DEVICE_ALIGN * DEVICE_ALIGN;
	}
	for (int d = 0; d < LDR_MAX_GPUS; d++) {
		if (need[d] == 0)
			continue;
		struct ldr_device_alloc *a =
			reallocarray(m->allocs, m->n_allocs + 1, sizeof(*m->allocs));
		if (!a)
			return -ENOMEM;
		m->allocs = a;
		int r = ldr_cuda_set_device(cu, d);
		CUdeviceptr p;
		if (r >= 0)
			r = ldr_cu(cu->cuMemAlloc(&p, need[d]));
		if (r < 0)
			return r;
		m->allocs[m->n_allocs++] = (struct ldr_device_alloc){d, p, need[d]};
		for (size_t i = 0; i < m->tensors.n; i++)
			if (m->tensors.v[i].device == d)
				m->tensors.v[i].dptr += p;
	}
	return 0;
}

void ldr_gpu_release(struct ldr_model *m)
{
	if (!m->cuda)
		return;
	for (size_t i = 0; i < m->n_allocs; i++)
		if (ldr_cuda_set_device(m->cuda, m->allocs[i].device) >= 0)
			(void) m->cuda->cuMemFree(m->allocs[i].dptr);
	free(m->allocs);
	m->allocs = NULL;
	m->n_allocs = 0;
	ldr_cuda_close(m->cuda);
	m->cuda = NULL;
}

int ldr_gpu_dtoh(struct ldr_model *m, int device, void *dst, uint64_t src, size_t len)
{
	if (!m->cuda)
		return -ENODATA;
	int r = ldr_cuda_set_device(m->cuda, device);
	if (r < 0)
		return r;
	return ldr_cu(m->cuda->cuMemcpyDtoH(dst, src, len));
}

void ldr_gpu_worker_free(struct ldr_gpu_worker *w)
{
	if (!w)
		return;
	struct ldr_cuda *cu = w->cu;
	for (int d = 0; d < LDR_MAX_GPUS; d++) {
		if (!(w->devmask & (1u << d)) || ldr_cuda_set_device(cu, d) < 0)
			continue;
		if (w->stream[d])
			(void) cu->cuStreamSynchronize(w->stream[d]);
		for (unsigned s = 0; w->ev && s < w->n_slots; s++)
			if (w->ev[s * LDR_MAX_GPUS + d])
				(void) cu->cuEventDestroy(w->ev[s * LDR_MAX_GPUS + d]);
		if (w->stream[d])
			(void) cu->cuStreamDestroy(w->stream[d]);
	}
	if (w->mem)
		(void) cu->cuMemHostUnregister(w->mem);
	free(w->ev);
	free(w->pending);
	free(w->recorded);
	free(w);
}

int ldr_gpu_worker_new(struct ldr_model *m, uint32_t devmask, void *mem, size_t len,
		       unsigned n_slots, struct ldr_gpu_worker **ret)
{
	struct ldr_cuda *cu = m->cuda;
	struct ldr_gpu_worker *w = calloc(1, sizeof(*w));
	int r;
	if (!w)
		return -ENOMEM;
	w->cu = cu;
	w->devmask = devmask;
	w->n_slots = n_slots;
	w->ev = calloc((size_t) n_slots * LDR_MAX_GPUS, sizeof(*w->ev));
	w->pending = calloc(n_slots, sizeof(*w->pending));
	w->recorded = calloc(n_slots, sizeof(*w->recorded));
	if (!w->ev || !w->pending || !w->recorded) {
		r = -ENOMEM;
		goto fail;
	}
	for (int d = 0; d < LDR_MAX_GPUS; d++) {
		if (!(devmask & (1u << d)))
			continue;
		r = ldr_cuda_set_device(cu, d);
		if (r < 0)
			goto fail;
		if (!w->mem) {
			/* Portable: the pinning holds in every device's context. */
			r = ldr_cu(cu->cuMemHostRegister(mem, len, CU_MEMHOSTREGISTER_PORTABLE));
			if (r < 0)
				goto fail;
			w->mem = mem;
		}
		r = ldr_cu(cu->cuStreamCreate(&w->stream[d], CU_STREAM_NON_BLOCKING));
		if (r < 0)
			goto fail;
		for (unsigned s = 0; s < n_slots; s++) {
			r = ldr_cu(cu->cuEventCreate(&w->ev[s * LDR_MAX_GPUS + d],
						     CU_EVENT_DISABLE_TIMING));
			if (r < 0)
				goto fail;
		}
	}
	*ret = w;
	return 0;
fail:
	ldr_gpu_worker_free(w);
	return r;
}

int ldr_gpu_copy(struct ldr_gpu_worker *w, unsigned slot, int device, uint64_t dst, const void *src,
		 size_t len)
{
	int r = ldr_cuda_set_device(w->cu, device);
	if (r < 0)
		return r;
	r = ldr_cu(w->cu->cuMemcpyHtoDAsync(dst, src, len, w->stream[device]));
	if (r < 0)
		return r;
	w->pending[slot] |= 1u << device;
	return 0;
}

int ldr_gpu_slot_record(struct ldr_gpu_worker *w, unsigned slot)
{
	for (int d = 0; d < LDR_MAX_GPUS; d++) {
		if (!(w->pending[slot] & (1u << d)))
			continue;
		int r = ldr_cuda_set_device(w->cu, d);
		if (r >= 0)
			r = ldr_cu(
				w->cu->cuEventRecord(w->ev[slot * LDR_MAX_GPUS + d], w->stream[d]));
		if (r < 0)
			return r;
	}
	w->recorded[slot] = w->pending[slot];
	w->pending[slot] = 0;
	return 0;
}

static int slot_check(struct ldr_gpu_worker *w, unsigned slot, bool wait)
{
	for (int d = 0; d < LDR_MAX_GPUS; d++) {
		if (!(w->recorded[slot] & (1u << d)))
			continue;
		CUevent ev = w->ev[slot * LDR_MAX_GPUS + d];
		int r = ldr_cu(wait ? w->cu->cuEventSynchronize(ev) : w->cu->cuEventQuery(ev));
		if (r < 0)
			return r;
		w->recorded[slot] &= ~(1u << d);
	}
	return 0;
}

int ldr_gpu_slot_query(struct ldr_gpu_worker *w, unsigned slot)
{
	return slot_check(w, slot, false);
}

int ldr_gpu_slot_wait(struct ldr_gpu_worker *w, unsigned slot)
{
	return slot_check(w, slot, true);
}

int ldr_gpu_worker_sync(struct ldr_gpu_worker *w)
{
	for (int d = 0; d < LDR_MAX_GPUS; d++) {
		if (!(w->devmask & (1u << d)))
			continue;
		int r = ldr_cuda_set_device(w->cu, d);
		if (r >= 0)
			r = ldr_cu(w->cu->cuStreamSynchronize(w->stream[d]));
		if (r < 0)
			return r;
	}
	return 0;
}
