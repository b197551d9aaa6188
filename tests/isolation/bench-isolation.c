/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What cgroups and seccomp add to a container start, with anchors measured
 * in the same run (medians of N runs, microseconds):
 *
 *   seccomp: prepare of a large profile from the BPF cache, against
 *            compiling it with libseccomp (the cache's whole point);
 *   cgroups: create (with memory, cpu, pids limits) + enter + destroy of
 *            the previous (empty) one,
 *            against bare mkdir + rmdir of the same directories.
 *
 * Run: meson test -C BUILD --benchmark isolation (root, for the cgroups).
 * Not a test: it prints numbers and fails only if an operation fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "cleanup.h"
#include "fd-util.h"
#include "time-util.h"
#include "cgroup.h"
#include "seccomp.h"

#define N 200

static char tmpdir[100]; /* $TMPDIR/stoke-bench-isolation-XXXXXX (or /tmp/...) */

static void remove_tmpdir(void)
{
	(void) cs_rm_rf_at(AT_FDCWD, tmpdir);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
	return (x > y) - (x < y);
}

static double median_us(uint64_t *ns, size_t n)
{
	qsort(ns, n, sizeof(*ns), cmp_u64);
	return (double) ns[n / 2] / 1000.0;
}

static json_object *big_profile(void)
{
	json_object *p = json_tokener_parse(
		"{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"architectures\":[\"SCMP_ARCH_X86_64\","
		"\"SCMP_ARCH_X86\",\"SCMP_ARCH_X32\"],\"syscalls\":[{\"names\":[\"clone\"],"
		"\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,\"value\":2114060288,"
		"\"op\":\"SCMP_CMP_MASKED_EQ\"}]},{\"names\":[\"personality\"],\"action\":"
		"\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,\"value\":0,\"op\":\"SCMP_CMP_EQ\"}]},"
		"{\"names\":[\"personality\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,"
		"\"value\":8,\"op\":\"SCMP_CMP_EQ\"}]}]}");
	json_object *calls, *allow = json_object_new_object(), *names = json_object_new_array();

	json_object_object_get_ex(p, "syscalls", &calls);
	for (int nr = 0; nr < 1024; nr++) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
		if (!name)
			continue;
		if (strcmp(name, "clone") && strcmp(name, "personality") && strcmp(name, "mount") &&
		    strcmp(name, "kexec_load") && strcmp(name, "reboot"))
			json_object_array_add(names, json_object_new_string(name));
		free(name);
	}
	json_object_object_add(allow, "names", names);
	json_object_object_add(allow, "action", json_object_new_string("SCMP_ACT_ALLOW"));
	json_object_array_add(calls, allow);
	return p;
}

static void bench_seccomp(void)
{
	static uint64_t compile_ns[N], cached_ns[N];
	json_object *p = big_profile();
	char cache[128];
	size_t insns = 0;

	snprintf(cache, sizeof(cache), "%s/cache", tmpdir);
	for (int i = 0; i < N; i++) {
		struct shim_seccomp_filter *f = NULL;
		uint64_t t = cs_monotonic_ns();
		ASSERT_OK(shim_seccomp_prepare(p, NULL, &f));
		compile_ns[i] = cs_monotonic_ns() - t;
		insns = shim_seccomp_filter_size(f);
		shim_seccomp_filter_free(f);
	}
	unsigned compiles = shim_seccomp_compile_count();
	for (int i = 0; i < N + 1; i++) {
		struct shim_seccomp_filter *f = NULL;
		uint64_t t = cs_monotonic_ns();
		ASSERT_OK(shim_seccomp_prepare(p, cache, &f));
		if (i > 0) /* the first one fills the cache */
			cached_ns[i - 1] = cs_monotonic_ns() - t;
		shim_seccomp_filter_free(f);
	}
	ASSERT_EQ(shim_seccomp_compile_count(), compiles + 1);
	double c = median_us(compile_ns, N), h = median_us(cached_ns, N);
	printf("seccomp prepare, %zu-instruction profile: compile %.1f us, cache hit %.1f us, "
	       "hit/compile %.3f\n",
	       insns, c, h, h / c);
	json_object_put(p);
}

static void bench_cgroup(void)
{
	static uint64_t create_ns[N], bare_ns[N];
	json_object *res =
		json_tokener_parse("{\"memory\":{\"limit\":268435456},\"cpu\":{\"shares\":"
				   "512},\"pids\":{\"limit\":128}}");
	char path[256];

	if (geteuid() != 0) {
		printf("cgroups: not root, skipped\n");
		json_object_put(res);
		return;
	}
	/* One sleeping child hops from each new cgroup to the next, so every
	 * destroy finds its cgroup empty, as after a container's exit. */
	pid_t child = fork();
	ASSERT_TRUE(child >= 0);
	if (child == 0) {
		for (;;)
			pause();
	}
	struct shim_cgroup *prev = NULL;
	for (int i = 0; i <= N; i++) {
		struct shim_cgroup *cg = NULL;
		snprintf(path, sizeof(path), "/stoke-bench-%d/c%d", (int) getpid(), i);
		uint64_t t = cs_monotonic_ns();
		ASSERT_OK(shim_cgroup_create(path, "c", res, &cg));
		ASSERT_OK(shim_cgroup_enter(cg, child));
		if (prev)
			ASSERT_OK(shim_cgroup_destroy(prev));
		if (i > 0)
			create_ns[i - 1] = cs_monotonic_ns() - t;
		prev = shim_cgroup_free(prev);
		prev = cg;

		/* Anchor: the same directories, mkdir + rmdir only. */
		t = cs_monotonic_ns();
		for (size_t d = 0; d < shim_cgroup_n_dirs(cg); d++) {
			const char *mount;
			char dir[256];
			ASSERT_OK(shim_cgroup_dir(cg, d, &mount, NULL, NULL));
			snprintf(dir, sizeof(dir), "%s/stoke-bench-bare-%d", mount, (int) getpid());
			ASSERT_OK(RET_NERRNO(mkdir(dir, 0755)));
			ASSERT_OK(RET_NERRNO(rmdir(dir)));
		}
		if (i > 0)
			bare_ns[i - 1] = cs_monotonic_ns() - t;
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	ASSERT_OK(shim_cgroup_destroy(prev));
	/* The shared parent made by the first iteration. */
	for (size_t d = 0; d < shim_cgroup_n_dirs(prev); d++) {
		const char *dir;
		ASSERT_OK(shim_cgroup_dir(prev, d, NULL, &dir, NULL));
		snprintf(path, sizeof(path), "%s", dir);
		*strrchr(path, '/') = '\0';
		(void) rmdir(path);
	}
	shim_cgroup_free(prev);
	double c = median_us(create_ns, N), b = median_us(bare_ns, N);
	printf("cgroup create+limits+enter+destroy: %.1f us, bare mkdir+rmdir of the same "
	       "directories: %.1f us, ratio %.2f\n",
	       c, b, c / b);
	json_object_put(res);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/stoke-bench-isolation-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	T_REQUIRE(mkdtemp(tmpdir) != NULL, "cannot create a temporary directory");
	atexit(remove_tmpdir);
	bench_seccomp();
	bench_cgroup();
	return T_PASS;
}
