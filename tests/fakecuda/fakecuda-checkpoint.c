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
 * through one small file per target pid, $FAKECUDA_CHECKPOINT_DIR/PID,
 * holding "state request result" and updated under flock(2). The
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
#include <sys/file.h>
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

/* --- The shared state file ------------------------------------------------ */

struct shared {
	int state;   /* CUprocessState */
	int request; /* enum request */
	int result;  /* CUresult of the last request */
};

static const char *state_dir(void)
{
	const char *d = getenv("FAKECUDA_CHECKPOINT_DIR");
	return d && *d ? d : NULL;
}

static int open_state(pid_t pid, int flags)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%d", state_dir(), (int) pid);
	return open(path, flags | O_RDWR | O_CLOEXEC, 0600);
}

static int read_shared(int fd, struct shared *s)
{
	char buf[64] = "";
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return -EIO;
	return sscanf(buf, "%d %d %d", &s->state, &s->request, &s->result) == 3 ? 0 : -EIO;
}

static int write_shared(int fd, const struct shared *s)
{
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "%d %d %d\n", s->state, s->request, s->result);
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t) n, 0) != n)
		return -EIO;
	return 0;
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

static int target_fd = -1;
static uint64_t lock_seen_ms;

/* Carry out `s->request`; returns false when the request must wait (the
 * lock delay knob: work still in flight). */
static bool serve(struct shared *s)
{
	switch (s->request) {
	case REQ_LOCK: {
		const char *d = getenv("FAKECUDA_LOCK_DELAY_MS");
		uint64_t delay = d ? strtoull(d, NULL, 10) : 0;
		if (!lock_seen_ms)
			lock_seen_ms = now_ms();
		if (now_ms() - lock_seen_ms < delay)
			return false;
		lock_seen_ms = 0;
		pthread_rwlock_wrlock(&gate); /* waits for calls in flight */
		s->state = CU_PROCESS_STATE_LOCKED;
		s->result = CUDA_SUCCESS;
		break;
	}
	case REQ_CHECKPOINT:
		if (env_flag("FAKECUDA_CHECKPOINT_FAIL")) {
			s->result = CUDA_ERROR_UNKNOWN;
			break;
		}
		if (dev_evict_all() < 0) {
			s->state = CU_PROCESS_STATE_FAILED;
			s->result = CUDA_ERROR_OUT_OF_MEMORY;
			break;
		}
		s->state = CU_PROCESS_STATE_CHECKPOINTED;
		s->result = CUDA_SUCCESS;
		break;
	case REQ_RESTORE:
		if (env_flag("FAKECUDA_RESTORE_OOM")) {
			s->result = CUDA_ERROR_OUT_OF_MEMORY;
			break;
		}
		if (dev_readmit_all() < 0) {
			s->state = CU_PROCESS_STATE_FAILED;
			s->result = CUDA_ERROR_UNKNOWN;
			break;
		}
		s->state = CU_PROCESS_STATE_LOCKED;
		s->result = CUDA_SUCCESS;
		break;
	case REQ_UNLOCK:
		pthread_rwlock_unlock(&gate);
		s->state = CU_PROCESS_STATE_RUNNING;
		s->result = CUDA_SUCCESS;
		break;
	}
	s->request = REQ_NONE;
	return true;
}

static void *watcher(void *arg)
{
	(void) arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		struct shared s;
		if (flock(target_fd, LOCK_EX) == 0) {
			if (read_shared(target_fd, &s) == 0) {
				if (s.request == REQ_NONE)
					lock_seen_ms = 0; /* a timed-out Lock was withdrawn */
				else if (serve(&s))
					(void) write_shared(target_fd, &s);
			}
			(void) flock(target_fd, LOCK_UN);
		}
		sleep_ms(1);
	}
	return NULL;
}

static pthread_once_t attach_once = PTHREAD_ONCE_INIT;

static void attach(void)
{
	pthread_t t;
	struct shared s = {CU_PROCESS_STATE_RUNNING, REQ_NONE, CUDA_SUCCESS};

	if (!state_dir())
		return;
	int fd = open_state(getpid(), O_CREAT | O_TRUNC);
	if (fd < 0)
		return;
	if (write_shared(fd, &s) < 0) {
		close(fd);
		return;
	}
	target_fd = fd;
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

static CUresult open_target(int pid, int *ret_fd)
{
	if (!fakecuda_initialized())
		return CUDA_ERROR_NOT_INITIALIZED;
	if (!state_dir())
		return CUDA_ERROR_NOT_SUPPORTED;
	if (pid <= 0)
		return CUDA_ERROR_INVALID_VALUE;
	int fd = open_state(pid, 0);
	if (fd < 0)
		return CUDA_ERROR_NOT_FOUND;
	/* A file left by a process that is gone (or a recycled pid that never
	 * loaded the fake) is not a CUDA process. */
	if (kill(pid, 0) < 0) {
		close(fd);
		return CUDA_ERROR_NOT_FOUND;
	}
	*ret_fd = fd;
	return CUDA_SUCCESS;
}

/* Post `req` to `pid` and wait for its answer (at most `timeout_ms`, 0:
 * ANSWER_TIMEOUT_MS). A request still untaken at the deadline is withdrawn:
 * the process stays in its state. */
static CUresult request(int pid, int req, unsigned int timeout_ms, CUresult on_timeout)
{
	struct shared s;
	int fd = -1;
	CUresult res = open_target(pid, &fd);
	if (res != CUDA_SUCCESS)
		return res;

	flock(fd, LOCK_EX);
	if (read_shared(fd, &s) < 0)
		res = CUDA_ERROR_UNKNOWN;
	else if (s.request != REQ_NONE || s.state != required_state(req))
		res = CUDA_ERROR_ILLEGAL_STATE;
	else {
		s.request = req;
		if (write_shared(fd, &s) < 0)
			res = CUDA_ERROR_UNKNOWN;
	}
	flock(fd, LOCK_UN);
	if (res != CUDA_SUCCESS) {
		close(fd);
		return res;
	}

	uint64_t deadline = now_ms() + (timeout_ms ? timeout_ms : ANSWER_TIMEOUT_MS);
	for (;;) {
		flock(fd, LOCK_EX);
		int rr = read_shared(fd, &s);
		if (rr == 0 && s.request == REQ_NONE) {
			res = (CUresult) s.result;
			flock(fd, LOCK_UN);
			break;
		}
		if (rr < 0 || now_ms() >= deadline || kill(pid, 0) < 0) {
			if (rr == 0) {
				s.request = REQ_NONE;
				(void) write_shared(fd, &s);
			}
			flock(fd, LOCK_UN);
			res = rr < 0 ? CUDA_ERROR_UNKNOWN : on_timeout;
			break;
		}
		flock(fd, LOCK_UN);
		sleep_ms(1);
	}
	close(fd);
	return res;
}

FAKE_API CUresult cuCheckpointProcessGetState(int pid, CUprocessState *state)
{
	struct shared s;
	int fd = -1;
	if (!state)
		return CUDA_ERROR_INVALID_VALUE;
	CUresult res = open_target(pid, &fd);
	if (res != CUDA_SUCCESS)
		return res;
	flock(fd, LOCK_SH);
	int r = read_shared(fd, &s);
	flock(fd, LOCK_UN);
	close(fd);
	if (r < 0)
		return CUDA_ERROR_UNKNOWN;
	*state = (CUprocessState) s.state;
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
