/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Container stdio: fifos (the client's named pipes), binary:// loggers,
 * file:// targets, none at all, and terminals (the pty master comes over the
 * --console-socket). Output is copied by non-blocking pumps in the loop's
 * core set: read the source only while the buffer is empty, write the
 * destination when it has data, and at the source's end close the
 * destination, which is the EOF `ctr` and CRI wait for before Delete.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "cleanup.h"
#include "fd-util.h"
#include "log.h"
#include "path-util.h"
#include "shim.h"
#include "strv.h"

#define PUMP_BUF 32768

struct pump {
	struct ev_source src, dst;
	int keep; /* fifo read end the shim keeps so writes never see EPIPE */
	size_t off, len;
	bool eof, done;
	char buf[PUMP_BUF];
};

static void pump_finish(struct shim *s, struct pump *p)
{
	ev_del(s, &p->src);
	ev_del(s, &p->dst);
	if (p->src.fd >= 0)
		close(p->src.fd);
	if (p->dst.fd >= 0)
		close(p->dst.fd);
	if (p->keep >= 0)
		close(p->keep);
	p->src.fd = p->dst.fd = p->keep = -1;
	p->done = true;
}

/* Watch the source while the buffer is empty, else the destination. */
static void pump_arm(struct shim *s, struct pump *p)
{
	if (p->done)
		return;
	if (p->len > p->off) {
		ev_del(s, &p->src);
		if (p->dst.epfd < 0 && ev_add(s, &p->dst, true, EPOLLOUT) < 0)
			pump_finish(s, p);
	} else if (p->eof) {
		pump_finish(s, p);
	} else {
		ev_del(s, &p->dst);
		if (p->src.epfd < 0 && ev_add(s, &p->src, true, EPOLLIN) < 0)
			pump_finish(s, p);
	}
}

static void pump_write(struct pump *p)
{
	while (p->off < p->len) {
		ssize_t n = write(p->dst.fd, p->buf + p->off, p->len - p->off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				p->off = p->len; /* reader gone for good: drop, keep draining */
			return;
		}
		p->off += n;
	}
	p->off = p->len = 0;
}

static void on_pump_src(struct shim *s, struct ev_source *src, uint32_t events)
{
	struct pump *p = src->data;
	ssize_t n = read(p->src.fd, p->buf, sizeof(p->buf));

	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		/* EIO: the pty's last slave fd closed: the output is over. */
		p->eof = true;
	} else if (n == 0) {
		p->eof = true;
	} else {
		p->off = 0;
		p->len = n;
		pump_write(p);
	}
	pump_arm(s, p);
}

static void on_pump_dst(struct shim *s, struct ev_source *src, uint32_t events)
{
	struct pump *p = src->data;

	if (events & EPOLLERR)
		p->off = p->len;
	else
		pump_write(p);
	pump_arm(s, p);
}

/* Copy `src` to `dst` until the source ends; takes both fds (and `keep`). */
static int pump_start(struct shim *s, int src, int dst, int keep, struct pump **ret)
{
	struct pump *p = calloc(1, sizeof(*p));

	if (!p) {
		close(src);
		close(dst);
		if (keep >= 0)
			close(keep);
		return -ENOMEM;
	}
	(void) cs_fd_set_nonblock(src, 1);
	(void) cs_fd_set_nonblock(dst, 1);
	p->src = (struct ev_source){.fd = src, .handler = on_pump_src, .data = p, .epfd = -1};
	p->dst = (struct ev_source){.fd = dst, .handler = on_pump_dst, .data = p, .epfd = -1};
	p->keep = keep;
	pump_arm(s, p);
	*ret = p;
	return 0;
}

void stdio_init(struct stdio *io)
{
	*io = (struct stdio){.child = {-1, -1, -1},
			     .stdin_keep = -1,
			     .console = -1,
			     .console_listen = -1,
			     .logger_out = -1,
			     .file_fd = -1};
}

/* The shim's pair of ends on an output fifo: a kept reader, then the writer. */
static int open_out_fifo(const char *path, int *ret_keep, int *ret_w)
{
	_cleanup_close_ int r = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	int w;

	if (r < 0)
		return -errno;
	w = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (w < 0)
		return -errno;
	*ret_keep = TAKE_FD(r);
	*ret_w = w;
	return 0;
}

/* The stdin fifo: a reader plus a writer the shim holds until CloseIO, so the
 * reader sees EOF only when both the client and CloseIO are done. */
static int open_in_fifo(const char *path, int *ret_r, int *ret_keep)
{
	_cleanup_close_ int r = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	int w;

	if (r < 0)
		return -errno;
	w = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (w < 0)
		return -errno;
	*ret_r = TAKE_FD(r);
	*ret_keep = w;
	return 0;
}

static int make_pipe(int fds[2])
{
	return pipe2(fds, O_CLOEXEC) < 0 ? -errno : 0;
}

/* binary:///path?k=v&k2=v2 -> argv {path, k, v, k2, v2}. */
static int binary_argv(const char *uri, char ***ret)
{
	_cleanup_strv_free_ char **argv = NULL;
	_cleanup_free_ char *copy = strdup(uri + strlen("binary://"));
	char *q, *save = NULL;
	int r;

	if (!copy)
		return -ENOMEM;
	q = strchr(copy, '?');
	if (q)
		*q++ = 0;
	if (!cs_path_is_absolute(copy))
		return -EINVAL;
	r = cs_strv_push(&argv, copy);
	if (r < 0)
		return r;
	for (char *kv = q ? strtok_r(q, "&", &save) : NULL; kv; kv = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(kv, '=');
		if (eq)
			*eq++ = 0;
		r = cs_strv_push(&argv, kv);
		if (r >= 0 && eq)
			r = cs_strv_push(&argv, eq);
		if (r < 0)
			return r;
	}
	*ret = TAKE_PTR(argv);
	return 0;
}

/* Start the logger with fd 3/4 = stdout/stderr read ends, fd 5 = readiness;
 * wait (bounded) for it to close fd 5 before the container may write. */
static int start_logger(struct shim *s, struct process *p, const char *uri, int out_r, int err_r,
			char *errbuf, size_t errlen)
{
	_cleanup_strv_free_ char **argv = NULL, **envp = NULL;
	_cleanup_free_ char *e1 = NULL, *e2 = NULL;
	_cleanup_close_ int wait_r = -EBADF, wait_w = -EBADF;
	int fds[6] = {-1, -1, -1, out_r, err_r, -1}, wp[2];
	struct pollfd pfd;
	char byte;
	int r;

	r = binary_argv(uri, &argv);
	if (r < 0) {
		snprintf(errbuf, errlen, "invalid log URI %s", uri);
		return r;
	}
	if (asprintf(&e1, "CONTAINER_ID=%s", p->c->id) < 0 ||
	    asprintf(&e2, "CONTAINER_NAMESPACE=%s", s->ns) < 0)
		return -ENOMEM;
	if (cs_strv_push(&envp, e1) < 0 || cs_strv_push(&envp, e2) < 0)
		return -ENOMEM;
	r = make_pipe(wp);
	if (r < 0)
		return r;
	wait_r = wp[0];
	wait_w = wp[1];
	fds[5] = wait_w;
	r = helper_spawn(s, argv, envp, fds, 6, &p->io.logger_pid);
	if (r < 0) {
		snprintf(errbuf, errlen, "cannot start logger %s: %s", argv[0], strerror(-r));
		return r;
	}
	closep(&wait_w);
	wait_w = -EBADF;
	pfd = (struct pollfd){.fd = wait_r, .events = POLLIN};
	if (poll(&pfd, 1, 10000) <= 0 || read(wait_r, &byte, 1) < 0) {
		snprintf(errbuf, errlen, "logger %s did not become ready", argv[0]);
		return -ETIMEDOUT;
	}
	return 0;
}

int stdio_prepare(struct shim *s, struct process *p, const char *in, const char *out,
		  const char *err, char *errbuf, size_t errlen)
{
	struct stdio *io = &p->io;
	int fds[2], r;

	stdio_init(io);
	if (p->terminal) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		char tmpl[] = "/tmp/stoke-pty.XXXXXX";
		_cleanup_close_ int l = -EBADF;

		if (!mkdtemp(tmpl))
			return -errno;
		io->console_dir = strdup(tmpl);
		if (!io->console_dir)
			return -ENOMEM;
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/pty.sock", tmpl);
		/* Non-blocking: a runtime that sent no console must not hang the shim. */
		l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (l < 0 || bind(l, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(l, 1) < 0)
			return -errno;
		io->console_listen = TAKE_FD(l);
	}

	if (in && *in) {
		int rfd, keep;
		r = open_in_fifo(in, &rfd, &keep);
		if (r < 0) {
			snprintf(errbuf, errlen, "cannot open stdin fifo %s: %s", in, strerror(-r));
			return r;
		}
		io->stdin_keep = keep;
		if (p->terminal) {
			/* Copied to the pty master once it arrives. */
			io->child[0] = rfd;
		} else {
			r = make_pipe(fds);
			if (r < 0) {
				close(rfd);
				return r;
			}
			io->child[0] = fds[0];
			r = pump_start(s, rfd, fds[1], -1, &io->pumps[0]);
			if (r < 0)
				return r;
		}
	}

	if (!out || !*out)
		return 0;

	if (strncmp(out, "binary://", 9) == 0) {
		int op[2], ep[2];
		r = make_pipe(op);
		if (r < 0)
			return r;
		r = make_pipe(ep);
		if (r < 0) {
			close(op[0]);
			close(op[1]);
			return r;
		}
		r = start_logger(s, p, out, op[0], ep[0], errbuf, errlen);
		close(op[0]);
		close(ep[0]);
		if (r < 0) {
			close(op[1]);
			close(ep[1]);
			return r;
		}
		if (p->terminal) {
			io->logger_out = op[1];
			close(ep[1]);
		} else {
			io->child[1] = op[1];
			io->child[2] = ep[1];
		}
		return 0;
	}

	if (strncmp(out, "file://", 7) == 0) {
		const char *path = out + 7;
		_cleanup_free_ char *dir = strdup(path);
		char *slash;

		if (!dir)
			return -ENOMEM;
		slash = strrchr(dir, '/');
		if (!cs_path_is_absolute(path) || !slash) {
			snprintf(errbuf, errlen, "invalid log URI %s", out);
			return -EINVAL;
		}
		*slash = 0;
		if (*dir)
			(void) cs_mkdir_p(dir, 0755);
		io->file_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (io->file_fd < 0) {
			r = -errno;
			snprintf(errbuf, errlen, "cannot open log file %s: %s", path, strerror(-r));
			return r;
		}
		if (p->terminal)
			return 0;
		for (int i = 1; i <= 2; i++) {
			int dst = fcntl(io->file_fd, F_DUPFD_CLOEXEC, 3);
			if (dst < 0)
				return -errno;
			r = make_pipe(fds);
			if (r < 0) {
				close(dst);
				return r;
			}
			io->child[i] = fds[1];
			r = pump_start(s, fds[0], dst, -1, &io->pumps[i]);
			if (r < 0)
				return r;
		}
		return 0;
	}

	/* Fifo paths. With a terminal only stdout is used (the pty merges both). */
	for (int i = 1; i <= 2; i++) {
		const char *path = i == 1 ? out : err;
		int keep, w;

		if (!path || !*path || (p->terminal && i == 2))
			continue;
		r = open_out_fifo(path, &keep, &w);
		if (r < 0) {
			snprintf(errbuf, errlen, "cannot open fifo %s: %s", path, strerror(-r));
			return r;
		}
		if (p->terminal) {
			/* Kept until the master arrives in stdio_started(). */
			io->child[1] = w;
			io->logger_out = keep;
			continue;
		}
		r = make_pipe(fds);
		if (r < 0) {
			close(keep);
			close(w);
			return r;
		}
		io->child[i] = fds[1];
		r = pump_start(s, fds[0], w, keep, &io->pumps[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

const char *stdio_console_socket(struct process *p)
{
	static char path[128];

	if (!p->io.console_dir)
		return NULL;
	snprintf(path, sizeof(path), "%s/pty.sock", p->io.console_dir);
	return path;
}

static void console_dir_remove(struct stdio *io)
{
	if (!io->console_dir)
		return;
	{
		char path[160];
		snprintf(path, sizeof(path), "%s/pty.sock", io->console_dir);
		(void) unlink(path);
	}
	(void) rmdir(io->console_dir);
	free(io->console_dir);
	io->console_dir = NULL;
}

/* Receive the pty master the runtime sent over the console socket. */
static int take_console(struct stdio *io)
{
	_cleanup_close_ int conn = -EBADF;
	char name[4096];
	int fd;

	conn = accept4(io->console_listen, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0)
		return -errno;
	fd = cs_recv_fd(conn, name, sizeof(name));
	if (fd < 0)
		return fd;
	io->console = fd;
	return 0;
}

int stdio_started(struct shim *s, struct process *p)
{
	struct stdio *io = &p->io;
	int r = 0;

	if (!p->terminal) {
		for (int i = 0; i < 3; i++)
			if (io->child[i] >= 0) {
				close(io->child[i]);
				io->child[i] = -1;
			}
		return 0;
	}

	r = take_console(io);
	if (io->console_listen >= 0)
		close(io->console_listen);
	io->console_listen = -1;
	console_dir_remove(io);
	if (r < 0)
		return r;

	/* Output: master -> stdout fifo (child[1], kept reader in logger_out), or
	 * master -> binary logger pipe (logger_out), or master -> file. */
	{
		int dst = -1, keep = -1, src = fcntl(io->console, F_DUPFD_CLOEXEC, 3);

		if (io->child[1] >= 0) {
			dst = io->child[1];
			keep = io->logger_out;
			io->child[1] = -1;
			io->logger_out = -1;
		} else if (io->logger_out >= 0) {
			dst = io->logger_out;
			io->logger_out = -1;
		} else if (io->file_fd >= 0) {
			dst = fcntl(io->file_fd, F_DUPFD_CLOEXEC, 3);
		}
		if (src >= 0 && dst >= 0)
			r = pump_start(s, src, dst, keep, &io->pumps[1]);
		else if (src >= 0)
			close(src);
	}
	/* Input: stdin fifo -> master. */
	if (io->child[0] >= 0) {
		int dst = fcntl(io->console, F_DUPFD_CLOEXEC, 3);
		if (dst >= 0) {
			(void) cs_fd_set_nonblock(dst, 1);
			r = pump_start(s, io->child[0], dst, -1, &io->pumps[0]);
		} else {
			close(io->child[0]);
		}
		io->child[0] = -1;
	}
	return r;
}

bool stdio_drained(struct process *p)
{
	for (int i = 1; i <= 2; i++)
		if (p->io.pumps[i] && !p->io.pumps[i]->done)
			return false;
	return true;
}

void stdio_close_stdin(struct process *p)
{
	if (p->io.stdin_keep >= 0)
		close(p->io.stdin_keep);
	p->io.stdin_keep = -1;
}

void stdio_close(struct shim *s, struct process *p)
{
	struct stdio *io = &p->io;

	for (int i = 0; i < 3; i++) {
		if (io->pumps[i]) {
			if (!io->pumps[i]->done)
				pump_finish(s, io->pumps[i]);
			free(io->pumps[i]);
			io->pumps[i] = NULL;
		}
		if (io->child[i] >= 0)
			close(io->child[i]);
		io->child[i] = -1;
	}
	stdio_close_stdin(p);
	if (io->console >= 0)
		close(io->console);
	if (io->console_listen >= 0)
		close(io->console_listen);
	if (io->logger_out >= 0)
		close(io->logger_out);
	if (io->file_fd >= 0)
		close(io->file_fd);
	io->console = io->console_listen = io->logger_out = io->file_fd = -1;
	console_dir_remove(io);
	if (io->logger_pid > 0) {
		/* It sees EOF on its pipes now; the reaper collects it. */
		(void) kill(io->logger_pid, SIGTERM);
		io->logger_pid = 0;
	}
}

int stdio_resize(struct process *p, uint32_t width, uint32_t height)
{
	struct winsize ws = {.ws_row = height, .ws_col = width};

	if (p->io.console < 0)
		return 0; /* no terminal: clients call this blindly */
	return ioctl(p->io.console, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}
