/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The checkpoint/restore sequence of a process tree with GPU state:
 *
 *   checkpoint: find CUDA processes -> Lock + Checkpoint each -> record ->
 *               CRIU dump -> (leave-running) Restore + Unlock each
 *   restore:    read record -> load libcuda if needed -> CRIU restore ->
 *               Restore + Unlock each, one process at a time
 *
 * Every failure path puts things back: a failed checkpoint leaves the tree
 * running with its GPU state restored; a failed restore kills what was
 * restored. libcuda is loaded only when some process of the tree maps it,
 * so trees without CUDA never bring the driver's threads into the caller.
 */
#include "criu-internal.h"
#include "stoke-checkpoint.h"

#include "cleanup.h"
#include "fd-util.h"
#include "json-util.h"
#include "time-util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void stoke_gpu_closep(struct stoke_gpu **g)
{
	stoke_gpu_close(*g);
}

static void json_putp(json_object **o)
{
	if (*o)
		json_object_put(*o);
}

static int push_pid(pid_t **v, size_t *n, size_t *cap, pid_t pid)
{
	for (size_t i = 0; i < *n; i++)
		if ((*v)[i] == pid)
			return 0;
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		pid_t *nv = realloc(*v, c * sizeof(pid_t));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = pid;
	return 0;
}

/* Append the children of every thread of `pid` (children are per thread). */
static int add_children(pid_t pid, pid_t **v, size_t *n, size_t *cap)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int) pid);
	_cleanup_closedir_ DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno; /* exited meanwhile */

	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char cpath[320];
		_cleanup_free_ char *buf = NULL;
		size_t len = 0;
		snprintf(cpath, sizeof(cpath), "/proc/%d/task/%s/children", (int) pid, de->d_name);
		if (cs_read_file_at(AT_FDCWD, cpath, 1 << 20, &buf, &len) < 0)
			continue;
		for (char *save, *t = strtok_r(buf, " \n", &save); t;
		     t = strtok_r(NULL, " \n", &save)) {
			int r = push_pid(v, n, cap, (pid_t) atoi(t));
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int stoke_cr_list_tree(pid_t pid, pid_t **ret_pids, size_t *ret_n)
{
	_cleanup_free_ pid_t *v = NULL;
	size_t n = 0, cap = 0;
	int r;

	if (pid <= 0 || kill(pid, 0) < 0)
		return -ESRCH;
	r = push_pid(&v, &n, &cap, pid);
	if (r < 0)
		return r;
	/* Breadth first: v grows while we walk it. */
	for (size_t i = 0; i < n; i++) {
		r = add_children(v[i], &v, &n, &cap);
		if (r < 0)
			return r;
	}
	*ret_pids = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

/* Without libcuda we cannot ask the driver, but a process that holds CUDA
 * state has the driver mapped: look for it in /proc/PID/maps. */
static bool maps_libcuda(pid_t pid)
{
	char path[64];
	_cleanup_free_ char *maps = NULL;
	size_t len = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
	if (cs_read_file_at(AT_FDCWD, path, 256 << 20, &maps, &len) < 0)
		return false;
	return strstr(maps, "/libcuda.so") != NULL;
}

static void hex16(const uint8_t b[16], char out[33])
{
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static int unhex16(const char *s, uint8_t b[16])
{
	if (!s || strlen(s) != 32)
		return -EINVAL;
	for (int i = 0; i < 16; i++) {
		unsigned int x;
		if (sscanf(s + 2 * i, "%2x", &x) != 1)
			return -EINVAL;
		b[i] = (uint8_t) x;
	}
	return 0;
}

static int write_gpu_record(const char *images_dir, const pid_t *pids, size_t n,
			    const uint8_t (*uuids)[16], size_t n_uuids)
{
	_cleanup_(json_putp) json_object *root = json_object_new_object();
	_cleanup_close_ int dfd = -EBADF;

	if (!root)
		return -ENOMEM;
	json_object *jp = json_object_new_array(), *ju = json_object_new_array();
	json_object_object_add(root, "version", json_object_new_int(1));
	json_object_object_add(root, "cuda_pids", jp);
	json_object_object_add(root, "gpu_uuids", ju);
	for (size_t i = 0; i < n; i++)
		json_object_array_add(jp, json_object_new_int(pids[i]));
	for (size_t i = 0; i < n_uuids; i++) {
		char h[33];
		hex16(uuids[i], h);
		json_object_array_add(ju, json_object_new_string(h));
	}
	const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
	dfd = open(images_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	return cs_write_file_atomic(dfd, STOKE_CR_GPU_RECORD, s, strlen(s), 0600);
}

struct gpu_record {
	pid_t *pids;
	size_t n_pids;
	uint8_t (*uuids)[16];
	size_t n_uuids;
};

static void gpu_record_done(struct gpu_record *g)
{
	free(g->pids);
	free(g->uuids);
}

/* A missing record means images without GPU state (e.g. dumped by plain
 * criu): an empty record. */
static int read_gpu_record(const char *images_dir, struct gpu_record *ret)
{
	_cleanup_(json_putp) json_object *root = NULL;
	char path[4096], err[256];
	json_object *jp, *ju;
	int r;

	memset(ret, 0, sizeof(*ret));
	snprintf(path, sizeof(path), "%s/%s", images_dir, STOKE_CR_GPU_RECORD);
	if (access(path, F_OK) < 0)
		return errno == ENOENT ? 0 : -errno;
	r = cs_json_parse_file(path, 1 << 20, &root, err, sizeof(err));
	if (r < 0) {
		cr_set_error("%s: %s", path, err);
		return -EBADMSG;
	}
	if (cs_json_get_array(root, "cuda_pids", &jp) < 0 ||
	    cs_json_get_array(root, "gpu_uuids", &ju) < 0) {
		cr_set_error("%s: missing cuda_pids or gpu_uuids", path);
		return -EBADMSG;
	}
	size_t np = json_object_array_length(jp), nu = json_object_array_length(ju);
	_cleanup_free_ pid_t *pids = calloc(np + 1, sizeof(pid_t));
	_cleanup_free_ uint8_t(*uuids)[16] = calloc(nu + 1, 16);
	if (!pids || !uuids)
		return -ENOMEM;
	for (size_t i = 0; i < np; i++) {
		json_object *v = json_object_array_get_idx(jp, i);
		if (!cs_json_int_in_range(v, 1, INT32_MAX)) {
			cr_set_error("%s: bad pid in cuda_pids", path);
			return -EBADMSG;
		}
		pids[i] = (pid_t) json_object_get_int64(v);
	}
	for (size_t i = 0; i < nu; i++)
		if (unhex16(json_object_get_string(json_object_array_get_idx(ju, i)), uuids[i]) <
		    0) {
			cr_set_error("%s: bad GPU UUID", path);
			return -EBADMSG;
		}
	ret->pids = TAKE_PTR(pids);
	ret->n_pids = np;
	ret->uuids = TAKE_PTR(uuids);
	ret->n_uuids = nu;
	return 0;
}

int stoke_cr_images_need_gpu(const char *images_dir)
{
	struct gpu_record g;
	int r = read_gpu_record(images_dir, &g);
	if (r < 0)
		return r;
	r = g.n_pids > 0;
	gpu_record_done(&g);
	return r;
}

/* Put checkpointed processes back to running (rollback and leave-running). */
static int gpu_restore_all(struct stoke_gpu *gpu, const pid_t *pids, size_t n,
			   const uint8_t (*uuids)[16], size_t n_uuids)
{
	int ret = 0;
	for (size_t i = 0; i < n; i++) {
		int r = stoke_gpu_restore(gpu, pids[i], uuids, n_uuids);
		if (r < 0 && ret == 0)
			ret = r;
	}
	return ret;
}

/* Which processes of the tree hold CUDA state. *ret_gpu is NULL when none
 * does (libcuda is then not loaded at all). */
static int find_cuda_processes(const pid_t *tree, size_t n, struct stoke_gpu **ret_gpu,
			       pid_t **ret_pids, size_t *ret_n)
{
	_cleanup_(stoke_gpu_closep) struct stoke_gpu *gpu = NULL;
	_cleanup_free_ pid_t *cuda = NULL;
	size_t n_cuda = 0, cap = 0;
	pid_t first = 0;
	int r;

	for (size_t i = 0; i < n && !first; i++)
		if (maps_libcuda(tree[i]))
			first = tree[i];
	if (!first) {
		*ret_gpu = NULL;
		*ret_pids = NULL;
		*ret_n = 0;
		return 0;
	}
	r = stoke_gpu_open(&gpu);
	if (r < 0) {
		char why[384];
		snprintf(why, sizeof(why), "%s", stoke_cr_error());
		cr_set_error("process %d uses CUDA but GPU checkpoint is unavailable: %s",
			     (int) first, why);
		return -ENODEV;
	}
	for (size_t i = 0; i < n; i++) {
		enum stoke_gpu_state st;
		r = stoke_gpu_get_state(gpu, tree[i], &st);
		if (r < 0)
			return r;
		if (st == STOKE_GPU_NONE)
			continue;
		if (st != STOKE_GPU_RUNNING) {
			cr_set_error("process %d is in CUDA checkpoint state %d, not running",
				     (int) tree[i], (int) st);
			return -EBUSY;
		}
		r = push_pid(&cuda, &n_cuda, &cap, tree[i]);
		if (r < 0)
			return r;
	}
	*ret_gpu = TAKE_PTR(gpu);
	*ret_pids = TAKE_PTR(cuda);
	*ret_n = n_cuda;
	return 0;
}

int stoke_cr_checkpoint(pid_t pid, const struct stoke_cr_options *o, unsigned int lock_timeout_ms,
			struct stoke_cr_stats *ret_stats)
{
	_cleanup_(stoke_gpu_closep) struct stoke_gpu *gpu = NULL;
	_cleanup_free_ pid_t *tree = NULL, *cuda = NULL;
	_cleanup_free_ uint8_t(*uuids)[16] = NULL;
	size_t n_tree = 0, n_cuda = 0, n_uuids = 0, done = 0;
	struct stoke_cr_stats st = {};
	uint64_t t0 = cs_monotonic_ns(), t;
	int r;

	cr_clear_error();
	r = stoke_cr_list_tree(pid, &tree, &n_tree);
	if (r < 0) {
		cr_set_error("cannot list the process tree of %d", (int) pid);
		return r;
	}
	r = find_cuda_processes(tree, n_tree, &gpu, &cuda, &n_cuda);
	if (r < 0)
		return r;
	if (gpu) {
		r = stoke_gpu_uuids(gpu, &uuids, &n_uuids);
		if (r < 0)
			return r;
	}
	r = cs_mkdir_p(o->images_dir, 0700);
	if (r < 0) {
		cr_set_error("cannot create %s", o->images_dir);
		return r;
	}

	t = cs_monotonic_ns();
	for (done = 0; done < n_cuda; done++) {
		r = stoke_gpu_checkpoint(gpu, cuda[done], lock_timeout_ms);
		if (r < 0)
			goto out_gpu_rollback;
	}
	st.gpu_ns = cs_monotonic_ns() - t;

	r = write_gpu_record(o->images_dir, cuda, n_cuda, (const uint8_t(*)[16]) uuids, n_uuids);
	if (r < 0) {
		cr_set_error("cannot write %s/%s", o->images_dir, STOKE_CR_GPU_RECORD);
		goto out_gpu_rollback;
	}

	t = cs_monotonic_ns();
	r = stoke_criu_dump(pid, o);
	st.criu_ns = cs_monotonic_ns() - t;
	if (r < 0)
		goto out_gpu_rollback;

	if (o->leave_running && n_cuda > 0) {
		t = cs_monotonic_ns();
		r = gpu_restore_all(gpu, cuda, n_cuda, NULL, 0);
		st.gpu_ns += cs_monotonic_ns() - t;
		if (r < 0)
			return r;
	}
	st.total_ns = cs_monotonic_ns() - t0;
	st.n_processes = (unsigned int) n_tree;
	st.n_gpu_processes = (unsigned int) n_cuda;
	if (ret_stats)
		*ret_stats = st;
	return 0;

out_gpu_rollback:
	/* The tree keeps running: give the checkpointed processes their GPU
	 * memory back, keeping the first error's explanation. */
	if (done > 0) {
		char why[512];
		snprintf(why, sizeof(why), "%s", stoke_cr_error());
		(void) gpu_restore_all(gpu, cuda, done, NULL, 0);
		cr_set_error("%s", why);
	}
	return r;
}

static void signal_tree(pid_t root, int sig)
{
	_cleanup_free_ pid_t *tree = NULL;
	size_t n = 0;
	if (stoke_cr_list_tree(root, &tree, &n) == 0)
		for (size_t i = 0; i < n; i++)
			(void) kill(tree[i], sig);
}

static void kill_tree(pid_t root)
{
	_cleanup_free_ pid_t *tree = NULL;
	size_t n = 0;

	/* Stop the root first so it cannot spawn more, then the rest. */
	(void) kill(root, SIGSTOP);
	if (stoke_cr_list_tree(root, &tree, &n) == 0)
		for (size_t i = n; i-- > 0;)
			(void) kill(tree[i], SIGKILL);
	(void) kill(root, SIGKILL);
	(void) waitpid(root, NULL, 0);
}

int stoke_cr_restore(const struct stoke_cr_options *o, struct stoke_cr_stats *ret_stats)
{
	_cleanup_(stoke_gpu_closep) struct stoke_gpu *gpu = NULL;
	_cleanup_(gpu_record_done) struct gpu_record rec = {};
	struct stoke_cr_stats st = {};
	uint64_t t0 = cs_monotonic_ns(), t;
	pid_t root;
	int r;

	cr_clear_error();
	if (!o->images_dir)
		return -EINVAL;
	r = read_gpu_record(o->images_dir, &rec);
	if (r < 0)
		return r;
	/* Refuse before any process exists when the GPU part cannot work. */
	if (rec.n_pids > 0) {
		r = stoke_gpu_open(&gpu);
		if (r < 0) {
			char why[384];
			snprintf(why, sizeof(why), "%s", stoke_cr_error());
			cr_set_error(
				"the images hold CUDA processes but GPU restore is unavailable: %s",
				why);
			return -ENODEV;
		}
	}

	t = cs_monotonic_ns();
	r = stoke_criu_restore(o);
	st.criu_ns = cs_monotonic_ns() - t;
	if (r < 0)
		return r;
	root = r;

	/* The driver restores a process from inside it: a stopped tree must
	 * run for the GPU step (and is stopped again after it). */
	if (o->leave_stopped && rec.n_pids > 0)
		signal_tree(root, SIGCONT);

	/* One process at a time: the driver's operations on processes of one
	 * job must not overlap. */
	t = cs_monotonic_ns();
	for (size_t i = 0; i < rec.n_pids; i++) {
		r = stoke_gpu_restore(gpu, rec.pids[i], (const uint8_t(*)[16]) rec.uuids,
				      rec.n_uuids);
		if (r < 0) {
			kill_tree(root);
			return r;
		}
	}
	st.gpu_ns = cs_monotonic_ns() - t;
	if (o->leave_stopped && rec.n_pids > 0)
		signal_tree(root, SIGSTOP);
	st.total_ns = cs_monotonic_ns() - t0;
	st.n_gpu_processes = (unsigned int) rec.n_pids;
	_cleanup_free_ pid_t *tree = NULL;
	size_t n = 0;
	if (stoke_cr_list_tree(root, &tree, &n) == 0)
		st.n_processes = (unsigned int) n;
	if (ret_stats)
		*ret_stats = st;
	return root;
}
