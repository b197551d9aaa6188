/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stoke-loader: stream model weights (safetensors, sharded safetensors,
 * GGUF v3) from files into host memory or onto GPUs at the speed of the disk
 * (O_DIRECT through io_uring with registered buffers and files) or of memory
 * (buffered reads of what the page cache already holds).
 *
 * Typical use:
 *
 *   struct ldr_model *m;
 *   char err[512];
 *   const char *files[] = { "model.safetensors" };
 *   if (ldr_model_open(files, 1, &m, err, sizeof(err)) < 0) { puts(err); ... }
 *   struct ldr_load_options o = { .device = "cuda:0" };
 *   if (ldr_model_load(m, &o, NULL, err, sizeof(err)) < 0) { puts(err); ... }
 *   struct ldr_tensor_info ti;
 *   ldr_model_tensor(m, ldr_model_find(m, "lm_head.weight"), &ti);  // ti.dptr
 *   ldr_model_unref(m);
 *
 * Conventions (for every function below):
 *   - Errors: functions returning int give 0 (or a non-negative value where
 *     documented) on success and -errno on failure; ret_* out-parameters are
 *     written only on success. Functions taking `err`/`errlen` also write one
 *     sentence naming the file (and tensor) and the reason into `err` (which
 *     may be NULL) on failure. Nothing is ever printed.
 *   - Thread-safety: a model is not internally locked. Concurrent read-only
 *     calls (ldr_model_n_tensors, ldr_model_tensor, ldr_model_find,
 *     ldr_model_copy_to_host) on a loaded model are safe; ldr_model_load and
 *     the last ldr_model_unref must not run concurrently with anything else
 *     on the same model. Different models are independent. The library starts
 *     threads inside ldr_model_load (and joins them before returning) and
 *     never forks.
 *   - GPU: libcuda.so.1 is loaded at run time on the first load that places a
 *     tensor on a GPU; every entry point is resolved through cuGetProcAddress.
 *     Tensors on a GPU are in the device's primary context.
 */
#ifndef STOKE_LOADER_H
#define STOKE_LOADER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LDR_MAX_DIMS 8

struct ldr_model;

/*! ldr_model_open() :
 *  Parse and validate `n_paths` files into a new model. Each path is a
 *  .safetensors file, a GGUF file (recognised by its magic), or a
 *  model.safetensors.index.json (its shards, named in "weight_map" and
 *  resolved beside it, are opened and every mapping is checked). Tensor
 *  names must be unique across all files.
 *  Nothing is read beyond the headers; the files are not kept open.
 *  Ownership: *ret_model holds one reference; release it with
 *  ldr_model_unref(). `paths` is not retained.
 *  Thread-safety: safe from any thread.
 * @return : 0; -ENOENT/-EACCES/... opening a file; -EBADMSG invalid content;
 *           -ENOMEM; -EINVAL no paths. */
int ldr_model_open(const char *const *paths, size_t n_paths, struct ldr_model **ret_model,
		   char *err, size_t errlen);

/*! ldr_model_ref() / ldr_model_unref() :
 *  Take / drop a reference. The last unref frees host regions and device
 *  allocations and everything ldr_model_tensor() returned. Both accept NULL.
 *  ldr_model_unref() returns NULL (for `m = ldr_model_unref(m);`).
 *  Thread-safety: the count is atomic (a DLPack deleter may run on any
 *  thread); the last unref must not race with other use of the model. */
struct ldr_model *ldr_model_ref(struct ldr_model *m);
struct ldr_model *ldr_model_unref(struct ldr_model *m);

/*! ldr_model_n_tensors() : number of tensors (across all files). */
size_t ldr_model_n_tensors(const struct ldr_model *m);

struct ldr_tensor_info {
	const char *name;  /* borrowed from the model */
	const char *dtype; /* the file's dtype name ("BF16", "Q4_K"); borrowed */
	uint32_t n_dims;
	const uint64_t *shape; /* n_dims entries, outermost first; borrowed */
	uint64_t size;	       /* bytes */
	const char *file;      /* path of the file holding it; borrowed */
	uint64_t file_offset;  /* absolute offset of its first byte in `file` */
	int device;	       /* after load: -1 host, else CUDA ordinal */
	void *host;	       /* after load to host: its bytes; else NULL */
	uint64_t dptr;	       /* after load to a GPU: CUdeviceptr; else 0 */
};

/*! ldr_model_tensor() :
 *  Describe tensor `index` (0 .. n_tensors-1; tensors are sorted by name).
 *  Pointers in *ret stay valid until the model's last unref.
 * @return : 0, or -ERANGE for a bad index. */
int ldr_model_tensor(const struct ldr_model *m, size_t index, struct ldr_tensor_info *ret);

/*! ldr_model_find() : index of the tensor named `name`, or -ENOENT. */
long ldr_model_find(const struct ldr_model *m, const char *name);

enum ldr_load_flags {
	/* Use the pread workers instead of io_uring. */
	LDR_LOAD_NO_URING = 1u << 0,
	/* Never use O_DIRECT (every read goes through the page cache). */
	LDR_LOAD_NO_DIRECT = 1u << 1,
	/* Use O_DIRECT even for ranges the page cache holds (where allowed). */
	LDR_LOAD_ALWAYS_DIRECT = 1u << 2,
	/* Host tensors: map the file (MAP_PRIVATE) and fill the page cache
	 * (readahead, then MADV_POPULATE_READ) instead of copying into
	 * anonymous memory: no zeroing and no copy, so a cached file "loads"
	 * at page-table speed. The price is mmap's semantics (what
	 * safetensors and llama.cpp accept): tensors are copy-on-write views
	 * of the file, so a later change to the file shows through unwritten
	 * pages, truncating it makes access fault (SIGBUS), and clean pages
	 * may be dropped under memory pressure and read again. Ignored for
	 * loads that place tensors on a GPU. */
	LDR_LOAD_MAP = 1u << 3,
	/* Host tensors: always copy into private anonymous memory. Without it,
	 * a host-only load whose files' tensor data the page cache holds
	 * (at least 90% of its pages) is mapped as with LDR_LOAD_MAP
	 * (stats.mapped says so; the mapping reads the rest in):
	 * materialising fresh private memory costs more than the copy itself
	 * (on the VMs measured, 1.3 GB/s against 3.4 GB/s for `cat`), and a
	 * cached file is what a restarted server loads. Cold or partly cached
	 * files, and loads asking for a read mode (NO_URING, NO_DIRECT,
	 * ALWAYS_DIRECT), are read into private memory. */
	LDR_LOAD_COPY = 1u << 4,
};

struct ldr_load_options {
	/* Default destination: "cpu" (or NULL) or "cuda:N". */
	const char *device;
	/* Optional placement rules, "PATTERN=DEVICE[,PATTERN=DEVICE...]":
	 * fnmatch(3) patterns over tensor names, first match wins, tensors
	 * matching none go to `device`. Example: "*.layers.1?.*=cuda:1". */
	const char *placement;
	unsigned flags;	      /* enum ldr_load_flags */
	unsigned queue_depth; /* reads in flight per worker; 0: default (measured) */
	size_t request_size;  /* bytes per read, multiple of 4 KiB; 0: default */
	unsigned n_workers;   /* reader threads; 0: default */
};

struct ldr_load_stats {
	uint64_t bytes;		 /* tensor bytes delivered */
	uint64_t bytes_read;	 /* bytes read from files (aligned superset) */
	uint64_t bytes_direct;	 /* of which with O_DIRECT */
	uint64_t bytes_buffered; /* of which through the page cache */
	uint64_t plan_ns;	 /* residency probe, allocation, registration */
	uint64_t read_ns;	 /* reads and copies until the last byte landed */
	uint64_t total_ns;	 /* the whole ldr_model_load() call */
	const char *backend;	 /* "io_uring" or "pread" (static string) */
	unsigned queue_depth;
	size_t request_size;
	unsigned n_workers;
	int uring_fallback_error; /* -errno io_uring was refused with, or 0 */
	int fixed_buffers;	  /* whether registered buffers were used */
	int mapped;		  /* host tensors map the files (LDR_LOAD_MAP, or mostly cached) */
	int huge_pages;		  /* host tensors in 2 MiB pages (where `stoke check` measured
				   * them cheaper here, or STOKE_LOAD_PAGES=2m) */
};

/*! ldr_model_load() :
 *  Read every tensor into its destination: host memory (an anonymous
 *  mapping per file, owned by the model) or device memory of the GPU its
 *  placement names (one cuMemAlloc per device, owned by the model). Ranges
 *  the page cache holds are read buffered, the rest with O_DIRECT where the
 *  filesystem allows. When io_uring is refused (seccomp, io_uring_disabled,
 *  memlock) the pread workers are used instead and
 *  stats.uring_fallback_error says why. A model loads once (-EALREADY after).
 *  `opts` may be NULL (all defaults, host memory); `ret_stats` may be NULL.
 *  On failure everything allocated by the call is released.
 * @return : 0; -EALREADY; -EINVAL bad option or placement; -ENODEV a GPU
 *           was asked for but libcuda or the device is missing; -ENOMEM;
 *           -EIO or another -errno from a read; -EBADMSG a file changed
 *           (shorter than its header says). */
int ldr_model_load(struct ldr_model *m, const struct ldr_load_options *opts,
		   struct ldr_load_stats *ret_stats, char *err, size_t errlen);

/*! ldr_model_copy_to_host() :
 *  Copy `len` bytes of loaded tensor `index`, from byte `offset`, into `dst`
 *  (reads device memory back for GPU tensors, synchronously).
 * @return : 0; -ERANGE bad index or range; -ENODATA not loaded; -EIO. */
int ldr_model_copy_to_host(struct ldr_model *m, size_t index, uint64_t offset, void *dst,
			   size_t len);

/*! ldr_model_dlpack() :
 *  A new DLManagedTensor (DLPack ABI 0.8: struct DLManagedTensor*) for
 *  loaded tensor `index`, holding a reference on the model that its deleter
 *  drops. Device is kDLCPU or kDLCUDA with the tensor's ordinal. Sub-byte
 *  and FP8 dtypes and GGUF quantized types are exported as uint8 of their
 *  byte size. Ownership: the caller owns the result and must call its
 *  deleter exactly once (a DLPack consumer such as torch.from_dlpack does).
 * @return : 0; -ERANGE; -ENODATA not loaded; -ENOMEM. */
int ldr_model_dlpack(struct ldr_model *m, size_t index, void **ret_managed_tensor);

#ifdef __cplusplus
}
#endif

#endif
