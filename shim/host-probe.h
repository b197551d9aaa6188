/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host probes for `stoke check`: what works on this machine, found by
 * trying it (a real dump and restore, a breakpoint that must fire, a ring
 * that must answer), not by reading version numbers. `stoke features`
 * says what stoke supports; these say what this host lets it do.
 *
 * Why trying: a paravirtualised host can accept x86 debug registers
 * through ptrace and never fire them; CRIU < 4.2 then hangs on every dump
 * while `criu check` says "Looks good".
 *
 * Every probe is bounded in time (a child that does not answer is killed
 * and reaped) and leaves nothing behind: no process, no temporary file.
 * Probes that might load CUDA do it in a child process: the runtime never
 * loads libcuda itself.
 *
 * Errors: a probe always fills its result; what went wrong is the result.
 * Thread-safety: single-threaded callers only (probes fork and wait for
 * their own children; the checkpoint probe arms the process-wide CRIU
 * deadline).
 */
#ifndef STOKE_SHIM_HOST_PROBE_H
#define STOKE_SHIM_HOST_PROBE_H

#include <limits.h>
#include <stdbool.h>

enum hp_state {
	HP_OK = 0,   /* works here */
	HP_UNUSABLE, /* present, or asked for, but does not work here */
	HP_FAILED,   /* needed by stoke and does not work: `stoke check` fails */
	HP_NA,	     /* does not apply to this machine (architecture) */
	HP_SKIPPED,  /* not probed (asked not to) */
};

struct hp_result {
	enum hp_state state;
	char value[32];	  /* the short answer: "ok", "unusable", a version, a layout */
	char detail[768]; /* why, or what was seen */
};

/* The criu binary to probe and use, and its version once known. */
struct hp_criu {
	char path[PATH_MAX]; /* "" when none was found */
	unsigned major, minor, patch;
	bool have_version;
};

/*! hp_state_name() : "ok", "unusable", "failed", "n/a" or "skipped". */
const char *hp_state_name(enum hp_state s);

/*! hp_probe_criu() :
 *  Find the criu binary (`criu_path`, else "criu" in PATH) and run
 *  `criu --version` (at most a few seconds). *ret_criu is always filled. */
struct hp_result hp_probe_criu(const char *criu_path, struct hp_criu *ret_criu);

/*! hp_probe_checkpoint_restore() :
 *  Dump a sleeping child of ours with `criu` and restore it, in a
 *  temporary directory, all of it within `timeout_s` seconds (the CRIU
 *  deadline: criu and everything it started is killed on expiry); the
 *  restored process must be alive. HP_FAILED with CRIU's reason otherwise. */
struct hp_result hp_probe_checkpoint_restore(const struct hp_criu *criu, unsigned timeout_s);

/*! hp_probe_hw_breakpoints() :
 *  Whether an x86 debug-register execute breakpoint set through ptrace
 *  fires in a child (within about a second). HP_NA elsewhere. */
struct hp_result hp_probe_hw_breakpoints(void);

/*! hp_probe_userfaultfd() :
 *  Whether userfaultfd(2) opens and offers the events CRIU's lazy restore
 *  asks for (fork, remap, unmap, remove); /dev/userfaultfd is tried to
 *  explain a refusal. */
struct hp_result hp_probe_userfaultfd(void);

/*! hp_probe_lazy_pages() :
 *  CRIU's lazy restore: the userfaultfd probe's verdict `uffd` and a criu
 *  that has --lazy-pages. */
struct hp_result hp_probe_lazy_pages(const struct hp_result *uffd, const struct hp_criu *criu);

/*! hp_probe_io_uring() :
 *  A small ring set up and one NOP submitted and completed; a refusal
 *  names kernel.io_uring_disabled when that is the cause. */
struct hp_result hp_probe_io_uring(void);

/*! hp_probe_cgroups() : the cgroup layout (v1, v2, hybrid). */
struct hp_result hp_probe_cgroups(void);

/*! hp_probe_user_namespaces() : whether a child can unshare a user namespace. */
struct hp_result hp_probe_user_namespaces(void);

/*! hp_probe_gpu() :
 *  Whether the CUDA driver opens (stoke_gpu_open()) and how many GPUs it
 *  sees, asked in a child process. */
struct hp_result hp_probe_gpu(void);

/*! hp_criu_hangs_here() :
 *  Whether `criu` is older than 4.2 on a host whose hardware breakpoints
 *  (`hwbp`, hp_probe_hw_breakpoints()) do not fire: such a CRIU waits
 *  forever in every dump. */
bool hp_criu_hangs_here(const struct hp_criu *criu, const struct hp_result *hwbp);

#endif
