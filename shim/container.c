/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The create path: parent side (cgroup, seccomp BPF, clone, maps, hooks,
 * state) and the container init's set-up after clone (see container.h).
 */
#include "container.h"
#include "errbuf.h"
#include "cgroup.h"
#include "hooks.h"
#include "join.h"
#include "process.h"
#include "seccomp.h"
#include "sync.h"

#include "cleanup.h"
#include "fd-util.h"
#include "json-util.h"
#include "path-util.h"
#include "time-util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXEC_FIFO		    "exec.fifo"
#define KEYCTL_JOIN_SESSION_KEYRING 1

struct create_ctx {
	const struct shim_config *cfg;
	const struct shim_create_opts *o;
	struct shim_cgroup *cg;
	struct shim_seccomp_filter *filter;
	int sync_parent, sync_child;
	int fifo_fd;
	int console_fd;
	bool slow; /* namespaces joined by path, or a time namespace: setns/unshare + fork */
	struct shim_join join; /* how the init gets into its cgroup (join.h) */
	pid_t host_pid;
};

/* ---- the child -------------------------------------------------------- */

static _Noreturn void child_fail(int sync, int r, const char *msg)
{
	(void) shim_sync_send_error(sync, r, msg);
	_exit(1);
}

static int recv_expect(int sync, uint32_t type, struct shim_sync_msg *m)
{
	int r = shim_sync_recv(sync, m, NULL);
	if (r < 0)
		return r;
	if (m->type == SHIM_SYNC_ERROR)
		return -(m->err ? m->err : EIO);
	return m->type == type ? 0 : -EPROTO;
}

/* Our pid as the runtime's pid namespace sees it (first NSpid entry of the host /proc). */
static pid_t host_pid_from_proc(void)
{
	char line[256];
	pid_t pid = 0;
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "NSpid: %d", &pid) == 1)
			break;
	fclose(f);
	return pid;
}

static char *child_state_json(const struct create_ctx *c, const char *status)
{
	struct shim_state s = {
		.id = (char *) c->o->id,
		.bundle = c->cfg->bundle,
		.rootfs = c->cfg->rootfs,
		.pid = c->host_pid,
		.annotations = c->cfg->annotations,
	};
	json_object *o;
	if (shim_state_oci_json(&s, SHIM_STATUS_CREATED, &o) < 0)
		return NULL;
	json_object_object_add(o, "status", json_object_new_string(status));
	char *text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return text;
}

static int write_time_offsets(const struct shim_config *cfg)
{
	char buf[128];
	int n = snprintf(buf, sizeof(buf), "monotonic %lld %u\nboottime %lld %u\n",
			 (long long) cfg->monotonic_secs, cfg->monotonic_nsecs,
			 (long long) cfg->boottime_secs, cfg->boottime_nsecs);
	_cleanup_close_ int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return cs_write_all(fd, buf, (size_t) n);
}

/*
 * Slow path: join the namespaces given by path and create the others with
 * unshare(), in the order the kernel needs (a joined user namespace first,
 * so the rest are owned by it; a new one after the joins, which need the
 * runtime's privileges). A pid or time namespace only applies to children:
 * fork once; the middle process reports the init's pid and exits.
 */
/* Whether `path` is the namespace of type `t` we are already in (joining our
 * own user namespace is an error; joining any other of our own is a no-op). */
static bool is_own_ns(const char *path, enum shim_ns_type t)
{
	char self[64];
	struct stat a, b;
	snprintf(self, sizeof(self), "/proc/self/ns/%s", shim_ns_proc_name(t));
	return stat(path, &a) == 0 && stat(self, &b) == 0 && a.st_ino == b.st_ino &&
	       a.st_dev == b.st_dev;
}

static void child_slow_namespaces(struct create_ctx *c)
{
	const struct shim_config *cfg = c->cfg;
	int sync = c->sync_child, r;
	char msg[256];
	struct shim_sync_msg m;

	if (cfg->ns[SHIM_NS_USER].enabled && cfg->ns[SHIM_NS_USER].path &&
	    !is_own_ns(cfg->ns[SHIM_NS_USER].path, SHIM_NS_USER)) {
		_cleanup_close_ int fd = open(cfg->ns[SHIM_NS_USER].path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWUSER) < 0) {
			snprintf(msg, sizeof(msg), "join the user namespace %s",
				 cfg->ns[SHIM_NS_USER].path);
			child_fail(sync, -errno, msg);
		}
	}
	for (int t = SHIM_NS_MOUNT; t < SHIM_NS_COUNT; t++) {
		if (!cfg->ns[t].enabled || !cfg->ns[t].path || is_own_ns(cfg->ns[t].path, t))
			continue;
		_cleanup_close_ int fd = open(cfg->ns[t].path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, shim_ns_clone_flag(t)) < 0) {
			snprintf(msg, sizeof(msg), "join the %s namespace %s", shim_ns_name(t),
				 cfg->ns[t].path);
			child_fail(sync, -errno, msg);
		}
	}
	if (cfg->ns[SHIM_NS_USER].enabled && !cfg->ns[SHIM_NS_USER].path) {
		if (unshare(CLONE_NEWUSER) < 0)
			child_fail(sync, -errno, "create the user namespace");
		if (shim_sync_send(sync, SHIM_SYNC_MAPS_REQ, getpid()) < 0 ||
		    recv_expect(sync, SHIM_SYNC_MAPS_DONE, &m) < 0)
			_exit(1);
	}
	int flags = 0;
	for (int t = SHIM_NS_MOUNT; t < SHIM_NS_COUNT; t++)
		if (cfg->ns[t].enabled && !cfg->ns[t].path)
			flags |= shim_ns_clone_flag(t);
	if (flags && unshare(flags) < 0)
		child_fail(sync, -errno, "create the namespaces");
	if (cfg->has_time_offsets && (r = write_time_offsets(cfg)) < 0)
		child_fail(sync, r, "linux.timeOffsets: write /proc/self/timens_offsets");

	if (!cfg->ns[SHIM_NS_PID].enabled && !cfg->ns[SHIM_NS_TIME].enabled)
		return;
	pid_t pid = fork();
	if (pid < 0)
		child_fail(sync, -errno, "fork into the pid namespace");
	if (pid > 0) {
		(void) shim_sync_send(sync, SHIM_SYNC_PID, pid);
		_exit(0);
	}
	/* No parent-death signal here: the middle process exits on purpose. If
	 * the runtime dies instead, the sync socket reads EOF and we exit. */
	c->host_pid = host_pid_from_proc();
}

static int set_names(const struct shim_config *cfg, char *err, size_t errlen)
{
	if (cfg->hostname && *cfg->hostname &&
	    sethostname(cfg->hostname, strlen(cfg->hostname)) < 0)
		return cs_errf_errno(-errno, err, errlen, "hostname \"%s\"", cfg->hostname);
	if (cfg->domainname && *cfg->domainname &&
	    setdomainname(cfg->domainname, strlen(cfg->domainname)) < 0)
		return cs_errf_errno(-errno, err, errlen, "domainname \"%s\"", cfg->domainname);
	return 0;
}

/* A new network namespace starts with lo down; runc brings it up, and
 * programs expect 127.0.0.1 to work. Joined namespaces are the owner's. */
static int bring_up_lo(char *err, size_t errlen)
{
	struct ifreq ifr = {0};
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return cs_errf_errno(-errno, err, errlen, "bring up lo: socket");
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return cs_errf_errno(-errno, err, errlen, "bring up lo: get its flags");
	if (ifr.ifr_flags & IFF_UP)
		return 0;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		return cs_errf_errno(-errno, err, errlen, "bring up lo: set IFF_UP");
	return 0;
}

static bool has_dev_tmpfs(const struct shim_config *cfg)
{
	for (size_t i = 0; i < cfg->n_mounts; i++)
		if (strcmp(cfg->mounts[i].destination, "/dev") == 0)
			return !cfg->mounts[i].bind;
	return false;
}

static _Noreturn void child_main(struct create_ctx *c)
{
	const struct shim_config *cfg = c->cfg;
	const struct shim_process *p = &cfg->process;
	int sync = c->sync_child, r, listener = -1;
	char err[400], exe[PATH_MAX];
	struct shim_sync_msg m;

	close(c->sync_parent);
	shim_process_reset_signals();
	(void) prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (setsid() < 0)
		child_fail(sync, -errno, "setsid");

	if (recv_expect(sync, SHIM_SYNC_GO, &m) < 0)
		_exit(1);
	c->host_pid = (pid_t) m.value;
	/* First, while our credentials are still the runtime's: the v1 cgroups. */
	r = shim_join_self(&c->join);
	if (r < 0)
		child_fail(sync, r, "join the container's cgroup");
	/* The cgroup directory fd (CLONE_INTO_CGROUP) is a host directory. */
	shim_join_done(&c->join);
	if (c->slow)
		child_slow_namespaces(c);
	if (cfg->ns[SHIM_NS_USER].enabled) {
		/* Be root in the new user namespace (as the maps say). */
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
			child_fail(sync, -errno,
				   "become root in the user namespace (uid/gid 0 must be mapped)");
	}
	if (!c->slow && cfg->ns[SHIM_NS_CGROUP].enabled && !cfg->ns[SHIM_NS_CGROUP].path &&
	    unshare(CLONE_NEWCGROUP) < 0)
		child_fail(sync, -errno, "create the cgroup namespace");
	if (!c->o->no_new_keyring)
		(void) syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, c->o->id);

	r = shim_process_apply_early(p, err, sizeof(err));
	if (r < 0)
		child_fail(sync, r, err);
	if (cfg->ns[SHIM_NS_NET].enabled && !cfg->ns[SHIM_NS_NET].path) {
		r = bring_up_lo(err, sizeof(err));
		if (r < 0)
			child_fail(sync, r, err);
	}

	if (cfg->ns[SHIM_NS_MOUNT].enabled) {
		struct shim_rootfs_opts ro = {
			.cgroup = c->cg,
			.userns = cfg->ns[SHIM_NS_USER].enabled,
			.new_cgroupns =
				cfg->ns[SHIM_NS_CGROUP].enabled && !cfg->ns[SHIM_NS_CGROUP].path,
		};
		r = shim_rootfs_prepare(cfg, &ro, err, sizeof(err));
		if (r < 0)
			child_fail(sync, r, err);
	}

	if (cfg->hooks[SHIM_HOOK_PRESTART].n || cfg->hooks[SHIM_HOOK_CREATE_RUNTIME].n) {
		if (shim_sync_send(sync, SHIM_SYNC_HOOKS_REQ, 0) < 0 ||
		    recv_expect(sync, SHIM_SYNC_HOOKS_DONE, &m) < 0)
			_exit(1);
	}
	if (cfg->hooks[SHIM_HOOK_CREATE_CONTAINER].n) {
		_cleanup_free_ char *st = child_state_json(c, "creating");
		if (!st)
			child_fail(sync, -ENOMEM, "state for hooks");
		r = shim_hooks_run(cfg, SHIM_HOOK_CREATE_CONTAINER, st, err, sizeof(err));
		if (r < 0)
			child_fail(sync, r, err);
	}

	if (cfg->ns[SHIM_NS_MOUNT].enabled) {
		r = shim_rootfs_finish(cfg, c->o->no_pivot, err, sizeof(err));
		if (r < 0)
			child_fail(sync, r, err);
	} else if (chroot(cfg->rootfs) < 0 || chdir("/") < 0) {
		child_fail(sync, -errno, "chroot into the rootfs");
	}
	r = set_names(cfg, err, sizeof(err));
	if (r < 0)
		child_fail(sync, r, err);
	if (cfg->has_personality && personality(cfg->personality) < 0)
		child_fail(sync, -errno, "linux.personality");

	if (p->terminal) {
		r = shim_process_setup_terminal(p, c->console_fd, has_dev_tmpfs(cfg), err,
						sizeof(err));
		if (r < 0)
			child_fail(sync, r, err);
	}
	if (c->console_fd >= 0)
		close(c->console_fd);
	/* No host fd may reach the cwd's resolution (CVE-2024-21626): only
	 * stdio, --preserve-fds and our two non-directory fds stay. */
	int keep[] = {sync, c->fifo_fd};
	r = shim_process_close_fds(c->o->preserve_fds, keep, ELEMENTSOF(keep));
	if (r < 0)
		child_fail(sync, r, "close the runtime's descriptors");
	/* runc creates a missing cwd (as root, before the user switch). */
	(void) shim_process_mkdir_cwd(p->cwd);
	/* Entered as root, as runc does: a cwd only root may enter (/root with
	 * user 1000) works, and a seccomp profile that denies chdir does not
	 * apply yet. Only a cwd that root may not enter (EACCES: an unmapped
	 * owner, root-squashed NFS) is tried again as the user. */
	r = shim_process_chdir(p->cwd, err, sizeof(err));
	bool chdir_as_user = r == -EACCES;
	if (r < 0 && !chdir_as_user)
		child_fail(sync, r, err);

	r = shim_process_apply_identity(p, c->filter, &listener, err, sizeof(err));
	if (r < 0)
		child_fail(sync, r, err);
	if (listener >= 0) {
		struct shim_sync_msg lm = {.type = SHIM_SYNC_LISTENER};
		r = cs_send_fd(sync, listener, &lm, sizeof(lm));
		close(listener);
		if (r < 0 || recv_expect(sync, SHIM_SYNC_LISTENER_DONE, &m) < 0)
			_exit(1);
	}
	if (chdir_as_user) {
		r = shim_process_chdir(p->cwd, err, sizeof(err));
		if (r < 0)
			child_fail(sync, r, err);
	}
	r = shim_process_find_exec(p, exe);
	if (r < 0) {
		snprintf(err, sizeof(err), "exec: \"%s\": %s", p->args[0],
			 r == -ENOENT ? "executable file not found in $PATH" : strerror(-r));
		child_fail(sync, r, err);
	}

	/* create exits once READY arrives: its death must not kill us. */
	(void) prctl(PR_SET_PDEATHSIG, 0);
	if (shim_sync_send(sync, SHIM_SYNC_READY, 0) < 0)
		_exit(1);
	if (c->fifo_fd >= 0) {
		char b;
		ssize_t n;
		do
			n = read(c->fifo_fd, &b, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1)
			_exit(1);
		close(c->fifo_fd);
	}
	if (cfg->hooks[SHIM_HOOK_START_CONTAINER].n) {
		_cleanup_free_ char *st = child_state_json(c, "created");
		r = st ? shim_hooks_run(cfg, SHIM_HOOK_START_CONTAINER, st, err, sizeof(err))
		       : -ENOMEM;
		if (r < 0) {
			dprintf(2, "stoke: %s\n", err);
			_exit(1);
		}
	}
	r = shim_process_exec(p, exe);
	dprintf(2, "stoke: exec %s: %s\n", exe, strerror(-r));
	_exit(127);
}

/* ---- the parent ------------------------------------------------------- */

static int write_maps(const struct shim_config *cfg, pid_t pid, char *err, size_t errlen)
{
	int r = shim_write_id_map(pid, "uid_map", cfg->uid_mappings, cfg->n_uid_mappings);
	if (r < 0)
		return cs_errf_errno(r, err, errlen, "linux.uidMappings: write /proc/%d/uid_map",
				     (int) pid);
	r = shim_write_id_map(pid, "gid_map", cfg->gid_mappings, cfg->n_gid_mappings);
	if (r < 0)
		return cs_errf_errno(r, err, errlen, "linux.gidMappings: write /proc/%d/gid_map",
				     (int) pid);
	return 0;
}

static void rfc3339_now(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char base[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%09ldZ", base, ts.tv_nsec);
}

static int write_pid_file(const char *path, pid_t pid)
{
	char buf[16], tmp[PATH_MAX];
	int n = snprintf(buf, sizeof(buf), "%d", (int) pid);
	if ((size_t) snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int) getpid()) >= sizeof(tmp))
		return -ENAMETOOLONG;
	_cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int r = cs_write_all(fd, buf, (size_t) n);
	if (r >= 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		(void) unlink(tmp);
	return r;
}

static char *parent_state_json(const struct shim_config *cfg, const char *id, pid_t pid,
			       const char *status)
{
	struct shim_state s = {
		.id = (char *) id,
		.bundle = cfg->bundle,
		.rootfs = cfg->rootfs,
		.pid = pid,
		.annotations = cfg->annotations,
	};
	json_object *o;
	if (shim_state_oci_json(&s, SHIM_STATUS_CREATED, &o) < 0)
		return NULL;
	json_object_object_add(o, "status", json_object_new_string(status));
	char *text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return text;
}

/* Serve the child's requests until READY. *init_pid is the container's init. */
static int parent_loop(struct create_ctx *c, pid_t child, pid_t *init_pid, char *err, size_t errlen)
{
	const struct shim_config *cfg = c->cfg;
	struct shim_sync_msg m;
	int r, fd = -1;

	for (;;) {
		r = shim_sync_recv(c->sync_parent, &m, &fd);
		if (r == -EPIPE)
			return cs_errf_errno(-ECHILD, err, errlen,
					     "the container's init exited during set-up");
		if (r < 0)
			return cs_errf_errno(r, err, errlen, "read from the container's init");
		switch (m.type) {
		case SHIM_SYNC_ERROR:
			/* Child messages usually end with the reason already. */
			if (m.err && !strstr(m.msg, strerror(m.err)))
				snprintf(err, errlen, "%s: %s", m.msg, strerror(m.err));
			else
				snprintf(err, errlen, "%s", m.msg);
			return -(m.err ? m.err : EIO);
		case SHIM_SYNC_MAPS_REQ:
			r = write_maps(cfg, (pid_t) m.value, err, errlen);
			if (r < 0)
				return r;
			(void) shim_sync_send(c->sync_parent, SHIM_SYNC_MAPS_DONE, 0);
			break;
		case SHIM_SYNC_PID:
			*init_pid = (pid_t) m.value;
			(void) waitpid(child, NULL, 0); /* the middle process */
			break;
		case SHIM_SYNC_HOOKS_REQ: {
			_cleanup_free_ char *st =
				parent_state_json(cfg, c->o->id, *init_pid, "creating");
			if (!st)
				return -ENOMEM;
			r = shim_hooks_run(cfg, SHIM_HOOK_PRESTART, st, err, errlen);
			if (r >= 0)
				r = shim_hooks_run(cfg, SHIM_HOOK_CREATE_RUNTIME, st, err, errlen);
			if (r < 0)
				return r;
			(void) shim_sync_send(c->sync_parent, SHIM_SYNC_HOOKS_DONE, 0);
			break;
		}
		case SHIM_SYNC_LISTENER: {
			_cleanup_close_ int lfd = fd;
			_cleanup_free_ char *st =
				parent_state_json(cfg, c->o->id, *init_pid, "creating");
			if (lfd < 0 || !st)
				return cs_errf_errno(-EBADMSG, err, errlen, "seccomp listener fd");
			r = shim_seccomp_send_listener(c->filter, lfd, st);
			if (r < 0)
				return cs_errf_errno(
					r, err, errlen,
					"linux.seccomp.listenerPath: send the notify fd to %s",
					shim_seccomp_listener_path(c->filter));
			(void) shim_sync_send(c->sync_parent, SHIM_SYNC_LISTENER_DONE, 0);
			break;
		}
		case SHIM_SYNC_READY:
			return 0;
		default:
			if (fd >= 0)
				close(fd);
			return cs_errf_errno(-EPROTO, err, errlen,
					     "unexpected message %u from the init", m.type);
		}
	}
}

static bool needs_slow_path(const struct shim_config *cfg)
{
	for (int t = 0; t < SHIM_NS_COUNT; t++)
		if (cfg->ns[t].enabled && cfg->ns[t].path)
			return true;
	return cfg->ns[SHIM_NS_TIME].enabled;
}

static int clone_flags(const struct shim_config *cfg)
{
	int flags = 0;
	for (int t = 0; t < SHIM_NS_COUNT; t++)
		if (cfg->ns[t].enabled && t != SHIM_NS_CGROUP && t != SHIM_NS_TIME)
			flags |= shim_ns_clone_flag(t);
	return flags;
}

static int make_state_dir(const char *root, const char *id, char **ret, char *err, size_t errlen)
{
	_cleanup_free_ char *dir = NULL;
	int r = shim_state_dir(root, id, &dir);
	if (r < 0)
		return cs_errf_errno(-EINVAL, err, errlen, "invalid container id \"%s\"", id);
	if (mkdir(root, 0711) < 0 && errno != EEXIST) {
		r = cs_mkdir_p(root, 0711);
		if (r < 0)
			return cs_errf_errno(r, err, errlen, "create the state directory %s", root);
	}
	if (mkdir(dir, 0711) < 0) {
		if (errno == EEXIST)
			return cs_errf_errno(-EEXIST, err, errlen,
					     "container \"%s\" already exists", id);
		return cs_errf_errno(-errno, err, errlen, "create %s", dir);
	}
	*ret = TAKE_PTR(dir);
	return 0;
}

static int save_state(const struct shim_config *cfg, const struct shim_create_opts *o,
		      const struct shim_cgroup *cg, pid_t pid, uint64_t start_time)
{
	char created[64];
	json_object *cgj = NULL;
	int r;
	rfc3339_now(created, sizeof(created));
	if (cg && (r = shim_cgroup_to_json(cg, &cgj)) < 0)
		return r;
	struct shim_state s = {
		.id = (char *) o->id,
		.bundle = cfg->bundle,
		.rootfs = cfg->rootfs,
		.pid = pid,
		.pid_start_time = start_time,
		.created = created,
		.owner = (char *) "",
		.started = o->start_now,
		.annotations = cfg->annotations,
		.cgroup = cgj,
		.config = cfg->json,
	};
	r = shim_state_save(o->root, &s);
	json_object_put(cgj);
	return r;
}

int shim_container_create(const struct shim_config *cfg, const struct shim_create_opts *o,
			  pid_t *ret_pid, char *err, size_t errlen)
{
	_cleanup_free_ char *dir = NULL, *fifo = NULL;
	_cleanup_close_ int fifo_fd = -EBADF, console_fd = -EBADF;
	struct shim_cgroup *cg = NULL;
	struct shim_seccomp_filter *filter = NULL;
	int sv[2] = {-1, -1};
	pid_t child = -1, init_pid = -1;
	uint64_t start_time = 0;
	int r;

	if (!cfg->has_process)
		return cs_errf_errno(-EINVAL, err, errlen,
				     "process: required to create a container");
	if (cfg->process.terminal && !o->console_socket && o->console_fd < 0)
		return cs_errf_errno(-EINVAL, err, errlen,
				     "process.terminal is true but no --console-socket was given");
	if (!cfg->process.terminal && o->console_socket)
		return cs_errf_errno(-EINVAL, err, errlen,
				     "--console-socket given but process.terminal is false");

	r = make_state_dir(o->root, o->id, &dir, err, errlen);
	if (r < 0)
		return r;

	r = shim_cgroup_create(cfg->cgroups_path, o->id, cfg->resources, &cg);
	if (r < 0) {
		const char *why = shim_cgroup_last_error();
		cs_errf_errno(r, err, errlen, "cgroup: %s", *why ? why : "create");
		goto out_remove;
	}
	if (cfg->seccomp) {
		_cleanup_free_ char *cache = NULL;
		if (cs_path_join(o->root, ".seccomp-cache", &cache) < 0) {
			r = -ENOMEM;
			goto out_remove;
		}
		(void) mkdir(cache, 0700);
		r = shim_seccomp_prepare(cfg->seccomp, cache, &filter);
		if (r < 0) {
			cs_errf_errno(r, err, errlen, "linux.seccomp: compile the profile");
			goto out_remove;
		}
	}
	if (!o->start_now) {
		r = cs_path_join(dir, EXEC_FIFO, &fifo);
		if (r < 0)
			goto out_remove;
		if (mkfifo(fifo, 0600) < 0) {
			r = cs_errf_errno(-errno, err, errlen, "create %s", fifo);
			goto out_remove;
		}
		/* O_RDWR: never blocks; the init reads its byte from it after `start`. */
		fifo_fd = open(fifo, O_RDWR | O_CLOEXEC);
		if (fifo_fd < 0) {
			r = cs_errf_errno(-errno, err, errlen, "open %s", fifo);
			goto out_remove;
		}
	}
	if (cfg->process.terminal) {
		if (o->console_fd >= 0) {
			console_fd = fcntl(o->console_fd, F_DUPFD_CLOEXEC, 3);
			r = console_fd < 0 ? -errno : 0;
		} else {
			r = cs_unix_connect(o->console_socket, &console_fd);
		}
		if (r < 0) {
			cs_errf_errno(r, err, errlen, "connect to the console socket %s",
				      o->console_socket ? o->console_socket : "(fd)");
			goto out_remove;
		}
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		r = cs_errf_errno(-errno, err, errlen, "socketpair");
		goto out_remove;
	}
	if (o->subreaper)
		(void) prctl(PR_SET_CHILD_SUBREAPER, 1);

	struct create_ctx c = {
		.cfg = cfg,
		.o = o,
		.cg = cg,
		.filter = filter,
		.sync_parent = sv[0],
		.sync_child = sv[1],
		.fifo_fd = fifo_fd,
		.console_fd = console_fd,
		.slow = needs_slow_path(cfg),
	};
	r = shim_join_prepare(cg, &c.join);
	if (r < 0) {
		cs_errf_errno(r, err, errlen, "open the container's cgroup");
		goto out_remove;
	}
	/* The one clone: every new namespace at once (fast path), or none (slow
	 * path), straight into the v2 cgroup where there is one. */
	int flags = c.slow ? 0 : clone_flags(cfg);
	child = shim_join_clone(&c.join, (unsigned long) flags);
	if (child < 0) {
		r = cs_errf_errno(child, err, errlen, "clone the container's init");
		shim_join_done(&c.join);
		goto out_remove;
	}
	if (child == 0)
		child_main(&c);

	close(sv[1]);
	sv[1] = -1;
	init_pid = child;
	if (!c.slow && cfg->ns[SHIM_NS_USER].enabled) {
		r = write_maps(cfg, child, err, errlen);
		if (r < 0)
			goto out_kill;
	}
	r = shim_join_parent(&c.join, child);
	shim_join_done(&c.join);
	if (r < 0) {
		cs_errf_errno(r, err, errlen, "move the init into its cgroup");
		goto out_kill;
	}
	r = shim_sync_send(sv[0], SHIM_SYNC_GO, child);
	if (r < 0)
		goto out_kill;
	r = parent_loop(&c, child, &init_pid, err, errlen);
	if (r < 0)
		goto out_kill;
	(void) shim_pid_start_time(init_pid, &start_time);

	r = save_state(cfg, o, cg, init_pid, start_time);
	if (r < 0) {
		cs_errf_errno(r, err, errlen, "write the state of %s", o->id);
		goto out_kill;
	}
	if (o->pid_file) {
		r = write_pid_file(o->pid_file, init_pid);
		if (r < 0) {
			cs_errf_errno(r, err, errlen, "write the pid file %s", o->pid_file);
			goto out_kill;
		}
	}
	close(sv[0]);
	shim_cgroup_free(cg);
	shim_seccomp_filter_free(filter);
	*ret_pid = init_pid;
	return 0;

out_kill:
	if (init_pid > 0)
		(void) kill(init_pid, SIGKILL);
	if (child > 0) {
		(void) kill(child, SIGKILL);
		(void) waitpid(child, NULL, 0);
	}
out_remove:
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	if (cg) {
		(void) shim_cgroup_kill_all(cg, SIGKILL);
		(void) shim_cgroup_destroy(cg);
		shim_cgroup_free(cg);
	}
	shim_seccomp_filter_free(filter);
	(void) shim_state_remove(o->root, o->id);
	return r;
}

/* ---- start, destroy ------------------------------------------------------ */

/* The container's config, parsed again from its state, but only when it has
 * hooks of `kind` (parsing and validating costs more than the rest of delete). */
static int config_from_state(const struct shim_state *s, enum shim_hook_kind kind,
			     struct shim_config **ret)
{
	json_object *hooks, *list;
	char err[256];
	if (!s->config || cs_json_get_object(s->config, "hooks", &hooks) < 0 ||
	    cs_json_get_array(hooks, shim_hook_kind_name(kind), &list) < 0 ||
	    json_object_array_length(list) == 0)
		return -ENOENT;
	return shim_config_parse(json_object_get(s->config), s->bundle, ret, err, sizeof(err));
}

/* The spec says a failing poststart hook is only a warning; runc (and the
 * runc-parity issue) fail the start and remove the container, so that
 * nothing half set-up keeps running. `err` holds the hook's failure. */
static int abort_start(const char *root, struct shim_state *s, int r, char *err, size_t errlen)
{
	char derr[256];
	size_t n = strlen(err);

	if (shim_container_destroy(root, s, derr, sizeof(derr)) < 0 && n < errlen)
		snprintf(err + n, errlen - n, "; delete: %s", derr);
	return r;
}

int shim_container_start(const char *root, struct shim_state *s, char *err, size_t errlen)
{
	_cleanup_free_ char *dir = NULL, *fifo = NULL;
	enum shim_status st = shim_state_status(root, s);
	int r;

	if (err && errlen)
		err[0] = '\0';
	if (st != SHIM_STATUS_CREATED)
		return cs_errf_errno(-EINVAL, err, errlen,
				     "cannot start a container that is %s (only a created one)",
				     shim_status_name(st));
	r = shim_state_dir(root, s->id, &dir);
	if (r < 0 || (r = cs_path_join(dir, EXEC_FIFO, &fifo)) < 0)
		return r;
	_cleanup_close_ int fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return cs_errf_errno(errno == ENXIO ? -ESRCH : -errno, err, errlen,
				     "open %s (is the container's init still waiting?)", fifo);
	if (write(fd, "0", 1) != 1)
		return cs_errf_errno(-errno, err, errlen, "write %s", fifo);
	(void) unlink(fifo);
	s->started = true;
	r = shim_state_save(root, s);
	if (r < 0)
		return cs_errf_errno(r, err, errlen, "save the state");

	_cleanup_(shim_config_freep) struct shim_config *cfg = NULL;
	if (config_from_state(s, SHIM_HOOK_POSTSTART, &cfg) == 0 &&
	    cfg->hooks[SHIM_HOOK_POSTSTART].n) {
		json_object *o;
		if (shim_state_oci_json(s, SHIM_STATUS_RUNNING, &o) < 0)
			return 0;
		r = shim_hooks_run(cfg, SHIM_HOOK_POSTSTART, json_object_to_json_string(o), err,
				   errlen);
		json_object_put(o);
		if (r < 0)
			return abort_start(root, s, r, err, errlen);
	}
	return 0;
}

/* Wait (at most `ms`) until `pid` (not our child) has exited. */
static void wait_gone(const struct shim_state *s, int ms)
{
	int pidfd = (int) syscall(SYS_pidfd_open, s->pid, 0);
	if (pidfd < 0)
		return;
	if (shim_state_pid_alive(s)) {
		struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
		(void) poll(&pfd, 1, ms);
	}
	close(pidfd);
}

int shim_container_destroy(const char *root, struct shim_state *s, char *err, size_t errlen)
{
	_cleanup_(shim_cgroup_freep) struct shim_cgroup *cg = NULL;
	int r = 0, q;

	if (err && errlen)
		err[0] = '\0';
	if (s->cgroup && (q = shim_cgroup_from_json(s->cgroup, &cg)) < 0)
		r = cs_errf_errno(q, err, errlen, "read the cgroup from the state");
	if (shim_state_pid_alive(s)) {
		(void) kill(s->pid, SIGKILL);
		if (cg)
			(void) shim_cgroup_kill_all(cg, SIGKILL); /* thaws a paused one too */
		wait_gone(s, 10000);
	}
	if (cg) {
		/* Processes outside the init's pid namespace (or left by a shared
		 * one) die too. Only when there are any: on hybrid hosts killing
		 * freezes and thaws the cgroup, which costs milliseconds. */
		_cleanup_free_ pid_t *pids = NULL;
		size_t n = 0;
		if (shim_cgroup_pids(cg, &pids, &n) < 0 || n > 0)
			(void) shim_cgroup_kill_all(cg, SIGKILL);
		q = shim_cgroup_destroy(cg);
		if (q < 0 && r == 0)
			r = cs_errf_errno(q, err, errlen, "remove the cgroup");
	}

	_cleanup_(shim_config_freep) struct shim_config *cfg = NULL;
	if (config_from_state(s, SHIM_HOOK_POSTSTOP, &cfg) == 0 &&
	    cfg->hooks[SHIM_HOOK_POSTSTOP].n) {
		json_object *o;
		char herr[256];
		if (shim_state_oci_json(s, SHIM_STATUS_STOPPED, &o) == 0) {
			/* The spec: a failing poststop hook is a warning, the deletion goes on. */
			if (shim_hooks_run(cfg, SHIM_HOOK_POSTSTOP, json_object_to_json_string(o),
					   herr, sizeof(herr)) < 0 &&
			    r == 0 && err && errlen)
				snprintf(err, errlen, "%s", herr);
			json_object_put(o);
		}
	}
	q = shim_state_remove(root, s->id);
	if (q < 0 && r == 0)
		r = cs_errf_errno(q, err, errlen, "remove the state directory");
	return r;
}
