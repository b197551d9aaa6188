/* SPDX-License-Identifier: Apache-2.0 */
/*
 * On-disk layout of a snapshot file (version 1), see FORMAT.md:
 *
 *   header (64 bytes) | chunk payloads, back to back | index | footer (64 bytes)
 *
 * Every integer is little-endian and every struct has a fixed size checked at
 * compile time; readers convert with le*toh() on each field access.
 * Internal header: used by the writer, the reader and the tests that forge
 * damaged files.
 */
#ifndef STOKE_SNAPSHOT_FORMAT_H
#define STOKE_SNAPSHOT_FORMAT_H

#include <stdint.h>

#define SNAP_HEADER_MAGIC "STOKESNP"
#define SNAP_FOOTER_MAGIC "STOKEEND"
#define SNAP_INDEX_MAGIC  "STOKEIDX"
#define SNAP_MAGIC_LEN	  8

/* A new major is incompatible (readers refuse it); a new minor only adds
 * meaning to fields that older readers may ignore. */
#define SNAP_FORMAT_MAJOR 1
#define SNAP_FORMAT_MINOR 0

struct snap_disk_header {
	uint8_t magic[SNAP_MAGIC_LEN]; /* SNAP_HEADER_MAGIC */
	uint16_t major;
	uint16_t minor;
	uint32_t flags;	      /* none defined: non-zero is refused */
	uint32_t chunk_size;  /* power of two, SNAP_MIN..SNAP_MAX_CHUNK_SIZE */
	uint8_t reserved[36]; /* zero */
	uint64_t checksum;    /* XXH3-64 of the 56 bytes above */
};
_Static_assert(sizeof(struct snap_disk_header) == 64, "on-disk ABI");

struct snap_disk_footer {
	uint64_t index_offset;	 /* == file size - 64 - index_length */
	uint64_t index_length;	 /* bytes */
	uint64_t file_size;	 /* whole file, footer included: catches truncation */
	uint64_t index_checksum; /* XXH3-64 of the index bytes */
	uint16_t major;		 /* copy of the header's */
	uint16_t minor;
	uint32_t reserved0;
	uint64_t reserved1;
	uint8_t magic[SNAP_MAGIC_LEN]; /* SNAP_FOOTER_MAGIC */
	uint64_t checksum;	       /* XXH3-64 of the 56 bytes above */
};
_Static_assert(sizeof(struct snap_disk_footer) == 64, "on-disk ABI");

/* The index: this header, the entry table, the chunk table, the name bytes. */
struct snap_disk_index {
	uint8_t magic[SNAP_MAGIC_LEN]; /* SNAP_INDEX_MAGIC */
	uint64_t entry_count;
	uint64_t chunk_count;
	uint64_t names_length;
};
_Static_assert(sizeof(struct snap_disk_index) == 32, "on-disk ABI");

struct snap_disk_entry {
	uint64_t size;	      /* uncompressed bytes */
	uint64_t first_chunk; /* == sum of the chunk counts of the entries before */
	uint64_t name_offset; /* into the name bytes */
	uint64_t mtime_ns;
	uint32_t name_length; /* 1..SNAP_NAME_MAX, no NUL inside */
	uint32_t mode;	      /* permission bits only (07777) */
	uint16_t kind;	      /* enum snap_kind */
	uint16_t flags;	      /* none defined: zero */
	uint32_t chunk_count; /* == ceil(size / chunk_size) */
};
_Static_assert(sizeof(struct snap_disk_entry) == 48, "on-disk ABI");

enum snap_chunk_type {
	SNAP_CHUNK_ZSTD = 1, /* one zstd frame, stored_length < raw_length */
	SNAP_CHUNK_RAW = 2,  /* stored as is, stored_length == raw_length */
	SNAP_CHUNK_HOLE = 3, /* all zero, nothing stored: offset, lengths, checksum zero */
};

struct snap_disk_chunk {
	uint64_t offset;	/* file offset of the stored bytes */
	uint32_t stored_length; /* bytes in the file */
	uint32_t raw_length;	/* chunk_size, or less for an entry's last chunk */
	uint64_t checksum;	/* XXH3-64 of the stored bytes */
	uint8_t type;		/* enum snap_chunk_type */
	uint8_t reserved[7];	/* zero */
};
_Static_assert(sizeof(struct snap_disk_chunk) == 32, "on-disk ABI");

#define SNAP_HEADER_SIZE ((uint64_t) sizeof(struct snap_disk_header))
#define SNAP_FOOTER_SIZE ((uint64_t) sizeof(struct snap_disk_footer))

/* Sanity limits a reader enforces before allocating anything. */
#define SNAP_MAX_ENTRIES      (UINT64_C(1) << 24)
#define SNAP_MAX_INDEX_LENGTH (UINT64_C(1) << 30)
#define SNAP_MAX_ENTRY_SIZE   (UINT64_C(1) << 50)

#endif
