/* SPDX-License-Identifier: Apache-2.0 */
#include "hooks.h"

#include "cleanup.h"
#include "fd-util.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static int run_one(const struct shim_hook *h, const char *state_json)
{
	int sv[2];
	/* A socket, not a pipe: send(MSG_NOSIGNAL) never raises SIGPIPE when a
	 * hook does not read its stdin. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		return -e;
	}
	if (pid == 0) {
		char *argv_default[] = {h->path, NULL};
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		if (dup2(sv[1], 0) < 0)
			_exit(127);
		/* As runc: a hook without "env" gets the runtime's environment;
		 * one with "env" (even []) exactly that. */
		execve(h->path, h->args && h->args[0] ? h->args : argv_default,
		       h->env ? h->env : environ);
		dprintf(2, "stoke: hook %s: %s\n", h->path, strerror(errno));
		_exit(127);
	}
	close(sv[1]);
	const char *p = state_json;
	size_t left = strlen(state_json);
	while (left) {
		ssize_t n = send(sv[0], p, left, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* the hook closed its stdin: fine */
		p += n;
		left -= (size_t) n;
	}
	close(sv[0]);

	int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
	if (h->timeout > 0 && pidfd >= 0) {
		struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
		int n;
		do
			n = poll(&pfd, 1, h->timeout * 1000);
		while (n < 0 && errno == EINTR);
		if (n == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			close(pidfd);
			return -ETIMEDOUT;
		}
	}
	if (pidfd >= 0)
		close(pidfd);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	return WIFEXITED(status) ? -(1000 + WEXITSTATUS(status)) : -(2000 + WTERMSIG(status));
}

static void describe(const struct shim_hook_list *l, enum shim_hook_kind kind, size_t i, int r,
		     char *err, size_t errlen)
{
	const char *name = shim_hook_kind_name(kind);
	if (r <= -2000)
		snprintf(err, errlen, "hooks.%s[%zu] %s: killed by signal %d", name, i,
			 l->v[i].path, -r - 2000);
	else if (r <= -1000)
		snprintf(err, errlen, "hooks.%s[%zu] %s: exited with status %d", name, i,
			 l->v[i].path, -r - 1000);
	else if (r == -ETIMEDOUT)
		snprintf(err, errlen, "hooks.%s[%zu] %s: timed out after %d s", name, i,
			 l->v[i].path, l->v[i].timeout);
	else
		snprintf(err, errlen, "hooks.%s[%zu] %s: %s", name, i, l->v[i].path, strerror(-r));
}

int shim_hooks_run(const struct shim_config *cfg, enum shim_hook_kind kind, const char *state_json,
		   char *err, size_t errlen)
{
	const struct shim_hook_list *l = &cfg->hooks[kind];
	/* The spec: a failing poststop hook is a warning; the rest still run.
	 * A failing poststart hook stops here: its caller fails the start (runc). */
	bool keep_going = kind == SHIM_HOOK_POSTSTOP;
	int first = 0;
	for (size_t i = 0; i < l->n; i++) {
		int r = run_one(&l->v[i], state_json);
		if (r == 0)
			continue;
		if (first == 0) {
			describe(l, kind, i, r, err, errlen);
			first = r <= -1000 ? -EIO : r;
		}
		if (!keep_going)
			break;
	}
	return first;
}
