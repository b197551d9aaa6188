/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ROOT/ID/state.json: read, write atomically, list, remove; the container's
 * status derived from the process, the exec fifo and the cgroup.
 */
#include "state.h"
#include "cgroup.h"

#include "cleanup.h"
#include "fd-util.h"
#include "json-util.h"
#include "path-util.h"
#include "strv.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_FILE     "state.json"
#define STATE_MAX_SIZE (32u << 20)

const char *shim_status_name(enum shim_status s)
{
	static const char *const names[] = {"creating", "created", "running", "paused", "stopped"};
	return s <= SHIM_STATUS_STOPPED ? names[s] : "unknown";
}

bool shim_state_id_valid(const char *id)
{
	size_t n = id ? strlen(id) : 0;
	if (n == 0 || n > 1024 || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char) id[i]) && !strchr("_+.-", id[i]))
			return false;
	return true;
}

int shim_state_dir(const char *root, const char *id, char **ret)
{
	if (!shim_state_id_valid(id))
		return -EINVAL;
	return cs_path_join(root, id, ret);
}

static int add_string(json_object *o, const char *key, const char *v)
{
	json_object *s = json_object_new_string(v ? v : "");
	if (!s)
		return -ENOMEM;
	json_object_object_add(o, key, s);
	return 0;
}

/* Add a reference to `v` (the struct keeps its own). */
static void add_ref(json_object *o, const char *key, json_object *v)
{
	if (v)
		json_object_object_add(o, key, json_object_get(v));
}

/*
 * Temporary file + rename: readers see the old or the new state, never a
 * partial one, and a crashed stoke leaves no half file. No fsync: runtime
 * state describes processes, which do not survive a machine crash either
 * (runc and crun do not sync it), and an fsync costs milliseconds on the
 * start-up path when --root is on a disk.
 */
static int write_atomic(const char *dir, const char *text, size_t len)
{
	char tmp[64];
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	snprintf(tmp, sizeof(tmp), STATE_FILE ".%d.tmp", (int) getpid());
	_cleanup_close_ int fd =
		openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	int r = cs_write_all(fd, text, len);
	if (r >= 0 && renameat(dfd, tmp, dfd, STATE_FILE) < 0)
		r = -errno;
	if (r < 0)
		(void) unlinkat(dfd, tmp, 0);
	return r;
}

int shim_state_save(const char *root, const struct shim_state *s)
{
	_cleanup_free_ char *dir = NULL;
	int r = shim_state_dir(root, s->id, &dir);
	if (r < 0)
		return r;
	json_object *o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "version", json_object_new_int(SHIM_STATE_VERSION));
	if ((r = add_string(o, "id", s->id)) < 0 || (r = add_string(o, "bundle", s->bundle)) < 0 ||
	    (r = add_string(o, "rootfs", s->rootfs)) < 0 ||
	    (r = add_string(o, "created", s->created)) < 0 ||
	    (r = add_string(o, "owner", s->owner)) < 0) {
		json_object_put(o);
		return r;
	}
	json_object_object_add(o, "pid", json_object_new_int(s->pid));
	json_object_object_add(o, "pidStartTime", json_object_new_uint64(s->pid_start_time));
	json_object_object_add(o, "started", json_object_new_boolean(s->started));
	add_ref(o, "annotations", s->annotations);
	add_ref(o, "cgroup", s->cgroup);
	add_ref(o, "config", s->config);

	const char *text = json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	r = write_atomic(dir, text, strlen(text));
	json_object_put(o);
	return r;
}

static int dup_string(json_object *o, const char *key, char **ret)
{
	const char *v;
	int r = cs_json_get_string(o, key, &v);
	if (r < 0)
		return r == -ENOENT ? 0 : -EINVAL;
	*ret = strdup(v);
	return *ret ? 0 : -ENOMEM;
}

static json_object *take_ref(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !v)
		return NULL;
	return json_object_get(v);
}

int shim_state_load(const char *root, const char *id, struct shim_state **ret)
{
	_cleanup_free_ char *dir = NULL, *path = NULL;
	json_object *o;
	int64_t v;
	int r = shim_state_dir(root, id, &dir);
	if (r < 0)
		return r;
	r = cs_path_join(dir, STATE_FILE, &path);
	if (r < 0)
		return r;
	r = cs_json_parse_file(path, STATE_MAX_SIZE, &o, NULL, 0);
	if (r < 0)
		return r;

	_cleanup_(shim_state_freep) struct shim_state *s = calloc(1, sizeof(*s));
	if (!s) {
		json_object_put(o);
		return -ENOMEM;
	}
	if (cs_json_get_int64(o, "version", &v) < 0 || v < 1) {
		json_object_put(o);
		return -EINVAL;
	}
	if (v > SHIM_STATE_VERSION) {
		json_object_put(o);
		return -EPROTONOSUPPORT;
	}
	if ((r = dup_string(o, "id", &s->id)) < 0 ||
	    (r = dup_string(o, "bundle", &s->bundle)) < 0 ||
	    (r = dup_string(o, "rootfs", &s->rootfs)) < 0 ||
	    (r = dup_string(o, "created", &s->created)) < 0 ||
	    (r = dup_string(o, "owner", &s->owner)) < 0) {
		json_object_put(o);
		return r;
	}
	if (cs_json_get_int64(o, "pid", &v) == 0)
		s->pid = (pid_t) v;
	(void) cs_json_get_uint64(o, "pidStartTime", &s->pid_start_time);
	(void) cs_json_get_bool(o, "started", &s->started);
	s->annotations = take_ref(o, "annotations");
	s->cgroup = take_ref(o, "cgroup");
	s->config = take_ref(o, "config");
	json_object_put(o);
	if (!s->id) {
		s->id = strdup(id);
		if (!s->id)
			return -ENOMEM;
	}
	*ret = TAKE_PTR(s);
	return 0;
}

int shim_state_remove(const char *root, const char *id)
{
	_cleanup_close_ int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!shim_state_id_valid(id))
		return -EINVAL;
	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	return cs_rm_rf_at(dfd, id);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

int shim_state_list(const char *root, char ***ret)
{
	_cleanup_strv_free_ char **ids = calloc(1, sizeof(char *));
	_cleanup_closedir_ DIR *d = opendir(root);
	struct dirent *de;
	int r;

	if (!ids)
		return -ENOMEM;
	if (!d) {
		if (errno != ENOENT)
			return -errno;
		*ret = TAKE_PTR(ids);
		return 0;
	}
	while ((de = readdir(d))) {
		char path[4096];
		if (!shim_state_id_valid(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/" STATE_FILE, de->d_name);
		if (faccessat(dirfd(d), path, F_OK, 0) < 0)
			continue;
		r = cs_strv_push(&ids, de->d_name);
		if (r < 0)
			return r;
	}
	qsort(ids, cs_strv_length(ids), sizeof(char *), cmp_str);
	*ret = TAKE_PTR(ids);
	return 0;
}

int shim_state_lock(const char *root, const char *id, int *ret_fd)
{
	_cleanup_free_ char *dir = NULL;
	int r = shim_state_dir(root, id, &dir);
	if (r < 0)
		return r;
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX) < 0)
		return -errno;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int shim_pid_start_time(pid_t pid, uint64_t *ret)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = cs_read_all(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return (int) n;
	buf[n] = '\0';
	/* The command name may hold spaces and ')': fields start after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return -EINVAL;
	p += 2; /* field 3, the state */
	char state = *p;
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -EINVAL;
		p++;
	}
	if (state == 'Z' || state == 'X')
		return -ESRCH;
	*ret = strtoull(p, NULL, 10);
	return 0;
}

bool shim_state_pid_alive(const struct shim_state *s)
{
	uint64_t st;
	if (s->pid <= 0 || shim_pid_start_time(s->pid, &st) < 0)
		return false;
	return s->pid_start_time == 0 || st == s->pid_start_time;
}

enum shim_status shim_state_status(const char *root, const struct shim_state *s)
{
	if (!shim_state_pid_alive(s))
		return SHIM_STATUS_STOPPED;
	if (!s->started)
		return SHIM_STATUS_CREATED;
	if (s->cgroup) {
		_cleanup_(shim_cgroup_freep) struct shim_cgroup *cg = NULL;
		bool frozen = false;
		if (shim_cgroup_from_json(s->cgroup, &cg) == 0 &&
		    shim_cgroup_is_frozen(cg, &frozen) == 0 && frozen)
			return SHIM_STATUS_PAUSED;
	}
	return SHIM_STATUS_RUNNING;
}

int shim_state_oci_json(const struct shim_state *s, enum shim_status status, json_object **ret)
{
	json_object *o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "ociVersion", json_object_new_string("1.2.0"));
	json_object_object_add(o, "id", json_object_new_string(s->id));
	json_object_object_add(o, "pid",
			       json_object_new_int(status == SHIM_STATUS_STOPPED ? 0 : s->pid));
	json_object_object_add(o, "status", json_object_new_string(shim_status_name(status)));
	json_object_object_add(o, "bundle", json_object_new_string(s->bundle ? s->bundle : ""));
	json_object_object_add(o, "rootfs", json_object_new_string(s->rootfs ? s->rootfs : ""));
	json_object_object_add(o, "created", json_object_new_string(s->created ? s->created : ""));
	json_object_object_add(o, "owner", json_object_new_string(s->owner ? s->owner : ""));
	if (s->annotations && json_object_object_length(s->annotations))
		json_object_object_add(o, "annotations", json_object_get(s->annotations));
	*ret = o;
	return 0;
}

struct shim_state *shim_state_free(struct shim_state *s)
{
	if (!s)
		return NULL;
	free(s->id);
	free(s->bundle);
	free(s->rootfs);
	free(s->created);
	free(s->owner);
	json_object_put(s->annotations);
	json_object_put(s->cgroup);
	json_object_put(s->config);
	free(s);
	return NULL;
}
