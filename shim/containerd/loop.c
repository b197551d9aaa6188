/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The event loop, the one reaper and helper processes.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fd-util.h"
#include "log.h"
#include "shim.h"
#include "time-util.h"

extern char **environ;

uint64_t now_ns(void)
{
	return cs_now_ns(CLOCK_REALTIME);
}

void set_timestamp(Ctd__Timestamp *ts, uint64_t ns)
{
	ts->seconds = (int64_t) (ns / CS_NSEC_PER_SEC);
	ts->nanos = (int32_t) (ns % CS_NSEC_PER_SEC);
}

int ev_add(struct shim *s, struct ev_source *src, bool core, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = src};
	int epfd = core ? s->ep_core : s->ep_rpc;

	if (epoll_ctl(epfd, EPOLL_CTL_ADD, src->fd, &ev) < 0)
		return -errno;
	src->epfd = epfd;
	return 0;
}

void ev_del(struct shim *s, struct ev_source *src)
{
	if (src->epfd < 0)
		return;
	(void) epoll_ctl(src->epfd, EPOLL_CTL_DEL, src->fd, NULL);
	src->epfd = -1;
}

static void pending_push(struct shim *s, const struct exit_rec *r)
{
	if (s->n_pending == s->cap_pending) {
		size_t cap = s->cap_pending ? 2 * s->cap_pending : 16;
		struct exit_rec *n = realloc(s->pending, cap * sizeof(*n));
		if (!n) {
			log_error("out of memory queueing the exit of pid %d", r->pid);
			return;
		}
		s->pending = n;
		s->cap_pending = cap;
	}
	s->pending[s->n_pending++] = *r;
}

/* An exit nobody claimed yet: kept (bounded) because the pid file of a
 * container or exec process may be read only after the process died. */
static void unclaimed_push(struct shim *s, const struct exit_rec *r)
{
	size_t cap = ELEMENTSOF(s->unclaimed);

	if (s->n_unclaimed == cap) {
		memmove(s->unclaimed, s->unclaimed + 1, (cap - 1) * sizeof(*r));
		s->n_unclaimed--;
	}
	s->unclaimed[s->n_unclaimed++] = *r;
}

void exits_claim(struct shim *s, pid_t pid)
{
	for (size_t i = 0; i < s->n_unclaimed; i++) {
		if (s->unclaimed[i].pid != pid)
			continue;
		pending_push(s, &s->unclaimed[i]);
		memmove(s->unclaimed + i, s->unclaimed + i + 1,
			(s->n_unclaimed - i - 1) * sizeof(s->unclaimed[0]));
		s->n_unclaimed--;
		return;
	}
}

/* The only waitpid() in the daemon. */
static void reap(struct shim *s)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		struct exit_rec r;

		if (pid <= 0)
			break;
		if (pid == s->helper_pid) {
			s->helper_done = true;
			s->helper_status = status;
			continue;
		}
		r = (struct exit_rec){.pid = pid, .status = status, .when_ns = now_ns()};
		if (process_by_pid(s, pid))
			pending_push(s, &r);
		else
			unclaimed_push(s, &r);
	}
}

static void on_signal(struct shim *s, struct ev_source *src, uint32_t events)
{
	struct signalfd_siginfo si;

	while (read(src->fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			log_info("signal %u: exiting", si.ssi_signo);
			shim_request_exit(s);
		}
	}
	/* SIGCHLDs coalesce: reap whatever has exited, whichever signal woke us. */
	reap(s);
}

int loop_init(struct shim *s)
{
	sigset_t mask;

	s->ep_core = epoll_create1(EPOLL_CLOEXEC);
	s->ep_rpc = epoll_create1(EPOLL_CLOEXEC);
	if (s->ep_core < 0 || s->ep_rpc < 0)
		return -errno;

	/* Readers of fifos and the log may vanish (containerd restarts). */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	s->sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s->sig_fd < 0)
		return -errno;
	s->sig_ev = (struct ev_source){.fd = s->sig_fd, .handler = on_signal, .epfd = -1};
	return ev_add(s, &s->sig_ev, true, EPOLLIN);
}

static void dispatch(struct epoll_event *evs, int n, struct shim *s)
{
	for (int i = 0; i < n; i++) {
		struct ev_source *src = evs[i].data.ptr;
		src->handler(s, src, evs[i].events);
	}
}

/* Poll one epoll set without blocking and dispatch what is ready. */
static int drain_set(struct shim *s, int epfd)
{
	struct epoll_event evs[32];
	int n = epoll_wait(epfd, evs, ELEMENTSOF(evs), 0);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	dispatch(evs, n, s);
	return n;
}

int loop_run(struct shim *s)
{
	while (!s->exit_requested) {
		struct pollfd pfd[2] = {{.fd = s->ep_core, .events = POLLIN},
					{.fd = s->ep_rpc, .events = POLLIN}};
		int r;

		/* Exits first: a queued exit must be handled before new requests;
		 * then what was queued while something waited in a nested loop. */
		process_exits_run(s);
		server_run_deferred(s);
		if (s->exit_requested)
			break;
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (pfd[0].revents) {
			r = drain_set(s, s->ep_core);
			if (r < 0)
				return r;
			process_exits_run(s);
		}
		if (pfd[1].revents) {
			r = drain_set(s, s->ep_rpc);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int loop_wait_core(struct shim *s, bool (*done)(void *arg), void *arg, int timeout_ms)
{
	uint64_t deadline = timeout_ms < 0 ? 0 : cs_monotonic_ns() + timeout_ms * CS_NSEC_PER_MSEC;
	int r = 0;

	s->nested++;
	/* Requests that arrived with the one being handled wait in buffers. */
	server_parse_buffered(s);
	while (!done(arg)) {
		struct pollfd pfd[2] = {{.fd = s->ep_core, .events = POLLIN},
					{.fd = s->ep_rpc, .events = POLLIN}};
		int wait_ms = -1;

		if (timeout_ms >= 0) {
			uint64_t now = cs_monotonic_ns();
			if (now >= deadline) {
				r = -ETIMEDOUT;
				break;
			}
			wait_ms = (int) ((deadline - now) / CS_NSEC_PER_MSEC) + 1;
		}
		if (poll(pfd, 2, wait_ms) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (pfd[0].revents && (r = drain_set(s, s->ep_core)) < 0)
			break;
		if (pfd[1].revents && (r = drain_set(s, s->ep_rpc)) < 0)
			break;
		r = 0;
	}
	s->nested--;
	return r;
}

/* In the child: undo what the shim set for itself before exec'ing. */
static void child_reset_signals(void)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
}

/* Put fds[i] at i for i < n (fds[i] < 0: /dev/null), the rest close on exec. */
static void child_setup_fds(const int fds[], int n)
{
	int tmp[8];

	/* First move them all above n so dup2 never clobbers a later source. */
	for (int i = 0; i < n; i++) {
		int fd = fds[i];
		if (fd < 0)
			fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		tmp[i] = fcntl(fd, F_DUPFD_CLOEXEC, n);
	}
	for (int i = 0; i < n; i++) {
		if (tmp[i] < 0 || dup2(tmp[i], i) < 0)
			_exit(126);
	}
}

int helper_spawn(struct shim *s, char **argv, char **envp, const int fds[], int nfds,
		 pid_t *ret_pid)
{
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		child_reset_signals();
		child_setup_fds(fds, nfds);
		execve(argv[0], argv, envp ? envp : environ);
		_exit(127);
	}
	*ret_pid = pid;
	return 0;
}

static bool helper_finished(void *arg)
{
	return ((struct shim *) arg)->helper_done;
}

static int memfd_with(const void *data, size_t len)
{
	_cleanup_close_ int fd = memfd_create("stoke-shim-io", MFD_CLOEXEC);
	int r;

	if (fd < 0)
		return -errno;
	if (len) {
		r = cs_write_all(fd, data, len);
		if (r < 0)
			return r;
	}
	if (lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	return TAKE_FD(fd);
}

static char *memfd_read(int fd)
{
	struct stat st;
	char *buf;
	ssize_t n;

	if (fstat(fd, &st) < 0)
		return NULL;
	buf = malloc(st.st_size + 1);
	if (!buf)
		return NULL;
	n = cs_pread_all(fd, buf, st.st_size, 0);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	buf[n] = 0;
	return buf;
}

int helper_run(struct shim *s, const struct helper_spec *spec, struct helper_result *ret)
{
	_cleanup_close_ int in = -EBADF, out = -EBADF, err = -EBADF;
	int fds[3] = {spec->stdio[0], spec->stdio[1], spec->stdio[2]};
	pid_t pid = 0;
	int r;

	if (spec->input) {
		in = memfd_with(spec->input, spec->input_len);
		if (in < 0)
			return in;
		fds[0] = in;
	}
	if (spec->capture_stdout) {
		out = memfd_with(NULL, 0);
		if (out < 0)
			return out;
		fds[1] = out;
	}
	if (spec->capture_stderr) {
		err = memfd_with(NULL, 0);
		if (err < 0)
			return err;
		fds[2] = err;
	}

	s->helper_done = false;
	r = helper_spawn(s, spec->argv, spec->envp, fds, 3, &pid);
	if (r < 0)
		return r;
	s->helper_pid = pid;
	r = loop_wait_core(s, helper_finished, s, -1);
	s->helper_pid = 0;
	if (r < 0)
		return r;

	*ret = (struct helper_result){.status = s->helper_status};
	if (out >= 0)
		ret->out = memfd_read(out);
	if (err >= 0)
		ret->err = memfd_read(err);
	return 0;
}
