/* SPDX-License-Identifier: Apache-2.0 */
#include "seccomp.h"
#include "errbuf.h"
#include "seccomp-names.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cleanup.h"
#include "fd-util.h"
#include "json-util.h"
#include "config.h"

#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#endif
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif
#ifndef SECCOMP_FILTER_FLAG_TSYNC_ESRCH
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH (1UL << 4)
#endif

/* Classic BPF programs are limited to this many instructions by the kernel. */
#define MAX_INSNS 4096

/* The ENOSYS stub: 3 instructions plus at most 4 per architecture. */
#define STUB_MAX (3 + 4 * 32)

#define CACHE_MAGIC   "STKSCBPF"
#define CACHE_VERSION 3u

/* The on-disk cache record: this header, then n_insns struct sock_filter. */
struct cache_header {
	char magic[8];
	uint32_t version;
	uint32_t n_insns;
	uint64_t key;	  /* FNV-1a 64 of the key material, forwards (also the file name) */
	uint64_t key_rev; /* ... backwards: a collision would have to happen in both */
	uint64_t key_len; /* ... and its length */
};

struct cache_key {
	uint64_t fwd, rev, len;
};

struct shim_seccomp_filter {
	struct sock_filter *insns;
	size_t n_insns;
	unsigned int flags; /* SECCOMP_FILTER_FLAG_* from the profile */
	bool notify;
	char *listener_path;
	char *metadata;
};

static unsigned compile_count;
static char last_error[256];

const char *shim_seccomp_last_error(void)
{
	return last_error;
}

/* ---------------------------------------------------------------- validation */

static bool is_errno_action(uint64_t base)
{
	return base == SCMP_ACT_ERRNO(0) || base == SCMP_ACT_TRACE(0);
}

static const struct shim_seccomp_name *lookup_action(const char *name)
{
	return shim_seccomp_name_lookup(shim_seccomp_actions, shim_seccomp_actions_count, name);
}

static int validate_errno_ret(json_object *v, const char *field, char *err, size_t errlen)
{
	if (!cs_json_int_in_range(v, 0, 0xffff))
		return cs_errf(-EINVAL, err, errlen, "%s: must be an integer in 0-65535", field);
	return 0;
}

static int validate_string_array(json_object *a, const char *field,
				 const struct shim_seccomp_name *t, size_t tn, const char *what,
				 char *err, size_t errlen)
{
	if (!json_object_is_type(a, json_type_array))
		return cs_errf(-EINVAL, err, errlen, "%s: must be an array of strings", field);
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *s = json_object_array_get_idx(a, i);
		if (!json_object_is_type(s, json_type_string))
			return cs_errf(-EINVAL, err, errlen, "%s[%zu]: must be a string", field, i);
		if (t && !shim_seccomp_name_lookup(t, tn, json_object_get_string(s)))
			return cs_errf(-EINVAL, err, errlen, "%s[%zu]: unknown %s \"%s\"", field, i,
				       what, json_object_get_string(s));
	}
	return 0;
}

static int validate_arg(json_object *arg, const char *field, char *err, size_t errlen)
{
	json_object *v;

	if (!json_object_is_type(arg, json_type_object))
		return cs_errf(-EINVAL, err, errlen, "%s: must be an object", field);
	if (!json_object_object_get_ex(arg, "index", &v))
		return cs_errf(-EINVAL, err, errlen, "%s.index: missing", field);
	if (!cs_json_int_in_range(v, 0, 5))
		return cs_errf(-EINVAL, err, errlen, "%s.index: must be an integer in 0-5", field);
	if (!json_object_object_get_ex(arg, "value", &v))
		return cs_errf(-EINVAL, err, errlen, "%s.value: missing", field);
	if (!json_object_is_type(v, json_type_int) ||
	    (json_object_get_int64(v) < 0 && json_object_get_uint64(v) == 0))
		return cs_errf(-EINVAL, err, errlen, "%s.value: must be an unsigned 64-bit integer",
			       field);
	if (json_object_object_get_ex(arg, "valueTwo", &v) &&
	    (!json_object_is_type(v, json_type_int) ||
	     (json_object_get_int64(v) < 0 && json_object_get_uint64(v) == 0)))
		return cs_errf(-EINVAL, err, errlen,
			       "%s.valueTwo: must be an unsigned 64-bit integer", field);
	if (!json_object_object_get_ex(arg, "op", &v))
		return cs_errf(-EINVAL, err, errlen, "%s.op: missing", field);
	if (!json_object_is_type(v, json_type_string))
		return cs_errf(-EINVAL, err, errlen, "%s.op: must be a string", field);
	if (!shim_seccomp_name_lookup(shim_seccomp_operators, shim_seccomp_operators_count,
				      json_object_get_string(v)))
		return cs_errf(-EINVAL, err, errlen, "%s.op: unknown operator \"%s\"", field,
			       json_object_get_string(v));
	return 0;
}

static int validate_syscall(json_object *sc, size_t idx, bool *notify, char *err, size_t errlen)
{
	char field[96];
	json_object *names, *action, *v, *args;
	const struct shim_seccomp_name *act;
	int r;

	snprintf(field, sizeof(field), "linux.seccomp.syscalls[%zu]", idx);
	if (!json_object_is_type(sc, json_type_object))
		return cs_errf(-EINVAL, err, errlen, "%s: must be an object", field);
	if (!json_object_object_get_ex(sc, "names", &names))
		return cs_errf(-EINVAL, err, errlen, "%s.names: missing", field);
	if (!json_object_is_type(names, json_type_array) || json_object_array_length(names) == 0)
		return cs_errf(-EINVAL, err, errlen,
			       "%s.names: must be a non-empty array of strings", field);
	char sub[128];
	snprintf(sub, sizeof(sub), "%s.names", field);
	r = validate_string_array(names, sub, NULL, 0, NULL, err, errlen);
	if (r < 0)
		return r;

	if (!json_object_object_get_ex(sc, "action", &action))
		return cs_errf(-EINVAL, err, errlen, "%s.action: missing", field);
	if (!json_object_is_type(action, json_type_string))
		return cs_errf(-EINVAL, err, errlen, "%s.action: must be a string", field);
	act = lookup_action(json_object_get_string(action));
	if (!act)
		return cs_errf(-EINVAL, err, errlen, "%s.action: unknown action \"%s\"", field,
			       json_object_get_string(action));
	if (act->value == SCMP_ACT_NOTIFY) {
		*notify = true;
		/* The runtime itself writes to its sync pipe after installing the
		 * filter; a notify rule on write would deadlock it (runc refuses too). */
		for (size_t i = 0; i < json_object_array_length(names); i++)
			if (strcmp(json_object_get_string(json_object_array_get_idx(names, i)),
				   "write") == 0)
				return cs_errf(
					-EINVAL, err, errlen,
					"%s.action: SCMP_ACT_NOTIFY cannot be used for \"write\"",
					field);
	}

	if (json_object_object_get_ex(sc, "errnoRet", &v)) {
		snprintf(sub, sizeof(sub), "%s.errnoRet", field);
		r = validate_errno_ret(v, sub, err, errlen);
		if (r < 0)
			return r;
		if (!is_errno_action(act->value))
			return cs_errf(
				-EINVAL, err, errlen,
				"%s.errnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE",
				field);
	}

	if (json_object_object_get_ex(sc, "args", &args) &&
	    !json_object_is_type(args, json_type_null)) {
		if (!json_object_is_type(args, json_type_array))
			return cs_errf(-EINVAL, err, errlen, "%s.args: must be an array", field);
		for (size_t i = 0; i < json_object_array_length(args); i++) {
			snprintf(sub, sizeof(sub), "%s.args[%zu]", field, i);
			r = validate_arg(json_object_array_get_idx(args, i), sub, err, errlen);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int shim_seccomp_validate(json_object *seccomp, char *err, size_t errlen)
{
	json_object *v, *syscalls;
	const struct shim_seccomp_name *def;
	bool notify = false;
	int r;

	if (!seccomp)
		return 0;
	if (!json_object_is_type(seccomp, json_type_object))
		return cs_errf(-EINVAL, err, errlen, "linux.seccomp: must be an object");

	if (!json_object_object_get_ex(seccomp, "defaultAction", &v))
		return cs_errf(-EINVAL, err, errlen, "linux.seccomp.defaultAction: missing");
	if (!json_object_is_type(v, json_type_string))
		return cs_errf(-EINVAL, err, errlen,
			       "linux.seccomp.defaultAction: must be a string");
	def = lookup_action(json_object_get_string(v));
	if (!def)
		return cs_errf(-EINVAL, err, errlen,
			       "linux.seccomp.defaultAction: unknown action \"%s\"",
			       json_object_get_string(v));
	if (def->value == SCMP_ACT_NOTIFY)
		return cs_errf(-EINVAL, err, errlen,
			       "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default "
			       "action");

	if (json_object_object_get_ex(seccomp, "defaultErrnoRet", &v)) {
		r = validate_errno_ret(v, "linux.seccomp.defaultErrnoRet", err, errlen);
		if (r < 0)
			return r;
		if (!is_errno_action(def->value))
			return cs_errf(-EINVAL, err, errlen,
				       "linux.seccomp.defaultErrnoRet: only valid with "
				       "defaultAction SCMP_ACT_ERRNO or SCMP_ACT_TRACE");
	}
	if (json_object_object_get_ex(seccomp, "architectures", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		r = validate_string_array(v, "linux.seccomp.architectures", shim_seccomp_archs,
					  shim_seccomp_archs_count, "architecture", err, errlen);
		if (r < 0)
			return r;
	}
	if (json_object_object_get_ex(seccomp, "flags", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		r = validate_string_array(v, "linux.seccomp.flags", shim_seccomp_flags,
					  shim_seccomp_flags_count, "flag", err, errlen);
		if (r < 0)
			return r;
	}
	if (json_object_object_get_ex(seccomp, "listenerMetadata", &v) &&
	    !json_object_is_type(v, json_type_string))
		return cs_errf(-EINVAL, err, errlen,
			       "linux.seccomp.listenerMetadata: must be a string");

	if (json_object_object_get_ex(seccomp, "syscalls", &syscalls) &&
	    !json_object_is_type(syscalls, json_type_null)) {
		if (!json_object_is_type(syscalls, json_type_array))
			return cs_errf(-EINVAL, err, errlen,
				       "linux.seccomp.syscalls: must be an array");
		for (size_t i = 0; i < json_object_array_length(syscalls); i++) {
			r = validate_syscall(json_object_array_get_idx(syscalls, i), i, &notify,
					     err, errlen);
			if (r < 0)
				return r;
		}
	}

	if (json_object_object_get_ex(seccomp, "listenerPath", &v)) {
		const char *p = json_object_get_string(v);
		if (!json_object_is_type(v, json_type_string) || p[0] != '/')
			return cs_errf(-EINVAL, err, errlen,
				       "linux.seccomp.listenerPath: must be an absolute path");
		if (strlen(p) >= sizeof(((struct sockaddr_un *) 0)->sun_path))
			return cs_errf(-EINVAL, err, errlen,
				       "linux.seccomp.listenerPath: \"%s\" is too long for a "
				       "unix socket path",
				       p);
	} else if (notify) {
		return cs_errf(-EINVAL, err, errlen,
			       "linux.seccomp.listenerPath: required when an action is "
			       "SCMP_ACT_NOTIFY");
	}
	return 0;
}

/* ---------------------------------------------------------------- compiling */

static uint64_t fnv1a64(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

/* The cache key: everything that can change the compiled program. The
 * profile's canonical JSON (json-c keeps key order as parsed, so the same
 * config.json gives the same bytes), the compiler's version, the kernel
 * and machine (libseccomp resolves syscall numbers for the native arch),
 * and our version (compile choices may change between releases). */
static uint64_t fnv1a64_rev(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len--) {
		h ^= p[len];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

static struct cache_key cache_key(json_object *seccomp)
{
	const struct scmp_version *v = seccomp_version();
	const char *profile = json_object_to_json_string_ext(seccomp, JSON_C_TO_STRING_PLAIN);
	size_t plen = strlen(profile);
	struct utsname u;
	char buf[512];
	struct cache_key k = {.fwd = UINT64_C(0xcbf29ce484222325),
			      .rev = UINT64_C(0xcbf29ce484222325)};
	size_t n;

	if (uname(&u) < 0)
		memset(&u, 0, sizeof(u));
	n = (size_t) snprintf(buf, sizeof(buf), "stoke-seccomp/%u|%s|%u.%u.%u|%s|%s|",
			      CACHE_VERSION, STOKE_VERSION, v->major, v->minor, v->micro, u.release,
			      u.machine);
	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	k.fwd = fnv1a64(fnv1a64(k.fwd, buf, n), profile, plen);
	k.rev = fnv1a64_rev(fnv1a64_rev(k.rev, profile, plen), buf, n);
	k.len = n + plen;
	return k;
}

static uint32_t action_value(json_object *o, const char *action_key, const char *errno_key)
{
	json_object *v;
	const struct shim_seccomp_name *a;
	uint32_t errno_ret = EPERM;

	json_object_object_get_ex(o, action_key, &v);
	a = lookup_action(json_object_get_string(v));
	if (json_object_object_get_ex(o, errno_key, &v))
		errno_ret = (uint32_t) json_object_get_int(v);
	if (is_errno_action(a->value))
		return (uint32_t) a->value | (errno_ret & 0xffff);
	return (uint32_t) a->value;
}

static bool args_share_index(json_object *args)
{
	size_t n = json_object_array_length(args);
	unsigned seen = 0;

	for (size_t i = 0; i < n; i++) {
		json_object *v;
		json_object_object_get_ex(json_object_array_get_idx(args, i), "index", &v);
		unsigned bit = 1u << json_object_get_int(v);
		if (seen & bit)
			return true;
		seen |= bit;
	}
	return false;
}

static struct scmp_arg_cmp arg_cmp(json_object *arg)
{
	json_object *v;
	struct scmp_arg_cmp c = {0};

	json_object_object_get_ex(arg, "index", &v);
	c.arg = (unsigned) json_object_get_int(v);
	json_object_object_get_ex(arg, "op", &v);
	c.op = (enum scmp_compare) shim_seccomp_name_lookup(shim_seccomp_operators,
							    shim_seccomp_operators_count,
							    json_object_get_string(v))
		       ->value;
	json_object_object_get_ex(arg, "value", &v);
	c.datum_a = json_object_get_uint64(v);
	if (json_object_object_get_ex(arg, "valueTwo", &v))
		c.datum_b = json_object_get_uint64(v);
	return c;
}

static int add_syscall_rules(scmp_filter_ctx ctx, uint32_t def_action, json_object *sc, size_t idx)
{
	json_object *names, *args = NULL;
	uint32_t action = action_value(sc, "action", "errnoRet");
	struct scmp_arg_cmp cmps[6];
	const char *name = NULL;
	size_t n_args = 0;
	bool separate;
	int r;

	/* libseccomp refuses rules equal to the default; runc drops them. */
	if (action == def_action)
		return 0;
	json_object_object_get_ex(sc, "names", &names);
	if (json_object_object_get_ex(sc, "args", &args) &&
	    json_object_is_type(args, json_type_array))
		n_args = json_object_array_length(args);
	else
		args = NULL;
	separate = n_args > 1 && args_share_index(args);
	if (!separate && n_args > ELEMENTSOF(cmps))
		return -EINVAL;
	for (size_t i = 0; i < n_args && !separate; i++)
		cmps[i] = arg_cmp(json_object_array_get_idx(args, i));

	for (size_t i = 0; i < json_object_array_length(names); i++) {
		int nr;

		name = json_object_get_string(json_object_array_get_idx(names, i));
		nr = seccomp_syscall_resolve_name(name);

		/* Unknown to this libseccomp (or this arch): skipped, as runc does. */
		if (nr == __NR_SCMP_ERROR)
			continue;
		if (!separate) {
			r = seccomp_rule_add_array(ctx, action, nr, (unsigned) n_args,
						   n_args ? cmps : NULL);
			if (r < 0)
				goto refused;
			continue;
		}
		/* Several conditions on one argument cannot be ANDed by
		 * libseccomp; runc adds one rule per condition (ORed). */
		for (size_t a = 0; a < n_args; a++) {
			struct scmp_arg_cmp c = arg_cmp(json_object_array_get_idx(args, a));
			r = seccomp_rule_add_array(ctx, action, nr, 1, &c);
			if (r < 0)
				goto refused;
		}
	}
	return 0;
refused:
	snprintf(last_error, sizeof(last_error),
		 "linux.seccomp.syscalls[%zu]: libseccomp refused the rule for \"%s\": %s", idx,
		 name, strerror(-r));
	return r;
}

/* ---------------------------------------------------------------- ENOSYS stub */

/* Syscalls newer than every syscall a profile names cannot have been meant
 * by it: runc answers them with ENOSYS instead of the default action, so
 * that a libc trying a new call (clone3, faccessat2, ...) falls back to the
 * old one instead of failing with EPERM. A short program in front of
 * libseccomp's does the same here, per architecture. */

struct stub_arch {
	uint32_t arch;	/* AUDIT_ARCH_* (libseccomp's SCMP_ARCH_* have the same values) */
	uint32_t max;	/* the highest syscall number the profile names */
	bool x32_split; /* x86_64: x32 calls share the arch, bit 30 set: left alone */
};

static bool stub_wanted(json_object *seccomp)
{
	json_object *v;
	const char *def;

	if (!json_object_object_get_ex(seccomp, "defaultAction", &v))
		return false;
	def = json_object_get_string(v);
	/* Permissive defaults need no stub; neither does a default that already is ENOSYS. */
	if (strcmp(def, "SCMP_ACT_ALLOW") == 0 || strcmp(def, "SCMP_ACT_LOG") == 0 ||
	    strcmp(def, "SCMP_ACT_TRACE") == 0)
		return false;
	if (strcmp(def, "SCMP_ACT_ERRNO") == 0 &&
	    json_object_object_get_ex(seccomp, "defaultErrnoRet", &v) &&
	    json_object_get_int(v) == ENOSYS)
		return false;
	return true;
}

static void stub_add_arch(struct stub_arch *a, size_t *n, uint32_t arch, json_object *syscalls)
{
	int64_t max = -1;

	if (arch == SCMP_ARCH_X32)
		return;
	for (size_t i = 0; i < *n; i++)
		if (a[i].arch == arch)
			return;
	for (size_t i = 0; syscalls && i < json_object_array_length(syscalls); i++) {
		json_object *names;
		if (!json_object_object_get_ex(json_object_array_get_idx(syscalls, i), "names",
					       &names))
			continue;
		for (size_t j = 0; j < json_object_array_length(names); j++) {
			int nr = seccomp_syscall_resolve_name_arch(
				arch, json_object_get_string(json_object_array_get_idx(names, j)));
			/* Negative: unknown, or a pseudo number (multiplexed calls). */
			if (nr >= 0 && nr > max)
				max = nr;
		}
	}
	if (max < 0)
		return;
	a[*n] = (struct stub_arch){
		.arch = arch, .max = (uint32_t) max, .x32_split = arch == SCMP_ARCH_X86_64};
	(*n)++;
}

/* The stub for `seccomp`, or 0 instructions when none is needed. */
static size_t build_stub(json_object *seccomp, struct sock_filter *out, size_t cap)
{
	struct stub_arch a[32];
	json_object *archs = NULL, *syscalls = NULL;
	size_t n = 0, len, pos = 0, enosys, main_start;

	if (!stub_wanted(seccomp))
		return 0;
	json_object_object_get_ex(seccomp, "syscalls", &syscalls);
	stub_add_arch(a, &n, seccomp_arch_native(), syscalls);
	if (json_object_object_get_ex(seccomp, "architectures", &archs) &&
	    json_object_is_type(archs, json_type_array))
		for (size_t i = 0; i < json_object_array_length(archs) && n < ELEMENTSOF(a); i++) {
			const struct shim_seccomp_name *e = shim_seccomp_name_lookup(
				shim_seccomp_archs, shim_seccomp_archs_count,
				json_object_get_string(json_object_array_get_idx(archs, i)));
			if (e)
				stub_add_arch(a, &n, (uint32_t) e->value, syscalls);
		}
	if (n == 0)
		return 0;

	len = 1 + 2; /* load arch ... jump to main, return ENOSYS */
	for (size_t i = 0; i < n; i++)
		len += 3 + a[i].x32_split;
	if (len > cap)
		return 0;
	enosys = len - 1;
	main_start = len;

	out[pos++] = (struct sock_filter) BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
						   offsetof(struct seccomp_data, arch));
	for (size_t i = 0; i < n; i++) {
		size_t next = pos + 3 + a[i].x32_split;
		out[pos] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, a[i].arch, 0,
							 (uint8_t) (next - pos - 1));
		pos++;
		out[pos++] = (struct sock_filter) BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
							   offsetof(struct seccomp_data, nr));
		if (a[i].x32_split) {
			out[pos] = (struct sock_filter) BPF_JUMP(
				BPF_JMP | BPF_JSET | BPF_K, 0x40000000u,
				(uint8_t) (main_start - pos - 1), 0);
			pos++;
		}
		out[pos] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, a[i].max,
							 (uint8_t) (enosys - pos - 1),
							 (uint8_t) (main_start - pos - 1));
		pos++;
	}
	/* Another architecture: libseccomp's program decides (it kills). */
	out[pos] =
		(struct sock_filter) BPF_STMT(BPF_JMP | BPF_JA, (uint32_t) (main_start - pos - 1));
	pos++;
	out[pos++] = (struct sock_filter) BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
	return pos;
}

static void seccomp_releasep(scmp_filter_ctx *ctx)
{
	if (*ctx)
		seccomp_release(*ctx);
}

/* Compile with libseccomp and export the BPF through a memfd. */
static int compile(json_object *seccomp, struct sock_filter **ret_insns, size_t *ret_n)
{
	__attribute__((cleanup(seccomp_releasep))) scmp_filter_ctx ctx = NULL;
	_cleanup_close_ int fd = -EBADF;
	_cleanup_free_ struct sock_filter *insns = NULL;
	json_object *v;
	uint32_t def_action;
	struct stat st;
	ssize_t n;
	int r;

	compile_count++;
	def_action = action_value(seccomp, "defaultAction", "defaultErrnoRet");
	ctx = seccomp_init(def_action);
	if (!ctx) {
		snprintf(last_error, sizeof(last_error),
			 "linux.seccomp.defaultAction: libseccomp refused it");
		return -EINVAL;
	}
	if (json_object_object_get_ex(seccomp, "architectures", &v) &&
	    json_object_is_type(v, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			const struct shim_seccomp_name *a = shim_seccomp_name_lookup(
				shim_seccomp_archs, shim_seccomp_archs_count,
				json_object_get_string(json_object_array_get_idx(v, i)));
			r = seccomp_arch_add(ctx, (uint32_t) a->value);
			if (r < 0 && r != -EEXIST) {
				snprintf(last_error, sizeof(last_error),
					 "linux.seccomp.architectures[%zu]: libseccomp cannot add "
					 "%s: %s",
					 i, a->name, strerror(-r));
				return r;
			}
		}
	}
	if (json_object_object_get_ex(seccomp, "syscalls", &v) &&
	    json_object_is_type(v, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			r = add_syscall_rules(ctx, def_action, json_object_array_get_idx(v, i), i);
			if (r < 0)
				return r;
		}
	}

	fd = memfd_create("stoke-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = seccomp_export_bpf(ctx, fd);
	if (r < 0) {
		snprintf(last_error, sizeof(last_error),
			 "linux.seccomp: libseccomp could not generate the program: %s",
			 strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size == 0 || st.st_size % sizeof(struct sock_filter) != 0 ||
	    st.st_size > (off_t) (MAX_INSNS * sizeof(struct sock_filter)))
		return -E2BIG;
	insns = malloc((size_t) st.st_size + STUB_MAX * sizeof(struct sock_filter));
	if (!insns)
		return -ENOMEM;
	/* Relative jumps only in both parts: the stub can simply go first. */
	size_t stub = build_stub(seccomp, insns, STUB_MAX);
	n = cs_pread_all(fd, insns + stub, (size_t) st.st_size, 0);
	if (n < 0)
		return (int) n;
	if (n != st.st_size)
		return -EIO;
	*ret_n = stub + (size_t) st.st_size / sizeof(struct sock_filter);
	if (*ret_n > MAX_INSNS)
		return -E2BIG;
	*ret_insns = TAKE_PTR(insns);
	return 0;
}

/* ---------------------------------------------------------------- cache */

static int cache_name(uint64_t key, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%016" PRIx64 ".bpf", key);
	return n < 0 || (size_t) n >= len ? -ENAMETOOLONG : 0;
}

static int cache_read(const char *dir, struct cache_key key, struct sock_filter **ret_insns,
		      size_t *ret_n)
{
	_cleanup_close_ int dfd = -EBADF;
	_cleanup_free_ char *buf = NULL;
	_cleanup_free_ struct sock_filter *insns = NULL;
	struct cache_header h;
	char name[32];
	size_t len;
	int r;

	r = cache_name(key.fwd, name, sizeof(name));
	if (r < 0)
		return r;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	r = cs_read_file_at(dfd, name, sizeof(h) + MAX_INSNS * sizeof(struct sock_filter), &buf,
			    &len);
	if (r < 0)
		return r;
	if (len < sizeof(h))
		return -EBADMSG;
	memcpy(&h, buf, sizeof(h));
	if (memcmp(h.magic, CACHE_MAGIC, sizeof(h.magic)) != 0 || h.version != CACHE_VERSION ||
	    h.key != key.fwd || h.key_rev != key.rev || h.key_len != key.len || h.n_insns == 0 ||
	    h.n_insns > MAX_INSNS || len != sizeof(h) + h.n_insns * sizeof(struct sock_filter))
		return -EBADMSG;
	insns = malloc(h.n_insns * sizeof(struct sock_filter));
	if (!insns)
		return -ENOMEM;
	memcpy(insns, buf + sizeof(h), h.n_insns * sizeof(struct sock_filter));
	*ret_n = h.n_insns;
	*ret_insns = TAKE_PTR(insns);
	return 0;
}

static int cache_write(const char *dir, struct cache_key key, const struct sock_filter *insns,
		       size_t n)
{
	_cleanup_close_ int dfd = -EBADF;
	_cleanup_free_ char *buf = NULL;
	struct cache_header h = {.version = CACHE_VERSION,
				 .n_insns = (uint32_t) n,
				 .key = key.fwd,
				 .key_rev = key.rev,
				 .key_len = key.len};
	size_t len = sizeof(h) + n * sizeof(struct sock_filter);
	char name[32];
	int r;

	r = cs_mkdir_p(dir, 0700);
	if (r < 0)
		return r;
	r = cache_name(key.fwd, name, sizeof(name));
	if (r < 0)
		return r;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	memcpy(h.magic, CACHE_MAGIC, sizeof(h.magic));
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), insns, n * sizeof(struct sock_filter));
	return cs_write_file_atomic(dfd, name, buf, len, 0600);
}

/* ---------------------------------------------------------------- filter */

static int profile_flags(json_object *seccomp, unsigned int *ret)
{
	json_object *v;
	unsigned int flags = 0;

	if (json_object_object_get_ex(seccomp, "flags", &v) &&
	    json_object_is_type(v, json_type_array))
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			const struct shim_seccomp_name *f = shim_seccomp_name_lookup(
				shim_seccomp_flags, shim_seccomp_flags_count,
				json_object_get_string(json_object_array_get_idx(v, i)));
			if (!f)
				return -EINVAL;
			flags |= (unsigned int) f->value;
		}
	*ret = flags;
	return 0;
}

static bool profile_uses_notify(json_object *seccomp)
{
	json_object *sc, *v;

	if (!json_object_object_get_ex(seccomp, "syscalls", &sc) ||
	    !json_object_is_type(sc, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(sc); i++)
		if (json_object_object_get_ex(json_object_array_get_idx(sc, i), "action", &v) &&
		    json_object_is_type(v, json_type_string) &&
		    strcmp(json_object_get_string(v), "SCMP_ACT_NOTIFY") == 0)
			return true;
	return false;
}

static int dup_string_field(json_object *o, const char *key, char **ret)
{
	json_object *v;

	*ret = NULL;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return 0;
	*ret = strdup(json_object_get_string(v));
	return *ret ? 0 : -ENOMEM;
}

int shim_seccomp_prepare(json_object *seccomp, const char *cache_dir,
			 struct shim_seccomp_filter **ret)
{
	struct shim_seccomp_filter *f;
	struct cache_key key = {0};
	int r;

	last_error[0] = '\0';
	if (!seccomp || !json_object_is_type(seccomp, json_type_object))
		return -EINVAL;
	/* prepare relies on a validated profile; validate again cheaply so a
	 * caller mistake is an error and not a NULL dereference. */
	r = shim_seccomp_validate(seccomp, last_error, sizeof(last_error));
	if (r < 0)
		return r;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	r = profile_flags(seccomp, &f->flags);
	if (r < 0)
		goto fail;
	f->notify = profile_uses_notify(seccomp);
	r = dup_string_field(seccomp, "listenerPath", &f->listener_path);
	if (r < 0)
		goto fail;
	r = dup_string_field(seccomp, "listenerMetadata", &f->metadata);
	if (r < 0)
		goto fail;

	if (cache_dir) {
		key = cache_key(seccomp);
		if (cache_read(cache_dir, key, &f->insns, &f->n_insns) == 0) {
			*ret = f;
			return 0;
		}
	}
	r = compile(seccomp, &f->insns, &f->n_insns);
	if (r < 0)
		goto fail;
	/* A read-only or full cache directory only costs the next start a
	 * compilation; it is not a reason to fail this one. */
	if (cache_dir)
		(void) cache_write(cache_dir, key, f->insns, f->n_insns);
	*ret = f;
	return 0;
fail:
	shim_seccomp_filter_free(f);
	return r;
}

int shim_seccomp_install(const struct shim_seccomp_filter *f, int *ret_listener_fd)
{
	struct sock_fprog prog = {
		.len = (unsigned short) f->n_insns,
		.filter = f->insns,
	};
	unsigned long flags = f->flags;
	long r;

	if (f->notify) {
		if (!ret_listener_fd)
			return -EINVAL;
		flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
		/* TSYNC alone would return a thread id instead of the fd. */
		if (flags & SECCOMP_FILTER_FLAG_TSYNC)
			flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
	}
	r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	if (r < 0)
		return -errno;
	if (ret_listener_fd)
		*ret_listener_fd = f->notify ? (int) r : -1;
	return 0;
}

bool shim_seccomp_wants_listener(const struct shim_seccomp_filter *f)
{
	return f && f->notify;
}

const char *shim_seccomp_listener_path(const struct shim_seccomp_filter *f)
{
	return f ? f->listener_path : NULL;
}

size_t shim_seccomp_filter_size(const struct shim_seccomp_filter *f)
{
	return f ? f->n_insns : 0;
}

bool shim_seccomp_flag_supported(uint64_t flag)
{
	unsigned long flags = (unsigned long) flag;

	/* The kernel checks the flags before it reads the program: a known
	 * flag with no program is EFAULT, an unknown one EINVAL. */
	if (flags & SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
		flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, NULL) < 0 && errno == EFAULT;
}

unsigned shim_seccomp_compile_count(void)
{
	return compile_count;
}

/* ---------------------------------------------------------------- listener */

static int build_process_state(const struct shim_seccomp_filter *f, const char *state_json,
			       json_object **ret)
{
	json_object *state = json_tokener_parse(state_json);
	json_object *o, *v, *fds;

	if (!state || !json_object_is_type(state, json_type_object)) {
		json_object_put(state);
		return -EINVAL;
	}
	o = json_object_new_object();
	fds = json_object_new_array();
	if (!o || !fds) {
		json_object_put(state);
		json_object_put(o);
		json_object_put(fds);
		return -ENOMEM;
	}
	json_object_object_add(
		o, "ociVersion",
		json_object_new_string(json_object_object_get_ex(state, "ociVersion", &v)
					       ? json_object_get_string(v)
					       : "1.0.2"));
	json_object_array_add(fds, json_object_new_string("seccompFd"));
	json_object_object_add(o, "fds", fds);
	json_object_object_add(o, "pid",
			       json_object_new_int(json_object_object_get_ex(state, "pid", &v)
							   ? json_object_get_int(v)
							   : 0));
	if (f->metadata)
		json_object_object_add(o, "metadata", json_object_new_string(f->metadata));
	json_object_object_add(o, "state", state);
	*ret = o;
	return 0;
}

int shim_seccomp_send_listener(const struct shim_seccomp_filter *f, int listener_fd,
			       const char *state_json)
{
	_cleanup_close_ int sock = -EBADF;
	json_object *msg = NULL;
	int r;

	if (!f || !f->listener_path || listener_fd < 0 || !state_json)
		return -EINVAL;
	r = build_process_state(f, state_json, &msg);
	if (r < 0)
		return r;
	r = cs_unix_connect(f->listener_path, &sock);
	if (r >= 0) {
		const char *s = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN);
		r = cs_send_fd(sock, listener_fd, s, strlen(s));
	}
	json_object_put(msg);
	return r;
}

struct shim_seccomp_filter *shim_seccomp_filter_free(struct shim_seccomp_filter *f)
{
	if (!f)
		return NULL;
	free(f->insns);
	free(f->listener_path);
	free(f->metadata);
	free(f);
	return NULL;
}
