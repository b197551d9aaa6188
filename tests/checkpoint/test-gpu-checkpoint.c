/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The GPU checkpoint sequence (Lock, Checkpoint, CRIU dump / restore,
 * Restore, Unlock) on a CUDA process holding device memory with a known
 * pattern, and its failures, through stoke_cr_checkpoint()/restore().
 *
 *   test-gpu-checkpoint CUDA_PATTERN [--fake]
 *
 * With --fake (CI: LD_LIBRARY_PATH points at tests/fakecuda) it also drives
 * the fake driver's error knobs: lock timeout, checkpoint failure, restore
 * out of memory, wrong state, and a checkpointer without libcuda. Without
 * it, against the real driver (scripts/gpu-check), it runs the round trips.
 */
#include "harness.h"
#include "stoke-checkpoint.h"

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static char tmpdir[100]; /* $TMPDIR/stoke-gpu-test-XXXXXX (or /tmp/...) */
static const char *pattern_prog;
static bool fake;
static pid_t target;
static const char *mib = "16";
static char status_path[300], images[300];

static void kill_target(void)
{
	if (target <= 0)
		return;
	kill(-target, SIGKILL);
	kill(target, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0)
		;
	target = 0;
}

static void cleanup(void)
{
	kill_target();
	char cmd[256];
	if (getenv("STOKE_TEST_KEEP")) { /* debugging: keep images and logs */
		fprintf(stderr, "kept %s\n", tmpdir);
		return;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
}

struct status {
	unsigned long count, verifies;
	char result[16];
};

static bool read_status(struct status *s)
{
	char buf[96] = "";
	int fd = open(status_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return sscanf(buf, "%lu %lu %15s", &s->count, &s->verifies, s->result) == 3;
}

/* Wait (at most ~20 s) until the count passes `count` and the verifies reach
 * `verifies`. */
static bool wait_status(unsigned long count, unsigned long verifies, struct status *s)
{
	for (int i = 0; i < 4000; i++) {
		if (read_status(s) && s->count > count && s->verifies >= verifies)
			return true;
		usleep(5000);
	}
	return false;
}

/* Start cuda-pattern with `knob` (NAME=VALUE or NULL) in its environment.
 * Returns its exit status if it exits at once (77: no driver / no memory). */
static int start_target(const char *knob)
{
	struct status s;
	unlink(status_path);
	target = fork();
	ASSERT_TRUE(target >= 0);
	if (target == 0) {
		setsid();
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0), dup2(null, 1);
		if (knob)
			putenv((char *) knob);
		execl(pattern_prog, pattern_prog, status_path, mib, (char *) NULL);
		_exit(127);
	}
	for (int i = 0; i < 4000; i++) {
		int st;
		if (waitpid(target, &st, WNOHANG) == target) {
			target = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
		}
		if (read_status(&s) && s.count > 2)
			return 0;
		usleep(5000);
	}
	T_FAILF("cuda-pattern did not start");
}

static void verify_ok(void)
{
	struct status s, now;
	ASSERT_TRUE(read_status(&s));
	kill(target, SIGUSR1);
	ASSERT_TRUE(wait_status(s.count, s.verifies + 1, &now));
	ASSERT_STREQ(now.result, "ok");
}

static enum stoke_gpu_state state_of(pid_t pid)
{
	struct stoke_gpu *gpu = NULL;
	enum stoke_gpu_state st;
	ASSERT_OK(stoke_gpu_open(&gpu));
	ASSERT_OK(stoke_gpu_get_state(gpu, pid, &st));
	stoke_gpu_close(gpu);
	return st;
}

static void opts_init(struct stoke_cr_options *o, const char *name)
{
	memset(o, 0, sizeof(*o));
	snprintf(images, sizeof(images), "%s/%s", tmpdir, name);
	o->images_dir = images;	/* A CRIU that hangs (CRIU < 4.2 where hardware breakpoints never
	 * fire) fails the test with the phase named instead of timing out. */
	o->deadline_s = 60;
}

static void test_checkpoint_kill_restore(void)
{
	struct stoke_cr_options o;
	struct stoke_cr_stats st;
	struct status s;

	ASSERT_EQ(start_target(NULL), 0);
	ASSERT_EQ(state_of(target), STOKE_GPU_RUNNING);
	opts_init(&o, "img-roundtrip");
	int r = stoke_cr_checkpoint(target, &o, 10000, &st);
	if (r < 0)
		T_FAILF("checkpoint: %s (%s)", strerror(-r), stoke_cr_error());
	ASSERT_EQ(st.n_gpu_processes, 1);
	ASSERT_EQ(stoke_cr_images_need_gpu(images), 1);
	pid_t old = target;
	kill_target();

	r = stoke_cr_restore(&o, &st);
	if (r < 0)
		T_FAILF("restore: %s (%s)", strerror(-r), stoke_cr_error());
	target = r;
	ASSERT_EQ(target, old);
	ASSERT_EQ(st.n_gpu_processes, 1);
	ASSERT_EQ(state_of(target), STOKE_GPU_RUNNING);
	ASSERT_TRUE(read_status(&s));
	ASSERT_TRUE(wait_status(s.count + 3, 0, &s));
	verify_ok();
}

static void test_leave_running(void)
{
	struct stoke_cr_options o;
	struct status s;

	opts_init(&o, "img-leave-running");
	o.leave_running = true;
	int r = stoke_cr_checkpoint(target, &o, 10000, NULL);
	if (r < 0)
		T_FAILF("checkpoint: %s (%s)", strerror(-r), stoke_cr_error());
	ASSERT_EQ(state_of(target), STOKE_GPU_RUNNING);
	ASSERT_TRUE(read_status(&s));
	ASSERT_TRUE(wait_status(s.count + 3, 0, &s));
	verify_ok();
	kill_target();
}

/* Fake only: each failure leaves the process running with its memory. */
static void expect_checkpoint_fails(const char *knob, unsigned int timeout_ms, int expected)
{
	struct stoke_cr_options o;
	struct status s;

	ASSERT_EQ(start_target(knob), 0);
	opts_init(&o, "img-fail");
	ASSERT_ERR(stoke_cr_checkpoint(target, &o, timeout_ms, NULL), expected);
	ASSERT_TRUE(stoke_cr_error()[0] != '\0');
	ASSERT_TRUE(kill(target, 0) == 0);
	ASSERT_EQ(state_of(target), STOKE_GPU_RUNNING);
	ASSERT_TRUE(read_status(&s));
	ASSERT_TRUE(wait_status(s.count + 3, 0, &s));
	verify_ok();
	kill_target();
}

static void test_lock_timeout(void)
{
	expect_checkpoint_fails("FAKECUDA_LOCK_DELAY_MS=5000", 200, -ETIMEDOUT);
}

static void test_checkpoint_failure(void)
{
	expect_checkpoint_fails("FAKECUDA_CHECKPOINT_FAIL=1", 10000, -EIO);
}

/* A restore the driver cannot complete kills what CRIU restored. */
static void test_restore_oom_leaves_nothing(void)
{
	struct stoke_cr_options o;

	ASSERT_EQ(start_target("FAKECUDA_RESTORE_OOM=1"), 0);
	opts_init(&o, "img-oom");
	ASSERT_OK(stoke_cr_checkpoint(target, &o, 10000, NULL));
	pid_t old = target;
	kill_target();
	ASSERT_ERR(stoke_cr_restore(&o, NULL), -ENOMEM);
	ASSERT_TRUE(strstr(stoke_cr_error(), "cuCheckpointProcessRestore") != NULL);
	ASSERT_TRUE(kill(old, 0) < 0);
	ASSERT_TRUE(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);
}

static void test_wrong_state(void)
{
	struct stoke_gpu *gpu = NULL;
	struct stoke_cr_options o;

	ASSERT_EQ(start_target(NULL), 0);
	ASSERT_OK(stoke_gpu_open(&gpu));
	ASSERT_ERR(stoke_gpu_restore(gpu, target, NULL, 0), -EBUSY); /* running */
	ASSERT_OK(stoke_gpu_checkpoint(gpu, target, 1000));
	ASSERT_ERR(stoke_gpu_checkpoint(gpu, target, 1000), -EBUSY); /* checkpointed */
	opts_init(&o, "img-wrong-state");
	ASSERT_ERR(stoke_cr_checkpoint(target, &o, 1000, NULL), -EBUSY);
	ASSERT_OK(stoke_gpu_restore(gpu, target, NULL, 0));
	stoke_gpu_close(gpu);
	verify_ok();
	kill_target();
}

/* A checkpointer without libcuda refuses a tree with a CUDA process, and
 * leaves it running. The check runs in a child exec'd without the fake
 * driver on its library path. */
static void test_no_libcuda(const char *self)
{
	char pid[16];

	ASSERT_EQ(start_target(NULL), 0);
	snprintf(pid, sizeof(pid), "%d", (int) target);
	pid_t c = fork();
	ASSERT_TRUE(c >= 0);
	if (c == 0) {
		unsetenv("LD_LIBRARY_PATH");
		execl(self, self, "--no-libcuda-child", pid, (char *) NULL);
		_exit(127);
	}
	int st;
	ASSERT_EQ(waitpid(c, &st, 0), c);
	ASSERT_TRUE(WIFEXITED(st));
	T_REQUIRE(WEXITSTATUS(st) != 77, "a real libcuda.so.1 is installed");
	ASSERT_EQ(WEXITSTATUS(st), 0);
	ASSERT_TRUE(kill(target, 0) == 0);
	verify_ok();
	kill_target();
}

static int no_libcuda_child(const char *pid)
{
	struct stoke_cr_options o;
	struct stoke_gpu *gpu = NULL;

	if (stoke_gpu_open(&gpu) == 0)
		return 77;
	opts_init(&o, "img-no-libcuda");
	int r = stoke_cr_checkpoint(atoi(pid), &o, 1000, NULL);
	fprintf(stderr, "no-libcuda checkpoint: %d %s\n", r, stoke_cr_error());
	return r == -ENODEV && strstr(stoke_cr_error(), "uses CUDA") ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--no-libcuda-child") == 0)
		return no_libcuda_child(argv[2]);
	T_REQUIRE(argc >= 2, "usage: test-gpu-checkpoint CUDA_PATTERN [--fake]");
	/* scripts/gpu-check: the real driver, whatever meson put on the path. */
	const char *real = getenv("STOKE_GPU_REAL");
	if (real && strcmp(real, "1") == 0 && argc >= 3) {
		unsetenv("LD_LIBRARY_PATH");
		execl(argv[0], argv[0], argv[1], (char *) NULL);
		T_FAILF("re-exec %s: %s", argv[0], strerror(errno));
	}
	pattern_prog = argv[1];
	fake = argc >= 3 && strcmp(argv[2], "--fake") == 0;
	if (getenv("CUDA_PATTERN_MIB"))
		mib = getenv("CUDA_PATTERN_MIB");
	T_REQUIRE(geteuid() == 0, "needs root (CRIU)");
	T_REQUIRE(system("criu --version >/dev/null 2>&1") == 0, "no criu in PATH");
	if (!fake)
		T_REQUIRE(access("/dev/nvidiactl", F_OK) == 0, "no NVIDIA device");
	snprintf(tmpdir, sizeof(tmpdir), "%s/stoke-gpu-test-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ASSERT_TRUE(mkdtemp(tmpdir) != NULL);
	atexit(cleanup);
	ASSERT_OK(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0));
	snprintf(status_path, sizeof(status_path), "%s/status", tmpdir);
	if (fake) {
		char dir[300];
		snprintf(dir, sizeof(dir), "%s/fakecuda", tmpdir);
		ASSERT_OK(mkdir(dir, 0700));
		setenv("FAKECUDA_CHECKPOINT_DIR", dir, 1);
	}

	struct stoke_gpu *gpu = NULL;
	int r = stoke_gpu_open(&gpu);
	if (r < 0) {
		printf("skip: GPU checkpoint unavailable: %s\n", stoke_cr_error());
		return T_SKIP;
	}
	stoke_gpu_close(gpu);
	/* Without the fake's memory API, still exercise the state machine. */
	if (start_target(NULL) == 77) {
		printf("# note: the driver has no memory API; checking the state machine only\n");
		mib = "0";
	}
	kill_target();

	RUN_TEST(test_checkpoint_kill_restore);
	RUN_TEST(test_leave_running);
	if (fake) {
		RUN_TEST(test_lock_timeout);
		RUN_TEST(test_checkpoint_failure);
		RUN_TEST(test_restore_oom_leaves_nothing);
		RUN_TEST(test_wrong_state);
		test_no_libcuda(argv[0]);
		printf("ok test_no_libcuda\n");
	}
	return T_PASS;
}
