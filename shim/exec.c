/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `stoke exec`: a new process in a running container's namespaces and
 * cgroup. The pid and time namespaces apply to children only, so the
 * parent joins them (pid_for_children) before the one clone; the child joins
 * the rest, user namespace first.
 */
#include "container.h"
#include "errbuf.h"
#include "cgroup.h"
#include "join.h"
#include "process.h"
#include "seccomp.h"
#include "sync.h"

#include "cleanup.h"
#include "fd-util.h"
#include "path-util.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

struct exec_ctx {
	const struct shim_config *cfg;
	const struct shim_process *p;
	const struct shim_exec_opts *o;
	const struct shim_seccomp_filter *filter;
	int ns_fd[SHIM_NS_COUNT]; /* -1: same as ours, or not a namespace of the container */
	int self_pidns, self_timens; /* the runtime's own, to go back after the clone */
	int sync_parent, sync_child;
	int console_fd;
	struct shim_join join;
};

static _Noreturn void child_fail(int sync, int r, const char *msg)
{
	(void) shim_sync_send_error(sync, r, msg);
	_exit(1);
}

static _Noreturn void exec_child(struct exec_ctx *c)
{
	int sync = c->sync_child, r, listener = -1;
	char err[400], exe[PATH_MAX];
	struct shim_sync_msg m;

	close(c->sync_parent);
	shim_process_reset_signals();
	(void) prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (setsid() < 0)
		child_fail(sync, -errno, "setsid");
	r = shim_sync_recv(sync, &m, NULL);
	if (r < 0 || m.type != SHIM_SYNC_GO)
		_exit(1);
	r = shim_join_self(&c->join);
	if (r < 0)
		child_fail(sync, r, "join the container's cgroup");
	/* The cgroup directory fd (CLONE_INTO_CGROUP) is a host directory. */
	shim_join_done(&c->join);

	/* User namespace first: it gives the capabilities the other joins need. */
	static const int order[] = {SHIM_NS_USER, SHIM_NS_MOUNT, SHIM_NS_NET,
				    SHIM_NS_IPC,  SHIM_NS_UTS,	 SHIM_NS_CGROUP};
	for (size_t i = 0; i < ELEMENTSOF(order); i++) {
		int t = order[i];
		if (c->ns_fd[t] < 0)
			continue;
		if (setns(c->ns_fd[t], shim_ns_clone_flag(t)) < 0) {
			snprintf(err, sizeof(err), "join the container's %s namespace",
				 shim_ns_name(t));
			child_fail(sync, -errno, err);
		}
	}
	if (c->ns_fd[SHIM_NS_USER] >= 0 && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
		child_fail(sync, -errno, "become root in the container's user namespace");
	/* The container's namespaces (joined above, pid and time by the parent)
	 * and the runtime's own: none may reach the process, even when the
	 * caller's --preserve-fds range has a hole that one of them filled. */
	for (int t = 0; t < SHIM_NS_COUNT; t++)
		if (c->ns_fd[t] >= 0)
			close(c->ns_fd[t]);
	if (c->self_pidns >= 0)
		close(c->self_pidns);
	if (c->self_timens >= 0)
		close(c->self_timens);
	if (!c->cfg->ns[SHIM_NS_MOUNT].enabled && (chroot(c->cfg->rootfs) < 0 || chdir("/") < 0))
		child_fail(sync, -errno, "chroot into the rootfs");

	r = shim_process_apply_early(c->p, err, sizeof(err));
	if (r < 0)
		child_fail(sync, r, err);
	if (c->p->terminal) {
		r = shim_process_setup_terminal(c->p, c->console_fd, false, err, sizeof(err));
		if (r < 0)
			child_fail(sync, r, err);
	}
	if (c->console_fd >= 0)
		close(c->console_fd);
	/* No host fd (namespace fds, the cgroup directory, whatever the caller
	 * leaked) may reach the cwd's resolution (CVE-2024-21626). */
	r = shim_process_close_fds(c->o->preserve_fds, &sync, 1);
	if (r < 0)
		child_fail(sync, r, "close the runtime's descriptors");

	/* The cwd as root, before the user switch and seccomp (as create and
	 * runc); only a cwd root may not enter (EACCES: an unmapped owner, a
	 * root-squashing mount) is tried again as the user. */
	r = shim_process_chdir(c->p->cwd, err, sizeof(err));
	bool chdir_as_user = r == -EACCES;
	if (r < 0 && !chdir_as_user)
		child_fail(sync, r, err);
	r = shim_process_apply_identity(c->p, c->filter, &listener, err, sizeof(err));
	if (r < 0)
		child_fail(sync, r, err);
	if (listener >= 0) {
		struct shim_sync_msg lm = {.type = SHIM_SYNC_LISTENER};
		r = cs_send_fd(sync, listener, &lm, sizeof(lm));
		close(listener);
		if (r < 0 || shim_sync_recv(sync, &m, NULL) < 0 ||
		    m.type != SHIM_SYNC_LISTENER_DONE)
			_exit(1);
	}
	if (chdir_as_user) {
		r = shim_process_chdir(c->p->cwd, err, sizeof(err));
		if (r < 0)
			child_fail(sync, r, err);
	}
	r = shim_process_find_exec(c->p, exe);
	if (r < 0) {
		snprintf(err, sizeof(err), "exec: \"%s\": %s", c->p->args[0],
			 r == -ENOENT ? "executable file not found in $PATH" : strerror(-r));
		child_fail(sync, r, err);
	}
	(void) prctl(PR_SET_PDEATHSIG, 0);
	if (shim_sync_send(sync, SHIM_SYNC_READY, 0) < 0)
		_exit(1);
	r = shim_process_exec(c->p, exe);
	dprintf(2, "stoke: exec %s: %s\n", exe, strerror(-r));
	_exit(127);
}

/* The container's namespace `t` as an fd, or -1 when it is the one we are in. */
static int open_ns(pid_t pid, enum shim_ns_type t, int *ret)
{
	char path[64], self[64];
	struct stat a, b;
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int) pid, shim_ns_proc_name(t));
	snprintf(self, sizeof(self), "/proc/self/ns/%s", shim_ns_proc_name(t));
	if (stat(path, &a) < 0)
		return -errno;
	if (stat(self, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
		*ret = -1;
		return 0;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*ret = fd;
	return 0;
}

int shim_container_exec(const char *root, const struct shim_state *s, const struct shim_config *cfg,
			const struct shim_process *p, const struct shim_exec_opts *o,
			pid_t *ret_pid, char *err, size_t errlen)
{
	struct exec_ctx c = {
		.cfg = cfg, .p = p, .o = o, .console_fd = -1, .self_pidns = -1, .self_timens = -1};
	_cleanup_(shim_cgroup_freep) struct shim_cgroup *cg = NULL;
	struct shim_seccomp_filter *filter = NULL;
	int sv[2] = {-1, -1}, r;
	pid_t child = -1;

	for (int t = 0; t < SHIM_NS_COUNT; t++)
		c.ns_fd[t] = -1;
	c.join.v2_fd = -1;
	if (p->terminal && !o->console_socket && o->console_fd < 0)
		return cs_errf_errno(-EINVAL, err, errlen,
				     "process.terminal is true but no --console-socket was given");

	for (int t = 0; t < SHIM_NS_COUNT; t++) {
		if (!cfg->ns[t].enabled)
			continue;
		r = open_ns(s->pid, t, &c.ns_fd[t]);
		if (r < 0) {
			cs_errf_errno(r, err, errlen, "open the container's %s namespace",
				      shim_ns_name(t));
			goto out;
		}
	}
	if (s->cgroup && (r = shim_cgroup_from_json(s->cgroup, &cg)) < 0) {
		cs_errf_errno(r, err, errlen, "read the container's cgroup");
		goto out;
	}
	if (cfg->seccomp) {
		_cleanup_free_ char *cache = NULL;
		r = cs_path_join(root, ".seccomp-cache", &cache);
		if (r >= 0)
			r = shim_seccomp_prepare(cfg->seccomp, cache, &filter);
		if (r < 0) {
			cs_errf_errno(r, err, errlen, "linux.seccomp: compile the profile");
			goto out;
		}
		c.filter = filter;
	}
	if (p->terminal) {
		if (o->console_fd >= 0) {
			c.console_fd = fcntl(o->console_fd, F_DUPFD_CLOEXEC, 3);
			r = c.console_fd < 0 ? -errno : 0;
		} else {
			r = cs_unix_connect(o->console_socket, &c.console_fd);
		}
		if (r < 0) {
			cs_errf_errno(r, err, errlen, "connect to the console socket");
			goto out;
		}
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		r = cs_errf_errno(-errno, err, errlen, "socketpair");
		goto out;
	}
	c.sync_parent = sv[0];
	c.sync_child = sv[1];

	/* pid and time namespaces: for our children only, and only for this clone. */
	if (c.ns_fd[SHIM_NS_PID] >= 0) {
		c.self_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
		if (setns(c.ns_fd[SHIM_NS_PID], CLONE_NEWPID) < 0) {
			r = cs_errf_errno(-errno, err, errlen,
					  "join the container's pid namespace");
			goto out;
		}
	}
	if (c.ns_fd[SHIM_NS_TIME] >= 0) {
		c.self_timens = open("/proc/self/ns/time", O_RDONLY | O_CLOEXEC);
		if (setns(c.ns_fd[SHIM_NS_TIME], CLONE_NEWTIME) < 0) {
			r = cs_errf_errno(-errno, err, errlen,
					  "join the container's time namespace");
			goto out;
		}
	}
	r = shim_join_prepare(cg, &c.join);
	if (r < 0) {
		cs_errf_errno(r, err, errlen, "open the container's cgroup");
		goto out;
	}
	child = shim_join_clone(&c.join, 0);
	if (child < 0) {
		r = cs_errf_errno(child, err, errlen, "clone");
		goto out;
	}
	if (child == 0)
		exec_child(&c);
	close(sv[1]);
	sv[1] = -1;
	if (c.self_pidns >= 0)
		(void) setns(c.self_pidns, CLONE_NEWPID);
	if (c.self_timens >= 0)
		(void) setns(c.self_timens, CLONE_NEWTIME);

	if ((r = shim_join_parent(&c.join, child)) < 0) {
		cs_errf_errno(r, err, errlen, "move the process into the container's cgroup");
		goto out_kill;
	}
	r = shim_sync_send(sv[0], SHIM_SYNC_GO, child);
	if (r < 0)
		goto out_kill;
	for (;;) {
		struct shim_sync_msg m;
		int fd = -1;
		r = shim_sync_recv(sv[0], &m, &fd);
		if (r == -EPIPE) {
			r = cs_errf_errno(-ECHILD, err, errlen, "the process exited during set-up");
			goto out_kill;
		}
		if (r < 0)
			goto out_kill;
		if (m.type == SHIM_SYNC_ERROR) {
			/* Child messages usually end with the reason already. */
			if (m.err && !strstr(m.msg, strerror(m.err)))
				snprintf(err, errlen, "%s: %s", m.msg, strerror(m.err));
			else
				snprintf(err, errlen, "%s", m.msg);
			r = -(m.err ? m.err : EIO);
			goto out_kill;
		}
		if (m.type == SHIM_SYNC_LISTENER) {
			json_object *st = NULL;
			if (fd >= 0 && shim_state_oci_json(s, SHIM_STATUS_RUNNING, &st) == 0)
				r = shim_seccomp_send_listener(filter, fd,
							       json_object_to_json_string(st));
			else
				r = -EBADMSG;
			json_object_put(st);
			if (fd >= 0)
				close(fd);
			if (r < 0) {
				cs_errf_errno(r, err, errlen,
					      "linux.seccomp.listenerPath: send the notify fd");
				goto out_kill;
			}
			(void) shim_sync_send(sv[0], SHIM_SYNC_LISTENER_DONE, 0);
			continue;
		}
		if (m.type == SHIM_SYNC_READY)
			break;
		r = cs_errf_errno(-EPROTO, err, errlen, "unexpected message %u", m.type);
		goto out_kill;
	}
	if (o->pid_file) {
		char buf[16], tmp[PATH_MAX];
		int n = snprintf(buf, sizeof(buf), "%d", (int) child);
		snprintf(tmp, sizeof(tmp), "%s.%d.tmp", o->pid_file, (int) getpid());
		_cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || cs_write_all(fd, buf, (size_t) n) < 0 ||
		    rename(tmp, o->pid_file) < 0) {
			r = cs_errf_errno(-errno, err, errlen, "write the pid file %s",
					  o->pid_file);
			(void) unlink(tmp);
			goto out_kill;
		}
	}
	*ret_pid = child;
	r = 0;
	goto out;

out_kill:
	(void) kill(child, SIGKILL);
	(void) waitpid(child, NULL, 0);
out:
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	if (c.console_fd >= 0)
		close(c.console_fd);
	if (c.self_pidns >= 0)
		close(c.self_pidns);
	if (c.self_timens >= 0)
		close(c.self_timens);
	for (int t = 0; t < SHIM_NS_COUNT; t++)
		if (c.ns_fd[t] >= 0)
			close(c.ns_fd[t]);
	shim_join_done(&c.join);
	shim_seccomp_filter_free(filter);
	return r;
}
