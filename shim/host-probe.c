/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host probes for `stoke check` (host-probe.h). Each probe tries the real
 * thing in a child process where it could hang, crash or load a library
 * the runtime must not hold, and waits for that child with a time limit.
 */
#include "host-probe.h"
#include "cgroup.h"
#include "stoke-checkpoint.h"

#include "cleanup.h"
#include "fd-util.h"
#include "time-util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define VERSION_TIMEOUT_MS 5000
#define HWBP_TIMEOUT_MS	   1000
#define CHILD_TIMEOUT_MS   2000
#define GPU_TIMEOUT_MS	   10000
/* CRIU before 4.2 hangs on hosts whose debug registers never fire. */
#define CRIU_HWBP_SAFE_MAJOR 4
#define CRIU_HWBP_SAFE_MINOR 2
/* The CRIU stoke's lazy restore (shim/restore-pages.c) is written for. */
#define CRIU_LAZY_MIN_MAJOR 4

const char *hp_state_name(enum hp_state s)
{
	switch (s) {
	case HP_OK:
		return "ok";
	case HP_UNUSABLE:
		return "unusable";
	case HP_FAILED:
		return "failed";
	case HP_NA:
		return "n/a";
	case HP_SKIPPED:
		return "skipped";
	}
	return "?";
}

/* Fill `r`: `value` NULL means the state's name. */
static __attribute__((format(printf, 4, 5))) void
set_result(struct hp_result *r, enum hp_state s, const char *value, const char *fmt, ...)
{
	va_list ap;

	r->state = s;
	snprintf(r->value, sizeof(r->value), "%s", value ? value : hp_state_name(s));
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
}

/* --- Children ------------------------------------------------------------- */

/* Wait at most `timeout_ms` for `pid` to exit (or, traced, to stop).
 * Polling, because a traced child's stops do not wake a pidfd.
 * @return : 1 with *ret_status, 0 on timeout, or -errno. */
static int wait_child(pid_t pid, int timeout_ms, int *ret_status)
{
	uint64_t end = cs_monotonic_ns() + (uint64_t) timeout_ms * CS_NSEC_PER_MSEC;

	for (;;) {
		int st;
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid) {
			*ret_status = st;
			return 1;
		}
		if (w < 0 && errno != EINTR)
			return -errno;
		if (cs_monotonic_ns() >= end)
			return 0;
		struct timespec ts = {.tv_nsec = 2 * 1000 * 1000};
		(void) nanosleep(&ts, NULL);
	}
}

/* SIGKILL `pid` (its whole process group when `group`) and reap it. */
static void kill_and_reap(pid_t pid, bool group)
{
	if (pid <= 0)
		return;
	(void) kill(group ? -pid : pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* In a new child: stdin and stderr (and stdout unless `out_fd` >= 0, which
 * becomes stdout) on /dev/null, every other fd but `keep_fd` closed, no
 * signal blocked. */
static void child_stdio(int out_fd, int keep_fd)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	sigset_t none;

	if (null >= 0) {
		(void) dup2(null, STDIN_FILENO);
		(void) dup2(out_fd >= 0 ? out_fd : null, STDOUT_FILENO);
		(void) dup2(null, STDERR_FILENO);
	}
	if (keep_fd > STDERR_FILENO) {
		(void) close_range(STDERR_FILENO + 1, (unsigned) keep_fd - 1, 0);
		(void) close_range((unsigned) keep_fd + 1, ~0U, 0);
	} else {
		(void) close_range(STDERR_FILENO + 1, ~0U, 0);
	}
	sigemptyset(&none);
	(void) sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Read what a child writes to `fd` until end of file or `timeout_ms`.
 * @return : bytes read (NUL-terminated in buf), or -ETIMEDOUT. */
static ssize_t read_until_eof(int fd, char *buf, size_t len, int timeout_ms)
{
	uint64_t end = cs_monotonic_ns() + (uint64_t) timeout_ms * CS_NSEC_PER_MSEC;
	size_t got = 0;

	buf[0] = '\0';
	for (;;) {
		uint64_t now = cs_monotonic_ns();
		if (now >= end)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int n = poll(&p, 1, (int) ((end - now) / CS_NSEC_PER_MSEC) + 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			continue;
		ssize_t k = read(fd, buf + got, len - 1 - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0 || got + (size_t) k >= len - 1) {
			got += k > 0 ? (size_t) k : 0;
			buf[got] = '\0';
			return (ssize_t) got;
		}
		got += (size_t) k;
		buf[got] = '\0';
	}
}

/* --- criu ----------------------------------------------------------------- */

/* `name` if it holds a slash, else the first executable `name` in PATH. */
static int find_program(const char *name, char *ret, size_t len)
{
	if (strchr(name, '/')) {
		snprintf(ret, len, "%s", name);
		return access(ret, X_OK) < 0 ? -errno : 0;
	}
	const char *path = getenv("PATH");
	_cleanup_free_ char *copy = strdup(path ? path : "/usr/local/sbin:/usr/sbin:/usr/bin");
	if (!copy)
		return -ENOMEM;
	for (char *save, *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(ret, len, "%s/%s", d, name);
		if (access(ret, X_OK) == 0)
			return 0;
	}
	return -ENOENT;
}

/* Run `path` `arg` with stdout into `out`, in a process group of its own
 * so that a timeout can kill whatever it started.
 * @return : the wait status, or -errno (-ETIMEDOUT: killed). */
static int run_capture(const char *path, const char *arg, char *out, size_t outlen, int timeout_ms)
{
	_cleanup_close_ int rd = -EBADF;
	int p[2], st;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	rd = p[0];
	pid_t pid = fork();
	if (pid < 0) {
		(void) close(p[1]);
		return -errno;
	}
	if (pid == 0) {
		(void) setpgid(0, 0);
		child_stdio(p[1], -1);
		execl(path, path, arg, (char *) NULL);
		_exit(127);
	}
	(void) close(p[1]);
	ssize_t n = read_until_eof(rd, out, outlen, timeout_ms);
	int w = n < 0 ? 0 : wait_child(pid, CHILD_TIMEOUT_MS, &st);
	if (w <= 0) {
		kill_and_reap(pid, true);
		return n < 0 ? (int) n : -ETIMEDOUT;
	}
	return st;
}

/* "Version: 4.2.1" (the patch level is optional). */
static bool parse_criu_version(const char *out, struct hp_criu *c)
{
	const char *v = strstr(out, "Version:");
	unsigned patch = 0;

	if (!v || sscanf(v + strlen("Version:"), " %u.%u.%u", &c->major, &c->minor, &patch) < 2)
		return false;
	c->patch = patch;
	c->have_version = true;
	return true;
}

struct hp_result hp_probe_criu(const char *criu_path, struct hp_criu *ret_criu)
{
	struct hp_result res = {0};
	char out[512];

	*ret_criu = (struct hp_criu){0};
	int r = find_program(criu_path ? criu_path : "criu", ret_criu->path,
			     sizeof(ret_criu->path));
	if (r < 0) {
		ret_criu->path[0] = '\0';
		set_result(&res, HP_FAILED, "missing", "no criu binary %s%s (%s)",
			   criu_path ? "at " : "in PATH", criu_path ? criu_path : "", strerror(-r));
		return res;
	}
	r = run_capture(ret_criu->path, "--version", out, sizeof(out), VERSION_TIMEOUT_MS);
	if (r == -ETIMEDOUT) {
		set_result(&res, HP_FAILED, "no answer",
			   "%s --version did not answer within %d s (killed)", ret_criu->path,
			   VERSION_TIMEOUT_MS / 1000);
		return res;
	}
	if (r < 0 || !WIFEXITED(r) || WEXITSTATUS(r) != 0 || !parse_criu_version(out, ret_criu)) {
		set_result(&res, HP_FAILED, "unknown", "%s --version failed or printed no version",
			   ret_criu->path);
		return res;
	}
	char v[32];
	snprintf(v, sizeof(v), "%u.%u.%u", ret_criu->major, ret_criu->minor, ret_criu->patch);
	set_result(&res, HP_OK, v, "%s", ret_criu->path);
	return res;
}

/* Whether this criu is old enough to hang where breakpoints never fire. */
static bool criu_hangs_without_hwbp(const struct hp_criu *c)
{
	if (c->major != CRIU_HWBP_SAFE_MAJOR)
		return c->major < CRIU_HWBP_SAFE_MAJOR;
	return c->minor < CRIU_HWBP_SAFE_MINOR;
}

/* --- Checkpoint and restore ----------------------------------------------- */

/* A child in a session of its own, stdio on /dev/null and no other fd, as
 * CRIU dumps a tree without --shell-job. It pauses until killed; returns
 * once it has left our session. @return : its pid, or -errno. */
static pid_t spawn_sleeper(void)
{
	_cleanup_close_ int rd = -EBADF;
	int p[2], st;
	char c[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	rd = p[0];
	pid_t pid = fork();
	if (pid < 0) {
		(void) close(p[1]);
		return -errno;
	}
	if (pid == 0) {
		(void) setsid();
		child_stdio(-1, p[1]);
		(void) write(p[1], "r", 1);
		(void) close(p[1]);
		for (;;)
			pause();
	}
	(void) close(p[1]);
	if (read_until_eof(rd, c, sizeof(c), CHILD_TIMEOUT_MS) != 1 ||
	    wait_child(pid, 0, &st) != 0) {
		kill_and_reap(pid, false);
		return -ECHILD;
	}
	return pid;
}

/* TMPDIR (or /tmp)/stoke-check.XXXXXX, created 0700. */
static int make_temp_dir(char *ret, size_t len)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(ret, len, "%s/stoke-check.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	return mkdtemp(ret) ? 0 : -errno;
}

/* Why a CRIU call failed with `r`: the driver's explanation if it has one. */
static const char *cr_reason(int r)
{
	const char *why = stoke_cr_error();
	return *why ? why : strerror(-r);
}

/* After a failure CRIU's log stays (the reason names it); the images go.
 * The directory goes too when nothing is left in it. */
static void remove_temp_dir(const char *dir, bool all)
{
	char images[PATH_MAX + sizeof("/images")];

	if (all) {
		(void) cs_rm_rf_at(AT_FDCWD, dir);
		return;
	}
	snprintf(images, sizeof(images), "%s/images", dir);
	(void) cs_rm_rf_at(AT_FDCWD, images);
	(void) rmdir(dir);
}

/* Dump *sleeper and restore it from `dir`; *sleeper becomes 0 once it is
 * reaped (its pid is then free, or the restored process's: not ours to
 * kill again). @return : 0, or -errno with the reason in `res`. */
static int dump_and_restore(pid_t *sleeper, const char *dir, const struct hp_criu *criu,
			    unsigned timeout_s, struct hp_result *res)
{
	char images[PATH_MAX + sizeof("/images")];
	pid_t pid = *sleeper;
	int st;

	snprintf(images, sizeof(images), "%s/images", dir);
	struct stoke_cr_options o = {
		.images_dir = images,
		.work_dir = dir,
		.criu_path = criu->path,
		.deadline_s = timeout_s,
	};
	int r = stoke_criu_dump(pid, &o);
	if (r < 0) {
		set_result(res, HP_FAILED, NULL, "dump: %s", cr_reason(r));
		return r;
	}
	/* CRIU killed the dumped child; its pid must be free for the restore. */
	if (wait_child(pid, CHILD_TIMEOUT_MS, &st) <= 0) {
		set_result(res, HP_FAILED, NULL, "dump left the dumped process %d running",
			   (int) pid);
		return -EBUSY;
	}
	*sleeper = 0;
	pid_t restored = stoke_criu_restore(&o);
	if (restored < 0) {
		set_result(res, HP_FAILED, NULL, "restore: %s", cr_reason(restored));
		return restored;
	}
	r = wait_child(restored, 0, &st);
	kill_and_reap(restored, false);
	if (r != 0) {
		set_result(res, HP_FAILED, NULL, "the restored process %d died at once",
			   (int) restored);
		return -ESRCH;
	}
	return 0;
}

struct hp_result hp_probe_checkpoint_restore(const struct hp_criu *criu, unsigned timeout_s)
{
	struct hp_result res = {0};
	char dir[PATH_MAX];

	if (!criu->path[0]) {
		set_result(&res, HP_FAILED, NULL, "no criu binary");
		return res;
	}
	int r = make_temp_dir(dir, sizeof(dir));
	if (r < 0) {
		set_result(&res, HP_FAILED, NULL, "cannot create a temporary directory: %s",
			   strerror(-r));
		return res;
	}
	uint64_t t0 = cs_monotonic_ns();
	pid_t pid = spawn_sleeper();
	if (pid < 0) {
		set_result(&res, HP_FAILED, NULL, "cannot start a test process: %s",
			   strerror(-pid));
	} else {
		r = dump_and_restore(&pid, dir, criu, timeout_s, &res);
		/* Still ours when the dump failed (or timed out and killed it). */
		kill_and_reap(pid, false);
		if (r >= 0)
			set_result(&res, HP_OK, NULL,
				   "dumped and restored a test process in %.2f s with %s",
				   (double) (cs_monotonic_ns() - t0) / 1e9, criu->path);
	}
	remove_temp_dir(dir, res.state == HP_OK);
	return res;
}

/* --- Hardware breakpoints --------------------------------------------------- */

#if defined(__x86_64__) || defined(__i386__)

/* The breakpoint's target; noinline so that the child really calls it. */
static __attribute__((noinline)) void hwbp_target(void)
{
	__asm__ volatile("" ::: "memory");
}

static __attribute__((noreturn)) void hwbp_child(void)
{
	void (*volatile fn)(void) = hwbp_target;

	child_stdio(-1, -1);
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0)
		_exit(2);
	(void) raise(SIGSTOP);
	fn();
	_exit(0);
}

/* DR0 = the target, DR7 = local enable of DR0, execute, length 1. */
static int hwbp_arm(pid_t pid)
{
	long dr0 = (long) offsetof(struct user, u_debugreg[0]);
	long dr7 = (long) offsetof(struct user, u_debugreg[7]);

	if (ptrace(PTRACE_POKEUSER, pid, (void *) dr0, (void *) (uintptr_t) hwbp_target) < 0)
		return -errno;
	if (ptrace(PTRACE_POKEUSER, pid, (void *) dr7, (void *) 1L) < 0)
		return -errno;
	return 0;
}

/* The child stopped for SIGSTOP: arm, continue, watch.
 * @return : whether the child is still to be killed and reaped. */
static bool hwbp_watch(pid_t pid, struct hp_result *res)
{
	int st, r = hwbp_arm(pid);

	if (r < 0) {
		set_result(res, HP_UNUSABLE, NULL, "ptrace refused the debug registers: %s",
			   strerror(-r));
		return true;
	}
	if (ptrace(PTRACE_CONT, pid, NULL, NULL) < 0) {
		set_result(res, HP_UNUSABLE, NULL, "ptrace: cannot continue the child: %s",
			   strerror(errno));
		return true;
	}
	r = wait_child(pid, HWBP_TIMEOUT_MS, &st);
	if (r > 0 && WIFSTOPPED(st) && WSTOPSIG(st) == SIGTRAP)
		set_result(res, HP_OK, "usable", "an execute breakpoint in DR0 fired");
	else if (r > 0 && WIFEXITED(st))
		set_result(res, HP_UNUSABLE, NULL,
			   "ptrace accepted an execute breakpoint in DR0 and it never fired "
			   "(the child ran through it; a hypervisor that ignores debug "
			   "registers?)");
	else if (r == 0)
		set_result(res, HP_UNUSABLE, NULL,
			   "an execute breakpoint in DR0 did not fire within %d ms",
			   HWBP_TIMEOUT_MS);
	else
		set_result(res, HP_UNUSABLE, NULL, "the probe child ended unexpectedly (%#x)",
			   r > 0 ? st : 0);
	return r <= 0 || WIFSTOPPED(st);
}

struct hp_result hp_probe_hw_breakpoints(void)
{
	struct hp_result res = {0};
	int st;

	pid_t pid = fork();
	if (pid < 0) {
		set_result(&res, HP_UNUSABLE, NULL, "fork: %s", strerror(errno));
		return res;
	}
	if (pid == 0)
		hwbp_child();
	bool ours = true;
	int r = wait_child(pid, HWBP_TIMEOUT_MS, &st);
	if (r > 0 && WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP) {
		ours = hwbp_watch(pid, &res);
	} else {
		set_result(&res, HP_UNUSABLE, NULL,
			   "the probe child could not be traced (PTRACE_TRACEME refused?)");
		ours = r <= 0 || WIFSTOPPED(st);
	}
	if (ours)
		kill_and_reap(pid, false);
	return res;
}

#else

struct hp_result hp_probe_hw_breakpoints(void)
{
	struct hp_result res = {0};

	set_result(&res, HP_NA, NULL, "x86 debug registers only");
	return res;
}

#endif

/* --- userfaultfd and lazy pages -------------------------------------------- */

/* The events CRIU asks for in a lazy restore (criu/uffd.c), as
 * shim/restore-pages.c does. */
#define CRIU_UFFD_FEATURES                                                               \
	(UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_UNMAP | \
	 UFFD_FEATURE_EVENT_REMOVE)

static int uffd_open_syscall(void)
{
	int fd = (int) syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

static int uffd_open_dev(void)
{
	_cleanup_close_ int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -errno;
	int fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

/* UFFDIO_API with `features` on a new fd. @return : 0 or -errno, and
 * *ret_features: what the kernel offers (when asked for none). */
static int uffd_api(uint64_t features, uint64_t *ret_features)
{
	_cleanup_close_ int fd = uffd_open_syscall();
	if (fd < 0)
		return fd;
	struct uffdio_api api = {.api = UFFD_API, .features = features};
	if (ioctl(fd, UFFDIO_API, &api) < 0)
		return -errno;
	if (ret_features)
		*ret_features = api.features;
	return 0;
}

/* Why userfaultfd(2) failed with `r`, with /dev/userfaultfd as a hint. */
static void uffd_explain_refusal(int r, struct hp_result *res)
{
	_cleanup_close_ int dev = uffd_open_dev();
	const char *dev_note = dev >= 0 ? "; /dev/userfaultfd works, but CRIU's restorer uses "
					  "the system call"
					: "";
	const char *why = r == -ENOSYS	? "no such system call (kernel without "
					  "CONFIG_USERFAULTFD, or refused by seccomp)"
			  : r == -EPERM ? "not permitted (vm.unprivileged_userfaultfd, seccomp "
					  "or an LSM)"
					: strerror(-r);

	set_result(res, HP_UNUSABLE, NULL, "userfaultfd(2): %s%s", why, dev_note);
}

struct hp_result hp_probe_userfaultfd(void)
{
	struct hp_result res = {0};
	uint64_t offered = 0;

	int fd = uffd_open_syscall();
	if (fd < 0) {
		uffd_explain_refusal(fd, &res);
		return res;
	}
	(void) close(fd);
	int r = uffd_api(CRIU_UFFD_FEATURES, NULL);
	if (r == 0) {
		set_result(&res, HP_OK, NULL,
			   "userfaultfd(2) with the fork, remap, unmap and remove events");
		return res;
	}
	if (uffd_api(0, &offered) == 0 && (offered & CRIU_UFFD_FEATURES) != CRIU_UFFD_FEATURES)
		set_result(&res, HP_UNUSABLE, NULL,
			   "userfaultfd(2) lacks events CRIU needs (offered %#llx, needed %#llx)",
			   (unsigned long long) offered, (unsigned long long) CRIU_UFFD_FEATURES);
	else
		set_result(&res, HP_UNUSABLE, NULL, "UFFDIO_API: %s", strerror(-r));
	return res;
}

struct hp_result hp_probe_lazy_pages(const struct hp_result *uffd, const struct hp_criu *criu)
{
	struct hp_result res = {0};

	if (uffd->state != HP_OK)
		set_result(&res, HP_UNUSABLE, NULL, "userfaultfd is unusable");
	else if (!criu->have_version)
		set_result(&res, HP_UNUSABLE, NULL, "no criu with a known version");
	else if (criu->major < CRIU_LAZY_MIN_MAJOR)
		set_result(&res, HP_UNUSABLE, NULL,
			   "criu %u.%u is older than %u.0, which stoke's lazy restore needs",
			   criu->major, criu->minor, CRIU_LAZY_MIN_MAJOR);
	else
		set_result(&res, HP_OK, NULL, "userfaultfd and criu %u.%u --lazy-pages",
			   criu->major, criu->minor);
	return res;
}

/* --- io_uring ------------------------------------------------------------- */

/* The three mappings of a ring, for the NOP round trip. */
struct raw_ring {
	int fd;
	void *sq, *cq;
	size_t sq_len, cq_len;
	struct io_uring_sqe *sqes;
	size_t sqes_len;
	struct io_uring_params p;
};

static void raw_ring_close(struct raw_ring *r)
{
	if (r->sqes && r->sqes != MAP_FAILED)
		(void) munmap(r->sqes, r->sqes_len);
	if (r->cq && r->cq != MAP_FAILED && r->cq != r->sq)
		(void) munmap(r->cq, r->cq_len);
	if (r->sq && r->sq != MAP_FAILED)
		(void) munmap(r->sq, r->sq_len);
	if (r->fd >= 0)
		(void) close(r->fd);
}

/* The shim does not link liburing (module boundaries): the ring is set up
 * with the raw system calls, as liburing's io_uring_queue_init() does. */
static int raw_ring_open(struct raw_ring *r)
{
	*r = (struct raw_ring){.fd = -EBADF};
	r->fd = (int) syscall(SYS_io_uring_setup, 4, &r->p);
	if (r->fd < 0)
		return -errno;
	r->sq_len = r->p.sq_off.array + r->p.sq_entries * sizeof(uint32_t);
	r->cq_len = r->p.cq_off.cqes + r->p.cq_entries * sizeof(struct io_uring_cqe);
	if (r->p.features & IORING_FEAT_SINGLE_MMAP)
		r->sq_len = r->cq_len = r->sq_len > r->cq_len ? r->sq_len : r->cq_len;
	r->sq = mmap(NULL, r->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
		     IORING_OFF_SQ_RING);
	if (r->sq == MAP_FAILED)
		return -errno;
	r->cq = r->sq;
	if (!(r->p.features & IORING_FEAT_SINGLE_MMAP)) {
		r->cq = mmap(NULL, r->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
			     r->fd, IORING_OFF_CQ_RING);
		if (r->cq == MAP_FAILED)
			return -errno;
	}
	r->sqes_len = r->p.sq_entries * sizeof(struct io_uring_sqe);
	r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
		       IORING_OFF_SQES);
	return r->sqes == MAP_FAILED ? -errno : 0;
}

#define RING_U32(base, off) ((uint32_t *) ((char *) (base) + (off)))
#define NOP_TAG		    UINT64_C(0x570ce)

/* Submit one NOP and reap its completion. @return : 0 or -errno. */
static int raw_ring_nop(struct raw_ring *r)
{
	uint32_t tail = *RING_U32(r->sq, r->p.sq_off.tail);
	uint32_t idx = tail & *RING_U32(r->sq, r->p.sq_off.ring_mask);

	memset(&r->sqes[idx], 0, sizeof(r->sqes[idx]));
	r->sqes[idx].opcode = IORING_OP_NOP;
	r->sqes[idx].user_data = NOP_TAG;
	RING_U32(r->sq, r->p.sq_off.array)[idx] = idx;
	__atomic_store_n(RING_U32(r->sq, r->p.sq_off.tail), tail + 1, __ATOMIC_RELEASE);
	if (syscall(SYS_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		return -errno;
	uint32_t head = *RING_U32(r->cq, r->p.cq_off.head);
	if (head == __atomic_load_n(RING_U32(r->cq, r->p.cq_off.tail), __ATOMIC_ACQUIRE))
		return -EAGAIN;
	struct io_uring_cqe *cqes = (struct io_uring_cqe *) ((char *) r->cq + r->p.cq_off.cqes);
	struct io_uring_cqe *cqe = &cqes[head & *RING_U32(r->cq, r->p.cq_off.ring_mask)];
	int res = cqe->user_data == NOP_TAG ? cqe->res : -EBADMSG;
	__atomic_store_n(RING_U32(r->cq, r->p.cq_off.head), head + 1, __ATOMIC_RELEASE);
	return res;
}

/* kernel.io_uring_disabled (absent before Linux 6.6: 0). */
static int io_uring_disabled_sysctl(void)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;

	if (cs_read_file_at(AT_FDCWD, "/proc/sys/kernel/io_uring_disabled", 64, &buf, &len) < 0)
		return 0;
	return atoi(buf);
}

static void io_uring_explain_refusal(int r, struct hp_result *res)
{
	int disabled = io_uring_disabled_sysctl();

	if (r == -EPERM && disabled == 2)
		set_result(res, HP_UNUSABLE, NULL,
			   "io_uring_setup: refused by kernel.io_uring_disabled=2");
	else if (r == -EPERM && disabled == 1)
		set_result(res, HP_UNUSABLE, NULL,
			   "io_uring_setup: refused by kernel.io_uring_disabled=1 (only "
			   "kernel.io_uring_group may use it)");
	else if (r == -ENOSYS || r == -EPERM)
		set_result(res, HP_UNUSABLE, NULL,
			   "io_uring_setup: %s (seccomp, an LSM, or a kernel without "
			   "CONFIG_IO_URING)",
			   strerror(-r));
	else
		set_result(res, HP_UNUSABLE, NULL, "io_uring_setup: %s", strerror(-r));
}

struct hp_result hp_probe_io_uring(void)
{
	struct hp_result res = {0};
	struct raw_ring ring;

	int r = raw_ring_open(&ring);
	if (r < 0 && ring.fd < 0)
		io_uring_explain_refusal(r, &res);
	else if (r < 0)
		set_result(&res, HP_UNUSABLE, NULL, "cannot map the ring: %s", strerror(-r));
	else if ((r = raw_ring_nop(&ring)) < 0)
		set_result(&res, HP_UNUSABLE, NULL, "a NOP did not complete: %s", strerror(-r));
	else
		set_result(&res, HP_OK, NULL, "a 4-entry ring completed a NOP");
	raw_ring_close(&ring);
	return res;
}

/* --- cgroups and user namespaces ------------------------------------------ */

struct hp_result hp_probe_cgroups(void)
{
	struct hp_result res = {0};

	switch (shim_cgroup_detect_layout()) {
	case SHIM_CGROUP_V2:
		set_result(&res, HP_OK, "v2", "cgroup2 at /sys/fs/cgroup");
		break;
	case SHIM_CGROUP_V1:
		set_result(&res, HP_OK, "v1", "v1 hierarchies under /sys/fs/cgroup");
		break;
	case SHIM_CGROUP_HYBRID:
		set_result(&res, HP_OK, "hybrid",
			   "v1 hierarchies and cgroup2 at /sys/fs/cgroup/unified");
		break;
	default:
		set_result(&res, HP_UNUSABLE, "none", "no cgroup filesystem at /sys/fs/cgroup");
	}
	return res;
}

struct hp_result hp_probe_user_namespaces(void)
{
	struct hp_result res = {0};
	_cleanup_free_ char *max = NULL;
	size_t len = 0;
	int st;

	if (cs_read_file_at(AT_FDCWD, "/proc/sys/user/max_user_namespaces", 64, &max, &len) >= 0 &&
	    atoi(max) == 0) {
		set_result(&res, HP_UNUSABLE, NULL, "user.max_user_namespaces is 0");
		return res;
	}
	pid_t pid = fork();
	if (pid < 0) {
		set_result(&res, HP_UNUSABLE, NULL, "fork: %s", strerror(errno));
		return res;
	}
	if (pid == 0)
		_exit(unshare(CLONE_NEWUSER) < 0 ? (errno & 0xff) : 0);
	int r = wait_child(pid, CHILD_TIMEOUT_MS, &st);
	if (r <= 0) {
		kill_and_reap(pid, false);
		set_result(&res, HP_UNUSABLE, NULL, "the probe child did not answer");
	} else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		set_result(&res, HP_OK, NULL, "a child unshared a user namespace");
	} else {
		set_result(&res, HP_UNUSABLE, NULL, "unshare(CLONE_NEWUSER): %s",
			   WIFEXITED(st) ? strerror(WEXITSTATUS(st)) : "the child was killed");
	}
	return res;
}

/* --- GPU ------------------------------------------------------------------ */

/* In the child: open the driver, write "N" (GPUs) or the error to `fd`,
 * exit with the -errno of stoke_gpu_open(). libcuda stays in this child. */
static __attribute__((noreturn)) void gpu_child(int fd)
{
	struct stoke_gpu *gpu = NULL;
	uint8_t(*uuids)[16] = NULL;
	size_t n = 0;
	char msg[512];

	child_stdio(-1, fd);
	int r = stoke_gpu_open(&gpu);
	if (r < 0) {
		snprintf(msg, sizeof(msg), "%s", stoke_cr_error());
		(void) cs_write_all(fd, msg, strlen(msg));
		_exit(-r & 0xff);
	}
	if (stoke_gpu_uuids(gpu, &uuids, &n) < 0)
		n = 0;
	snprintf(msg, sizeof(msg), "%zu", n);
	(void) cs_write_all(fd, msg, strlen(msg));
	_exit(0);
}

static void gpu_verdict(int st, const char *msg, struct hp_result *res)
{
	int err = WIFEXITED(st) ? WEXITSTATUS(st) : -1;

	if (err == 0)
		set_result(res, HP_OK, "found", "CUDA driver with the checkpoint API, %s GPU(s)",
			   msg);
	else if (err == ENOENT)
		set_result(res, HP_UNUSABLE, "none", "no libcuda.so.1 (no GPU driver)");
	else if (err == ENOSYS)
		set_result(res, HP_UNUSABLE, "too old", "%s", msg);
	else if (err == ENODEV)
		set_result(res, HP_UNUSABLE, "no device", "%s", msg);
	else
		set_result(res, HP_UNUSABLE, NULL, "%s", *msg ? msg : "the probe child crashed");
}

struct hp_result hp_probe_gpu(void)
{
	struct hp_result res = {0};
	_cleanup_close_ int rd = -EBADF;
	char msg[512];
	int p[2], st;

	if (getenv("STOKE_CHECK_SKIP_GPU")) {
		set_result(&res, HP_SKIPPED, NULL, "STOKE_CHECK_SKIP_GPU is set");
		return res;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		set_result(&res, HP_UNUSABLE, NULL, "pipe: %s", strerror(errno));
		return res;
	}
	rd = p[0];
	pid_t pid = fork();
	if (pid < 0) {
		(void) close(p[1]);
		set_result(&res, HP_UNUSABLE, NULL, "fork: %s", strerror(errno));
		return res;
	}
	if (pid == 0)
		gpu_child(p[1]);
	(void) close(p[1]);
	ssize_t n = read_until_eof(rd, msg, sizeof(msg), GPU_TIMEOUT_MS);
	if (n < 0 || wait_child(pid, CHILD_TIMEOUT_MS, &st) <= 0) {
		kill_and_reap(pid, false);
		set_result(&res, HP_UNUSABLE, NULL, "the CUDA driver did not answer within %d s",
			   GPU_TIMEOUT_MS / 1000);
		return res;
	}
	gpu_verdict(st, msg, &res);
	return res;
}

/* --- Advice across probes ------------------------------------------------- */

bool hp_criu_hangs_here(const struct hp_criu *criu, const struct hp_result *hwbp)
{
	return criu->have_version && hwbp->state == HP_UNUSABLE && criu_hangs_without_hwbp(criu);
}
