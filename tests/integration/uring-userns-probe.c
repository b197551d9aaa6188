/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Machine prerequisites that need C: io_uring really reads a file (bytes
 * read equal bytes written), and a user namespace really maps us to root.
 */
#include "../harness.h"

#include <fcntl.h>
#include <liburing.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>

static void test_io_uring_reads_file(void)
{
	char path[256];
	char out[8192], in[8192];
	snprintf(path, sizeof(path), "%s/stoke-uring.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	int fd = mkstemp(path);
	ASSERT_OK(fd);
	unlink(path);
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (char) (i * 13 + 1);
	ASSERT_EQ(pwrite(fd, out, sizeof(out), 0), sizeof(out));

	struct io_uring ring;
	ASSERT_OK(io_uring_queue_init(4, &ring, 0));
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	io_uring_prep_read(sqe, fd, in, sizeof(in), 0);
	ASSERT_EQ(io_uring_submit(&ring), 1);
	struct io_uring_cqe *cqe;
	ASSERT_OK(io_uring_wait_cqe(&ring, &cqe));
	ASSERT_EQ(cqe->res, sizeof(in));
	io_uring_cqe_seen(&ring, cqe);
	io_uring_queue_exit(&ring);
	close(fd);
	ASSERT_TRUE(memcmp(in, out, sizeof(in)) == 0);
}

static int userns_child(void *arg)
{
	int *pipefd = arg;
	char c;
	/* Wait for the parent to write our uid_map. */
	if (read(pipefd[0], &c, 1) != 1)
		return 2;
	return getuid() == 0 && getgid() == 0 ? 0 : 3;
}

static void write_map(pid_t pid, const char *file, const char *map)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ASSERT_OK(fd);
	ASSERT_EQ(write(fd, map, strlen(map)), (ssize_t) strlen(map));
	close(fd);
}

static void test_user_namespace_maps_root(void)
{
	static char stack[64 * 1024];
	int pipefd[2];
	ASSERT_OK(pipe2(pipefd, O_CLOEXEC));
	pid_t pid = clone(userns_child, stack + sizeof(stack), CLONE_NEWUSER | SIGCHLD, pipefd);
	ASSERT_OK(pid);
	write_map(pid, "setgroups", "deny");
	char map[64];
	snprintf(map, sizeof(map), "0 %d 1\n", getuid());
	write_map(pid, "uid_map", map);
	snprintf(map, sizeof(map), "0 %d 1\n", getgid());
	write_map(pid, "gid_map", map);
	ASSERT_EQ(write(pipefd[1], "x", 1), 1);
	int status;
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
}

int main(void)
{
	RUN_TEST(test_io_uring_reads_file);
	RUN_TEST(test_user_namespace_maps_root);
	return T_PASS;
}
