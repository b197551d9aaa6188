/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shim/seccomp: validation messages, compilation and the BPF cache, and real
 * filters installed in forked children (no root needed: the child sets
 * no_new_privs first), including a notify listener delivered to a unix
 * socket server run by the test.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "cleanup.h"
#include "fd-util.h"
#include "seccomp.h"
#include "seccomp-names.h"

#include <sys/stat.h>

static char tmpdir[100]; /* $TMPDIR/stoke-test-seccomp-XXXXXX (or /tmp/...) */

static void remove_tmpdir(void)
{
	(void) cs_rm_rf_at(AT_FDCWD, tmpdir);
}

static json_object *parse(const char *s)
{
	json_object *o = json_tokener_parse(s);
	if (!o)
		T_FAILF("bad JSON in test: %s", s);
	return o;
}

static struct shim_seccomp_filter *prepare(const char *profile, const char *cache)
{
	json_object *o = parse(profile);
	struct shim_seccomp_filter *f = NULL;
	char err[256] = "";

	if (shim_seccomp_validate(o, err, sizeof(err)) < 0)
		T_FAILF("validate: %s", err);
	ASSERT_OK(shim_seccomp_prepare(o, cache, &f));
	json_object_put(o);
	return f;
}

/* Fork a child that installs `f` then runs `body`; the child's exit status
 * is body's return value (0 = as expected). */
static int run_child(const struct shim_seccomp_filter *f, int (*body)(void))
{
	int status;
	pid_t pid = fork();

	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			_exit(100);
		if (shim_seccomp_install(f, NULL) < 0)
			_exit(101);
		/* exit_group directly, not _exit(): under AddressSanitizer _exit()
		 * first calls sigaltstack, which these filters deny, and the child
		 * then dies in the sanitizer instead of exiting with body's status. */
		syscall(SYS_exit_group, body());
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status))
		T_FAILF("child killed by signal %d", WTERMSIG(status));
	return WEXITSTATUS(status);
}

static void expect_invalid(const char *profile, const char *needle)
{
	json_object *o = parse(profile);
	char err[256] = "";

	ASSERT_ERR(shim_seccomp_validate(o, err, sizeof(err)), -EINVAL);
	if (!strstr(err, needle))
		T_FAILF("error \"%s\" does not mention \"%s\"", err, needle);
	json_object_put(o);
}

static void test_validate_errors(void)
{
	expect_invalid("{}", "linux.seccomp.defaultAction: missing");
	expect_invalid("{\"defaultAction\":\"SCMP_ACT_BOGUS\"}",
		       "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_BOGUS\"");
	expect_invalid("{\"defaultAction\":\"SCMP_ACT_NOTIFY\"}", "linux.seccomp.defaultAction");
	expect_invalid(
		"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"SCMP_ARCH_VAX\"]}",
		"linux.seccomp.architectures[0]: unknown architecture \"SCMP_ARCH_VAX\"");
	expect_invalid(
		"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"flags\":[\"SECCOMP_FILTER_FLAG_X\"]}",
		"linux.seccomp.flags[0]: unknown flag");
	expect_invalid("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],"
		       "\"action\":\"SCMP_ACT_ERRNO\",\"args\":[{\"index\":6,\"value\":1,"
		       "\"op\":\"SCMP_CMP_EQ\"}]}]}",
		       "linux.seccomp.syscalls[0].args[0].index");
	expect_invalid(
		"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],"
		"\"action\":\"SCMP_ACT_ERRNO\"},{\"names\":[\"read\"],\"action\":"
		"\"SCMP_ACT_ERRNO\",\"args\":[{\"index\":0,\"value\":1,\"op\":\"SCMP_CMP_XX\"}]}]}",
		"linux.seccomp.syscalls[1].args[0].op: unknown operator \"SCMP_CMP_XX\"");
	expect_invalid("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],"
		       "\"action\":\"SCMP_ACT_ALLOW\",\"errnoRet\":5}]}",
		       "linux.seccomp.syscalls[0].errnoRet");
	expect_invalid("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],"
		       "\"action\":\"SCMP_ACT_NOTIFY\"}]}",
		       "linux.seccomp.listenerPath: required");
	expect_invalid("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[],"
		       "\"action\":\"SCMP_ACT_ERRNO\"}]}",
		       "linux.seccomp.syscalls[0].names");
	expect_invalid("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],"
		       "\"action\":\"SCMP_ACT_ERRNO\",\"args\":[{\"index\":0,\"value\":-1,"
		       "\"op\":\"SCMP_CMP_EQ\"}]}]}",
		       "linux.seccomp.syscalls[0].args[0].value");

	/* And prepare refuses what validate refuses. */
	json_object *o = parse("{\"defaultAction\":\"SCMP_ACT_NOPE\"}");
	struct shim_seccomp_filter *f = NULL;
	ASSERT_ERR(shim_seccomp_prepare(o, NULL, &f), -EINVAL);
	ASSERT_TRUE(f == NULL);
	ASSERT_TRUE(strstr(shim_seccomp_last_error(), "linux.seccomp.defaultAction") != NULL);

	json_object_put(o);
}

static int body_errno(void)
{
	char buf[64];

	/* getcwd is denied with errnoRet 42, getpid still works. */
	if (syscall(SYS_getcwd, buf, sizeof(buf)) != -1 || errno != 42)
		return 1;
	if (getpid() <= 0)
		return 2;
	/* Plain SCMP_ACT_ERRNO without errnoRet means EPERM, as in runc. */
	if (syscall(SYS_getppid) != -1 || errno != EPERM)
		return 3;
	return 0;
}

static void test_denied_syscall_errno(void)
{
	struct shim_seccomp_filter *f = prepare(
		"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"SCMP_ARCH_X86_64\","
		"\"SCMP_ARCH_X86\",\"SCMP_ARCH_X32\"],\"syscalls\":["
		"{\"names\":[\"getcwd\",\"no_such_syscall_at_all\"],\"action\":\"SCMP_ACT_ERRNO\","
		"\"errnoRet\":42},"
		"{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_ERRNO\"},"
		"{\"names\":[\"getpid\"],\"action\":\"SCMP_ACT_ALLOW\"}]}",
		NULL);
	ASSERT_TRUE(shim_seccomp_filter_size(f) > 0);
	ASSERT_FALSE(shim_seccomp_wants_listener(f));
	ASSERT_EQ(run_child(f, body_errno), 0);
	shim_seccomp_filter_free(f);
}

static int body_default(void)
{
	/* Not listed: the default action (ERRNO 77) applies. */
	if (syscall(SYS_getppid) != -1 || errno != 77)
		return 1;
	if (syscall(SYS_getuid) != -1 || errno != 77)
		return 2;
	/* Listed: allowed. */
	if (syscall(SYS_getpid) <= 0)
		return 3;
	return 0;
}

static void test_default_action(void)
{
	struct shim_seccomp_filter *f =
		prepare("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":77,"
			"\"syscalls\":[{\"names\":[\"getpid\",\"exit\",\"exit_group\","
			"\"rt_sigreturn\"],\"action\":\"SCMP_ACT_ALLOW\"}]}",
			NULL);
	ASSERT_EQ(run_child(f, body_default), 0);
	shim_seccomp_filter_free(f);
}

static int body_args(void)
{
	/* getpriority(which, who): which 1 or 2 denied (two entries for index
	 * 0 are ORed, as in runc), which 0 (PRIO_PROCESS) allowed. */
	errno = 0;
	if (syscall(SYS_getpriority, 0, 0) < 0)
		return 1;
	if (syscall(SYS_getpriority, 1, 0) != -1 || errno != 61)
		return 2;
	if (syscall(SYS_getpriority, 2, 0) != -1 || errno != 61)
		return 3;
	/* umask: masked compare, (mask & 0700) == 0700 denied. */
	if (syscall(SYS_umask, 0022) < 0)
		return 4;
	if (syscall(SYS_umask, 0755) != -1 || errno != 62)
		return 5;
	/* kill(pid, sig): both conditions (different indexes) must hold. */
	if (syscall(SYS_kill, getpid(), 0) != 0)
		return 6;
	if (syscall(SYS_kill, 999999999, SIGCONT) != -1 || errno != 63)
		return 7;
	if (syscall(SYS_kill, 999999999, 0) != -1 || errno != ESRCH)
		return 8;
	return 0;
}

static void test_arg_filters(void)
{
	struct shim_seccomp_filter *f = prepare(
		"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
		"{\"names\":[\"getpriority\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":61,"
		"\"args\":[{\"index\":0,\"value\":1,\"op\":\"SCMP_CMP_EQ\"},"
		"{\"index\":0,\"value\":2,\"op\":\"SCMP_CMP_EQ\"}]},"
		"{\"names\":[\"umask\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":62,"
		"\"args\":[{\"index\":0,\"value\":448,\"valueTwo\":448,\"op\":\"SCMP_CMP_MASKED_"
		"EQ\"}]},"
		"{\"names\":[\"kill\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":63,"
		"\"args\":[{\"index\":0,\"value\":999999999,\"op\":\"SCMP_CMP_EQ\"},"
		"{\"index\":1,\"value\":0,\"op\":\"SCMP_CMP_NE\"}]}]}",
		NULL);
	ASSERT_EQ(run_child(f, body_args), 0);
	shim_seccomp_filter_free(f);
}

/* A profile the size of a container engine's default: every syscall this
 * libseccomp knows, allowed by name, except mkdir/mkdirat; default EPERM. */
static json_object *big_profile(void)
{
	json_object *p = parse("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"architectures\":"
			       "[\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_X86\",\"SCMP_ARCH_X32\"]}");
	json_object *calls = json_object_new_array(), *allow = json_object_new_object(),
		    *names = json_object_new_array();
	size_t n = 0;

	for (int nr = 0; nr < 1024; nr++) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
		if (!name)
			continue;
		if (strcmp(name, "mkdir") != 0 && strcmp(name, "mkdirat") != 0) {
			json_object_array_add(names, json_object_new_string(name));
			n++;
		}
		free(name);
	}
	ASSERT_TRUE(n > 300);
	json_object_object_add(allow, "names", names);
	json_object_object_add(allow, "action", json_object_new_string("SCMP_ACT_ALLOW"));
	json_object_array_add(calls, allow);
	json_object_object_add(p, "syscalls", calls);
	return p;
}

static int body_big(void)
{
	char dir[300];
	char *const argv[] = {"true", NULL};

	snprintf(dir, sizeof(dir), "%s/denied", tmpdir);
	if (mkdir(dir, 0700) == 0 || errno != EPERM)
		return 1;
	/* Everything else a program needs, exec included. */
	execv("/bin/true", argv);
	return 2;
}

static void test_big_profile_exec(void)
{
	json_object *p = big_profile();
	struct shim_seccomp_filter *f = NULL;
	char err[256] = "";

	if (shim_seccomp_validate(p, err, sizeof(err)) < 0)
		T_FAILF("validate: %s", err);
	ASSERT_OK(shim_seccomp_prepare(p, NULL, &f));
	ASSERT_EQ(run_child(f, body_big), 0);
	shim_seccomp_filter_free(f);
	json_object_put(p);
}

static int body_enosys(void)
{
	/* Named syscalls go up to exit_group (231 on x86_64): getppid (110)
	 * is in range and gets the default EPERM, newer ones ENOSYS (runc). */
	if (syscall(SYS_getppid) != -1 || errno != EPERM)
		return 1;
	if (syscall(SYS_getpid) <= 0)
		return 2;
#ifdef __x86_64__
	if (syscall(SYS_fanotify_init, 0, 0) != -1 || errno != ENOSYS) /* 300 */
		return 3;
#endif
	if (syscall(1000) != -1 || errno != ENOSYS)
		return 4;
	return 0;
}

static int body_errno77(void)
{
	/* defaultErrnoRet 77: in range 77, newer than the profile ENOSYS. */
	if (syscall(SYS_getppid) != -1 || errno != 77)
		return 1;
	if (syscall(1000) != -1 || errno != ENOSYS)
		return 2;
	return 0;
}

static int body_kill_default(void)
{
	/* A killing default spares syscalls the profile cannot know. */
	if (syscall(1000) != -1 || errno != ENOSYS)
		return 1;
	return 0;
}

static void test_enosys_for_newer_syscalls(void)
{
	struct shim_seccomp_filter *f =
		prepare("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":["
			"\"getpid\",\"exit\",\"exit_group\",\"rt_sigreturn\",\"write\"],"
			"\"action\":\"SCMP_ACT_ALLOW\"}]}",
			NULL);
	ASSERT_EQ(run_child(f, body_enosys), 0);
	shim_seccomp_filter_free(f);

	f = prepare("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":77,"
		    "\"syscalls\":[{\"names\":[\"getpid\",\"exit\",\"exit_group\","
		    "\"rt_sigreturn\"],\"action\":\"SCMP_ACT_ALLOW\"}]}",
		    NULL);
	ASSERT_EQ(run_child(f, body_errno77), 0);
	shim_seccomp_filter_free(f);

	f = prepare("{\"defaultAction\":\"SCMP_ACT_KILL_PROCESS\",\"syscalls\":[{\"names\":["
		    "\"getpid\",\"exit\",\"exit_group\",\"rt_sigreturn\"],\"action\":"
		    "\"SCMP_ACT_ALLOW\"}]}",
		    NULL);
	ASSERT_EQ(run_child(f, body_kill_default), 0);
	shim_seccomp_filter_free(f);
}

/* SCMP_ACT_TRACE hands errnoRet to the tracer (PTRACE_GETEVENTMSG). */
static void test_trace_errno_ret(void)
{
	struct shim_seccomp_filter *f = prepare(
		"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"getppid\"],"
		"\"action\":\"SCMP_ACT_TRACE\",\"errnoRet\":1234}]}",
		NULL);
	unsigned long msg = 0;
	int status;
	pid_t pid = fork();

	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0)
			_exit(100);
		raise(SIGSTOP);
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || shim_seccomp_install(f, NULL) < 0)
			_exit(101);
		(void) syscall(SYS_getppid);
		_exit(0);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 100) {
		printf("# ptrace not permitted here (yama?): skipped\n");
		shim_seccomp_filter_free(f);
		return;
	}
	ASSERT_TRUE(WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP);
	ASSERT_OK(RET_NERRNO(ptrace(PTRACE_SETOPTIONS, pid, NULL, (void *) PTRACE_O_TRACESECCOMP)));
	ASSERT_OK(RET_NERRNO(ptrace(PTRACE_CONT, pid, NULL, NULL)));
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFSTOPPED(status));
	ASSERT_EQ(status >> 8, SIGTRAP | (PTRACE_EVENT_SECCOMP << 8));
	ASSERT_OK(RET_NERRNO(ptrace(PTRACE_GETEVENTMSG, pid, NULL, &msg)));
	ASSERT_EQ(msg, 1234);
	ASSERT_OK(RET_NERRNO(ptrace(PTRACE_CONT, pid, NULL, NULL)));
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	shim_seccomp_filter_free(f);
}

static void test_cache(void)
{
	char cache[256], path[600];
	const char *profile =
		"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
		"{\"names\":[\"getcwd\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":42},"
		"{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_ERRNO\"}]}";
	struct shim_seccomp_filter *f1, *f2, *f3;
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	unsigned before;
	int files = 0;

	snprintf(cache, sizeof(cache), "%s/cache", tmpdir);
	before = shim_seccomp_compile_count();
	f1 = prepare(profile, cache);
	ASSERT_EQ(shim_seccomp_compile_count(), before + 1);

	d = opendir(cache);
	ASSERT_TRUE(d != NULL);
	while ((de = readdir(d)))
		if (strstr(de->d_name, ".bpf")) {
			files++;
			snprintf(path, sizeof(path), "%s/%s", cache, de->d_name);
		}
	ASSERT_EQ(files, 1);

	/* Second prepare: served from the file, no compilation, same program. */
	f2 = prepare(profile, cache);
	ASSERT_EQ(shim_seccomp_compile_count(), before + 1);
	ASSERT_EQ(shim_seccomp_filter_size(f2), shim_seccomp_filter_size(f1));
	ASSERT_EQ(run_child(f2, body_errno), 0);

	/* A damaged cache file is not trusted: compiled again and rewritten. */
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	ASSERT_TRUE(fd >= 0);
	ASSERT_OK(cs_write_all(fd, "STKSCBPFjunk", 12));
	close(fd);
	f3 = prepare(profile, cache);
	ASSERT_EQ(shim_seccomp_compile_count(), before + 2);
	ASSERT_EQ(shim_seccomp_filter_size(f3), shim_seccomp_filter_size(f1));
	struct stat st;
	ASSERT_OK(stat(path, &st));
	ASSERT_TRUE((size_t) st.st_size > shim_seccomp_filter_size(f1) * 8);

	/* A different profile gets a different key. */
	struct shim_seccomp_filter *f4 = prepare("{\"defaultAction\":\"SCMP_ACT_LOG\"}", cache);
	ASSERT_EQ(shim_seccomp_compile_count(), before + 3);

	shim_seccomp_filter_free(f1);
	shim_seccomp_filter_free(f2);
	shim_seccomp_filter_free(f3);
	shim_seccomp_filter_free(f4);
}

static void test_notify_listener(void)
{
	char sock_path[256], profile[1024], buf[4096];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int sp[2], listener = -1, conn, received, status;
	struct shim_seccomp_filter *f;
	pid_t pid;

	snprintf(sock_path, sizeof(sock_path), "%s/listener.sock", tmpdir);
	snprintf(profile, sizeof(profile),
		 "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"%s\","
		 "\"listenerMetadata\":\"hello-agent\",\"syscalls\":[{\"names\":[\"getppid\"],"
		 "\"action\":\"SCMP_ACT_NOTIFY\"}]}",
		 sock_path);
	f = prepare(profile, NULL);
	ASSERT_TRUE(shim_seccomp_wants_listener(f));
	ASSERT_STREQ(shim_seccomp_listener_path(f), sock_path);

	/* The agent's socket. */
	int srv = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_TRUE(srv >= 0);
	strcpy(sa.sun_path, sock_path);
	ASSERT_OK(RET_NERRNO(bind(srv, (struct sockaddr *) &sa, sizeof(sa))));
	ASSERT_OK(RET_NERRNO(listen(srv, 4)));

	ASSERT_OK(RET_NERRNO(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp)));
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		int lfd = -1;
		close(sp[0]);
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			_exit(100);
		if (shim_seccomp_install(f, &lfd) < 0 || lfd < 0)
			_exit(101);
		/* As the runtime's child does: hand the listener to the parent. */
		if (cs_send_fd(sp[1], lfd, "L", 1) < 0)
			_exit(102);
		close(lfd);
		/* Blocks until the agent answers; the agent says 4242. */
		_exit(syscall(SYS_getppid) == 4242 ? 0 : 103);
	}
	close(sp[1]);
	char c;
	listener = cs_recv_fd(sp[0], &c, 1);
	ASSERT_TRUE(listener >= 0);
	close(sp[0]);

	char state[128];
	snprintf(state, sizeof(state),
		 "{\"ociVersion\":\"1.0.2\",\"id\":\"ctr1\",\"status\":\"creating\",\"pid\":%d}",
		 (int) pid);
	ASSERT_OK(shim_seccomp_send_listener(f, listener, state));
	close(listener);

	/* The agent side: accept, get fd + containerProcessState. */
	conn = accept4(srv, NULL, NULL, SOCK_CLOEXEC);
	ASSERT_TRUE(conn >= 0);
	memset(buf, 0, sizeof(buf));
	received = cs_recv_fd(conn, buf, sizeof(buf) - 1);
	ASSERT_TRUE(received >= 0);
	json_object *msg = json_tokener_parse(buf), *v;
	ASSERT_TRUE(msg != NULL);
	ASSERT_TRUE(json_object_object_get_ex(msg, "ociVersion", &v));
	ASSERT_STREQ(json_object_get_string(v), "1.0.2");
	ASSERT_TRUE(json_object_object_get_ex(msg, "fds", &v));
	ASSERT_STREQ(json_object_get_string(json_object_array_get_idx(v, 0)), "seccompFd");
	ASSERT_TRUE(json_object_object_get_ex(msg, "pid", &v));
	ASSERT_EQ(json_object_get_int(v), pid);
	ASSERT_TRUE(json_object_object_get_ex(msg, "metadata", &v));
	ASSERT_STREQ(json_object_get_string(v), "hello-agent");
	ASSERT_TRUE(json_object_object_get_ex(msg, "state", &v));
	ASSERT_TRUE(json_object_object_get_ex(v, "id", &v));
	ASSERT_STREQ(json_object_get_string(v), "ctr1");
	json_object_put(msg);

	/* The received fd really is the child's notify listener. */
	struct seccomp_notif req = {0};
	struct seccomp_notif_resp resp = {0};
	ASSERT_OK(RET_NERRNO(ioctl(received, SECCOMP_IOCTL_NOTIF_RECV, &req)));
	ASSERT_EQ(req.pid, pid);
	ASSERT_EQ(req.data.nr, SYS_getppid);
	resp.id = req.id;
	resp.val = 4242;
	ASSERT_OK(RET_NERRNO(ioctl(received, SECCOMP_IOCTL_NOTIF_SEND, &resp)));
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);

	close(received);
	close(conn);
	close(srv);
	shim_seccomp_filter_free(f);
}

static void test_flag_probe(void)
{
	/* TSYNC and LOG are as old as seccomp filters on any kernel we run on. */
	ASSERT_TRUE(shim_seccomp_flag_supported(SECCOMP_FILTER_FLAG_TSYNC));
	ASSERT_TRUE(shim_seccomp_flag_supported(SECCOMP_FILTER_FLAG_LOG));
	ASSERT_FALSE(shim_seccomp_flag_supported(1ULL << 30));
	for (size_t i = 0; i < shim_seccomp_flags_count; i++)
		printf("# %s: %s\n", shim_seccomp_flags[i].name,
		       shim_seccomp_flag_supported(shim_seccomp_flags[i].value) ? "supported"
										: "not supported");
}

static void test_send_listener_errors(void)
{
	char profile[512];
	struct shim_seccomp_filter *f;

	snprintf(profile, sizeof(profile),
		 "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"%s/nobody.sock\","
		 "\"syscalls\":[{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_NOTIFY\"}]}",
		 tmpdir);
	f = prepare(profile, NULL);
	ASSERT_ERR(shim_seccomp_send_listener(f, 0, "{\"pid\":1}"), -ENOENT);
	ASSERT_ERR(shim_seccomp_send_listener(f, 0, "not json"), -EINVAL);
	shim_seccomp_filter_free(f);
}

int main(void)
{
	/* A notify child left blocked by a failed assertion would hang meson. */
	alarm(60);
	snprintf(tmpdir, sizeof(tmpdir), "%s/stoke-test-seccomp-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	T_REQUIRE(mkdtemp(tmpdir) != NULL, "cannot create a temporary directory");
	atexit(remove_tmpdir);

	RUN_TEST(test_validate_errors);
	RUN_TEST(test_denied_syscall_errno);
	RUN_TEST(test_default_action);
	RUN_TEST(test_arg_filters);
	RUN_TEST(test_big_profile_exec);
	RUN_TEST(test_trace_errno_ret);
	RUN_TEST(test_enosys_for_newer_syscalls);
	RUN_TEST(test_cache);
	RUN_TEST(test_notify_listener);
	RUN_TEST(test_send_listener_errors);
	RUN_TEST(test_flag_probe);
	return T_PASS;
}
