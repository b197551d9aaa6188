/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fakecuda: the checkpoint state machine and the "device" memory it moves.
 *
 *   RUNNING --Lock--> LOCKED --Checkpoint--> CHECKPOINTED --Restore--> LOCKED
 *   LOCKED --Unlock--> RUNNING;  FAILED on an uncorrectable error.
 *
 * Two processes take part, as with the real driver: the target (it loaded
 * the fake, called cuInit and allocated device memory) and the checkpointer
 * (stoke, which calls cuCheckpointProcess*(pid)). They share the state
 * through two small files per target pid under $FAKECUDA_CHECKPOINT_DIR
 * (see "shared state files" below). The
 * checkpointer posts a request and waits; a thread of the fake inside the
 * target (started by cuInit) polls the file, carries the request out in the
 * target's address space and posts the result. The thread and the file
 * survive a CRIU dump and restore, as the target's memory and the
 * checkpointer's file system do.
 *
 * Device memory is real here: fakecuda_dev_alloc() maps it in its own
 * pages. Checkpoint copies every allocation into host memory and leaves the
 * device range reserved but inaccessible (PROT_NONE: a stray access
 * faults, as released device memory would); Restore maps it again at the
 * same addresses and copies the contents back.
 *
 * Knobs (environment of the target process):
 *   FAKECUDA_CHECKPOINT_DIR   directory of the state files; unset: processes
 *                             are not checkpointable (GetState: NOT_SUPPORTED)
 *   FAKECUDA_LOCK_DELAY_MS    the target takes this long to reach a lockable
 *                             point (work in flight), so Lock can time out
 *   FAKECUDA_RESTORE_OOM=1    Restore fails with CUDA_ERROR_OUT_OF_MEMORY and
 *                             the process stays CHECKPOINTED (as the driver)
 *   FAKECUDA_CHECKPOINT_FAIL=1 Checkpoint fails; the process stays LOCKED
 */
#include "fakecuda.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define FAKE_API __attribute__((visibility("default")))

enum request { REQ_NONE = 0, REQ_LOCK, REQ_CHECKPOINT, REQ_RESTORE, REQ_UNLOCK };

/* How long the checkpointer waits for the target to answer a request that
 * has no timeout of its own (a target that died or hangs). */
#define ANSWER_TIMEOUT_MS 30000

/* --- Device memory registry (target side) -------------------------------- */

struct dev_alloc {
	void *addr;
	size_t len;
	void *saved; /* host copy while checkpointed */
	struct dev_alloc *next;
};

static pthread_mutex_t dev_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct dev_alloc *dev_allocs;

int fakecuda_dev_alloc(size_t size, void **ret)
{
	size_t page = (size_t) sysconf(_SC_PAGESIZE);
	size_t len = (size + page - 1) / page * page;
	struct dev_alloc *a = calloc(1, sizeof(*a));
	if (!a || size == 0) {
		free(a);
		return -EINVAL;
	}
	a->addr = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a->addr == MAP_FAILED) {
		free(a);
		return -ENOMEM;
	}
	a->len = len;
	pthread_mutex_lock(&dev_mutex);
	a->next = dev_allocs;
	dev_allocs = a;
	pthread_mutex_unlock(&dev_mutex);
	*ret = a->addr;
	return 0;
}

int fakecuda_dev_free(void *addr)
{
	pthread_mutex_lock(&dev_mutex);
	for (struct dev_alloc **p = &dev_allocs; *p; p = &(*p)->next) {
		struct dev_alloc *a = *p;
		if (a->addr != addr)
			continue;
		*p = a->next;
		pthread_mutex_unlock(&dev_mutex);
		munmap(a->addr, a->len);
		free(a->saved);
		free(a);
		return 0;
	}
	pthread_mutex_unlock(&dev_mutex);
	return -ENOENT;
}

/* Device memory -> host memory; the device range stays reserved. */
static int dev_evict_all(void)
{
	int r = 0;
	pthread_mutex_lock(&dev_mutex);
	for (struct dev_alloc *a = dev_allocs; a; a = a->next) {
		a->saved = malloc(a->len);
		if (!a->saved) {
			r = -ENOMEM;
			break;
		}
		memcpy(a->saved, a->addr, a->len);
		/* Drop the pages and forbid access, keeping the address range. */
		if (mmap(a->addr, a->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
			 0) == MAP_FAILED) {
			r = -errno;
			break;
		}
	}
	pthread_mutex_unlock(&dev_mutex);
	return r;
}

static int dev_readmit_all(void)
{
	int r = 0;
	pthread_mutex_lock(&dev_mutex);
	for (struct dev_alloc *a = dev_allocs; a; a = a->next) {
		if (!a->saved)
			continue;
		if (mprotect(a->addr, a->len, PROT_READ | PROT_WRITE) < 0) {
			r = -errno;
			break;
		}
		memcpy(a->addr, a->saved, a->len);
		free(a->saved);
		a->saved = NULL;
	}
	pthread_mutex_unlock(&dev_mutex);
	return r;
}

/* --- The API gate: Lock blocks further CUDA calls of the target ---------- */

static pthread_rwlock_t gate = PTHREAD_RWLOCK_INITIALIZER;

void fakecuda_gate_enter(void)
{
	pthread_rwlock_rdlock(&gate);
}

void fakecuda_gate_leave(void)
{
	pthread_rwlock_unlock(&gate);
}

/* --- The shared state files ---------------------------------------------- */

/* Two fixed-size records per target, each written by one side only, in
 * place, and never locked: a target frozen by CRIU at any instant holds no
 * lock and its files keep their size (CRIU checks it on restore).
 *   PID.req   written by the checkpointer: "seq request"
 *   PID.state written by the target:       "seq_done state result"
 * A request is new when its seq is above seq_done; a checkpointer that gives
 * up (lock timeout) posts REQ_NONE with the same seq, which the target
 * answers with NOT_READY unless it had already carried the request out. */
#define REC_LEN 48

struct rec {
	int a, b, c;
};

static const char *state_dir(void)
{
	const char *d = getenv("FAKECUDA_CHECKPOINT_DIR");
	return d && *d ? d : NULL;
}

static int open_rec(pid_t pid, const char *kind, int flags)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%d.%s", state_dir(), (int) pid, kind);
	return open(path, flags | O_RDWR | O_CLOEXEC, 0600);
}

/* A record carries a check value so a read racing a write is detected
 * (and retried) rather than misread. */
static int read_rec(int fd, struct rec *r)
{
	for (int tries = 0; tries < 100; tries++) {
		char buf[REC_LEN + 1] = "";
		long x;
		if (pread(fd, buf, REC_LEN, 0) != REC_LEN)
			return -EIO;
		if (sscanf(buf, "%d %d %d %ld", &r->a, &r->b, &r->c, &x) == 4 &&
		    x == ((long) r->a * 7 + (long) r->b * 13 + (long) r->c * 17 + 5))
			return 0;
	}
	return -EIO;
}

static int write_rec(int fd, const struct rec *r)
{
	char buf[128];
	/* Fixed width (values are small and non-negative): REC_LEN bytes. */
	snprintf(buf, sizeof(buf), "%10d %10d %10d %14ld\n", r->a, r->b, r->c,
		 (long) r->a * 7 + (long) r->b * 13 + (long) r->c * 17 + 5);
	return pwrite(fd, buf, REC_LEN, 0) == REC_LEN ? 0 : -EIO;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static bool env_flag(const char *name)
{
	const char *v = getenv(name);
	return v && strcmp(v, "1") == 0;
}

/* --- Target side: the watcher thread -------------------------------------- */

static int req_fd = -1, state_fd = -1;
static struct rec cur; /* seq_done, state, result: what PID.state holds */
static uint64_t lock_seen_ms;

/* Carry out `req`; returns false when it must wait (the lock delay knob:
 * work still in flight). */
static bool serve(int req)
{
	switch (req) {
	case REQ_NONE: /* a withdrawn request */
		lock_seen_ms = 0;
		cur.c = CUDA_ERROR_NOT_READY;
		break;
	case REQ_LOCK: {
		const char *d = getenv("FAKECUDA_LOCK_DELAY_MS");
		uint64_t delay = d ? strtoull(d, NULL, 10) : 0;
		if (!lock_seen_ms)
			lock_seen_ms = now_ms();
		if (now_ms() - lock_seen_ms < delay)
			return false;
		lock_seen_ms = 0;
		pthread_rwlock_wrlock(&gate); /* waits for calls in flight */
		cur.b = CU_PROCESS_STATE_LOCKED;
		cur.c = CUDA_SUCCESS;
		break;
	}
	case REQ_CHECKPOINT:
		if (env_flag("FAKECUDA_CHECKPOINT_FAIL")) {
			cur.c = CUDA_ERROR_UNKNOWN;
			break;
		}
		if (dev_evict_all() < 0) {
			cur.b = CU_PROCESS_STATE_FAILED;
			cur.c = CUDA_ERROR_OUT_OF_MEMORY;
			break;
		}
		cur.b = CU_PROCESS_STATE_CHECKPOINTED;
		cur.c = CUDA_SUCCESS;
		break;
	case REQ_RESTORE:
		if (env_flag("FAKECUDA_RESTORE_OOM")) {
			cur.c = CUDA_ERROR_OUT_OF_MEMORY;
			break;
		}
		if (dev_readmit_all() < 0) {
			cur.b = CU_PROCESS_STATE_FAILED;
			cur.c = CUDA_ERROR_UNKNOWN;
			break;
		}
		cur.b = CU_PROCESS_STATE_LOCKED;
		cur.c = CUDA_SUCCESS;
		break;
	case REQ_UNLOCK:
		pthread_rwlock_unlock(&gate);
		cur.b = CU_PROCESS_STATE_RUNNING;
		cur.c = CUDA_SUCCESS;
		break;
	default:
		cur.c = CUDA_ERROR_INVALID_VALUE;
		break;
	}
	return true;
}

static void *watcher(void *arg)
{
	(void) arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		struct rec q;
		if (read_rec(req_fd, &q) == 0 && q.a > cur.a && serve(q.b)) {
			cur.a = q.a;
			(void) write_rec(state_fd, &cur);
		}
		sleep_ms(1);
	}
	return NULL;
}

static pthread_once_t attach_once = PTHREAD_ONCE_INIT;

static void attach(void)
{
	pthread_t t;
	struct rec none = {0, REQ_NONE, 0};

	if (!state_dir())
		return;
	cur = (struct rec){0, CU_PROCESS_STATE_RUNNING, CUDA_SUCCESS};
	req_fd = open_rec(getpid(), "req", O_CREAT | O_TRUNC);
	state_fd = open_rec(getpid(), "state", O_CREAT | O_TRUNC);
	if (req_fd < 0 || state_fd < 0 || write_rec(req_fd, &none) < 0 ||
	    write_rec(state_fd, &cur) < 0)
		return;
	if (pthread_create(&t, NULL, watcher, NULL) == 0)
		pthread_detach(t);
}

void fakecuda_checkpoint_attach(void)
{
	pthread_once(&attach_once, attach);
}

/* --- Checkpointer side: cuCheckpointProcess*(pid) ------------------------- */

static bool all_zero(const void *p, size_t len)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

/* Which state a request needs the process to be in. */
static int required_state(int req)
{
	switch (req) {
	case REQ_LOCK:
		return CU_PROCESS_STATE_RUNNING;
	case REQ_CHECKPOINT:
	case REQ_UNLOCK:
		return CU_PROCESS_STATE_LOCKED;
	default:
		return CU_PROCESS_STATE_CHECKPOINTED;
	}
}

static CUresult open_target(int pid, int *ret_req, int *ret_state)
{
	if (!fakecuda_initialized())
		return CUDA_ERROR_NOT_INITIALIZED;
	if (!state_dir())
		return CUDA_ERROR_NOT_SUPPORTED;
	if (pid <= 0)
		return CUDA_ERROR_INVALID_VALUE;
	int q = open_rec(pid, "req", 0), st = open_rec(pid, "state", 0);
	/* Files left by a process that is gone (or a recycled pid that never
	 * loaded the fake) do not make a CUDA process. */
	if (q < 0 || st < 0 || kill(pid, 0) < 0) {
		if (q >= 0)
			close(q);
		if (st >= 0)
			close(st);
		return CUDA_ERROR_NOT_FOUND;
	}
	*ret_req = q;
	*ret_state = st;
	return CUDA_SUCCESS;
}

/* Wait until the target answered `seq`, until `deadline`. */
static bool wait_answer(int pid, int state_fd_, int seq, uint64_t deadline, struct rec *ret)
{
	for (;;) {
		if (read_rec(state_fd_, ret) == 0 && ret->a >= seq)
			return true;
		if (now_ms() >= deadline || kill(pid, 0) < 0)
			return false;
		sleep_ms(1);
	}
}

/* Post `req` to `pid` and wait for its answer (at most `timeout_ms`, 0:
 * ANSWER_TIMEOUT_MS). A request still unanswered at the deadline is
 * withdrawn: the process stays in its state. */
static CUresult request(int pid, int req, unsigned int timeout_ms, CUresult on_timeout)
{
	struct rec st, q;
	int qfd = -1, sfd = -1;
	CUresult res = open_target(pid, &qfd, &sfd);
	if (res != CUDA_SUCCESS)
		return res;

	if (read_rec(sfd, &st) < 0 || read_rec(qfd, &q) < 0)
		res = CUDA_ERROR_UNKNOWN;
	else if (q.a > st.a || st.b != required_state(req))
		res = CUDA_ERROR_ILLEGAL_STATE; /* busy, or wrong state */
	else {
		int seq = st.a + 1;
		q = (struct rec){seq, req, 0};
		if (write_rec(qfd, &q) < 0)
			res = CUDA_ERROR_UNKNOWN;
		else if (wait_answer(pid, sfd, seq,
				     now_ms() + (timeout_ms ? timeout_ms : ANSWER_TIMEOUT_MS), &st))
			res = (CUresult) st.c;
		else {
			/* Withdraw, then take whichever answer the target gives. */
			q.b = REQ_NONE;
			(void) write_rec(qfd, &q);
			if (wait_answer(pid, sfd, seq, now_ms() + 1000, &st) &&
			    st.c == CUDA_SUCCESS)
				res = CUDA_SUCCESS;
			else
				res = on_timeout;
		}
	}
	close(qfd);
	close(sfd);
	return res;
}

FAKE_API CUresult cuCheckpointProcessGetState(int pid, CUprocessState *state)
{
	struct rec st;
	int qfd = -1, sfd = -1;
	if (!state)
		return CUDA_ERROR_INVALID_VALUE;
	CUresult res = open_target(pid, &qfd, &sfd);
	if (res != CUDA_SUCCESS)
		return res;
	int r = read_rec(sfd, &st);
	close(qfd);
	close(sfd);
	if (r < 0)
		return CUDA_ERROR_UNKNOWN;
	*state = (CUprocessState) st.b;
	return CUDA_SUCCESS;
}

FAKE_API CUresult cuCheckpointProcessGetRestoreThreadId(int pid, int *tid)
{
	CUprocessState st;
	if (!tid)
		return CUDA_ERROR_INVALID_VALUE;
	CUresult res = cuCheckpointProcessGetState(pid, &st);
	if (res == CUDA_SUCCESS)
		*tid = pid;
	return res;
}

FAKE_API CUresult cuCheckpointProcessLock(int pid, CUcheckpointLockArgs *args)
{
	if (args && (args->reserved0 || !all_zero(args->reserved1, sizeof(args->reserved1))))
		return CUDA_ERROR_INVALID_VALUE;
	return request(pid, REQ_LOCK, args ? args->timeoutMs : 0,
		       args && args->timeoutMs ? CUDA_ERROR_NOT_READY : CUDA_ERROR_UNKNOWN);
}

FAKE_API CUresult cuCheckpointProcessCheckpoint(int pid, CUcheckpointCheckpointArgs *args)
{
	if (args && !all_zero(args, sizeof(*args)))
		return CUDA_ERROR_INVALID_VALUE;
	return request(pid, REQ_CHECKPOINT, 0, CUDA_ERROR_UNKNOWN);
}

FAKE_API CUresult cuCheckpointProcessRestore(int pid, CUcheckpointRestoreArgs *args)
{
	if (args) {
		int n = 0;
		if (!all_zero(args->reserved, sizeof(args->reserved)) || args->reserved1)
			return CUDA_ERROR_INVALID_VALUE;
		/* A GPU map must name every GPU the driver sees. */
		if (args->gpuPairs || args->gpuPairsCount) {
			if (cuDeviceGetCount(&n) != CUDA_SUCCESS || !args->gpuPairs ||
			    args->gpuPairsCount != (unsigned int) n)
				return CUDA_ERROR_INVALID_VALUE;
		}
	}
	return request(pid, REQ_RESTORE, 0, CUDA_ERROR_UNKNOWN);
}

FAKE_API CUresult cuCheckpointProcessUnlock(int pid, CUcheckpointUnlockArgs *args)
{
	if (args && !all_zero(args, sizeof(*args)))
		return CUDA_ERROR_INVALID_VALUE;
	return request(pid, REQ_UNLOCK, 0, CUDA_ERROR_UNKNOWN);
}
