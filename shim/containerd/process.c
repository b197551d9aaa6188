/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Containers and their processes, and what happens when one exits:
 * TaskExit is published and parked Waits are answered, for an init only after
 * every exec of the container has exited (containerd's order), and when the
 * container shares the host's pid namespace its leftovers are killed first.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "cleanup.h"
#include "log.h"
#include "shim.h"

uint32_t proc_exit_status(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return 255;
}

struct container *container_find(struct shim *s, const char *id)
{
	for (struct container *c = s->containers; c; c = c->next)
		if (strcmp(c->id, id) == 0)
			return c;
	return NULL;
}

struct process *process_find(struct container *c, const char *exec_id)
{
	if (!exec_id || !*exec_id)
		return &c->init;
	for (struct process *p = c->execs; p; p = p->next)
		if (strcmp(p->exec_id, exec_id) == 0)
			return p;
	return NULL;
}

struct process *process_by_pid(struct shim *s, pid_t pid)
{
	for (struct container *c = s->containers; c; c = c->next) {
		if (c->init.pid == pid && !c->init.exited)
			return &c->init;
		for (struct process *p = c->execs; p; p = p->next)
			if (p->pid == pid && !p->exited)
				return p;
	}
	return NULL;
}

bool process_running_execs(struct container *c)
{
	for (struct process *p = c->execs; p; p = p->next)
		if (p->pid > 0 && !p->exited)
			return true;
	return false;
}

void process_add_waiter(struct process *p, struct conn *conn, uint32_t stream_id)
{
	struct waiter *w = calloc(1, sizeof(*w));

	if (!w)
		return;
	w->conn = conn;
	w->stream_id = stream_id;
	w->next = p->waiters;
	p->waiters = w;
}

static void drop_waiters(struct process *p, struct conn *conn)
{
	struct waiter **pp = &p->waiters;

	while (*pp) {
		struct waiter *w = *pp;
		if (!conn || w->conn == conn) {
			*pp = w->next;
			free(w);
		} else {
			pp = &w->next;
		}
	}
}

void process_drop_waiters_of(struct shim *s, struct conn *conn)
{
	for (struct container *c = s->containers; c; c = c->next) {
		drop_waiters(&c->init, conn);
		for (struct process *p = c->execs; p; p = p->next)
			drop_waiters(p, conn);
	}
}

/* Answer every parked Wait of `p` with its exit. */
void process_answer_waiters(struct shim *s, struct process *p)
{
	Ctd__WaitResponse resp = CTD__WAIT_RESPONSE__INIT;
	Ctd__Timestamp ts = CTD__TIMESTAMP__INIT;

	set_timestamp(&ts, p->exited_ns);
	resp.exit_status = p->exit_status;
	resp.exited_at = &ts;
	while (p->waiters) {
		struct waiter *w = p->waiters;
		p->waiters = w->next;
		conn_reply_msg(s, w->conn, w->stream_id, &resp.base);
		free(w);
	}
}

static void publish_exit(struct shim *s, struct process *p)
{
	Ctd__TaskExit ev = CTD__TASK_EXIT__INIT;
	Ctd__Timestamp ts = CTD__TIMESTAMP__INIT;

	p->state = PROC_STOPPED;
	p->exit_published = true;
	set_timestamp(&ts, p->exited_ns);
	ev.container_id = p->c->id;
	ev.id = p->exec_id ? p->exec_id : p->c->id;
	ev.pid = p->pid;
	ev.exit_status = p->exit_status;
	ev.exited_at = &ts;
	publish_event(s, "/tasks/exit", "containerd.events.TaskExit", &ev.base);
	process_answer_waiters(s, p);
}

static void init_exited(struct shim *s, struct container *c)
{
	if (!c->own_pidns) {
		/* Sharing a pid namespace, nothing else kills what it left behind. */
		const char *args[] = {"kill", "--all", c->id, "9", NULL};
		struct runtime_call call = {.args = args, .stdio = {-1, -1, -1}};
		char err[256];
		(void) runtime_run(s, c, &call, NULL, err, sizeof(err));
	}
	if (process_running_execs(c))
		return; /* published after the last exec's exit */
	publish_exit(s, &c->init);
}

static void process_exited(struct shim *s, struct process *p)
{
	struct container *c = p->c;

	if (!p->exec_id) {
		init_exited(s, c);
		return;
	}
	publish_exit(s, p);
	if (c->init.exited && !c->init.exit_published && !process_running_execs(c))
		publish_exit(s, &c->init);
}

void process_exits_run(struct shim *s)
{
	while (s->n_pending) {
		struct exit_rec r = s->pending[0];
		struct process *p;

		memmove(s->pending, s->pending + 1, (s->n_pending - 1) * sizeof(r));
		s->n_pending--;
		p = process_by_pid(s, r.pid);
		if (!p)
			continue;
		p->exited = true;
		p->exit_status = proc_exit_status(r.status);
		p->exited_ns = r.when_ns;
		log_debug("pid %d (%s) exited with %u", r.pid, p->exec_id ? p->exec_id : p->c->id,
			  p->exit_status);
		process_exited(s, p);
	}
}

void process_free(struct process *p)
{
	drop_waiters(p, NULL);
	free(p->exec_id);
	free(p->stdin_path);
	free(p->stdout_path);
	free(p->stderr_path);
	free(p->spec_json);
}

void container_free(struct container *c)
{
	if (!c)
		return;
	process_free(&c->init);
	while (c->execs) {
		struct process *p = c->execs;
		c->execs = p->next;
		process_free(p);
		free(p);
	}
	free(c->id);
	free(c->bundle);
	free(c->rootfs);
	runtime_cfg_done(&c->rt);
	free(c);
}

void container_unlink(struct shim *s, struct container *c)
{
	for (struct container **pp = &s->containers; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			return;
		}
}
