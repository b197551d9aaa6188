/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `stoke snapshot pack|unpack|inspect|verify`: the command layer of the
 * snapshot format. It is the only snapshot code that logs: once per failure,
 * naming the file and what was wrong with it.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "stoke-snapshot-cli.h"
#include "stoke-snapshot.h"
#include "time-util.h"

struct progress {
	const char *verb;
	uint64_t start_ns, last_ns;
	bool shown;
};

static void show_progress(void *userdata, uint64_t done, uint64_t total)
{
	struct progress *p = userdata;
	uint64_t now = cs_monotonic_ns();

	if (now - p->last_ns < 100 * CS_NSEC_PER_MSEC)
		return;
	p->last_ns = now;
	p->shown = true;
	double secs = (double) (now - p->start_ns) / 1e9;
	double mib = (double) done / (1 << 20);
	if (total)
		fprintf(stderr, "\r%s: %.0f / %.0f MiB (%.0f%%), %.0f MB/s   ", p->verb, mib,
			(double) total / (1 << 20), 100.0 * (double) done / (double) total,
			secs > 0 ? (double) done / 1e6 / secs : 0.0);
	else
		fprintf(stderr, "\r%s: %.0f MiB, %.0f MB/s   ", p->verb, mib,
			secs > 0 ? (double) done / 1e6 / secs : 0.0);
}

static void progress_init(struct progress *p, const char *verb)
{
	*p = (struct progress){.verb = verb, .start_ns = cs_monotonic_ns()};
	p->last_ns = p->start_ns;
}

static void progress_end(struct progress *p)
{
	if (p->shown)
		fputs("\r\033[K", stderr);
}

static bool want_progress(void)
{
	return isatty(STDERR_FILENO);
}

/* Errors reading a snapshot: say which file and what the library found. */
static int fail_file(int r, const char *what, const char *file)
{
	const char *detail = snap_last_error();
	if (detail[0])
		log_error("%s \"%s\": %s (%s)", what, file, detail, strerror(-r));
	else
		log_error("%s \"%s\": %s", what, file, strerror(-r));
	return 1;
}

static int open_reader(const char *file, struct snap_reader **ret)
{
	struct snap_reader_options o = {0};
	/* A knob for tests and debugging: exercise the pread fallback. */
	const char *e = secure_getenv("STOKE_SNAPSHOT_FORCE_PREAD");
	if (e && strcmp(e, "1") == 0)
		o.flags |= SNAP_READER_FORCE_PREAD;
	int r = snap_reader_open(file, &o, ret);
	if (r < 0)
		return fail_file(r, "cannot open snapshot", file);
	return 0;
}

static int parse_u32(const char *s, uint32_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || v > UINT32_MAX)
		return -EINVAL;
	if (*end == 'K' || *end == 'k')
		v <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	if (*end || v > UINT32_MAX)
		return -EINVAL;
	*ret = (uint32_t) v;
	return 0;
}

static int cmd_pack(int argc, char **argv)
{
	static const struct option options[] = {
		{"chunk-size", required_argument, NULL, 'c'},
		{"level", required_argument, NULL, 'l'},
		{"threads", required_argument, NULL, 'j'},
		{},
	};
	struct snap_writer_options o = {0};
	_cleanup_(snap_writer_freep) struct snap_writer *w = NULL;
	struct progress p;
	uint32_t v;
	int c, r;

	while ((c = getopt_long(argc, argv, "c:l:j:", options, NULL)) != -1) {
		if (c == '?' || parse_u32(optarg, &v) < 0) {
			log_error("pack: invalid option value (see stoke snapshot --help)");
			return 2;
		}
		if (c == 'c')
			o.chunk_size = v;
		else if (c == 'l')
			o.level = (int) v;
		else
			o.threads = v;
	}
	if (argc - optind != 2) {
		log_error("usage: stoke snapshot pack [--chunk-size N] [--level N] [--threads N] "
			  "DIR FILE");
		return 2;
	}
	const char *dir = argv[optind], *file = argv[optind + 1];
	r = snap_writer_open(file, &o, &w);
	if (r < 0)
		return fail_file(r, "cannot create snapshot", file);
	progress_init(&p, "pack");
	if (want_progress())
		snap_writer_set_progress(w, show_progress, &p);
	r = snap_writer_add_tree(w, NULL, dir);
	if (r < 0) {
		progress_end(&p);
		const char *detail = snap_last_error();
		log_error("cannot pack \"%s\" into \"%s\": %s (%s)", dir, file,
			  detail[0] ? detail : "error", strerror(-r));
		return 1;
	}
	r = snap_writer_commit(w);
	progress_end(&p);
	if (r < 0)
		return fail_file(r, "cannot write snapshot", file);
	return 0;
}

static void print_stats(const struct snap_reader *rd)
{
	struct snap_stats st;

	snap_reader_get_stats(rd, &st);
	fprintf(stderr,
		"stats: %s, read %.1f MB (%.1f ms summed over reads), decompressed %.1f MB "
		"in %llu chunks (%.1f ms summed over threads), %.1f ms total\n",
		snap_reader_backend(rd), (double) st.bytes_read / 1e6, cs_ns_to_ms(st.read_ns),
		(double) st.bytes_decompressed / 1e6, (unsigned long long) st.chunks,
		cs_ns_to_ms(st.decompress_ns), cs_ns_to_ms(st.total_ns));
}

static int cmd_unpack(int argc, char **argv)
{
	static const struct option options[] = {
		{"stats", no_argument, NULL, 's'},
		{},
	};
	_cleanup_(snap_reader_freep) struct snap_reader *rd = NULL;
	struct progress p;
	bool stats = false;
	int c, r;

	while ((c = getopt_long(argc, argv, "s", options, NULL)) != -1) {
		if (c != 's') {
			log_error("usage: stoke snapshot unpack [--stats] FILE DIR");
			return 2;
		}
		stats = true;
	}
	if (argc - optind != 2) {
		log_error("usage: stoke snapshot unpack [--stats] FILE DIR");
		return 2;
	}
	const char *file = argv[optind], *dir = argv[optind + 1];
	if (open_reader(file, &rd) != 0)
		return 1;
	progress_init(&p, "unpack");
	if (want_progress())
		snap_reader_set_progress(rd, show_progress, &p);
	r = snap_reader_unpack(rd, dir, 0);
	progress_end(&p);
	if (r < 0) {
		const char *detail = snap_last_error();
		log_error("cannot unpack snapshot \"%s\" into \"%s\": %s (%s)", file, dir,
			  detail[0] ? detail : "error", strerror(-r));
		return 1;
	}
	if (stats)
		print_stats(rd);
	return 0;
}

static const char *kind_str(enum snap_kind k)
{
	return k == SNAP_KIND_DIR ? "dir" : k == SNAP_KIND_SYMLINK ? "symlink" : "file";
}

static int cmd_inspect(int argc, char **argv)
{
	_cleanup_(snap_reader_freep) struct snap_reader *rd = NULL;
	uint64_t total = 0, stored = 0, chunks = 0;

	if (argc != 2) {
		log_error("usage: stoke snapshot inspect FILE");
		return 2;
	}
	if (open_reader(argv[1], &rd) != 0)
		return 1;
	size_t n = snap_reader_entry_count(rd);
	printf("snapshot %s: format 1, chunk size %u, %zu entries\n", argv[1],
	       snap_reader_chunk_size(rd), n);
	printf("%-8s %6s %14s %14s %7s %8s  %s\n", "KIND", "MODE", "SIZE", "STORED", "RATIO",
	       "CHUNKS", "NAME");
	for (size_t i = 0; i < n; i++) {
		struct snap_entry_info e;
		if (snap_reader_entry(rd, i, &e) < 0)
			continue;
		printf("%-8s %6o %14llu %14llu %7.2f %8llu  %s\n", kind_str(e.kind), e.mode,
		       (unsigned long long) e.size, (unsigned long long) e.stored_size,
		       e.stored_size ? (double) e.size / (double) e.stored_size : 0.0,
		       (unsigned long long) e.chunks, e.name);
		total += e.size;
		stored += e.stored_size;
		chunks += e.chunks;
	}
	printf("total: %llu bytes in %llu chunks, %llu stored, ratio %.2f\n",
	       (unsigned long long) total, (unsigned long long) chunks, (unsigned long long) stored,
	       stored ? (double) total / (double) stored : 0.0);
	return 0;
}

static int cmd_verify(int argc, char **argv)
{
	_cleanup_(snap_reader_freep) struct snap_reader *rd = NULL;
	struct snap_stats st;
	struct progress p;
	int r;

	if (argc != 2) {
		log_error("usage: stoke snapshot verify FILE");
		return 2;
	}
	if (open_reader(argv[1], &rd) != 0)
		return 1;
	progress_init(&p, "verify");
	if (want_progress())
		snap_reader_set_progress(rd, show_progress, &p);
	r = snap_reader_verify(rd);
	progress_end(&p);
	if (r < 0)
		return fail_file(r, "snapshot is damaged:", argv[1]);
	snap_reader_get_stats(rd, &st);
	printf("%s: OK (%zu entries, %llu chunks, %llu bytes, read with %s in %.1f ms)\n", argv[1],
	       snap_reader_entry_count(rd), (unsigned long long) st.chunks,
	       (unsigned long long) st.bytes_decompressed, snap_reader_backend(rd),
	       cs_ns_to_ms(st.total_ns));
	return 0;
}

static void usage(FILE *out)
{
	fputs("usage: stoke snapshot COMMAND ...\n"
	      "\n"
	      "  pack [--chunk-size N] [--level N] [--threads N] DIR FILE\n"
	      "                      store the tree DIR in the snapshot FILE\n"
	      "  unpack [--stats] FILE DIR\n"
	      "                      recreate the tree in DIR (new or empty)\n"
	      "  inspect FILE        list entries, sizes, compression ratios, chunks\n"
	      "  verify FILE         check every checksum and chunk\n",
	      out);
}

int snap_cli_main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	argc--;
	argv++;
	optind = 0;
	if (strcmp(cmd, "pack") == 0)
		return cmd_pack(argc, argv);
	if (strcmp(cmd, "unpack") == 0)
		return cmd_unpack(argc, argv);
	if (strcmp(cmd, "inspect") == 0)
		return cmd_inspect(argc, argv);
	if (strcmp(cmd, "verify") == 0)
		return cmd_verify(argc, argv);
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	log_error("snapshot: unknown command \"%s\"", cmd);
	usage(stderr);
	return 2;
}
