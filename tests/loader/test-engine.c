/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the read engine on small generated files: every tensor's
 * bytes through io_uring (O_DIRECT and buffered), pread, the forced
 * io_uring refusal, several files, GGUF, placement errors.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "engine.h"
#include "fd-util.h"
#include "harness.h"
#include "model.h"

static char tmpdir[100]; /* $TMPDIR/stoke-ldr-engine-XXXXXX (or /tmp/...) */

#include "test-util.h"

static void cleanup_tmpdir(void)
{
	(void) cs_rm_rf_at(AT_FDCWD, tmpdir);
}

static void load_and_check(const char *const *paths, size_t n, const struct ldr_load_options *o,
			   const char *want_backend, int want_direct)
{
	struct ldr_model *m;
	struct ldr_load_stats st;
	char err[512] = "";
	if (ldr_model_open(paths, n, &m, err, sizeof(err)) < 0)
		T_FAILF("open: %s", err);
	if (ldr_model_load(m, o, &st, err, sizeof(err)) < 0)
		T_FAILF("load: %s", err);
	ASSERT_STREQ(st.backend, want_backend);
	ASSERT_EQ(st.mapped, strcmp(want_backend, "mmap") == 0);
	if (want_direct == 1)
		ASSERT_TRUE(st.bytes_direct > 0 && st.bytes_buffered == 0);
	if (want_direct == 0)
		ASSERT_TRUE(st.bytes_direct == 0 && st.bytes_buffered > 0);
	ASSERT_TRUE(st.bytes_read >= st.bytes);
	check_bytes(m);
	ASSERT_ERR(ldr_model_load(m, o, NULL, err, sizeof(err)), -EALREADY);
	ldr_model_unref(m);
}

static char *p1, *p2;

static void test_uring_direct(void)
{
	const char *paths[] = {p1};
	/* Odd request size and depth: chunks cut tensors everywhere. */
	struct ldr_load_options o = {.flags = LDR_LOAD_ALWAYS_DIRECT,
				     .request_size = 12288,
				     .queue_depth = 3,
				     .n_workers = 3};
	load_and_check(paths, 1, &o, "io_uring", 1);
	o = (struct ldr_load_options){.flags = LDR_LOAD_ALWAYS_DIRECT};
	load_and_check(paths, 1, &o, "io_uring", 1);
}

static void test_uring_buffered(void)
{
	const char *paths[] = {p1};
	struct ldr_load_options o = {.flags = LDR_LOAD_NO_DIRECT, .request_size = 1 << 20};
	load_and_check(paths, 1, &o, "io_uring", 0);
}

static void test_residency_choice(void)
{
	/* p1 was just read buffered: the page cache holds it, so buffered. */
	const char *paths[] = {p1};
	_cleanup_close_ int fd = open(p1, O_RDONLY | O_CLOEXEC);
	uint8_t b[4096];
	for (off_t o = 0; cs_pread_all(fd, b, sizeof(b), o) > 0; o += (off_t) sizeof(b))
		;
	/* Wholly cached and no read mode asked for: mapped, not copied. */
	load_and_check(paths, 1, NULL, "mmap", 0);
	struct ldr_load_options copy = {.flags = LDR_LOAD_COPY};
	load_and_check(paths, 1, &copy, "io_uring", 0);
	/* Evicted: O_DIRECT. */
	ASSERT_OK(RET_NERRNO(fdatasync(fd)));
	ASSERT_OK(-posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED));
	load_and_check(paths, 1, NULL, "io_uring", 1);
}

static void test_pread(void)
{
	const char *paths[] = {p1, p2};
	struct ldr_load_options o = {.flags = LDR_LOAD_NO_URING, .request_size = 8192};
	load_and_check(paths, 2, &o, "pread", -1);
	o.flags |= LDR_LOAD_ALWAYS_DIRECT;
	load_and_check(paths, 2, &o, "pread", 1);
}

static void test_map(void)
{
	const char *paths[] = {p1, p2};
	struct ldr_load_options o = {.flags = LDR_LOAD_MAP, .request_size = 64 << 10};
	load_and_check(paths, 2, &o, "mmap", 0);
	/* Tensors are private: writing one leaves the file as it was. */
	struct ldr_model *m;
	char err[512];
	ASSERT_OK(ldr_model_open(paths, 1, &m, err, sizeof(err)));
	ASSERT_OK(ldr_model_load(m, &o, NULL, err, sizeof(err)));
	struct ldr_tensor_info ti;
	ASSERT_OK(ldr_model_tensor(m, 1, &ti));
	ASSERT_TRUE(ti.size > 0);
	((uint8_t *) ti.host)[0] ^= 0xff;
	ldr_model_unref(m);
	ASSERT_OK(ldr_model_open(paths, 1, &m, err, sizeof(err)));
	ASSERT_OK(ldr_model_load(m, NULL, NULL, err, sizeof(err)));
	check_bytes(m);
	ldr_model_unref(m);
}

static void test_forced_refusal(void)
{
	const char *paths[] = {p1, p2};
	struct ldr_model *m;
	struct ldr_load_stats st;
	char err[512];
	setenv(LDR_TEST_REFUSE_URING_ENV, "1", 1);
	struct ldr_load_options copy = {.flags = LDR_LOAD_COPY};
	ASSERT_OK(ldr_model_open(paths, 2, &m, err, sizeof(err)));
	ASSERT_OK(ldr_model_load(m, &copy, &st, err, sizeof(err)));
	ASSERT_STREQ(st.backend, "pread");
	ASSERT_EQ(st.uring_fallback_error, -EPERM);
	check_bytes(m);
	ldr_model_unref(m);
	unsetenv(LDR_TEST_REFUSE_URING_ENV);
}

static void test_gguf_load(void)
{
	/* Two F32 tensors, 32-aligned, then data. */
	uint8_t f[4096] = "GGUF";
	size_t n = 4;
	uint32_t v32;
	uint64_t v64;
#define P32(x) (v32 = (x), memcpy(f + n, &v32, 4), n += 4)
#define P64(x) (v64 = (x), memcpy(f + n, &v64, 8), n += 8)
#define PS(s)  (P64(strlen(s)), memcpy(f + n, s, strlen(s)), n += strlen(s))
	P32(3), P64(2), P64(0);
	PS("a"), P32(1), P64(10), P32(0), P64(0);
	PS("b"), P32(2), P64(3), P64(5), P32(1), P64(64);
	while (n % 32)
		f[n++] = 0;
	for (size_t i = 0; i < 64 + 30; i++)
		f[n++] = (uint8_t) (i * 13);
	_cleanup_free_ char *path = NULL;
	ASSERT_TRUE(asprintf(&path, "%s/m.gguf", tmpdir) > 0);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_OK(cs_write_all(fd, f, n));
	close(fd);
	const char *paths[] = {path};
	struct ldr_load_options copy = {.flags = LDR_LOAD_COPY};
	load_and_check(paths, 1, &copy, "io_uring", -1);
	load_and_check(paths, 1, NULL, "mmap", -1);
	struct ldr_load_options o = {.flags = LDR_LOAD_NO_URING};
	load_and_check(paths, 1, &o, "pread", -1);
}

static void test_bad_options(void)
{
	const char *paths[] = {p2};
	struct ldr_model *m;
	char err[512] = "";
	ASSERT_OK(ldr_model_open(paths, 1, &m, err, sizeof(err)));
	struct ldr_load_options o = {.device = "tpu:0"};
	ASSERT_ERR(ldr_model_load(m, &o, NULL, err, sizeof(err)), -EINVAL);
	ASSERT_TRUE(strstr(err, "tpu:0"));
	o = (struct ldr_load_options){.placement = "x*"};
	ASSERT_ERR(ldr_model_load(m, &o, NULL, err, sizeof(err)), -EINVAL);
	ASSERT_TRUE(strstr(err, "PATTERN=DEVICE"));
	o = (struct ldr_load_options){.request_size = 1000};
	ASSERT_ERR(ldr_model_load(m, &o, NULL, err, sizeof(err)), -EINVAL);
	/* Without a driver, a GPU placement fails cleanly (and leaves the model usable). */
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		o = (struct ldr_load_options){.placement = "b1=cuda:0"};
		ASSERT_ERR(ldr_model_load(m, &o, NULL, err, sizeof(err)), -ENODEV);
		ASSERT_TRUE(strstr(err, "cuda:0"));
	} else
		dlclose(h);
	ASSERT_OK(ldr_model_load(m, NULL, NULL, err, sizeof(err)));
	check_bytes(m);
	ldr_model_unref(m);
}

static void test_dlpack_cpu(void)
{
	const char *paths[] = {p2};
	struct ldr_model *m;
	char err[512];
	void *mt;
	ASSERT_OK(ldr_model_open(paths, 1, &m, err, sizeof(err)));
	ASSERT_ERR(ldr_model_dlpack(m, 0, &mt), -ENODATA);
	ASSERT_OK(ldr_model_load(m, NULL, NULL, err, sizeof(err)));
	ASSERT_OK(ldr_model_dlpack(m, 0, &mt));
	/* The export holds the model: drop ours first, then the deleter frees all. */
	ldr_model_unref(m);
	struct {
		void *data;
		int32_t dev_type, dev_id, ndim;
		uint8_t code, bits;
		uint16_t lanes;
		int64_t *shape, *strides;
		uint64_t byte_offset;
		void *ctx;
		void (*deleter)(void *);
	} *d = mt;
	ASSERT_EQ(d->dev_type, 1);
	ASSERT_EQ(d->ndim, 1);
	ASSERT_TRUE(d->data != NULL);
	d->deleter(mt);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/stoke-ldr-engine-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ASSERT_TRUE(mkdtemp(tmpdir));
	atexit(cleanup_tmpdir);
	p1 = make_model("one.safetensors", 40, "a");
	p2 = make_model("two.safetensors", 9, "b");
	RUN_TEST(test_uring_direct);
	RUN_TEST(test_uring_buffered);
	RUN_TEST(test_residency_choice);
	RUN_TEST(test_pread);
	RUN_TEST(test_map);
	RUN_TEST(test_forced_refusal);
	RUN_TEST(test_gguf_load);
	RUN_TEST(test_bad_options);
	RUN_TEST(test_dlpack_cpu);
	free(p1);
	free(p2);
	return T_PASS;
}
