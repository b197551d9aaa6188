/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fakecuda: contexts, memory, streams and events over host memory.
 *
 * "Device memory" comes from fakecuda_dev_alloc() (fakecuda-checkpoint.c), so
 * checkpoint/restore moves it. Copies on a stream are genuinely
 * asynchronous: each stream has a worker thread that executes its queue in
 * order, reading the source only when the copy runs, so a caller that
 * reuses a host buffer before the copy's event completed gets wrong bytes on
 * the "device", as it would on a GPU. As with the real driver, an async copy
 * from host memory that is not page-locked (cuMemHostRegister) is done
 * synchronously.
 *
 * Checks the real driver makes and we make too: copies must stay inside one
 * device allocation; registering overlapping host ranges fails; freeing an
 * unknown pointer fails; calls need cuInit and a current context.
 *
 * Knobs (environment):
 *   FAKECUDA_DEVICE_MEMORY   bytes per device (default 1 GiB)
 *   FAKECUDA_COPY_DELAY_US   each async copy waits this long before it runs
 *                            (widens the window for buffer-reuse bugs)
 *
 * Test-only exports (not part of the CUDA API), read with dlsym:
 *   fakecuda_test_counters() : async copies from pinned / unpinned memory,
 *   bytes currently host-registered, bytes allocated per device.
 */
#include "fakecuda.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FAKE_API __attribute__((visibility("default")))

#define MAX_DEVICES 16

struct fake_ctx {
	int device;
	int refs;
};

static struct fake_ctx primary[MAX_DEVICES];
static __thread struct fake_ctx *current;

static pthread_mutex_t mem_lock = PTHREAD_MUTEX_INITIALIZER;

struct region {
	uintptr_t addr;
	size_t len;
	int device; /* -1 for host registrations */
	struct region *next;
};
static struct region *dev_regions, *host_regions;
static uint64_t dev_in_use[MAX_DEVICES];
static uint64_t n_async_pinned, n_async_unpinned, host_registered;

static int device_count(void)
{
	const char *s = getenv("FAKECUDA_DEVICES");
	int n = s ? atoi(s) : 1;
	return n < 0 ? 0 : n > MAX_DEVICES ? MAX_DEVICES : n;
}

static uint64_t device_memory(void)
{
	const char *s = getenv("FAKECUDA_DEVICE_MEMORY");
	return s ? strtoull(s, NULL, 0) : UINT64_C(1) << 30;
}

static CUresult need_ctx(void)
{
	if (!fakecuda_initialized())
		return CUDA_ERROR_NOT_INITIALIZED;
	if (!current)
		return CUDA_ERROR_INVALID_CONTEXT;
	return CUDA_SUCCESS;
}

/* Whether [p, p+len) lies inside one region of the list. Caller holds mem_lock. */
static struct region *find_region(struct region *list, uintptr_t p, size_t len)
{
	for (struct region *r = list; r; r = r->next)
		if (p >= r->addr && len <= r->len && p - r->addr <= r->len - len)
			return r;
	return NULL;
}

static bool dev_range_ok(CUdeviceptr p, size_t len)
{
	pthread_mutex_lock(&mem_lock);
	bool ok = find_region(dev_regions, (uintptr_t) p, len) != NULL;
	pthread_mutex_unlock(&mem_lock);
	return ok;
}

static bool host_pinned(const void *p, size_t len)
{
	pthread_mutex_lock(&mem_lock);
	bool ok = find_region(host_regions, (uintptr_t) p, len) != NULL;
	pthread_mutex_unlock(&mem_lock);
	return ok;
}

/* --- contexts ------------------------------------------------------------ */

FAKE_API CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
	if (!fakecuda_initialized())
		return CUDA_ERROR_NOT_INITIALIZED;
	if (!pctx || dev < 0 || dev >= device_count())
		return CUDA_ERROR_INVALID_DEVICE;
	pthread_mutex_lock(&mem_lock);
	primary[dev].device = dev;
	primary[dev].refs++;
	pthread_mutex_unlock(&mem_lock);
	*pctx = (CUcontext) &primary[dev];
	return CUDA_SUCCESS;
}

FAKE_API CUresult cuDevicePrimaryCtxRelease(CUdevice dev)
{
	if (dev < 0 || dev >= device_count())
		return CUDA_ERROR_INVALID_DEVICE;
	pthread_mutex_lock(&mem_lock);
	CUresult r = primary[dev].refs > 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
	if (r == CUDA_SUCCESS)
		primary[dev].refs--;
	pthread_mutex_unlock(&mem_lock);
	return r;
}

FAKE_API CUresult cuCtxSetCurrent(CUcontext ctx)
{
	struct fake_ctx *c = (struct fake_ctx *) ctx;
	if (c && (c < primary || c >= primary + MAX_DEVICES || c->refs <= 0))
		return CUDA_ERROR_INVALID_CONTEXT;
	current = c;
	return CUDA_SUCCESS;
}

FAKE_API CUresult cuCtxGetCurrent(CUcontext *ctx)
{
	if (!ctx)
		return CUDA_ERROR_INVALID_VALUE;
	*ctx = (CUcontext) current;
	return CUDA_SUCCESS;
}

FAKE_API CUresult cuCtxGetDevice(CUdevice *dev)
{
	CUresult r = need_ctx();
	if (r != CUDA_SUCCESS)
		return r;
	*dev = current->device;
	return CUDA_SUCCESS;
}

/* --- memory -------------------------------------------------------------- */

FAKE_API CUresult cuMemAlloc(CUdeviceptr *dptr, size_t size)
{
	CUresult r = need_ctx();
	if (r != CUDA_SUCCESS)
		return r;
	if (!dptr || size == 0)
		return CUDA_ERROR_INVALID_VALUE;
	int dev = current->device;
	struct region *reg = calloc(1, sizeof(*reg));
	if (!reg)
		return CUDA_ERROR_OUT_OF_MEMORY;
	pthread_mutex_lock(&mem_lock);
	bool fits = dev_in_use[dev] + size <= device_memory();
	if (fits)
		dev_in_use[dev] += size;
	pthread_mutex_unlock(&mem_lock);
	void *p = NULL;
	fakecuda_gate_enter();
	int e = fits ? fakecuda_dev_alloc(size, &p) : -ENOMEM;
	fakecuda_gate_leave();
	if (e < 0) {
		pthread_mutex_lock(&mem_lock);
		if (fits)
			dev_in_use[dev] -= size;
		pthread_mutex_unlock(&mem_lock);
		free(reg);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	*reg = (struct region){(uintptr_t) p, size, dev, NULL};
	pthread_mutex_lock(&mem_lock);
	reg->next = dev_regions;
	dev_regions = reg;
	pthread_mutex_unlock(&mem_lock);
	*dptr = (CUdeviceptr) (uintptr_t) p;
	return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemFree(CUdeviceptr dptr)
{
	if (!fakecuda_initialized())
		return CUDA_ERROR_NOT_INITIALIZED;
	struct region *found = NULL;
	pthread_mutex_lock(&mem_lock);
	for (struct region **pp = &dev_regions; *pp; pp = &(*pp)->next)
		if ((*pp)->addr == (uintptr_t) dptr) {
			found = *pp;
			*pp = found->next;
			dev_in_use[found->device] -= found->len;
			break;
		}
	pthread_mutex_unlock(&mem_lock);
	if (!found)
		return CUDA_ERROR_INVALID_VALUE;
	fakecuda_gate_enter();
	(void) fakecuda_dev_free((void *) found->addr);
	fakecuda_gate_leave();
	free(found);
	return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemGetInfo(size_t *free_bytes, size_t *total)
{
	CUresult r = need_ctx();
	if (r != CUDA_SUCCESS)
		return r;
	pthread_mutex_lock(&mem_lock);
	uint64_t used = dev_in_use[current->device];
	pthread_mutex_unlock(&mem_lock);
	if (free_bytes)
		*free_bytes = (size_t) (device_memory() - used);
	if (total)
		*total = (size_t) device_memory();
	return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemHostRegister(void *p, size_t size, unsigned int flags)
{
	CUresult r = need_ctx();
	if (r != CUDA_SUCCESS)
		return r;
	if (!p || size == 0)
		return CUDA_ERROR_INVALID_VALUE;
	struct region *reg = calloc(1, sizeof(*reg));
	if (!reg)
		return CUDA_ERROR_OUT_OF_MEMORY;
	*reg = (struct region){(uintptr_t) p, size, -1, NULL};
	pthread_mutex_lock(&mem_lock);
	for (struct region *x = host_regions; x; x = x->next)
		if (reg->addr < x->addr + x->len && x->addr < reg->addr + size) {
			pthread_mutex_unlock(&mem_lock);
			free(reg);
			return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
		}
	reg->next = host_regions;
	host_regions = reg;
	host_registered += size;
	pthread_mutex_unlock(&mem_lock);
	return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemHostUnregister(void *p)
{
	struct region *found = NULL;
	pthread_mutex_lock(&mem_lock);
	for (struct region **pp = &host_regions; *pp; pp = &(*pp)->next)
		if ((*pp)->addr == (uintptr_t) p) {
			found = *pp;
			*pp = found->next;
			host_registered -= found->len;
			break;
		}
	pthread_mutex_unlock(&mem_lock);
	if (!found)
		return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
	free(found);
	return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemcpyHtoD(CUdeviceptr dst, const void *src, size_t n)
{
	CUresult r = need_ctx();
	if (r != CUDA_SUCCESS)
		return r;
	if (!src || !dev_range_ok(dst, n))
		return CUDA_ERROR_INVALID_VALUE;
	fakecuda_gate_enter();
	memcpy((void *) (uintptr_t) dst, src, n);
	fakecuda_gate_leave();
	return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemcpyDtoH(void *dst, CUdeviceptr src, size_t n)
{
	CUresult r = need_ctx();
	if (r != CUDA_SUCCESS)
		return r;
	if (!dst || !dev_range_ok(src, n))
		return CUDA_ERROR_INVALID_VALUE;
	fakecuda_gate_enter();
	memcpy(dst, (const void *) (uintptr_t) src, n);
	fakecuda_gate_leave();
	return CUDA_SUCCESS;
}

/* --- streams and events ---------------------------------------------------- */

struct fake_event {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t recorded, completed;
};

enum op_kind { OP_COPY, OP_EVENT, OP_STOP };

struct op {
	enum op_kind kind;
	void *dst;
	const void *src;
	size_t len;
	struct fake_event *ev;
	uint64_t ev_seq;
	struct op *next;
};

struct fake_stream {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* queue changed */
	struct op *head, *tail;
	unsigned queued; /* ops not yet finished */
	struct fake_ctx *ctx;
};

static void event_complete(struct fake_event *ev, uint64_t seq)
{
	pthread_mutex_lock(&ev->lock);
	if (seq > ev->completed)
		ev->completed = seq;
	pthread_cond_broadcast(&ev->cond);
	pthread_mutex_unlock(&ev->lock);
}

static void *stream_main(void *arg)
{
	struct fake_stream *s = arg;
	const char *d = getenv("FAKECUDA_COPY_DELAY_US");
	useconds_t delay = d ? (useconds_t) atoi(d) : 0;

	for (;;) {
		pthread_mutex_lock(&s->lock);
		while (!s->head)
			pthread_cond_wait(&s->cond, &s->lock);
		struct op *op = s->head;
		pthread_mutex_unlock(&s->lock);

		if (op->kind == OP_COPY) {
			if (delay)
				usleep(delay);
			fakecuda_gate_enter();
			memcpy(op->dst, op->src, op->len);
			fakecuda_gate_leave();
		} else if (op->kind == OP_EVENT)
			event_complete(op->ev, op->ev_seq);

		pthread_mutex_lock(&s->lock);
		s->head = op->next;
		if (!s->head)
			s->tail = NULL;
		s->queued--;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		bool stop = op->kind == OP_STOP;
		free(op);
		if (stop)
			return NULL;
	}
}

static void stream_push(struct fake_stream *s, struct op *op)
{
	pthread_mutex_lock(&s->lock);
	if (s->tail)
		s->tail->next = op;
	else
		s->head = op;
	s->tail = op;
	s->queued++;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void stream_drain(struct fake_stream *s)
{
	pthread_mutex_lock(&s->lock);
	while (s->queued > 0)
		pthread_cond_wait(&s->cond, &s->lock);
	pthread_mutex_unlock(&s->lock);
}

FAKE_API CUresult cuStreamCreate(CUstream *ph, unsigned int flags)
{
	CUresult r = need_ctx();
	if (r != CUDA_SUCCESS)
		return r;
	if (!ph)
		return CUDA_ERROR_INVALID_VALUE;
	struct fake_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return CUDA_ERROR_OUT_OF_MEMORY;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->ctx = current;
	if (pthread_create(&s->thread, NULL, stream_main, s) != 0) {
		free(s);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	*ph = (CUstream) s;
	return CUDA_SUCCESS;
}

FAKE_API CUresult cuStreamSynchronize(CUstream h)
{
	if (!fakecuda_initialized())
		return CUDA_ERROR_NOT_INITIALIZED;
	if (h)
		stream_drain((struct fake_stream *) h);
	return CUDA_SUCCESS;
}

FAKE_API CUresult cuStreamQuery(CUstream h)
{
	if (!h)
		return CUDA_SUCCESS;
	struct fake_stream *s = (struct fake_stream *) h;
	pthread_mutex_lock(&s->lock);
	unsigned q = s->queued;
	pthread_mutex_unlock(&s->lock);
	return q ? CUDA_ERROR_NOT_READY : CUDA_SUCCESS;
}

FAKE_API CUresult cuStreamDestroy(CUstream h)
{
	if (!h)
		return CUDA_ERROR_INVALID_HANDLE;
	struct fake_stream *s = (struct fake_stream *) h;
	struct op *stop = calloc(1, sizeof(*stop));
	if (!stop)
		return CUDA_ERROR_OUT_OF_MEMORY;
	stop->kind = OP_STOP;
	/* Like the driver: pending work finishes, then the stream goes. */
	stream_push(s, stop);
	pthread_join(s->thread, NULL);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
	return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemcpyHtoDAsync(CUdeviceptr dst, const void *src, size_t n, CUstream h)
{
	CUresult r = need_ctx();
	if (r != CUDA_SUCCESS)
		return r;
	if (!src || !dev_range_ok(dst, n))
		return CUDA_ERROR_INVALID_VALUE;
	bool pinned = host_pinned(src, n);
	pthread_mutex_lock(&mem_lock);
	if (pinned)
		n_async_pinned++;
	else
		n_async_unpinned++;
	pthread_mutex_unlock(&mem_lock);
	if (!h || !pinned) {
		/* Pageable memory (or the NULL stream): the copy is synchronous. */
		if (h)
			stream_drain((struct fake_stream *) h);
		fakecuda_gate_enter();
		memcpy((void *) (uintptr_t) dst, src, n);
		fakecuda_gate_leave();
		return CUDA_SUCCESS;
	}
	struct op *op = calloc(1, sizeof(*op));
	if (!op)
		return CUDA_ERROR_OUT_OF_MEMORY;
	*op = (struct op){.kind = OP_COPY, .dst = (void *) (uintptr_t) dst, .src = src, .len = n};
	stream_push((struct fake_stream *) h, op);
	return CUDA_SUCCESS;
}

FAKE_API CUresult cuEventCreate(CUevent *ph, unsigned int flags)
{
	CUresult r = need_ctx();
	if (r != CUDA_SUCCESS)
		return r;
	if (!ph)
		return CUDA_ERROR_INVALID_VALUE;
	struct fake_event *e = calloc(1, sizeof(*e));
	if (!e)
		return CUDA_ERROR_OUT_OF_MEMORY;
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->cond, NULL);
	*ph = (CUevent) e;
	return CUDA_SUCCESS;
}

FAKE_API CUresult cuEventRecord(CUevent h, CUstream stream)
{
	if (!h)
		return CUDA_ERROR_INVALID_HANDLE;
	struct fake_event *e = (struct fake_event *) h;
	pthread_mutex_lock(&e->lock);
	uint64_t seq = ++e->recorded;
	pthread_mutex_unlock(&e->lock);
	if (!stream) {
		event_complete(e, seq);
		return CUDA_SUCCESS;
	}
	struct op *op = calloc(1, sizeof(*op));
	if (!op)
		return CUDA_ERROR_OUT_OF_MEMORY;
	*op = (struct op){.kind = OP_EVENT, .ev = e, .ev_seq = seq};
	stream_push((struct fake_stream *) stream, op);
	return CUDA_SUCCESS;
}

FAKE_API CUresult cuEventQuery(CUevent h)
{
	if (!h)
		return CUDA_ERROR_INVALID_HANDLE;
	struct fake_event *e = (struct fake_event *) h;
	pthread_mutex_lock(&e->lock);
	bool done = e->completed >= e->recorded;
	pthread_mutex_unlock(&e->lock);
	return done ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

FAKE_API CUresult cuEventSynchronize(CUevent h)
{
	if (!h)
		return CUDA_ERROR_INVALID_HANDLE;
	struct fake_event *e = (struct fake_event *) h;
	pthread_mutex_lock(&e->lock);
	while (e->completed < e->recorded)
		pthread_cond_wait(&e->cond, &e->lock);
	pthread_mutex_unlock(&e->lock);
	return CUDA_SUCCESS;
}

FAKE_API CUresult cuEventDestroy(CUevent h)
{
	if (!h)
		return CUDA_ERROR_INVALID_HANDLE;
	/* The driver defers destruction until recorded work completes. */
	cuEventSynchronize(h);
	struct fake_event *e = (struct fake_event *) h;
	pthread_mutex_destroy(&e->lock);
	pthread_cond_destroy(&e->cond);
	free(e);
	return CUDA_SUCCESS;
}

/* --- test-only ------------------------------------------------------------- */

struct fakecuda_counters {
	uint64_t async_copies_pinned;
	uint64_t async_copies_unpinned;
	uint64_t host_registered_bytes;
	uint64_t device_bytes[MAX_DEVICES];
};

FAKE_API void fakecuda_test_counters(struct fakecuda_counters *ret);
FAKE_API void fakecuda_test_counters(struct fakecuda_counters *ret)
{
	pthread_mutex_lock(&mem_lock);
	ret->async_copies_pinned = n_async_pinned;
	ret->async_copies_unpinned = n_async_unpinned;
	ret->host_registered_bytes = host_registered;
	memcpy(ret->device_bytes, dev_in_use, sizeof(ret->device_bytes));
	pthread_mutex_unlock(&mem_lock);
}
