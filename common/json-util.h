/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Typed accessors over json-c, for configuration parsing.
 *
 * Why json-c (and not jansson): OCI and containerd documents carry unsigned
 * 64-bit values (memory limits, seccomp argument values up to 2^64-1) and
 * json-c keeps them exact (json_object_get_uint64), while jansson's integer
 * type is signed long long only.
 *
 * Accessors: a missing key gives -ENOENT (so optional fields are easy), a
 * key of the wrong type gives -EINVAL. Returned strings and objects are
 * borrowed from the parent object and live as long as it does.
 * Thread-safety: json-c objects are not thread-safe; use one per thread.
 */
#ifndef STOKE_COMMON_JSON_UTIL_H
#define STOKE_COMMON_JSON_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <json-c/json.h>

/*! cs_json_parse() :
 *  Parse `len` bytes as one JSON document. On a syntax error writes a
 *  message with the byte offset into `err` (size `errlen`) and returns -EINVAL.
 *  *ret is owned by the caller (json_object_put()). */
int cs_json_parse(const char *buf, size_t len, json_object **ret, char *err, size_t errlen);

/*! cs_json_parse_file() : as cs_json_parse() on a file of at most `max_size` bytes. */
int cs_json_parse_file(const char *path, size_t max_size, json_object **ret, char *err,
		       size_t errlen);

int cs_json_get_object(json_object *o, const char *key, json_object **ret);
int cs_json_get_array(json_object *o, const char *key, json_object **ret);
int cs_json_get_string(json_object *o, const char *key, const char **ret);
int cs_json_get_bool(json_object *o, const char *key, bool *ret);
int cs_json_get_int64(json_object *o, const char *key, int64_t *ret);
int cs_json_get_uint64(json_object *o, const char *key, uint64_t *ret);

/*! cs_json_int_in_range() : an int (not double) JSON value within [min, max]. */
bool cs_json_int_in_range(json_object *v, int64_t min, int64_t max);

#endif
