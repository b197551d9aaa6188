/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/: fd, path, JSON, strv, dlopen table and log helpers. */
#include "../harness.h"

#include <fcntl.h>
#include <dlfcn.h>
#include <math.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "dlopen-table.h"
#include "errbuf.h"
#include "fd-util.h"
#include "json-util.h"
#include "log.h"
#include "path-util.h"
#include "strv.h"

static char tmpdir[100]; /* $TMPDIR/stoke-test-common.XXXXXX (or /tmp/...) */

static void remove_tmpdir(void)
{
	cs_rm_rf_at(AT_FDCWD, tmpdir);
}

static void test_write_read_file(void)
{
	char path[256];
	_cleanup_free_ char *buf = NULL;
	size_t len;

	snprintf(path, sizeof(path), "%s/f", tmpdir);
	ASSERT_OK(cs_write_file_atomic(AT_FDCWD, path, "hello\n", 6, 0640));
	ASSERT_OK(cs_read_file_at(AT_FDCWD, path, 1 << 20, &buf, &len));
	ASSERT_EQ(len, 6);
	ASSERT_STREQ(buf, "hello\n");

	struct stat st;
	ASSERT_OK(RET_NERRNO(stat(path, &st)));
	ASSERT_EQ(st.st_mode & 0777, 0640);

	/* Too large for the limit: -EFBIG, and nothing returned. */
	char *none = NULL;
	ASSERT_ERR(cs_read_file_at(AT_FDCWD, path, 3, &none, &len), -EFBIG);
	ASSERT_TRUE(none == NULL);
	ASSERT_ERR(cs_read_file_at(AT_FDCWD, "/nonexistent/x", 10, &none, &len), -ENOENT);
}

static void test_atomic_write_leaves_no_temp_on_failure(void)
{
	char path[256];

	/* A directory where the file should go makes the rename fail. */
	snprintf(path, sizeof(path), "%s/dir", tmpdir);
	ASSERT_OK(cs_mkdir_p(path, 0755));
	snprintf(path, sizeof(path), "%s/dir/sub", tmpdir);
	ASSERT_OK(cs_mkdir_p(path, 0755));
	snprintf(path, sizeof(path), "%s/dir", tmpdir);
	ASSERT_TRUE(cs_write_file_atomic(AT_FDCWD, path, "x", 1, 0600) < 0);

	_cleanup_closedir_ DIR *d = opendir(tmpdir);
	struct dirent *de;
	while ((de = readdir(d)))
		ASSERT_TRUE(strstr(de->d_name, ".tmp.") == NULL);
}

static void test_mkdir_p_and_rm_rf(void)
{
	char path[256], top[256];

	snprintf(top, sizeof(top), "%s/a", tmpdir);
	snprintf(path, sizeof(path), "%s/a/b/c/d", tmpdir);
	ASSERT_OK(cs_mkdir_p(path, 0755));
	ASSERT_OK(cs_mkdir_p(path, 0755)); /* existing is fine */
	snprintf(path, sizeof(path), "%s/a/b/file", tmpdir);
	ASSERT_OK(cs_write_file_atomic(AT_FDCWD, path, "x", 1, 0600));
	snprintf(path, sizeof(path), "%s/a/b/link", tmpdir);
	ASSERT_OK(RET_NERRNO(symlink("/etc", path)));

	ASSERT_OK(cs_rm_rf_at(AT_FDCWD, top));
	ASSERT_TRUE(access(top, F_OK) < 0 && errno == ENOENT);
	ASSERT_TRUE(access("/etc/passwd", F_OK) == 0); /* the symlink was not followed */
	ASSERT_OK(cs_rm_rf_at(AT_FDCWD, top));	       /* missing is fine */

	snprintf(path, sizeof(path), "%s/file", tmpdir);
	ASSERT_OK(cs_write_file_atomic(AT_FDCWD, path, "x", 1, 0600));
	snprintf(path, sizeof(path), "%s/file/sub", tmpdir);
	ASSERT_ERR(cs_mkdir_p(path, 0755), -ENOTDIR);
}

static void test_read_write_all_pipe(void)
{
	int p[2];
	char out[100000], in[sizeof(out)];

	ASSERT_OK(RET_NERRNO(pipe2(p, O_CLOEXEC)));
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (char) (i * 7);
	if (fork() == 0) {
		close(p[0]);
		_exit(cs_write_all(p[1], out, sizeof(out)) < 0);
	}
	close(p[1]);
	ASSERT_EQ(cs_read_all(p[0], in, sizeof(in)), sizeof(in));
	ASSERT_EQ(cs_read_all(p[0], in, 1), 0); /* end of file */
	ASSERT_TRUE(memcmp(in, out, sizeof(in)) == 0);
	close(p[0]);
}

static void test_send_recv_fd(void)
{
	int sv[2], p[2];
	char tag[4] = {0};

	ASSERT_OK(RET_NERRNO(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)));
	ASSERT_OK(RET_NERRNO(pipe2(p, O_CLOEXEC)));
	ASSERT_OK(cs_send_fd(sv[0], p[1], "abc", 3));
	int fd = cs_recv_fd(sv[1], tag, 3);
	ASSERT_OK(fd);
	ASSERT_STREQ(tag, "abc");
	ASSERT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	ASSERT_EQ(write(fd, "z", 1), 1);
	char c;
	ASSERT_EQ(read(p[0], &c, 1), 1);
	ASSERT_EQ(c, 'z');

	/* Plain data with no descriptor is a protocol error. */
	ASSERT_EQ(write(sv[0], "x", 1), 1);
	ASSERT_ERR(cs_recv_fd(sv[1], &c, 1), -EBADMSG);
	close(fd);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}

static void test_unix_connect(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char longpath[200];
	int fd = -1;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", tmpdir);
	int srv = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_OK(srv);
	ASSERT_OK(RET_NERRNO(bind(srv, (struct sockaddr *) &sa, sizeof(sa))));
	ASSERT_OK(RET_NERRNO(listen(srv, 1)));
	ASSERT_OK(cs_unix_connect(sa.sun_path, &fd));
	ASSERT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	int peer = accept4(srv, NULL, NULL, SOCK_CLOEXEC);
	ASSERT_OK(peer);
	ASSERT_EQ(write(fd, "hi", 2), 2);
	char b[2];
	ASSERT_EQ(read(peer, b, 2), 2);
	ASSERT_TRUE(memcmp(b, "hi", 2) == 0);
	close(peer);
	close(fd);
	close(srv);

	int untouched = -7;
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	ASSERT_ERR(cs_unix_connect(longpath, &untouched), -ENAMETOOLONG);
	snprintf(longpath, sizeof(longpath), "%s/no-such-socket", tmpdir);
	ASSERT_ERR(cs_unix_connect(longpath, &untouched), -ENOENT);
	ASSERT_EQ(untouched, -7);
}

static void test_path(void)
{
	_cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;

	ASSERT_OK(cs_path_join("/run/stoke/", "/id", &a));
	ASSERT_STREQ(a, "/run/stoke/id");
	ASSERT_OK(cs_path_join("/", "x", &b));
	ASSERT_STREQ(b, "/x");
	ASSERT_OK(cs_path_join("rel", "", &c));
	ASSERT_STREQ(c, "rel");

	ASSERT_TRUE(cs_path_is_safe_relative("a/b/c"));
	ASSERT_TRUE(cs_path_is_safe_relative("a..b/..c"));
	ASSERT_FALSE(cs_path_is_safe_relative(""));
	ASSERT_FALSE(cs_path_is_safe_relative("/etc/passwd"));
	ASSERT_FALSE(cs_path_is_safe_relative(".."));
	ASSERT_FALSE(cs_path_is_safe_relative("a/../../b"));
	ASSERT_FALSE(cs_path_is_safe_relative("a//b"));
	ASSERT_FALSE(cs_path_is_safe_relative("./a"));
	ASSERT_FALSE(cs_path_is_safe_relative("a/"));
}

static void test_json(void)
{
	const char *doc = "{\"s\":\"x\",\"b\":true,\"i\":-5,\"u\":18446744073709551615,"
			  "\"o\":{},\"a\":[1],\"n\":null}";
	json_object *o;
	char err[128];
	const char *s;
	bool b;
	int64_t i;
	uint64_t u;
	json_object *v;

	ASSERT_OK(cs_json_parse(doc, strlen(doc), &o, err, sizeof(err)));
	ASSERT_OK(cs_json_get_string(o, "s", &s));
	ASSERT_STREQ(s, "x");
	ASSERT_OK(cs_json_get_bool(o, "b", &b));
	ASSERT_TRUE(b);
	ASSERT_OK(cs_json_get_int64(o, "i", &i));
	ASSERT_EQ(i, -5);
	ASSERT_OK(cs_json_get_uint64(o, "u", &u));
	ASSERT_TRUE(u == UINT64_MAX);
	ASSERT_ERR(cs_json_get_int64(o, "u", &i), -ERANGE);
	ASSERT_ERR(cs_json_get_uint64(o, "i", &u), -ERANGE);
	ASSERT_OK(cs_json_get_object(o, "o", &v));
	ASSERT_OK(cs_json_get_array(o, "a", &v));
	ASSERT_ERR(cs_json_get_string(o, "b", &s), -EINVAL);
	ASSERT_ERR(cs_json_get_string(o, "missing", &s), -ENOENT);
	ASSERT_ERR(cs_json_get_string(o, "n", &s), -ENOENT);
	json_object_put(o);

	ASSERT_ERR(cs_json_parse("{\"a\":", 5, &o, err, sizeof(err)), -EINVAL);
	ASSERT_TRUE(strstr(err, "byte") != NULL);
	ASSERT_ERR(cs_json_parse("{} x", 4, &o, err, sizeof(err)), -EINVAL);
	ASSERT_TRUE(strstr(err, "after the document") != NULL);
}

static void test_strv(void)
{
	_cleanup_strv_free_ char **v = NULL;

	ASSERT_OK(cs_strv_push(&v, "PATH=/bin"));
	ASSERT_OK(cs_strv_push(&v, "HOME=/root"));
	ASSERT_OK(cs_strv_env_set(&v, "PATH=/usr/bin"));
	ASSERT_OK(cs_strv_env_set(&v, "TERM=xterm"));
	ASSERT_EQ(cs_strv_length(v), 3);
	ASSERT_STREQ(v[0], "PATH=/usr/bin");
	ASSERT_STREQ(v[2], "TERM=xterm");
	ASSERT_TRUE(v[3] == NULL);
	ASSERT_ERR(cs_strv_env_set(&v, "NOEQUALS"), -EINVAL);
}

struct libc_table {
	typeof(&getpid) getpid;
	typeof(&strlen) strlen;
	void *(*not_there)(void);
};

static void test_dlopen_table(void)
{
	static const struct cs_dl_sym syms[] = {
		CS_DL_SYM(struct libc_table, getpid),
		CS_DL_SYM(struct libc_table, strlen),
		CS_DL_SYM_OPTIONAL(struct libc_table, not_there),
	};
	static const struct cs_dl_sym required_missing[] = {
		CS_DL_SYM(struct libc_table, not_there),
	};
	struct libc_table t = {0};
	void *h;
	const char *missing = NULL;

	ASSERT_OK(cs_dl_open_table("libc.so.6", syms, ELEMENTSOF(syms), &t, NULL, NULL, &h, NULL));
	ASSERT_EQ(t.getpid(), getpid());
	ASSERT_EQ(t.strlen("four"), 4);
	ASSERT_TRUE(t.not_there == NULL);
	dlclose(h);

	ASSERT_ERR(cs_dl_open_table("libc.so.6", required_missing, 1, &t, NULL, NULL, &h, &missing),
		   -ENOSYS);
	ASSERT_STREQ(missing, "not_there");
	ASSERT_ERR(cs_dl_open_table("libstoke-no-such-lib.so.9", syms, 1, &t, NULL, NULL, &h, NULL),
		   -ENOENT);
	ASSERT_TRUE(strstr(cs_dl_error(), "libstoke-no-such-lib") != NULL);
}

static void test_log_json_and_errno(void)
{
	char path[256];
	_cleanup_free_ char *buf = NULL;

	snprintf(path, sizeof(path), "%s/log.json", tmpdir);
	ASSERT_OK(cs_log_open(path, CS_LOG_JSON));
	cs_log_set_stderr(false);
	ASSERT_ERR(log_error_errno(-ENOENT, "opening \"%s\": %m", "config.json"), -ENOENT);
	ASSERT_ERR(log_error_errno(0, "no error code"), -EIO);
	log_debug("dropped at the default level");
	ASSERT_OK(cs_read_file_at(AT_FDCWD, path, 1 << 20, &buf, NULL));

	char *nl = strchr(buf, '\n');
	ASSERT_TRUE(nl != NULL);
	json_object *o;
	ASSERT_OK(cs_json_parse(buf, (size_t) (nl - buf), &o, NULL, 0));
	const char *msg, *level;
	ASSERT_OK(cs_json_get_string(o, "msg", &msg));
	ASSERT_OK(cs_json_get_string(o, "level", &level));
	ASSERT_STREQ(msg, "opening \"config.json\": No such file or directory");
	ASSERT_STREQ(level, "error");
	json_object_put(o);
	ASSERT_TRUE(strstr(buf, "dropped") == NULL);
}

static void test_errbuf(void)
{
	char err[64];

	ASSERT_ERR(cs_errf(-EINVAL, err, sizeof(err), "field %s", "x"), -EINVAL);
	ASSERT_STREQ(err, "field x");
	ASSERT_ERR(cs_errf_errno(-ENOENT, err, sizeof(err), "open %s", "f"), -ENOENT);
	ASSERT_STREQ(err, "open f: No such file or directory");
	ASSERT_ERR(cs_errf_errno(0, err, sizeof(err), "warning"), 0);
	ASSERT_STREQ(err, "warning");
	ASSERT_ERR(cs_errf_errno(-ENOENT, NULL, 0, "nothing written"), -ENOENT);
	char tiny[6];
	cs_errf_errno(-ENOENT, tiny, sizeof(tiny), "abcdefgh");
	ASSERT_STREQ(tiny, "abcde");
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/stoke-test-common.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ASSERT_TRUE(mkdtemp(tmpdir) != NULL);
	atexit(remove_tmpdir);

	RUN_TEST(test_write_read_file);
	RUN_TEST(test_atomic_write_leaves_no_temp_on_failure);
	RUN_TEST(test_mkdir_p_and_rm_rf);
	RUN_TEST(test_read_write_all_pipe);
	RUN_TEST(test_send_recv_fd);
	RUN_TEST(test_unix_connect);
	RUN_TEST(test_path);
	RUN_TEST(test_json);
	RUN_TEST(test_strv);
	RUN_TEST(test_dlopen_table);
	RUN_TEST(test_log_json_and_errno);
	RUN_TEST(test_errbuf);
	return T_PASS;
}
