/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CRIU driver on a plain process tree (real CRIU, root): a forked
 * counter holding 32 MiB of known content (and a child of its own) is
 * dumped, killed, restored, and must go on counting with its memory intact;
 * --leave-running; a failed dump leaves it running; a failed restore leaves
 * no process behind.
 */
#include "harness.h"
#include "stoke-checkpoint.h"

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define MEM_SIZE (32u << 20)

static char tmpdir[100]; /* $TMPDIR/stoke-criu-test-XXXXXX (or /tmp/...) */
static pid_t counter_pid;

static void kill_counter(void);

static void cleanup(void)
{
	kill_counter();
	char cmd[256];
	if (getenv("STOKE_TEST_KEEP")) { /* debugging: keep images and logs */
		fprintf(stderr, "kept %s\n", tmpdir);
		return;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
}

static uint32_t pattern(size_t i)
{
	return (uint32_t) (i * 2654435761u) ^ 0xa5a5a5a5u;
}

/* The counter: fills memory with a known pattern, then forever bumps a
 * counter, checks the pattern and publishes "count ok|BAD" in a file. */
static void counter_main(const char *status_path, int close_fd)
{
	setsid();
	if (close_fd >= 0)
		close(close_fd);
	int null = open("/dev/null", O_RDWR);
	dup2(null, 0), dup2(null, 1), dup2(null, 2);
	uint32_t *mem =
		mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		_exit(1);
	for (size_t i = 0; i < MEM_SIZE / 4; i++)
		mem[i] = pattern(i);
	/* A child, so the tree has more than one process. */
	if (fork() == 0)
		for (;;)
			pause();
	int fd = open(status_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	for (unsigned long count = 1;; count++) {
		bool ok = true;
		for (size_t i = 0; i < MEM_SIZE / 4; i += 1021)
			if (mem[i] != pattern(i))
				ok = false;
		char line[64];
		int n = snprintf(line, sizeof(line), "%20lu %-3s\n", count, ok ? "ok" : "BAD");
		if (pwrite(fd, line, (size_t) n, 0) < 0)
			_exit(1);
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

static pid_t start_counter(const char *status_path, int close_fd)
{
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0)
		counter_main(status_path, close_fd);
	return pid;
}

/* Kill the counter's whole tree (its session and group) and reap it: we
 * are a subreaper, so its child comes back to us too, and CRIU can reuse
 * both pids. */
static void kill_counter(void)
{
	if (counter_pid <= 0)
		return;
	kill(-counter_pid, SIGKILL);
	kill(counter_pid, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0)
		;
	counter_pid = 0;
}

static unsigned long read_count(const char *path, bool *ok)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	*ok = strstr(buf, "ok") != NULL;
	return strtoul(buf, NULL, 10);
}

/* Wait (at most ~10 s) until the counter passes `above`. */
static unsigned long wait_count_above(const char *path, unsigned long above, bool *ok)
{
	for (int i = 0; i < 2000; i++) {
		unsigned long c = read_count(path, ok);
		if (c > above)
			return c;
		usleep(5000);
	}
	return 0;
}

static bool alive(pid_t pid)
{
	return kill(pid, 0) == 0;
}

static void opts_init(struct stoke_cr_options *o, const char *images)
{
	memset(o, 0, sizeof(*o));
	o->images_dir = images;	/* A CRIU that hangs (CRIU < 4.2 where hardware breakpoints never
	 * fire) fails the test with the phase named instead of timing out. */
	o->deadline_s = 60;
}

static char status_path[256], images[256];

static void test_dump_kill_restore(void)
{
	struct stoke_cr_options o;
	struct stoke_cr_stats st;
	bool ok = false;

	snprintf(images, sizeof(images), "%s/img1", tmpdir);
	counter_pid = start_counter(status_path, -1);
	unsigned long before = wait_count_above(status_path, 3, &ok);
	ASSERT_TRUE(before > 3 && ok);

	opts_init(&o, images);
	ASSERT_OK(stoke_cr_checkpoint(counter_pid, &o, 1000, &st));
	ASSERT_EQ(st.n_processes, 2);
	ASSERT_EQ(st.n_gpu_processes, 0);
	/* Without --leave-running CRIU kills the tree once dumped. */
	pid_t old = counter_pid;
	kill_counter();
	ASSERT_FALSE(alive(old));
	unsigned long dumped = read_count(status_path, &ok);

	int r = stoke_cr_restore(&o, &st);
	if (r < 0)
		T_FAILF("restore: %s (%s)", strerror(-r), stoke_cr_error());
	counter_pid = r;
	ASSERT_EQ(counter_pid, old); /* CRIU restores the original pids */
	ASSERT_EQ(st.n_processes, 2);
	unsigned long after = wait_count_above(status_path, dumped + 5, &ok);
	ASSERT_TRUE(after > dumped + 5);
	ASSERT_TRUE(ok);
}

static void test_leave_running(void)
{
	struct stoke_cr_options o;
	bool ok = false;

	snprintf(images, sizeof(images), "%s/img2", tmpdir);
	opts_init(&o, images);
	o.leave_running = true;
	unsigned long before = read_count(status_path, &ok);
	ASSERT_OK(stoke_cr_checkpoint(counter_pid, &o, 1000, NULL));
	ASSERT_TRUE(alive(counter_pid));
	ASSERT_TRUE(wait_count_above(status_path, before + 3, &ok) > 0 && ok);

	/* The images restore too, once the original is gone. */
	kill_counter();
	unsigned long dumped = read_count(status_path, &ok);
	int r = stoke_cr_restore(&o, NULL);
	if (r < 0)
		T_FAILF("restore: %s (%s)", strerror(-r), stoke_cr_error());
	counter_pid = r;
	ASSERT_TRUE(wait_count_above(status_path, dumped + 3, &ok) > 0 && ok);
}

/* A restore whose pids are taken fails, and leaves no new process. */
static void test_failed_restore_leaves_nothing(void)
{
	struct stoke_cr_options o;

	opts_init(&o, images); /* img2: its pids are the running counter's */
	int r = stoke_cr_restore(&o, NULL);
	ASSERT_TRUE(r < 0);
	ASSERT_TRUE(strstr(stoke_cr_error(), "restore.log") != NULL);
	ASSERT_TRUE(alive(counter_pid));
	/* Our only child is still the counter. */
	ASSERT_EQ(waitpid(-1, NULL, WNOHANG), 0);
}

/* A dump that CRIU refuses (a unix socket to a peer outside the tree,
 * without --ext-unix-sk) leaves the tree running and counting. */
static void test_failed_dump_leaves_running(void)
{
	struct stoke_cr_options o;
	int sk[2];
	bool ok = false;

	kill_counter();
	ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sk));
	counter_pid = start_counter(status_path, sk[0]);
	close(sk[1]);
	ASSERT_TRUE(wait_count_above(status_path, 3, &ok) > 0);

	snprintf(images, sizeof(images), "%s/img3", tmpdir);
	opts_init(&o, images);
	int r = stoke_cr_checkpoint(counter_pid, &o, 1000, NULL);
	ASSERT_TRUE(r < 0);
	ASSERT_TRUE(stoke_cr_error()[0] != '\0');
	ASSERT_TRUE(alive(counter_pid));
	unsigned long c = read_count(status_path, &ok);
	ASSERT_TRUE(wait_count_above(status_path, c + 3, &ok) > 0 && ok);
	close(sk[0]);
}

static void test_bad_options(void)
{
	struct stoke_cr_options o;
	char file[300];

	snprintf(file, sizeof(file), "%s/not-a-dir", tmpdir);
	int fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	close(fd);
	opts_init(&o, file);
	ASSERT_TRUE(stoke_cr_checkpoint(counter_pid, &o, 1000, NULL) < 0);
	ASSERT_TRUE(alive(counter_pid));
	ASSERT_ERR(stoke_cr_checkpoint(999999999, &o, 1000, NULL), -ESRCH);
	enum stoke_cr_cgroup_mode m;
	ASSERT_OK(stoke_cr_cgroup_mode_from_string("soft", &m));
	ASSERT_EQ(m, STOKE_CR_CG_SOFT);
	ASSERT_ERR(stoke_cr_cgroup_mode_from_string("bogus", &m), -EINVAL);
}

int main(void)
{
	T_REQUIRE(geteuid() == 0, "needs root (CRIU)");
	T_REQUIRE(system("criu --version >/dev/null 2>&1") == 0, "no criu in PATH");
	snprintf(tmpdir, sizeof(tmpdir), "%s/stoke-criu-test-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ASSERT_TRUE(mkdtemp(tmpdir) != NULL);
	ASSERT_OK(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0));
	atexit(cleanup);
	snprintf(status_path, sizeof(status_path), "%s/status", tmpdir);

	RUN_TEST(test_dump_kill_restore);
	RUN_TEST(test_leave_running);
	RUN_TEST(test_failed_restore_leaves_nothing);
	RUN_TEST(test_failed_dump_leaves_running);
	RUN_TEST(test_bad_options);
	return T_PASS;
}
