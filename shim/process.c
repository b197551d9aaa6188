/* SPDX-License-Identifier: Apache-2.0 */
#include "process.h"
#include "errbuf.h"
#include "seccomp.h"

#include "cleanup.h"
#include "fd-util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

void shim_process_reset_signals(void)
{
	struct sigaction sa = {.sa_handler = SIG_DFL};
	sigset_t none;
	for (int s = 1; s < NSIG; s++)
		(void) sigaction(s, &sa, NULL);
	sigemptyset(&none);
	(void) sigprocmask(SIG_SETMASK, &none, NULL);
}

struct sched_attr_v1 {
	uint32_t size, sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
};

/*
 * /proc/self/`name`, refused unless it is on a procfs: a /proc that a rootfs
 * symlink or an overmount points elsewhere must not take the write
 * (the CVE-2025-52881 class). "self" is a symlink, so cs_proc_open() (no
 * symlinks at all) cannot be used; the last component is not followed.
 */
static int open_proc_self_verified(const char *name, int flags)
{
	char path[64];
	struct statfs sfs;

	snprintf(path, sizeof(path), "/proc/self/%s", name);
	int fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstatfs(fd, &sfs) < 0 || sfs.f_type != PROC_SUPER_MAGIC) {
		close(fd);
		return -EXDEV;
	}
	return fd;
}

int shim_process_apply_early(const struct shim_process *p, char *err, size_t errlen)
{
	for (size_t i = 0; i < p->n_rlimits; i++) {
		struct rlimit rl = {.rlim_cur = p->rlimits[i].soft, .rlim_max = p->rlimits[i].hard};
		if (setrlimit(p->rlimits[i].resource, &rl) < 0)
			return cs_errf_errno(-errno, err, errlen, "process.rlimits[%zu]", i);
	}
	if (p->has_oom_score_adj) {
		char buf[16];
		int n = snprintf(buf, sizeof(buf), "%d", p->oom_score_adj);
		_cleanup_close_ int fd = open_proc_self_verified("oom_score_adj", O_WRONLY);
		int r = fd < 0 ? fd : cs_write_all(fd, buf, (size_t) n);
		if (r < 0)
			return cs_errf_errno(r, err, errlen, "process.oomScoreAdj %d",
					     p->oom_score_adj);
	}
	if (p->has_scheduler) {
		struct sched_attr_v1 a = {
			.size = sizeof(a),
			.sched_policy = p->scheduler.policy,
			.sched_flags = p->scheduler.flags,
			.sched_nice = p->scheduler.nice,
			.sched_priority = p->scheduler.priority,
			.sched_runtime = p->scheduler.runtime,
			.sched_deadline = p->scheduler.deadline,
			.sched_period = p->scheduler.period,
		};
		if (syscall(SYS_sched_setattr, 0, &a, 0) < 0)
			return cs_errf_errno(-errno, err, errlen, "process.scheduler");
	}
	if (p->has_io_priority &&
	    syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, p->io_priority) < 0)
		return cs_errf_errno(-errno, err, errlen, "process.ioPriority");
	if (p->has_cpu_affinity_initial &&
	    sched_setaffinity(0, sizeof(cpu_set_t), &p->cpu_affinity_initial) < 0)
		return cs_errf_errno(-errno, err, errlen, "process.execCPUAffinity.initial");
	return 0;
}

int shim_process_setup_terminal(const struct shim_process *p, int console_sock, bool bind_console,
				char *err, size_t errlen)
{
	char name[128];
	_cleanup_close_ int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return cs_errf_errno(-errno, err, errlen, "open /dev/ptmx");
	if (unlockpt(master) < 0)
		return cs_errf_errno(-errno, err, errlen, "unlockpt");
	if (ptsname_r(master, name, sizeof(name)) != 0)
		return cs_errf_errno(-errno, err, errlen, "ptsname");
	_cleanup_close_ int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		return cs_errf_errno(-errno, err, errlen, "open %s", name);
	/* The process owns its terminal, as with runc: a non-root user must be
	 * able to reopen /dev/pts/N, chmod it, run mesg. The group stays the
	 * devpts one (gid=5, tty), as runc leaves it. */
	if (fchown(slave, p->uid, (gid_t) -1) < 0)
		return cs_errf_errno(-errno, err, errlen, "chown %s to uid %u", name,
				     (unsigned) p->uid);
	if (p->console_height || p->console_width) {
		struct winsize ws = {.ws_row = (unsigned short) p->console_height,
				     .ws_col = (unsigned short) p->console_width};
		if (ioctl(slave, TIOCSWINSZ, &ws) < 0)
			return cs_errf_errno(-errno, err, errlen, "process.consoleSize");
	}
	if (bind_console) {
		int fd = open("/dev/console", O_WRONLY | O_CREAT | O_NOCTTY | O_CLOEXEC, 0600);
		if (fd >= 0) {
			close(fd);
			(void) mount(name, "/dev/console", NULL, MS_BIND, NULL);
		}
	}
	int r = cs_send_fd(console_sock, master, name, strlen(name));
	if (r < 0)
		return cs_errf_errno(r, err, errlen, "send the pty master over the console socket");
	/* TIOCSCTTY needs a session leader without a terminal: after a fork
	 * into a joined pid namespace we are not one (EPERM from conmon's
	 * `run -it`). setsid() fails only when we already lead a session. */
	if (getsid(0) != getpid() && setsid() < 0)
		return cs_errf_errno(-errno, err, errlen, "setsid for the terminal");
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		return cs_errf_errno(-errno, err, errlen, "make %s the controlling terminal", name);
	for (int i = 0; i < 3; i++)
		if (dup2(slave, i) < 0)
			return cs_errf_errno(-errno, err, errlen, "dup2 the pty to fd %d", i);
	return 0;
}

static int capset_sets(uint64_t eff, uint64_t perm, uint64_t inh)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2] = {
		{(uint32_t) eff, (uint32_t) perm, (uint32_t) inh},
		{(uint32_t) (eff >> 32), (uint32_t) (perm >> 32), (uint32_t) (inh >> 32)},
	};
	return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

static int last_cap(void)
{
	static int cached = -1;
	if (cached < 0) {
		char buf[16] = "";
		_cleanup_close_ int fd =
			open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
		cached = CAP_LAST_CAP;
		if (fd >= 0 && read(fd, buf, sizeof(buf) - 1) > 0)
			cached = atoi(buf);
	}
	return cached;
}

static int install_seccomp(const struct shim_seccomp_filter *filter, int *listener, char *err,
			   size_t errlen)
{
	int r = shim_seccomp_install(filter, listener);
	return r < 0 ? cs_errf_errno(r, err, errlen, "linux.seccomp: install the filter") : 0;
}

int shim_process_apply_identity(const struct shim_process *p,
				const struct shim_seccomp_filter *filter, int *ret_listener,
				char *err, size_t errlen)
{
	int listener = -1, r;
	int last = last_cap();

	if (filter && !p->no_new_privileges) {
		r = install_seccomp(filter, &listener, err, errlen);
		if (r < 0)
			return r;
	}
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return cs_errf_errno(-errno, err, errlen, "keep capabilities");
	for (int c = 0; c <= last; c++) {
		if (p->caps.bounding & (UINT64_C(1) << c))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return cs_errf_errno(-errno, err, errlen,
					     "drop capability %d from the bounding set", c);
	}
	if (setgroups(p->n_additional_gids, p->additional_gids) < 0 &&
	    !(errno == EPERM && p->n_additional_gids == 0))
		return cs_errf_errno(-errno, err, errlen, "process.user.additionalGids");
	if (setresgid(p->gid, p->gid, p->gid) < 0)
		return cs_errf_errno(-errno, err, errlen, "process.user.gid %u", (unsigned) p->gid);
	if (setresuid(p->uid, p->uid, p->uid) < 0)
		return cs_errf_errno(-errno, err, errlen, "process.user.uid %u", (unsigned) p->uid);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return cs_errf_errno(-errno, err, errlen, "clear keep-capabilities");
	r = capset_sets(p->caps.effective, p->caps.permitted, p->caps.inheritable);
	if (r < 0)
		return cs_errf_errno(r, err, errlen, "process.capabilities: capset");
	(void) prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	/* As runc: an ambient capability that is not also inheritable and permitted
	 * cannot be raised; that is not an error (the default spec asks for it). */
	for (int c = 0; c <= last; c++)
		if (p->caps.ambient & (UINT64_C(1) << c))
			(void) prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0);
	if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return cs_errf_errno(-errno, err, errlen, "process.noNewPrivileges");
	if (filter && p->no_new_privileges) {
		r = install_seccomp(filter, &listener, err, errlen);
		if (r < 0)
			return r;
	}
	*ret_listener = listener;
	return 0;
}

int shim_process_close_fds(int n_preserve, const int *keep, size_t n_keep)
{
	if (n_preserve < 0)
		n_preserve = 0;
	for (int fd = 3; fd < 3 + n_preserve; fd++) {
		bool ours = false;
		/* A kept fd in the range means the caller had no fd there: ours
		 * must still close on execve. */
		for (size_t i = 0; i < n_keep; i++)
			ours = ours || keep[i] == fd;
		if (!ours)
			(void) cs_fd_set_cloexec(fd, 0);
	}
	return cs_close_fds_except(3 + n_preserve, keep, n_keep);
}

/* `name` under `dirfd` as an O_PATH directory fd, never through a /proc
 * magic link: with no host fd left, those are the only ways out of the root. */
static int open_dir_no_magiclinks(int dirfd, const char *name)
{
	struct open_how how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
	/* Before 5.6: no descriptor of the host is left to lead out, and the
	 * chdir check still refuses a cwd outside the root. */
	if (fd < 0 && errno == ENOSYS)
		fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : (int) fd;
}

int shim_process_mkdir_cwd(const char *cwd)
{
	char buf[PATH_MAX];
	size_t len = strlen(cwd);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, cwd, len + 1);
	_cleanup_close_ int dir = open_dir_no_magiclinks(AT_FDCWD, "/");
	if (dir < 0)
		return dir;
	char *save = NULL;
	for (char *name = strtok_r(buf, "/", &save); name; name = strtok_r(NULL, "/", &save)) {
		/* mkdirat() never follows a symlink in `name`; the open below
		 * follows it, within the root. */
		if (mkdirat(dir, name, 0755) < 0 && errno != EEXIST)
			return -errno;
		int next = open_dir_no_magiclinks(dir, name);
		if (next < 0)
			return next;
		close(dir);
		dir = next;
	}
	return 0;
}

int shim_process_chdir(const char *cwd, char *err, size_t errlen)
{
	char buf[PATH_MAX];

	if (chdir(cwd) < 0)
		return cs_errf_errno(-errno, err, errlen, "process.cwd %s", cwd);
	/* The raw syscall: the kernel prefixes a directory that our root does
	 * not reach with "(unreachable)", which glibc's getcwd() hides. */
	long n = syscall(SYS_getcwd, buf, sizeof(buf));
	if (n < 0)
		return cs_errf_errno(-errno, err, errlen,
				     "process.cwd %s: check that it is inside the container's root",
				     cwd);
	if (n > 0 && buf[0] == '/')
		return 0;
	return cs_errf(-EPERM, err, errlen,
		       "process.cwd %s resolves to %s, outside the container's root", cwd, buf);
}

static const char *env_path(const struct shim_process *p)
{
	for (char **e = p->env; e && *e; e++)
		if (strncmp(*e, "PATH=", 5) == 0)
			return *e + 5;
	return DEFAULT_PATH;
}

int shim_process_find_exec(const struct shim_process *p, char out[PATH_MAX])
{
	const char *name = p->args[0];
	int saw_eacces = 0;

	if (strchr(name, '/')) {
		if ((size_t) snprintf(out, PATH_MAX, "%s", name) >= PATH_MAX)
			return -ENAMETOOLONG;
		if (access(out, X_OK) < 0)
			return -errno;
		return 0;
	}
	const char *path = env_path(p);
	while (*path) {
		const char *colon = strchr(path, ':');
		size_t len = colon ? (size_t) (colon - path) : strlen(path);
		struct stat st;
		if ((size_t) snprintf(out, PATH_MAX, "%.*s/%s", (int) len, len ? path : ".", name) <
			    PATH_MAX &&
		    stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
			if (access(out, X_OK) == 0)
				return 0;
			saw_eacces = 1;
		}
		path += len;
		if (*path == ':')
			path++;
	}
	return saw_eacces ? -EACCES : -ENOENT;
}

/* runc and crun set HOME from the container's /etc/passwd when the config
 * does not: programs (and tests) expect it. Best effort; "/" otherwise. */
static char **env_with_home(const struct shim_process *p)
{
	char line[1024], home[PATH_MAX + 8] = "HOME=/";
	for (char **e = p->env; e && *e; e++)
		if (strncmp(*e, "HOME=", 5) == 0)
			return p->env;
	FILE *f = fopen("/etc/passwd", "re");
	while (f && fgets(line, sizeof(line), f)) {
		char *save = NULL, *fields[7];
		int n = 0;
		for (char *t = strtok_r(line, ":\n", &save); t && n < 7;
		     t = strtok_r(NULL, ":\n", &save))
			fields[n++] = t;
		/* name:x:uid:gid:gecos:home:shell, gecos may be empty (strtok skips it) */
		if (n >= 5 && (uid_t) strtoul(fields[2], NULL, 10) == p->uid) {
			const char *dir = n >= 7 ? fields[5] : fields[n - 2];
			if (dir[0] == '/')
				snprintf(home, sizeof(home), "HOME=%s", dir);
			break;
		}
	}
	if (f)
		fclose(f);
	size_t n = 0;
	while (p->env && p->env[n])
		n++;
	char **env = calloc(n + 2, sizeof(char *));
	char *h = strdup(home);
	if (!env || !h) {
		free(env);
		free(h);
		return p->env;
	}
	memcpy(env, p->env, n * sizeof(char *));
	env[n] = h;
	return env;
}

int shim_process_exec(const struct shim_process *p, const char *path)
{
	/* Last: the runtime's own files (cwd, devices) are not subject to it. */
	if (p->has_umask)
		umask(p->umask);
	if (p->has_cpu_affinity_final &&
	    sched_setaffinity(0, sizeof(cpu_set_t), &p->cpu_affinity_final) < 0)
		return -errno;
	execve(path, p->args, env_with_home(p));
	return -errno;
}
