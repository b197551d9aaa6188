/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SHA-256 (FIPS 180-4), for the shim's socket name: containerd's convention
 * is hex(sha256(address "/" namespace "/" id)) under /run/containerd/s/.
 * Thread-safety: no shared state. Never fails.
 */
#ifndef STOKE_CTD_SHA256_H
#define STOKE_CTD_SHA256_H

#include <stddef.h>
#include <stdint.h>

/*! ctd_sha256() : digest of `len` bytes of `data` into `out`. */
void ctd_sha256(const void *data, size_t len, uint8_t out[32]);

/*! ctd_sha256_hex() : the digest as 64 lower-case hex digits and a NUL. */
void ctd_sha256_hex(const void *data, size_t len, char out[65]);

#endif
