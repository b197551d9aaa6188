/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ttrpc wire framing: a 10-byte big-endian header {u32 length, u32 stream id,
 * u8 type, u8 flags} followed by `length` bytes of protobuf, at most 4 MiB.
 *
 * These functions do no I/O: they encode and decode buffers, so the server,
 * the event publisher and the unit tests share one implementation.
 * Errors: -errno; ret_* written only on success; returned buffers are owned
 * by the caller (free()). Thread-safety: no shared state.
 */
#ifndef STOKE_CTD_TTRPC_H
#define STOKE_CTD_TTRPC_H

#include <stddef.h>
#include <stdint.h>

#include "ttrpc.pb-c.h"

#define TTRPC_HEADER_SIZE   10
#define TTRPC_MAX_DATA	    (4u << 20)
#define TTRPC_TYPE_REQUEST  1
#define TTRPC_TYPE_RESPONSE 2
#define TTRPC_TYPE_DATA	    3

/* Task service and events service names on the wire. */
#define TTRPC_TASK_SERVICE   "containerd.task.v2.Task"
#define TTRPC_EVENTS_SERVICE "containerd.services.events.ttrpc.v1.Events"
#define TTRPC_NAMESPACE_KEY  "containerd-namespace-ttrpc"

/* gRPC status codes (what containerd maps to its error kinds). */
enum ttrpc_code {
	TTRPC_OK = 0,
	TTRPC_CANCELED = 1,
	TTRPC_UNKNOWN = 2,
	TTRPC_INVALID_ARGUMENT = 3,
	TTRPC_DEADLINE_EXCEEDED = 4,
	TTRPC_NOT_FOUND = 5,
	TTRPC_ALREADY_EXISTS = 6,
	TTRPC_PERMISSION_DENIED = 7,
	TTRPC_RESOURCE_EXHAUSTED = 8,
	TTRPC_FAILED_PRECONDITION = 9,
	TTRPC_ABORTED = 10,
	TTRPC_OUT_OF_RANGE = 11,
	TTRPC_UNIMPLEMENTED = 12,
	TTRPC_INTERNAL = 13,
	TTRPC_UNAVAILABLE = 14,
};

struct ttrpc_header {
	uint32_t length;
	uint32_t stream_id;
	uint8_t type;
	uint8_t flags;
};

/*! ttrpc_header_encode() : write `h` as 10 big-endian bytes into `out`. */
void ttrpc_header_encode(const struct ttrpc_header *h, uint8_t out[TTRPC_HEADER_SIZE]);

/*! ttrpc_header_decode() : read a header from 10 bytes. Never fails; callers
 *  check `length` against TTRPC_MAX_DATA themselves (an oversized frame is
 *  answered, not fatal). */
void ttrpc_header_decode(const uint8_t in[TTRPC_HEADER_SIZE], struct ttrpc_header *ret);

/*! ttrpc_frame() :
 *  A whole frame (header + `len` bytes of `data`) in one new buffer.
 * @return : 0, -EMSGSIZE if `len` exceeds TTRPC_MAX_DATA, or -ENOMEM. */
int ttrpc_frame(uint8_t type, uint32_t stream_id, const void *data, size_t len, uint8_t **ret_buf,
		size_t *ret_len);

/*! ttrpc_response_frame() :
 *  A Response frame for `stream_id`: on `code` TTRPC_OK the Response carries
 *  `payload` (may be empty: a google.protobuf.Empty result is a zero-length
 *  Response); otherwise a Status {code, message} and no payload.
 * @return : 0, -EMSGSIZE, -ENOMEM. */
int ttrpc_response_frame(uint32_t stream_id, enum ttrpc_code code, const char *message,
			 const void *payload, size_t payload_len, uint8_t **ret_buf,
			 size_t *ret_len);

/*! ttrpc_request_frame() :
 *  A unary Request frame calling `service`/`method` with `payload`, carrying
 *  the namespace metadata key when `namespace_` is non-NULL.
 * @return : 0, -EMSGSIZE, -ENOMEM. */
int ttrpc_request_frame(uint32_t stream_id, const char *service, const char *method,
			const void *payload, size_t payload_len, const char *namespace_,
			uint8_t **ret_buf, size_t *ret_len);

/*! ttrpc_code_name() : "NotFound" etc., for logs. Static string. */
const char *ttrpc_code_name(enum ttrpc_code code);

#endif
