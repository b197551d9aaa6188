/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal helpers shared by snapshot/'s CRIU and GPU drivers (not public).
 * Thread-safety: the error text is per thread.
 */
#ifndef STOKE_SNAPSHOT_CRIU_INTERNAL_H
#define STOKE_SNAPSHOT_CRIU_INTERNAL_H

/* Record the one-line explanation stoke_cr_error() returns. */
void cr_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cr_clear_error(void);

/* The record of CUDA processes and GPUs kept beside CRIU's images. */
#define STOKE_CR_GPU_RECORD "stoke-gpu.json"

#endif
