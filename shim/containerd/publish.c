/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Events to containerd: a ttrpc client on $TTRPC_ADDRESS calling
 * containerd.services.events.ttrpc.v1.Events/Forward, one event at a time in
 * the order they happen (which is what keeps create -> start -> exit -> delete).
 * The connection is opened lazily and reopened once when containerd restarted.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"
#include "fd-util.h"
#include "log.h"
#include "shim.h"
#include "time-util.h"

#define FORWARD_TIMEOUT_MS 5000

static int pub_connect(struct shim *s)
{
	const char *addr = s->ttrpc_address;

	if (!addr || !*addr)
		return -ENOTCONN;
	if (strncmp(addr, "unix://", 7) == 0)
		addr += 7;
	int r = cs_unix_connect(addr, &s->pub_fd);
	if (r < 0)
		return r;
	s->pub_stream = 1;
	return 0;
}

static void pub_disconnect(struct shim *s)
{
	if (s->pub_fd >= 0)
		close(s->pub_fd);
	s->pub_fd = -1;
}

/* Read exactly `len` bytes before the deadline. */
static int read_deadline(int fd, uint8_t *buf, size_t len, uint64_t deadline)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		uint64_t now = cs_monotonic_ns();
		ssize_t n;

		if (now >= deadline)
			return -ETIMEDOUT;
		if (poll(&p, 1, (int) ((deadline - now) / CS_NSEC_PER_MSEC) + 1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		n = read(fd, buf + got, len - got);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		got += n;
	}
	return 0;
}

/* One Forward call; the answer must carry our stream id and no error status. */
static int forward_once(struct shim *s, const uint8_t *payload, size_t len)
{
	_cleanup_free_ uint8_t *frame = NULL, *body = NULL;
	uint64_t deadline = cs_monotonic_ns() + FORWARD_TIMEOUT_MS * CS_NSEC_PER_MSEC;
	uint8_t hdr[TTRPC_HEADER_SIZE];
	struct ttrpc_header h;
	uint32_t stream;
	size_t flen;
	int r;

	if (s->pub_fd < 0) {
		r = pub_connect(s);
		if (r < 0)
			return r;
	}
	stream = s->pub_stream;
	s->pub_stream += 2;
	r = ttrpc_request_frame(stream, TTRPC_EVENTS_SERVICE, "Forward", payload, len, s->ns,
				&frame, &flen);
	if (r < 0)
		return r;
	r = cs_write_all(s->pub_fd, frame, flen);
	if (r < 0)
		return r;
	/* Skip answers to earlier streams that timed out. */
	for (;;) {
		Ctd__Response *resp;

		r = read_deadline(s->pub_fd, hdr, sizeof(hdr), deadline);
		if (r < 0)
			return r;
		ttrpc_header_decode(hdr, &h);
		if (h.length > TTRPC_MAX_DATA)
			return -EBADMSG;
		free(body);
		body = malloc(h.length ? h.length : 1);
		if (!body)
			return -ENOMEM;
		r = read_deadline(s->pub_fd, body, h.length, deadline);
		if (r < 0)
			return r;
		if (h.type != TTRPC_TYPE_RESPONSE || h.stream_id != stream)
			continue;
		resp = ctd__response__unpack(NULL, h.length, body);
		if (!resp)
			return -EBADMSG;
		r = 0;
		if (resp->status && resp->status->code != 0) {
			log_warning("containerd refused an event: %s: %s",
				    ttrpc_code_name(resp->status->code), resp->status->message);
			r = -EPROTO;
		}
		ctd__response__free_unpacked(resp, NULL);
		return r;
	}
}

void publish_event(struct shim *s, const char *topic, const char *type_name,
		   const ProtobufCMessage *event)
{
	Ctd__ForwardRequest fwd = CTD__FORWARD_REQUEST__INIT;
	Ctd__Envelope env = CTD__ENVELOPE__INIT;
	Ctd__Timestamp ts = CTD__TIMESTAMP__INIT;
	Ctd__Any any = CTD__ANY__INIT;
	_cleanup_free_ uint8_t *ev_buf = NULL, *buf = NULL;
	size_t len;
	int r;

	ev_buf = malloc(protobuf_c_message_get_packed_size(event) + 1);
	if (!ev_buf)
		return;
	any.type_url = (char *) type_name;
	any.value.data = ev_buf;
	any.value.len = protobuf_c_message_pack(event, ev_buf);
	set_timestamp(&ts, now_ns());
	env.timestamp = &ts;
	env.namespace_ = s->ns;
	env.topic = (char *) topic;
	env.event = &any;
	fwd.envelope = &env;
	len = protobuf_c_message_get_packed_size(&fwd.base);
	buf = malloc(len);
	if (!buf)
		return;
	protobuf_c_message_pack(&fwd.base, buf);

	r = forward_once(s, buf, len);
	if (r < 0 && r != -EPROTO) {
		/* containerd may have restarted: one fresh connection, one retry. */
		pub_disconnect(s);
		r = forward_once(s, buf, len);
		if (r < 0)
			pub_disconnect(s);
	}
	if (r < 0)
		log_warning_errno(r, "cannot publish %s: %m", topic);
	else
		log_debug("published %s", topic);
}
