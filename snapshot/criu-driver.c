/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CRIU driver: dump and restore a process tree through libcriu.
 *
 * libcriu keeps a global option set (criu_init_opts() and friends); this
 * driver never touches it. Each call builds a private criu_opts with
 * criu_local_init_opts(), sets every option the call needs, runs one
 * `criu swrk` and frees it, so no option of a previous call can leak into
 * the next one.
 */
#include "criu-internal.h"
#include "stoke-checkpoint.h"

#include "cleanup.h"
#include "fd-util.h"

#include <criu/criu.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static __thread char cr_error[512];

const char *stoke_cr_error(void)
{
	return cr_error;
}

void cr_set_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cr_error, sizeof(cr_error), fmt, ap);
	va_end(ap);
}

void cr_clear_error(void)
{
	cr_error[0] = '\0';
}

int stoke_cr_cgroup_mode_from_string(const char *s, enum stoke_cr_cgroup_mode *ret_mode)
{
	static const struct {
		const char *name;
		enum stoke_cr_cgroup_mode mode;
	} modes[] = {
		{"soft", STOKE_CR_CG_SOFT},
		{"full", STOKE_CR_CG_FULL},
		{"strict", STOKE_CR_CG_STRICT},
		{"ignore", STOKE_CR_CG_IGNORE},
	};

	for (size_t i = 0; s && i < ELEMENTSOF(modes); i++)
		if (strcmp(s, modes[i].name) == 0) {
			*ret_mode = modes[i].mode;
			return 0;
		}
	return -EINVAL;
}

static void criu_local_free_optsp(criu_opts **o)
{
	if (*o)
		criu_local_free_opts(*o);
}

/* The last "Error" line of criu's log: the most useful single line to show. */
static void remember_criu_failure(const char *what, const char *work_dir, const char *log_name,
				  int r)
{
	_cleanup_free_ char *log = NULL;
	size_t len = 0;
	char path[4096];
	const char *last = NULL;

	snprintf(path, sizeof(path), "%s/%s", work_dir, log_name);
	if (cs_read_file_at(AT_FDCWD, path, 16 << 20, &log, &len) >= 0) {
		/* The first error is the cause; later ones say "Dumping FAILED".
		 * The rlimit complaint is noise criu prints on every run here. */
		for (char *line = strtok(log, "\n"); line && !last; line = strtok(NULL, "\n"))
			if ((strstr(line, "Error (") || strstr(line, "Error:")) &&
			    !strstr(line, "rlimit:"))
				last = line;
	}
	cr_set_error("criu %s failed (%d)%s%s; see %s", what, r, last ? ": " : "", last ? last : "",
		     path);
}

/* The last `n` non-empty lines of `text`, joined with " | ", into buf. */
static void last_lines(char *text, size_t len, unsigned n, char *buf, size_t buflen)
{
	const char *starts[8];
	unsigned found = 0;

	buf[0] = '\0';
	if (n > ELEMENTSOF(starts))
		n = ELEMENTSOF(starts);
	/* Walk backwards, cutting the text into lines in place. */
	for (size_t i = len; i > 0 && found < n;) {
		size_t end = i;
		while (end > 0 && text[end - 1] == '\n')
			end--;
		size_t start = end;
		while (start > 0 && text[start - 1] != '\n')
			start--;
		if (end == start)
			break;
		text[end] = '\0';
		starts[found++] = text + start;
		i = start;
	}
	size_t o = 0;
	while (found > 0 && o < buflen) {
		int w = snprintf(buf + o, buflen - o, "%s%s", o ? " | " : "", starts[--found]);
		if (w < 0)
			break;
		o += (size_t) w;
	}
}

/* After the deadline killed CRIU: which operation and phase timed out, and
 * what CRIU was doing last (the end of its log). */
static void remember_criu_timeout(const char *work_dir, const char *log_name)
{
	_cleanup_free_ char *log = NULL;
	char when[160], path[4096], tail[1024];
	size_t len = 0;

	stoke_cr_deadline_describe(when, sizeof(when));
	snprintf(path, sizeof(path), "%s/%s", work_dir, log_name);
	if (cs_read_file_at(AT_FDCWD, path, 16 << 20, &log, &len) < 0 || len == 0) {
		cr_set_error("%s; criu and its processes were killed; its log %s is empty "
			     "or missing",
			     when, path);
		return;
	}
	last_lines(log, len, 3, tail, sizeof(tail));
	cr_set_error("%s; criu and its processes were killed; the last lines of %s: %s", when,
		     path, tail);
}

/* Arm o->deadline_s around one CRIU call unless a deadline is already armed
 * (then the outer one applies). @return : whether this call owns it. */
static bool call_deadline_begin(const struct stoke_cr_options *o, const char *what,
				const char *phase)
{
	bool nested = true;

	if (o->deadline_s && stoke_cr_deadline_arm(o->deadline_s, what, &nested) < 0)
		nested = true;
	stoke_cr_deadline_phase(phase);
	return !nested;
}

/* The failure of one CRIU call, explained: a timeout or CRIU's own error. */
static int criu_call_failed(const struct stoke_cr_options *o, const char *what,
			    const char *log_name, int r)
{
	const char *work_dir = o->work_dir ? o->work_dir : o->images_dir;

	if (stoke_cr_deadline_expired()) {
		remember_criu_timeout(work_dir, log_name);
		return -ETIMEDOUT;
	}
	remember_criu_failure(what, work_dir, log_name, r);
	return -EIO;
}

static enum criu_cg_mode cg_mode(enum stoke_cr_cgroup_mode m)
{
	switch (m) {
	case STOKE_CR_CG_SOFT:
		return CRIU_CG_MODE_SOFT;
	case STOKE_CR_CG_FULL:
		return CRIU_CG_MODE_FULL;
	case STOKE_CR_CG_STRICT:
		return CRIU_CG_MODE_STRICT;
	case STOKE_CR_CG_IGNORE:
		return CRIU_CG_MODE_IGNORE;
	default:
		return CRIU_CG_MODE_DEFAULT;
	}
}

/* Everything dump and restore share. The directory fds are read by criu
 * through /proc/OUR_PID/fd, so they may stay close-on-exec. */
static int set_common(criu_opts *c, const struct stoke_cr_options *o, int images_fd, int work_fd,
		      const char *log_name)
{
	int r;

	criu_local_set_images_dir_fd(c, images_fd);
	criu_local_set_work_dir_fd(c, work_fd);
	criu_local_set_log_level(c, o->log_level > 0 ? o->log_level : 4);
	r = criu_local_set_log_file(c, log_name);
	if (r < 0)
		return r;
	if (o->criu_path) {
		r = criu_local_set_service_binary(c, o->criu_path);
		if (r < 0)
			return r;
	}
	criu_local_set_tcp_established(c, o->tcp_established);
	criu_local_set_ext_unix_sk(c, o->ext_unix_sk);
	criu_local_set_shell_job(c, o->shell_job);
	criu_local_set_file_locks(c, o->file_locks);
	if (o->skip_network_lock)
		criu_local_set_network_lock(c, CRIU_NETWORK_LOCK_SKIP);
	criu_local_set_manage_cgroups(c, true);
	criu_local_set_manage_cgroups_mode(c, cg_mode(o->cgroup_mode));
	if (o->timeout_s)
		criu_local_set_timeout(c, o->timeout_s);

	for (size_t i = 0; i < o->n_ext_mounts; i++) {
		r = criu_local_add_ext_mount(c, o->ext_mounts[i].key, o->ext_mounts[i].path);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; o->externals && o->externals[i]; i++) {
		r = criu_local_add_external(c, o->externals[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

static int open_dirs(const struct stoke_cr_options *o, bool create_images, int *ret_images,
		     int *ret_work)
{
	_cleanup_close_ int images = -EBADF, work = -EBADF;
	const char *work_dir = o->work_dir ? o->work_dir : o->images_dir;
	int r;

	if (!o->images_dir)
		return -EINVAL;
	if (create_images) {
		r = cs_mkdir_p(o->images_dir, 0700);
		if (r < 0)
			return r;
	}
	r = cs_mkdir_p(work_dir, 0700);
	if (r < 0)
		return r;
	images = open(o->images_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (images < 0)
		return -errno;
	work = open(work_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (work < 0)
		return -errno;
	*ret_images = TAKE_FD(images);
	*ret_work = TAKE_FD(work);
	return 0;
}

/* libcriu returns -errno-like values, or -1 with errno; map to -errno. */
static int criu_result(int r)
{
	if (r >= 0)
		return r;
	if (r == -1)
		return errno > 0 ? -errno : -EIO;
	return r;
}

/* libcriu has no setter for a config file (the way to pass options it has
 * no setter for, such as leave-stopped, stream or lazy-pages); criu reads
 * the file named by CRIU_CONFIG_FILE in the environment it inherits. Set it
 * for one call. With leave_stopped, stream or lazy_pages, a file in the work directory
 * holds those options and the caller's file's lines. */
static int config_env_set(const struct stoke_cr_options *o, int work_fd)
{
	if (!o->leave_stopped && !o->stream && !o->lazy_pages) {
		if (!o->config_file)
			return unsetenv("CRIU_CONFIG_FILE") < 0 ? -errno : 0;
		return setenv("CRIU_CONFIG_FILE", o->config_file, 1) < 0 ? -errno : 0;
	}

	_cleanup_free_ char *extra = NULL;
	size_t len = 0;
	int r;
	if (o->config_file) {
		r = cs_read_file_at(AT_FDCWD, o->config_file, 1 << 20, &extra, &len);
		if (r < 0)
			return r;
	}
	char ours[64];
	snprintf(ours, sizeof(ours), "%s%s%s", o->leave_stopped ? "leave-stopped\n" : "",
		 o->stream ? "stream\n" : "", o->lazy_pages ? "lazy-pages\n" : "");
	size_t total = strlen(ours) + len;
	_cleanup_free_ char *conf = malloc(total + 1);
	if (!conf)
		return -ENOMEM;
	snprintf(conf, total + 1, "%s%s", ours, extra ? extra : "");
	r = cs_write_file_atomic(work_fd, "stoke-criu.conf", conf, total, 0600);
	if (r < 0)
		return r;
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d/stoke-criu.conf", work_fd);
	/* criu runs as our child: resolve the path now, it cannot see our fds. */
	char real[4096];
	if (!realpath(path, real))
		return -errno;
	return setenv("CRIU_CONFIG_FILE", real, 1) < 0 ? -errno : 0;
}

/* The criu binary: o->criu_path, or "criu" found in PATH, into `ret`. */
static int find_criu(const struct stoke_cr_options *o, char *ret, size_t len)
{
	if (o->criu_path) {
		snprintf(ret, len, "%s", o->criu_path);
		return access(ret, X_OK) < 0 ? -ENOENT : 0;
	}
	const char *path = getenv("PATH");
	_cleanup_free_ char *copy = strdup(path ? path : "/usr/local/sbin:/usr/sbin:/usr/bin");
	if (!copy)
		return -ENOMEM;
	for (char *save, *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(ret, len, "%s/criu", d);
		if (access(ret, X_OK) == 0)
			return 0;
	}
	return -ENOENT;
}

static bool criu_binary_missing(const struct stoke_cr_options *o)
{
	char p[4096];
	return find_criu(o, p, sizeof(p)) == -ENOENT;
}

int stoke_criu_dump(pid_t pid, const struct stoke_cr_options *o)
{
	_cleanup_(criu_local_free_optsp) criu_opts *c = NULL;
	_cleanup_close_ int images = -EBADF, work = -EBADF;
	const char *log_name = o->log_name ? o->log_name : "dump.log";
	int r;

	cr_clear_error();
	if (pid <= 0)
		return -EINVAL;
	if (kill(pid, 0) < 0) {
		cr_set_error("no process %d to dump", (int) pid);
		return -ESRCH;
	}
	if (criu_binary_missing(o)) {
		cr_set_error("criu binary %s not found", o->criu_path ? o->criu_path : "in PATH");
		return -ENOENT;
	}
	r = open_dirs(o, true, &images, &work);
	if (r < 0) {
		cr_set_error("cannot open image or work directory %s", o->images_dir);
		return r;
	}
	r = criu_local_init_opts(&c);
	if (r < 0)
		return criu_result(r);
	r = set_common(c, o, images, work, log_name);
	if (r < 0)
		return criu_result(r);
	criu_local_set_pid(c, pid);
	criu_local_set_leave_running(c, o->leave_running);
	if (o->freeze_cgroup) {
		r = criu_local_set_freeze_cgroup(c, o->freeze_cgroup);
		if (r < 0)
			return criu_result(r);
	}

	r = config_env_set(o, work);
	if (r < 0)
		return r;
	bool own_deadline = call_deadline_begin(o, "checkpoint", "criu dump");
	r = criu_local_dump(c);
	(void) unsetenv("CRIU_CONFIG_FILE");
	if (r < 0)
		r = criu_call_failed(o, "dump", log_name, r);
	if (own_deadline)
		stoke_cr_deadline_disarm();
	return r < 0 ? r : 0;
}

/* criu swrk reads inherited fds by number in its own process: they must
 * survive its exec. Clear close-on-exec for the call, and put it back. */
static int inherit_fds_set_cloexec(const struct stoke_cr_options *o, int enable)
{
	for (size_t i = 0; i < o->n_inherit_fds; i++) {
		int r = cs_fd_set_cloexec(o->inherit_fds[i].fd, enable);
		if (r < 0)
			return r;
	}
	return 0;
}

/* argv for `criu restore`, built into a growing vector. */
struct argv_buf {
	char *v[256];
	size_t n;
	bool oom;
};

static void arg(struct argv_buf *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void arg(struct argv_buf *a, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (!s || a->n + 1 >= ELEMENTSOF(a->v)) {
		free(s);
		a->oom = true;
		return;
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

static void argv_buf_done(struct argv_buf *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
}

static const char *cg_mode_name(enum stoke_cr_cgroup_mode m)
{
	static const char *const names[] = {"soft", "soft", "full", "strict", "ignore"};
	return m < ELEMENTSOF(names) ? names[m] : "soft";
}

/* CRIU refuses --stream through its RPC interface (libcriu runs `criu
 * swrk`, a command --stream does not apply to), so a streamed restore runs
 * the criu binary itself with the same options, as a sibling restore: the
 * tree still ends up as our child. */
static int restore_with_binary(const struct stoke_cr_options *o, const char *log_name)
{
	_cleanup_(argv_buf_done) struct argv_buf a = {};
	const char *work = o->work_dir ? o->work_dir : o->images_dir;
	char pidfile[4096];
	int r;

	char criu[4096];
	r = find_criu(o, criu, sizeof(criu));
	if (r < 0)
		return r;
	snprintf(pidfile, sizeof(pidfile), "%s/stoke-restore.pid", work);
	(void) unlink(pidfile);
	arg(&a, "%s", criu);
	arg(&a, "restore");
	arg(&a, "--images-dir=%s", o->images_dir);
	arg(&a, "--work-dir=%s", work);
	arg(&a, "--log-file=%s", log_name);
	arg(&a, "-v%d", o->log_level > 0 ? o->log_level : 4);
	arg(&a, "--restore-detached");
	arg(&a, "--restore-sibling");
	arg(&a, "--pidfile=%s", pidfile);
	arg(&a, "--manage-cgroups=%s", cg_mode_name(o->cgroup_mode));
	if (o->stream)
		arg(&a, "--stream");
	if (o->leave_stopped)
		arg(&a, "--leave-stopped");
	if (o->lazy_pages)
		arg(&a, "--lazy-pages");
	if (o->root)
		arg(&a, "--root=%s", o->root);
	if (o->cgroup_root)
		arg(&a, "--cgroup-root=%s", o->cgroup_root);
	if (o->tcp_established)
		arg(&a, "--tcp-established");
	if (o->ext_unix_sk)
		arg(&a, "--ext-unix-sk");
	if (o->shell_job)
		arg(&a, "--shell-job");
	if (o->file_locks)
		arg(&a, "--file-locks");
	if (o->skip_network_lock)
		arg(&a, "--network-lock=skip");
	if (o->timeout_s)
		arg(&a, "--timeout=%u", o->timeout_s);
	if (o->config_file)
		arg(&a, "--config=%s", o->config_file);
	for (size_t i = 0; i < o->n_ext_mounts; i++)
		arg(&a, "--external=mnt[%s]:%s", o->ext_mounts[i].key, o->ext_mounts[i].path);
	for (size_t i = 0; o->externals && o->externals[i]; i++)
		arg(&a, "--external=%s", o->externals[i]);
	for (size_t i = 0; i < o->n_inherit_fds; i++)
		arg(&a, "--inherit-fd=fd[%d]:%s", o->inherit_fds[i].fd, o->inherit_fds[i].key);
	if (a.oom)
		return -ENOMEM;

	r = inherit_fds_set_cloexec(o, 0);
	if (r < 0)
		return r;
	/* Only execv() after fork: the caller may have threads (the streamer). */
	pid_t pid = fork();
	if (pid == 0) {
		execv(a.v[0], a.v);
		_exit(127);
	}
	int saved = errno;
	(void) inherit_fds_set_cloexec(o, 1);
	if (pid < 0)
		return -saved;
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return criu_call_failed(o, "restore", log_name, -EIO);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	r = cs_read_file_at(AT_FDCWD, pidfile, 64, &buf, &len);
	(void) unlink(pidfile);
	if (r < 0) {
		cr_set_error("criu restore left no pid file %s", pidfile);
		return r;
	}
	int root = atoi(buf);
	return root > 0 ? root : -EIO;
}

/* libcriu's notify callback has no user data: the options of the restore
 * running in this thread. */
static __thread const struct stoke_cr_options *notify_opts;

/* CRIU reports each of its hook points ("action scripts") and waits for the
 * answer; post-setup-namespaces comes after the namespaces and mounts are
 * made and before any task maps and fills its memory. */
static int restore_notify(char *action, criu_notify_arg_t na)
{
	const struct stoke_cr_options *o = notify_opts;

	if (!o || !o->before_pages || strcmp(action, "post-setup-namespaces") != 0)
		return 0;
	int r = o->before_pages(o->before_pages_data);
	if (r != 0)
		cr_set_error("restore aborted: the memory images could not be prepared (%s)",
			     strerror(r < 0 ? -r : EIO));
	return r != 0 ? -1 : 0;
}

int stoke_criu_restore(const struct stoke_cr_options *o)
{
	_cleanup_(criu_local_free_optsp) criu_opts *c = NULL;
	_cleanup_close_ int images = -EBADF, work = -EBADF;
	const char *log_name = o->log_name ? o->log_name : "restore.log";
	sigset_t chld, old;
	int r;

	cr_clear_error();
	if (criu_binary_missing(o)) {
		cr_set_error("criu binary %s not found", o->criu_path ? o->criu_path : "in PATH");
		return -ENOENT;
	}
	r = open_dirs(o, false, &images, &work);
	if (r < 0) {
		cr_set_error("cannot open image directory %s", o->images_dir);
		return r;
	}
	if (o->stream) {
		bool own = call_deadline_begin(o, "restore", "criu restore");
		r = restore_with_binary(o, log_name);
		if (own)
			stoke_cr_deadline_disarm();
		return r;
	}
	r = criu_local_init_opts(&c);
	if (r < 0)
		return criu_result(r);
	r = set_common(c, o, images, work, log_name);
	if (r < 0)
		return criu_result(r);
	if (o->root) {
		r = criu_local_set_root(c, o->root);
		if (r < 0)
			return criu_result(r);
	}
	if (o->cgroup_root) {
		r = criu_local_add_cg_root(c, NULL, o->cgroup_root);
		if (r < 0)
			return criu_result(r);
	}
	for (size_t i = 0; i < o->n_inherit_fds; i++) {
		r = criu_local_add_inherit_fd(c, o->inherit_fds[i].fd, o->inherit_fds[i].key);
		if (r < 0)
			return criu_result(r);
	}
	if (o->before_pages)
		criu_local_set_notify_cb(c, restore_notify);
	r = config_env_set(o, work);
	if (r < 0)
		return r;
	r = inherit_fds_set_cloexec(o, 0);
	if (r < 0)
		return r;

	/* libcriu wants SIGCHLD blocked while the restored tree becomes our
	 * child, so an early exit of the tree cannot interrupt the call. */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);
	notify_opts = o;
	bool own_deadline = call_deadline_begin(o, "restore", "criu restore");
	r = criu_local_restore_child(c);
	notify_opts = NULL;
	sigprocmask(SIG_SETMASK, &old, NULL);
	(void) inherit_fds_set_cloexec(o, 1);
	(void) unsetenv("CRIU_CONFIG_FILE");

	if (r <= 0 || stoke_cr_deadline_expired())
		r = criu_call_failed(o, "restore", log_name, r <= 0 ? r : -EIO);
	if (own_deadline)
		stoke_cr_deadline_disarm();
	return r;
}
