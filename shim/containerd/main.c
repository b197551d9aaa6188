/* SPDX-License-Identifier: Apache-2.0 */
/*
 * containerd-shim-stoke-v2: the command layer.
 *
 *   ... -namespace N -address A -publish-binary P -id ID [-debug] start
 *       create the shim's socket, spawn the daemon on it (fd 3), write
 *       <bundle>/address, print the address.
 *   ... -id ID -bundle B delete
 *       clean up after a task whose daemon may be gone: force-delete the
 *       container, unmount the rootfs, print a DeleteResponse.
 *   -v  print the version.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "config.h"
#include "fd-util.h"
#include "json-util.h"
#include "log.h"
#include "sha256.h"
#include "shim.h"

#define SOCKET_DIR "/run/containerd/s"

struct opts {
	const char *ns, *address, *publish_binary, *id, *bundle, *action;
	bool debug, version, info;
};

void shim_request_exit(struct shim *s)
{
	s->exit_requested = true;
}

/* Go `flag` syntax: -name value, -name=value, --name value; flags end at the action. */
static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct {
		const char *name;
		size_t off;
	} valued[] = {
		{"namespace", offsetof(struct opts, ns)},
		{"address", offsetof(struct opts, address)},
		{"publish-binary", offsetof(struct opts, publish_binary)},
		{"id", offsetof(struct opts, id)},
		{"bundle", offsetof(struct opts, bundle)},
	};
	int i;

	for (i = 1; i < argc; i++) {
		char *a = argv[i], *eq;
		bool found = false;

		if (a[0] != '-') {
			o->action = a;
			return 0;
		}
		a += a[1] == '-' ? 2 : 1;
		eq = strchr(a, '=');
		if (strcmp(a, "debug") == 0 || strncmp(a, "debug=", 6) == 0) {
			o->debug = !eq || strcmp(eq + 1, "false") != 0;
			continue;
		}
		if (strcmp(a, "v") == 0 || strcmp(a, "version") == 0) {
			o->version = true;
			continue;
		}
		if (strcmp(a, "info") == 0) {
			o->info = true;
			continue;
		}
		for (size_t k = 0; k < ELEMENTSOF(valued); k++) {
			size_t n = strlen(valued[k].name);
			const char **dst = (const char **) ((char *) o + valued[k].off);
			if (strncmp(a, valued[k].name, n) != 0 || (a[n] != 0 && a[n] != '='))
				continue;
			if (a[n] == '=') {
				*dst = a + n + 1;
			} else {
				if (i + 1 >= argc) {
					fprintf(stderr, "flag needs an argument: -%s\n", a);
					return -EINVAL;
				}
				*dst = argv[++i];
			}
			found = true;
			break;
		}
		/* Flags of newer containerd versions are accepted and ignored
		 * (a value, if any, must be given with '='). */
		if (!found)
			log_debug("ignoring flag %s", argv[i]);
	}
	return 0;
}

/* Everything from the caller's stdin (runtime options or BootstrapParams);
 * read so containerd's writer never sees EPIPE. The daemon gets its options
 * again in Create. */
static void drain_stdin(void)
{
	char buf[65536];
	size_t total = 0;
	ssize_t n;

	while ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0 && total < (10u << 20))
		total += n;
}

/* Run `argv` and collect its stdout (at most `max` bytes) into a new string. */
static int run_capture(char **argv, size_t max, char **ret)
{
	_cleanup_free_ char *buf = malloc(max + 1);
	size_t len = 0;
	int p[2], status;
	pid_t pid;

	if (!buf)
		return -ENOMEM;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -errno;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(p[1], 1);
		dup2(null, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		ssize_t n = read(p[0], buf + len, max - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (len += n) == max)
			break;
	}
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -EIO;
	buf[len] = 0;
	*ret = TAKE_PTR(buf);
	return 0;
}

/* -info (containerd 2.x): a containerd.types.RuntimeInfo on stdout with the
 * runtime's OCI features (`<runtime> features`), the options from stdin
 * echoed back. */
static int cmd_info(void)
{
	Ctd__RuntimeInfo info = CTD__RUNTIME_INFO__INIT;
	Ctd__RuntimeVersion version = CTD__RUNTIME_VERSION__INIT;
	Ctd__Any features = CTD__ANY__INIT;
	_cleanup_free_ uint8_t *in = malloc(1 << 20), *out = NULL;
	_cleanup_free_ char *json = NULL;
	struct shim s = {.ns = (char *) "default"};
	struct runtime_cfg rt = {0};
	Ctd__Any *opts = NULL;
	char err[512];
	ssize_t n, len = 0;
	int r;

	if (!in)
		return -ENOMEM;
	while ((n = read(STDIN_FILENO, in + len, (1 << 20) - len)) > 0)
		len += n;
	if (len > 0) {
		opts = ctd__any__unpack(NULL, len, in);
		if (!opts)
			return log_error_errno(-EINVAL,
					       "-info: stdin is not a google.protobuf.Any");
	}
	info.name = (char *) "io.containerd.stoke.v2";
	version.version = (char *) STOKE_VERSION;
	info.version = &version;
	info.options = opts;
	r = runtime_resolve(&s, opts, &rt, err, sizeof(err));
	if (r < 0) {
		if (opts)
			ctd__any__free_unpacked(opts, NULL);
		return log_error_errno(r, "-info: %s", err);
	}
	{
		char *argv[] = {rt.binary, "features", NULL};
		r = run_capture(argv, 1 << 20, &json);
	}
	if (r < 0)
		log_warning_errno(r, "-info: %s features failed: %m", rt.binary);
	else {
		features.type_url = (char *) "types.containerd.io/opencontainers/runtime-spec/1/"
					     "features/Features";
		features.value.data = (uint8_t *) json;
		features.value.len = strlen(json);
		info.features = &features;
	}
	runtime_cfg_done(&rt);
	out = malloc(protobuf_c_message_get_packed_size(&info.base) + 1);
	if (!out)
		r = -ENOMEM;
	else
		r = cs_write_all(STDOUT_FILENO, out, protobuf_c_message_pack(&info.base, out));
	if (opts)
		ctd__any__free_unpacked(opts, NULL);
	return r;
}

/* Containers of one pod share a daemon when they carry the same sandbox id. */
static char *grouping_id(const char *bundle, const char *id)
{
	static const char *const keys[] = {"io.kubernetes.cri.sandbox-id",
					   "io.containerd.runc.v2.group"};
	_cleanup_free_ char *path = NULL;
	json_object *cfg = NULL, *ann;
	char *group = NULL;

	if (asprintf(&path, "%s/config.json", bundle) >= 0 &&
	    cs_json_parse_file(path, 16 << 20, &cfg, NULL, 0) == 0 &&
	    cs_json_get_object(cfg, "annotations", &ann) == 0) {
		for (size_t i = 0; i < ELEMENTSOF(keys) && !group; i++) {
			const char *v;
			if (cs_json_get_string(ann, keys[i], &v) == 0 && *v)
				group = strdup(v);
		}
	}
	if (cfg)
		json_object_put(cfg);
	return group ? group : strdup(id);
}

static int socket_path_for(const struct opts *o, const char *group, char ret[108])
{
	_cleanup_free_ char *key = NULL;
	char hex[65];

	if (asprintf(&key, "%s/%s/%s", o->address ? o->address : "", o->ns, group) < 0)
		return -ENOMEM;
	ctd_sha256_hex(key, strlen(key), hex);
	snprintf(ret, 108, SOCKET_DIR "/%s", hex);
	return 0;
}

/* Bind the listening socket. -EADDRINUSE means a live daemon answers there. */
static int make_socket(const char *path, int *ret_fd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -EBADF;

	strcpy(sa.sun_path, path);
	if (cs_mkdir_p(SOCKET_DIR, 0711) < 0)
		return -errno;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
		int probe;
		if (errno != EADDRINUSE)
			return -errno;
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *) &sa, sizeof(sa)) == 0) {
			close(probe);
			return -EADDRINUSE;
		}
		if (probe >= 0)
			close(probe);
		/* Stale: its daemon is gone. */
		(void) unlink(path);
		if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
			return -errno;
	}
	if (chmod(path, 0600) < 0 || listen(fd, SOMAXCONN) < 0) {
		int r = -errno;
		(void) unlink(path);
		return r;
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static int write_address(const char *bundle, const char *address)
{
	return bundle_write_file(bundle, "address", address, strlen(address), 0644);
}

/* The kernel should OOM-kill the shim before containerd. */
static void adjust_oom_score(pid_t daemon)
{
	char path[64], buf[32] = "0";
	int fd, score;

	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", getppid());
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = 0;
		close(fd);
	}
	score = atoi(buf) + 1;
	if (score > 1000)
		score = 1000;
	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", daemon);
	snprintf(buf, sizeof(buf), "%d", score);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		(void) cs_write_all(fd, buf, strlen(buf));
		close(fd);
	}
}

static int daemon_main(const struct opts *o, const char *bundle, const char *socket_path)
{
	struct shim s = {.pub_fd = -1, .sig_fd = -1};
	int r;

	s.ns = (char *) o->ns;
	s.id = (char *) o->id;
	s.bundle = (char *) bundle;
	s.socket_path = (char *) socket_path;
	s.debug = o->debug;
	s.ttrpc_address = getenv("TTRPC_ADDRESS");

	/* Container inits are reparented to the shim after `create` exits. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		return log_error_errno(-errno, "cannot become a subreaper: %m");
	r = loop_init(&s);
	if (r < 0)
		return log_error_errno(r, "cannot set up the event loop: %m");
	r = server_init(&s, 3);
	if (r < 0)
		return log_error_errno(r, "cannot serve on fd 3: %m");
	log_info("serving %s for %s/%s", socket_path, o->ns, o->id);
	r = loop_run(&s);
	(void) unlink(socket_path);
	server_close_all(&s);
	if (r < 0)
		return log_error_errno(r, "event loop failed: %m");
	return 0;
}

/* Redirect the daemon's stdio: stdin/stdout to /dev/null, stderr to the
 * bundle's log fifo (containerd copies it into its own log). */
static void daemon_stdio(const char *bundle)
{
	char path[PATH_MAX + 8];
	int null = open("/dev/null", O_RDWR | O_CLOEXEC), log = -1;

	snprintf(path, sizeof(path), "%s/log", bundle);
	log = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(log >= 0 ? log : null, STDERR_FILENO);
		close(null);
	}
	if (log >= 0)
		close(log);
}

static int cmd_start(const struct opts *o)
{
	char bundle[PATH_MAX], sock[108], address[120];
	_cleanup_free_ char *group = NULL;
	int fd = -1, r;
	pid_t pid;

	drain_stdin();
	if (!getcwd(bundle, sizeof(bundle)))
		return log_error_errno(-errno, "cannot get the bundle directory: %m");
	group = grouping_id(bundle, o->id);
	if (!group)
		return log_error_errno(-ENOMEM, "out of memory");
	r = socket_path_for(o, group, sock);
	if (r < 0)
		return log_error_errno(r, "cannot name the socket: %m");
	snprintf(address, sizeof(address), "unix://%s", sock);

	r = make_socket(sock, &fd);
	if (r == -EADDRINUSE) {
		/* Another container of the same group: its daemon serves this one too. */
		r = write_address(bundle, address);
		if (r < 0)
			return log_error_errno(r, "cannot write %s/address: %m", bundle);
		printf("%s", address);
		return 0;
	}
	if (r < 0)
		return log_error_errno(r, "cannot create socket %s: %m", sock);

	if (getenv("SCHED_CORE"))
		(void) prctl(PR_SCHED_CORE, PR_SCHED_CORE_CREATE, 0, 2 /* PIDTYPE_PGID */, 0);

	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		r = -errno;
		(void) unlink(sock);
		return log_error_errno(r, "cannot fork the shim daemon: %m");
	}
	if (pid == 0) {
		(void) setpgid(0, 0);
		if (dup2(fd, 3) < 0)
			_exit(1);
		if (fd != 3)
			close(fd);
		/* Nothing else of the caller's may stay open in a long-lived
		 * daemon (a pipe held open would hang whoever reads it). */
		(void) close_range(4, ~0U, 0);
		daemon_stdio(bundle);
		free(TAKE_PTR(group)); /* _exit() below skips the cleanup */
		cs_log_set_stderr(true);
		_exit(daemon_main(o, bundle, sock) < 0 ? 1 : 0);
	}
	close(fd);
	adjust_oom_score(pid);
	r = write_address(bundle, address);
	if (r < 0) {
		(void) kill(pid, SIGKILL);
		(void) unlink(sock);
		return log_error_errno(r, "cannot write %s/address: %m", bundle);
	}
	printf("%s", address);
	return 0;
}

/* A killed daemon leaves its socket behind; remove it unless a daemon still
 * answers there (containers of one pod share it). */
static void remove_dead_socket(const char *bundle)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_free_ char *path = NULL, *addr = NULL;
	_cleanup_close_ int fd = -EBADF;
	const char *p;
	size_t len;

	if (asprintf(&path, "%s/address", bundle) < 0 ||
	    cs_read_file_at(AT_FDCWD, path, sizeof(sa.sun_path) + 16, &addr, &len) < 0)
		return;
	p = strncmp(addr, "unix://", 7) == 0 ? addr + 7 : addr;
	if (!*p || strlen(p) >= sizeof(sa.sun_path))
		return;
	strcpy(sa.sun_path, p);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 &&
	    errno == ECONNREFUSED)
		(void) unlink(p);
}

static bool runtime_state_gone(const struct runtime_cfg *rt, const char *id)
{
	_cleanup_free_ char *path = NULL;
	struct stat st;

	if (asprintf(&path, "%s/%s", rt->root, id) < 0)
		return false;
	return lstat(path, &st) < 0 && errno == ENOENT;
}

/* Run the runtime synchronously (no daemon here, so a plain waitpid). */
static int run_simple(char **argv)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		execv(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static int cmd_delete(const struct opts *o)
{
	Ctd__DeleteResponse resp = CTD__DELETE_RESPONSE__INIT;
	Ctd__Timestamp ts = CTD__TIMESTAMP__INIT;
	char cwd[PATH_MAX], path[PATH_MAX + 32], buf[64];
	_cleanup_free_ char *pidbuf = NULL;
	struct runtime_cfg rt = {0};
	const char *bundle = o->bundle;
	uint8_t out[64];
	size_t len;
	int r;

	if (!bundle || !*bundle) {
		if (!getcwd(cwd, sizeof(cwd)))
			return log_error_errno(-errno, "cannot get the bundle directory: %m");
		bundle = cwd;
	}
	/* Every file is optional: a half-created task must still be cleaned. */
	/* The runtime keeps a container's state in ROOT/ID (runc, stoke): when
	 * that is gone the task was deleted cleanly and there is nothing to force. */
	if (runtime_load(bundle, &rt) == 0 && !runtime_state_gone(&rt, o->id)) {
		char *argv[8] = {rt.binary, "--root", rt.root};
		int n = 3;

		/* Global flags go before the verb. */
		if (rt.systemd_cgroup)
			argv[n++] = "--systemd-cgroup";
		argv[n++] = "delete";
		argv[n++] = "--force";
		argv[n++] = (char *) o->id;
		r = run_simple(argv);
		if (r < 0)
			log_debug("%s delete --force %s failed", rt.binary, o->id);
	}
	runtime_cfg_done(&rt);
	remove_dead_socket(bundle);
	snprintf(path, sizeof(path), "%s/rootfs", bundle);
	r = rootfs_unmount(path);
	if (r < 0)
		log_warning_errno(r, "cannot unmount %s: %m", path);
	snprintf(path, sizeof(path), "%s/init.pid", bundle);
	if (cs_read_file_at(AT_FDCWD, path, sizeof(buf), &pidbuf, &len) == 0)
		resp.pid = (uint32_t) strtoul(pidbuf, NULL, 10);
	resp.exit_status = 128 + SIGKILL;
	set_timestamp(&ts, now_ns());
	resp.exited_at = &ts;
	len = ctd__delete_response__pack(&resp, out);
	return cs_write_all(STDOUT_FILENO, out, len);
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	int r;

	cs_log_set_ident("containerd-shim-stoke-v2");
	if (parse_args(argc, argv, &o) < 0)
		return 1;
	if (o.debug)
		cs_log_set_level(CS_LOG_DEBUG);
	if (o.version) {
		printf("containerd-shim-stoke-v2:\n  Version: %s\n  Runtime: stoke\n",
		       STOKE_VERSION);
		return 0;
	}
	if (o.info)
		return cmd_info() < 0 ? 1 : 0;
	if (!o.action) {
		fprintf(stderr,
			"usage: %s -namespace NS -address ADDR -id ID [-bundle B] start|delete\n",
			argv[0]);
		return 1;
	}
	if (!o.ns || !*o.ns) {
		log_error("-namespace is required");
		return 1;
	}
	if (!o.id || !*o.id) {
		log_error("-id is required");
		return 1;
	}
	if (strcmp(o.action, "start") == 0)
		r = cmd_start(&o);
	else if (strcmp(o.action, "delete") == 0)
		r = cmd_delete(&o);
	else {
		log_error("unknown action '%s' (expected start or delete)", o.action);
		return 1;
	}
	return r < 0 ? 1 : 0;
}
