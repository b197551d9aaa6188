/* SPDX-License-Identifier: Apache-2.0 */
#include "json-util.h"
#include "fd-util.h"
#include "cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

int cs_json_parse(const char *buf, size_t len, json_object **ret, char *err, size_t errlen)
{
	json_tokener *tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	json_object *o = json_tokener_parse_ex(tok, buf, (int) len);
	enum json_tokener_error e = json_tokener_get_error(tok);
	size_t off = json_tokener_get_parse_end(tok);

	if (!o || e != json_tokener_success) {
		if (err)
			snprintf(err, errlen, "%s at byte %zu",
				 e == json_tokener_continue ? "unexpected end of input"
							    : json_tokener_error_desc(e),
				 off);
		json_object_put(o);
		json_tokener_free(tok);
		return -EINVAL;
	}
	/* Trailing garbage after the document is an error too. */
	for (size_t i = off; i < len; i++) {
		if (buf[i] != ' ' && buf[i] != '\n' && buf[i] != '\t' && buf[i] != '\r') {
			if (err)
				snprintf(err, errlen, "unexpected data after the document at byte %zu", i);
			json_object_put(o);
			json_tokener_free(tok);
			return -EINVAL;
		}
	}
	json_tokener_free(tok);
	*ret = o;
	return 0;
}

int cs_json_parse_file(const char *path, size_t max_size, json_object **ret, char *err,
		       size_t errlen)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r = cs_read_file_at(AT_FDCWD, path, max_size, &buf, &len);
	if (r < 0) {
		if (err)
			snprintf(err, errlen, "%s", strerror(-r));
		return r;
	}
	return cs_json_parse(buf, len, ret, err, errlen);
}

static int get_typed(json_object *o, const char *key, json_type type, json_object **ret)
{
	json_object *v;

	if (!o || !json_object_is_type(o, json_type_object))
		return -EINVAL;
	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return -ENOENT;
	if (!json_object_is_type(v, type))
		return -EINVAL;
	*ret = v;
	return 0;
}

int cs_json_get_object(json_object *o, const char *key, json_object **ret)
{
	return get_typed(o, key, json_type_object, ret);
}

int cs_json_get_array(json_object *o, const char *key, json_object **ret)
{
	return get_typed(o, key, json_type_array, ret);
}

int cs_json_get_string(json_object *o, const char *key, const char **ret)
{
	json_object *v;
	int r = get_typed(o, key, json_type_string, &v);
	if (r < 0)
		return r;
	*ret = json_object_get_string(v);
	return 0;
}

int cs_json_get_bool(json_object *o, const char *key, bool *ret)
{
	json_object *v;
	int r = get_typed(o, key, json_type_boolean, &v);
	if (r < 0)
		return r;
	*ret = json_object_get_boolean(v);
	return 0;
}

int cs_json_get_int64(json_object *o, const char *key, int64_t *ret)
{
	json_object *v;
	int r = get_typed(o, key, json_type_int, &v);
	if (r < 0)
		return r;
	errno = 0;
	int64_t x = json_object_get_int64(v);
	if (errno == EINVAL)
		return -ERANGE;
	/* json-c stores values above INT64_MAX as unsigned; refuse them here. */
	if (x == INT64_MAX && json_object_get_uint64(v) > (uint64_t) INT64_MAX)
		return -ERANGE;
	*ret = x;
	return 0;
}

int cs_json_get_uint64(json_object *o, const char *key, uint64_t *ret)
{
	json_object *v;
	int r = get_typed(o, key, json_type_int, &v);
	if (r < 0)
		return r;
	if (json_object_get_int64(v) < 0)
		return -ERANGE;
	*ret = json_object_get_uint64(v);
	return 0;
}

bool cs_json_int_in_range(json_object *v, int64_t min, int64_t max)
{
	if (!v || !json_object_is_type(v, json_type_int))
		return false;
	int64_t x = json_object_get_int64(v);
	if (x == INT64_MAX && json_object_get_uint64(v) > (uint64_t) INT64_MAX)
		return false;
	return x >= min && x <= max;
}
