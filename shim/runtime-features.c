/* SPDX-License-Identifier: Apache-2.0 */
#include "runtime-features.h"
#include "mount-options.h"
#include "seccomp-names.h"
#include "seccomp.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <seccomp.h>

#include "config.h"

static const char *const hook_kinds[] = {
	"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop",
};

static const char *const namespace_kinds[] = {
	"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
};

static json_object *string_array(const char *const *names, size_t n)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(names[i]));
	return a;
}

static json_object *seccomp_name_array(const struct shim_seccomp_name *t, size_t n)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(t[i].name));
	return a;
}

/* Every capability the running kernel knows, by its OCI name (CAP_*). */
static json_object *capability_array(void)
{
	json_object *a = json_object_new_array();
	for (int c = 0; c < (int) cap_max_bits(); c++) {
		char *name = cap_to_name(c);
		if (!name)
			continue;
		char upper[64];
		size_t i;
		for (i = 0; name[i] && i + 1 < sizeof(upper); i++)
			upper[i] =
				(char) (name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32 : name[i]);
		upper[i] = '\0';
		cap_free(name);
		/* libcap names capabilities it does not know by number. */
		if (strncmp(upper, "CAP_", 4) == 0)
			json_object_array_add(a, json_object_new_string(upper));
	}
	return a;
}

static json_object *seccomp_object(void)
{
	json_object *s = json_object_new_object();
	json_object_object_add(s, "enabled", json_object_new_boolean(1));
	json_object_object_add(
		s, "actions", seccomp_name_array(shim_seccomp_actions, shim_seccomp_actions_count));
	json_object_object_add(
		s, "operators",
		seccomp_name_array(shim_seccomp_operators, shim_seccomp_operators_count));
	json_object_object_add(s, "archs",
			       seccomp_name_array(shim_seccomp_archs, shim_seccomp_archs_count));
	json_object_object_add(s, "knownFlags",
			       seccomp_name_array(shim_seccomp_flags, shim_seccomp_flags_count));
	/* Supported: what the running kernel accepts, not just what we know. */
	json_object *supported = json_object_new_array();
	for (size_t i = 0; i < shim_seccomp_flags_count; i++)
		if (shim_seccomp_flag_supported(shim_seccomp_flags[i].value))
			json_object_array_add(supported,
					      json_object_new_string(shim_seccomp_flags[i].name));
	json_object_object_add(s, "supportedFlags", supported);
	return s;
}

static json_object *enabled_object(int enabled)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "enabled", json_object_new_boolean(enabled));
	return o;
}

static json_object *linux_object(void)
{
	json_object *l = json_object_new_object();
	json_object_object_add(
		l, "namespaces",
		string_array(namespace_kinds, sizeof(namespace_kinds) / sizeof(char *)));
	json_object_object_add(l, "capabilities", capability_array());

	json_object *cg = json_object_new_object();
	json_object_object_add(cg, "v1", json_object_new_boolean(1));
	json_object_object_add(cg, "v2", json_object_new_boolean(1));
	json_object_object_add(cg, "systemd", json_object_new_boolean(0));
	json_object_object_add(cg, "systemdUser", json_object_new_boolean(0));
	json_object_object_add(cg, "rdma", json_object_new_boolean(0));
	json_object_object_add(l, "cgroup", cg);

	json_object_object_add(l, "seccomp", seccomp_object());
	json_object_object_add(l, "apparmor", enabled_object(0));
	json_object_object_add(l, "selinux", enabled_object(0));
	json_object_object_add(l, "intelRdt", enabled_object(0));
	/* Id-mapped bind mounts (mounts[].uidMappings, "idmap"/"ridmap"). */
	json_object *ext = json_object_new_object();
	json_object_object_add(ext, "idmap", enabled_object(1));
	json_object_object_add(l, "mountExtensions", ext);
	return l;
}

static json_object *annotations_object(void)
{
	const struct scmp_version *v = seccomp_version();
	char buf[64];
	json_object *a = json_object_new_object();

	snprintf(buf, sizeof(buf), "%u.%u.%u", v->major, v->minor, v->micro);
	json_object_object_add(a, "io.github.seccomp.libseccomp.version",
			       json_object_new_string(buf));
	json_object_object_add(a, "org.stoke.version", json_object_new_string(STOKE_VERSION));
	return a;
}

int shim_features_build(json_object **ret)
{
	json_object *f = json_object_new_object();
	if (!f)
		return -ENOMEM;

	const char **opts = calloc(shim_mount_options_count, sizeof(char *));
	if (!opts) {
		json_object_put(f);
		return -ENOMEM;
	}
	for (size_t i = 0; i < shim_mount_options_count; i++)
		opts[i] = shim_mount_options[i].name;

	json_object_object_add(f, "ociVersionMin", json_object_new_string("1.0.0"));
	json_object_object_add(f, "ociVersionMax", json_object_new_string("1.2.0"));
	json_object_object_add(f, "hooks",
			       string_array(hook_kinds, sizeof(hook_kinds) / sizeof(char *)));
	json_object_object_add(f, "mountOptions", string_array(opts, shim_mount_options_count));
	json_object_object_add(f, "linux", linux_object());
	json_object_object_add(f, "annotations", annotations_object());
	free(opts);
	*ret = f;
	return 0;
}
