/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The runtime verbs (runc's names, flags and argument order, as containerd's
 * runc shim calls them). Each verb parses its own flags and logs its own
 * errors once, naming the container and the reason. A missing container is
 * reported as `container "ID" does not exist`, which containerd maps to
 * NotFound.
 */
#include "stoke-runtime-cli.h"
#include "cli-checkpoint.h"
#include "runtime-features.h"
#include "cgroup.h"
#include "container.h"
#include "hooks.h"
#include "oci-config.h"
#include "state.h"

#include "cleanup.h"
#include "fd-util.h"
#include "json-util.h"
#include "log.h"
#include "path-util.h"
#include "strv.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define ERRLEN 1024

/* ---- helpers ------------------------------------------------------------- */

/* Parse getopt_long_only options; a NULL-terminated `shorts` is "+" for verbs
 * whose arguments may look like options (exec COMMAND -x). */
static void reset_getopt(void)
{
	optind = 0;
	opterr = 1;
}

static int need_id(int argc, char **argv, const char *verb, const char **ret)
{
	if (optind >= argc) {
		log_error("%s: missing the container id (usage: stoke %s [options] ID)", verb,
			  verb);
		return -EINVAL;
	}
	*ret = argv[optind++];
	return 0;
}

static int load_state(const struct shim_globals *g, const char *id, struct shim_state **ret)
{
	int r = shim_state_load(g->root, id, ret);
	if (r == -ENOENT || r == -EINVAL)
		return log_error("container \"%s\" does not exist", id), r == -EINVAL ? -ENOENT : r;
	if (r < 0)
		return log_error_errno(r, "container \"%s\": read its state under %s: %m", id,
				       g->root);
	return 0;
}

static int cgroup_of(const struct shim_state *s, struct shim_cgroup **ret)
{
	if (!s->cgroup)
		return -ENOENT;
	return shim_cgroup_from_json(s->cgroup, ret);
}

static void print_json(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
}

static const struct {
	const char *name;
	int sig;
} signal_names[] = {
	{"HUP", SIGHUP},       {"INT", SIGINT},	  {"QUIT", SIGQUIT},	 {"ILL", SIGILL},
	{"TRAP", SIGTRAP},     {"ABRT", SIGABRT}, {"IOT", SIGIOT},	 {"BUS", SIGBUS},
	{"FPE", SIGFPE},       {"KILL", SIGKILL}, {"USR1", SIGUSR1},	 {"SEGV", SIGSEGV},
	{"USR2", SIGUSR2},     {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},	 {"TERM", SIGTERM},
	{"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},	 {"STOP", SIGSTOP},
	{"TSTP", SIGTSTP},     {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},	 {"URG", SIGURG},
	{"XCPU", SIGXCPU},     {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
	{"WINCH", SIGWINCH},   {"IO", SIGIO},	  {"POLL", SIGPOLL},	 {"PWR", SIGPWR},
	{"SYS", SIGSYS},
};

/* "9", "KILL", "SIGKILL", "sigkill", "RTMIN+3"; "0" only checks that the
 * process exists (kill(2)), as runc allows. */
static int parse_signal(const char *s, int *ret)
{
	char *end;
	long n = strtol(s, &end, 10);
	if (*s && !*end) {
		if (n < 0 || n >= NSIG)
			return -EINVAL;
		*ret = (int) n;
		return 0;
	}
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < ELEMENTSOF(signal_names); i++)
		if (strcasecmp(s, signal_names[i].name) == 0) {
			*ret = signal_names[i].sig;
			return 0;
		}
	if (strncasecmp(s, "RTMIN", 5) == 0) {
		n = s[5] == '+' ? strtol(s + 6, &end, 10) : 0;
		if (SIGRTMIN + n <= SIGRTMAX) {
			*ret = SIGRTMIN + (int) n;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_int_arg(const char *flag, const char *v, int *ret)
{
	char *end;
	long n = strtol(v, &end, 10);
	if (!*v || *end || n < 0 || n > INT_MAX) {
		log_error("%s: \"%s\" is not a non-negative number", flag, v);
		return -EINVAL;
	}
	*ret = (int) n;
	return 0;
}

/* ---- terminal relay (run/exec -t without --console-socket) ------------------ */

struct relay {
	int sock[2]; /* [0] ours (receives the pty master), [1] given to the container */
	int master;
	bool raw;
	struct termios saved;
};

static int relay_init(struct relay *rl)
{
	rl->master = -1;
	rl->raw = false;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, rl->sock) < 0)
		return -errno;
	return 0;
}

static void relay_done(struct relay *rl)
{
	if (rl->raw)
		(void) tcsetattr(0, TCSANOW, &rl->saved);
	if (rl->master >= 0)
		close(rl->master);
	if (rl->sock[0] >= 0)
		close(rl->sock[0]);
	if (rl->sock[1] >= 0)
		close(rl->sock[1]);
}

static int relay_receive(struct relay *rl)
{
	char name[256];
	close(rl->sock[1]);
	rl->sock[1] = -1;
	int fd = cs_recv_fd(rl->sock[0], name, sizeof(name));
	if (fd < 0)
		return fd;
	rl->master = fd;
	if (isatty(0) && tcgetattr(0, &rl->saved) == 0) {
		struct termios t = rl->saved;
		struct winsize ws;
		cfmakeraw(&t);
		if (tcsetattr(0, TCSANOW, &t) == 0)
			rl->raw = true;
		if (ioctl(0, TIOCGWINSZ, &ws) == 0)
			(void) ioctl(rl->master, TIOCSWINSZ, &ws);
	}
	return 0;
}

static void copy_some(int from, int to, bool *eof)
{
	char buf[16384];
	ssize_t n = read(from, buf, sizeof(buf));
	if (n <= 0) {
		if (n == 0 || (errno != EINTR && errno != EAGAIN))
			*eof = true;
		return;
	}
	(void) cs_write_all(to, buf, (size_t) n);
}

/* ---- waiting for a foreground process --------------------------------------- */

static const int forwarded[] = {SIGHUP,	  SIGINT,  SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2,
				SIGWINCH, SIGCONT, SIGTSTP, SIGTTIN, SIGTTOU, SIGALRM};

static void block_signals(sigset_t *set)
{
	sigemptyset(set);
	for (size_t i = 0; i < ELEMENTSOF(forwarded); i++)
		sigaddset(set, forwarded[i]);
	sigaddset(set, SIGCHLD);
	sigprocmask(SIG_BLOCK, set, NULL);
}

/* Forward signals to `pid`, relay the terminal if any, reap children until
 * `pid` exits. @return : its exit status (128 + signal when killed). */
static int wait_foreground(pid_t pid, const sigset_t *set, struct relay *rl)
{
	_cleanup_close_ int sfd = signalfd(-1, set, SFD_CLOEXEC);
	bool in_eof = false, out_eof = false;
	int status = 0;

	if (sfd < 0)
		return log_error_errno(-errno, "signalfd: %m"), 1;
	for (;;) {
		struct pollfd pfd[3] = {{.fd = sfd, .events = POLLIN},
					{.fd = -1, .events = POLLIN},
					{.fd = -1, .events = POLLIN}};
		if (rl && rl->master >= 0) {
			pfd[1].fd = in_eof ? -1 : 0;
			pfd[2].fd = out_eof ? -1 : rl->master;
		}
		if (poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (pfd[1].revents)
			copy_some(0, rl->master, &in_eof);
		if (pfd[2].revents)
			copy_some(rl->master, 1, &out_eof);
		if (!(pfd[0].revents & POLLIN))
			continue;
		struct signalfd_siginfo si;
		if (read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if ((int) si.ssi_signo != SIGCHLD) {
			if ((int) si.ssi_signo == SIGWINCH && rl && rl->master >= 0) {
				struct winsize ws;
				if (ioctl(0, TIOCGWINSZ, &ws) == 0)
					(void) ioctl(rl->master, TIOCSWINSZ, &ws);
			}
			(void) kill(pid, (int) si.ssi_signo);
			continue;
		}
		pid_t p;
		int st;
		while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
			if (p != pid)
				continue;
			/* Drain what the terminal still holds. */
			while (rl && rl->master >= 0 && !out_eof) {
				struct pollfd one = {.fd = rl->master, .events = POLLIN};
				if (poll(&one, 1, 0) <= 0)
					break;
				copy_some(rl->master, 1, &out_eof);
			}
			status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			return status;
		}
	}
}

/* ---- create / run -------------------------------------------------------------- */

enum {
	OPT_BUNDLE = 0x100,
	OPT_PID_FILE,
	OPT_CONSOLE_SOCKET,
	OPT_NO_PIVOT,
	OPT_NO_NEW_KEYRING,
	OPT_PRESERVE_FDS,
	OPT_DETACH,
	OPT_KEEP,
	OPT_NO_SUBREAPER,
	OPT_FORCE,
	OPT_ALL,
	OPT_FORMAT,
	OPT_QUIET,
	OPT_PROCESS,
	OPT_TTY,
	OPT_ENV,
	OPT_CWD,
	OPT_USER,
	OPT_CAP,
	OPT_NO_NEW_PRIVS,
	OPT_ADDITIONAL_GIDS,
	OPT_PROCESS_LABEL,
	OPT_APPARMOR,
	OPT_STATS,
	OPT_INTERVAL,
	OPT_ROOTLESS,
	OPT_RESOURCES,
	OPT_IGNORE_PAUSED,
	OPT_CGROUP,
	/* update flags */
	OPT_U_BLKIO_WEIGHT,
	OPT_U_CPU_PERIOD,
	OPT_U_CPU_QUOTA,
	OPT_U_CPU_RT_PERIOD,
	OPT_U_CPU_RT_RUNTIME,
	OPT_U_CPU_SHARE,
	OPT_U_CPUSET_CPUS,
	OPT_U_CPUSET_MEMS,
	OPT_U_KERNEL_MEMORY,
	OPT_U_KERNEL_MEMORY_TCP,
	OPT_U_MEMORY,
	OPT_U_MEMORY_RESERVATION,
	OPT_U_MEMORY_SWAP,
	OPT_U_PIDS_LIMIT,
	OPT_U_L3,
	OPT_U_MEM_BW,
};

struct create_args {
	const char *bundle, *pid_file, *console_socket;
	bool no_pivot, no_new_keyring, detach, keep;
	int preserve_fds;
};

static int parse_create_args(int argc, char **argv, bool is_run, struct create_args *a,
			     const char **ret_id)
{
	static const struct option opts[] = {
		{"bundle", required_argument, NULL, OPT_BUNDLE},
		{"b", required_argument, NULL, OPT_BUNDLE},
		{"pid-file", required_argument, NULL, OPT_PID_FILE},
		{"console-socket", required_argument, NULL, OPT_CONSOLE_SOCKET},
		{"no-pivot", no_argument, NULL, OPT_NO_PIVOT},
		{"no-new-keyring", no_argument, NULL, OPT_NO_NEW_KEYRING},
		{"preserve-fds", required_argument, NULL, OPT_PRESERVE_FDS},
		{"detach", no_argument, NULL, OPT_DETACH},
		{"d", no_argument, NULL, OPT_DETACH},
		{"keep", no_argument, NULL, OPT_KEEP},
		{"no-subreaper", no_argument, NULL, OPT_NO_SUBREAPER},
		{},
	};
	int c;
	reset_getopt();
	while ((c = getopt_long_only(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case OPT_BUNDLE:
			a->bundle = optarg;
			break;
		case OPT_PID_FILE:
			a->pid_file = optarg;
			break;
		case OPT_CONSOLE_SOCKET:
			a->console_socket = optarg;
			break;
		case OPT_NO_PIVOT:
			a->no_pivot = true;
			break;
		case OPT_NO_NEW_KEYRING:
			a->no_new_keyring = true;
			break;
		case OPT_PRESERVE_FDS:
			if (parse_int_arg("--preserve-fds", optarg, &a->preserve_fds) < 0)
				return -EINVAL;
			break;
		case OPT_DETACH:
			if (!is_run)
				goto bad;
			a->detach = true;
			break;
		case OPT_KEEP:
			if (!is_run)
				goto bad;
			a->keep = true;
			break;
		case OPT_NO_SUBREAPER:
			break;
		default:
		bad:
			log_error("%s: unknown option (see stoke --help)", argv[0]);
			return -EINVAL;
		}
	}
	if (need_id(argc, argv, argv[0], ret_id) < 0)
		return -EINVAL;
	if (optind < argc) {
		log_error("%s: unexpected argument \"%s\" after the container id", argv[0],
			  argv[optind]);
		return -EINVAL;
	}
	if (!a->bundle)
		a->bundle = ".";
	return 0;
}

static int load_config(const char *bundle, const char *id, struct shim_config **ret)
{
	char err[ERRLEN] = "";
	int r = shim_config_load(bundle, ret, err, sizeof(err));
	if (r < 0) {
		if (!*err)
			snprintf(err, sizeof(err), "%s", strerror(-r));
		log_error("container \"%s\": invalid configuration in bundle %s: %s", id, bundle,
			  err);
	}
	return r;
}

/* What create and run share: parse the flags, check the id, load and
 * validate the bundle's config, and fill the create options. Logs its
 * errors. @return : 0 or -1. */
static int prepare_create(int argc, char **argv, bool run, const struct shim_globals *g,
			  struct create_args *a, const char **ret_id, struct shim_config **ret_cfg,
			  struct shim_create_opts *ret_opts)
{
	const char *id;

	if (parse_create_args(argc, argv, run, a, &id) < 0)
		return -1;
	if (!shim_state_id_valid(id))
		return log_error("invalid container id \"%s\"", id), -1;
	if (load_config(a->bundle, id, ret_cfg) < 0)
		return -1;
	*ret_opts = (struct shim_create_opts){
		.id = id,
		.root = g->root,
		.pid_file = a->pid_file,
		.console_socket = a->console_socket,
		.console_fd = -1,
		.no_pivot = a->no_pivot,
		.no_new_keyring = a->no_new_keyring,
		.preserve_fds = a->preserve_fds,
		.criu_path = g->criu_path,
	};
	*ret_id = id;
	return 0;
}

static int cmd_create(int argc, char **argv, const struct shim_globals *g)
{
	struct create_args a = {0};
	_cleanup_(shim_config_freep) struct shim_config *cfg = NULL;
	const char *id;
	char err[ERRLEN] = "";
	pid_t pid;

	struct shim_create_opts o;
	if (prepare_create(argc, argv, false, g, &a, &id, &cfg, &o) < 0)
		return 1;
	/* org.stoke.snapshot: restore the process tree instead of process.args. */
	int r = shim_cr_snapshot_of(cfg) ? shim_cr_create_restore(cfg, &o, &pid, err, sizeof(err))
					 : shim_container_create(cfg, &o, &pid, err, sizeof(err));
	if (r < 0)
		return log_error("container \"%s\": create failed: %s", id, err), 1;
	log_debug("container \"%s\": created, init pid %d, bundle %s", id, (int) pid, cfg->bundle);
	return 0;
}

/* A failing poststart hook fails run and removes the container (runc). */
static int run_abort(const struct shim_globals *g, struct shim_state *s, struct relay *rl,
		     const char *hook_err)
{
	char err[ERRLEN] = "";

	relay_done(rl);
	log_error("container \"%s\": run failed: %s", s->id, hook_err);
	if (shim_container_destroy(g->root, s, err, sizeof(err)) < 0)
		log_error("container \"%s\": delete: %s", s->id, err);
	return 1;
}

static int cmd_run(int argc, char **argv, const struct shim_globals *g)
{
	struct create_args a = {0};
	_cleanup_(shim_config_freep) struct shim_config *cfg = NULL;
	struct relay rl = {.sock = {-1, -1}, .master = -1};
	const char *id;
	char err[ERRLEN] = "";
	sigset_t set;
	pid_t pid;
	int r;

	struct shim_create_opts o;
	if (prepare_create(argc, argv, true, g, &a, &id, &cfg, &o) < 0)
		return 1;
	o.start_now = true;
	o.subreaper = !a.detach;
	bool relay = cfg->has_process && cfg->process.terminal && !a.console_socket;
	if (relay && a.detach)
		return log_error("container \"%s\": a detached container with a terminal needs "
				 "--console-socket",
				 id),
		       1;
	if (relay) {
		r = relay_init(&rl);
		if (r < 0)
			return log_error_errno(r, "socketpair: %m"), 1;
		o.console_fd = rl.sock[1];
	}
	if (!a.detach)
		block_signals(&set);

	r = shim_container_create(cfg, &o, &pid, err, sizeof(err));
	if (r < 0) {
		relay_done(&rl);
		return log_error("container \"%s\": run failed: %s", id, err), 1;
	}
	if (relay && relay_receive(&rl) < 0)
		log_warning("container \"%s\": no terminal received", id);
	log_debug("container \"%s\": running, init pid %d", id, (int) pid);

	_cleanup_(shim_state_freep) struct shim_state *s = NULL;
	if (cfg->hooks[SHIM_HOOK_POSTSTART].n && shim_state_load(g->root, id, &s) == 0) {
		json_object *st;
		if (shim_state_oci_json(s, SHIM_STATUS_RUNNING, &st) == 0) {
			r = shim_hooks_run(cfg, SHIM_HOOK_POSTSTART, json_object_to_json_string(st),
					   err, sizeof(err));
			json_object_put(st);
			if (r < 0)
				return run_abort(g, s, &rl, err);
		}
	}
	if (a.detach)
		return 0;

	int status = wait_foreground(pid, &set, relay ? &rl : NULL);
	relay_done(&rl);
	if (!a.keep) {
		if (!s && shim_state_load(g->root, id, &s) < 0)
			return status;
		if (shim_container_destroy(g->root, s, err, sizeof(err)) < 0)
			log_error("container \"%s\": delete: %s", id, err);
		else if (*err)
			log_warning("container \"%s\": %s", id, err);
	}
	return status;
}

/* ---- start, state, kill, delete --------------------------------------------------- */

static int one_id(int argc, char **argv, const char **ret_id)
{
	static const struct option opts[] = {{}};
	reset_getopt();
	if (getopt_long_only(argc, argv, "", opts, NULL) != -1) {
		log_error("%s: unknown option", argv[0]);
		return -EINVAL;
	}
	if (need_id(argc, argv, argv[0], ret_id) < 0)
		return -EINVAL;
	if (optind < argc) {
		log_error("%s: unexpected argument \"%s\"", argv[0], argv[optind]);
		return -EINVAL;
	}
	return 0;
}

static int cmd_start(int argc, char **argv, const struct shim_globals *g)
{
	_cleanup_(shim_state_freep) struct shim_state *s = NULL;
	_cleanup_close_ int lock = -EBADF;
	const char *id;
	char err[ERRLEN] = "";

	if (one_id(argc, argv, &id) < 0)
		return 1;
	if (load_state(g, id, &s) < 0)
		return 1;
	/* Serialise with a concurrent start/delete, then re-read what it left. */
	if (shim_state_lock(g->root, id, &lock) < 0 ||
	    (s = shim_state_free(s), load_state(g, id, &s) < 0))
		return 1;
	int r = shim_container_start(g->root, s, err, sizeof(err));
	if (r < 0)
		return log_error("container \"%s\": start failed: %s", id, err), 1;
	if (*err)
		log_warning("container \"%s\": %s", id, err);
	return 0;
}

static int cmd_state(int argc, char **argv, const struct shim_globals *g)
{
	_cleanup_(shim_state_freep) struct shim_state *s = NULL;
	const char *id;
	json_object *o;

	if (one_id(argc, argv, &id) < 0 || load_state(g, id, &s) < 0)
		return 1;
	if (shim_state_oci_json(s, shim_state_status(g->root, s), &o) < 0)
		return log_error("state: out of memory"), 1;
	print_json(o);
	json_object_put(o);
	return 0;
}

static int cmd_kill(int argc, char **argv, const struct shim_globals *g)
{
	static const struct option opts[] = {
		{"all", no_argument, NULL, OPT_ALL},
		{"a", no_argument, NULL, OPT_ALL},
		{},
	};
	_cleanup_(shim_state_freep) struct shim_state *s = NULL;
	bool all = false;
	const char *id;
	int sig = SIGTERM, c, r;

	reset_getopt();
	while ((c = getopt_long_only(argc, argv, "+", opts, NULL)) != -1) {
		if (c != OPT_ALL)
			return log_error("kill: unknown option"), 1;
		all = true;
	}
	if (need_id(argc, argv, "kill", &id) < 0)
		return 1;
	if (optind < argc && parse_signal(argv[optind++], &sig) < 0)
		return log_error("kill: unknown signal \"%s\"", argv[optind - 1]), 1;
	if (optind < argc)
		return log_error("kill: unexpected argument \"%s\"", argv[optind]), 1;
	if (load_state(g, id, &s) < 0)
		return 1;
	enum shim_status st = shim_state_status(g->root, s);
	if (all) {
		_cleanup_(shim_cgroup_freep) struct shim_cgroup *cg = NULL;
		if (cgroup_of(s, &cg) < 0)
			return log_error("container \"%s\": no cgroup recorded", id), 1;
		r = shim_cgroup_kill_all(cg, sig);
		if (r < 0)
			return log_error_errno(r, "container \"%s\": kill --all: %m", id), 1;
		return 0;
	}
	if (st == SHIM_STATUS_STOPPED)
		return log_error("container \"%s\": container not running", id), 1;
	if (kill(s->pid, sig) < 0) {
		if (errno == ESRCH)
			return log_error("container \"%s\": container not running", id), 1;
		return log_error_errno(-errno, "container \"%s\": kill pid %d: %m", id, s->pid), 1;
	}
	/* v1 frozen tasks take a SIGKILL only once thawed (runc thaws too);
	 * other signals wait for the resume. */
	if (st == SHIM_STATUS_PAUSED && sig == SIGKILL) {
		_cleanup_(shim_cgroup_freep) struct shim_cgroup *cg = NULL;
		r = cgroup_of(s, &cg);
		if (r >= 0)
			r = shim_cgroup_freeze(cg, false);
		if (r < 0)
			return log_error_errno(r, "container \"%s\": thaw after SIGKILL: %m", id),
			       1;
	}
	return 0;
}

static int delete_one(const struct shim_globals *g, const char *id, bool force)
{
	_cleanup_(shim_state_freep) struct shim_state *s = NULL;
	char err[ERRLEN] = "";
	int r = shim_state_load(g->root, id, &s);
	if (r < 0) {
		if (force && (r == -ENOENT || r == -EINVAL))
			return 0; /* runc: delete --force of nothing succeeds */
		(void) load_state(g, id, &s);
		return -ENOENT;
	}
	enum shim_status st = shim_state_status(g->root, s);
	if (!force && (st == SHIM_STATUS_RUNNING || st == SHIM_STATUS_PAUSED)) {
		log_error("container \"%s\": cannot delete a container that is not stopped: %s", id,
			  shim_status_name(st));
		return -EBUSY;
	}
	r = shim_container_destroy(g->root, s, err, sizeof(err));
	if (r < 0)
		return log_error("container \"%s\": delete: %s", id, err), r;
	if (*err)
		log_warning("container \"%s\": %s", id, err);
	return 0;
}

/* delete [--force] ID [ID...] (runc takes several). */
static int cmd_delete(int argc, char **argv, const struct shim_globals *g)
{
	static const struct option opts[] = {
		{"force", no_argument, NULL, OPT_FORCE},
		{"f", no_argument, NULL, OPT_FORCE},
		{},
	};
	bool force = false;
	const char *id;
	int c, status = 0;

	reset_getopt();
	while ((c = getopt_long_only(argc, argv, "", opts, NULL)) != -1) {
		if (c != OPT_FORCE)
			return log_error("delete: unknown option"), 1;
		force = true;
	}
	if (need_id(argc, argv, "delete", &id) < 0)
		return 1;
	for (;;) {
		if (delete_one(g, id, force) < 0)
			status = 1;
		if (optind >= argc)
			return status;
		id = argv[optind++];
	}
}

/* ---- list, ps, pause, resume, events, update --------------------------------------- */

static int cmd_list(int argc, char **argv, const struct shim_globals *g)
{
	static const struct option opts[] = {
		{"format", required_argument, NULL, OPT_FORMAT},
		{"f", required_argument, NULL, OPT_FORMAT},
		{"quiet", no_argument, NULL, OPT_QUIET},
		{"q", no_argument, NULL, OPT_QUIET},
		{},
	};
	_cleanup_strv_free_ char **ids = NULL;
	bool json = false, quiet = false;
	int c;

	reset_getopt();
	while ((c = getopt_long_only(argc, argv, "", opts, NULL)) != -1) {
		if (c == OPT_FORMAT) {
			if (strcmp(optarg, "json") && strcmp(optarg, "table"))
				return log_error("list: unknown format \"%s\" (table or json)",
						 optarg),
				       1;
			json = strcmp(optarg, "json") == 0;
		} else if (c == OPT_QUIET) {
			quiet = true;
		} else {
			return log_error("list: unknown option"), 1;
		}
	}
	int r = shim_state_list(g->root, &ids);
	if (r < 0)
		return log_error_errno(r, "list: read %s: %m", g->root), 1;
	json_object *arr = json_object_new_array();
	if (!json && !quiet)
		printf("%-12s%-8s%-10s%-40s%-32s%s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED",
		       "OWNER");
	for (char **i = ids; *i; i++) {
		_cleanup_(shim_state_freep) struct shim_state *s = NULL;
		if (shim_state_load(g->root, *i, &s) < 0)
			continue;
		enum shim_status st = shim_state_status(g->root, s);
		if (quiet) {
			puts(s->id);
		} else if (json) {
			json_object *o;
			if (shim_state_oci_json(s, st, &o) == 0)
				json_object_array_add(arr, o);
		} else {
			printf("%-12s%-8d%-10s%-40s%-32s%s\n", s->id,
			       st == SHIM_STATUS_STOPPED ? 0 : s->pid, shim_status_name(st),
			       s->bundle, s->created ? s->created : "",
			       s->owner && *s->owner ? s->owner : "root");
		}
	}
	if (json && !quiet)
		puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN |
								 JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(arr);
	return 0;
}

static int container_pids(const struct shim_globals *g, const struct shim_state *s, pid_t **pids,
			  size_t *n)
{
	_cleanup_(shim_cgroup_freep) struct shim_cgroup *cg = NULL;
	int r = cgroup_of(s, &cg);
	if (r < 0)
		return r;
	return shim_cgroup_pids(cg, pids, n);
}

static int cmd_ps(int argc, char **argv, const struct shim_globals *g)
{
	static const struct option opts[] = {
		{"format", required_argument, NULL, OPT_FORMAT},
		{"f", required_argument, NULL, OPT_FORMAT},
		{},
	};
	_cleanup_(shim_state_freep) struct shim_state *s = NULL;
	_cleanup_free_ pid_t *pids = NULL;
	bool json = false;
	size_t n = 0;
	const char *id;
	int c;

	reset_getopt();
	while ((c = getopt_long_only(argc, argv, "+", opts, NULL)) != -1) {
		if (c != OPT_FORMAT || (strcmp(optarg, "json") && strcmp(optarg, "table")))
			return log_error("ps: bad option (--format table|json)"), 1;
		json = strcmp(optarg, "json") == 0;
	}
	if (need_id(argc, argv, "ps", &id) < 0 || load_state(g, id, &s) < 0)
		return 1;
	int r = container_pids(g, s, &pids, &n);
	if (r < 0)
		return log_error_errno(r, "container \"%s\": list its processes: %m", id), 1;
	if (json) {
		json_object *arr = json_object_new_array();
		for (size_t i = 0; i < n; i++)
			json_object_array_add(arr, json_object_new_int(pids[i]));
		puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
		json_object_put(arr);
		return 0;
	}
	/* Table: the host's ps output (arguments after the id, default -ef), only our pids. */
	_cleanup_strv_free_ char **psargv = NULL;
	if (cs_strv_push(&psargv, "ps") < 0)
		return 1;
	if (optind >= argc && cs_strv_push(&psargv, "-ef") < 0)
		return 1;
	for (int i = optind; i < argc; i++)
		if (cs_strv_push(&psargv, argv[i]) < 0)
			return 1;
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return 1;
	pid_t child = fork();
	if (child == 0) {
		dup2(pfd[1], 1);
		execvp("ps", psargv);
		_exit(127);
	}
	close(pfd[1]);
	_cleanup_fclose_ FILE *f = fdopen(pfd[0], "r");
	char line[4096];
	int pid_col = -1;
	while (f && fgets(line, sizeof(line), f)) {
		if (pid_col < 0) {
			char copy[4096], *save = NULL;
			int col = 0;
			snprintf(copy, sizeof(copy), "%s", line);
			for (char *t = strtok_r(copy, " \t\n", &save); t;
			     t = strtok_r(NULL, " \t\n", &save), col++)
				if (strcmp(t, "PID") == 0)
					pid_col = col;
			fputs(line, stdout);
			if (pid_col < 0)
				pid_col = 1;
			continue;
		}
		char copy[4096], *save = NULL, *t;
		int col = 0;
		snprintf(copy, sizeof(copy), "%s", line);
		for (t = strtok_r(copy, " \t\n", &save); t && col < pid_col;
		     t = strtok_r(NULL, " \t\n", &save))
			col++;
		if (!t)
			continue;
		pid_t p = (pid_t) atoi(t);
		for (size_t i = 0; i < n; i++)
			if (pids[i] == p) {
				fputs(line, stdout);
				break;
			}
	}
	waitpid(child, NULL, 0);
	return 0;
}

static int cmd_pause_resume(int argc, char **argv, const struct shim_globals *g)
{
	_cleanup_(shim_state_freep) struct shim_state *s = NULL;
	_cleanup_(shim_cgroup_freep) struct shim_cgroup *cg = NULL;
	bool pause = strcmp(argv[0], "pause") == 0;
	const char *id;

	if (one_id(argc, argv, &id) < 0 || load_state(g, id, &s) < 0)
		return 1;
	enum shim_status st = shim_state_status(g->root, s);
	if (pause && st != SHIM_STATUS_RUNNING && st != SHIM_STATUS_CREATED)
		return log_error("container \"%s\": container not running (%s)", id,
				 shim_status_name(st)),
		       1;
	if (!pause && st != SHIM_STATUS_PAUSED)
		return log_error("container \"%s\": container not paused (%s)", id,
				 shim_status_name(st)),
		       1;
	int r = cgroup_of(s, &cg);
	if (r >= 0)
		r = shim_cgroup_freeze(cg, pause);
	if (r < 0)
		return log_error_errno(r, "container \"%s\": %s: %m", id, argv[0]), 1;
	return 0;
}

static void print_event(const char *type, const char *id, json_object *data)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "type", json_object_new_string(type));
	json_object_object_add(o, "id", json_object_new_string(id));
	if (data)
		json_object_object_add(o, "data", data);
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(stdout);
	json_object_put(o);
}

/* "5s", "500ms", "1m", or plain seconds. */
static int parse_duration_ms(const char *s, int *ret)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || v < 0)
		return -EINVAL;
	if (strcmp(end, "ms") == 0)
		*ret = (int) v;
	else if (!*end || strcmp(end, "s") == 0)
		*ret = (int) (v * 1000);
	else if (strcmp(end, "m") == 0)
		*ret = (int) (v * 60000);
	else
		return -EINVAL;
	return 0;
}

static int cmd_events(int argc, char **argv, const struct shim_globals *g)
{
	static const struct option opts[] = {
		{"stats", no_argument, NULL, OPT_STATS},
		{"interval", required_argument, NULL, OPT_INTERVAL},
		{},
	};
	_cleanup_(shim_state_freep) struct shim_state *s = NULL;
	_cleanup_(shim_cgroup_freep) struct shim_cgroup *cg = NULL;
	bool stats = false;
	int interval = 5000, c;
	const char *id;

	reset_getopt();
	while ((c = getopt_long_only(argc, argv, "", opts, NULL)) != -1) {
		if (c == OPT_STATS)
			stats = true;
		else if (c == OPT_INTERVAL && parse_duration_ms(optarg, &interval) == 0 &&
			 interval > 0)
			;
		else
			return log_error("events: bad option (--stats, --interval DURATION)"), 1;
	}
	if (need_id(argc, argv, "events", &id) < 0 || load_state(g, id, &s) < 0)
		return 1;
	if (shim_state_status(g->root, s) == SHIM_STATUS_STOPPED)
		return log_error("container \"%s\": container not running", id), 1;
	int r = cgroup_of(s, &cg);
	if (r < 0)
		return log_error_errno(r, "container \"%s\": cgroup: %m", id), 1;

	uint64_t ooms = 0, now;
	bool have_oom = shim_cgroup_oom_kill_count(cg, &ooms) == 0;
	for (;;) {
		json_object *data;
		r = shim_cgroup_stats(cg, &data);
		if (r < 0)
			return log_error_errno(r, "container \"%s\": stats: %m", id), 1;
		print_event("stats", id, data);
		if (stats)
			return 0;
		struct timespec ts = {interval / 1000, (long) (interval % 1000) * 1000000};
		nanosleep(&ts, NULL);
		if (have_oom && shim_cgroup_oom_kill_count(cg, &now) == 0 && now > ooms) {
			ooms = now;
			print_event("oom", id, NULL);
		}
		if (!shim_state_pid_alive(s))
			return 0;
	}
}

/* "100m", "1g", "1024", "-1" → bytes. */
static int parse_bytes(const char *s, int64_t *ret)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s)
		return -EINVAL;
	int64_t mult = 1;
	switch (tolower((unsigned char) *end)) {
	case '\0':
		break;
	case 'k':
		mult = INT64_C(1) << 10;
		break;
	case 'm':
		mult = INT64_C(1) << 20;
		break;
	case 'g':
		mult = INT64_C(1) << 30;
		break;
	case 't':
		mult = INT64_C(1) << 40;
		break;
	default:
		return -EINVAL;
	}
	if (*end && end[1] && !(tolower((unsigned char) end[1]) == 'b' && !end[2]))
		return -EINVAL;
	*ret = (int64_t) (v * (double) mult);
	return 0;
}

static json_object *section(json_object *res, const char *name)
{
	json_object *o;
	if (json_object_object_get_ex(res, name, &o))
		return o;
	o = json_object_new_object();
	json_object_object_add(res, name, o);
	return o;
}

static int update_flag(json_object *res, int opt, const char *v)
{
	int64_t n;
	char *end;
	struct {
		int opt;
		const char *sec, *key;
		bool bytes, is_string;
	} const t[] = {
		{OPT_U_BLKIO_WEIGHT, "blockIO", "weight", false, false},
		{OPT_U_CPU_PERIOD, "cpu", "period", false, false},
		{OPT_U_CPU_QUOTA, "cpu", "quota", false, false},
		{OPT_U_CPU_RT_PERIOD, "cpu", "realtimePeriod", false, false},
		{OPT_U_CPU_RT_RUNTIME, "cpu", "realtimeRuntime", false, false},
		{OPT_U_CPU_SHARE, "cpu", "shares", false, false},
		{OPT_U_CPUSET_CPUS, "cpu", "cpus", false, true},
		{OPT_U_CPUSET_MEMS, "cpu", "mems", false, true},
		{OPT_U_KERNEL_MEMORY, "memory", "kernel", true, false},
		{OPT_U_KERNEL_MEMORY_TCP, "memory", "kernelTCP", true, false},
		{OPT_U_MEMORY, "memory", "limit", true, false},
		{OPT_U_MEMORY_RESERVATION, "memory", "reservation", true, false},
		{OPT_U_MEMORY_SWAP, "memory", "swap", true, false},
		{OPT_U_PIDS_LIMIT, "pids", "limit", false, false},
	};
	for (size_t i = 0; i < ELEMENTSOF(t); i++) {
		if (t[i].opt != opt)
			continue;
		json_object *sec = section(res, t[i].sec);
		if (t[i].is_string) {
			json_object_object_add(sec, t[i].key, json_object_new_string(v));
			return 0;
		}
		if (t[i].bytes) {
			if (parse_bytes(v, &n) < 0)
				return -EINVAL;
		} else {
			n = strtoll(v, &end, 10);
			if (!*v || *end)
				return -EINVAL;
		}
		json_object_object_add(sec, t[i].key, json_object_new_int64(n));
		return 0;
	}
	return -EOPNOTSUPP;
}

static int cmd_update(int argc, char **argv, const struct shim_globals *g)
{
	static const struct option opts[] = {
		{"resources", required_argument, NULL, OPT_RESOURCES},
		{"r", required_argument, NULL, OPT_RESOURCES},
		{"blkio-weight", required_argument, NULL, OPT_U_BLKIO_WEIGHT},
		{"cpu-period", required_argument, NULL, OPT_U_CPU_PERIOD},
		{"cpu-quota", required_argument, NULL, OPT_U_CPU_QUOTA},
		{"cpu-rt-period", required_argument, NULL, OPT_U_CPU_RT_PERIOD},
		{"cpu-rt-runtime", required_argument, NULL, OPT_U_CPU_RT_RUNTIME},
		{"cpu-share", required_argument, NULL, OPT_U_CPU_SHARE},
		{"cpuset-cpus", required_argument, NULL, OPT_U_CPUSET_CPUS},
		{"cpuset-mems", required_argument, NULL, OPT_U_CPUSET_MEMS},
		{"kernel-memory", required_argument, NULL, OPT_U_KERNEL_MEMORY},
		{"kernel-memory-tcp", required_argument, NULL, OPT_U_KERNEL_MEMORY_TCP},
		{"memory", required_argument, NULL, OPT_U_MEMORY},
		{"memory-reservation", required_argument, NULL, OPT_U_MEMORY_RESERVATION},
		{"memory-swap", required_argument, NULL, OPT_U_MEMORY_SWAP},
		{"pids-limit", required_argument, NULL, OPT_U_PIDS_LIMIT},
		{"l3-cache-schema", required_argument, NULL, OPT_U_L3},
		{"mem-bw-schema", required_argument, NULL, OPT_U_MEM_BW},
		{},
	};
	_cleanup_(shim_state_freep) struct shim_state *s = NULL;
	_cleanup_(shim_cgroup_freep) struct shim_cgroup *cg = NULL;
	const char *file = NULL, *id;
	json_object *res = json_object_new_object();
	char err[ERRLEN];
	int c, r;

	reset_getopt();
	while ((c = getopt_long_only(argc, argv, "", opts, NULL)) != -1) {
		if (c == OPT_RESOURCES) {
			file = optarg;
			continue;
		}
		if (c == OPT_U_L3 || c == OPT_U_MEM_BW) {
			json_object_put(res);
			return log_error("update: Intel RDT is not supported"), 1;
		}
		r = c == '?' ? -EINVAL : update_flag(res, c, optarg);
		if (r < 0) {
			json_object_put(res);
			return log_error("update: bad value \"%s\" for option %s",
					 optarg ? optarg : "", argv[optind - 1]),
			       1;
		}
	}
	if (need_id(argc, argv, "update", &id) < 0 || load_state(g, id, &s) < 0) {
		json_object_put(res);
		return 1;
	}
	if (file) {
		json_object_put(res);
		res = NULL;
		_cleanup_free_ char *buf = NULL;
		size_t len = 0;
		if (strcmp(file, "-") == 0) {
			FILE *m = open_memstream(&buf, &len);
			char chunk[4096];
			size_t n;
			while (m && (n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
				fwrite(chunk, 1, n, m);
			if (m)
				fclose(m);
			r = buf ? 0 : -ENOMEM;
		} else {
			r = cs_read_file_at(AT_FDCWD, file, 1 << 20, &buf, &len);
		}
		if (r < 0)
			return log_error_errno(r, "update: read %s: %m", file), 1;
		r = cs_json_parse(buf, len, &res, err, sizeof(err));
		if (r < 0)
			return log_error("update: %s: invalid JSON: %s", file, err), 1;
	}
	/* Validate like create does: wrap it as a config's "linux" object. */
	json_object *lin = json_object_new_object();
	json_object_object_add(lin, "resources", json_object_get(res));
	r = shim_cgroup_validate(lin, err, sizeof(err));
	json_object_put(lin);
	if (r < 0) {
		json_object_put(res);
		return log_error("container \"%s\": update: %s", id, err), 1;
	}
	if (shim_state_status(g->root, s) == SHIM_STATUS_STOPPED) {
		json_object_put(res);
		return log_error("container \"%s\": container not running", id), 1;
	}
	r = cgroup_of(s, &cg);
	if (r >= 0)
		r = shim_cgroup_update(cg, res);
	json_object_put(res);
	if (r < 0) {
		const char *why = shim_cgroup_last_error();
		return log_error("container \"%s\": update: %s", id, *why ? why : strerror(-r)), 1;
	}
	return 0;
}

/* ---- exec -------------------------------------------------------------------------- */

static int add_cap(struct shim_caps *caps, const char *name)
{
	static const char *const fields = "exec --cap";
	json_object *o = json_object_new_object(), *a = json_object_new_array();
	struct shim_process tmp;
	char err[256];
	json_object_array_add(a, json_object_new_string(name));
	json_object_object_add(o, "bounding", a);
	json_object *p = json_object_new_object();
	json_object *args = json_object_new_array();
	json_object_array_add(args, json_object_new_string("x"));
	json_object_object_add(p, "args", args);
	json_object_object_add(p, "cwd", json_object_new_string("/"));
	json_object_object_add(p, "capabilities", o);
	int r = shim_process_parse(p, fields, &tmp, err, sizeof(err));
	json_object_put(p);
	if (r < 0) {
		log_error("%s", err);
		return r;
	}
	uint64_t bit = tmp.caps.bounding;
	caps->bounding |= bit;
	caps->effective |= bit;
	caps->permitted |= bit;
	caps->inheritable |= bit;
	caps->ambient |= bit;
	shim_process_done(&tmp);
	return 0;
}

static int cmd_exec(int argc, char **argv, const struct shim_globals *g)
{
	static const struct option opts[] = {
		{"process", required_argument, NULL, OPT_PROCESS},
		{"p", required_argument, NULL, OPT_PROCESS},
		{"detach", no_argument, NULL, OPT_DETACH},
		{"d", no_argument, NULL, OPT_DETACH},
		{"pid-file", required_argument, NULL, OPT_PID_FILE},
		{"tty", no_argument, NULL, OPT_TTY},
		{"t", no_argument, NULL, OPT_TTY},
		{"console-socket", required_argument, NULL, OPT_CONSOLE_SOCKET},
		{"env", required_argument, NULL, OPT_ENV},
		{"e", required_argument, NULL, OPT_ENV},
		{"cwd", required_argument, NULL, OPT_CWD},
		{"user", required_argument, NULL, OPT_USER},
		{"u", required_argument, NULL, OPT_USER},
		{"additional-gids", required_argument, NULL, OPT_ADDITIONAL_GIDS},
		{"g", required_argument, NULL, OPT_ADDITIONAL_GIDS},
		{"cap", required_argument, NULL, OPT_CAP},
		{"c", required_argument, NULL, OPT_CAP},
		{"no-new-privs", no_argument, NULL, OPT_NO_NEW_PRIVS},
		{"preserve-fds", required_argument, NULL, OPT_PRESERVE_FDS},
		{"process-label", required_argument, NULL, OPT_PROCESS_LABEL},
		{"apparmor", required_argument, NULL, OPT_APPARMOR},
		{"ignore-paused", no_argument, NULL, OPT_IGNORE_PAUSED},
		{"cgroup", required_argument, NULL, OPT_CGROUP},
		{},
	};
	_cleanup_(shim_state_freep) struct shim_state *s = NULL;
	_cleanup_(shim_config_freep) struct shim_config *cfg = NULL;
	_cleanup_strv_free_ char **envs = NULL, **caps = NULL, **gids = NULL;
	struct shim_process p = {0};
	struct relay rl = {.sock = {-1, -1}, .master = -1};
	struct shim_exec_opts eo = {.console_fd = -1};
	const char *process_file = NULL, *cwd = NULL, *user = NULL, *id;
	bool tty = false, nnp = false, ignore_paused = false;
	char err[ERRLEN] = "";
	int c, r, status = 1;
	sigset_t set;
	pid_t pid;

	reset_getopt();
	while ((c = getopt_long_only(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case OPT_PROCESS:
			process_file = optarg;
			break;
		case OPT_DETACH:
			eo.detach = true;
			break;
		case OPT_PID_FILE:
			eo.pid_file = optarg;
			break;
		case OPT_TTY:
			tty = true;
			break;
		case OPT_CONSOLE_SOCKET:
			eo.console_socket = optarg;
			break;
		case OPT_ENV:
			if (!strchr(optarg, '='))
				return log_error("exec --env: \"%s\" is not KEY=value", optarg), 1;
			if (cs_strv_push(&envs, optarg) < 0)
				return 1;
			break;
		case OPT_CWD:
			cwd = optarg;
			break;
		case OPT_USER:
			user = optarg;
			break;
		case OPT_ADDITIONAL_GIDS:
			if (cs_strv_push(&gids, optarg) < 0)
				return 1;
			break;
		case OPT_CAP:
			if (cs_strv_push(&caps, optarg) < 0)
				return 1;
			break;
		case OPT_NO_NEW_PRIVS:
			nnp = true;
			break;
		case OPT_PRESERVE_FDS:
			if (parse_int_arg("--preserve-fds", optarg, &eo.preserve_fds) < 0)
				return 1;
			break;
		case OPT_PROCESS_LABEL:
		case OPT_APPARMOR:
			return log_error("exec: %s: no SELinux or AppArmor on this host",
					 argv[optind - 1]),
			       1;
		case OPT_IGNORE_PAUSED:
			ignore_paused = true;
			break;
		case OPT_CGROUP:
			break;
		default:
			return log_error("exec: unknown option (see stoke --help)"), 1;
		}
	}
	if (need_id(argc, argv, "exec", &id) < 0 || load_state(g, id, &s) < 0)
		return 1;
	if (!process_file && optind >= argc)
		return log_error("exec: give a command or --process FILE"), 1;
	enum shim_status st = shim_state_status(g->root, s);
	if (st == SHIM_STATUS_STOPPED)
		return log_error("container \"%s\": cannot exec in a stopped container", id), 1;
	if (st == SHIM_STATUS_PAUSED && !ignore_paused)
		return log_error("container \"%s\": cannot exec in a paused container", id), 1;
	if (!s->config)
		return log_error("container \"%s\": its state has no config", id), 1;
	r = shim_config_parse(json_object_get(s->config), s->bundle, &cfg, err, sizeof(err));
	if (r < 0)
		return log_error("container \"%s\": its config: %s", id, err), 1;

	if (process_file) {
		json_object *pj;
		r = cs_json_parse_file(process_file, SHIM_CONFIG_MAX_SIZE, &pj, err, sizeof(err));
		if (r < 0)
			return log_error("exec --process %s: %s", process_file,
					 r == -EINVAL ? err : strerror(-r)),
			       1;
		r = shim_process_parse(pj, "process", &p, err, sizeof(err));
		json_object_put(pj);
		if (r < 0)
			return log_error("exec --process %s: %s", process_file, err), 1;
	} else {
		/* The container's own process, with the given command and overrides. */
		json_object *pj;
		if (cs_json_get_object(s->config, "process", &pj) < 0)
			return log_error("container \"%s\": no process in its config", id), 1;
		pj = json_object_get(json_object_get(pj));
		json_object *copy = NULL;
		json_object_deep_copy(pj, &copy, NULL);
		json_object_put(pj);
		json_object *args = json_object_new_array();
		for (int i = optind; i < argc; i++)
			json_object_array_add(args, json_object_new_string(argv[i]));
		json_object_object_add(copy, "args", args);
		json_object_object_add(copy, "terminal", json_object_new_boolean(tty));
		json_object_object_del(copy, "consoleSize");
		r = shim_process_parse(copy, "process", &p, err, sizeof(err));
		json_object_put(copy);
		if (r < 0)
			return log_error("container \"%s\": exec: %s", id, err), 1;
	}
	if (tty)
		p.terminal = true;
	for (char **e = envs; e && *e; e++)
		if (cs_strv_env_set(&p.env, *e) < 0)
			goto out;
	if (cwd) {
		if (!cs_path_is_absolute(cwd)) {
			log_error("exec --cwd: \"%s\" is not absolute", cwd);
			goto out;
		}
		free(p.cwd);
		p.cwd = strdup(cwd);
	}
	if (user) {
		unsigned u, gg;
		int n = sscanf(user, "%u:%u", &u, &gg);
		if (n < 1) {
			log_error("exec --user: \"%s\" is not UID[:GID]", user);
			goto out;
		}
		p.uid = u;
		if (n == 2)
			p.gid = gg;
	}
	for (char **gi = gids; gi && *gi; gi++) {
		gid_t *ng = realloc(p.additional_gids, (p.n_additional_gids + 1) * sizeof(gid_t));
		if (!ng)
			goto out;
		p.additional_gids = ng;
		p.additional_gids[p.n_additional_gids++] = (gid_t) strtoul(*gi, NULL, 10);
	}
	for (char **cp = caps; cp && *cp; cp++)
		if (add_cap(&p.caps, *cp) < 0)
			goto out;
	if (nnp)
		p.no_new_privileges = true;

	bool relay = p.terminal && !eo.console_socket;
	if (relay && eo.detach) {
		log_error("exec: a detached process with a terminal needs --console-socket");
		goto out;
	}
	if (relay) {
		if (relay_init(&rl) < 0)
			goto out;
		eo.console_fd = rl.sock[1];
	}
	if (!eo.detach)
		block_signals(&set);
	r = shim_container_exec(g->root, s, cfg, &p, &eo, &pid, err, sizeof(err));
	if (r < 0) {
		log_error("container \"%s\": exec failed: %s", id, err);
		goto out;
	}
	if (relay && relay_receive(&rl) < 0)
		log_warning("container \"%s\": no terminal received", id);
	status = eo.detach ? 0 : wait_foreground(pid, &set, relay ? &rl : NULL);
out:
	relay_done(&rl);
	shim_process_done(&p);
	return status;
}

/* ---- spec -------------------------------------------------------------------------- */

static const char spec_template[] =
	"{\"ociVersion\":\"1.2.0\",\"process\":{\"terminal\":true,\"user\":{\"uid\":0,\"gid\":0},"
	"\"args\":[\"sh\"],\"env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:"
	"/bin\",\"TERM=xterm\"],\"cwd\":\"/\",\"capabilities\":{\"bounding\":[\"CAP_AUDIT_WRITE\","
	"\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],\"effective\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\","
	"\"CAP_NET_BIND_SERVICE\"],\"permitted\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\","
	"\"CAP_NET_BIND_SERVICE\"],\"ambient\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\","
	"\"CAP_NET_BIND_SERVICE\"]},\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":1024,"
	"\"soft\":1024}],\"noNewPrivileges\":true},\"root\":{\"path\":\"rootfs\",\"readonly\":true}"
	","
	"\"hostname\":\"stoke\",\"mounts\":[{\"destination\":\"/"
	"proc\",\"type\":\"proc\",\"source\":"
	"\"proc\"},{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\",\"options\":["
	"\"nosuid\",\"strictatime\",\"mode=755\",\"size=65536k\"]},{\"destination\":\"/dev/pts\","
	"\"type\":\"devpts\",\"source\":\"devpts\",\"options\":[\"nosuid\",\"noexec\","
	"\"newinstance\","
	"\"ptmxmode=0666\",\"mode=0620\",\"gid=5\"]},{\"destination\":\"/dev/"
	"shm\",\"type\":\"tmpfs\","
	"\"source\":\"shm\",\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"mode=1777\","
	"\"size=65536k\"]},{\"destination\":\"/dev/"
	"mqueue\",\"type\":\"mqueue\",\"source\":\"mqueue\","
	"\"options\":[\"nosuid\",\"noexec\",\"nodev\"]},{\"destination\":\"/"
	"sys\",\"type\":\"sysfs\","
	"\"source\":\"sysfs\",\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"ro\"]},{"
	"\"destination\":"
	"\"/sys/fs/cgroup\",\"type\":\"cgroup\",\"source\":\"cgroup\",\"options\":[\"nosuid\","
	"\"noexec\",\"nodev\",\"relatime\",\"ro\"]}],\"linux\":{\"resources\":{\"devices\":[{"
	"\"allow\":false,\"access\":\"rwm\"}]},\"namespaces\":[{\"type\":\"pid\"},{\"type\":"
	"\"network\"},{\"type\":\"ipc\"},{\"type\":\"uts\"},{\"type\":\"mount\"}],"
	"\"maskedPaths\":[\"/proc/acpi\",\"/proc/asound\",\"/proc/kcore\",\"/proc/"
	"keys\","
	"\"/proc/latency_stats\",\"/proc/timer_list\",\"/proc/timer_stats\",\"/proc/sched_debug\","
	"\"/sys/firmware\",\"/proc/scsi\"],\"readonlyPaths\":[\"/proc/bus\",\"/proc/fs\",\"/proc/"
	"irq\","
	"\"/proc/sys\",\"/proc/sysrq-trigger\"]}}";

/* runc's rootless changes: a user namespace mapping the caller, no network
 * namespace, the host's /sys/fs/cgroup and no resources. */
static void make_rootless(json_object *spec)
{
	json_object *lin, *ns, *mounts;
	(void) cs_json_get_object(spec, "linux", &lin);
	(void) cs_json_get_array(lin, "namespaces", &ns);
	json_object *nns = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(ns); i++) {
		json_object *e = json_object_array_get_idx(ns, i);
		const char *t;
		if (cs_json_get_string(e, "type", &t) == 0 && strcmp(t, "network") == 0)
			continue;
		json_object_array_add(nns, json_object_get(e));
	}
	json_object *user = json_object_new_object();
	json_object_object_add(user, "type", json_object_new_string("user"));
	json_object_array_add(nns, user);
	json_object_object_add(lin, "namespaces", nns);
	const char *keys[] = {"uidMappings", "gidMappings"};
	unsigned ids[] = {(unsigned) getuid(), (unsigned) getgid()};
	for (int k = 0; k < 2; k++) {
		json_object *a = json_object_new_array(), *m = json_object_new_object();
		json_object_object_add(m, "containerID", json_object_new_int(0));
		json_object_object_add(m, "hostID", json_object_new_int64(ids[k]));
		json_object_object_add(m, "size", json_object_new_int(1));
		json_object_array_add(a, m);
		json_object_object_add(lin, keys[k], a);
	}
	json_object_object_del(lin, "resources");
	(void) cs_json_get_array(spec, "mounts", &mounts);
	for (size_t i = 0; i < json_object_array_length(mounts); i++) {
		json_object *m = json_object_array_get_idx(mounts, i), *opts;
		const char *d;
		(void) cs_json_get_string(m, "destination", &d);
		if (strcmp(d, "/sys/fs/cgroup") == 0) {
			json_object_object_add(m, "type", json_object_new_string("none"));
			json_object_object_add(m, "source",
					       json_object_new_string("/sys/fs/cgroup"));
			opts = json_object_new_array();
			const char *o[] = {"rbind", "nosuid", "noexec", "nodev", "relatime", "ro"};
			for (size_t j = 0; j < ELEMENTSOF(o); j++)
				json_object_array_add(opts, json_object_new_string(o[j]));
			json_object_object_add(m, "options", opts);
		} else if (strcmp(d, "/dev/pts") == 0 &&
			   cs_json_get_array(m, "options", &opts) == 0) {
			json_object *n = json_object_new_array();
			for (size_t j = 0; j < json_object_array_length(opts); j++) {
				json_object *e = json_object_array_get_idx(opts, j);
				if (strcmp(json_object_get_string(e), "gid=5") != 0)
					json_object_array_add(n, json_object_get(e));
			}
			json_object_object_add(m, "options", n);
		}
	}
}

static int cmd_spec(int argc, char **argv, const struct shim_globals *g)
{
	static const struct option opts[] = {
		{"bundle", required_argument, NULL, OPT_BUNDLE},
		{"b", required_argument, NULL, OPT_BUNDLE},
		{"rootless", no_argument, NULL, OPT_ROOTLESS},
		{},
	};
	const char *bundle = ".";
	bool rootless = false;
	json_object *spec;
	char err[256];
	int c;

	reset_getopt();
	while ((c = getopt_long_only(argc, argv, "", opts, NULL)) != -1) {
		if (c == OPT_BUNDLE)
			bundle = optarg;
		else if (c == OPT_ROOTLESS)
			rootless = true;
		else
			return log_error("spec: unknown option"), 1;
	}
	_cleanup_free_ char *path = NULL;
	if (cs_path_join(bundle, "config.json", &path) < 0)
		return 1;
	if (access(path, F_OK) == 0)
		return log_error("spec: %s exists; remove it first", path), 1;
	if (cs_json_parse(spec_template, strlen(spec_template), &spec, err, sizeof(err)) < 0)
		return log_error("spec: template: %s", err), 1;
	if (rootless)
		make_rootless(spec);
	const char *text = json_object_to_json_string_ext(
		spec,
		JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	int r = fd < 0 ? -errno : cs_write_all(fd, text, strlen(text));
	if (r >= 0)
		r = cs_write_all(fd, "\n", 1);
	json_object_put(spec);
	if (r < 0)
		return log_error_errno(r, "spec: write %s: %m", path), 1;
	return 0;
}

static int cmd_features(int argc, char **argv, const struct shim_globals *g)
{
	json_object *f;
	int r = shim_features_build(&f);
	if (r < 0)
		return log_error_errno(r, "features: %m"), 1;
	print_json(f);
	json_object_put(f);
	return 0;
}

struct verb {
	const char *name;
	int (*run)(int argc, char **argv, const struct shim_globals *g);
	const char *help;
};

static const struct verb verbs[] = {
	{"create", cmd_create, "create a container (its init waits for start)"},
	{"start", cmd_start, "start the user process of a created container"},
	{"run", cmd_run, "create and start a container"},
	{"state", cmd_state, "print a container's state (JSON)"},
	{"kill", cmd_kill, "send a signal to a container's init (--all: every process)"},
	{"delete", cmd_delete, "delete a container and everything it holds"},
	{"exec", cmd_exec, "run a new process in a running container"},
	{"list", cmd_list, "list containers"},
	{"ps", cmd_ps, "list a container's processes"},
	{"pause", cmd_pause_resume, "freeze every process of a container"},
	{"resume", cmd_pause_resume, "thaw a paused container"},
	{"events", cmd_events, "print a container's stats and OOM events (JSON)"},
	{"update", cmd_update, "change a container's resource limits"},
	{"spec", cmd_spec, "write a default config.json"},
	{"features", cmd_features, "show the enabled features (JSON)"},
	{"checkpoint", shim_cmd_checkpoint, "checkpoint a running container (CRIU + GPU)"},
	{"restore", shim_cmd_restore, "restore a container from a checkpoint or snapshot"},
	{"check", shim_cmd_check, "show what works on this host (checkpoint/restore, ...)"},
};

bool shim_cli_is_verb(const char *verb)
{
	for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
		if (strcmp(verbs[i].name, verb) == 0)
			return true;
	return false;
}

int shim_cli_main(int argc, char **argv, const struct shim_globals *g)
{
	if (g->systemd_cgroup && access("/run/systemd/system", F_OK) < 0) {
		log_error("--systemd-cgroup: systemd is not running on this host (PID 1 is not "
			  "systemd); use the default cgroup manager");
		return 1;
	}
	if (g->systemd_cgroup) {
		log_error("--systemd-cgroup: the systemd cgroup manager is not supported by stoke");
		return 1;
	}
	for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
		if (strcmp(verbs[i].name, argv[0]) == 0)
			return verbs[i].run(argc, argv, g);
	log_error("unknown command \"%s\"", argv[0]);
	return 1;
}

const char *shim_cli_usage_verbs(void)
{
	static char buf[4096];
	size_t o = 0;
	for (size_t i = 0; i < ELEMENTSOF(verbs) && o < sizeof(buf); i++)
		o += (size_t) snprintf(buf + o, sizeof(buf) - o, "   %-12s %s\n", verbs[i].name,
				       verbs[i].help);
	return buf;
}
