/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the resource writers put into cgroup v2 and v1 files, checked
 * against runc's conversions, on a plain directory holding empty files of
 * the kernel's names (no root, any host). The kernel side of the same paths
 * is covered by test-cgroup.c on the real hierarchy; this one pins the
 * formats of the controllers this machine cannot show in v2 (memory, cpu,
 * io, pids live in v1 here).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "cleanup.h"
#include "fd-util.h"
#include "cgroup.h"
#include "cgroup-internal.h"

static char tmpdir[100]; /* $TMPDIR/stoke-test-cgfiles-XXXXXX (or /tmp/...) */
static int serial;

static void remove_tmpdir(void)
{
	(void) cs_rm_rf_at(AT_FDCWD, tmpdir);
}

/* A fresh directory with empty files named like the kernel's. */
static struct shim_cgroup *fake(int version, const char *ctrls, const char *const *files)
{
	struct shim_cgroup *cg = calloc(1, sizeof(*cg));
	char dir[256];

	ASSERT_TRUE(cg != NULL);
	snprintf(dir, sizeof(dir), "%s/cg%d", tmpdir, serial++);
	ASSERT_OK(RET_NERRNO(mkdir(dir, 0755)));
	for (; *files; files++) {
		char p[512];
		snprintf(p, sizeof(p), "%s/%s", dir, *files);
		int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		ASSERT_TRUE(fd >= 0);
		close(fd);
	}
	cg->layout = version == 2 ? SHIM_CGROUP_V2 : SHIM_CGROUP_V1;
	cg->path = strdup("/x");
	cg->h = calloc(1, sizeof(*cg->h));
	cg->n = 1;
	cg->h->version = version;
	cg->h->mount = strdup(tmpdir);
	cg->h->ctrls = strdup(ctrls);
	cg->h->dir = strdup(dir);
	return cg;
}

static void apply(struct shim_cgroup *cg, const char *res)
{
	json_object *o = json_tokener_parse(res);
	ASSERT_TRUE(o != NULL);
	int r = cg_apply_resources(cg, o);
	if (r < 0)
		T_FAILF("apply %s: %s (%s)", res, strerror(-r), shim_cgroup_last_error());
	json_object_put(o);
}

static void expect_file(struct shim_cgroup *cg, const char *file, const char *want)
{
	_cleanup_free_ char *s = NULL;
	ASSERT_OK(cg_read(cg->h, file, &s));
	if (strcmp(s, want) != 0)
		T_FAILF("%s: \"%s\", expected \"%s\"", file, s, want);
}

static void test_v2_memory(void)
{
	static const char *const files[] = {"memory.max", "memory.swap.max", "memory.low", NULL};
	struct shim_cgroup *cg = fake(2, "memory", files);

	/* memory+swap 3 GiB with 1 GiB memory: 2 GiB of swap. */
	apply(cg, "{\"memory\":{\"limit\":1073741824,\"swap\":3221225472,\"reservation\":"
		  "536870912,\"swappiness\":10,\"kernel\":1,\"disableOOMKiller\":true}}");
	expect_file(cg, "memory.max", "1073741824");
	expect_file(cg, "memory.swap.max", "2147483648");
	expect_file(cg, "memory.low", "536870912");
	shim_cgroup_free(cg);

	cg = fake(2, "memory", files);
	apply(cg, "{\"memory\":{\"limit\":-1}}"); /* unlimited memory, swap unset: both max */
	expect_file(cg, "memory.max", "max");
	expect_file(cg, "memory.swap.max", "max");
	shim_cgroup_free(cg);

	cg = fake(2, "memory", files);
	apply(cg, "{\"memory\":{\"limit\":1048576,\"swap\":1048576}}"); /* no swap at all */
	expect_file(cg, "memory.swap.max", "0");
	shim_cgroup_free(cg);

	cg = fake(2, "memory", files);
	apply(cg, "{\"memory\":{\"limit\":1048576}}"); /* swap unset: untouched */
	expect_file(cg, "memory.swap.max", "");
	json_object *o = json_tokener_parse("{\"memory\":{\"swap\":1048576}}");
	ASSERT_ERR(cg_apply_resources(cg, o), -EINVAL);
	ASSERT_TRUE(strstr(shim_cgroup_last_error(), "linux.resources.memory.swap") != NULL);
	json_object_put(o);
	shim_cgroup_free(cg);
}

static void test_v2_cpu(void)
{
	static const char *const files[] = {"cpu.max",	"cpu.weight",  "cpu.max.burst",
					    "cpu.idle", "cpuset.cpus", "cpuset.mems",
					    NULL};
	struct shim_cgroup *cg = fake(2, "cpuset cpu", files);

	apply(cg, "{\"cpu\":{\"shares\":1024,\"quota\":50000,\"period\":100000,\"burst\":1000,"
		  "\"idle\":1,\"cpus\":\"0-1\",\"mems\":\"0\"}}");
	expect_file(cg, "cpu.weight", "39"); /* runc: 1 + (1024 - 2) * 9999 / 262142 */
	expect_file(cg, "cpu.max", "50000 100000");
	expect_file(cg, "cpu.max.burst", "1000");
	expect_file(cg, "cpu.idle", "1");
	expect_file(cg, "cpuset.cpus", "0-1");
	expect_file(cg, "cpuset.mems", "0");
	shim_cgroup_free(cg);

	cg = fake(2, "cpu", files);
	apply(cg, "{\"cpu\":{\"quota\":-1,\"period\":250000,\"shares\":2}}");
	expect_file(cg, "cpu.max", "max 250000");
	expect_file(cg, "cpu.weight", "1");
	shim_cgroup_free(cg);

	cg = fake(2, "cpu", files);
	apply(cg, "{\"cpu\":{\"shares\":262144}}");
	expect_file(cg, "cpu.weight", "10000");
	shim_cgroup_free(cg);
}

static void test_v2_io_pids_hugetlb(void)
{
	static const char *const files[] = {
		"io.max", "io.weight", "pids.max", "hugetlb.2MB.max", "hugetlb.2MB.rsvd.max", NULL};
	struct shim_cgroup *cg = fake(2, "io pids hugetlb", files);

	apply(cg,
	      "{\"blockIO\":{\"weight\":500,\"throttleReadBpsDevice\":[{\"major\":8,\"minor\":0,"
	      "\"rate\":1048576}]},\"pids\":{\"limit\":-1},\"hugepageLimits\":[{\"pageSize\":"
	      "\"2MB\",\"limit\":4194304}]}");
	expect_file(cg, "io.weight", "4950"); /* runc: 1 + (500 - 10) * 9999 / 990 */
	expect_file(cg, "io.max", "8:0 rbps=1048576");
	expect_file(cg, "pids.max", "max");
	expect_file(cg, "hugetlb.2MB.max", "4194304");
	expect_file(cg, "hugetlb.2MB.rsvd.max", "4194304");
	shim_cgroup_free(cg);

	/* A per-device weight needs BFQ's file: named when it is missing. */
	cg = fake(2, "io", files);
	json_object *o = json_tokener_parse(
		"{\"blockIO\":{\"weightDevice\":[{\"major\":8,\"minor\":0,\"weight\":100}]}}");
	ASSERT_ERR(cg_apply_resources(cg, o), -EOPNOTSUPP);
	ASSERT_TRUE(strstr(shim_cgroup_last_error(), "linux.resources.blockIO.weightDevice") !=
		    NULL);
	json_object_put(o);
	shim_cgroup_free(cg);
}

static void test_v1_formats(void)
{
	static const char *const mem[] = {
		"memory.limit_in_bytes", "memory.memsw.limit_in_bytes",	   "memory.swappiness",
		"memory.oom_control",	 "memory.kmem.tcp.limit_in_bytes", NULL};
	static const char *const blk[] = {"blkio.bfq.weight", "blkio.bfq.weight_device",
					  "blkio.throttle.write_iops_device", NULL};
	struct shim_cgroup *cg = fake(1, "memory", mem);

	apply(cg, "{\"memory\":{\"limit\":-1,\"swappiness\":0,\"disableOOMKiller\":true,"
		  "\"kernelTCP\":65536}}");
	expect_file(cg, "memory.limit_in_bytes", "-1");
	expect_file(cg, "memory.memsw.limit_in_bytes", "-1"); /* runc: unlimited both */
	expect_file(cg, "memory.swappiness", "0");
	expect_file(cg, "memory.oom_control", "1");
	expect_file(cg, "memory.kmem.tcp.limit_in_bytes", "65536");
	shim_cgroup_free(cg);

	/* Without blkio.weight (CFQ gone), BFQ's files take the weights. */
	cg = fake(1, "blkio", blk);
	apply(cg, "{\"blockIO\":{\"weight\":300,\"weightDevice\":[{\"major\":8,\"minor\":16,"
		  "\"weight\":200}],\"throttleWriteIOPSDevice\":[{\"major\":8,\"minor\":16,"
		  "\"rate\":300}]}}");
	expect_file(cg, "blkio.bfq.weight", "300");
	expect_file(cg, "blkio.bfq.weight_device", "8:16 200");
	expect_file(cg, "blkio.throttle.write_iops_device", "8:16 300");
	shim_cgroup_free(cg);

	/* Device rules in order, then runc's defaults. */
	static const char *const dev[] = {"devices.allow", "devices.deny", NULL};
	cg = fake(1, "devices", dev);
	apply(cg, "{\"devices\":[{\"allow\":false,\"access\":\"rwm\"},{\"allow\":true,\"type\":"
		  "\"c\",\"major\":10,\"minor\":-1,\"access\":\"rw\"}]}");
	/* A regular file keeps only what the last write put at its offset:
	 * the first rule for each file is what we can see here. */
	_cleanup_free_ char *deny = NULL;
	ASSERT_OK(cg_read(cg->h, "devices.deny", &deny));
	ASSERT_TRUE(strncmp(deny, "a *:* rwm", 9) == 0);
	shim_cgroup_free(cg);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/stoke-test-cgfiles-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	T_REQUIRE(mkdtemp(tmpdir) != NULL, "cannot create a temporary directory");
	atexit(remove_tmpdir);
	RUN_TEST(test_v2_memory);
	RUN_TEST(test_v2_cpu);
	RUN_TEST(test_v2_io_pids_hugetlb);
	RUN_TEST(test_v1_formats);
	return T_PASS;
}
