/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shim's protocol without containerd: `start` in a bundle prints the
 * address and writes <bundle>/address; over that socket the task service
 * answers Connect, Unimplemented for unknown methods and services, NotFound
 * for unknown tasks, InvalidArgument for options it cannot use,
 * ResourceExhausted for a frame over 4 MiB (and keeps serving the
 * connection), pipelined requests in order; Shutdown ends the daemon and
 * removes its socket; `delete` prints a DeleteResponse.
 *   test-shim-protocol SHIM_BINARY      (root: the socket is under /run/containerd/s)
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "task.pb-c.h"
#include "ttrpc.h"

static const char *shim;
static char bundle[] = "/tmp/stoke-shimproto.XXXXXX";
static char sock_path[4096];
static pid_t daemon_pid;

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static void cleanup(void)
{
	if (daemon_pid > 0)
		kill(daemon_pid, SIGKILL);
	if (sock_path[0])
		unlink(sock_path);
	nftw(bundle, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Run the shim with `action` in the bundle; its stdout into `out`. */
static int run_shim(const char *action, char *out, size_t outlen, size_t *ret_len)
{
	int p[2], status;
	size_t len = 0;
	pid_t pid;

	ASSERT_TRUE(pipe2(p, O_CLOEXEC) == 0);
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(p[1], 1);
		if (chdir(bundle) < 0)
			_exit(126);
		unsetenv("TTRPC_ADDRESS");
		execl(shim, shim, "-namespace", "proto", "-address", "/run/stoke-proto-test.sock",
		      "-publish-binary", "/bin/true", "-id", "t1", "-bundle", bundle, action,
		      (char *) NULL);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		ssize_t n = read(p[0], out + len, outlen - 1 - len);
		if (n <= 0)
			break;
		len += n;
	}
	close(p[0]);
	out[len] = 0;
	ASSERT_TRUE(waitpid(pid, &status, 0) == pid);
	*ret_len = len;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int dial(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ASSERT_TRUE(fd >= 0);
	ASSERT_TRUE(strlen(sock_path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	ASSERT_TRUE(connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0);
	return fd;
}

static void send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		ASSERT_TRUE(n > 0);
		p += n;
		len -= n;
	}
}

static void recv_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t n;
		ASSERT_TRUE(poll(&pfd, 1, 10000) == 1);
		n = read(fd, p, len);
		ASSERT_TRUE(n > 0);
		p += n;
		len -= n;
	}
}

static void send_request(int fd, uint32_t stream, const char *service, const char *method,
			 const ProtobufCMessage *m)
{
	uint8_t payload[4096], *frame;
	size_t plen = m ? protobuf_c_message_pack(m, payload) : 0, flen;

	ASSERT_OK(ttrpc_request_frame(stream, service, method, payload, plen, "proto", &frame,
				      &flen));
	send_all(fd, frame, flen);
	free(frame);
}

/* Read one Response; its status code (0 = OK) and payload. */
static int recv_response(int fd, uint32_t stream, uint8_t *payload, size_t *plen, char *msg,
			 size_t msglen)
{
	uint8_t hdr[TTRPC_HEADER_SIZE], body[65536];
	struct ttrpc_header h;
	Ctd__Response *resp;
	int code = 0;

	recv_all(fd, hdr, sizeof(hdr));
	ttrpc_header_decode(hdr, &h);
	ASSERT_EQ(h.type, TTRPC_TYPE_RESPONSE);
	ASSERT_EQ(h.stream_id, stream);
	ASSERT_TRUE(h.length <= sizeof(body));
	recv_all(fd, body, h.length);
	resp = ctd__response__unpack(NULL, h.length, body);
	ASSERT_TRUE(resp);
	if (resp->status) {
		code = resp->status->code;
		if (msg)
			snprintf(msg, msglen, "%s", resp->status->message);
	}
	if (payload) {
		memcpy(payload, resp->payload.data, resp->payload.len);
		*plen = resp->payload.len;
	}
	ctd__response__free_unpacked(resp, NULL);
	return code;
}

int main(int argc, char **argv)
{
	char out[65536], msg[512], address[256];
	uint8_t payload[65536];
	size_t len, plen;
	int fd, rc;

	T_REQUIRE(argc == 2, "usage: test-shim-protocol SHIM");
	T_REQUIRE(geteuid() == 0, "needs root (socket under /run/containerd/s)");
	shim = realpath(argv[1], NULL); /* it runs in the bundle directory */
	ASSERT_TRUE(shim);
	ASSERT_TRUE(mkdtemp(bundle));
	atexit(cleanup);

	/* start: the address on stdout (no newline), the same in <bundle>/address. */
	rc = run_shim("start", out, sizeof(out), &len);
	ASSERT_EQ(rc, 0);
	ASSERT_TRUE(strncmp(out, "unix:///run/containerd/s/", 25) == 0);
	ASSERT_EQ(len, 25 + 64);
	memcpy(sock_path, out + 7, len - 7 + 1);
	snprintf(address, sizeof(address), "%s/address", bundle);
	{
		FILE *f = fopen(address, "r");
		char buf[256] = "";
		ASSERT_TRUE(f);
		ASSERT_TRUE(fgets(buf, sizeof(buf), f) != NULL);
		fclose(f);
		ASSERT_STREQ(buf, out);
	}
	fd = dial();

	printf("# Connect\n");
	{
		Ctd__ConnectRequest req = CTD__CONNECT_REQUEST__INIT;
		Ctd__ConnectResponse *resp;
		req.id = "t1";
		send_request(fd, 1, TTRPC_TASK_SERVICE, "Connect", &req.base);
		ASSERT_EQ(recv_response(fd, 1, payload, &plen, NULL, 0), TTRPC_OK);
		resp = ctd__connect_response__unpack(NULL, plen, payload);
		ASSERT_TRUE(resp);
		ASSERT_TRUE(resp->shim_pid > 0);
		ASSERT_EQ(resp->task_pid, 0);
		daemon_pid = resp->shim_pid;
		ctd__connect_response__free_unpacked(resp, NULL);
	}

	printf("# unknown method and service: Unimplemented\n");
	send_request(fd, 3, TTRPC_TASK_SERVICE, "Frobnicate", NULL);
	ASSERT_EQ(recv_response(fd, 3, NULL, NULL, msg, sizeof(msg)), TTRPC_UNIMPLEMENTED);
	ASSERT_STREQ(msg, "method Frobnicate");
	send_request(fd, 5, "containerd.task.v3.Task", "Connect", NULL);
	ASSERT_EQ(recv_response(fd, 5, NULL, NULL, msg, sizeof(msg)), TTRPC_UNIMPLEMENTED);

	printf("# unknown task: NotFound (State, Kill, Wait, Delete, Pids)\n");
	{
		static const char *const methods[] = {"State", "Kill", "Wait", "Delete", "Pids"};
		Ctd__StateRequest req = CTD__STATE_REQUEST__INIT;
		req.id = "nope";
		for (size_t i = 0; i < 5; i++) {
			/* All five requests start with `string id = 1`. */
			send_request(fd, 7 + 2 * i, TTRPC_TASK_SERVICE, methods[i], &req.base);
			ASSERT_EQ(recv_response(fd, 7 + 2 * i, NULL, NULL, NULL, 0),
				  TTRPC_NOT_FOUND);
		}
	}

	printf("# Create with options it cannot use: InvalidArgument\n");
	{
		Ctd__CreateTaskRequest req = CTD__CREATE_TASK_REQUEST__INIT;
		Ctd__Any opts = CTD__ANY__INIT;
		opts.type_url = "example.com.Unknown";
		req.id = "t1";
		req.bundle = bundle;
		req.options = &opts;
		send_request(fd, 17, TTRPC_TASK_SERVICE, "Create", &req.base);
		ASSERT_EQ(recv_response(fd, 17, NULL, NULL, msg, sizeof(msg)),
			  TTRPC_INVALID_ARGUMENT);
		ASSERT_TRUE(strstr(msg, "example.com.Unknown"));
	}

	printf("# pipelined requests are answered in order\n");
	{
		Ctd__ConnectRequest req = CTD__CONNECT_REQUEST__INIT;
		uint8_t p1[256], *f1, *f2, both[512];
		size_t l1 = protobuf_c_message_pack(&req.base, p1), fl1, fl2;
		req.id = "t1";
		l1 = protobuf_c_message_pack(&req.base, p1);
		ASSERT_OK(ttrpc_request_frame(19, TTRPC_TASK_SERVICE, "Connect", p1, l1, NULL, &f1,
					      &fl1));
		ASSERT_OK(ttrpc_request_frame(21, TTRPC_TASK_SERVICE, "Nothing", NULL, 0, NULL, &f2,
					      &fl2));
		memcpy(both, f1, fl1);
		memcpy(both + fl1, f2, fl2);
		send_all(fd, both, fl1 + fl2);
		ASSERT_EQ(recv_response(fd, 19, NULL, NULL, NULL, 0), TTRPC_OK);
		ASSERT_EQ(recv_response(fd, 21, NULL, NULL, NULL, 0), TTRPC_UNIMPLEMENTED);
		free(f1);
		free(f2);
	}

	printf("# a frame over 4 MiB: ResourceExhausted, and the connection goes on\n");
	{
		struct ttrpc_header h = {
			.length = TTRPC_MAX_DATA + 1, .stream_id = 23, .type = TTRPC_TYPE_REQUEST};
		uint8_t hdr[TTRPC_HEADER_SIZE];
		uint8_t *junk = calloc(1, h.length);
		ASSERT_TRUE(junk);
		ttrpc_header_encode(&h, hdr);
		send_all(fd, hdr, sizeof(hdr));
		send_all(fd, junk, h.length);
		free(junk);
		ASSERT_EQ(recv_response(fd, 23, NULL, NULL, NULL, 0), TTRPC_RESOURCE_EXHAUSTED);
		send_request(fd, 25, TTRPC_TASK_SERVICE, "Frobnicate", NULL);
		ASSERT_EQ(recv_response(fd, 25, NULL, NULL, NULL, 0), TTRPC_UNIMPLEMENTED);
	}

	printf("# Shutdown without tasks: the daemon exits and removes its socket\n");
	{
		Ctd__ShutdownRequest req = CTD__SHUTDOWN_REQUEST__INIT;
		char c;
		req.id = "t1";
		send_request(fd, 27, TTRPC_TASK_SERVICE, "Shutdown", &req.base);
		ASSERT_EQ(recv_response(fd, 27, NULL, NULL, NULL, 0), TTRPC_OK);
		/* The daemon closes the connection when it exits. */
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ASSERT_TRUE(poll(&pfd, 1, 10000) == 1);
		ASSERT_EQ(read(fd, &c, 1), 0);
		close(fd);
		for (int i = 0; i < 200 && kill(daemon_pid, 0) == 0; i++)
			usleep(10000);
		ASSERT_TRUE(kill(daemon_pid, 0) < 0);
		daemon_pid = 0;
		ASSERT_TRUE(access(sock_path, F_OK) < 0);
	}

	printf("# delete: a DeleteResponse on stdout, also without a daemon\n");
	{
		Ctd__DeleteResponse *resp;
		rc = run_shim("delete", out, sizeof(out), &len);
		ASSERT_EQ(rc, 0);
		resp = ctd__delete_response__unpack(NULL, len, (uint8_t *) out);
		ASSERT_TRUE(resp);
		ASSERT_EQ(resp->exit_status, 137);
		ASSERT_TRUE(resp->exited_at && resp->exited_at->seconds > 0);
		ctd__delete_response__free_unpacked(resp, NULL);
	}

	printf("# -info: RuntimeInfo with the runtime's OCI features\n");
	if (getenv("STOKE_SHIM_RUNTIME")) {
		Ctd__RuntimeInfo *info;
		rc = run_shim("-info", out, sizeof(out), &len);
		ASSERT_EQ(rc, 0);
		info = ctd__runtime_info__unpack(NULL, len, (uint8_t *) out);
		ASSERT_TRUE(info && info->version && info->features);
		ASSERT_STREQ(info->name, "io.containerd.stoke.v2");
		ASSERT_STREQ(info->features->type_url,
			     "types.containerd.io/opencontainers/runtime-spec/1/features/Features");
		ASSERT_TRUE(memmem(info->features->value.data, info->features->value.len,
				   "\"ociVersionMin\"", 15));
		ctd__runtime_info__free_unpacked(info, NULL);
	}

	printf("# bad command lines are refused\n");
	rc = run_shim("frobnicate", out, sizeof(out), &len);
	ASSERT_TRUE(rc != 0);
	return T_PASS;
}
