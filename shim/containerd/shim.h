/* SPDX-License-Identifier: Apache-2.0 */
/*
 * containerd-shim-stoke-v2 daemon internals.
 *
 * One process, one thread, one epoll loop. Two epoll sets:
 *   core: the signalfd (the one reaper), stdio pumps, OOM watches;
 *   rpc:  the listening socket and ttrpc connections.
 * The main loop serves both. While an RPC runs the OCI runtime binary (create,
 * start, exec...), it waits in a nested loop: exits are reaped, container
 * output keeps flowing, State/Connect/Wait/Stats of other callers are
 * answered, and requests that change state are queued behind it. Wait
 * requests never block anything: they are parked on the process and answered
 * when it exits.
 *
 * Exits are reaped by the signalfd handler only (waitpid(-1) in one place),
 * queued, and processed by the main loop between RPCs, which keeps the event
 * order create -> start -> exit -> delete even when a process dies while the
 * RPC that started it is still running.
 *
 * Errors: -errno, ret_* written on success only. Everything here is owned by
 * `struct shim` and used from its one thread only.
 */
#ifndef STOKE_CTD_SHIM_H
#define STOKE_CTD_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "events.pb-c.h"
#include "options.pb-c.h"
#include "task.pb-c.h"
#include "ttrpc.h"

struct shim;
struct ev_source;
struct conn;
struct process;

typedef void (*ev_handler_t)(struct shim *s, struct ev_source *src, uint32_t events);

/* One fd watched by epoll; `data` is the owner. Not owning the fd. */
struct ev_source {
	int fd;
	ev_handler_t handler;
	void *data;
	int epfd; /* the set it is in, or -1 */
};

/* ---- loop.c: epoll sets, the reaper, running helper processes ---- */

int loop_init(struct shim *s);
int ev_add(struct shim *s, struct ev_source *src, bool core, uint32_t events);
void ev_del(struct shim *s, struct ev_source *src);

/*! loop_run() : serve until shim_request_exit(). @return : 0 or -errno. */
int loop_run(struct shim *s);

/*! loop_wait_core() :
 *  Run the core set (reaping, stdio, OOM) until `done(arg)` is true or
 *  `timeout_ms` passed (-1: no limit). Meanwhile requests that only read
 *  state (State, Connect, Wait, Stats) are answered; the others are queued
 *  and handled in order once back at top level.
 * @return : 0 when done, -ETIMEDOUT, or -errno. */
int loop_wait_core(struct shim *s, bool (*done)(void *arg), void *arg, int timeout_ms);

struct helper_spec {
	char **argv;
	int stdio[3];	   /* fds for the child's 0/1/2; -1 = /dev/null */
	const void *input; /* when set, stdin is a memfd with these bytes */
	size_t input_len;
	bool capture_stdout; /* collect stdout (overrides stdio[1]) */
	bool capture_stderr; /* collect stderr (overrides stdio[2]) */
	char **envp;	     /* NULL: the shim's environment */
};

struct helper_result {
	int status; /* wait status */
	char *out;  /* captured stdout (NUL-terminated) or NULL; caller frees */
	char *err;  /* captured stderr or NULL; caller frees */
};

/*! helper_run() : run a program to completion (reaped by the one reaper). */
int helper_run(struct shim *s, const struct helper_spec *spec, struct helper_result *ret);

/*! helper_spawn() : start a long-lived helper (a binary:// logger); its exit is ignored. */
int helper_spawn(struct shim *s, char **argv, char **envp, const int fds[], int nfds,
		 pid_t *ret_pid);

/*! exits_claim() : a pid became known: move its buffered exit (if any) to the queue. */
void exits_claim(struct shim *s, pid_t pid);

/* ---- server.c: the ttrpc server ---- */

int server_init(struct shim *s, int listen_fd);
/* Send a response on `c` (queued if the socket is full); drops it if `c` is closed. */
void conn_reply(struct shim *s, struct conn *c, uint32_t stream_id, enum ttrpc_code code,
		const char *message, const void *payload, size_t len);
void conn_reply_msg(struct shim *s, struct conn *c, uint32_t stream_id, const ProtobufCMessage *m);
void server_close_all(struct shim *s);
/*! server_run_deferred() : at top level, handle the requests queued while a
 *  nested loop ran, then free the connections that closed meanwhile. */
void server_run_deferred(struct shim *s);
/*! server_parse_buffered() : in a nested loop, handle requests already read
 *  into connection buffers (read-only ones at once, the others queued). */
void server_parse_buffered(struct shim *s);

/* ---- service.c: the task service ---- */

/*! service_dispatch() : run task-service `method` on `payload` and answer on
 *  `c` (now, or later for a parked Wait); unknown methods get Unimplemented. */
void service_dispatch(struct shim *s, struct conn *c, uint32_t stream_id, const char *method,
		      const ProtobufCBinaryData *payload);

/* ---- process.c: containers, processes, exits ---- */

enum proc_state {
	PROC_CREATED,
	PROC_RUNNING,
	PROC_PAUSED,
	PROC_STOPPED,
	PROC_DELETED,
};

struct waiter {
	struct conn *conn; /* not owned */
	uint32_t stream_id;
	struct waiter *next;
};

struct pump;

struct stdio {
	int child[3];	       /* container-side ends until handed to the runtime; -1 = none */
	struct pump *pumps[3]; /* stdin, stdout, stderr copies (NULL when none) */
	int stdin_keep;	       /* the shim's own writer on the stdin fifo (CloseIO closes it) */
	int console;	       /* pty master (terminal mode) */
	int console_listen;    /* --console-socket listener */
	char *console_dir;     /* temp dir holding the console socket */
	int logger_out;	       /* binary:// + terminal: pipe the master is copied to */
	pid_t logger_pid;      /* binary:// logger */
	int file_fd;	       /* file:// target */
};

struct process {
	struct container *c;
	char *exec_id; /* NULL for the init process */
	pid_t pid;
	enum proc_state state;
	bool exited;	     /* reaped; exit_status and exited_ns are valid */
	bool exit_published; /* TaskExit sent and waiters answered */
	uint32_t exit_status;
	uint64_t exited_ns;
	bool terminal;
	char *stdin_path, *stdout_path, *stderr_path;
	struct stdio io;
	char *spec_json; /* exec: the OCI Process JSON */
	struct waiter *waiters;
	struct process *next;
};

struct oom_watch;

/* The OCI runtime for a container: binary, --root, --systemd-cgroup. */
struct runtime_cfg {
	char *binary;
	char *root;
	char *criu;	/* CriuPath: passed as --criu; NULL: the runtime's default */
	bool systemd_cgroup;
};

struct container {
	char *id;
	char *bundle;
	char *rootfs;	       /* <bundle>/rootfs when the shim mounted it */
	struct runtime_cfg rt; /* how to run the OCI runtime for it */
	bool own_pidns;	       /* config.json has its own pid namespace */
	struct process init;
	struct process *execs;
	struct oom_watch *oom;
	struct container *next;
};

struct exit_rec {
	pid_t pid;
	int status;
	uint64_t when_ns;
};

struct shim {
	int ep_core, ep_rpc;
	struct ev_source sig_ev;
	int sig_fd;
	char *ns, *id, *bundle, *ttrpc_address, *socket_path;
	bool debug;
	struct container *containers;
	struct conn *conns;

	/* Exits reaped but not yet processed (FIFO), and exits of pids not yet known. */
	struct exit_rec *pending;
	size_t n_pending, cap_pending;
	struct exit_rec unclaimed[128];
	size_t n_unclaimed;

	/* The synchronous helper being waited for (at most one at a time). */
	pid_t helper_pid;
	bool helper_done;
	int helper_status;

	int pub_fd;
	uint32_t pub_stream;
	bool exit_requested;

	/* > 0 while a nested loop runs (a handler or an exit waits for the
	 * runtime or for output): requests that only read state are served
	 * meanwhile, the others are queued until it returns. */
	int nested;
};

void shim_request_exit(struct shim *s);

struct container *container_find(struct shim *s, const char *id);
/*! process_find() : init when exec_id is NULL or "", else the exec. NULL if unknown. */
struct process *process_find(struct container *c, const char *exec_id);
struct process *process_by_pid(struct shim *s, pid_t pid);
void process_free(struct process *p);
void container_free(struct container *c);
void container_unlink(struct shim *s, struct container *c);
/*! process_exits_run() : handle queued exits (publish TaskExit, answer waiters). */
void process_exits_run(struct shim *s);
bool process_running_execs(struct container *c);
void process_add_waiter(struct process *p, struct conn *conn, uint32_t stream_id);
void process_drop_waiters_of(struct shim *s, struct conn *conn);
/*! process_answer_waiters() : answer every parked Wait of `p` with its exit. */
void process_answer_waiters(struct shim *s, struct process *p);
uint32_t proc_exit_status(int wstatus);

/* ---- stdio.c ---- */

void stdio_init(struct stdio *io);
/*! stdio_prepare() : set up the process's stdio from the request's URIs
 *  (fifo paths, binary://, file://, or none), before the runtime runs. */
int stdio_prepare(struct shim *s, struct process *p, const char *in, const char *out,
		  const char *err, char *errbuf, size_t errlen);
/*! stdio_started() : after the runtime created the process: close the
 *  container ends, take the pty master from the console socket, start copies. */
int stdio_started(struct shim *s, struct process *p);
bool stdio_drained(struct process *p);
void stdio_close_stdin(struct process *p);
void stdio_close(struct shim *s, struct process *p);
int stdio_resize(struct process *p, uint32_t width, uint32_t height);
/* Path of the console socket the runtime connects to, or NULL without a terminal. */
const char *stdio_console_socket(struct process *p);

/* ---- rootfs.c ---- */

int rootfs_mount_all(const char *rootfs, Ctd__Mount **mounts, size_t n, char *errbuf,
		     size_t errlen);
/*! rootfs_unmount() : unmount everything at or below `path`, deepest first. */
int rootfs_unmount(const char *path);

/* ---- publish.c ---- */

/*! publish_event() : forward an event to containerd over ttrpc (Events/Forward).
 *  Failures are logged and dropped (containerd has Wait as the reliable path). */
void publish_event(struct shim *s, const char *topic, const char *type_name,
		   const ProtobufCMessage *event);

/* ---- runtime.c: the OCI runtime binary, with runc's argument conventions ---- */

struct runtime_call {
	const char *const *args; /* after the global flags, NULL-terminated */
	int stdio[3];
	const void *input;
	size_t input_len;
	bool capture_stdout;
};

/*! runtime_run() :
 *  Run `<binary> --root R --log <bundle>/log.json --log-format json ARGS`.
 *  On a non-zero exit, `errbuf` gets the runtime's last error message.
 * @return : 0, -EIO when it failed (errbuf says why), or -errno. */
int runtime_run(struct shim *s, struct container *c, const struct runtime_call *call,
		char **ret_out, char *errbuf, size_t errlen);

/*! runtime_resolve() : choose the runtime binary and root from the Create
 *  options (containerd.runc.v1.Options BinaryName/Root, runtimeoptions.v1
 *  ConfigPath), $STOKE_SHIM_RUNTIME, or `stoke` next to the shim. */
int runtime_resolve(struct shim *s, const Ctd__Any *options, struct runtime_cfg *ret, char *errbuf,
		    size_t errlen);

/* Bundle file recording the runtime for the `delete` subcommand. */
#define SHIM_RUNTIME_FILE "stoke-shim-runtime.json"
int runtime_save(const char *bundle, const struct runtime_cfg *cfg);
int runtime_load(const char *bundle, struct runtime_cfg *ret);
void runtime_cfg_done(struct runtime_cfg *cfg);

/*! bundle_write_file() :
 *  Replace `dir`/`name` with `len` bytes through a temporary file and a
 *  rename (readers never see half a file). Not fsynced: bundles live on
 *  tmpfs (/run) and do not outlive a reboot anyway.
 * @return : 0 or -errno. */
int bundle_write_file(const char *dir, const char *name, const void *data, size_t len, mode_t mode);

/* ---- cgroup.c ---- */

/*! cgroup_stats() : io.containerd.cgroups.v1/v2 Metrics of `pid`'s cgroup as an Any. */
int cgroup_stats(pid_t pid, char **ret_type_url, uint8_t **ret_buf, size_t *ret_len);
/*! oom_watch_start() : publish /tasks/oom when `pid`'s cgroup sees an OOM kill. */
int oom_watch_start(struct shim *s, struct container *c, pid_t pid);
void oom_watch_stop(struct shim *s, struct container *c);

/* ---- helpers ---- */
uint64_t now_ns(void);
void set_timestamp(Ctd__Timestamp *ts, uint64_t ns);

#endif
