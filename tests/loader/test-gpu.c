/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gpu suite: the CUDA upload path against tests/fakecuda (selected by
 * LD_LIBRARY_PATH in the meson test environment; FAKECUDA_DEVICES=2 and a
 * copy delay so reuse-before-copy bugs would corrupt bytes). Checks the
 * bytes that arrived in "device" memory, that copies came from pinned
 * memory, placement over two devices and the host, and that everything is
 * released. argv[1]: the stoke binary, for `stoke load --device cuda:0 --verify`.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "cleanup.h"
#include "engine.h"
#include "fd-util.h"
#include "harness.h"
#include "model.h"

static char tmpdir[100]; /* $TMPDIR/stoke-ldr-gpu-XXXXXX (or /tmp/...) */

#include "test-util.h"

static void cleanup_tmpdir(void)
{
	(void) cs_rm_rf_at(AT_FDCWD, tmpdir);
}

/* Mirrors struct fakecuda_counters in tests/fakecuda/fakecuda-mem.c. */
struct fakecuda_counters {
	uint64_t async_copies_pinned;
	uint64_t async_copies_unpinned;
	uint64_t host_registered_bytes;
	uint64_t device_bytes[16];
};
static void (*counters)(struct fakecuda_counters *);
static char *model;
static const char *stoke;

static struct ldr_model *load(const struct ldr_load_options *o, struct ldr_load_stats *st)
{
	const char *paths[] = {model};
	struct ldr_model *m;
	char err[512] = "";
	if (ldr_model_open(paths, 1, &m, err, sizeof(err)) < 0 ||
	    ldr_model_load(m, o, st, err, sizeof(err)) < 0)
		T_FAILF("load: %s", err);
	return m;
}

static void assert_released(void)
{
	struct fakecuda_counters c;
	counters(&c);
	ASSERT_EQ(c.host_registered_bytes, 0);
	ASSERT_EQ(c.device_bytes[0], 0);
	ASSERT_EQ(c.device_bytes[1], 0);
}

static void test_upload_uring(void)
{
	struct fakecuda_counters before, after;
	counters(&before);
	/* Small requests and few slots: many slot reuses while copies are queued. */
	struct ldr_load_options o = {
		.device = "cuda:0", .request_size = 64 << 10, .queue_depth = 4, .n_workers = 2};
	struct ldr_load_stats st;
	struct ldr_model *m = load(&o, &st);
	ASSERT_STREQ(st.backend, "io_uring");
	ASSERT_TRUE(st.fixed_buffers);
	counters(&after);
	ASSERT_TRUE(after.async_copies_pinned > before.async_copies_pinned);
	ASSERT_EQ(after.async_copies_unpinned, before.async_copies_unpinned);
	ASSERT_TRUE(after.device_bytes[0] >= st.bytes);
	for (size_t i = 0; i < ldr_model_n_tensors(m); i++) {
		struct ldr_tensor_info ti;
		ASSERT_OK(ldr_model_tensor(m, i, &ti));
		ASSERT_EQ(ti.device, 0);
		ASSERT_TRUE(ti.dptr != 0 && ti.dptr % 256 == 0 && ti.host == NULL);
	}
	check_bytes(m);
	ldr_model_unref(m);
	assert_released();
}

static void test_placement_two_gpus_and_host(void)
{
	struct ldr_load_options o = {.device = "cuda:0",
				     .placement = "a1*=cuda:1,a2*=cpu",
				     .request_size = 128 << 10,
				     .flags = LDR_LOAD_ALWAYS_DIRECT};
	struct ldr_model *m = load(&o, NULL);
	unsigned on[3] = {};
	for (size_t i = 0; i < ldr_model_n_tensors(m); i++) {
		struct ldr_tensor_info ti;
		ASSERT_OK(ldr_model_tensor(m, i, &ti));
		int want = strncmp(ti.name, "a1", 2) == 0   ? 1
			   : strncmp(ti.name, "a2", 2) == 0 ? -1
							    : 0;
		ASSERT_EQ(ti.device, want);
		on[want + 1]++;
	}
	ASSERT_TRUE(on[0] && on[1] && on[2]);
	check_bytes(m);
	ldr_model_unref(m);
	assert_released();
}

static void test_upload_pread(void)
{
	struct ldr_load_options o = {.device = "cuda:1",
				     .flags = LDR_LOAD_NO_URING,
				     .request_size = 256 << 10,
				     .queue_depth = 2};
	struct ldr_load_stats st;
	struct ldr_model *m = load(&o, &st);
	ASSERT_STREQ(st.backend, "pread");
	check_bytes(m);
	ldr_model_unref(m);
	assert_released();
}

static void test_missing_device(void)
{
	const char *paths[] = {model};
	struct ldr_model *m;
	char err[512] = "";
	ASSERT_OK(ldr_model_open(paths, 1, &m, err, sizeof(err)));
	struct ldr_load_options o = {.device = "cuda:5"};
	ASSERT_ERR(ldr_model_load(m, &o, NULL, err, sizeof(err)), -ENODEV);
	ASSERT_TRUE(strstr(err, "cuda:5"));
	ldr_model_unref(m);
	assert_released();
}

static void test_cli(void)
{
	if (!stoke || access(stoke, X_OK) < 0) {
		printf("# stoke binary not built: CLI case not run\n");
		return;
	}
	_cleanup_free_ char *cmd = NULL;
	ASSERT_TRUE(asprintf(&cmd, "%s load --device cuda:0 --stats --verify %s", stoke, model) >
		    0);
	int st = system(cmd);
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(int argc, char **argv)
{
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	T_REQUIRE(h, "libcuda.so.1 not found (the fake is selected with LD_LIBRARY_PATH)");
	counters = (void (*)(struct fakecuda_counters *)) dlsym(h, "fakecuda_test_counters");
	T_REQUIRE(counters, "libcuda.so.1 is not tests/fakecuda");
	stoke = argc > 1 ? argv[1] : NULL;
	snprintf(tmpdir, sizeof(tmpdir), "%s/stoke-ldr-gpu-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ASSERT_TRUE(mkdtemp(tmpdir));
	atexit(cleanup_tmpdir);
	model = make_model("gpu.safetensors", 30, "a");
	RUN_TEST(test_upload_uring);
	RUN_TEST(test_placement_two_gpus_and_host);
	RUN_TEST(test_upload_pread);
	RUN_TEST(test_missing_device);
	RUN_TEST(test_cli);
	free(model);
	return T_PASS;
}
