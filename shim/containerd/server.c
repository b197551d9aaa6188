/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ttrpc server: accept connections on the inherited listening socket,
 * assemble frames, dispatch unary Requests, write Responses (queued when the
 * socket is full, so a slow reader never blocks the loop).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "fd-util.h"
#include "log.h"
#include "shim.h"

struct conn {
	struct ev_source ev;
	uint8_t *rbuf;
	size_t rlen, rcap;
	size_t skip; /* bytes of an oversized frame still to discard */
	uint8_t *wbuf;
	size_t wlen, woff;
	bool closed;
	struct conn *next;
};

static struct ev_source listen_ev;

/* A request queued while a nested loop ran (it changes state). */
struct deferred {
	struct conn *conn;
	uint32_t stream_id;
	char *method;
	ProtobufCBinaryData payload;
	struct deferred *next;
};

static struct deferred *deferred_head, **deferred_tail = &deferred_head;

/* Requests that only read state: safe to answer while a handler waits. */
static bool reads_only(const char *method)
{
	return strcmp(method, "State") == 0 || strcmp(method, "Connect") == 0 ||
	       strcmp(method, "Wait") == 0 || strcmp(method, "Stats") == 0;
}

static void conn_free(struct shim *s, struct conn *c)
{
	struct conn **pp;

	process_drop_waiters_of(s, c);
	ev_del(s, &c->ev);
	if (c->ev.fd >= 0)
		close(c->ev.fd);
	for (pp = &s->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	free(c->rbuf);
	free(c->wbuf);
	free(c);
}

static int conn_flush(struct shim *s, struct conn *c)
{
	while (c->woff < c->wlen) {
		ssize_t n = write(c->ev.fd, c->wbuf + c->woff, c->wlen - c->woff);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -errno;
		}
		c->woff += n;
	}
	if (c->woff == c->wlen)
		c->woff = c->wlen = 0;
	if (c->ev.epfd >= 0) {
		struct epoll_event ev = {.events = EPOLLIN | (c->wlen ? EPOLLOUT : 0),
					 .data.ptr = &c->ev};
		(void) epoll_ctl(c->ev.epfd, EPOLL_CTL_MOD, c->ev.fd, &ev);
	}
	return 0;
}

static void conn_queue(struct shim *s, struct conn *c, const uint8_t *buf, size_t len)
{
	if (c->closed)
		return;
	if (c->woff) {
		memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
		c->wlen -= c->woff;
		c->woff = 0;
	}
	{
		uint8_t *n = realloc(c->wbuf, c->wlen + len);
		if (!n) {
			log_error("out of memory queueing a response");
			return;
		}
		c->wbuf = n;
	}
	memcpy(c->wbuf + c->wlen, buf, len);
	c->wlen += len;
	if (conn_flush(s, c) < 0)
		c->closed = true;
}

void conn_reply(struct shim *s, struct conn *c, uint32_t stream_id, enum ttrpc_code code,
		const char *message, const void *payload, size_t len)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t blen;
	int r;

	r = ttrpc_response_frame(stream_id, code, message, payload, len, &buf, &blen);
	if (r == -EMSGSIZE)
		r = ttrpc_response_frame(stream_id, TTRPC_RESOURCE_EXHAUSTED,
					 "response larger than 4 MiB", NULL, 0, &buf, &blen);
	if (r < 0) {
		log_error_errno(r, "cannot encode a response: %m");
		return;
	}
	conn_queue(s, c, buf, blen);
}

void conn_reply_msg(struct shim *s, struct conn *c, uint32_t stream_id, const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	_cleanup_free_ uint8_t *buf = malloc(len ? len : 1);

	if (!buf) {
		conn_reply(s, c, stream_id, TTRPC_INTERNAL, "out of memory", NULL, 0);
		return;
	}
	protobuf_c_message_pack(m, buf);
	conn_reply(s, c, stream_id, TTRPC_OK, NULL, buf, len);
}

/* Run a request. Its handler may wait in a nested loop that reads this same
 * connection again (conn_parse() keeps no position across handlers). */
static void dispatch(struct shim *s, struct conn *c, uint32_t stream_id, const char *method,
		     const ProtobufCBinaryData *payload)
{
	service_dispatch(s, c, stream_id, method, payload);
}

static void defer(struct shim *s, struct conn *c, uint32_t stream_id, const char *method,
		  const ProtobufCBinaryData *payload)
{
	struct deferred *d = calloc(1, sizeof(*d));

	if (!d || !(d->method = strdup(method)) ||
	    !(d->payload.data = malloc(payload->len ? payload->len : 1))) {
		if (d)
			free(d->method);
		free(d);
		conn_reply(s, c, stream_id, TTRPC_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
		return;
	}
	memcpy(d->payload.data, payload->data, payload->len);
	d->payload.len = payload->len;
	d->conn = c;
	d->stream_id = stream_id;
	*deferred_tail = d;
	deferred_tail = &d->next;
}

/* Drop `n` bytes from the front of the read buffer. */
static void conn_consume(struct conn *c, size_t n)
{
	memmove(c->rbuf, c->rbuf + n, c->rlen - n);
	c->rlen -= n;
}

/* Take the complete frame at the front of the buffer off it, then act on it. */
static void handle_frame(struct shim *s, struct conn *c, const struct ttrpc_header *h)
{
	Ctd__Request *req = NULL;
	char msg[300];

	if (h->type == TTRPC_TYPE_REQUEST)
		req = ctd__request__unpack(NULL, h->length, c->rbuf + TTRPC_HEADER_SIZE);
	conn_consume(c, TTRPC_HEADER_SIZE + h->length);
	if (h->type != TTRPC_TYPE_REQUEST) {
		/* Streams (Data frames) are not used by the task API. */
		conn_reply(s, c, h->stream_id, TTRPC_UNIMPLEMENTED, "streaming is not supported",
			   NULL, 0);
		return;
	}
	if (!req) {
		conn_reply(s, c, h->stream_id, TTRPC_INVALID_ARGUMENT, "malformed ttrpc request",
			   NULL, 0);
		return;
	}
	if (strcmp(req->service, TTRPC_TASK_SERVICE) != 0) {
		snprintf(msg, sizeof(msg), "service %s", req->service);
		conn_reply(s, c, h->stream_id, TTRPC_UNIMPLEMENTED, msg, NULL, 0);
	} else if ((s->nested || deferred_head) && !reads_only(req->method)) {
		/* Behind what is already queued, so one caller's order holds. */
		defer(s, c, h->stream_id, req->method, &req->payload);
	} else {
		dispatch(s, c, h->stream_id, req->method, &req->payload);
	}
	ctd__request__free_unpacked(req, NULL);
}

/* Handle the complete frames in the read buffer. Each is taken off the buffer
 * before its handler runs, so a nested loop may read and parse this
 * connection again meanwhile. */
static void conn_parse(struct shim *s, struct conn *c)
{
	while (!c->closed && !s->exit_requested) {
		struct ttrpc_header h;

		if (c->skip) {
			size_t n = c->rlen < c->skip ? c->rlen : c->skip;
			conn_consume(c, n);
			c->skip -= n;
			if (c->skip)
				break;
			continue;
		}
		if (c->rlen < TTRPC_HEADER_SIZE)
			break;
		ttrpc_header_decode(c->rbuf, &h);
		if (h.length > TTRPC_MAX_DATA) {
			/* Never buffer it: answer and discard, like ttrpc's Go server. */
			conn_reply(s, c, h.stream_id, TTRPC_RESOURCE_EXHAUSTED,
				   "message larger than 4 MiB", NULL, 0);
			conn_consume(c, TTRPC_HEADER_SIZE);
			c->skip = h.length;
			continue;
		}
		if (c->rlen < TTRPC_HEADER_SIZE + h.length)
			break;
		handle_frame(s, c, &h);
	}
}

static void on_conn(struct shim *s, struct ev_source *src, uint32_t events)
{
	struct conn *c = src->data;

	if (events & EPOLLOUT && conn_flush(s, c) < 0)
		c->closed = true;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		for (;;) {
			ssize_t n;

			if (c->rcap - c->rlen < 65536) {
				size_t cap = c->rcap ? c->rcap * 2 : 65536;
				uint8_t *b;
				if (cap > TTRPC_MAX_DATA + 2 * TTRPC_HEADER_SIZE + 65536)
					cap = TTRPC_MAX_DATA + 2 * TTRPC_HEADER_SIZE + 65536;
				if (cap <= c->rlen) {
					c->closed = true;
					break;
				}
				b = realloc(c->rbuf, cap);
				if (!b) {
					c->closed = true;
					break;
				}
				c->rbuf = b;
				c->rcap = cap;
			}
			n = read(c->ev.fd, c->rbuf + c->rlen, c->rcap - c->rlen);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN)
					c->closed = true;
				break;
			}
			if (n == 0) {
				c->closed = true;
				break;
			}
			c->rlen += n;
			conn_parse(s, c);
			if (c->closed || s->exit_requested)
				break;
		}
	}
	if (c->closed) {
		/* Freed now only when nothing can still point at it. */
		if (!s->nested && !deferred_head)
			conn_free(s, c);
		else {
			process_drop_waiters_of(s, c);
			ev_del(s, &c->ev);
		}
	}
}

void server_parse_buffered(struct shim *s)
{
	/* Connections are not freed while nested, so the list is stable. */
	for (struct conn *c = s->conns; c; c = c->next)
		if (!c->closed && c->rlen >= TTRPC_HEADER_SIZE)
			conn_parse(s, c);
}

void server_run_deferred(struct shim *s)
{
	struct conn **pp;

	if (s->nested)
		return;
	while (deferred_head && !s->exit_requested) {
		struct deferred *d = deferred_head;

		deferred_head = d->next;
		if (!deferred_head)
			deferred_tail = &deferred_head;
		if (!d->conn->closed)
			dispatch(s, d->conn, d->stream_id, d->method, &d->payload);
		free(d->method);
		free(d->payload.data);
		free(d);
	}
	if (deferred_head)
		return;
	for (pp = &s->conns; *pp;) {
		struct conn *c = *pp;
		if (c->closed) {
			conn_free(s, c); /* unlinks c: *pp is now the next one */
			continue;
		}
		pp = &c->next;
	}
}

static void on_accept(struct shim *s, struct ev_source *src, uint32_t events)
{
	for (;;) {
		int fd = accept4(src->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		struct ucred cred;
		socklen_t len = sizeof(cred);
		struct conn *c;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warning("accept failed: %s", strerror(errno));
			return;
		}
		/* Only the user that runs the shim (containerd) may talk to it. */
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
		    cred.uid != geteuid()) {
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->ev = (struct ev_source){.fd = fd, .handler = on_conn, .data = c, .epfd = -1};
		if (ev_add(s, &c->ev, false, EPOLLIN) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = s->conns;
		s->conns = c;
	}
}

int server_init(struct shim *s, int listen_fd)
{
	int r = cs_fd_set_nonblock(listen_fd, 1);

	if (r < 0)
		return r;
	r = cs_fd_set_cloexec(listen_fd, 1);
	if (r < 0)
		return r;
	listen_ev = (struct ev_source){.fd = listen_fd, .handler = on_accept, .epfd = -1};
	return ev_add(s, &listen_ev, false, EPOLLIN);
}

void server_close_all(struct shim *s)
{
	while (deferred_head) {
		struct deferred *d = deferred_head;
		deferred_head = d->next;
		free(d->method);
		free(d->payload.data);
		free(d);
	}
	deferred_tail = &deferred_head;
	/* Push out queued replies (the Shutdown answer) before closing. */
	for (struct conn *c = s->conns; c; c = c->next) {
		if (c->wlen) {
			(void) cs_fd_set_nonblock(c->ev.fd, 0);
			(void) conn_flush(s, c);
		}
	}
	while (s->conns)
		conn_free(s, s->conns);
	ev_del(s, &listen_ev);
	close(listen_ev.fd);
}
