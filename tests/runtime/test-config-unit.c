/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests (no root, no containers): config.json parsing into struct
 * shim_config (types, options split by kind, paths made absolute), field-
 * naming errors, shim_process_parse(), and the state file round trip.
 */
#include "harness.h"
#include "oci-config.h"
#include "state.h"

#include "cleanup.h"
#include "fd-util.h"
#include "json-util.h"
#include "strv.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>

static char dir[100]; /* $TMPDIR/stoke-config-unit.XXXXXX (or /tmp/...) */

static void rm_dir(void)
{
	(void) cs_rm_rf_at(AT_FDCWD, dir);
}

static int parse(const char *text, struct shim_config **ret, char *err, size_t errlen)
{
	json_object *j;
	int r = cs_json_parse(text, strlen(text), &j, err, errlen);
	if (r < 0)
		return r;
	return shim_config_parse(j, dir, ret, err, errlen);
}

#define BASE                                                                                       \
	"\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\",\"readonly\":true},"               \
	"\"process\":{\"args\":[\"sh\",\"-c\",\"x\"],\"cwd\":\"/\",\"env\":[\"A=1\"],"             \
	"\"user\":{\"uid\":1000,\"gid\":100,\"additionalGids\":[5,6],\"umask\":18},"               \
	"\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":10,\"hard\":20}],"                      \
	"\"capabilities\":{\"bounding\":[\"CAP_KILL\",\"CAP_CHOWN\"],\"effective\":[\"CAP_KILL\"]" \
	"}}"

static void test_parse_full(void)
{
	_cleanup_(shim_config_freep) struct shim_config *c = NULL;
	char err[512] = "";
	const char *text =
		"{" BASE ",\"hostname\":\"h\","
		"\"mounts\":[{\"destination\":\"/data\",\"type\":\"bind\",\"source\":\"data\","
		"\"options\":[\"rbind\",\"ro\",\"nosuid\",\"rslave\",\"rnoexec\"]},"
		"{\"destination\":\"tmp\",\"type\":\"tmpfs\",\"source\":\"tmpfs\","
		"\"options\":[\"size=1m\",\"mode=700\",\"noexec\",\"exec\",\"tmpcopyup\"]}],"
		"\"hooks\":{\"prestart\":[{\"path\":\"/bin/"
		"true\",\"args\":[\"true\"],\"timeout\":3}]},"
		"\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"mount\"},{\"type\":"
		"\"uts\"},"
		"{\"type\":\"network\",\"path\":\"/proc/self/ns/net\"}],"
		"\"devices\":[{\"path\":\"/dev/fuse\",\"type\":\"c\",\"major\":10,\"minor\":229}],"
		"\"maskedPaths\":[\"/proc/kcore\"],\"readonlyPaths\":[\"/proc/sys\"],"
		"\"sysctl\":{\"net.ipv4.ip_forward\":\"1\"},\"rootfsPropagation\":\"shared\","
		"\"cgroupsPath\":\"/a/b\"}}";

	ASSERT_OK(parse(text, &c, err, sizeof(err)));
	ASSERT_STREQ(c->oci_version, "1.0.2");
	ASSERT_TRUE(c->root_readonly);
	ASSERT_EQ(strncmp(c->rootfs, dir, strlen(dir)), 0);
	ASSERT_STREQ(c->rootfs + strlen(dir), "/rootfs");
	ASSERT_STREQ(c->hostname, "h");
	ASSERT_EQ(cs_strv_length(c->process.args), 3);
	ASSERT_EQ(c->process.uid, 1000);
	ASSERT_EQ(c->process.gid, 100);
	ASSERT_EQ(c->process.n_additional_gids, 2);
	ASSERT_TRUE(c->process.has_umask);
	ASSERT_EQ(c->process.umask, 022);
	ASSERT_EQ(c->process.n_rlimits, 1);
	ASSERT_EQ(c->process.rlimits[0].resource, RLIMIT_NOFILE);
	ASSERT_EQ(c->process.rlimits[0].hard, 20);
	ASSERT_EQ(c->process.caps.bounding, (1u << 5) | (1u << 0)); /* KILL, CHOWN */
	ASSERT_EQ(c->process.caps.effective, 1u << 5);
	ASSERT_EQ(c->process.caps.ambient, 0);

	ASSERT_EQ(c->n_mounts, 2);
	ASSERT_TRUE(c->mounts[0].bind);
	ASSERT_EQ(c->mounts[0].flags, MS_BIND | MS_REC | MS_RDONLY | MS_NOSUID);
	ASSERT_EQ(c->mounts[0].propagation, MS_SLAVE | MS_REC);
	ASSERT_TRUE(c->mounts[0].attr_set != 0);
	ASSERT_STREQ(c->mounts[0].source + strlen(dir), "/data"); /* relative to the bundle */
	ASSERT_STREQ(c->mounts[1].destination, "/tmp");		  /* relative destination */
	ASSERT_STREQ(c->mounts[1].data, "size=1m,mode=700");	  /* unknown options: fs data */
	ASSERT_EQ(c->mounts[1].flags & MS_NOEXEC, 0);		  /* "exec" cleared "noexec" */
	ASSERT_TRUE(c->mounts[1].tmpcopyup);

	ASSERT_EQ(c->hooks[SHIM_HOOK_PRESTART].n, 1);
	ASSERT_EQ(c->hooks[SHIM_HOOK_PRESTART].v[0].timeout, 3);
	ASSERT_TRUE(c->ns[SHIM_NS_PID].enabled && !c->ns[SHIM_NS_PID].path);
	ASSERT_STREQ(c->ns[SHIM_NS_NET].path, "/proc/self/ns/net");
	ASSERT_FALSE(c->ns[SHIM_NS_USER].enabled);
	ASSERT_EQ(c->n_devices, 1);
	ASSERT_EQ(c->devices[0].major, 10);
	ASSERT_EQ(c->n_sysctl, 1);
	ASSERT_EQ(c->rootfs_propagation, MS_SHARED | MS_REC);
	ASSERT_STREQ(c->cgroups_path, "/a/b");
	ASSERT_STREQ(c->masked_paths[0], "/proc/kcore");
}

/* Each bad document fails with -EINVAL/-EOPNOTSUPP and an error naming `field`. */
static void expect_error(const char *text, const char *field)
{
	struct shim_config *c = NULL;
	char err[512] = "";
	int r = parse(text, &c, err, sizeof(err));
	if (r >= 0)
		T_FAILF("accepted: %s", text);
	if (r != -EINVAL && r != -EOPNOTSUPP)
		T_FAILF("%s: error %d (%s), expected -EINVAL or -EOPNOTSUPP", text, r,
			strerror(-r));
	if (!strstr(err, field))
		T_FAILF("error \"%s\" does not name \"%s\"", err, field);
	ASSERT_TRUE(c == NULL);
}

static void test_errors(void)
{
	expect_error("{\"ociVersion\":\"1.0.2\"}", "root");
	expect_error("{" BASE ",\"linux\":{\"namespaces\":[{\"type\":\"nope\"}]}}",
		     "linux.namespaces[0].type");
	expect_error("{" BASE ",\"hooks\":{\"poststop\":[{\"path\":\"x\"}]}}",
		     "hooks.poststop[0].path");
	expect_error("{" BASE ",\"mounts\":[{\"destination\":\"/x\"}]}", "mounts[0].type");
	expect_error("{" BASE ",\"linux\":{\"uidMappings\":[{\"containerID\":0,\"hostID\":0,"
		     "\"size\":1}]}}",
		     "linux.uidMappings");
	expect_error("{" BASE ",\"hostname\":\"x\"}", "hostname");
	expect_error("{" BASE ",\"linux\":{\"sysctl\":{\"vm.swappiness\":\"1\"}}}",
		     "linux.sysctl.vm.swappiness");
	expect_error("{" BASE ",\"linux\":{\"personality\":{\"domain\":\"X\"}}}",
		     "linux.personality.domain");
	expect_error(
		"{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"},\"process\":{"
		"\"args\":[\"a\"],\"cwd\":\"/\",\"capabilities\":{\"ambient\":[\"CAP_NOPE\"]}}}",
		"process.capabilities.ambient[0]");
}

static void test_process_parse(void)
{
	struct shim_process p;
	char err[256];
	json_object *j;
	const char *t =
		"{\"args\":[\"ls\"],\"cwd\":\"/w\",\"terminal\":true,"
		"\"consoleSize\":{\"height\":24,\"width\":80},\"noNewPrivileges\":true,"
		"\"oomScoreAdj\":-5,\"execCPUAffinity\":{\"initial\":\"0\",\"final\":\"0-1\"}}";
	ASSERT_OK(cs_json_parse(t, strlen(t), &j, err, sizeof(err)));
	ASSERT_OK(shim_process_parse(j, "process", &p, err, sizeof(err)));
	ASSERT_TRUE(p.terminal);
	ASSERT_EQ(p.console_height, 24);
	ASSERT_EQ(p.console_width, 80);
	ASSERT_TRUE(p.no_new_privileges);
	ASSERT_EQ(p.oom_score_adj, -5);
	ASSERT_TRUE(p.has_cpu_affinity_final && CPU_ISSET(1, &p.cpu_affinity_final));
	ASSERT_EQ(cs_strv_length(p.env), 0);
	shim_process_done(&p);
	json_object_put(j);
}

static void test_state_roundtrip(void)
{
	char root[512];
	snprintf(root, sizeof(root), "%s/state", dir);
	ASSERT_OK(cs_mkdir_p(root, 0700));
	char sub[600];
	snprintf(sub, sizeof(sub), "%s/c-1", root);
	ASSERT_OK(cs_mkdir_p(sub, 0700));

	json_object *ann = json_object_new_object();
	json_object_object_add(ann, "k", json_object_new_string("v"));
	struct shim_state s = {
		.id = (char *) "c-1",
		.bundle = (char *) "/b",
		.rootfs = (char *) "/b/rootfs",
		.pid = 4242,
		.pid_start_time = 99,
		.created = (char *) "2026-01-01T00:00:00.000000001Z",
		.owner = (char *) "",
		.started = true,
		.annotations = ann,
	};
	ASSERT_OK(shim_state_save(root, &s));
	json_object_put(ann);

	_cleanup_(shim_state_freep) struct shim_state *l = NULL;
	ASSERT_OK(shim_state_load(root, "c-1", &l));
	ASSERT_STREQ(l->bundle, "/b");
	ASSERT_EQ(l->pid, 4242);
	ASSERT_EQ(l->pid_start_time, 99);
	ASSERT_TRUE(l->started);
	ASSERT_STREQ(json_object_get_string(json_object_object_get(l->annotations, "k")), "v");
	/* pid 4242 with start time 99 is not running: stopped. */
	ASSERT_EQ(shim_state_status(root, l), SHIM_STATUS_STOPPED);

	_cleanup_strv_free_ char **ids = NULL;
	ASSERT_OK(shim_state_list(root, &ids));
	ASSERT_EQ(cs_strv_length(ids), 1);
	ASSERT_STREQ(ids[0], "c-1");
	struct shim_state *none = NULL;
	ASSERT_ERR(shim_state_load(root, "nope", &none), -ENOENT);
	ASSERT_ERR(shim_state_load(root, "../x", &none), -EINVAL);
	ASSERT_OK(shim_state_remove(root, "c-1"));
	ASSERT_ERR(shim_state_load(root, "c-1", &none), -ENOENT);
	ASSERT_FALSE(shim_state_id_valid(".."));
	ASSERT_FALSE(shim_state_id_valid("a/b"));
	ASSERT_TRUE(shim_state_id_valid("abc_1.2-3+4"));
}

int main(void)
{
	char path[600];
	snprintf(dir, sizeof(dir), "%s/stoke-config-unit.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ASSERT_TRUE(mkdtemp(dir) != NULL);
	atexit(rm_dir);
	snprintf(path, sizeof(path), "%s/rootfs", dir);
	ASSERT_OK(cs_mkdir_p(path, 0755));
	RUN_TEST(test_parse_full);
	RUN_TEST(test_errors);
	RUN_TEST(test_process_parse);
	RUN_TEST(test_state_roundtrip);
	return 0;
}
