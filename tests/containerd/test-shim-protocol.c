/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shim's protocol without containerd: `start` in a bundle prints the
 * address and writes <bundle>/address; over that socket the task service
 * answers Connect, Unimplemented for unknown methods and services, NotFound
 * for unknown tasks, InvalidArgument for options it cannot use,
 * ResourceExhausted for a frame over 4 MiB (and keeps serving the
 * connection), pipelined requests in order; Shutdown ends the daemon and
 * removes its socket; `delete` prints a DeleteResponse. With
 * $STOKE_SHIM_RUNTIME, a busybox container also goes through Create, Start,
 * Pids, Update, Stats, Pause, Resume, Exec, Kill and Delete while Waits stay
 * parked, and a stand-in event service checks the events and their order.
 *   test-shim-protocol SHIM_BINARY MAKE_BUSYBOX_BUNDLE   (root: sockets under /run/containerd/s)
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "events.pb-c.h"
#include "harness.h"
#include "metrics.pb-c.h"
#include "task.pb-c.h"
#include "ttrpc.h"

static const char *shim, *make_bundle, *runtime;
static char bundle[100]; /* $TMPDIR/stoke-shimproto.XXXXXX (or /tmp/...) */
static char sock_path[4096], events_sock[256], events_log[256], cbundle[256], slow_runtime[256];
static pid_t daemon_pid, sink_pid;

#define RUNTIME_ROOT "/run/containerd/stoke/proto"

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static void cleanup(void)
{
	if (runtime && cbundle[0]) {
		char cmd[1024];
		snprintf(cmd, sizeof(cmd),
			 "%s --root " RUNTIME_ROOT " delete --force c1 >/dev/null 2>&1; "
			 "umount -R %s/rootfs 2>/dev/null; rmdir " RUNTIME_ROOT " 2>/dev/null; "
			 "find /sys/fs/cgroup -maxdepth 3 -type d -name stoke-proto-test "
			 "-exec rmdir {} + 2>/dev/null",
			 runtime, cbundle);
		if (system(cmd) < 0)
			perror("system");
	}
	if (daemon_pid > 0)
		kill(daemon_pid, SIGKILL);
	if (sink_pid > 0)
		kill(sink_pid, SIGKILL);
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
		setenv("TTRPC_ADDRESS", events_sock, 1);
		if (slow_runtime[0])
			setenv("STOKE_SHIM_RUNTIME", slow_runtime, 1);
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

/* A stand-in for containerd's event service: answers every Forward with
 * Empty and appends the envelope's topic to events_log. Runs in a child. */
static void event_sink(int listen_fd)
{
	FILE *log = fopen(events_log, "a");

	if (!log)
		_exit(1);
	for (;;) {
		int fd = accept(listen_fd, NULL, NULL);
		uint8_t hdr[TTRPC_HEADER_SIZE], *body;
		struct ttrpc_header h;

		if (fd < 0)
			continue;
		while (read(fd, hdr, sizeof(hdr)) == sizeof(hdr)) {
			Ctd__Request *req;
			ssize_t got = 0;

			ttrpc_header_decode(hdr, &h);
			body = malloc(h.length + 1);
			while (body && got < (ssize_t) h.length) {
				ssize_t n = read(fd, body + got, h.length - got);
				if (n <= 0)
					break;
				got += n;
			}
			req = body ? ctd__request__unpack(NULL, h.length, body) : NULL;
			if (req && strcmp(req->method, "Forward") == 0) {
				Ctd__ForwardRequest *f = ctd__forward_request__unpack(
					NULL, req->payload.len, req->payload.data);
				if (f && f->envelope) {
					fprintf(log, "%s\n", f->envelope->topic);
					fflush(log);
				}
				if (f)
					ctd__forward_request__free_unpacked(f, NULL);
			}
			if (req)
				ctd__request__free_unpacked(req, NULL);
			free(body);
			{
				uint8_t *frame;
				size_t flen;
				if (ttrpc_response_frame(h.stream_id, TTRPC_OK, NULL, NULL, 0,
							 &frame, &flen) == 0) {
					if (write(fd, frame, flen) < 0)
						break;
					free(frame);
				}
			}
		}
		close(fd);
	}
}

static void start_event_sink(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(events_sock, sizeof(events_sock), "%s/events.sock", bundle);
	snprintf(events_log, sizeof(events_log), "%s/events.log", bundle);
	ASSERT_TRUE(fd >= 0);
	memcpy(sa.sun_path, events_sock, strlen(events_sock) + 1);
	ASSERT_TRUE(bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0);
	ASSERT_TRUE(listen(fd, 4) == 0);
	sink_pid = fork();
	ASSERT_TRUE(sink_pid >= 0);
	if (sink_pid == 0)
		event_sink(fd);
	close(fd);
}

/* Responses may come in any order: read until `stream`'s, keeping the others. */
struct pending {
	uint32_t stream;
	int code;
	uint8_t payload[4096];
	size_t len;
	bool used;
};
static struct pending early[16];

static int recv_stream(int fd, uint32_t stream, uint8_t *payload, size_t *plen)
{
	for (;;) {
		uint8_t hdr[TTRPC_HEADER_SIZE], body[8192];
		struct ttrpc_header h;
		Ctd__Response *resp;
		struct pending *slot = NULL;

		for (size_t i = 0; i < 16; i++)
			if (early[i].used && early[i].stream == stream) {
				early[i].used = false;
				if (payload) {
					memcpy(payload, early[i].payload, early[i].len);
					*plen = early[i].len;
				}
				return early[i].code;
			}
		recv_all(fd, hdr, sizeof(hdr));
		ttrpc_header_decode(hdr, &h);
		ASSERT_TRUE(h.length <= sizeof(body));
		recv_all(fd, body, h.length);
		resp = ctd__response__unpack(NULL, h.length, body);
		ASSERT_TRUE(resp && resp->payload.len <= sizeof(early[0].payload));
		for (size_t i = 0; i < 16 && !slot; i++)
			if (!early[i].used)
				slot = &early[i];
		ASSERT_TRUE(slot);
		*slot = (struct pending){.stream = h.stream_id,
					 .used = true,
					 .code = resp->status ? resp->status->code : 0,
					 .len = resp->payload.len};
		memcpy(slot->payload, resp->payload.data, resp->payload.len);
		ctd__response__free_unpacked(resp, NULL);
	}
}

static uint32_t next_stream = 101;

/* The next response to arrive: its stream id, and its code in *ret_code. */
static uint32_t recv_next(int fd, int *ret_code)
{
	uint8_t hdr[TTRPC_HEADER_SIZE], body[8192];
	struct ttrpc_header h;
	Ctd__Response *resp;

	recv_all(fd, hdr, sizeof(hdr));
	ttrpc_header_decode(hdr, &h);
	ASSERT_TRUE(h.length <= sizeof(body));
	recv_all(fd, body, h.length);
	resp = ctd__response__unpack(NULL, h.length, body);
	ASSERT_TRUE(resp);
	*ret_code = resp->status ? resp->status->code : 0;
	ctd__response__free_unpacked(resp, NULL);
	return h.stream_id;
}

/* One call: send, then wait for its own answer. */
static int call(int fd, const char *method, const ProtobufCMessage *m, uint8_t *payload,
		size_t *plen)
{
	uint32_t stream = next_stream;

	next_stream += 2;
	send_request(fd, stream, TTRPC_TASK_SERVICE, method, m);
	return recv_stream(fd, stream, payload, plen);
}

static Ctd__TaskStatus state_of(int fd, const char *exec_id)
{
	Ctd__StateRequest req = CTD__STATE_REQUEST__INIT;
	Ctd__StateResponse *resp;
	uint8_t payload[4096];
	size_t plen;
	Ctd__TaskStatus st;

	req.id = "c1";
	req.exec_id = (char *) exec_id;
	ASSERT_EQ(call(fd, "State", &req.base, payload, &plen), TTRPC_OK);
	resp = ctd__state_response__unpack(NULL, plen, payload);
	ASSERT_TRUE(resp);
	st = resp->status;
	ctd__state_response__free_unpacked(resp, NULL);
	return st;
}

static uint32_t wait_answer(int fd, uint32_t stream)
{
	Ctd__WaitResponse *resp;
	uint8_t payload[4096];
	size_t plen;
	uint32_t st;

	ASSERT_EQ(recv_stream(fd, stream, payload, &plen), TTRPC_OK);
	resp = ctd__wait_response__unpack(NULL, plen, payload);
	ASSERT_TRUE(resp && resp->exited_at);
	st = resp->exit_status;
	ctd__wait_response__free_unpacked(resp, NULL);
	return st;
}

/* The memory limit in a Stats answer, v1 or v2 metrics. */
static uint64_t stats_memory_limit(int fd)
{
	Ctd__StatsRequest req = CTD__STATS_REQUEST__INIT;
	Ctd__StatsResponse *resp;
	uint8_t payload[4096];
	size_t plen;
	uint64_t limit = 0;

	req.id = "c1";
	ASSERT_EQ(call(fd, "Stats", &req.base, payload, &plen), TTRPC_OK);
	resp = ctd__stats_response__unpack(NULL, plen, payload);
	ASSERT_TRUE(resp && resp->stats);
	if (strcmp(resp->stats->type_url, "io.containerd.cgroups.v1.Metrics") == 0) {
		Ctd__V1Metrics *m = ctd__v1_metrics__unpack(NULL, resp->stats->value.len,
							    resp->stats->value.data);
		ASSERT_TRUE(m && m->memory && m->memory->usage);
		limit = m->memory->usage->limit;
		ctd__v1_metrics__free_unpacked(m, NULL);
	} else {
		Ctd__V2Metrics *m = ctd__v2_metrics__unpack(NULL, resp->stats->value.len,
							    resp->stats->value.data);
		ASSERT_STREQ(resp->stats->type_url, "io.containerd.cgroups.v2.Metrics");
		ASSERT_TRUE(m && m->memory);
		limit = m->memory->usage_limit;
		ctd__v2_metrics__free_unpacked(m, NULL);
	}
	ctd__stats_response__free_unpacked(resp, NULL);
	return limit;
}

/* A container through every task RPC, Waits parked while other calls go on. */
static void container_lifecycle(int fd)
{
	char cmd[1024], events[1024] = "";
	uint8_t payload[4096];
	size_t plen;
	uint32_t wait_init, wait_exec;

	snprintf(cbundle, sizeof(cbundle), "%s/c1", bundle);
	snprintf(cmd, sizeof(cmd),
		 "%s %s sleep 4247 >/dev/null && /usr/bin/python3 -c \"import json,sys; "
		 "p=sys.argv[1]; c=json.load(open(p)); "
		 "c['linux']['cgroupsPath']='/stoke-proto-test/c1'; json.dump(c, open(p,'w'))\" "
		 "%s/config.json",
		 make_bundle, cbundle, cbundle);
	ASSERT_EQ(system(cmd), 0);

	printf("# Create, then a parked Wait does not hold up State\n");
	{
		Ctd__CreateTaskRequest req = CTD__CREATE_TASK_REQUEST__INIT;
		Ctd__CreateTaskResponse *resp;
		req.id = "c1";
		req.bundle = cbundle;
		ASSERT_EQ(call(fd, "Create", &req.base, payload, &plen), TTRPC_OK);
		resp = ctd__create_task_response__unpack(NULL, plen, payload);
		ASSERT_TRUE(resp && resp->pid > 0);
		ctd__create_task_response__free_unpacked(resp, NULL);
	}
	{
		Ctd__WaitRequest req = CTD__WAIT_REQUEST__INIT;
		req.id = "c1";
		wait_init = next_stream;
		next_stream += 2;
		send_request(fd, wait_init, TTRPC_TASK_SERVICE, "Wait", &req.base);
	}
	ASSERT_EQ(state_of(fd, ""), CTD__TASK_STATUS__CREATED);

	printf("# while Start waits for the (slow) runtime, State on the same connection is "
	       "answered and Pids waits its turn\n");
	{
		Ctd__StartRequest req = CTD__START_REQUEST__INIT;
		Ctd__StateRequest st = CTD__STATE_REQUEST__INIT;
		Ctd__PidsRequest pr = CTD__PIDS_REQUEST__INIT;
		uint32_t start = next_stream, state = start + 2, pids = start + 4;
		int code;

		next_stream += 6;
		req.id = st.id = pr.id = "c1";
		send_request(fd, start, TTRPC_TASK_SERVICE, "Start", &req.base);
		send_request(fd, state, TTRPC_TASK_SERVICE, "State", &st.base);
		send_request(fd, pids, TTRPC_TASK_SERVICE, "Pids", &pr.base);
		ASSERT_EQ(recv_next(fd, &code), state);
		ASSERT_EQ(code, TTRPC_OK);
		ASSERT_EQ(recv_next(fd, &code), start);
		ASSERT_EQ(code, TTRPC_OK);
		ASSERT_EQ(recv_next(fd, &code), pids);
		ASSERT_EQ(code, TTRPC_OK);
	}
	ASSERT_EQ(state_of(fd, ""), CTD__TASK_STATUS__RUNNING);

	printf("# Pids, Update, Stats\n");
	{
		Ctd__PidsRequest req = CTD__PIDS_REQUEST__INIT;
		Ctd__PidsResponse *resp;
		req.id = "c1";
		ASSERT_EQ(call(fd, "Pids", &req.base, payload, &plen), TTRPC_OK);
		resp = ctd__pids_response__unpack(NULL, plen, payload);
		ASSERT_TRUE(resp && resp->n_processes >= 1);
		ctd__pids_response__free_unpacked(resp, NULL);
	}
	{
		static const char res[] = "{\"memory\":{\"limit\":67108864}}";
		Ctd__UpdateTaskRequest req = CTD__UPDATE_TASK_REQUEST__INIT;
		Ctd__Any any = CTD__ANY__INIT;
		any.type_url = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";
		any.value.data = (uint8_t *) res;
		any.value.len = strlen(res);
		req.id = "c1";
		req.resources = &any;
		ASSERT_EQ(call(fd, "Update", &req.base, NULL, NULL), TTRPC_OK);
	}
	ASSERT_EQ(stats_memory_limit(fd), 67108864);

	printf("# Pause, Resume\n");
	{
		Ctd__PauseRequest req = CTD__PAUSE_REQUEST__INIT;
		req.id = "c1";
		ASSERT_EQ(call(fd, "Pause", &req.base, NULL, NULL), TTRPC_OK);
		ASSERT_EQ(state_of(fd, ""), CTD__TASK_STATUS__PAUSED);
		ASSERT_EQ(call(fd, "Pause", &req.base, NULL, NULL), TTRPC_FAILED_PRECONDITION);
		ASSERT_EQ(call(fd, "Resume", &req.base, NULL, NULL), TTRPC_OK);
		ASSERT_EQ(state_of(fd, ""), CTD__TASK_STATUS__RUNNING);
	}

	if (system("criu check >/dev/null 2>&1") == 0) {
		char dir[300], inv[320];
		Ctd__CheckpointTaskRequest req = CTD__CHECKPOINT_TASK_REQUEST__INIT;

		printf("# Checkpoint (leave running): CRIU images in the given path\n");
		snprintf(dir, sizeof(dir), "%s/checkpoint", bundle);
		snprintf(inv, sizeof(inv), "%s/inventory.img", dir);
		req.id = "c1";
		req.path = dir;
		ASSERT_EQ(call(fd, "Checkpoint", &req.base, NULL, NULL), TTRPC_OK);
		ASSERT_TRUE(access(inv, F_OK) == 0);
		ASSERT_EQ(state_of(fd, ""), CTD__TASK_STATUS__RUNNING);
	}

	printf("# Exec: added, started, its exit status through a parked Wait\n");
	{
		static const char spec[] =
			"{\"args\":[\"sh\",\"-c\",\"exit 3\"],\"cwd\":\"/\","
			"\"env\":[\"PATH=/bin\"],\"user\":{\"uid\":0,\"gid\":0}}";
		Ctd__ExecProcessRequest req = CTD__EXEC_PROCESS_REQUEST__INIT;
		Ctd__WaitRequest wreq = CTD__WAIT_REQUEST__INIT;
		Ctd__StartRequest sreq = CTD__START_REQUEST__INIT;
		Ctd__DeleteRequest dreq = CTD__DELETE_REQUEST__INIT;
		Ctd__DeleteResponse *dresp;
		Ctd__Any any = CTD__ANY__INIT;
		any.type_url = "types.containerd.io/opencontainers/runtime-spec/1/Process";
		any.value.data = (uint8_t *) spec;
		any.value.len = strlen(spec);
		req.id = "c1";
		req.exec_id = "e1";
		req.spec = &any;
		ASSERT_EQ(call(fd, "Exec", &req.base, NULL, NULL), TTRPC_OK);
		ASSERT_EQ(call(fd, "Exec", &req.base, NULL, NULL), TTRPC_ALREADY_EXISTS);
		ASSERT_EQ(state_of(fd, "e1"), CTD__TASK_STATUS__CREATED);
		wreq.id = "c1";
		wreq.exec_id = "e1";
		wait_exec = next_stream;
		next_stream += 2;
		send_request(fd, wait_exec, TTRPC_TASK_SERVICE, "Wait", &wreq.base);
		sreq.id = "c1";
		sreq.exec_id = "e1";
		ASSERT_EQ(call(fd, "Start", &sreq.base, NULL, NULL), TTRPC_OK);
		ASSERT_EQ(wait_answer(fd, wait_exec), 3);
		dreq.id = "c1";
		dreq.exec_id = "e1";
		ASSERT_EQ(call(fd, "Delete", &dreq.base, payload, &plen), TTRPC_OK);
		dresp = ctd__delete_response__unpack(NULL, plen, payload);
		ASSERT_TRUE(dresp && dresp->exit_status == 3);
		ctd__delete_response__free_unpacked(dresp, NULL);
		ASSERT_EQ(call(fd, "Delete", &dreq.base, NULL, NULL), TTRPC_NOT_FOUND);
	}

	printf("# Kill: the init's Wait answers 137; a second Kill is NotFound\n");
	{
		Ctd__KillRequest req = CTD__KILL_REQUEST__INIT;
		req.id = "c1";
		req.signal = SIGKILL;
		ASSERT_EQ(call(fd, "Kill", &req.base, NULL, NULL), TTRPC_OK);
		ASSERT_EQ(wait_answer(fd, wait_init), 137);
		ASSERT_EQ(call(fd, "Kill", &req.base, NULL, NULL), TTRPC_NOT_FOUND);
		ASSERT_EQ(state_of(fd, ""), CTD__TASK_STATUS__STOPPED);
	}

	printf("# Delete, then the task is gone\n");
	{
		Ctd__DeleteRequest req = CTD__DELETE_REQUEST__INIT;
		Ctd__StateRequest sreq = CTD__STATE_REQUEST__INIT;
		Ctd__DeleteResponse *resp;
		req.id = "c1";
		ASSERT_EQ(call(fd, "Delete", &req.base, payload, &plen), TTRPC_OK);
		resp = ctd__delete_response__unpack(NULL, plen, payload);
		ASSERT_TRUE(resp && resp->exit_status == 137);
		ctd__delete_response__free_unpacked(resp, NULL);
		sreq.id = "c1";
		ASSERT_EQ(call(fd, "State", &sreq.base, NULL, NULL), TTRPC_NOT_FOUND);
	}

	printf("# events, in order\n");
	{
		FILE *f = fopen(events_log, "r");
		char line[128];
		ASSERT_TRUE(f);
		while (fgets(line, sizeof(line), f))
			strncat(events, line, sizeof(events) - strlen(events) - 1);
		fclose(f);
		ASSERT_STREQ(events, "/tasks/create\n/tasks/start\n/tasks/paused\n/tasks/resumed\n"
				     "/tasks/exec-added\n/tasks/exec-started\n/tasks/exit\n"
				     "/tasks/exit\n/tasks/delete\n");
	}
}

int main(int argc, char **argv)
{
	char out[65536], msg[512], address[256];
	uint8_t payload[65536];
	size_t len, plen;
	int fd, rc;

	T_REQUIRE(argc == 3, "usage: test-shim-protocol SHIM MAKE_BUSYBOX_BUNDLE");
	T_REQUIRE(geteuid() == 0, "needs root (socket under /run/containerd/s)");
	shim = realpath(argv[1], NULL); /* it runs in the bundle directory */
	ASSERT_TRUE(shim);
	make_bundle = argv[2];
	runtime = getenv("STOKE_SHIM_RUNTIME");
	snprintf(bundle, sizeof(bundle), "%s/stoke-shimproto.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ASSERT_TRUE(mkdtemp(bundle));
	atexit(cleanup);
	if (runtime) {
		/* The runtime, with a second's pause in `start`. */
		FILE *f;
		snprintf(slow_runtime, sizeof(slow_runtime), "%s/slow-runtime", bundle);
		f = fopen(slow_runtime, "w");
		ASSERT_TRUE(f);
		fprintf(f,
			"#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = start ] && sleep 1; done\n"
			"exec %s \"$@\"\n",
			runtime);
		fclose(f);
		ASSERT_TRUE(chmod(slow_runtime, 0755) == 0);
	}
	start_event_sink();

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

	if (runtime)
		container_lifecycle(fd);
	else
		printf("# (no STOKE_SHIM_RUNTIME: the container part is skipped)\n");

	printf("# Shutdown without tasks: the daemon exits and removes its socket\n");
	{
		Ctd__ShutdownRequest req = CTD__SHUTDOWN_REQUEST__INIT;
		char c;
		req.id = "t1";
		ASSERT_EQ(call(fd, "Shutdown", &req.base, NULL, NULL), TTRPC_OK);
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
