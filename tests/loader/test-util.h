/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the loader's C tests (included once per test program,
 * after `tmpdir` is defined): a generated safetensors model with random
 * tensor sizes, and a check of every loaded tensor against the file.
 */
#ifndef STOKE_TESTS_LOADER_UTIL_H
#define STOKE_TESTS_LOADER_UTIL_H

static uint64_t rng = 0x1234567;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* A safetensors file with `n` tensors of random sizes (some tiny, some MiBs). */
static char *make_model(const char *name, unsigned n, const char *prefix)
{
	size_t cap = 64 << 10, jl = 0;
	char *json = malloc(cap);
	uint64_t off = 0;
	jl += (size_t) snprintf(json, cap, "{");
	for (unsigned i = 0; i < n; i++) {
		uint64_t elems = i % 4 == 0 ? next_rand() % 5 + 1 : next_rand() % (700 << 10);
		const char *dt = i % 3 == 0 ? "F32" : i % 3 == 1 ? "BF16" : "U8";
		unsigned es = i % 3 == 0 ? 4 : i % 3 == 1 ? 2 : 1;
		jl += (size_t) snprintf(json + jl, cap - jl,
					"%s\"%s%u\":{\"dtype\":\"%s\",\"shape\":[%llu],"
					"\"data_offsets\":[%llu,%llu]}",
					i ? "," : "", prefix, i, dt, (unsigned long long) elems,
					(unsigned long long) off,
					(unsigned long long) (off + elems * es));
		off += elems * es;
	}
	jl += (size_t) snprintf(json + jl, cap - jl, "}");
	char *path;
	ASSERT_TRUE(asprintf(&path, "%s/%s", tmpdir, name) > 0);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_TRUE(fd >= 0);
	uint64_t hl = jl;
	ASSERT_OK(cs_write_all(fd, &hl, 8));
	ASSERT_OK(cs_write_all(fd, json, jl));
	_cleanup_free_ uint64_t *data = malloc(off + 8);
	for (uint64_t i = 0; i < off / 8 + 1; i++)
		data[i] = next_rand();
	ASSERT_OK(cs_write_all(fd, data, off));
	close(fd);
	free(json);
	return path;
}

/* Every tensor's loaded bytes equal the file's. */
static void check_bytes(struct ldr_model *m)
{
	for (size_t i = 0; i < ldr_model_n_tensors(m); i++) {
		struct ldr_tensor_info ti;
		ASSERT_OK(ldr_model_tensor(m, i, &ti));
		_cleanup_free_ uint8_t *want = malloc(ti.size + 1), *got = malloc(ti.size + 1);
		_cleanup_close_ int fd = open(ti.file, O_RDONLY | O_CLOEXEC);
		ASSERT_EQ(cs_pread_all(fd, want, ti.size, (off_t) ti.file_offset),
			  (ssize_t) ti.size);
		ASSERT_OK(ldr_model_copy_to_host(m, i, 0, got, ti.size));
		if (memcmp(want, got, ti.size) != 0)
			T_FAILF("tensor %s differs from %s", ti.name, ti.file);
		if (ti.device < 0 && ti.size && memcmp(ti.host, want, ti.size) != 0)
			T_FAILF("tensor %s: host view differs", ti.name);
	}
}

#endif
