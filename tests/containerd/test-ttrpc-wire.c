/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shim's wire layer against byte vectors from the containerd shim v2
 * reference (§12): ttrpc frames of requests, responses (payload, error,
 * empty), an Events.Forward of TaskExit and the `delete` subcommand's
 * DeleteResponse, both encoded and decoded; plus SHA-256 (socket names).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "events.pb-c.h"
#include "harness.h"
#include "sha256.h"
#include "task.pb-c.h"
#include "ttrpc.h"

static size_t unhex(const char *hex, uint8_t *out)
{
	size_t n = 0;

	for (const char *p = hex; p[0] && p[1];) {
		if (p[0] == ' ') {
			p++;
			continue;
		}
		unsigned v;
		sscanf(p, "%2x", &v);
		out[n++] = v;
		p += 2;
	}
	return n;
}

static void assert_bytes(const uint8_t *got, size_t got_len, const char *want_hex)
{
	uint8_t want[512];
	size_t n = unhex(want_hex, want);

	ASSERT_EQ(got_len, n);
	for (size_t i = 0; i < n; i++)
		if (got[i] != want[i])
			T_FAILF("byte %zu: 0x%02x != 0x%02x", i, got[i], want[i]);
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
	uint8_t *buf = malloc(protobuf_c_message_get_packed_size(m) + 1);

	ASSERT_TRUE(buf);
	*len = protobuf_c_message_pack(m, buf);
	return buf;
}

static const char connect_request_hex[] =
	"0000004f0000000101000a17636f6e7461696e6572642e7461736b2e76322e54"
	"61736b1207436f6e6e6563741a040a0263312a250a1a636f6e7461696e657264"
	"2d6e616d6573706163652d7474727063120764656661756c74";

static void test_request_frame(void)
{
	Ctd__ConnectRequest req = CTD__CONNECT_REQUEST__INIT;
	uint8_t *payload, *frame;
	size_t plen, flen;

	req.id = "c1";
	payload = pack(&req.base, &plen);
	ASSERT_OK(ttrpc_request_frame(1, TTRPC_TASK_SERVICE, "Connect", payload, plen, "default",
				      &frame, &flen));
	assert_bytes(frame, flen, connect_request_hex);
	free(payload);
	free(frame);
}

static void test_request_decode(void)
{
	uint8_t buf[256];
	size_t n = unhex(connect_request_hex, buf);
	struct ttrpc_header h;
	Ctd__Request *req;
	Ctd__ConnectRequest *cr;

	ttrpc_header_decode(buf, &h);
	ASSERT_EQ(h.length, 79);
	ASSERT_EQ(h.stream_id, 1);
	ASSERT_EQ(h.type, TTRPC_TYPE_REQUEST);
	ASSERT_EQ(h.flags, 0);
	ASSERT_EQ(n, TTRPC_HEADER_SIZE + h.length);
	req = ctd__request__unpack(NULL, h.length, buf + TTRPC_HEADER_SIZE);
	ASSERT_TRUE(req);
	ASSERT_STREQ(req->service, "containerd.task.v2.Task");
	ASSERT_STREQ(req->method, "Connect");
	ASSERT_EQ(req->n_metadata, 1);
	ASSERT_STREQ(req->metadata[0]->key, "containerd-namespace-ttrpc");
	ASSERT_STREQ(req->metadata[0]->value, "default");
	cr = ctd__connect_request__unpack(NULL, req->payload.len, req->payload.data);
	ASSERT_TRUE(cr);
	ASSERT_STREQ(cr->id, "c1");
	ctd__connect_request__free_unpacked(cr, NULL);
	ctd__request__free_unpacked(req, NULL);
}

static void test_response_payload(void)
{
	Ctd__ConnectResponse resp = CTD__CONNECT_RESPONSE__INIT;
	uint8_t *payload, *frame;
	size_t plen, flen;

	resp.shim_pid = 1234;
	resp.task_pid = 5678;
	payload = pack(&resp.base, &plen);
	ASSERT_OK(ttrpc_response_frame(1, TTRPC_OK, NULL, payload, plen, &frame, &flen));
	assert_bytes(frame, flen, "00000008 00000001 02 00 12 06 08d209 10ae2c");
	free(payload);
	free(frame);
}

static void test_response_error(void)
{
	uint8_t *frame;
	size_t flen;
	Ctd__Response *resp;

	ASSERT_OK(ttrpc_response_frame(3, TTRPC_NOT_FOUND, "container not created: not found", NULL,
				       0, &frame, &flen));
	assert_bytes(frame, flen,
		     "00000026 00000003 02 00 0a24 0805 1220"
		     "636f6e7461696e6572206e6f7420637265617465643a206e6f7420666f756e64");
	resp = ctd__response__unpack(NULL, flen - TTRPC_HEADER_SIZE, frame + TTRPC_HEADER_SIZE);
	ASSERT_TRUE(resp && resp->status);
	ASSERT_EQ(resp->status->code, TTRPC_NOT_FOUND);
	ASSERT_EQ(resp->payload.len, 0);
	ctd__response__free_unpacked(resp, NULL);
	free(frame);
}

static void test_response_empty(void)
{
	uint8_t *frame;
	size_t flen;

	ASSERT_OK(ttrpc_response_frame(5, TTRPC_OK, NULL, NULL, 0, &frame, &flen));
	assert_bytes(frame, flen, "00000000 00000005 02 00");
	free(frame);
}

static void test_forward_task_exit(void)
{
	Ctd__TaskExit ev = CTD__TASK_EXIT__INIT;
	Ctd__Timestamp ts = CTD__TIMESTAMP__INIT;
	Ctd__Any any = CTD__ANY__INIT;
	Ctd__Envelope env = CTD__ENVELOPE__INIT;
	Ctd__ForwardRequest fwd = CTD__FORWARD_REQUEST__INIT;
	uint8_t *evbuf, *fbuf, *frame;
	size_t evlen, flen, framelen;
	Ctd__ForwardRequest *back;
	Ctd__TaskExit *exit_back;

	ts.seconds = 1700000000;
	ev.container_id = "c1";
	ev.id = "c1";
	ev.pid = 5678;
	ev.exited_at = &ts;
	evbuf = pack(&ev.base, &evlen);
	any.type_url = "containerd.events.TaskExit";
	any.value.data = evbuf;
	any.value.len = evlen;
	env.timestamp = &ts;
	env.namespace_ = "default";
	env.topic = "/tasks/exit";
	env.event = &any;
	fwd.envelope = &env;
	fbuf = pack(&fwd.base, &flen);
	ASSERT_OK(ttrpc_request_frame(1, TTRPC_EVENTS_SERVICE, "Forward", fbuf, flen, "default",
				      &frame, &framelen));
	assert_bytes(frame, framelen,
		     "000000b10000000101000a2a636f6e7461696e6572642e73657276696365732e"
		     "6576656e74732e74747270632e76312e4576656e74731207466f72776172641a"
		     "530a510a060880e2cfaa06120764656661756c741a0b2f7461736b732f657869"
		     "7422310a1a636f6e7461696e6572642e6576656e74732e5461736b4578697412"
		     "130a0263311202633118ae2c2a060880e2cfaa062a250a1a636f6e7461696e65"
		     "72642d6e616d6573706163652d7474727063120764656661756c74");

	back = ctd__forward_request__unpack(NULL, flen, fbuf);
	ASSERT_TRUE(back && back->envelope && back->envelope->event);
	ASSERT_STREQ(back->envelope->topic, "/tasks/exit");
	exit_back = ctd__task_exit__unpack(NULL, back->envelope->event->value.len,
					   back->envelope->event->value.data);
	ASSERT_TRUE(exit_back);
	ASSERT_EQ(exit_back->pid, 5678);
	ASSERT_EQ(exit_back->exited_at->seconds, 1700000000);
	ctd__task_exit__free_unpacked(exit_back, NULL);
	ctd__forward_request__free_unpacked(back, NULL);
	free(evbuf);
	free(fbuf);
	free(frame);
}

static void test_delete_response(void)
{
	Ctd__DeleteResponse resp = CTD__DELETE_RESPONSE__INIT;
	Ctd__Timestamp ts = CTD__TIMESTAMP__INIT;
	uint8_t *buf;
	size_t len;

	ts.seconds = 1700000000;
	resp.pid = 5678;
	resp.exit_status = 137;
	resp.exited_at = &ts;
	buf = pack(&resp.base, &len);
	assert_bytes(buf, len, "08ae2c 108901 1a06 0880e2cfaa06");
	free(buf);
}

static void test_header_limits(void)
{
	struct ttrpc_header h = {.length = 0x00abcdef,
				 .stream_id = 0xfffffffd,
				 .type = 3,
				 .flags = 5},
			    back;
	uint8_t raw[TTRPC_HEADER_SIZE], *frame;
	size_t len;

	ttrpc_header_encode(&h, raw);
	assert_bytes(raw, sizeof(raw), "00abcdef fffffffd 03 05");
	ttrpc_header_decode(raw, &back);
	ASSERT_EQ(back.length, h.length);
	ASSERT_EQ(back.stream_id, h.stream_id);
	ASSERT_EQ(back.type, 3);
	ASSERT_EQ(back.flags, 5);
	ASSERT_ERR(ttrpc_frame(TTRPC_TYPE_RESPONSE, 1, raw, TTRPC_MAX_DATA + 1, &frame, &len),
		   -EMSGSIZE);
}

static void test_sha256(void)
{
	char hex[65];
	char long_input[1000];

	ctd_sha256_hex("", 0, hex);
	ASSERT_STREQ(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	ctd_sha256_hex("abc", 3, hex);
	ASSERT_STREQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	/* 56 bytes: the padding spills into a second block. */
	ctd_sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
	ASSERT_STREQ(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	memset(long_input, 'a', sizeof(long_input));
	ctd_sha256_hex(long_input, sizeof(long_input), hex);
	ASSERT_STREQ(hex, "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
}

int main(void)
{
	RUN_TEST(test_request_frame);
	RUN_TEST(test_request_decode);
	RUN_TEST(test_response_payload);
	RUN_TEST(test_response_error);
	RUN_TEST(test_response_empty);
	RUN_TEST(test_forward_task_exit);
	RUN_TEST(test_delete_response);
	RUN_TEST(test_header_limits);
	RUN_TEST(test_sha256);
	return T_PASS;
}
