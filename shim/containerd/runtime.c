/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The OCI runtime binary, driven with runc's command-line conventions exactly
 * as containerd's runc shim does:
 *   <bin> --root <root>/<namespace> --log <bundle>/log.json --log-format json <verb> ...
 * Its errors are read back from the last "error" line of log.json.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "fd-util.h"
#include "json-util.h"
#include "log.h"
#include "path-util.h"
#include "shim.h"
#include "strv.h"

#define DEFAULT_ROOT "/run/containerd/stoke"
#define RUNTIME_ENV  "STOKE_SHIM_RUNTIME"

/* Find `name` on $PATH (absolute names are checked as they are). */
static int find_exec(const char *name, char **ret)
{
	_cleanup_free_ char *path = NULL;
	const char *env;
	char *save = NULL;

	if (strchr(name, '/')) {
		char *abs = realpath(name, NULL);
		if (!abs)
			return -errno;
		if (access(abs, X_OK) < 0) {
			int r = -errno;
			free(abs);
			return r;
		}
		*ret = abs;
		return 0;
	}
	env = getenv("PATH");
	path = strdup(env && *env ? env
				  : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	if (!path)
		return -ENOMEM;
	for (char *d = strtok_r(path, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char *cand;
		if (asprintf(&cand, "%s/%s", d, name) < 0)
			return -ENOMEM;
		if (access(cand, X_OK) == 0) {
			*ret = cand;
			return 0;
		}
		free(cand);
	}
	return -ENOENT;
}

/* `stoke` in the shim's own directory (both are installed in one bindir). */
static int sibling_stoke(char **ret)
{
	char self[PATH_MAX], *slash, *cand;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n < 0)
		return -errno;
	self[n] = 0;
	slash = strrchr(self, '/');
	if (!slash)
		return -ENOENT;
	*slash = 0;
	if (asprintf(&cand, "%s/stoke", self) < 0)
		return -ENOMEM;
	if (access(cand, X_OK) < 0) {
		free(cand);
		return -ENOENT;
	}
	*ret = cand;
	return 0;
}

static bool any_is(const Ctd__Any *a, const char *name)
{
	const char *t = a->type_url;
	const char *slash = strrchr(t, '/');

	/* Accept both bare names and type.googleapis.com/ prefixed ones. */
	return strcmp(slash ? slash + 1 : t, name) == 0;
}

/* A runtimeoptions ConfigPath file: `key = "value"` lines (TOML subset);
 * BinaryName, Root, CriuPath and SystemdCgroup are read, anything else is
 * ignored. */
static int read_config_file(const char *path, char **binary, char **root, char **criu,
			    bool *systemd)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	char line[4096];

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char key[64], val[4000];
		if (sscanf(line, " %63[A-Za-z_] = %3999[^\n]", key, val) != 2)
			continue;
		if (strcmp(key, "SystemdCgroup") == 0 || strcmp(key, "systemd_cgroup") == 0) {
			*systemd = strncmp(val, "true", 4) == 0;
			continue;
		}
		if (sscanf(line, " %63[A-Za-z_] = \"%3999[^\"]\"", key, val) != 2)
			continue;
		if (strcmp(key, "BinaryName") == 0 || strcmp(key, "binary_name") == 0) {
			free(*binary);
			*binary = strdup(val);
		} else if (strcmp(key, "Root") == 0 || strcmp(key, "root") == 0) {
			free(*root);
			*root = strdup(val);
		} else if (strcmp(key, "CriuPath") == 0 || strcmp(key, "criu_path") == 0) {
			free(*criu);
			*criu = strdup(val);
		}
	}
	return 0;
}

int runtime_resolve(struct shim *s, const Ctd__Any *options, struct runtime_cfg *ret, char *errbuf,
		    size_t errlen)
{
	bool systemd = false;
	_cleanup_free_ char *binary = NULL, *root = NULL, *abs = NULL, *full_root = NULL,
			    *criu = NULL;
	const char *env;
	int r;

	if (options && options->type_url && *options->type_url) {
		if (any_is(options, "containerd.runc.v1.Options")) {
			Ctd__RuncOptions *o = ctd__runc_options__unpack(NULL, options->value.len,
									options->value.data);
			if (!o) {
				snprintf(errbuf, errlen, "malformed containerd.runc.v1.Options");
				return -EINVAL;
			}
			if (*o->binary_name)
				binary = strdup(o->binary_name);
			if (*o->root)
				root = strdup(o->root);
			if (*o->criu_path)
				criu = strdup(o->criu_path);
			systemd = o->systemd_cgroup;
			ctd__runc_options__free_unpacked(o, NULL);
		} else if (any_is(options, "runtimeoptions.v1.Options")) {
			Ctd__RuntimeOptions *o = ctd__runtime_options__unpack(
				NULL, options->value.len, options->value.data);
			if (!o) {
				snprintf(errbuf, errlen, "malformed runtimeoptions.v1.Options");
				return -EINVAL;
			}
			if (*o->config_path)
				r = read_config_file(o->config_path, &binary, &root, &criu,
						     &systemd);
			else
				r = 0;
			if (r < 0)
				snprintf(errbuf, errlen, "cannot read shim config %s: %s",
					 o->config_path, strerror(-r));
			ctd__runtime_options__free_unpacked(o, NULL);
			if (r < 0)
				return r;
		} else {
			snprintf(errbuf, errlen, "unsupported runtime options type %s",
				 options->type_url);
			return -EINVAL;
		}
	}

	env = getenv(RUNTIME_ENV);
	if (!binary && env && *env)
		binary = strdup(env);
	if (binary)
		r = find_exec(binary, &abs);
	else
		r = sibling_stoke(&abs) < 0 ? find_exec("stoke", &abs) : 0;
	if (r < 0) {
		snprintf(errbuf, errlen, "OCI runtime %s not found: %s", binary ? binary : "stoke",
			 strerror(-r));
		return r;
	}
	if (asprintf(&full_root, "%s/%s", root ? root : DEFAULT_ROOT, s->ns) < 0)
		return -ENOMEM;
	*ret = (struct runtime_cfg){.binary = TAKE_PTR(abs),
				    .root = TAKE_PTR(full_root),
				    .criu = TAKE_PTR(criu),
				    .systemd_cgroup = systemd};
	return 0;
}

/* The last "error" message in the runtime's JSON log. */
static void last_log_error(const char *bundle, char *errbuf, size_t errlen)
{
	_cleanup_free_ char *path = NULL, *buf = NULL;
	size_t len;
	char *line, *save = NULL;

	if (asprintf(&path, "%s/log.json", bundle) < 0)
		return;
	if (cs_read_file_at(AT_FDCWD, path, 4 << 20, &buf, &len) < 0)
		return;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_object *o = NULL;
		const char *level, *msg;
		if (cs_json_parse(line, strlen(line), &o, NULL, 0) < 0)
			continue;
		if (cs_json_get_string(o, "level", &level) == 0 && strcmp(level, "error") == 0 &&
		    cs_json_get_string(o, "msg", &msg) == 0)
			snprintf(errbuf, errlen, "%s", msg);
		json_object_put(o);
	}
}

int runtime_run(struct shim *s, struct container *c, const struct runtime_call *call,
		char **ret_out, char *errbuf, size_t errlen)
{
	_cleanup_strv_free_ char **argv = NULL;
	_cleanup_free_ char *log_path = NULL;
	struct helper_spec spec = {.stdio = {call->stdio[0], call->stdio[1], call->stdio[2]},
				   .input = call->input,
				   .input_len = call->input_len,
				   .capture_stdout = call->capture_stdout};
	struct helper_result res = {0};
	int r;

	if (asprintf(&log_path, "%s/log.json", c->bundle) < 0)
		return -ENOMEM;
	if (cs_strv_push(&argv, c->rt.binary) < 0 || cs_strv_push(&argv, "--root") < 0 ||
	    cs_strv_push(&argv, c->rt.root) < 0 || cs_strv_push(&argv, "--log") < 0 ||
	    cs_strv_push(&argv, log_path) < 0 || cs_strv_push(&argv, "--log-format") < 0 ||
	    cs_strv_push(&argv, "json") < 0)
		return -ENOMEM;
	if (c->rt.systemd_cgroup && cs_strv_push(&argv, "--systemd-cgroup") < 0)
		return -ENOMEM;
	if (c->rt.criu &&
	    (cs_strv_push(&argv, "--criu") < 0 || cs_strv_push(&argv, c->rt.criu) < 0))
		return -ENOMEM;
	for (size_t i = 0; call->args[i]; i++)
		if (cs_strv_push(&argv, call->args[i]) < 0)
			return -ENOMEM;
	spec.argv = argv;
	/* Without a capture of its own, stderr is collected for error text. */
	spec.capture_stderr = call->stdio[2] < 0;

	if (s->debug) {
		_cleanup_free_ char *line = NULL;
		size_t l = 0;
		for (size_t i = 0; argv[i]; i++)
			l += strlen(argv[i]) + 1;
		line = calloc(1, l + 1);
		for (size_t i = 0; line && argv[i]; i++) {
			strcat(line, argv[i]);
			strcat(line, " ");
		}
		log_debug("exec %s", line ? line : argv[0]);
	}

	r = helper_run(s, &spec, &res);
	if (r < 0) {
		snprintf(errbuf, errlen, "cannot run %s: %s", c->rt.binary, strerror(-r));
		return r;
	}
	if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0) {
		errbuf[0] = 0;
		last_log_error(c->bundle, errbuf, errlen);
		if (!errbuf[0] && res.err && *res.err) {
			size_t n = strlen(res.err);
			while (n && res.err[n - 1] == '\n')
				res.err[--n] = 0;
			snprintf(errbuf, errlen, "%s", res.err);
		}
		if (!errbuf[0])
			snprintf(errbuf, errlen, "%s %s failed with status %d", c->rt.binary,
				 call->args[0],
				 WIFEXITED(res.status) ? WEXITSTATUS(res.status)
						       : 128 + WTERMSIG(res.status));
		free(res.out);
		free(res.err);
		return -EIO;
	}
	free(res.err);
	if (ret_out)
		*ret_out = res.out;
	else
		free(res.out);
	return 0;
}

int runtime_save(const char *bundle, const struct runtime_cfg *cfg)
{
	_cleanup_free_ char *text = NULL;
	json_object *o = json_object_new_object();

	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "binary", json_object_new_string(cfg->binary));
	json_object_object_add(o, "root", json_object_new_string(cfg->root));
	json_object_object_add(o, "systemd_cgroup", json_object_new_boolean(cfg->systemd_cgroup));
	if (cfg->criu)
		json_object_object_add(o, "criu", json_object_new_string(cfg->criu));
	text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	if (!text)
		return -ENOMEM;
	return bundle_write_file(bundle, SHIM_RUNTIME_FILE, text, strlen(text), 0600);
}

int bundle_write_file(const char *dir, const char *name, const void *data, size_t len, mode_t mode)
{
	_cleanup_free_ char *path = NULL, *tmp = NULL;
	_cleanup_close_ int fd = -EBADF;
	int r;

	if (asprintf(&path, "%s/%s", dir, name) < 0 ||
	    asprintf(&tmp, "%s/.%s.%d.tmp", dir, name, getpid()) < 0)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -errno;
	r = cs_write_all(fd, data, len);
	if (r >= 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		(void) unlink(tmp);
	return r;
}

int runtime_load(const char *bundle, struct runtime_cfg *ret)
{
	_cleanup_free_ char *path = NULL;
	json_object *o = NULL;
	const char *b, *rt, *criu = NULL;
	bool systemd = false;
	int r;

	if (asprintf(&path, "%s/%s", bundle, SHIM_RUNTIME_FILE) < 0)
		return -ENOMEM;
	r = cs_json_parse_file(path, 1 << 16, &o, NULL, 0);
	if (r < 0)
		return r;
	r = -EINVAL;
	(void) cs_json_get_bool(o, "systemd_cgroup", &systemd);
	(void) cs_json_get_string(o, "criu", &criu);
	if (cs_json_get_string(o, "binary", &b) == 0 && cs_json_get_string(o, "root", &rt) == 0) {
		struct runtime_cfg cfg = {.binary = strdup(b),
					  .root = strdup(rt),
					  .criu = criu ? strdup(criu) : NULL,
					  .systemd_cgroup = systemd};
		if (cfg.binary && cfg.root && (!criu || cfg.criu)) {
			*ret = cfg;
			r = 0;
		} else {
			runtime_cfg_done(&cfg);
			r = -ENOMEM;
		}
	}
	json_object_put(o);
	return r;
}

void runtime_cfg_done(struct runtime_cfg *cfg)
{
	free(cfg->binary);
	free(cfg->root);
	free(cfg->criu);
	cfg->binary = cfg->root = cfg->criu = NULL;
}
