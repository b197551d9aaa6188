/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shim/cgroup on this machine's real hierarchy (v1, v2 or hybrid), as root:
 * limits really land in the kernel's files, forked children really run in
 * the cgroup, freezing really stops a counting child, device rules really
 * deny an open(), the OOM killer is counted, destroy leaves nothing.
 * Every cgroup and child is removed at exit, also after a failed assertion.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <glob.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "cleanup.h"
#include "fd-util.h"
#include "cgroup.h"
#include "cgroup-internal.h"

static char tmpdir[100]; /* $TMPDIR/stoke-test-cgroup-XXXXXX (or /tmp/...) */
static char base[64]; /* absolute cgroupsPath prefix, unique per run */
static struct shim_cgroup *live[8];
static pid_t children[16];

static void cleanup(void)
{
	for (size_t i = 0; i < ELEMENTSOF(children); i++)
		if (children[i] > 0) {
			kill(children[i], SIGKILL);
			waitpid(children[i], NULL, 0);
		}
	for (size_t i = 0; i < ELEMENTSOF(live); i++)
		if (live[i]) {
			(void) shim_cgroup_kill_all(live[i], SIGKILL);
			(void) shim_cgroup_destroy(live[i]);
			live[i] = shim_cgroup_free(live[i]);
		}
	(void) cs_rm_rf_at(AT_FDCWD, tmpdir);
}

static void track(struct shim_cgroup *cg)
{
	for (size_t i = 0; i < ELEMENTSOF(live); i++)
		if (!live[i]) {
			live[i] = cg;
			return;
		}
	T_FAILF("too many cgroups");
}

static void untrack(struct shim_cgroup *cg)
{
	for (size_t i = 0; i < ELEMENTSOF(live); i++)
		if (live[i] == cg)
			live[i] = NULL;
}

static json_object *parse(const char *s)
{
	json_object *o = json_tokener_parse(s);
	if (!o)
		T_FAILF("bad JSON in test: %s", s);
	return o;
}

static struct shim_cgroup *create(const char *name, const char *resources)
{
	char path[128];
	json_object *res = resources ? parse(resources) : NULL;
	struct shim_cgroup *cg = NULL;
	int r;

	snprintf(path, sizeof(path), "%s/%s", base, name);
	r = shim_cgroup_create(path, name, res, &cg);
	if (r < 0)
		T_FAILF("create %s: %s (%s)", path, strerror(-r), shim_cgroup_last_error());
	json_object_put(res);
	track(cg);
	return cg;
}

/* The directory of `cg` in the hierarchy holding `controller`. */
static const char *dir_for(struct shim_cgroup *cg, const char *controller)
{
	struct cg_hier *h = cg_hier_for(cg, controller);
	return h ? h->dir : NULL;
}

static char *read_cg(struct shim_cgroup *cg, const char *controller, const char *file)
{
	static char buf[4096];
	char path[512];
	_cleanup_free_ char *s = NULL;

	snprintf(path, sizeof(path), "%s/%s", dir_for(cg, controller), file);
	if (cs_read_file_at(AT_FDCWD, path, 1 << 20, &s, NULL) < 0)
		T_FAILF("cannot read %s", path);
	snprintf(buf, sizeof(buf), "%s", s);
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

static bool v2_for(struct shim_cgroup *cg, const char *controller)
{
	struct cg_hier *h = cg_hier_for(cg, controller);
	return h && h->version == 2;
}

static pid_t spawn(void (*body)(void *), void *arg)
{
	pid_t pid = fork();

	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		body(arg);
		_exit(0);
	}
	for (size_t i = 0; i < ELEMENTSOF(children); i++)
		if (children[i] <= 0) {
			children[i] = pid;
			return pid;
		}
	T_FAILF("too many children");
}

static int reap(pid_t pid)
{
	int status;

	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	for (size_t i = 0; i < ELEMENTSOF(children); i++)
		if (children[i] == pid)
			children[i] = 0;
	return status;
}

static void sleeper(void *arg)
{
	(void) arg;
	for (;;)
		pause();
}

static void counter(void *arg)
{
	volatile uint64_t *c = arg;
	for (;;)
		(*c)++;
}

static void sleep_ms(long ms)
{
	nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000}, NULL);
}

static bool dir_exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

/* ---------------------------------------------------------------- tests */

static void test_layout(void)
{
	int layout = shim_cgroup_detect_layout();
	ASSERT_TRUE(layout == SHIM_CGROUP_V1 || layout == SHIM_CGROUP_V2 ||
		    layout == SHIM_CGROUP_HYBRID);
	printf("# layout %s\n", layout == SHIM_CGROUP_V2       ? "v2"
				: layout == SHIM_CGROUP_HYBRID ? "hybrid"
							       : "v1");
	/* Hybrid: one directory per v1 hierarchy plus the unified one. */
	struct shim_cgroup *cg = create("layout", NULL);
	size_t v1 = 0, v2 = 0;
	for (size_t i = 0; i < shim_cgroup_n_dirs(cg); i++) {
		const char *mount, *dir;
		int version;
		ASSERT_OK(shim_cgroup_dir(cg, i, &mount, &dir, &version));
		ASSERT_TRUE(dir_exists(dir));
		ASSERT_TRUE(strncmp(dir, mount, strlen(mount)) == 0);
		*(version == 1 ? &v1 : &v2) += 1;
	}
	ASSERT_EQ(v2, layout == SHIM_CGROUP_V1 ? 0 : 1);
	ASSERT_TRUE(layout == SHIM_CGROUP_V2 ? v1 == 0 : v1 > 0);
	ASSERT_ERR(shim_cgroup_dir(cg, shim_cgroup_n_dirs(cg), NULL, NULL, NULL), -ERANGE);
	ASSERT_OK(shim_cgroup_destroy(cg));
	untrack(cg);
	shim_cgroup_free(cg);
}

static bool have(const char *const *controllers)
{
	for (; *controllers; controllers++)
		if (!cg_host_version_for(*controllers)) {
			printf("# no %s controller: skipped\n", *controllers);
			return false;
		}
	return true;
}

static void check_limits(struct shim_cgroup *cg)
{
	bool mem2 = v2_for(cg, "memory");

	ASSERT_STREQ(read_cg(cg, "memory", mem2 ? "memory.max" : "memory.limit_in_bytes"),
		     "67108864");
	ASSERT_STREQ(read_cg(cg, "memory", mem2 ? "memory.low" : "memory.soft_limit_in_bytes"),
		     "33554432");
	ASSERT_STREQ(read_cg(cg, "pids", "pids.max"), "32");
	ASSERT_STREQ(read_cg(cg, "cpuset", "cpuset.cpus"), "0");
	if (v2_for(cg, "cpu")) {
		ASSERT_STREQ(read_cg(cg, "cpu", "cpu.max"), "50000 100000");
		ASSERT_STREQ(read_cg(cg, "cpu", "cpu.weight"), "20");
	} else {
		ASSERT_STREQ(read_cg(cg, "cpu", "cpu.cfs_quota_us"), "50000");
		ASSERT_STREQ(read_cg(cg, "cpu", "cpu.shares"), "512");
	}
}

static void check_limit_stats(json_object *st)
{
	json_object *v;

	ASSERT_TRUE(json_object_object_get_ex(st, "pids", &v));
	ASSERT_TRUE(json_object_object_get_ex(v, "current", &v));
	ASSERT_EQ(json_object_get_int64(v), 1);
	ASSERT_TRUE(json_object_object_get_ex(st, "memory", &v));
	ASSERT_TRUE(json_object_object_get_ex(v, "usage", &v));
	ASSERT_TRUE(json_object_object_get_ex(v, "limit", &v));
	ASSERT_EQ(json_object_get_int64(v), 67108864);
	ASSERT_TRUE(json_object_object_get_ex(st, "cpu", &v));
	json_object *thr;
	/* runc's key names (types.Throttling). */
	ASSERT_TRUE(json_object_object_get_ex(v, "throttling", &thr));
	ASSERT_TRUE(json_object_object_get_ex(thr, "throttledPeriods", NULL));
	ASSERT_TRUE(json_object_object_get_ex(thr, "throttledTime", NULL));
	ASSERT_TRUE(json_object_object_get_ex(v, "usage", &v));
	ASSERT_TRUE(json_object_object_get_ex(v, "total", &v));
}

static void check_update(struct shim_cgroup *cg)
{
	bool mem2 = v2_for(cg, "memory");
	json_object *upd = parse("{\"memory\":{\"limit\":33554432},\"pids\":{\"limit\":16}}");

	/* Only the keys present change. */
	ASSERT_OK(shim_cgroup_update(cg, upd));
	json_object_put(upd);
	ASSERT_STREQ(read_cg(cg, "memory", mem2 ? "memory.max" : "memory.limit_in_bytes"),
		     "33554432");
	ASSERT_STREQ(read_cg(cg, "pids", "pids.max"), "16");
	ASSERT_STREQ(read_cg(cg, "cpuset", "cpuset.cpus"), "0");
}

/* Limits where the controllers exist; enter, pids, stats, kill everywhere. */
static void test_limits_enter_stats_update(void)
{
	static const char *const need[] = {"memory", "cpu", "cpuset", "pids", NULL};
	bool limits = have(need);
	struct shim_cgroup *cg = create(
		"limits", limits ? "{\"memory\":{\"limit\":67108864,\"reservation\":33554432},"
				   "\"cpu\":{\"shares\":512,\"quota\":50000,\"period\":100000,"
				   "\"cpus\":\"0\"},\"pids\":{\"limit\":32}}"
				 : NULL);
	if (limits)
		check_limits(cg);

	/* A forked process really is in every hierarchy's directory. */
	pid_t pid = spawn(sleeper, NULL);
	ASSERT_OK(shim_cgroup_enter(cg, pid));
	pid_t *pids = NULL;
	size_t n = 0;
	ASSERT_OK(shim_cgroup_pids(cg, &pids, &n));
	ASSERT_EQ(n, 1);
	ASSERT_EQ(pids[0], pid);
	free(pids);
	char path[64];
	_cleanup_free_ char *self = NULL;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int) pid);
	ASSERT_OK(cs_read_file_at(AT_FDCWD, path, 65536, &self, NULL));
	for (size_t i = 0; i < shim_cgroup_n_dirs(cg); i++) {
		const char *mount, *dir;
		ASSERT_OK(shim_cgroup_dir(cg, i, &mount, &dir, NULL));
		if (!strstr(self, dir + strlen(mount)))
			T_FAILF("%s not in %s:\n%s", dir + strlen(mount), path, self);
	}

	/* Stats, as `runc events --stats` shapes them. */
	json_object *st = NULL;
	ASSERT_OK(shim_cgroup_stats(cg, &st));
	ASSERT_TRUE(json_object_is_type(st, json_type_object));
	if (limits)
		check_limit_stats(st);
	json_object_put(st);
	if (limits)
		check_update(cg);

	uint64_t ooms = 99;
	int r = shim_cgroup_oom_kill_count(cg, &ooms);
	ASSERT_TRUE(r == 0 || r == -EOPNOTSUPP);
	if (r == 0)
		ASSERT_EQ(ooms, 0);

	/* kill_all with a catchable signal goes through freeze + kill. */
	ASSERT_OK(shim_cgroup_kill_all(cg, SIGTERM));
	int status = reap(pid);
	ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
	pids = NULL;
	ASSERT_OK(shim_cgroup_pids(cg, &pids, &n));
	ASSERT_EQ(n, 0);
	ASSERT_OK(shim_cgroup_destroy(cg));
	for (size_t i = 0; i < shim_cgroup_n_dirs(cg); i++) {
		const char *dir;
		ASSERT_OK(shim_cgroup_dir(cg, i, NULL, &dir, NULL));
		ASSERT_FALSE(dir_exists(dir));
	}
	untrack(cg);
	shim_cgroup_free(cg);
}

static void test_freeze_kill_destroy(void)
{
	struct shim_cgroup *cg = create("freeze", NULL);
	volatile uint64_t *count =
		mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(count != MAP_FAILED);
	pid_t pid = spawn(counter, (void *) count);
	ASSERT_OK(shim_cgroup_enter(cg, pid));
	while (*count == 0)
		sleep_ms(1);

	bool frozen = true;
	ASSERT_OK(shim_cgroup_is_frozen(cg, &frozen));
	ASSERT_FALSE(frozen);
	ASSERT_OK(shim_cgroup_freeze(cg, true));
	ASSERT_OK(shim_cgroup_is_frozen(cg, &frozen));
	ASSERT_TRUE(frozen);
	uint64_t a = *count;
	sleep_ms(100);
	ASSERT_EQ(*count, a); /* a frozen task runs no instruction at all */

	ASSERT_OK(shim_cgroup_freeze(cg, false));
	ASSERT_OK(shim_cgroup_is_frozen(cg, &frozen));
	ASSERT_FALSE(frozen);
	while (*count == a)
		sleep_ms(1);

	/* The state file round trip: a later `stoke kill/delete` works from it. */
	json_object *o = NULL;
	struct shim_cgroup *again = NULL;
	ASSERT_OK(shim_cgroup_to_json(cg, &o));
	json_object *copy = parse(json_object_to_json_string(o));
	ASSERT_OK(shim_cgroup_from_json(copy, &again));
	json_object_put(o);
	json_object_put(copy);
	ASSERT_STREQ(shim_cgroup_path(again), shim_cgroup_path(cg));

	/* A sub-cgroup the container made itself goes too. */
	char sub[512];
	snprintf(sub, sizeof(sub), "%s/nested", cg_hier_primary(cg)->dir);
	ASSERT_OK(RET_NERRNO(mkdir(sub, 0755)));

	/* Paused and signalled: stays paused, the signal waits for the resume. */
	ASSERT_OK(shim_cgroup_freeze(again, true));
	ASSERT_OK(shim_cgroup_kill_all(again, SIGSTOP));
	ASSERT_OK(shim_cgroup_is_frozen(again, &frozen));
	ASSERT_TRUE(frozen);
	ASSERT_OK(shim_cgroup_freeze(again, false));
	siginfo_t si = {0};
	ASSERT_OK(RET_NERRNO(waitid(P_PID, (id_t) pid, &si, WSTOPPED)));
	ASSERT_EQ(si.si_code, CLD_STOPPED);

	ASSERT_OK(shim_cgroup_kill_all(again, SIGKILL));
	int status = reap(pid);
	ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	ASSERT_OK(shim_cgroup_destroy(again));
	for (size_t i = 0; i < shim_cgroup_n_dirs(cg); i++) {
		const char *dir;
		ASSERT_OK(shim_cgroup_dir(cg, i, NULL, &dir, NULL));
		ASSERT_FALSE(dir_exists(dir));
	}
	shim_cgroup_free(again);
	untrack(cg);
	shim_cgroup_free(cg);
	munmap((void *) count, 4096);
}

static int go_pipe[2];
static int open_mode = O_RDONLY; /* how opener() opens its node */

/* Wait for "go" (the parent moves us into the cgroup first), then open
 * the node named by arg; exit 0 opened, 1 EPERM, 2 other error. */
static void opener(void *arg)
{
	char c;
	if (read(go_pipe[0], &c, 1) != 1)
		_exit(3);
	int fd = open(arg, open_mode | O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0)
		_exit(0);
	_exit(errno == EPERM ? 1 : 2);
}

static int try_open(struct shim_cgroup *cg, const char *node)
{
	ASSERT_OK(RET_NERRNO(pipe2(go_pipe, O_CLOEXEC)));
	pid_t pid = spawn(opener, (void *) node);
	ASSERT_OK(shim_cgroup_enter(cg, pid));
	ASSERT_EQ(write(go_pipe[1], "g", 1), 1);
	close(go_pipe[0]);
	close(go_pipe[1]);
	int status = reap(pid);
	ASSERT_TRUE(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_devices(void)
{
	char kmsg[256], null[256];

	/* Our own nodes: /dev/kmsg's numbers (not in runc's default list) and
	 * /dev/null's (always allowed). */
	snprintf(kmsg, sizeof(kmsg), "%s/kmsg", tmpdir);
	snprintf(null, sizeof(null), "%s/null", tmpdir);
	ASSERT_OK(RET_NERRNO(mknod(kmsg, S_IFCHR | 0600, makedev(1, 11))));
	ASSERT_OK(RET_NERRNO(mknod(null, S_IFCHR | 0600, makedev(1, 3))));

	struct shim_cgroup *cg =
		create("devices", "{\"devices\":[{\"allow\":false,\"access\":\"rwm\"}]}");
	ASSERT_EQ(try_open(cg, kmsg), 1);
	ASSERT_EQ(try_open(cg, null), 0);

	/* Update replaces the rules: now 1:11 may be read. */
	json_object *upd = parse("{\"devices\":[{\"allow\":false,\"access\":\"rwm\"},"
				 "{\"allow\":true,\"type\":\"c\",\"major\":1,\"minor\":11,"
				 "\"access\":\"r\"}]}");
	ASSERT_OK(shim_cgroup_update(cg, upd));
	json_object_put(upd);
	ASSERT_EQ(try_open(cg, kmsg), 0);

	/* Type "a" with numbers means block and char 1:11, not everything:
	 * 1:12 (no driver behind it: ENXIO once the cgroup lets it through)
	 * stays allowed. */
	char nodev[256];
	snprintf(nodev, sizeof(nodev), "%s/nodev", tmpdir);
	ASSERT_OK(RET_NERRNO(mknod(nodev, S_IFCHR | 0600, makedev(1, 12))));
	upd = parse("{\"devices\":[{\"allow\":true,\"access\":\"rwm\"},{\"allow\":false,"
		    "\"type\":\"a\",\"major\":1,\"minor\":11,\"access\":\"r\"}]}");
	ASSERT_OK(shim_cgroup_update(cg, upd));
	json_object_put(upd);
	ASSERT_EQ(try_open(cg, kmsg), 1);
	ASSERT_EQ(try_open(cg, nodev), 2);
	ASSERT_OK(shim_cgroup_destroy(cg));
	untrack(cg);
	shim_cgroup_free(cg);
}

/* The cgroup v2 device program, on whatever cgroup2 directory this host
 * has (the only device control on a v2 host; on a hybrid host it applies
 * on top of v1's, which this cgroup leaves open). */
static void test_devices_bpf(void)
{
	char kmsg[256], null[256];
	struct shim_cgroup *cg = create("bpf", NULL);
	struct cg_hier *h = NULL;

	for (size_t i = 0; i < cg->n; i++)
		if (cg->h[i].version == 2)
			h = &cg->h[i];
	if (!h) {
		printf("# no cgroup2 hierarchy: skipped\n");
		return;
	}
	snprintf(kmsg, sizeof(kmsg), "%s/kmsg", tmpdir);
	snprintf(null, sizeof(null), "%s/null", tmpdir);
	int fd = open(h->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_TRUE(fd >= 0);
	json_object *rules = parse("[{\"allow\":false,\"access\":\"rwm\"},"
				   "{\"allow\":true,\"type\":\"c\",\"major\":1,\"minor\":3,"
				   "\"access\":\"rwm\"},"
				   "{\"allow\":true,\"type\":\"c\",\"major\":1,\"minor\":11,"
				   "\"access\":\"w\"}]");
	ASSERT_OK(cg_bpf_devices_replace(fd, rules));
	json_object_put(rules);
	ASSERT_EQ(try_open(cg, null), 0);
	ASSERT_EQ(try_open(cg, kmsg), 1); /* allowed w, asked r */

	/* Replaced, not stacked: a program allowing 1:* r takes over. A deny
	 * of exactly 1:3 takes nothing from the 1:* exception (v1's rule). */
	rules = parse("[{\"allow\":false,\"access\":\"rwm\"},{\"allow\":true,\"type\":\"c\","
		      "\"major\":1,\"minor\":-1,\"access\":\"r\"},{\"allow\":false,\"type\":\"c\","
		      "\"major\":1,\"minor\":3,\"access\":\"r\"}]");
	ASSERT_OK(cg_bpf_devices_replace(fd, rules));
	json_object_put(rules);
	ASSERT_EQ(try_open(cg, kmsg), 0);
	ASSERT_EQ(try_open(cg, null), 0);

	/* Accesses granted by separate rules add up, and a deny takes away. */
	rules = parse("[{\"allow\":false,\"access\":\"rwm\"},{\"allow\":true,\"type\":\"c\","
		      "\"major\":1,\"minor\":11,\"access\":\"r\"},{\"allow\":true,\"type\":\"c\","
		      "\"major\":1,\"minor\":11,\"access\":\"w\"},{\"allow\":true,\"type\":\"c\","
		      "\"major\":1,\"minor\":3,\"access\":\"rw\"},{\"allow\":false,\"type\":\"c\","
		      "\"major\":1,\"minor\":3,\"access\":\"w\"}]");
	ASSERT_OK(cg_bpf_devices_replace(fd, rules));
	json_object_put(rules);
	open_mode = O_RDWR;
	ASSERT_EQ(try_open(cg, kmsg), 0);
	ASSERT_EQ(try_open(cg, null), 1);
	open_mode = O_RDONLY;
	ASSERT_EQ(try_open(cg, null), 0);

	/* Default allow with a deny exception. */
	rules = parse("[{\"allow\":true,\"access\":\"rwm\"},{\"allow\":false,\"type\":\"a\","
		      "\"major\":1,\"minor\":11,\"access\":\"r\"}]");
	ASSERT_OK(cg_bpf_devices_replace(fd, rules));
	json_object_put(rules);
	ASSERT_EQ(try_open(cg, kmsg), 1);
	ASSERT_EQ(try_open(cg, null), 0);

	ASSERT_OK(cg_bpf_devices_detach_all(fd));
	ASSERT_EQ(try_open(cg, null), 0);
	close(fd);
	ASSERT_OK(shim_cgroup_destroy(cg));
	untrack(cg);
	shim_cgroup_free(cg);
}

static void hog(void *arg)
{
	char c;
	(void) arg;
	if (read(go_pipe[0], &c, 1) != 1)
		_exit(3);
	/* Touch 256 MiB, far over the limit. */
	for (size_t i = 0; i < 256; i++) {
		char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);
		if (p == MAP_FAILED)
			_exit(2);
		memset(p, 1, 1 << 20);
	}
	_exit(0);
}

static void test_oom_count(void)
{
	static const char *const need[] = {"memory", NULL};
	if (!have(need))
		return;
	/* swap == limit: no swap, so the OOM killer must act. */
	struct shim_cgroup *cg =
		create("oom", "{\"memory\":{\"limit\":16777216,\"swap\":16777216}}");
	if (!v2_for(cg, "memory"))
		ASSERT_STREQ(read_cg(cg, "memory", "memory.memsw.limit_in_bytes"), "16777216");
	else if (cg_has_file(cg_hier_for(cg, "memory"), "memory.swap.max"))
		ASSERT_STREQ(read_cg(cg, "memory", "memory.swap.max"), "0");
	uint64_t before = 0, after = 0;
	int r = shim_cgroup_oom_kill_count(cg, &before);
	if (r == -EOPNOTSUPP) {
		printf("# no oom_kill counter on this kernel: skipped\n");
		return;
	}
	ASSERT_OK(r);
	ASSERT_OK(RET_NERRNO(pipe2(go_pipe, O_CLOEXEC)));
	pid_t pid = spawn(hog, NULL);
	ASSERT_OK(shim_cgroup_enter(cg, pid));
	ASSERT_EQ(write(go_pipe[1], "g", 1), 1);
	int status = reap(pid);
	ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	ASSERT_OK(shim_cgroup_oom_kill_count(cg, &after));
	ASSERT_EQ(after, before + 1);
	close(go_pipe[0]);
	close(go_pipe[1]);
	ASSERT_OK(shim_cgroup_destroy(cg));
	untrack(cg);
	shim_cgroup_free(cg);
}

static void test_hugetlb_and_unified(void)
{
	char res[512];
	int layout = shim_cgroup_detect_layout();

	if (cg_host_version_for("hugetlb") == 0 ||
	    access("/sys/kernel/mm/hugepages/hugepages-2048kB", F_OK) < 0) {
		printf("# no hugetlb controller or 2MB pages: skipped\n");
		return;
	}
	snprintf(res, sizeof(res),
		 "{\"hugepageLimits\":[{\"pageSize\":\"2MB\",\"limit\":4194304}]%s}",
		 layout == SHIM_CGROUP_V1 ? "" : ",\"unified\":{\"cgroup.max.descendants\":\"3\"}");
	struct shim_cgroup *cg = create("hugetlb", res);
	bool v2 = v2_for(cg, "hugetlb");
	ASSERT_STREQ(read_cg(cg, "hugetlb", v2 ? "hugetlb.2MB.max" : "hugetlb.2MB.limit_in_bytes"),
		     "4194304");
	for (size_t i = 0; i < cg->n; i++)
		if (cg->h[i].version == 2) {
			char path[512];
			_cleanup_free_ char *s = NULL;
			snprintf(path, sizeof(path), "%s/cgroup.max.descendants", cg->h[i].dir);
			ASSERT_OK(cs_read_file_at(AT_FDCWD, path, 4096, &s, NULL));
			ASSERT_STREQ(s, "3\n");
		}
	ASSERT_OK(shim_cgroup_destroy(cg));
	untrack(cg);
	shim_cgroup_free(cg);
}

static void expect_invalid(const char *linux_json, int err, const char *needle)
{
	json_object *o = parse(linux_json);
	char msg[256] = "";
	ASSERT_ERR(shim_cgroup_validate(o, msg, sizeof(msg)), err);
	if (!strstr(msg, needle))
		T_FAILF("error \"%s\" does not mention \"%s\"", msg, needle);
	json_object_put(o);
}

static void test_validate(void)
{
	json_object *ok = parse("{\"cgroupsPath\":\"/a/b\",\"resources\":{\"memory\":{\"limit\":-1,"
				"\"swappiness\":10,\"disableOOMKiller\":false},\"cpu\":{\"cpus\":"
				"\"0-1,3\"},\"pids\":{\"limit\":-1},\"devices\":[{\"allow\":false,"
				"\"access\":\"rwm\"},{\"allow\":true,\"type\":\"c\",\"major\":1,"
				"\"minor\":-1}]}}");
	static const char *const need[] = {"memory", "cpuset", "pids", NULL};
	char msg[256] = "";
	if (have(need) && shim_cgroup_validate(ok, msg, sizeof(msg)) < 0)
		T_FAILF("valid config refused: %s", msg);
	json_object_put(ok);
	if (!cg_host_version_for("memory"))
		expect_invalid(
			"{\"resources\":{\"memory\":{\"limit\":1048576}}}", -EOPNOTSUPP,
			"linux.resources.memory: the memory cgroup controller is not available");

	expect_invalid("{\"resources\":{\"memory\":{\"swappiness\":150}}}", -EINVAL,
		       "linux.resources.memory.swappiness: 150 is out of range 0-100");
	expect_invalid("{\"resources\":{\"memory\":{\"limit\":\"1G\"}}}", -EINVAL,
		       "linux.resources.memory.limit: must be an integer");
	expect_invalid("{\"resources\":{\"memory\":{\"limit\":4096000,\"swap\":4096}}}", -EINVAL,
		       "linux.resources.memory.swap: 4096 (memory+swap) is below");
	/* Unknown properties are ignored (runtime spec, "Extensibility"). */
	json_object *unknown = parse("{\"resources\":{\"memory\":{\"limt\":1},\"future\":{}}}");
	char msg2[256] = "";
	ASSERT_OK(shim_cgroup_validate(unknown, msg2, sizeof(msg2)));
	json_object_put(unknown);
	expect_invalid("{\"resources\":{\"cpu\":{\"cpus\":\"0-x\"}}}", -EINVAL,
		       "linux.resources.cpu.cpus");
	expect_invalid("{\"resources\":{\"devices\":[{\"allow\":true,\"type\":\"x\"}]}}", -EINVAL,
		       "linux.resources.devices[0].type");
	expect_invalid("{\"resources\":{\"devices\":[{\"allow\":true,\"access\":\"rwx\"}]}}",
		       -EINVAL, "linux.resources.devices[0].access");
	expect_invalid("{\"resources\":{\"devices\":[{\"type\":\"c\"}]}}", -EINVAL,
		       "linux.resources.devices[0].allow: missing");
	expect_invalid("{\"resources\":{\"hugepageLimits\":[{\"pageSize\":\"3XB\",\"limit\":1}]}}",
		       -EINVAL, "linux.resources.hugepageLimits[0].pageSize");
	expect_invalid("{\"resources\":{\"blockIO\":{\"weight\":5}}}", -EINVAL,
		       "linux.resources.blockIO.weight");
	expect_invalid("{\"resources\":{\"blockIO\":{\"throttleReadBpsDevice\":[{\"major\":8}]}}}",
		       -EINVAL, "linux.resources.blockIO.throttleReadBpsDevice[0].minor: missing");
	expect_invalid("{\"resources\":{\"unified\":{\"../memory.max\":\"1\"}}}", -EINVAL,
		       "linux.resources.unified.../memory.max");
	expect_invalid("{\"resources\":{\"unified\":{\"cgroup.procs\":\"1\"}}}", -EINVAL,
		       "linux.resources.unified.cgroup.procs");
	expect_invalid("{\"cgroupsPath\":\"/a/../b\"}", -EINVAL, "linux.cgroupsPath");
	expect_invalid("{\"resources\":{\"pids\":{\"limit\":1.5}}}", -EINVAL,
		       "linux.resources.pids.limit");

	/* What this host cannot do, by name. */
	if (!cg_host_version_for("rdma"))
		expect_invalid("{\"resources\":{\"rdma\":{\"mlx5_0\":{\"hcaHandles\":1}}}}",
			       -EOPNOTSUPP, "linux.resources.rdma: the rdma cgroup controller");
	if (shim_cgroup_detect_layout() == SHIM_CGROUP_HYBRID && cg_host_version_for("memory") == 1)
		expect_invalid("{\"resources\":{\"unified\":{\"memory.high\":\"1M\"}}}",
			       -EOPNOTSUPP,
			       "linux.resources.unified.memory.high: the memory controller");
	if (access("/sys/kernel/mm/hugepages/hugepages-64kB", F_OK) < 0 &&
	    cg_host_version_for("hugetlb"))
		expect_invalid("{\"resources\":{\"hugepageLimits\":[{\"pageSize\":\"64KB\","
			       "\"limit\":1}]}}",
			       -EOPNOTSUPP, "this host has no 64KB huge pages");
}

static void test_failed_create_leaves_nothing(void)
{
	char path[128], pattern[256];
	struct shim_cgroup *cg = NULL;
	json_object *res;
	const char *field;
	glob_t g;

	/* A value the kernel refuses after the directories were made: CPU
	 * 4095 does not exist, or (without cpuset) descendants below zero. */
	if (cg_host_version_for("cpuset")) {
		res = parse("{\"cpu\":{\"cpus\":\"4095\"}}");
		field = "linux.resources.cpu.cpus";
	} else if (shim_cgroup_detect_layout() != SHIM_CGROUP_V1) {
		res = parse("{\"unified\":{\"cgroup.max.descendants\":\"-5\"}}");
		field = "linux.resources.unified.cgroup.max.descendants";
	} else {
		printf("# neither cpuset nor cgroup2: skipped\n");
		return;
	}
	snprintf(path, sizeof(path), "%s/broken", base);
	/* -EINVAL or -ERANGE: the kernel's answer, passed on. */
	int r = shim_cgroup_create(path, "broken", res, &cg);
	ASSERT_TRUE(r == -EINVAL || r == -ERANGE);
	json_object_put(res);
	ASSERT_TRUE(cg == NULL);
	if (!strstr(shim_cgroup_last_error(), field))
		T_FAILF("\"%s\" does not name %s", shim_cgroup_last_error(), field);
	/* Not in any hierarchy, not even the parent made for it. */
	snprintf(pattern, sizeof(pattern), "/sys/fs/cgroup{,/*}%s", base);
	ASSERT_EQ(glob(pattern, GLOB_BRACE | GLOB_NOSORT, NULL, &g), GLOB_NOMATCH);
}

static void test_default_path_and_destroy_parents(void)
{
	char id[64];
	struct shim_cgroup *cg = NULL;

	/* NULL cgroupsPath: "stoke/<id>" under our own cgroup. */
	snprintf(id, sizeof(id), "stoke-test-default-%d", (int) getpid());
	ASSERT_OK(shim_cgroup_create(NULL, id, NULL, &cg));
	track(cg);
	ASSERT_TRUE(strstr(shim_cgroup_path(cg), "/stoke/") != NULL);
	ASSERT_TRUE(strstr(shim_cgroup_path(cg), id) != NULL);
	ASSERT_OK(shim_cgroup_destroy(cg));
	untrack(cg);
	shim_cgroup_free(cg);

	/* Everything under our unique absolute base is gone too. */
	cg = create("x", NULL);
	const char *mount, *dir;
	ASSERT_OK(shim_cgroup_dir(cg, 0, &mount, &dir, NULL));
	char top[256];
	snprintf(top, sizeof(top), "%s%s", mount, base);
	ASSERT_TRUE(dir_exists(top));
	ASSERT_OK(shim_cgroup_destroy(cg));
	ASSERT_FALSE(dir_exists(dir));
	ASSERT_FALSE(dir_exists(top));
	untrack(cg);
	shim_cgroup_free(cg);

	/* Bad ids and paths. */
	ASSERT_ERR(shim_cgroup_create(NULL, "a/b", NULL, &cg), -EINVAL);
	ASSERT_ERR(shim_cgroup_create("/x/../y", "x", NULL, &cg), -EINVAL);
	ASSERT_TRUE(strstr(shim_cgroup_last_error(), "linux.cgroupsPath") != NULL);
}

/* Containers created and deleted at the same time share the default
 * "stoke" parent: whoever leaves it empty removes it, and nobody's create
 * may fail because of that. */
static void churn(void *arg)
{
	int worker = (int) (intptr_t) arg;
	char id[64];

	for (int i = 0; i < 25; i++) {
		struct shim_cgroup *cg = NULL;
		snprintf(id, sizeof(id), "stoke-test-churn-%d-%d-%d", (int) getppid(), worker, i);
		if (shim_cgroup_create(NULL, id, NULL, &cg) < 0) {
			fprintf(stderr, "worker %d: %s\n", worker, shim_cgroup_last_error());
			_exit(1);
		}
		if (shim_cgroup_destroy(cg) < 0)
			_exit(2);
		shim_cgroup_free(cg);
	}
	_exit(0);
}

static void test_concurrent_default_parent(void)
{
	pid_t pids[4];

	for (int w = 0; w < 4; w++)
		pids[w] = spawn(churn, (void *) (intptr_t) w);
	for (int w = 0; w < 4; w++) {
		int status = reap(pids[w]);
		ASSERT_TRUE(WIFEXITED(status));
		ASSERT_EQ(WEXITSTATUS(status), 0);
	}
}

static void on_alarm(int sig)
{
	(void) sig;
	/* exit(), not _exit(): the atexit cleanup must run. */
	fprintf(stderr, "test timed out\n");
	exit(T_FAIL);
}

/* Run the suite as a cgroup v2-only host sees things: in a private mount
 * namespace, the cgroup2 hierarchy mounted over /sys/fs/cgroup (on a hybrid
 * host that is the same hierarchy as .../unified, with its controllers). */
static void enter_v2_view(void)
{
	T_REQUIRE(unshare(CLONE_NEWNS) == 0, "cannot unshare the mount namespace");
	ASSERT_OK(RET_NERRNO(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)));
	if (mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, NULL) < 0)
		T_REQUIRE(false, "cannot mount cgroup2 over /sys/fs/cgroup");
}

int main(int argc, char **argv)
{
	T_REQUIRE(geteuid() == 0, "needs root (creates cgroups)");
	if (argc > 1 && strcmp(argv[1], "--v2-view") == 0)
		enter_v2_view();
	T_REQUIRE(shim_cgroup_detect_layout() > 0, "no cgroup filesystem at /sys/fs/cgroup");
	snprintf(tmpdir, sizeof(tmpdir), "%s/stoke-test-cgroup-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	T_REQUIRE(mkdtemp(tmpdir) != NULL, "cannot create a temporary directory");
	snprintf(base, sizeof(base), "/stoke-test-%d", (int) getpid());
	atexit(cleanup);
	signal(SIGALRM, on_alarm);
	alarm(100);

	RUN_TEST(test_layout);
	RUN_TEST(test_validate);
	RUN_TEST(test_limits_enter_stats_update);
	RUN_TEST(test_freeze_kill_destroy);
	RUN_TEST(test_devices);
	RUN_TEST(test_devices_bpf);
	RUN_TEST(test_oom_count);
	RUN_TEST(test_hugetlb_and_unified);
	RUN_TEST(test_failed_create_leaves_nothing);
	RUN_TEST(test_default_path_and_destroy_parents);
	RUN_TEST(test_concurrent_default_parent);
	return T_PASS;
}
