/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ttrpc.h"

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

void ttrpc_header_encode(const struct ttrpc_header *h, uint8_t out[TTRPC_HEADER_SIZE])
{
	put_be32(out, h->length);
	put_be32(out + 4, h->stream_id);
	out[8] = h->type;
	out[9] = h->flags;
}

void ttrpc_header_decode(const uint8_t in[TTRPC_HEADER_SIZE], struct ttrpc_header *ret)
{
	ret->length = get_be32(in);
	ret->stream_id = get_be32(in + 4);
	ret->type = in[8];
	ret->flags = in[9];
}

int ttrpc_frame(uint8_t type, uint32_t stream_id, const void *data, size_t len, uint8_t **ret_buf,
		size_t *ret_len)
{
	struct ttrpc_header h = {.length = len, .stream_id = stream_id, .type = type};
	uint8_t *buf;

	if (len > TTRPC_MAX_DATA)
		return -EMSGSIZE;
	buf = malloc(TTRPC_HEADER_SIZE + len);
	if (!buf)
		return -ENOMEM;
	ttrpc_header_encode(&h, buf);
	if (len)
		memcpy(buf + TTRPC_HEADER_SIZE, data, len);
	*ret_buf = buf;
	*ret_len = TTRPC_HEADER_SIZE + len;
	return 0;
}

/* Pack a message straight behind a frame header of the right length. */
static int frame_message(uint8_t type, uint32_t stream_id, const ProtobufCMessage *m,
			 uint8_t **ret_buf, size_t *ret_len)
{
	struct ttrpc_header h = {.stream_id = stream_id, .type = type};
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf;

	if (len > TTRPC_MAX_DATA)
		return -EMSGSIZE;
	buf = malloc(TTRPC_HEADER_SIZE + len);
	if (!buf)
		return -ENOMEM;
	h.length = len;
	ttrpc_header_encode(&h, buf);
	protobuf_c_message_pack(m, buf + TTRPC_HEADER_SIZE);
	*ret_buf = buf;
	*ret_len = TTRPC_HEADER_SIZE + len;
	return 0;
}

int ttrpc_response_frame(uint32_t stream_id, enum ttrpc_code code, const char *message,
			 const void *payload, size_t payload_len, uint8_t **ret_buf,
			 size_t *ret_len)
{
	Ctd__Response resp = CTD__RESPONSE__INIT;
	Ctd__RpcStatus status = CTD__RPC_STATUS__INIT;

	if (code != TTRPC_OK) {
		status.code = code;
		status.message = (char *) (message ? message : ttrpc_code_name(code));
		resp.status = &status;
	} else {
		resp.payload.data = (uint8_t *) payload;
		resp.payload.len = payload_len;
	}
	return frame_message(TTRPC_TYPE_RESPONSE, stream_id, &resp.base, ret_buf, ret_len);
}

int ttrpc_request_frame(uint32_t stream_id, const char *service, const char *method,
			const void *payload, size_t payload_len, const char *namespace_,
			uint8_t **ret_buf, size_t *ret_len)
{
	Ctd__Request req = CTD__REQUEST__INIT;
	Ctd__KeyValue kv = CTD__KEY_VALUE__INIT;
	Ctd__KeyValue *md[1] = {&kv};

	req.service = (char *) service;
	req.method = (char *) method;
	req.payload.data = (uint8_t *) payload;
	req.payload.len = payload_len;
	if (namespace_) {
		kv.key = (char *) TTRPC_NAMESPACE_KEY;
		kv.value = (char *) namespace_;
		req.metadata = md;
		req.n_metadata = 1;
	}
	return frame_message(TTRPC_TYPE_REQUEST, stream_id, &req.base, ret_buf, ret_len);
}

const char *ttrpc_code_name(enum ttrpc_code code)
{
	static const char *const names[] = {
		[TTRPC_OK] = "OK",
		[TTRPC_CANCELED] = "Canceled",
		[TTRPC_UNKNOWN] = "Unknown",
		[TTRPC_INVALID_ARGUMENT] = "InvalidArgument",
		[TTRPC_DEADLINE_EXCEEDED] = "DeadlineExceeded",
		[TTRPC_NOT_FOUND] = "NotFound",
		[TTRPC_ALREADY_EXISTS] = "AlreadyExists",
		[TTRPC_PERMISSION_DENIED] = "PermissionDenied",
		[TTRPC_RESOURCE_EXHAUSTED] = "ResourceExhausted",
		[TTRPC_FAILED_PRECONDITION] = "FailedPrecondition",
		[TTRPC_ABORTED] = "Aborted",
		[TTRPC_OUT_OF_RANGE] = "OutOfRange",
		[TTRPC_UNIMPLEMENTED] = "Unimplemented",
		[TTRPC_INTERNAL] = "Internal",
		[TTRPC_UNAVAILABLE] = "Unavailable",
	};

	if ((unsigned) code < sizeof(names) / sizeof(names[0]) && names[code])
		return names[code];
	return "Unknown";
}
