/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgroup life cycle: host layout, directories, processes, freezing,
 * signalling, removal and persistence. Resources live in
 * cgroup-resources.c, statistics in cgroup-stats.c, the v2 device program
 * in cgroup-bpf.c.
 */
#include "cgroup-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fd-util.h"
#include "json-util.h"
#include "path-util.h"

#define CGROUP_ROOT "/sys/fs/cgroup"
#define UNIFIED	    CGROUP_ROOT "/unified"

/* Small cgroup files (limits, state) and large ones (memory.stat, procs). */
#define MAX_FILE (4u << 20)

static char last_error[512];

const char *shim_cgroup_last_error(void)
{
	return last_error;
}

int cg_set_error(int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return r;
}

/* ---------------------------------------------------------------- files */

static int hier_path(const struct cg_hier *h, const char *file, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", h->dir, file);
	return n < 0 || (size_t) n >= len ? -ENAMETOOLONG : 0;
}

int cg_write(const struct cg_hier *h, const char *file, const char *value, const char *field)
{
	char path[PATH_MAX];
	_cleanup_close_ int fd = -EBADF;
	ssize_t n;
	int r;

	r = hier_path(h, file, path, sizeof(path));
	if (r < 0)
		return cg_set_error(r, "%s: path of %s too long", field, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return cg_set_error(-errno, "%s: opening %s: %s", field, path, strerror(errno));
	/* One write() per value: cgroup files parse each write as a unit. */
	n = write(fd, value, strlen(value));
	if (n < 0)
		return cg_set_error(-errno, "%s: writing \"%s\" to %s: %s", field, value, path,
				    strerror(errno));
	return 0;
}

int cg_read(const struct cg_hier *h, const char *file, char **ret)
{
	char path[PATH_MAX];
	int r;

	r = hier_path(h, file, path, sizeof(path));
	if (r < 0)
		return r;
	return cs_read_file_at(AT_FDCWD, path, MAX_FILE, ret, NULL);
}

int cg_read_u64(const struct cg_hier *h, const char *file, uint64_t *ret)
{
	_cleanup_free_ char *s = NULL;
	char *end;
	int r;

	r = cg_read(h, file, &s);
	if (r < 0)
		return r;
	if (strncmp(s, "max", 3) == 0) {
		*ret = UINT64_MAX;
		return 0;
	}
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EBADMSG;
	*ret = v;
	return 0;
}

int cg_read_keyed(const struct cg_hier *h, const char *file, const char *key, uint64_t *ret)
{
	_cleanup_free_ char *s = NULL;
	size_t klen = strlen(key);
	int r;

	r = cg_read(h, file, &s);
	if (r < 0)
		return r;
	for (char *line = s; line && *line;
	     line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
		if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
			*ret = strtoull(line + klen + 1, NULL, 10);
			return 0;
		}
	return -ENOENT;
}

bool cg_has_file(const struct cg_hier *h, const char *file)
{
	char path[PATH_MAX];

	return hier_path(h, file, path, sizeof(path)) == 0 && access(path, F_OK) == 0;
}

/* ---------------------------------------------------------------- host */

static bool list_has(const char *list, const char *item)
{
	size_t len = strlen(item);

	for (const char *p = list; p && *p;) {
		const char *end = strpbrk(p, ", \n");
		size_t n = end ? (size_t) (end - p) : strlen(p);
		if (n == len && strncmp(p, item, len) == 0)
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

static bool is_fs(const char *path, long magic)
{
	struct statfs s;

	return statfs(path, &s) == 0 && (long) s.f_type == magic;
}

static bool tok_eq(const char *p, size_t n, const char *word)
{
	return n == strlen(word) && strncmp(p, word, n) == 0;
}

/* The v1 controllers (and name=) among a mount's super options. */
static char *v1_controllers(const char *superopts)
{
	_cleanup_free_ char *out = malloc(strlen(superopts) + 1);
	const char *p = superopts;

	if (!out)
		return NULL;
	out[0] = '\0';
	while (p && *p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t) (end - p) : strlen(p);
		bool ctrl = !tok_eq(p, n, "rw") && !tok_eq(p, n, "ro") && !memchr(p, '=', n) &&
			    !tok_eq(p, n, "clone_children") && !tok_eq(p, n, "noprefix") &&
			    !tok_eq(p, n, "xattr") && !tok_eq(p, n, "cpuset_v2_mode");
		if (n > 5 && strncmp(p, "name=", 5) == 0)
			ctrl = true;
		if (ctrl) {
			if (out[0])
				strcat(out, ",");
			strncat(out, p, n);
		}
		p = end ? end + 1 : NULL;
	}
	return TAKE_PTR(out);
}

/* This process's cgroup in the hierarchy holding `ctrls` (v1) or v2. */
static char *own_cgroup(const char *self, const struct cg_mount *m)
{
	_cleanup_free_ char *first = NULL;

	if (m->version == 1) {
		const char *comma = strchr(m->ctrls, ',');
		first = strndup(m->ctrls, comma ? (size_t) (comma - m->ctrls) : strlen(m->ctrls));
		if (!first)
			return NULL;
	}
	for (const char *line = self; line && *line;) {
		const char *nl = strchr(line, '\n');
		const char *c1 = strchr(line, ':');
		const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (c2 && (!nl || c2 < nl)) {
			_cleanup_free_ char *ctl = strndup(c1 + 1, (size_t) (c2 - c1 - 1));
			bool match = m->version == 2 ? ctl && ctl[0] == '\0'
						     : ctl && list_has(ctl, first);
			if (match)
				return strndup(c2 + 1,
					       nl ? (size_t) (nl - c2 - 1) : strlen(c2 + 1));
		}
		line = nl ? nl + 1 : NULL;
	}
	return strdup("/");
}

static void mount_clear(struct cg_mount *m)
{
	free(m->mount);
	free(m->root);
	free(m->ctrls);
	free(m->own);
}

/* Parse one mountinfo line; 1 when it is a cgroup mount under /sys/fs/cgroup. */
static int parse_mount(char *line, struct cg_mount *ret)
{
	char *fields[10] = {0}, *save = NULL, *tok, *fstype = NULL, *superopts = NULL;
	int i = 0;

	for (tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		if (i < 10)
			fields[i] = tok;
		if (strcmp(tok, "-") == 0) {
			fstype = strtok_r(NULL, " ", &save);
			(void) strtok_r(NULL, " ", &save); /* source */
			superopts = strtok_r(NULL, " \n", &save);
			break;
		}
		i++;
	}
	if (i < 5 || !fstype || !superopts)
		return 0;
	if (strncmp(fields[4], CGROUP_ROOT, strlen(CGROUP_ROOT)) != 0)
		return 0;
	if (strcmp(fstype, "cgroup") == 0) {
		ret->version = 1;
		ret->ctrls = v1_controllers(superopts);
	} else if (strcmp(fstype, "cgroup2") == 0) {
		ret->version = 2;
		ret->ctrls = strdup("");
	} else {
		return 0;
	}
	ret->mount = strdup(fields[4]);
	ret->root = strdup(fields[3]);
	if (!ret->ctrls || !ret->mount || !ret->root) {
		mount_clear(ret);
		return -ENOMEM;
	}
	return 1;
}

static int detect_layout(void)
{
	if (is_fs(CGROUP_ROOT, CGROUP2_SUPER_MAGIC))
		return SHIM_CGROUP_V2;
	if (!is_fs(CGROUP_ROOT, TMPFS_MAGIC) && !is_fs(CGROUP_ROOT "/memory", CGROUP_SUPER_MAGIC))
		return -ENOMEDIUM;
	if (is_fs(UNIFIED, CGROUP2_SUPER_MAGIC))
		return SHIM_CGROUP_HYBRID;
	return SHIM_CGROUP_V1;
}

/* Which cgroup mounts make up the layout: on v2 the one at /sys/fs/cgroup,
 * on hybrid the one at .../unified, and each v1 hierarchy once. Mounts
 * hidden under a later one still appear in mountinfo and are skipped. */
static bool mount_wanted(const struct cg_host *host, const struct cg_mount *m)
{
	if (m->version == 2)
		return host->layout != SHIM_CGROUP_V1 &&
		       strcmp(m->mount, host->layout == SHIM_CGROUP_V2 ? CGROUP_ROOT : UNIFIED) ==
			       0 &&
		       !(host->n && host->m[host->n - 1].version == 2 &&
			 strcmp(host->m[host->n - 1].mount, m->mount) == 0);
	if (host->layout == SHIM_CGROUP_V2 || strcmp(m->mount, CGROUP_ROOT) == 0)
		return false;
	for (size_t i = 0; i < host->n; i++)
		if (host->m[i].version == 1 && strcmp(host->m[i].ctrls, m->ctrls) == 0)
			return false;
	return true;
}

static int load_host(struct cg_host *host)
{
	_cleanup_free_ char *mi = NULL, *self = NULL;
	struct utsname u;
	char *save = NULL;
	int r;

	host->layout = detect_layout();
	if (host->layout < 0)
		return host->layout;
	r = cs_read_file_at(AT_FDCWD, "/proc/self/mountinfo", MAX_FILE, &mi, NULL);
	if (r < 0)
		return r;
	r = cs_read_file_at(AT_FDCWD, "/proc/self/cgroup", MAX_FILE, &self, NULL);
	if (r < 0)
		return r;

	for (char *line = strtok_r(mi, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct cg_mount m = {0};
		r = parse_mount(line, &m);
		if (r < 0)
			return r;
		if (r == 0)
			continue;
		if (!mount_wanted(host, &m)) {
			mount_clear(&m);
			continue;
		}
		if (m.version == 2) {
			_cleanup_free_ char *c = NULL;
			char path[PATH_MAX];
			snprintf(path, sizeof(path), "%s/cgroup.controllers", m.mount);
			if (cs_read_file_at(AT_FDCWD, path, 4096, &c, NULL) == 0) {
				free(m.ctrls);
				m.ctrls = TAKE_PTR(c);
				m.ctrls[strcspn(m.ctrls, "\n")] = '\0';
			}
		}
		m.own = own_cgroup(self, &m);
		struct cg_mount *nm = realloc(host->m, (host->n + 1) * sizeof(*nm));
		if (!m.own || !nm) {
			mount_clear(&m);
			return -ENOMEM;
		}
		host->m = nm;
		host->m[host->n++] = m;
	}
	if (host->n == 0)
		return -ENOMEDIUM;
	host->kernel_major = uname(&u) == 0 ? atoi(u.release) : 0;
	return 0;
}

int cg_host_get(const struct cg_host **ret)
{
	static struct cg_host host;
	static int state; /* 0 unknown, 1 loaded, <0 error */

	if (state == 0) {
		int r = load_host(&host);
		state = r < 0 ? r : 1;
	}
	if (state < 0)
		return state;
	*ret = &host;
	return 0;
}

int shim_cgroup_detect_layout(void)
{
	const struct cg_host *h;
	int r = cg_host_get(&h);

	return r < 0 ? r : h->layout;
}

int cg_host_version_for(const char *controller)
{
	const struct cg_host *host;

	if (cg_host_get(&host) < 0)
		return 0;
	for (size_t i = 0; i < host->n; i++)
		if (host->m[i].version == 1 && list_has(host->m[i].ctrls, controller))
			return 1;
	for (size_t i = 0; i < host->n; i++)
		if (host->m[i].version == 2 &&
		    (list_has(host->m[i].ctrls, controller) || strcmp(controller, "devices") == 0 ||
		     strcmp(controller, "freezer") == 0))
			return 2;
	return 0;
}

struct cg_hier *cg_hier_for(struct shim_cgroup *cg, const char *controller)
{
	for (size_t i = 0; i < cg->n; i++)
		if (cg->h[i].version == 1 && list_has(cg->h[i].ctrls, controller))
			return &cg->h[i];
	for (size_t i = 0; i < cg->n; i++)
		if (cg->h[i].version == 2 &&
		    (list_has(cg->h[i].ctrls, controller) || strcmp(controller, "devices") == 0 ||
		     strcmp(controller, "freezer") == 0))
			return &cg->h[i];
	return NULL;
}

struct cg_hier *cg_hier_primary(struct shim_cgroup *cg)
{
	for (size_t i = 0; i < cg->n; i++)
		if (cg->h[i].version == 2)
			return &cg->h[i];
	return cg->n ? &cg->h[0] : NULL;
}

/* ---------------------------------------------------------------- paths */

/* The container's path inside a hierarchy (runc's rules). */
static int hierarchy_path(const struct cg_mount *m, const char *cgroups_path, const char *id,
			  char **ret)
{
	_cleanup_free_ char *def = NULL;
	const char *own = m->own;

	if (!cgroups_path) {
		if (asprintf(&def, "stoke/%s", id) < 0)
			return -ENOMEM;
		cgroups_path = def;
	}
	if (cs_path_is_absolute(cgroups_path))
		return cs_path_join("/", cgroups_path, ret);
	/* Relative: from our own cgroup, as seen inside this mount. */
	if (strcmp(m->root, "/") != 0 && strncmp(own, m->root, strlen(m->root)) == 0)
		own += strlen(m->root);
	return cs_path_join(own[0] ? own : "/", cgroups_path, ret);
}

static bool path_has_dotdot(const char *p)
{
	for (const char *s = p; s && *s;) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t) (e - s) : strlen(s);
		if ((n == 2 && strncmp(s, "..", 2) == 0) || (n == 1 && s[0] == '.'))
			return true;
		s = e ? e + 1 : NULL;
	}
	return false;
}

/* ---------------------------------------------------------------- create */

static void hier_clear(struct cg_hier *h)
{
	free(h->mount);
	free(h->ctrls);
	free(h->dir);
}

struct shim_cgroup *shim_cgroup_free(struct shim_cgroup *cg)
{
	if (!cg)
		return NULL;
	for (size_t i = 0; i < cg->n; i++)
		hier_clear(&cg->h[i]);
	free(cg->h);
	free(cg->path);
	free(cg);
	return NULL;
}

/* v1 cpuset: a new cgroup starts with empty cpus/mems and refuses tasks. */
static int cpuset_inherit(const char *dir)
{
	static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
	_cleanup_free_ char *parent = strdup(dir);

	if (!parent)
		return -ENOMEM;
	*strrchr(parent, '/') = '\0';
	for (size_t i = 0; i < ELEMENTSOF(files); i++) {
		struct cg_hier self = {.dir = (char *) dir}, up = {.dir = parent};
		_cleanup_free_ char *mine = NULL, *theirs = NULL;
		int r = cg_read(&self, files[i], &mine);
		if (r < 0)
			return cg_set_error(r, "cpuset: reading %s/%s: %s", dir, files[i],
					    strerror(-r));
		if (mine[0] != '\n' && mine[0] != '\0')
			continue;
		r = cg_read(&up, files[i], &theirs);
		if (r < 0)
			return cg_set_error(r, "cpuset: reading %s/%s: %s", parent, files[i],
					    strerror(-r));
		r = cg_write(&self, files[i], theirs, "cpuset");
		if (r < 0)
			return r;
	}
	return 0;
}

/* cgroup2: make the host's controllers available in `dir` by enabling them
 * in each ancestor's subtree_control. Failures are ignored here (a busy or
 * delegated parent): a resource that needs a missing controller fails when
 * it is applied, naming the resource. */
static void enable_at(const char *dir)
{
	struct cg_hier up = {.dir = (char *) dir};
	_cleanup_free_ char *avail = NULL, *enabled = NULL;
	char buf[512] = "";

	if (cg_read(&up, "cgroup.controllers", &avail) < 0 ||
	    cg_read(&up, "cgroup.subtree_control", &enabled) < 0)
		return;
	avail[strcspn(avail, "\n")] = '\0';
	/* Only what is missing: a subtree_control write is not free. */
	for (char *save = NULL, *c = strtok_r(avail, " ", &save); c;
	     c = strtok_r(NULL, " ", &save)) {
		if (list_has(enabled, c))
			continue;
		strncat(buf, buf[0] ? " +" : "+", sizeof(buf) - strlen(buf) - 1);
		strncat(buf, c, sizeof(buf) - strlen(buf) - 1);
	}
	if (buf[0] && cg_write(&up, "cgroup.subtree_control", buf, "cgroup") < 0)
		for (char *save = NULL, *c = strtok_r(buf, " ", &save); c;
		     c = strtok_r(NULL, " ", &save))
			(void) cg_write(&up, "cgroup.subtree_control", c, "cgroup");
}

static void enable_controllers(const struct cg_hier *h)
{
	_cleanup_free_ char *path = strdup(h->dir);

	if (!path)
		return;
	/* The mount's root, then every ancestor; not the container's own
	 * directory (it holds processes: no internal controllers there). */
	for (char *cut = path + strlen(h->mount); cut && *cut == '/'; cut = strchr(cut + 1, '/')) {
		*cut = '\0';
		enable_at(path);
		*cut = '/';
	}
	last_error[0] = '\0';
}

/* mkdir -p, counting the levels created; v1 cpuset levels get cpus/mems. */
static int make_dirs_once(struct cg_hier *h)
{
	size_t mlen = strlen(h->mount);
	_cleanup_free_ char *path = strdup(h->dir);
	bool cpuset = h->version == 1 && list_has(h->ctrls, "cpuset");
	int r;

	if (!path)
		return -ENOMEM;
	for (char *p = path + mlen + 1; p && *p;) {
		char *slash = strchr(p, '/');
		if (slash)
			*slash = '\0';
		if (mkdir(path, 0755) == 0) {
			h->created++;
			if (cpuset) {
				r = cpuset_inherit(path);
				if (r < 0)
					return r;
			}
		} else if (errno != EEXIST) {
			return cg_set_error(-errno, "linux.cgroupsPath: creating %s: %s", path,
					    strerror(errno));
		} else if (h->created) {
			/* A level we made appeared twice: impossible; keep counts honest. */
			return cg_set_error(-EEXIST, "linux.cgroupsPath: %s exists", path);
		}
		if (slash)
			*slash = '/';
		p = slash ? slash + 1 : NULL;
	}
	if (h->version == 2)
		enable_controllers(h);
	return 0;
}

/* A shared parent (the default "stoke") is removed by the last container
 * that leaves it; one being created at that moment finds it gone (ENOENT)
 * and starts again. Only levels that existed vanish, never ours, so the
 * count restarts from zero. */
static int make_dirs(struct cg_hier *h)
{
	int r = -ENOENT;

	for (int attempt = 0; attempt < 5 && r == -ENOENT; attempt++) {
		h->created = 0;
		r = make_dirs_once(h);
	}
	return r;
}

/* Sub-cgroups the container made itself (systemd inside, nested runtimes):
 * cgroupfs directories go with rmdir(), deepest first. */
static void rmdir_children(const char *path, unsigned depth)
{
	_cleanup_closedir_ DIR *d = opendir(path);
	struct dirent *de;

	if (!d || depth > 32)
		return;
	while ((de = readdir(d))) {
		_cleanup_free_ char *sub = NULL;
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (cs_path_join(path, de->d_name, &sub) < 0)
			return;
		rmdir_children(sub, depth + 1);
		(void) rmdir(sub);
	}
}

/* Remove the directory and the parents this library created, deepest first. */
static int remove_dirs(struct cg_hier *h, bool retry)
{
	_cleanup_free_ char *path = strdup(h->dir);
	unsigned levels = h->created ? h->created : 1;
	int r = 0;

	if (!path)
		return -ENOMEM;
	for (unsigned i = 0; i < levels; i++) {
		int tries = retry && i == 0 ? 200 : 1;
		if (i == 0)
			rmdir_children(path, 0);
		for (;;) {
			if (rmdir(path) == 0 || errno == ENOENT)
				break;
			if (errno != EBUSY || --tries == 0) {
				/* A shared parent still in use by another container. */
				if (i > 0 && (errno == EBUSY || errno == ENOTEMPTY))
					return r;
				return -errno;
			}
			/* Processes are still exiting (zombies keep the cgroup busy). */
			nanosleep(&(struct timespec){.tv_nsec = 5 * 1000 * 1000}, NULL);
		}
		char *slash = strrchr(path, '/');
		if (!slash || (size_t) (slash - path) <= strlen(h->mount))
			break;
		*slash = '\0';
	}
	return r;
}

static int build(const char *cgroups_path, const char *id, struct shim_cgroup **ret)
{
	const struct cg_host *host;
	struct shim_cgroup *cg;
	int r;

	r = cg_host_get(&host);
	if (r < 0)
		return cg_set_error(r, "cgroups: no cgroup filesystem at " CGROUP_ROOT);
	cg = calloc(1, sizeof(*cg));
	if (!cg)
		return -ENOMEM;
	cg->layout = host->layout;
	cg->h = calloc(host->n, sizeof(*cg->h));
	if (!cg->h) {
		shim_cgroup_free(cg);
		return -ENOMEM;
	}
	for (size_t i = 0; i < host->n; i++) {
		const struct cg_mount *m = &host->m[i];
		struct cg_hier *h = &cg->h[cg->n++];
		_cleanup_free_ char *inner = NULL;

		h->version = m->version;
		h->mount = strdup(m->mount);
		h->ctrls = strdup(m->ctrls);
		r = hierarchy_path(m, cgroups_path, id, &inner);
		if (r < 0 || !h->mount || !h->ctrls || cs_path_join(m->mount, inner, &h->dir) < 0) {
			shim_cgroup_free(cg);
			return -ENOMEM;
		}
		if (!cg->path || m->version == 2) {
			free(cg->path);
			cg->path = TAKE_PTR(inner);
		}
	}
	*ret = cg;
	return 0;
}

/*
 * Whether a directory of `cg` (a reused one, or a new one under a frozen
 * parent) is frozen or freezing: v1 freezer.state, v2 cgroup.freeze (asked
 * for here) or cgroup.events "frozen" (inherited from a parent).
 */
static int hier_frozen(const struct cg_hier *h, bool *ret)
{
	_cleanup_free_ char *s = NULL;
	uint64_t v = 0;
	int r;

	if (h->version == 1) {
		if (!list_has(h->ctrls, "freezer")) {
			*ret = false;
			return 0;
		}
		r = cg_read(h, "freezer.state", &s);
		if (r < 0)
			return r;
		*ret = strncmp(s, "THAWED", 6) != 0;
		return 0;
	}
	r = cg_read_u64(h, "cgroup.freeze", &v);
	if (r == 0 && v == 0)
		r = cg_read_keyed(h, "cgroup.events", "frozen", &v);
	if (r == -ENOENT) {
		/* A kernel without the v2 freezer (< 5.2) cannot freeze it. */
		*ret = false;
		return 0;
	}
	if (r < 0)
		return r;
	*ret = v != 0;
	return 0;
}

/* A process moved into a frozen cgroup stops at once: the init would hang
 * (in D state on v1) before it could report anything. runc refuses too. */
static int refuse_frozen(struct shim_cgroup *cg)
{
	for (size_t i = 0; i < cg->n; i++) {
		bool frozen;
		int r = hier_frozen(&cg->h[i], &frozen);
		if (r < 0)
			return cg_set_error(r, "reading the freezer state of %s: %s", cg->h[i].dir,
					    strerror(-r));
		if (frozen)
			return cg_set_error(-EBUSY,
					    "container's cgroup unexpectedly frozen: %s (thaw it "
					    "or choose another linux.cgroupsPath)",
					    cg->h[i].dir);
	}
	return 0;
}

int shim_cgroup_create(const char *cgroups_path, const char *id, json_object *resources,
		       struct shim_cgroup **ret)
{
	struct shim_cgroup *cg = NULL;
	int r;

	last_error[0] = '\0';
	if (!cgroups_path && (!id || !id[0] || strchr(id, '/')))
		return cg_set_error(-EINVAL, "container id \"%s\" cannot name a cgroup",
				    id ? id : "");
	if (cgroups_path && (!cgroups_path[0] || path_has_dotdot(cgroups_path)))
		return cg_set_error(-EINVAL, "linux.cgroupsPath: \"%s\" is not a valid path",
				    cgroups_path);
	if (resources) {
		char err[256];
		r = cg_check_host(resources, err, sizeof(err));
		if (r < 0)
			return cg_set_error(r, "%s", err);
	}
	r = build(cgroups_path, id, &cg);
	if (r < 0)
		return r;
	for (size_t i = 0; i < cg->n; i++) {
		r = make_dirs(&cg->h[i]);
		if (r < 0)
			goto fail;
	}
	r = refuse_frozen(cg);
	if (r < 0)
		goto fail;
	if (resources) {
		r = cg_apply_resources(cg, resources);
		if (r < 0)
			goto fail;
	}
	*ret = cg;
	return 0;
fail:
	for (size_t i = cg->n; i-- > 0;)
		if (cg->h[i].created)
			(void) remove_dirs(&cg->h[i], false);
	shim_cgroup_free(cg);
	return r;
}

int shim_cgroup_update(struct shim_cgroup *cg, json_object *resources)
{
	char err[256];
	int r;

	last_error[0] = '\0';
	if (!resources)
		return 0;
	r = cg_check_host(resources, err, sizeof(err));
	if (r < 0)
		return cg_set_error(r, "%s", err);
	return cg_apply_resources(cg, resources);
}

/* ---------------------------------------------------------------- processes */

int shim_cgroup_enter(struct shim_cgroup *cg, pid_t pid)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%d", (int) pid);
	for (size_t i = 0; i < cg->n; i++) {
		int r = cg_write(&cg->h[i], "cgroup.procs", buf, "cgroup.procs");
		if (r < 0)
			return r;
	}
	return 0;
}

static int pid_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *) a, y = *(const pid_t *) b;
	return (x > y) - (x < y);
}

struct pid_list {
	pid_t *v;
	size_t n, cap;
};

static int collect_pids(const char *dir, struct pid_list *l, unsigned depth)
{
	struct cg_hier h = {.dir = (char *) dir};
	_cleanup_free_ char *procs = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int r;

	r = cg_read(&h, "cgroup.procs", &procs);
	if (r < 0)
		return r;
	for (char *p = procs; *p;) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 64;
			pid_t *nv = realloc(l->v, cap * sizeof(*nv));
			if (!nv)
				return -ENOMEM;
			l->v = nv;
			l->cap = cap;
		}
		l->v[l->n++] = (pid_t) v;
		p = end + (*end == '\n');
	}
	/* Containers may create their own sub-cgroups. */
	if (depth > 32)
		return 0;
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		_cleanup_free_ char *sub = NULL;
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (cs_path_join(dir, de->d_name, &sub) < 0)
			return -ENOMEM;
		r = collect_pids(sub, l, depth + 1);
		if (r < 0 && r != -ENOENT)
			return r;
	}
	return 0;
}

int shim_cgroup_pids(struct shim_cgroup *cg, pid_t **ret, size_t *ret_n)
{
	struct cg_hier *h = cg_hier_primary(cg);
	struct pid_list l = {0};
	size_t out = 0;
	int r;

	if (!h)
		return -ENOENT;
	r = collect_pids(h->dir, &l, 0);
	if (r < 0) {
		free(l.v);
		return r;
	}
	if (l.n) {
		qsort(l.v, l.n, sizeof(*l.v), pid_cmp);
		for (size_t i = 0; i < l.n; i++)
			if (out == 0 || l.v[out - 1] != l.v[i])
				l.v[out++] = l.v[i];
	} else {
		free(l.v);
		l.v = NULL;
	}
	*ret = l.v;
	*ret_n = out;
	return 0;
}

/* ---------------------------------------------------------------- freezer */

static int freezer_hier(struct shim_cgroup *cg, struct cg_hier **ret)
{
	struct cg_hier *h = cg_hier_for(cg, "freezer");

	if (!h)
		return -EOPNOTSUPP;
	*ret = h;
	return 0;
}

static int read_frozen(struct cg_hier *h, bool *ret)
{
	_cleanup_free_ char *s = NULL;
	uint64_t v;
	int r;

	if (h->version == 2) {
		r = cg_read_keyed(h, "cgroup.events", "frozen", &v);
		if (r < 0)
			return r;
		*ret = v == 1;
		return 0;
	}
	r = cg_read(h, "freezer.state", &s);
	if (r < 0)
		return r;
	*ret = strncmp(s, "FROZEN", 6) == 0;
	return 0;
}

int shim_cgroup_is_frozen(struct shim_cgroup *cg, bool *ret)
{
	struct cg_hier *h;
	int r = freezer_hier(cg, &h);

	return r < 0 ? r : read_frozen(h, ret);
}

int shim_cgroup_freeze(struct shim_cgroup *cg, bool frozen)
{
	const char *value;
	struct cg_hier *h;
	int r;

	r = freezer_hier(cg, &h);
	if (r < 0)
		return r;
	if (h->version == 2)
		value = frozen ? "1" : "0";
	else
		value = frozen ? "FROZEN" : "THAWED";
	/* ~10 s: 2000 polls of 5 ms. v1 may stay FREEZING while a task is in
	 * an uninterruptible sleep; writing FROZEN again retries it. */
	for (int i = 0; i < 2000; i++) {
		bool now;
		if (i == 0 || (h->version == 1 && i % 20 == 0)) {
			r = cg_write(h, h->version == 2 ? "cgroup.freeze" : "freezer.state", value,
				     "freezer");
			if (r < 0)
				return r;
		}
		r = read_frozen(h, &now);
		if (r < 0)
			return r;
		if (now == frozen)
			return 0;
		nanosleep(&(struct timespec){.tv_nsec = 5 * 1000 * 1000}, NULL);
	}
	if (frozen)
		(void) cg_write(h, h->version == 2 ? "cgroup.freeze" : "freezer.state",
				h->version == 2 ? "0" : "THAWED", "freezer");
	return -ETIMEDOUT;
}

/* ---------------------------------------------------------------- kill */

int shim_cgroup_kill_all(struct shim_cgroup *cg, int sig)
{
	struct cg_hier *h = cg_hier_primary(cg), *fz;
	_cleanup_free_ pid_t *pids = NULL;
	bool froze = false, was_frozen = false;
	size_t n = 0;
	int r;

	if (!h)
		return -ENOENT;
	if (sig == SIGKILL && h->version == 2 && cg_has_file(h, "cgroup.kill")) {
		r = cg_write(h, "cgroup.kill", "1", "cgroup.kill");
		/* On a hybrid host the freezer is v1's: its frozen (or still
		 * freezing) tasks take the SIGKILL only once thawed. */
		if (r == 0 && freezer_hier(cg, &fz) == 0)
			r = shim_cgroup_freeze(cg, false);
		return r;
	}

	/* Freeze first so nothing forks between reading the list and the kill.
	 * A paused container stays paused (its signals wait for the resume),
	 * except for SIGKILL: v1 frozen tasks die only once thawed. */
	if (freezer_hier(cg, &fz) == 0 && read_frozen(fz, &was_frozen) == 0 &&
	    shim_cgroup_freeze(cg, true) == 0)
		froze = !was_frozen || sig == SIGKILL;
	r = shim_cgroup_pids(cg, &pids, &n);
	for (size_t i = 0; r == 0 && i < n; i++)
		if (kill(pids[i], sig) < 0 && errno != ESRCH)
			r = -errno;
	if (froze) {
		int t = shim_cgroup_freeze(cg, false);
		if (r == 0)
			r = t;
	}
	return r;
}

/* ---------------------------------------------------------------- destroy */

int shim_cgroup_destroy(struct shim_cgroup *cg)
{
	int r = 0;

	for (size_t i = cg->n; i-- > 0;) {
		struct cg_hier *h = &cg->h[i];
		/* A device program keeps nothing alive, but detach it so a
		 * reused path does not inherit it. */
		if (h->version == 2) {
			_cleanup_close_ int fd = open(h->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (fd >= 0)
				(void) cg_bpf_devices_detach_all(fd);
		}
		int t = remove_dirs(h, true);
		if (t < 0 && r == 0)
			r = t;
	}
	return r;
}

/* ---------------------------------------------------------------- json */

int shim_cgroup_to_json(const struct shim_cgroup *cg, json_object **ret)
{
	json_object *o = json_object_new_object(), *dirs = json_object_new_array();

	if (!o || !dirs) {
		json_object_put(o);
		json_object_put(dirs);
		return -ENOMEM;
	}
	json_object_object_add(o, "version", json_object_new_int(1));
	json_object_object_add(o, "layout", json_object_new_int(cg->layout));
	json_object_object_add(o, "path", json_object_new_string(cg->path));
	for (size_t i = 0; i < cg->n; i++) {
		json_object *d = json_object_new_object();
		if (!d) {
			json_object_put(o);
			json_object_put(dirs);
			return -ENOMEM;
		}
		json_object_object_add(d, "mount", json_object_new_string(cg->h[i].mount));
		json_object_object_add(d, "controllers", json_object_new_string(cg->h[i].ctrls));
		json_object_object_add(d, "dir", json_object_new_string(cg->h[i].dir));
		json_object_object_add(d, "cgroupVersion", json_object_new_int(cg->h[i].version));
		json_object_object_add(d, "created", json_object_new_int((int) cg->h[i].created));
		json_object_array_add(dirs, d);
	}
	json_object_object_add(o, "dirs", dirs);
	*ret = o;
	return 0;
}

static int dup_field(json_object *o, const char *key, char **ret)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return -EINVAL;
	*ret = strdup(json_object_get_string(v));
	return *ret ? 0 : -ENOMEM;
}

static int int_field(json_object *o, const char *key, int min, int max, int *ret)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !cs_json_int_in_range(v, min, max))
		return -EINVAL;
	*ret = json_object_get_int(v);
	return 0;
}

int shim_cgroup_from_json(json_object *o, struct shim_cgroup **ret)
{
	struct shim_cgroup *cg;
	json_object *dirs;
	int r, v;

	if (!o || int_field(o, "version", 1, 1, &v) < 0 ||
	    !json_object_object_get_ex(o, "dirs", &dirs) ||
	    !json_object_is_type(dirs, json_type_array))
		return -EINVAL;
	cg = calloc(1, sizeof(*cg));
	if (!cg)
		return -ENOMEM;
	cg->h = calloc(json_object_array_length(dirs) + 1, sizeof(*cg->h));
	r = cg->h ? 0 : -ENOMEM;
	if (r == 0)
		r = int_field(o, "layout", 1, 3, &cg->layout);
	if (r == 0)
		r = dup_field(o, "path", &cg->path);
	for (size_t i = 0; r == 0 && i < json_object_array_length(dirs); i++) {
		json_object *d = json_object_array_get_idx(dirs, i);
		struct cg_hier *h = &cg->h[cg->n++];
		int created = 0;
		r = dup_field(d, "mount", &h->mount);
		if (r == 0)
			r = dup_field(d, "controllers", &h->ctrls);
		if (r == 0)
			r = dup_field(d, "dir", &h->dir);
		if (r == 0)
			r = int_field(d, "cgroupVersion", 1, 2, &h->version);
		if (r == 0)
			r = int_field(d, "created", 0, 4096, &created);
		h->created = (unsigned) created;
		/* The state file is ours, but never let it point elsewhere. */
		if (r == 0 &&
		    (strncmp(h->dir, CGROUP_ROOT "/", strlen(CGROUP_ROOT) + 1) != 0 ||
		     strncmp(h->dir, h->mount, strlen(h->mount)) != 0 || path_has_dotdot(h->dir)))
			r = -EINVAL;
	}
	if (r < 0) {
		shim_cgroup_free(cg);
		return r;
	}
	*ret = cg;
	return 0;
}

/* ---------------------------------------------------------------- accessors */

const char *shim_cgroup_path(const struct shim_cgroup *cg)
{
	return cg->path;
}

size_t shim_cgroup_n_dirs(const struct shim_cgroup *cg)
{
	return cg->n;
}

int shim_cgroup_dir(const struct shim_cgroup *cg, size_t i, const char **ret_mount,
		    const char **ret_dir, int *ret_version)
{
	if (i >= cg->n)
		return -ERANGE;
	if (ret_mount)
		*ret_mount = cg->h[i].mount;
	if (ret_dir)
		*ret_dir = cg->h[i].dir;
	if (ret_version)
		*ret_version = cg->h[i].version;
	return 0;
}

int shim_cgroup_oom_kill_count(struct shim_cgroup *cg, uint64_t *ret)
{
	struct cg_hier *h = cg_hier_for(cg, "memory");
	int r;

	if (!h)
		return -EOPNOTSUPP;
	r = cg_read_keyed(h, h->version == 2 ? "memory.events" : "memory.oom_control", "oom_kill",
			  ret);
	return r == -ENOENT ? -EOPNOTSUPP : r;
}
