/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small fixed pool of worker threads running jobs from one FIFO queue.
 * Callers bound the number of jobs in flight themselves (the writer's and
 * the reader's slot rings), so the queue needs no capacity limit.
 */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <xxhash.h>

#include "snap-internal.h"

static __thread char last_error[512];

int snap_error(int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return r;
}

void snap_error_clear(void)
{
	last_error[0] = '\0';
}

const char *snap_last_error(void)
{
	return last_error;
}

uint64_t snap_checksum(const void *data, size_t len)
{
	return XXH3_64bits(data, len);
}

unsigned snap_default_threads(void)
{
	cpu_set_t set;
	int n = 0;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	if (n <= 0)
		n = (int) sysconf(_SC_NPROCESSORS_ONLN);
	if (n <= 0)
		n = 1;
	return n > 64 ? 64 : (unsigned) n;
}

struct snap_pool {
	pthread_mutex_t lock;
	pthread_cond_t work_cond; /* queue non-empty or stopping */
	pthread_cond_t done_cond; /* a job finished */
	struct snap_job *head, *tail;
	struct snap_job *done_head, *done_tail;
	bool stopping;
	int notify_fd;
	void (*ctx_free)(void *);
	unsigned nthreads;
	pthread_t threads[];
};

static void *worker_main(void *arg)
{
	struct snap_pool *p = arg;
	void *ctx = NULL;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->head && !p->stopping)
			pthread_cond_wait(&p->work_cond, &p->lock);
		if (!p->head)
			break;
		struct snap_job *job = p->head;
		p->head = job->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);

		job->fn(job, &ctx);

		pthread_mutex_lock(&p->lock);
		job->done = true;
		job->next = NULL;
		if (p->notify_fd >= 0) {
			if (p->done_tail)
				p->done_tail->next = job;
			else
				p->done_head = job;
			p->done_tail = job;
			uint64_t one = 1;
			/* An eventfd write of 1 cannot fail short of overflow. */
			(void) !write(p->notify_fd, &one, sizeof(one));
		}
		pthread_cond_broadcast(&p->done_cond);
	}
	pthread_mutex_unlock(&p->lock);
	if (ctx && p->ctx_free)
		p->ctx_free(ctx);
	return NULL;
}

int snap_pool_new(unsigned threads, void (*ctx_free)(void *), int notify_fd,
		  struct snap_pool **ret_pool)
{
	struct snap_pool *p;
	int r;

	if (threads == 0)
		threads = 1;
	p = calloc(1, sizeof(*p) + threads * sizeof(pthread_t));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work_cond, NULL);
	pthread_cond_init(&p->done_cond, NULL);
	p->notify_fd = notify_fd;
	p->ctx_free = ctx_free;
	for (unsigned i = 0; i < threads; i++) {
		r = pthread_create(&p->threads[i], NULL, worker_main, p);
		if (r != 0) {
			snap_pool_free(p);
			return -r;
		}
		p->nthreads++;
	}
	*ret_pool = p;
	return 0;
}

struct snap_pool *snap_pool_free(struct snap_pool *p)
{
	if (!p)
		return NULL;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->work_cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->work_cond);
	pthread_cond_destroy(&p->done_cond);
	free(p);
	return NULL;
}

void snap_pool_submit(struct snap_pool *p, struct snap_job *job)
{
	job->done = false;
	job->next = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->tail)
		p->tail->next = job;
	else
		p->head = job;
	p->tail = job;
	pthread_cond_signal(&p->work_cond);
	pthread_mutex_unlock(&p->lock);
}

void snap_pool_wait(struct snap_pool *p, struct snap_job *job)
{
	pthread_mutex_lock(&p->lock);
	while (!job->done)
		pthread_cond_wait(&p->done_cond, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

struct snap_job *snap_pool_take_done(struct snap_pool *p)
{
	struct snap_job *list;

	pthread_mutex_lock(&p->lock);
	list = p->done_head;
	p->done_head = p->done_tail = NULL;
	pthread_mutex_unlock(&p->lock);
	return list;
}
