/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stoke-checkpoint.h: checkpoint and restore of a process tree with its GPU
 * memory (the public API of snapshot/'s CRIU driver and GPU driver).
 *
 * Three layers, each usable on its own:
 *
 *   stoke_criu_*()  CRIU 4 through libcriu (one criu swrk per call). Every
 *                   call builds its own libcriu option set, so nothing leaks
 *                   from one call into the next (libcriu's global options
 *                   are never used).
 *   stoke_gpu_*()   the CUDA driver's checkpoint API (cuCheckpointProcess*),
 *                   libcuda.so.1 dlopened and every entry point resolved
 *                   through cuGetProcAddress. Never linked.
 *   stoke_cr_*()    the sequence a container needs: find the CUDA processes
 *                   of the tree, lock and checkpoint their GPU state, dump
 *                   with CRIU, and back (restore one process at a time).
 *
 * Errors: every int function returns 0 (or a pid) on success and -errno on
 * failure. The library never logs above debug level; after a failure,
 * stoke_cr_error() returns a one-line explanation (for example the error line
 * of CRIU's log and the log's path) for the command layer to print.
 *
 * Thread-safety: none of these functions may run concurrently in one
 * process (CRIU restore makes the restored tree a child of the caller, and
 * libcuda's checkpoint calls on one job must be sequential). The error text
 * is per thread.
 */
#ifndef STOKE_CHECKPOINT_H
#define STOKE_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* CRIU's --manage-cgroups-mode (runc's names). */
enum stoke_cr_cgroup_mode {
	STOKE_CR_CG_DEFAULT = 0, /* let CRIU decide (soft) */
	STOKE_CR_CG_SOFT,
	STOKE_CR_CG_FULL,
	STOKE_CR_CG_STRICT,
	STOKE_CR_CG_IGNORE,
};

/*! stoke_cr_cgroup_mode_from_string() :
 *  Parse "soft", "full", "strict" or "ignore".
 * @return : 0, or -EINVAL for any other string. */
int stoke_cr_cgroup_mode_from_string(const char *s, enum stoke_cr_cgroup_mode *ret_mode);

/* A bind mount declared external. On dump, `key` names the mount and `path`
 * is its mount point inside the tree's mount namespace; on restore, `key` is
 * the same name and `path` is the host path to bind there. */
struct stoke_cr_ext_mount {
	const char *key;
	const char *path;
};

/* An fd of the caller handed to the restored tree in place of the file the
 * dump recorded under `key` (for example "pipe:[123456]"), like criu
 * --inherit-fd fd[N]:KEY. The fd must stay open until restore returns; the
 * driver clears its close-on-exec flag for criu and sets it back. */
struct stoke_cr_inherit_fd {
	int fd;
	const char *key;
};

struct stoke_cr_options {
	const char *images_dir; /* required: CRIU's image directory (created on dump) */
	const char *work_dir;	/* logs; NULL: images_dir. Created if missing. */
	const char *log_name;	/* file in work_dir; NULL: "dump.log" / "restore.log" */
	const char *criu_path;	/* the criu binary; NULL: "criu" from PATH */
	const char *root;	/* restore: the rootfs mount point of the new tree */

	const struct stoke_cr_ext_mount *ext_mounts; /* not owned */
	size_t n_ext_mounts;
	const struct stoke_cr_inherit_fd *inherit_fds; /* restore only; not owned */
	size_t n_inherit_fds;
	const char *const *externals; /* NULL-terminated criu --external values; not owned */

	bool leave_running;	/* dump: the tree keeps running afterwards */
	bool tcp_established;	/* established TCP connections */
	bool ext_unix_sk;	/* external unix sockets */
	bool shell_job;		/* tree attached to a session/terminal outside it */
	bool file_locks;	/* file locks */
	bool skip_network_lock; /* do not lock the network namespace (iptables) */
	enum stoke_cr_cgroup_mode cgroup_mode;
	const char *cgroup_root;   /* restore: put the tree's cgroups under this path (cg root) */
	const char *freeze_cgroup; /* dump: freeze the tree with this cgroup's freezer */
	bool leave_stopped;	   /* restore: the tree stays stopped (SIGSTOP) afterwards */
	bool stream;		   /* restore: images come from an image streamer in images_dir
				    * (stoke_cr_streamer_start()), not from files */
	bool lazy_pages;	   /* restore: the pages the pagemap marks lazy are left to a
				    * userfaultfd server listening on lazy-pages.socket in
				    * the work directory (CRIU's --lazy-pages protocol) */
	const char *config_file;   /* extra criu options (criu's config file syntax), e.g.
				    * "stream" or "lazy-pages"; not owned */
	/* restore: called in the calling thread once CRIU has set up the tree's
	 * namespaces and before it reads any page, so that pages images may
	 * still be being written when the restore starts; non-zero aborts the
	 * restore. Only for trees with a mount namespace of their own: CRIU
	 * skips that step for others, so the call would never come. Not with
	 * stream (ignored there). */
	int (*before_pages)(void *userdata);
	void *before_pages_data;
	unsigned int timeout_s; /* criu's own --timeout (task freezing); 0: criu's default */
	/* Wall-clock limit of the whole CRIU call, in seconds; 0: none of its
	 * own (an armed stoke_cr_deadline_arm() still applies). On expiry CRIU
	 * and every process it started are killed and the call fails with
	 * -ETIMEDOUT; stoke_cr_error() then names the phase and quotes the last
	 * lines of CRIU's log. */
	unsigned int deadline_s;
	int log_level;		/* 0: 4 (debug: criu's logs are how failures are explained) */
};

/*! stoke_criu_dump() :
 *  Dump the process tree rooted at `pid` into o->images_dir with o's
 *  options. Without o->leave_running the tree is killed by CRIU once dumped.
 *  On failure the tree is left running, as it was (CRIU resumes it).
 * @return : 0; -ENOENT (no criu binary or no such pid); -EINVAL (bad
 *           options); -EIO (criu failed: stoke_cr_error() holds the reason
 *           and the log path); another -errno from setup. */
int stoke_criu_dump(pid_t pid, const struct stoke_cr_options *o);

/*! stoke_criu_restore() :
 *  Restore the tree in o->images_dir as a child of the calling process
 *  (criu's restore-sibling mode), running. A failed restore leaves no
 *  process of the tree behind (CRIU kills what it created).
 * @return : the pid of the restored tree's root (> 0), or -errno as for
 *           stoke_criu_dump(). */
int stoke_criu_restore(const struct stoke_cr_options *o);

/*! stoke_cr_error() : one line explaining the last failure in this thread, or "". */
const char *stoke_cr_error(void);

/* --- Deadlines ----------------------------------------------------------
 *
 * One process-wide deadline around a whole checkpoint or restore (CRIU can
 * wait forever: CRIU < 4.2 on hosts whose hardware breakpoints never fire,
 * a lazy-pages or streaming peer that never answers). When it expires, a
 * signal handler in the calling thread stops and then SIGKILLs every
 * descendant of the process (CRIU, its helpers, a half-restored tree, page
 * server processes), so whatever the thread was waiting on returns with an
 * error; blocking calls in that thread are interrupted (EINTR). The caller
 * then undoes what it did (thaw, remove the container, drop temp files).
 *
 * Thread-safety: one deadline per process; arm and disarm from the thread
 * that runs the operation (the one the signal is directed at). */

#define STOKE_CR_DEFAULT_DEADLINE_S 300

/*! stoke_cr_deadline_arm() :
 *  Start a deadline of `seconds` (> 0) for the operation `what` (e.g.
 *  "checkpoint", "restore"; not copied: must outlive the deadline). A
 *  deadline already armed stays as it is (nested arms are no-ops that
 *  return 0 and set *ret_nested).
 * @return : 0, or -errno (timer creation failed). */
int stoke_cr_deadline_arm(unsigned int seconds, const char *what, bool *ret_nested);

/*! stoke_cr_deadline_phase() :
 *  Name the phase now running (a string literal), reported on expiry. */
void stoke_cr_deadline_phase(const char *phase);

/*! stoke_cr_deadline_expired() : whether the armed deadline has expired. */
bool stoke_cr_deadline_expired(void);

/*! stoke_cr_deadline_describe() :
 *  "checkpoint timed out after 5 s in phase \"criu dump\"" into buf. */
void stoke_cr_deadline_describe(char *buf, size_t len);

/*! stoke_cr_deadline_disarm() :
 *  Stop the deadline (no-op when none is armed). The expired state stays
 *  readable until the next arm. */
void stoke_cr_deadline_disarm(void);

/* --- GPU (CUDA checkpoint API) ------------------------------------------ */

struct stoke_gpu;

/*! stoke_gpu_open() :
 *  dlopen libcuda.so.1, resolve the entry points through cuGetProcAddress
 *  and cuInit(0) (the driver needs an initialised caller to restore).
 *  *ret_gpu is owned by the caller (stoke_gpu_close()).
 * @return : 0; -ENOENT (no libcuda); -ENOSYS (driver without the checkpoint
 *           API, before r570); -ENODEV (cuInit failed: no usable device). */
int stoke_gpu_open(struct stoke_gpu **ret_gpu);

/*! stoke_gpu_close() : release `gpu` (NULL is fine). @return : NULL. */
struct stoke_gpu *stoke_gpu_close(struct stoke_gpu *gpu);

/* The driver's per-process state (CUprocessState), or NONE for a process
 * that holds no CUDA context. */
enum stoke_gpu_state {
	STOKE_GPU_NONE = -1,
	STOKE_GPU_RUNNING = 0,
	STOKE_GPU_LOCKED,
	STOKE_GPU_CHECKPOINTED,
	STOKE_GPU_FAILED,
};

/*! stoke_gpu_get_state() :
 *  The checkpoint state of `pid`; STOKE_GPU_NONE when the driver says the
 *  process has no CUDA state (not found / not supported).
 * @return : 0, or -EIO for any other driver error. */
int stoke_gpu_get_state(struct stoke_gpu *gpu, pid_t pid, enum stoke_gpu_state *ret_state);

/*! stoke_gpu_checkpoint() :
 *  Lock `pid` (waiting at most `lock_timeout_ms`, 0 = no limit) then move its
 *  GPU memory to host memory. If the checkpoint step fails the process is
 *  unlocked again, so it keeps running.
 * @return : 0; -ETIMEDOUT (lock timed out, process still running); -EBUSY
 *           (wrong state); -EIO (other driver error, stoke_cr_error()). */
int stoke_gpu_checkpoint(struct stoke_gpu *gpu, pid_t pid, unsigned int lock_timeout_ms);

/*! stoke_gpu_restore() :
 *  Bring `pid`'s GPU memory back (every GPU of this machine in the GPU map,
 *  old UUIDs from `old_uuids` when not NULL, n_old entries of 16 bytes,
 *  else the same GPUs) and unlock it.
 * @return : 0; -ENOMEM (not enough device memory: the process stays
 *           checkpointed and can only be killed); -EBUSY (wrong state);
 *           -EXDEV (GPU count differs from the checkpoint's); -EIO. */
int stoke_gpu_restore(struct stoke_gpu *gpu, pid_t pid, const uint8_t (*old_uuids)[16],
		      size_t n_old);

/*! stoke_gpu_uuids() :
 *  The UUIDs of every GPU the driver sees, in ordinal order, into a new
 *  array *ret (caller frees) of *ret_n entries.
 * @return : 0 or -errno. */
int stoke_gpu_uuids(struct stoke_gpu *gpu, uint8_t (**ret)[16], size_t *ret_n);

/* --- Image streaming (restore straight from a snapshot file) ------------ */

struct snap_stats;
struct stoke_cr_streamer;

/*! stoke_cr_streamer_start() :
 *  Serve the entries of the snapshot file `snapshot` to a CRIU restore run
 *  with o->stream and o->images_dir = `images_dir` (an existing directory
 *  where the socket streamer-serve.sock is created), through CRIU's image
 *  streamer protocol: no image is written to disk or tmpfs. Each file CRIU
 *  opens is decompressed and written into its pipe by a thread of its own.
 *  *ret is owned by the caller: stoke_cr_streamer_stop() it after the
 *  restore, whether the restore worked or not.
 * @return : 0 or -errno. */
int stoke_cr_streamer_start(const char *snapshot, const char *images_dir,
			    struct stoke_cr_streamer **ret);

/*! stoke_cr_streamer_stop() :
 *  Wait for every file to be served, remove the socket and free `s` (NULL
 *  is fine). `ret_stats` (may be NULL) gets the readers' counters summed.
 * @return : 0, or the first error met while serving (-EBADMSG: damaged
 *           snapshot or protocol error). */
int stoke_cr_streamer_stop(struct stoke_cr_streamer *s, struct snap_stats *ret_stats);

/* --- Whole sequence ------------------------------------------------------ */

/* Phase timings of one checkpoint or restore, in nanoseconds. read and
 * decompress are filled by callers that stage images from a snapshot file. */
struct stoke_cr_stats {
	uint64_t read_ns;
	uint64_t decompress_ns;
	uint64_t criu_ns;
	uint64_t gpu_ns;
	uint64_t total_ns;
	unsigned int n_processes;     /* processes in the tree */
	unsigned int n_gpu_processes; /* of which held CUDA state */
};

/*! stoke_cr_list_tree() :
 *  The pids of the tree rooted at `pid` (root first, then descendants) in a
 *  new array *ret_pids (caller frees) of *ret_n entries, from
 *  /proc/PID/task/TID/children.
 * @return : 0, -ESRCH (no such pid) or -errno. */
int stoke_cr_list_tree(pid_t pid, pid_t **ret_pids, size_t *ret_n);

/*! stoke_cr_checkpoint() :
 *  Checkpoint the tree rooted at `pid`: each CUDA process is locked (timeout
 *  `lock_timeout_ms`) and checkpointed, the GPU map and CUDA pids are
 *  recorded in images_dir/stoke-gpu.json, then CRIU dumps the tree. With
 *  leave_running the CUDA processes are restored and unlocked afterwards.
 *  On any failure the tree is left running as before (GPU state restored).
 *  A tree with a CUDA process but no usable libcuda is refused (-ENODEV)
 *  before anything is touched; a tree without CUDA never loads libcuda's
 *  checkpoint API beyond probing (libcuda absent is fine).
 *  `ret_stats` may be NULL.
 * @return : 0 or -errno (stoke_cr_error() explains). */
int stoke_cr_checkpoint(pid_t pid, const struct stoke_cr_options *o, unsigned int lock_timeout_ms,
			struct stoke_cr_stats *ret_stats);

/*! stoke_cr_restore() :
 *  CRIU-restore the tree of o->images_dir as a child of the caller, then
 *  restore and unlock its CUDA processes one at a time. With leave_stopped
 *  the tree ends stopped; CUDA processes need to run for the driver to
 *  restore them, so a tree holding any is continued for the GPU step and
 *  stopped again right after. On failure nothing
 *  of the tree is left running (the restored tree is killed and reaped).
 *  `ret_stats` may be NULL (criu_ns and gpu_ns are filled).
 * @return : the root pid (> 0), or -errno (stoke_cr_error() explains). */
int stoke_cr_restore(const struct stoke_cr_options *o, struct stoke_cr_stats *ret_stats);

/*! stoke_cr_images_need_gpu() :
 *  Whether the images in `images_dir` hold CUDA processes (stoke-gpu.json).
 * @return : 1, 0, or -errno when the record is unreadable. */
int stoke_cr_images_need_gpu(const char *images_dir);

#endif
