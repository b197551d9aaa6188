/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Parsing and validation of a snapshot's header, footer and index. Nothing
 * read from the file is trusted: every count, length and offset is checked
 * (without overflow) before it is used, so that the reader's data paths can
 * rely on the invariants written in FORMAT.md.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "path-util.h"
#include "snap-internal.h"

static const char *kind_name(uint16_t kind)
{
	switch (kind) {
	case SNAP_KIND_FILE:
		return "file";
	case SNAP_KIND_DIR:
		return "directory";
	case SNAP_KIND_SYMLINK:
		return "symlink";
	}
	return "unknown";
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

int snap_index_check_ends(const void *header, const void *footer, uint64_t file_size,
			  uint64_t *ret_index_offset, uint64_t *ret_index_length)
{
	const struct snap_disk_header *h = header;
	const struct snap_disk_footer *f = footer;

	if (memcmp(h->magic, SNAP_HEADER_MAGIC, SNAP_MAGIC_LEN) != 0)
		return snap_error(-EBADMSG, "not a stoke snapshot (wrong magic)");
	if (!snap_checksum_matches(h, offsetof(struct snap_disk_header, checksum),
				   le64(h->checksum)))
		return snap_error(-EBADMSG, "header checksum mismatch");
	if (le16(h->major) > SNAP_FORMAT_MAJOR)
		return snap_error(
			-EPROTONOSUPPORT, "format version %u.%u is newer than this reader (%u.%u)",
			le16(h->major), le16(h->minor), SNAP_FORMAT_MAJOR, SNAP_FORMAT_MINOR);
	if (le16(h->major) != SNAP_FORMAT_MAJOR)
		return snap_error(-EBADMSG, "unknown format version %u", le16(h->major));
	if (le32(h->flags) != 0 || !all_zero(h->reserved, sizeof(h->reserved)))
		return snap_error(-EBADMSG, "unknown header flags");
	if (!snap_chunk_size_valid(le32(h->chunk_size)))
		return snap_error(-EBADMSG, "invalid chunk size %u", le32(h->chunk_size));

	if (memcmp(f->magic, SNAP_FOOTER_MAGIC, SNAP_MAGIC_LEN) != 0)
		return snap_error(-EBADMSG, "no footer at the end of the file (truncated?)");
	if (!snap_checksum_matches(f, offsetof(struct snap_disk_footer, checksum),
				   le64(f->checksum)))
		return snap_error(-EBADMSG, "footer checksum mismatch");
	if (le64(f->file_size) != file_size)
		return snap_error(-EBADMSG, "file is %llu bytes but its footer says %llu",
				  (unsigned long long) file_size,
				  (unsigned long long) le64(f->file_size));
	if (le16(f->major) != le16(h->major) || le16(f->minor) != le16(h->minor) ||
	    le32(f->reserved0) || le64(f->reserved1))
		return snap_error(-EBADMSG, "footer does not match the header");

	uint64_t off = le64(f->index_offset), len = le64(f->index_length);
	if (len < sizeof(struct snap_disk_index) || len > SNAP_MAX_INDEX_LENGTH)
		return snap_error(-EBADMSG, "absurd index length %llu", (unsigned long long) len);
	if (off < SNAP_HEADER_SIZE || off > file_size || len > file_size - off ||
	    file_size - off - len != SNAP_FOOTER_SIZE)
		return snap_error(-EBADMSG, "index [%llu, +%llu) lies outside the file",
				  (unsigned long long) off, (unsigned long long) len);
	*ret_index_offset = off;
	*ret_index_length = len;
	return 0;
}

struct snap_index *snap_index_free(struct snap_index *idx)
{
	if (!idx)
		return NULL;
	if (idx->names)
		for (uint64_t i = 0; i < idx->entry_count; i++)
			free(idx->names[i]);
	free(idx->names);
	free(idx->by_name);
	free(idx->blob);
	free(idx);
	return NULL;
}

static void snap_index_freep(struct snap_index **idx)
{
	*idx = snap_index_free(*idx);
}

static int cmp_by_name(const void *a, const void *b, void *names)
{
	char **n = names;
	return strcmp(n[*(const uint64_t *) a], n[*(const uint64_t *) b]);
}

static int check_names(struct snap_index *idx, const char *names, uint64_t names_len)
{
	idx->names = calloc(idx->entry_count ?: 1, sizeof(char *));
	idx->by_name = calloc(idx->entry_count ?: 1, sizeof(uint64_t));
	if (!idx->names || !idx->by_name)
		return -ENOMEM;
	for (uint64_t i = 0; i < idx->entry_count; i++) {
		const struct snap_disk_entry *e = &idx->entries[i];
		uint64_t off = le64(e->name_offset), len = le32(e->name_length);

		if (len == 0 || len > SNAP_NAME_MAX || off > names_len || len > names_len - off)
			return snap_error(-EBADMSG, "entry %llu: name out of bounds",
					  (unsigned long long) i);
		if (memchr(names + off, '\0', len))
			return snap_error(-EBADMSG, "entry %llu: name contains a NUL byte",
					  (unsigned long long) i);
		idx->names[i] = strndup(names + off, len);
		if (!idx->names[i])
			return -ENOMEM;
		if (!cs_path_is_safe_relative(idx->names[i]))
			return snap_error(-EBADMSG,
					  "entry %llu: name \"%s\" escapes the target directory "
					  "(absolute, empty, \".\" or \"..\" component)",
					  (unsigned long long) i, idx->names[i]);
		idx->by_name[i] = i;
	}
	qsort_r(idx->by_name, idx->entry_count, sizeof(uint64_t), cmp_by_name, idx->names);
	for (uint64_t i = 1; i < idx->entry_count; i++)
		if (strcmp(idx->names[idx->by_name[i - 1]], idx->names[idx->by_name[i]]) == 0)
			return snap_error(-EBADMSG, "entry name \"%s\" appears twice",
					  idx->names[idx->by_name[i]]);
	return 0;
}

static int check_entries(struct snap_index *idx)
{
	uint64_t cs = idx->chunk_size, next_chunk = 0;

	for (uint64_t i = 0; i < idx->entry_count; i++) {
		const struct snap_disk_entry *e = &idx->entries[i];
		uint64_t size = le64(e->size), n = le32(e->chunk_count);
		uint16_t kind = le16(e->kind);

		if (kind != SNAP_KIND_FILE && kind != SNAP_KIND_DIR && kind != SNAP_KIND_SYMLINK)
			return snap_error(-EBADMSG, "entry %llu: unknown kind %u",
					  (unsigned long long) i, kind);
		if (le32(e->mode) & ~07777u || le16(e->flags))
			return snap_error(-EBADMSG, "entry %llu: invalid mode or flags",
					  (unsigned long long) i);
		if (size > SNAP_MAX_ENTRY_SIZE)
			return snap_error(-EBADMSG, "entry %llu: absurd size %llu",
					  (unsigned long long) i, (unsigned long long) size);
		if ((kind == SNAP_KIND_DIR && size != 0) ||
		    (kind == SNAP_KIND_SYMLINK && (size == 0 || size > SNAP_NAME_MAX)))
			return snap_error(-EBADMSG, "entry %llu: invalid size %llu for a %s",
					  (unsigned long long) i, (unsigned long long) size,
					  kind_name(kind));
		if (n != (size + cs - 1) / cs)
			return snap_error(-EBADMSG, "entry %llu: %llu chunks for %llu bytes",
					  (unsigned long long) i, (unsigned long long) n,
					  (unsigned long long) size);
		if (le64(e->first_chunk) != next_chunk || n > idx->chunk_count - next_chunk)
			return snap_error(-EBADMSG,
					  "entry %llu: chunk range out of order or bounds",
					  (unsigned long long) i);
		/* Every chunk but an entry's last is full. */
		for (uint64_t c = 0; c < n; c++) {
			uint64_t want = c + 1 < n ? cs : size - c * cs;
			if (le32(idx->chunks[next_chunk + c].raw_length) != want)
				return snap_error(-EBADMSG, "chunk %llu: wrong uncompressed length",
						  (unsigned long long) (next_chunk + c));
		}
		next_chunk += n;
	}
	if (next_chunk != idx->chunk_count)
		return snap_error(-EBADMSG, "%llu chunks belong to no entry",
				  (unsigned long long) (idx->chunk_count - next_chunk));
	return 0;
}

/* Stored chunks must tile [header end, index) exactly, in chunk order: then
 * the checksums of the header, chunks, index and footer cover every byte. */
static int check_chunks(struct snap_index *idx)
{
	uint64_t pos = SNAP_HEADER_SIZE;

	for (uint64_t i = 0; i < idx->chunk_count; i++) {
		const struct snap_disk_chunk *c = &idx->chunks[i];
		uint64_t off = le64(c->offset), stored = le32(c->stored_length);
		uint32_t raw = le32(c->raw_length);

		if (!all_zero(c->reserved, sizeof(c->reserved)) || raw == 0)
			return snap_error(-EBADMSG, "chunk %llu: invalid fields",
					  (unsigned long long) i);
		switch (c->type) {
		case SNAP_CHUNK_HOLE:
			if (off || stored || le64(c->checksum))
				return snap_error(-EBADMSG, "chunk %llu: hole with data",
						  (unsigned long long) i);
			continue;
		case SNAP_CHUNK_RAW:
			if (stored != raw)
				return snap_error(-EBADMSG, "chunk %llu: raw length mismatch",
						  (unsigned long long) i);
			break;
		case SNAP_CHUNK_ZSTD:
			if (stored == 0 || stored >= raw)
				return snap_error(-EBADMSG, "chunk %llu: invalid compressed length",
						  (unsigned long long) i);
			break;
		default:
			return snap_error(-EBADMSG, "chunk %llu: unknown type %u",
					  (unsigned long long) i, c->type);
		}
		if (off != pos || stored > idx->data_end - pos)
			return snap_error(-EBADMSG, "chunk %llu: offset %llu outside its place",
					  (unsigned long long) i, (unsigned long long) off);
		pos += stored;
	}
	if (pos != idx->data_end)
		return snap_error(-EBADMSG, "%llu bytes before the index belong to no chunk",
				  (unsigned long long) (idx->data_end - pos));
	return 0;
}

int snap_index_parse(const void *header, const void *footer, uint64_t file_size, void *blob,
		     struct snap_index **ret_index)
{
	_cleanup_free_ void *owned_blob = blob;
	_cleanup_(snap_index_freep) struct snap_index *idx = NULL;
	const struct snap_disk_footer *f = footer;
	uint64_t ioff, ilen;
	int r;

	r = snap_index_check_ends(header, footer, file_size, &ioff, &ilen);
	if (r < 0)
		return r;
	if (!snap_checksum_matches(blob, ilen, le64(f->index_checksum)))
		return snap_error(-EBADMSG, "index checksum mismatch");

	const struct snap_disk_index *ih = blob;
	if (memcmp(ih->magic, SNAP_INDEX_MAGIC, SNAP_MAGIC_LEN) != 0)
		return snap_error(-EBADMSG, "index has a wrong magic");
	uint64_t ne = le64(ih->entry_count), nc = le64(ih->chunk_count),
		 nl = le64(ih->names_length);
	/* Bound every count by what fits in the index before multiplying. */
	uint64_t room = ilen - sizeof(*ih);
	if (ne > SNAP_MAX_ENTRIES || ne > room / sizeof(struct snap_disk_entry) ||
	    nc > room / sizeof(struct snap_disk_chunk) || nl > room ||
	    ne * sizeof(struct snap_disk_entry) + nc * sizeof(struct snap_disk_chunk) + nl != room)
		return snap_error(-EBADMSG,
				  "absurd index counts (%llu entries, %llu chunks, %llu name bytes "
				  "in %llu bytes)",
				  (unsigned long long) ne, (unsigned long long) nc,
				  (unsigned long long) nl, (unsigned long long) ilen);

	idx = calloc(1, sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	idx->blob = TAKE_PTR(owned_blob);
	idx->chunk_size = le32(((const struct snap_disk_header *) header)->chunk_size);
	idx->minor = le16(((const struct snap_disk_header *) header)->minor);
	idx->file_size = file_size;
	idx->data_end = ioff;
	idx->entry_count = ne;
	idx->chunk_count = nc;
	idx->entries = (const struct snap_disk_entry *) ((const uint8_t *) idx->blob + sizeof(*ih));
	idx->chunks = (const struct snap_disk_chunk *) (idx->entries + ne);
	const char *names = (const char *) (idx->chunks + nc);

	r = check_entries(idx);
	if (r < 0)
		return r;
	r = check_chunks(idx);
	if (r < 0)
		return r;
	r = check_names(idx, names, nl);
	if (r < 0)
		return r;
	*ret_index = TAKE_PTR(idx);
	return 0;
}
