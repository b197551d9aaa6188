/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The task service containerd.task.v2.Task: one handler per RPC, each
 * decoding its request, acting, and answering on the connection (or parking
 * the request, for Wait).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fd-util.h"
#include "json-util.h"
#include "log.h"
#include "metrics.pb-c.h"
#include "shim.h"

#define DRAIN_TIMEOUT_MS 10000

struct call {
	struct shim *s;
	struct conn *conn;
	uint32_t stream;
};

static void reply_err(struct call *k, enum ttrpc_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void reply_err(struct call *k, enum ttrpc_code code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (code != TTRPC_NOT_FOUND)
		log_warning("%s", msg);
	conn_reply(k->s, k->conn, k->stream, code, msg, NULL, 0);
}

static void reply_empty(struct call *k)
{
	conn_reply(k->s, k->conn, k->stream, TTRPC_OK, NULL, NULL, 0);
}

static void reply_msg(struct call *k, const ProtobufCMessage *m)
{
	conn_reply_msg(k->s, k->conn, k->stream, m);
}

/* Look up the container and process of a request, answering NotFound. */
static struct process *lookup(struct call *k, const char *id, const char *exec_id)
{
	struct container *c = container_find(k->s, id);
	struct process *p;

	if (!c) {
		reply_err(k, TTRPC_NOT_FOUND, "container %s: not found", id);
		return NULL;
	}
	p = process_find(c, exec_id);
	if (!p) {
		reply_err(k, TTRPC_NOT_FOUND, "process %s in container %s: not found", exec_id, id);
		return NULL;
	}
	return p;
}

static int read_pid_file(const char *path, pid_t *ret)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	long v;
	int r = cs_read_file_at(AT_FDCWD, path, 64, &buf, &len);

	if (r < 0)
		return r;
	v = strtol(buf, NULL, 10);
	if (v <= 0)
		return -EBADMSG;
	*ret = (pid_t) v;
	return 0;
}

/* Whether config.json gives the container a pid namespace of its own. */
static bool config_own_pidns(const char *bundle)
{
	_cleanup_free_ char *path = NULL;
	json_object *cfg = NULL, *linux_, *nss;
	bool own = false;

	if (asprintf(&path, "%s/config.json", bundle) < 0)
		return true;
	if (cs_json_parse_file(path, 16 << 20, &cfg, NULL, 0) < 0)
		return true;
	if (cs_json_get_object(cfg, "linux", &linux_) == 0 &&
	    cs_json_get_array(linux_, "namespaces", &nss) == 0) {
		for (size_t i = 0; i < json_object_array_length(nss); i++) {
			json_object *ns = json_object_array_get_idx(nss, i);
			const char *type, *nspath;
			if (cs_json_get_string(ns, "type", &type) == 0 &&
			    strcmp(type, "pid") == 0 &&
			    (cs_json_get_string(ns, "path", &nspath) < 0 || !*nspath))
				own = true;
		}
	}
	json_object_put(cfg);
	return own;
}

static int set_str(char **dst, const char *src)
{
	*dst = strdup(src ? src : "");
	return *dst ? 0 : -ENOMEM;
}

/* ---- Create ---- */

static void destroy_container(struct shim *s, struct container *c)
{
	stdio_close(s, &c->init);
	oom_watch_stop(s, c);
	if (c->rootfs)
		(void) rootfs_unmount(c->rootfs);
	container_free(c);
}

static void rpc_create(struct call *k, const ProtobufCBinaryData *in)
{
	Ctd__CreateTaskRequest *req = ctd__create_task_request__unpack(NULL, in->len, in->data);
	Ctd__CreateTaskResponse resp = CTD__CREATE_TASK_RESPONSE__INIT;
	Ctd__TaskCreate ev = CTD__TASK_CREATE__INIT;
	Ctd__TaskIO tio = CTD__TASK_IO__INIT;
	struct container *c = NULL;
	_cleanup_free_ char *pidfile = NULL;
	char err[1024] = "";
	const char *args[16];
	size_t na = 0;
	int r;

	if (!req) {
		reply_err(k, TTRPC_INVALID_ARGUMENT, "malformed CreateTaskRequest");
		return;
	}
	if (!*req->id || !*req->bundle) {
		reply_err(k, TTRPC_INVALID_ARGUMENT, "create: id and bundle are required");
		goto out;
	}
	if (container_find(k->s, req->id)) {
		reply_err(k, TTRPC_ALREADY_EXISTS, "container %s: already exists", req->id);
		goto out;
	}
	if (*req->checkpoint) {
		reply_err(k, TTRPC_UNIMPLEMENTED,
			  "create %s: restoring from a checkpoint directory is not supported; use "
			  "the org.stoke.snapshot annotation",
			  req->id);
		goto out;
	}

	c = calloc(1, sizeof(*c));
	if (!c || set_str(&c->id, req->id) < 0 || set_str(&c->bundle, req->bundle) < 0)
		goto oom;
	c->init.c = c;
	c->init.terminal = req->terminal;
	stdio_init(&c->init.io);
	if (set_str(&c->init.stdin_path, req->stdin) < 0 ||
	    set_str(&c->init.stdout_path, req->stdout) < 0 ||
	    set_str(&c->init.stderr_path, req->stderr) < 0)
		goto oom;

	r = runtime_resolve(k->s, req->options, &c->rt, err, sizeof(err));
	if (r < 0) {
		reply_err(k, r == -EINVAL ? TTRPC_INVALID_ARGUMENT : TTRPC_UNKNOWN, "create %s: %s",
			  req->id, err);
		goto fail;
	}
	r = runtime_save(c->bundle, &c->rt);
	if (r < 0) {
		reply_err(k, TTRPC_UNKNOWN, "create %s: cannot write %s/%s: %s", req->id, c->bundle,
			  SHIM_RUNTIME_FILE, strerror(-r));
		goto fail;
	}
	c->own_pidns = config_own_pidns(c->bundle);

	if (req->n_rootfs) {
		if (asprintf(&c->rootfs, "%s/rootfs", c->bundle) < 0)
			goto oom;
		r = rootfs_mount_all(c->rootfs, req->rootfs, req->n_rootfs, err, sizeof(err));
		if (r < 0) {
			free(c->rootfs);
			c->rootfs = NULL;
			reply_err(k, TTRPC_UNKNOWN, "create %s: %s", req->id,
				  *err ? err : strerror(-r));
			goto fail;
		}
	}

	r = stdio_prepare(k->s, &c->init, req->stdin, req->stdout, req->stderr, err, sizeof(err));
	if (r < 0) {
		reply_err(k, TTRPC_UNKNOWN, "create %s: stdio: %s", req->id,
			  *err ? err : strerror(-r));
		goto fail;
	}

	if (asprintf(&pidfile, "%s/init.pid", c->bundle) < 0)
		goto oom;
	args[na++] = "create";
	args[na++] = "--bundle";
	args[na++] = c->bundle;
	args[na++] = "--pid-file";
	args[na++] = pidfile;
	if (stdio_console_socket(&c->init)) {
		args[na++] = "--console-socket";
		args[na++] = stdio_console_socket(&c->init);
	}
	args[na++] = c->id;
	args[na] = NULL;
	{
		struct runtime_call call = {
			.args = args,
			.stdio = {c->init.io.child[0], c->init.io.child[1], c->init.io.child[2]}};
		if (c->init.terminal)
			call.stdio[0] = call.stdio[1] = call.stdio[2] = -1;
		r = runtime_run(k->s, c, &call, NULL, err, sizeof(err));
	}
	if (r < 0) {
		reply_err(k, TTRPC_UNKNOWN, "OCI runtime create failed: %s", err);
		goto fail;
	}
	r = read_pid_file(pidfile, &c->init.pid);
	if (r < 0) {
		reply_err(k, TTRPC_UNKNOWN, "create %s: cannot read %s: %s", req->id, pidfile,
			  strerror(-r));
		goto fail_delete;
	}
	c->init.state = PROC_CREATED;
	c->next = k->s->containers;
	k->s->containers = c;
	exits_claim(k->s, c->init.pid);
	r = stdio_started(k->s, &c->init);
	if (r < 0)
		log_warning_errno(r, "container %s: terminal setup failed: %m", c->id);
	r = oom_watch_start(k->s, c, c->init.pid);
	if (r < 0)
		log_debug_errno(r, "container %s: no OOM watch: %m", c->id);

	ev.container_id = c->id;
	ev.bundle = c->bundle;
	ev.rootfs = req->rootfs;
	ev.n_rootfs = req->n_rootfs;
	tio.stdin = req->stdin;
	tio.stdout = req->stdout;
	tio.stderr = req->stderr;
	tio.terminal = req->terminal;
	ev.io = &tio;
	ev.checkpoint = req->checkpoint;
	ev.pid = c->init.pid;
	publish_event(k->s, "/tasks/create", "containerd.events.TaskCreate", &ev.base);

	resp.pid = c->init.pid;
	reply_msg(k, &resp.base);
	goto out;

fail_delete : {
	const char *dargs[] = {"delete", "--force", c->id, NULL};
	struct runtime_call call = {.args = dargs, .stdio = {-1, -1, -1}};
	(void) runtime_run(k->s, c, &call, NULL, err, sizeof(err));
}
	goto fail;
oom:
	reply_err(k, TTRPC_INTERNAL, "create: out of memory");
fail:
	if (c)
		destroy_container(k->s, c);
out:
	ctd__create_task_request__free_unpacked(req, NULL);
}

/* ---- Start ---- */

static void start_init(struct call *k, struct process *p)
{
	Ctd__StartResponse resp = CTD__START_RESPONSE__INIT;
	Ctd__TaskStart ev = CTD__TASK_START__INIT;
	const char *args[] = {"start", p->c->id, NULL};
	struct runtime_call call = {.args = args, .stdio = {-1, -1, -1}};
	char err[1024];

	if (p->state != PROC_CREATED || p->exited) {
		reply_err(k, TTRPC_FAILED_PRECONDITION, "container %s: cannot start a %s process",
			  p->c->id, p->exited ? "stopped" : "started");
		return;
	}
	if (runtime_run(k->s, p->c, &call, NULL, err, sizeof(err)) < 0) {
		reply_err(k, TTRPC_UNKNOWN, "OCI runtime start failed: %s", err);
		return;
	}
	p->state = PROC_RUNNING;
	/* Before the reply and before any exit of this pid is processed. */
	ev.container_id = p->c->id;
	ev.pid = p->pid;
	publish_event(k->s, "/tasks/start", "containerd.events.TaskStart", &ev.base);
	resp.pid = p->pid;
	reply_msg(k, &resp.base);
}

static void start_exec(struct call *k, struct process *p)
{
	Ctd__StartResponse resp = CTD__START_RESPONSE__INIT;
	Ctd__TaskExecStarted ev = CTD__TASK_EXEC_STARTED__INIT;
	struct container *c = p->c;
	_cleanup_free_ char *spec_path = NULL, *pidfile = NULL;
	const char *args[16];
	char err[1024] = "";
	size_t na = 0;
	int r;

	if (p->state != PROC_CREATED) {
		reply_err(k, TTRPC_FAILED_PRECONDITION, "exec %s: cannot start a %s process",
			  p->exec_id, p->exited ? "stopped" : "started");
		return;
	}
	if (c->init.exited || c->init.state == PROC_CREATED) {
		reply_err(k, TTRPC_FAILED_PRECONDITION, "container %s init process is not running",
			  c->id);
		return;
	}
	if (asprintf(&spec_path, "%s/.exec-%s.json", c->bundle, p->exec_id) < 0 ||
	    asprintf(&pidfile, "%s/%s.pid", c->bundle, p->exec_id) < 0) {
		reply_err(k, TTRPC_INTERNAL, "out of memory");
		return;
	}
	r = bundle_write_file(c->bundle, strrchr(spec_path, '/') + 1, p->spec_json,
			      strlen(p->spec_json), 0600);
	if (r < 0) {
		reply_err(k, TTRPC_UNKNOWN, "exec %s: cannot write %s: %s", p->exec_id, spec_path,
			  strerror(-r));
		return;
	}
	r = stdio_prepare(k->s, p, p->stdin_path, p->stdout_path, p->stderr_path, err, sizeof(err));
	if (r < 0) {
		(void) unlink(spec_path);
		stdio_close(k->s, p);
		reply_err(k, TTRPC_UNKNOWN, "exec %s: stdio: %s", p->exec_id,
			  *err ? err : strerror(-r));
		return;
	}
	args[na++] = "exec";
	args[na++] = "--process";
	args[na++] = spec_path;
	if (stdio_console_socket(p)) {
		args[na++] = "--console-socket";
		args[na++] = stdio_console_socket(p);
	}
	args[na++] = "--detach";
	args[na++] = "--pid-file";
	args[na++] = pidfile;
	args[na++] = c->id;
	args[na] = NULL;
	{
		struct runtime_call call = {
			.args = args, .stdio = {p->io.child[0], p->io.child[1], p->io.child[2]}};
		if (p->terminal)
			call.stdio[0] = call.stdio[1] = call.stdio[2] = -1;
		r = runtime_run(k->s, c, &call, NULL, err, sizeof(err));
	}
	(void) unlink(spec_path);
	if (r < 0) {
		stdio_close(k->s, p);
		reply_err(k, TTRPC_UNKNOWN, "OCI runtime exec failed: %s", err);
		return;
	}
	r = read_pid_file(pidfile, &p->pid);
	if (r < 0) {
		stdio_close(k->s, p);
		reply_err(k, TTRPC_UNKNOWN, "exec %s: cannot read %s: %s", p->exec_id, pidfile,
			  strerror(-r));
		return;
	}
	p->state = PROC_RUNNING;
	exits_claim(k->s, p->pid);
	r = stdio_started(k->s, p);
	if (r < 0)
		log_warning_errno(r, "exec %s: terminal setup failed: %m", p->exec_id);
	ev.container_id = c->id;
	ev.exec_id = p->exec_id;
	ev.pid = p->pid;
	publish_event(k->s, "/tasks/exec-started", "containerd.events.TaskExecStarted", &ev.base);
	resp.pid = p->pid;
	reply_msg(k, &resp.base);
}

static void rpc_start(struct call *k, const ProtobufCBinaryData *in)
{
	Ctd__StartRequest *req = ctd__start_request__unpack(NULL, in->len, in->data);
	struct process *p;

	if (!req) {
		reply_err(k, TTRPC_INVALID_ARGUMENT, "malformed StartRequest");
		return;
	}
	p = lookup(k, req->id, req->exec_id);
	if (p) {
		if (p->exec_id)
			start_exec(k, p);
		else
			start_init(k, p);
	}
	ctd__start_request__free_unpacked(req, NULL);
}

/* ---- Wait, Connect, State ---- */

static void rpc_wait(struct call *k, const ProtobufCBinaryData *in)
{
	Ctd__WaitRequest *req = ctd__wait_request__unpack(NULL, in->len, in->data);
	struct process *p;

	if (!req) {
		reply_err(k, TTRPC_INVALID_ARGUMENT, "malformed WaitRequest");
		return;
	}
	p = lookup(k, req->id, req->exec_id);
	if (p) {
		/* Parked; answered when the exit is processed (or at once). */
		process_add_waiter(p, k->conn, k->stream);
		if (p->exit_published)
			process_answer_waiters(k->s, p);
	}
	ctd__wait_request__free_unpacked(req, NULL);
}

static void rpc_connect(struct call *k, const ProtobufCBinaryData *in)
{
	Ctd__ConnectRequest *req = ctd__connect_request__unpack(NULL, in->len, in->data);
	Ctd__ConnectResponse resp = CTD__CONNECT_RESPONSE__INIT;
	struct container *c;

	if (!req) {
		reply_err(k, TTRPC_INVALID_ARGUMENT, "malformed ConnectRequest");
		return;
	}
	c = container_find(k->s, req->id);
	resp.shim_pid = getpid();
	resp.task_pid = c ? c->init.pid : 0;
	reply_msg(k, &resp.base);
	ctd__connect_request__free_unpacked(req, NULL);
}

static Ctd__TaskStatus status_of(struct process *p)
{
	if (p->exit_published)
		return CTD__TASK_STATUS__STOPPED;
	switch (p->state) {
	case PROC_CREATED:
		return CTD__TASK_STATUS__CREATED;
	case PROC_RUNNING:
		return CTD__TASK_STATUS__RUNNING;
	case PROC_PAUSED:
		return CTD__TASK_STATUS__PAUSED;
	default:
		return CTD__TASK_STATUS__STOPPED;
	}
}

static void rpc_state(struct call *k, const ProtobufCBinaryData *in)
{
	Ctd__StateRequest *req = ctd__state_request__unpack(NULL, in->len, in->data);
	Ctd__StateResponse resp = CTD__STATE_RESPONSE__INIT;
	Ctd__Timestamp ts = CTD__TIMESTAMP__INIT;
	struct process *p;

	if (!req) {
		reply_err(k, TTRPC_INVALID_ARGUMENT, "malformed StateRequest");
		return;
	}
	p = lookup(k, req->id, req->exec_id);
	if (p) {
		resp.id = p->exec_id ? p->exec_id : p->c->id;
		resp.bundle = p->c->bundle;
		resp.pid = p->pid;
		resp.status = status_of(p);
		resp.stdin = p->stdin_path;
		resp.stdout = p->stdout_path;
		resp.stderr = p->stderr_path;
		resp.terminal = p->terminal;
		if (p->exit_published) {
			resp.exit_status = p->exit_status;
			set_timestamp(&ts, p->exited_ns);
			resp.exited_at = &ts;
		}
		resp.exec_id = p->exec_id ? p->exec_id : (char *) "";
		reply_msg(k, &resp.base);
	}
	ctd__state_request__free_unpacked(req, NULL);
}

/* ---- Kill ---- */

static bool not_found_text(const char *err)
{
	return strstr(err, "not running") || strstr(err, "no such process") ||
	       strstr(err, "does not exist") || strstr(err, "not found");
}

static void rpc_kill(struct call *k, const ProtobufCBinaryData *in)
{
	Ctd__KillRequest *req = ctd__kill_request__unpack(NULL, in->len, in->data);
	struct process *p;
	char err[1024];

	if (!req) {
		reply_err(k, TTRPC_INVALID_ARGUMENT, "malformed KillRequest");
		return;
	}
	p = lookup(k, req->id, req->exec_id);
	if (!p)
		goto out;
	if (p->exec_id && p->state == PROC_CREATED) {
		reply_err(k, TTRPC_FAILED_PRECONDITION, "exec %s: process not started", p->exec_id);
		goto out;
	}
	if (p->exited || p->state == PROC_STOPPED || p->state == PROC_DELETED) {
		reply_err(k, TTRPC_NOT_FOUND, "process already finished: not found");
		goto out;
	}
	if (req->all && !p->exec_id) {
		char sig[16];
		const char *args[] = {"kill", "--all", p->c->id, sig, NULL};
		struct runtime_call call = {.args = args, .stdio = {-1, -1, -1}};

		snprintf(sig, sizeof(sig), "%u", req->signal);
		if (runtime_run(k->s, p->c, &call, NULL, err, sizeof(err)) < 0) {
			if (not_found_text(err))
				reply_err(k, TTRPC_NOT_FOUND, "process already finished: %s", err);
			else
				reply_err(k, TTRPC_UNKNOWN, "OCI runtime kill failed: %s", err);
			goto out;
		}
	} else if (kill(p->pid, (int) req->signal) < 0) {
		/* The pid cannot be reused before the reaper collects it, so a
		 * direct kill() is as safe as asking the runtime, and faster. */
		if (errno == ESRCH)
			reply_err(k, TTRPC_NOT_FOUND, "process already finished: not found");
		else
			reply_err(k, TTRPC_UNKNOWN, "kill %d: %s", p->pid, strerror(errno));
		goto out;
	}
	reply_empty(k);
out:
	ctd__kill_request__free_unpacked(req, NULL);
}

/* ---- Delete ---- */

static bool proc_drained(void *arg)
{
	return stdio_drained(arg);
}

static void drain(struct shim *s, struct process *p)
{
	if (loop_wait_core(s, proc_drained, p, DRAIN_TIMEOUT_MS) == -ETIMEDOUT)
		log_warning("%s: output still open after %d s; closing it",
			    p->exec_id ? p->exec_id : p->c->id, DRAIN_TIMEOUT_MS / 1000);
}

static void delete_exec(struct call *k, struct process *p)
{
	Ctd__DeleteResponse resp = CTD__DELETE_RESPONSE__INIT;
	Ctd__Timestamp ts = CTD__TIMESTAMP__INIT;
	struct container *c = p->c;
	_cleanup_free_ char *pidfile = NULL;

	if (p->state != PROC_CREATED && !p->exit_published) {
		reply_err(k, TTRPC_FAILED_PRECONDITION, "exec %s: cannot delete a running process",
			  p->exec_id);
		return;
	}
	drain(k->s, p);
	stdio_close(k->s, p);
	if (asprintf(&pidfile, "%s/%s.pid", c->bundle, p->exec_id) >= 0)
		(void) unlink(pidfile);
	resp.pid = p->pid;
	resp.exit_status = p->exit_status;
	set_timestamp(&ts, p->exited_ns);
	resp.exited_at = &ts;
	reply_msg(k, &resp.base);
	for (struct process **pp = &c->execs; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	process_free(p);
	free(p);
}

static void delete_init(struct call *k, struct process *p)
{
	Ctd__DeleteResponse resp = CTD__DELETE_RESPONSE__INIT;
	Ctd__TaskDelete ev = CTD__TASK_DELETE__INIT;
	Ctd__Timestamp ts = CTD__TIMESTAMP__INIT;
	struct container *c = p->c;
	bool created = p->state == PROC_CREATED && !p->exited;
	char err[1024];

	if (!created && !p->exit_published) {
		reply_err(k, TTRPC_FAILED_PRECONDITION,
			  "container %s: cannot delete a running process", c->id);
		return;
	}
	if (!created)
		drain(k->s, p);
	{
		const char *args[] = {"delete", "--force", c->id, NULL};
		const char *plain[] = {"delete", c->id, NULL};
		struct runtime_call call = {.args = created ? args : plain, .stdio = {-1, -1, -1}};
		if (runtime_run(k->s, c, &call, NULL, err, sizeof(err)) < 0 &&
		    !not_found_text(err)) {
			call.args = args;
			if (runtime_run(k->s, c, &call, NULL, err, sizeof(err)) < 0 &&
			    !not_found_text(err))
				log_warning("container %s: OCI runtime delete failed: %s", c->id,
					    err);
		}
	}
	if (created) {
		/* Never started: it was killed by the delete. */
		p->exit_status = 128 + SIGKILL;
		p->exited_ns = now_ns();
		p->exited = true;
	}
	process_answer_waiters(k->s, p);
	for (struct process *e = c->execs; e; e = e->next)
		stdio_close(k->s, e);
	container_unlink(k->s, c);
	stdio_close(k->s, p);
	oom_watch_stop(k->s, c);
	if (c->rootfs) {
		int r = rootfs_unmount(c->rootfs);
		if (r < 0)
			log_warning_errno(r, "container %s: cannot unmount %s: %m", c->id,
					  c->rootfs);
	}
	set_timestamp(&ts, p->exited_ns);
	ev.container_id = c->id;
	ev.pid = p->pid;
	ev.exit_status = p->exit_status;
	ev.exited_at = &ts;
	ev.id = (char *) "";
	publish_event(k->s, "/tasks/delete", "containerd.events.TaskDelete", &ev.base);
	resp.pid = p->pid;
	resp.exit_status = p->exit_status;
	resp.exited_at = &ts;
	reply_msg(k, &resp.base);
	container_free(c);
}

static void rpc_delete(struct call *k, const ProtobufCBinaryData *in)
{
	Ctd__DeleteRequest *req = ctd__delete_request__unpack(NULL, in->len, in->data);
	struct process *p;

	if (!req) {
		reply_err(k, TTRPC_INVALID_ARGUMENT, "malformed DeleteRequest");
		return;
	}
	p = lookup(k, req->id, req->exec_id);
	if (p) {
		if (p->exec_id)
			delete_exec(k, p);
		else
			delete_init(k, p);
	}
	ctd__delete_request__free_unpacked(req, NULL);
}

/* ---- Shutdown ---- */

static void rpc_shutdown(struct call *k, const ProtobufCBinaryData *in)
{
	reply_empty(k);
	/* Only a shim without tasks goes away (containerd may share it). */
	if (!k->s->containers)
		shim_request_exit(k->s);
}

/* ---- Exec, ResizePty, CloseIO ---- */

static void rpc_exec(struct call *k, const ProtobufCBinaryData *in)
{
	Ctd__ExecProcessRequest *req = ctd__exec_process_request__unpack(NULL, in->len, in->data);
	Ctd__TaskExecAdded ev = CTD__TASK_EXEC_ADDED__INIT;
	struct container *c;
	struct process *p;

	if (!req) {
		reply_err(k, TTRPC_INVALID_ARGUMENT, "malformed ExecProcessRequest");
		return;
	}
	c = container_find(k->s, req->id);
	if (!c) {
		reply_err(k, TTRPC_NOT_FOUND, "container %s: not found", req->id);
		goto out;
	}
	if (!*req->exec_id) {
		reply_err(k, TTRPC_INVALID_ARGUMENT, "exec: exec_id is required");
		goto out;
	}
	if (process_find(c, req->exec_id)) {
		reply_err(k, TTRPC_ALREADY_EXISTS, "id %s: already exists", req->exec_id);
		goto out;
	}
	if (c->init.exit_published || c->init.exited) {
		reply_err(k, TTRPC_FAILED_PRECONDITION,
			  "container %s: cannot exec in a stopped state", c->id);
		goto out;
	}
	if (c->init.state == PROC_PAUSED) {
		reply_err(k, TTRPC_FAILED_PRECONDITION,
			  "container %s: cannot exec in a paused state", c->id);
		goto out;
	}
	if (!req->spec || !req->spec->value.len) {
		reply_err(k, TTRPC_INVALID_ARGUMENT, "exec %s: no process spec", req->exec_id);
		goto out;
	}
	p = calloc(1, sizeof(*p));
	if (!p || set_str(&p->exec_id, req->exec_id) < 0 ||
	    set_str(&p->stdin_path, req->stdin) < 0 || set_str(&p->stdout_path, req->stdout) < 0 ||
	    set_str(&p->stderr_path, req->stderr) < 0 ||
	    !(p->spec_json = strndup((char *) req->spec->value.data, req->spec->value.len))) {
		if (p) {
			process_free(p);
			free(p);
		}
		reply_err(k, TTRPC_INTERNAL, "out of memory");
		goto out;
	}
	p->c = c;
	p->terminal = req->terminal;
	p->state = PROC_CREATED;
	stdio_init(&p->io);
	p->next = c->execs;
	c->execs = p;
	ev.container_id = c->id;
	ev.exec_id = p->exec_id;
	publish_event(k->s, "/tasks/exec-added", "containerd.events.TaskExecAdded", &ev.base);
	reply_empty(k);
out:
	ctd__exec_process_request__free_unpacked(req, NULL);
}

static void rpc_resize_pty(struct call *k, const ProtobufCBinaryData *in)
{
	Ctd__ResizePtyRequest *req = ctd__resize_pty_request__unpack(NULL, in->len, in->data);
	struct process *p;
	int r;

	if (!req) {
		reply_err(k, TTRPC_INVALID_ARGUMENT, "malformed ResizePtyRequest");
		return;
	}
	p = lookup(k, req->id, req->exec_id);
	if (p) {
		r = stdio_resize(p, req->width, req->height);
		if (r < 0)
			reply_err(k, TTRPC_UNKNOWN, "resize pty: %s", strerror(-r));
		else
			reply_empty(k);
	}
	ctd__resize_pty_request__free_unpacked(req, NULL);
}

static void rpc_close_io(struct call *k, const ProtobufCBinaryData *in)
{
	Ctd__CloseIORequest *req = ctd__close_iorequest__unpack(NULL, in->len, in->data);
	struct process *p;

	if (!req) {
		reply_err(k, TTRPC_INVALID_ARGUMENT, "malformed CloseIORequest");
		return;
	}
	p = lookup(k, req->id, req->exec_id);
	if (p) {
		stdio_close_stdin(p);
		reply_empty(k);
	}
	ctd__close_iorequest__free_unpacked(req, NULL);
}

/* ---- Pids, Stats, Update, Pause, Resume, Checkpoint ---- */

static struct container *running_container(struct call *k, const char *id, const char *what)
{
	struct container *c = container_find(k->s, id);

	if (!c) {
		reply_err(k, TTRPC_NOT_FOUND, "container %s: not found", id);
		return NULL;
	}
	if (c->init.exited || c->init.exit_published) {
		reply_err(k, TTRPC_FAILED_PRECONDITION,
			  "container %s: cannot %s a stopped container", id, what);
		return NULL;
	}
	return c;
}

static void rpc_pids(struct call *k, const ProtobufCBinaryData *in)
{
	Ctd__PidsRequest *req = ctd__pids_request__unpack(NULL, in->len, in->data);
	Ctd__PidsResponse resp = CTD__PIDS_RESPONSE__INIT;
	_cleanup_free_ char *out = NULL;
	_cleanup_free_ Ctd__ProcessInfo *infos = NULL;
	_cleanup_free_ Ctd__ProcessInfo **ptrs = NULL;
	_cleanup_free_ Ctd__Any *anys = NULL;
	_cleanup_free_ Ctd__ProcessDetails *details = NULL;
	_cleanup_free_ uint8_t *packed = NULL;
	json_object *arr = NULL;
	struct container *c;
	char err[1024];
	size_t n = 0;

	if (!req) {
		reply_err(k, TTRPC_INVALID_ARGUMENT, "malformed PidsRequest");
		return;
	}
	c = container_find(k->s, req->id);
	if (!c) {
		reply_err(k, TTRPC_NOT_FOUND, "container %s: not found", req->id);
		goto out;
	}
	{
		const char *args[] = {"ps", "--format", "json", c->id, NULL};
		struct runtime_call call = {
			.args = args, .stdio = {-1, -1, -1}, .capture_stdout = true};
		if (runtime_run(k->s, c, &call, &out, err, sizeof(err)) < 0) {
			reply_err(k, TTRPC_UNKNOWN, "OCI runtime ps failed: %s", err);
			goto out;
		}
	}
	if (cs_json_parse(out, strlen(out), &arr, err, sizeof(err)) < 0 ||
	    !json_object_is_type(arr, json_type_array)) {
		reply_err(k, TTRPC_UNKNOWN, "OCI runtime ps printed no JSON array of pids");
		goto out;
	}
	n = json_object_array_length(arr);
	infos = calloc(n + 1, sizeof(*infos));
	ptrs = calloc(n + 1, sizeof(*ptrs));
	anys = calloc(n + 1, sizeof(*anys));
	details = calloc(n + 1, sizeof(*details));
	packed = calloc(n + 1, 256);
	if (!infos || !ptrs || !anys || !details || !packed) {
		reply_err(k, TTRPC_INTERNAL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		pid_t pid = json_object_get_int(json_object_array_get_idx(arr, i));
		ctd__process_info__init(&infos[i]);
		infos[i].pid = pid;
		ptrs[i] = &infos[i];
		for (struct process *e = c->execs; e; e = e->next) {
			if (e->pid != pid || strlen(e->exec_id) > 200)
				continue;
			/* Pids of execs carry containerd.runc.v1.ProcessDetails. */
			ctd__process_details__init(&details[i]);
			details[i].exec_id = e->exec_id;
			ctd__any__init(&anys[i]);
			anys[i].type_url = (char *) "containerd.runc.v1.ProcessDetails";
			anys[i].value.data = packed + 256 * i;
			anys[i].value.len =
				ctd__process_details__pack(&details[i], anys[i].value.data);
			infos[i].info = &anys[i];
		}
	}
	resp.processes = ptrs;
	resp.n_processes = n;
	reply_msg(k, &resp.base);
out:
	if (arr)
		json_object_put(arr);
	ctd__pids_request__free_unpacked(req, NULL);
}

static void rpc_stats(struct call *k, const ProtobufCBinaryData *in)
{
	Ctd__StatsRequest *req = ctd__stats_request__unpack(NULL, in->len, in->data);
	Ctd__StatsResponse resp = CTD__STATS_RESPONSE__INIT;
	Ctd__Any any = CTD__ANY__INIT;
	_cleanup_free_ char *type = NULL;
	_cleanup_free_ uint8_t *buf = NULL;
	struct container *c;
	size_t len;
	int r;

	if (!req) {
		reply_err(k, TTRPC_INVALID_ARGUMENT, "malformed StatsRequest");
		return;
	}
	c = running_container(k, req->id, "read statistics of");
	if (!c)
		goto out;
	r = cgroup_stats(c->init.pid, &type, &buf, &len);
	if (r < 0) {
		reply_err(k, r == -ENOENT ? TTRPC_NOT_FOUND : TTRPC_UNKNOWN,
			  "container %s: cgroup statistics: %s", c->id, strerror(-r));
		goto out;
	}
	any.type_url = type;
	any.value.data = buf;
	any.value.len = len;
	resp.stats = &any;
	reply_msg(k, &resp.base);
out:
	ctd__stats_request__free_unpacked(req, NULL);
}

static void rpc_update(struct call *k, const ProtobufCBinaryData *in)
{
	Ctd__UpdateTaskRequest *req = ctd__update_task_request__unpack(NULL, in->len, in->data);
	struct container *c;
	char err[1024];

	if (!req) {
		reply_err(k, TTRPC_INVALID_ARGUMENT, "malformed UpdateTaskRequest");
		return;
	}
	c = running_container(k, req->id, "update");
	if (!c)
		goto out;
	if (!req->resources || !req->resources->value.len) {
		reply_err(k, TTRPC_INVALID_ARGUMENT, "update %s: no resources", c->id);
		goto out;
	}
	{
		const char *args[] = {"update", "--resources", "-", c->id, NULL};
		struct runtime_call call = {.args = args,
					    .stdio = {-1, -1, -1},
					    .input = req->resources->value.data,
					    .input_len = req->resources->value.len};
		if (runtime_run(k->s, c, &call, NULL, err, sizeof(err)) < 0) {
			reply_err(k, TTRPC_UNKNOWN, "OCI runtime update failed: %s", err);
			goto out;
		}
	}
	reply_empty(k);
out:
	ctd__update_task_request__free_unpacked(req, NULL);
}

static void pause_resume(struct call *k, const ProtobufCBinaryData *in, bool pause)
{
	Ctd__PauseRequest *req = ctd__pause_request__unpack(NULL, in->len, in->data);
	Ctd__TaskPaused ev = CTD__TASK_PAUSED__INIT;
	struct container *c;
	char err[1024];

	if (!req) {
		reply_err(k, TTRPC_INVALID_ARGUMENT, "malformed request");
		return;
	}
	c = running_container(k, req->id, pause ? "pause" : "resume");
	if (!c)
		goto out;
	if (c->init.state != (pause ? PROC_RUNNING : PROC_PAUSED)) {
		reply_err(k, TTRPC_FAILED_PRECONDITION, "container %s is %s", c->id,
			  c->init.state == PROC_PAUSED ? "paused" : "not paused");
		goto out;
	}
	{
		const char *args[] = {pause ? "pause" : "resume", c->id, NULL};
		struct runtime_call call = {.args = args, .stdio = {-1, -1, -1}};
		if (runtime_run(k->s, c, &call, NULL, err, sizeof(err)) < 0) {
			reply_err(k, TTRPC_UNKNOWN, "OCI runtime %s failed: %s", args[0], err);
			goto out;
		}
	}
	c->init.state = pause ? PROC_PAUSED : PROC_RUNNING;
	/* TaskPaused and TaskResumed have the same shape. */
	ev.container_id = c->id;
	publish_event(k->s, pause ? "/tasks/paused" : "/tasks/resumed",
		      pause ? "containerd.events.TaskPaused" : "containerd.events.TaskResumed",
		      &ev.base);
	reply_empty(k);
out:
	ctd__pause_request__free_unpacked(req, NULL);
}

static void rpc_pause(struct call *k, const ProtobufCBinaryData *in)
{
	pause_resume(k, in, true);
}

static void rpc_resume(struct call *k, const ProtobufCBinaryData *in)
{
	pause_resume(k, in, false);
}

static void rpc_checkpoint(struct call *k, const ProtobufCBinaryData *in)
{
	Ctd__CheckpointTaskRequest *req =
		ctd__checkpoint_task_request__unpack(NULL, in->len, in->data);
	Ctd__CheckpointOptions *opts = NULL;
	_cleanup_free_ char *work = NULL;
	const char *args[32];
	struct container *c;
	char err[1024];
	size_t na = 0;

	if (!req) {
		reply_err(k, TTRPC_INVALID_ARGUMENT, "malformed CheckpointTaskRequest");
		return;
	}
	c = running_container(k, req->id, "checkpoint");
	if (!c)
		goto out;
	if (req->options && req->options->value.len) {
		opts = ctd__checkpoint_options__unpack(NULL, req->options->value.len,
						       req->options->value.data);
		if (!opts) {
			reply_err(k, TTRPC_INVALID_ARGUMENT, "malformed CheckpointOptions");
			goto out;
		}
	}
	if (asprintf(&work, "%s/criu-work", c->bundle) < 0) {
		reply_err(k, TTRPC_INTERNAL, "out of memory");
		goto out;
	}
	args[na++] = "checkpoint";
	args[na++] = "--image-path";
	args[na++] = opts && *opts->image_path ? opts->image_path : req->path;
	args[na++] = "--work-path";
	args[na++] = opts && *opts->work_path ? opts->work_path : work;
	if (opts && *opts->parent_path) {
		args[na++] = "--parent-path";
		args[na++] = opts->parent_path;
	}
	if (opts && opts->open_tcp)
		args[na++] = "--tcp-established";
	if (opts && opts->external_unix_sockets)
		args[na++] = "--ext-unix-sk";
	if (opts && opts->terminal)
		args[na++] = "--shell-job";
	if (opts && opts->file_locks)
		args[na++] = "--file-locks";
	for (size_t i = 0; opts && i < opts->n_empty_namespaces && na < 26; i++) {
		args[na++] = "--empty-ns";
		args[na++] = opts->empty_namespaces[i];
	}
	if (!opts || !opts->exit)
		args[na++] = "--leave-running";
	args[na++] = c->id;
	args[na] = NULL;
	{
		struct runtime_call call = {.args = args, .stdio = {-1, -1, -1}};
		if (runtime_run(k->s, c, &call, NULL, err, sizeof(err)) < 0) {
			reply_err(k, TTRPC_UNKNOWN, "OCI runtime checkpoint failed: %s", err);
			goto out;
		}
	}
	reply_empty(k);
out:
	if (opts)
		ctd__checkpoint_options__free_unpacked(opts, NULL);
	ctd__checkpoint_task_request__free_unpacked(req, NULL);
}

static const struct {
	const char *name;
	void (*fn)(struct call *k, const ProtobufCBinaryData *in);
} methods[] = {
	{"State", rpc_state},
	{"Create", rpc_create},
	{"Start", rpc_start},
	{"Delete", rpc_delete},
	{"Pids", rpc_pids},
	{"Pause", rpc_pause},
	{"Resume", rpc_resume},
	{"Checkpoint", rpc_checkpoint},
	{"Kill", rpc_kill},
	{"Exec", rpc_exec},
	{"ResizePty", rpc_resize_pty},
	{"CloseIO", rpc_close_io},
	{"Update", rpc_update},
	{"Wait", rpc_wait},
	{"Stats", rpc_stats},
	{"Connect", rpc_connect},
	{"Shutdown", rpc_shutdown},
};

void service_dispatch(struct shim *s, struct conn *c, uint32_t stream_id, const char *method,
		      const ProtobufCBinaryData *payload)
{
	struct call k = {.s = s, .conn = c, .stream = stream_id};

	for (size_t i = 0; i < ELEMENTSOF(methods); i++)
		if (strcmp(methods[i].name, method) == 0) {
			log_debug("rpc %s", method);
			methods[i].fn(&k, payload);
			return;
		}
	{
		char msg[300];
		snprintf(msg, sizeof(msg), "method %s", method);
		conn_reply(s, c, stream_id, TTRPC_UNIMPLEMENTED, msg, NULL, 0);
	}
}
