/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Seccomp: validate an OCI linux.seccomp profile, compile it to classic BPF
 * once (libseccomp, in the parent, before clone) with an on-disk cache, and
 * install it in the child with raw seccomp(2).
 *
 * Semantics follow runc: unknown syscall names are skipped; SCMP_ACT_ERRNO
 * and SCMP_ACT_TRACE use errnoRet (default EPERM); rules whose action equals
 * the default action are dropped; several args[] entries for the same index
 * become separate rules (OR), otherwise all args of an entry are ANDed;
 * SCMP_CMP_MASKED_EQ takes value as the mask and valueTwo as the datum;
 * unless the default action is permissive (ALLOW, LOG, TRACE) or already
 * ERRNO(ENOSYS), syscalls numbered above every syscall the profile names
 * (per architecture) fail with ENOSYS, so a libc falls back from calls
 * newer than the profile (clone3, faccessat2, ...).
 *
 * Cache: <cache_dir>/<16 hex digits>.bpf, keyed by FNV-1a 64 over the
 * profile's canonical JSON, the libseccomp version, uname release and
 * machine, and the stoke version. The file has a magic, a format version,
 * the key and a checked length; a damaged file is ignored and rewritten.
 *
 * Errors: 0 on success, -errno on failure; ret_* written only on success.
 * Ownership: a struct shim_seccomp_filter belongs to the caller of
 * shim_seccomp_prepare() and is released with shim_seccomp_filter_free().
 * Thread-safety: none needed (single-threaded runtime); the compile counter
 * is a plain global.
 */
#ifndef STOKE_SHIM_SECCOMP_H
#define STOKE_SHIM_SECCOMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

struct shim_seccomp_filter;

/*! shim_seccomp_validate() :
 *  Check a linux.seccomp object (NULL: nothing to check) without compiling
 *  it: defaultAction, defaultErrnoRet, architectures, flags, listenerPath
 *  (absolute, required when an action is SCMP_ACT_NOTIFY), listenerMetadata,
 *  syscalls[].names/action/errnoRet/args[].index (0-5)/value/valueTwo/op.
 *  Writes a message naming the field into `err`
 *  ("linux.seccomp.syscalls[3].args[0].op: unknown operator \"SCMP_CMP_XX\"").
 * @return : 0, or -EINVAL. */
int shim_seccomp_validate(json_object *seccomp, char *err, size_t errlen);

/*! shim_seccomp_prepare() :
 *  Produce the BPF program for `seccomp` (already validated): read from the
 *  cache when present, else compile with libseccomp (seccomp_export_bpf into
 *  a memfd) and store it atomically in the cache. `cache_dir` NULL disables
 *  the cache; a cache directory that cannot be written is not an error (the
 *  filter is still returned). *ret is owned by the caller.
 * @return : 0, -EINVAL (libseccomp refused the profile), -ENOMEM, or -errno. */
int shim_seccomp_prepare(json_object *seccomp, const char *cache_dir,
			 struct shim_seccomp_filter **ret);

/*! shim_seccomp_last_error() :
 *  Why the last shim_seccomp_prepare() failed, naming the field
 *  ("linux.seccomp.syscalls[4]: libseccomp refused the rule for \"open\": ..."),
 *  or "". Process-global static buffer, overwritten by the next prepare. */
const char *shim_seccomp_last_error(void);

/*! shim_seccomp_install() :
 *  In the container's process, after clone and before exec: install the
 *  filter with seccomp(SECCOMP_SET_MODE_FILTER) and the profile's flags
 *  (plus SECCOMP_FILTER_FLAG_NEW_LISTENER when the profile uses
 *  SCMP_ACT_NOTIFY). No allocation and no libseccomp call: safe after
 *  clone/vfork. The caller must have set no_new_privs or hold CAP_SYS_ADMIN.
 *  `ret_listener_fd` may be NULL only when the profile has no notify rule;
 *  it gets the listener fd (O_CLOEXEC) or -1 when there is none.
 * @return : 0, or -errno from seccomp(2). */
int shim_seccomp_install(const struct shim_seccomp_filter *f, int *ret_listener_fd);

/*! shim_seccomp_wants_listener() : whether the profile uses SCMP_ACT_NOTIFY. */
bool shim_seccomp_wants_listener(const struct shim_seccomp_filter *f);

/*! shim_seccomp_listener_path() : the profile's listenerPath, or NULL. Borrowed. */
const char *shim_seccomp_listener_path(const struct shim_seccomp_filter *f);

/*! shim_seccomp_send_listener() :
 *  In the runtime (parent): connect to the profile's listenerPath (a unix
 *  stream socket) and send `listener_fd` with SCM_RIGHTS together with the
 *  runtime-spec containerProcessState JSON {"ociVersion","fds":["seccompFd"],
 *  "pid","metadata" (listenerMetadata),"state"}. `state_json` is the
 *  container's state document (as `stoke state` prints it); its "pid" and
 *  "ociVersion" are used. Does not close `listener_fd`.
 * @return : 0, -EINVAL (no listenerPath / bad state JSON), or -errno of
 *           connect/sendmsg. */
int shim_seccomp_send_listener(const struct shim_seccomp_filter *f, int listener_fd,
			       const char *state_json);

/*! shim_seccomp_filter_size() : number of BPF instructions (for logs and tests). */
size_t shim_seccomp_filter_size(const struct shim_seccomp_filter *f);

/*! shim_seccomp_flag_supported() :
 *  Whether the running kernel accepts SECCOMP_FILTER_FLAG_* `flag` (a value
 *  from shim_seccomp_flags[]), for `stoke features` "supportedFlags".
 *  Probes seccomp(2) without installing anything. */
bool shim_seccomp_flag_supported(uint64_t flag);

/*! shim_seccomp_compile_count() :
 *  How many times this process ran the libseccomp compiler (tests use it to
 *  see that a cached profile is not compiled again). */
unsigned shim_seccomp_compile_count(void);

/*! shim_seccomp_filter_free() : release `f` (NULL is fine). @return : NULL. */
struct shim_seccomp_filter *shim_seccomp_filter_free(struct shim_seccomp_filter *f);

static inline void shim_seccomp_filter_freep(struct shim_seccomp_filter **p)
{
	shim_seccomp_filter_free(*p);
}

#endif

/* libseccomp's header has the same name. The shim's source directory is on
 * its include path, so `#include <seccomp.h>` anywhere in shim/ lands here
 * first: hand it on to libseccomp's header, so both APIs are visible either
 * way. (Outside the include guard: a second pass through this file, found
 * through another include directory, passes it on too and then stops.) */
#include_next <seccomp.h>
