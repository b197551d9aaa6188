/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Opening a model: files (safetensors, GGUF, a sharded index), validation
 * across files, and the read-only accessors.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "engine.h"
#include "fd-util.h"
#include "json-util.h"
#include "model.h"
#include "path-util.h"

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct ldr_tensor *) a)->name, ((const struct ldr_tensor *) b)->name);
}

static int model_add_file(struct ldr_model *m, const char *path, uint32_t *ret_index)
{
	struct ldr_file *f = reallocarray(m->files, m->n_files + 1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	m->files = f;
	f = &m->files[m->n_files];
	*f = (struct ldr_file){.path = strdup(path)};
	if (!f->path)
		return -ENOMEM;
	*ret_index = (uint32_t) m->n_files++;
	return 0;
}

/* Parse one weights file (safetensors or GGUF, told apart by the magic). */
static int open_weights_file(struct ldr_model *m, const char *path, char *err, size_t errlen)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t head[8];
	uint32_t idx;
	int r;

	if (fd < 0)
		return ldr_errf(err, errlen, -errno, "%s: cannot open: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0)
		return ldr_errf(err, errlen, -errno, "%s: cannot stat: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return ldr_errf(err, errlen, -EBADMSG, "%s: not a regular file", path);
	uint64_t size = (uint64_t) st.st_size;
	ssize_t n = cs_pread_all(fd, head, sizeof(head), 0);
	if (n < 0)
		return ldr_errf(err, errlen, (int) n, "%s: cannot read: %s", path,
				strerror((int) -n));
	r = model_add_file(m, path, &idx);
	if (r < 0)
		return r;
	struct ldr_file *f = &m->files[idx];
	f->size = size;

	if (n >= 4 && memcmp(head, "GGUF", 4) == 0) {
		f->format = LDR_FORMAT_GGUF;
		/* Map the file to parse it: only the header's pages are touched. */
		void *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
		if (map == MAP_FAILED)
			return ldr_errf(err, errlen, -errno, "%s: cannot map: %s", path,
					strerror(errno));
		r = ldr_gguf_parse(map, size, path, idx, &m->tensors, &f->data_start, err, errlen);
		munmap(map, size);
	} else {
		uint64_t hlen;
		f->format = LDR_FORMAT_SAFETENSORS;
		r = ldr_safetensors_header_len(head, size, path, &hlen, err, errlen);
		if (r < 0)
			return r;
		_cleanup_free_ uint8_t *buf = malloc(8 + hlen);
		if (!buf)
			return -ENOMEM;
		n = cs_pread_all(fd, buf, 8 + hlen, 0);
		if (n < 0)
			return ldr_errf(err, errlen, (int) n, "%s: cannot read: %s", path,
					strerror((int) -n));
		r = ldr_safetensors_parse(buf, (size_t) n, size, path, idx, &m->tensors,
					  &f->data_start, err, errlen);
	}
	if (r < 0)
		return r;
	f->data_end = f->data_start;
	for (size_t i = 0; i < m->tensors.n; i++)
		if (m->tensors.v[i].file == idx &&
		    m->tensors.v[i].offset + m->tensors.v[i].size > f->data_end)
			f->data_end = m->tensors.v[i].offset + m->tensors.v[i].size;
	return 0;
}

static int by_string(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* model.safetensors.index.json: open every shard its weight_map names and
 * check that the map and the shards agree tensor for tensor. */
static int open_index(struct ldr_model *m, const char *path, char *err, size_t errlen)
{
	json_object *root = NULL, *map;
	char jerr[256];
	int r = cs_json_parse_file(path, 256u << 20, &root, jerr, sizeof(jerr));
	if (r < 0)
		return ldr_errf(err, errlen, r == -EINVAL ? -EBADMSG : r, "%s: %s", path,
				r == -EINVAL ? jerr : strerror(-r));
	_cleanup_free_ char *dir_copy = strdup(path);
	_cleanup_free_ const char **shards = NULL;
	size_t n_shards = 0;
	if (!dir_copy) {
		r = -ENOMEM;
		goto out;
	}
	const char *dir = dirname(dir_copy);
	r = cs_json_get_object(root, "weight_map", &map);
	if (r < 0) {
		r = ldr_errf(err, errlen, -EBADMSG, "%s: no \"weight_map\" object", path);
		goto out;
	}
	shards = calloc((size_t) json_object_object_length(map) + 1, sizeof(*shards));
	if (!shards) {
		r = -ENOMEM;
		goto out;
	}
	json_object_object_foreach (map, key, val) {
		if (!json_object_is_type(val, json_type_string) ||
		    !cs_path_is_safe_relative(json_object_get_string(val))) {
			r = ldr_errf(err, errlen, -EBADMSG,
				     "%s: tensor \"%s\": shard must be a relative path beside the "
				     "index",
				     path, key);
			goto out;
		}
		shards[n_shards++] = json_object_get_string(val);
	}
	qsort(shards, n_shards, sizeof(*shards), by_string);

	size_t first_file = m->n_files;
	for (size_t i = 0; i < n_shards; i++) {
		if (i > 0 && strcmp(shards[i], shards[i - 1]) == 0)
			continue;
		_cleanup_free_ char *p = NULL;
		r = cs_path_join(dir, shards[i], &p);
		if (r < 0)
			goto out;
		r = open_weights_file(m, p, err, errlen);
		if (r < 0)
			goto out;
	}
	/* Every tensor of the shards must be mapped to the shard holding it. */
	size_t n_in_shards = 0;
	for (size_t i = 0; i < m->tensors.n; i++) {
		struct ldr_tensor *t = &m->tensors.v[i];
		if (t->file < first_file)
			continue;
		n_in_shards++;
		json_object *v;
		const char *file = m->files[t->file].path, *base = strrchr(file, '/');
		base = base ? base + 1 : file;
		if (!json_object_object_get_ex(map, t->name, &v)) {
			r = ldr_errf(err, errlen, -EBADMSG,
				     "%s: tensor \"%s\" of %s is missing from weight_map", path,
				     t->name, file);
			goto out;
		}
		const char *want = json_object_get_string(v), *wbase = strrchr(want, '/');
		wbase = wbase ? wbase + 1 : want;
		if (strcmp(wbase, base) != 0) {
			r = ldr_errf(err, errlen, -EBADMSG,
				     "%s: tensor \"%s\" is mapped to %s but found in %s", path,
				     t->name, want, file);
			goto out;
		}
	}
	if (n_in_shards != n_shards) {
		/* Some mapped tensor is in no shard (the converse was checked above). */
		json_object_object_foreach (map, key2, val2) {
			(void) val2;
			bool found = false;
			for (size_t i = 0; i < m->tensors.n && !found; i++)
				found = m->tensors.v[i].file >= first_file &&
					strcmp(m->tensors.v[i].name, key2) == 0;
			if (!found) {
				r = ldr_errf(err, errlen, -EBADMSG,
					     "%s: tensor \"%s\" is in weight_map but in no shard",
					     path, key2);
				goto out;
			}
		}
	}
	r = 0;
out:
	json_object_put(root);
	return r;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

int ldr_model_open(const char *const *paths, size_t n_paths, struct ldr_model **ret_model,
		   char *err, size_t errlen)
{
	if (!paths || n_paths == 0 || !ret_model)
		return ldr_errf(err, errlen, -EINVAL, "no model files given");
	struct ldr_model *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->refs = 1;
	int r = 0;
	for (size_t i = 0; i < n_paths && r >= 0; i++)
		r = has_suffix(paths[i], ".json") ? open_index(m, paths[i], err, errlen)
						  : open_weights_file(m, paths[i], err, errlen);
	if (r >= 0) {
		if (m->tensors.n > 1)
			qsort(m->tensors.v, m->tensors.n, sizeof(*m->tensors.v), by_name);
		for (size_t i = 1; i < m->tensors.n && r >= 0; i++)
			if (strcmp(m->tensors.v[i].name, m->tensors.v[i - 1].name) == 0)
				r = ldr_errf(err, errlen, -EBADMSG,
					     "tensor \"%s\" appears in both %s and %s",
					     m->tensors.v[i].name,
					     m->files[m->tensors.v[i - 1].file].path,
					     m->files[m->tensors.v[i].file].path);
	}
	if (r == -ENOMEM)
		ldr_errf(err, errlen, r, "out of memory opening the model");
	if (r < 0) {
		ldr_model_unref(m);
		return r;
	}
	*ret_model = m;
	return 0;
}

struct ldr_model *ldr_model_ref(struct ldr_model *m)
{
	if (m)
		__atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
	return m;
}

struct ldr_model *ldr_model_unref(struct ldr_model *m)
{
	if (!m || __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return NULL;
	ldr_engine_release(m);
	ldr_tensor_list_clear(&m->tensors);
	for (size_t i = 0; i < m->n_files; i++)
		free(m->files[i].path);
	free(m->files);
	free(m);
	return NULL;
}

size_t ldr_model_n_tensors(const struct ldr_model *m)
{
	return m ? m->tensors.n : 0;
}

int ldr_model_tensor(const struct ldr_model *m, size_t index, struct ldr_tensor_info *ret)
{
	if (!m || index >= m->tensors.n || !ret)
		return -ERANGE;
	const struct ldr_tensor *t = &m->tensors.v[index];
	*ret = (struct ldr_tensor_info){
		.name = t->name,
		.dtype = t->dtype,
		.n_dims = t->n_dims,
		.shape = t->shape,
		.size = t->size,
		.file = m->files[t->file].path,
		.file_offset = t->offset,
		.device = m->loaded ? t->device : -1,
		.host = m->loaded && t->device < 0 ? t->host : NULL,
		.dptr = m->loaded && t->device >= 0 ? t->dptr : 0,
	};
	return 0;
}

long ldr_model_find(const struct ldr_model *m, const char *name)
{
	if (!m || !name)
		return -ENOENT;
	size_t lo = 0, hi = m->tensors.n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->tensors.v[mid].name, name);
		if (c == 0)
			return (long) mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -ENOENT;
}
