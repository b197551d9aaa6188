/* SPDX-License-Identifier: Apache-2.0 */
/* `stoke load`: load weight files, print what it cost, optionally verify. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "fd-util.h"
#include "log.h"
#include "stoke-load-cli.h"
#include "stoke-loader.h"
#include "time-util.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: stoke load [options] FILE...\n"
		"\n"
		"Stream the tensors of safetensors, model.safetensors.index.json or GGUF files\n"
		"into host memory or onto a GPU.\n"
		"\n"
		"  --device DEV        cpu (default), cuda or cuda:N\n"
		"  --placement RULES   PATTERN=DEVICE[,...] by tensor name (fnmatch)\n"
		"  --stats             print bytes, GB/s, phase times and how it read\n"
		"  --verify            read every tensor back and compare with the file\n"
		"  --no-uring          use pread workers instead of io_uring\n"
		"  --no-direct         never use O_DIRECT\n"
		"  --direct            O_DIRECT even for cached ranges\n"
		"  --map               host tensors as copy-on-write mappings of the file\n"
		"                      (page cache, no copy; mmap semantics, see stoke-loader.h);\n"
		"                      the default for host loads of files (nearly) all in the "
		"page "
		"cache\n"
		"  --copy              host tensors always in private memory, even when cached\n"
		"  --queue-depth N     reads in flight per worker\n"
		"  --request-size N    bytes per read (multiple of 4096; K/M suffix)\n"
		"  --workers N         reader threads\n");
}

static int parse_size(const char *s, size_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	if (*end == 'K' || *end == 'k')
		v <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	if (*end)
		return -EINVAL;
	*ret = (size_t) v;
	return 0;
}

/* Compare every tensor's loaded bytes with the file's, 64 MiB at a time. */
static int verify(struct ldr_model *m, uint64_t *ret_bytes)
{
	size_t buf_len = 64u << 20;
	_cleanup_free_ uint8_t *a = malloc(buf_len), *b = malloc(buf_len);
	uint64_t total = 0;
	if (!a || !b)
		return log_error_errno(-ENOMEM, "verify: %m");
	for (size_t i = 0; i < ldr_model_n_tensors(m); i++) {
		struct ldr_tensor_info ti;
		(void) ldr_model_tensor(m, i, &ti);
		_cleanup_close_ int fd = open(ti.file, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return log_error_errno(-errno, "verify: cannot open %s: %m", ti.file);
		for (uint64_t off = 0; off < ti.size; off += buf_len) {
			size_t n = ti.size - off < buf_len ? (size_t) (ti.size - off) : buf_len;
			int r = ldr_model_copy_to_host(m, i, off, a, n);
			if (r < 0)
				return log_error_errno(
					r, "verify: tensor \"%s\": reading it back: %m", ti.name);
			ssize_t got = cs_pread_all(fd, b, n, (off_t) (ti.file_offset + off));
			if (got != (ssize_t) n)
				return log_error_errno(got < 0 ? (int) got : -EIO,
						       "verify: %s: cannot read tensor \"%s\": %m",
						       ti.file, ti.name);
			if (memcmp(a, b, n) != 0)
				return log_error_errno(-EBADMSG,
						       "verify: tensor \"%s\" differs from %s near "
						       "byte %" PRIu64,
						       ti.name, ti.file, off);
		}
		total += ti.size;
	}
	*ret_bytes = total;
	return 0;
}

static void print_stats(const struct ldr_load_stats *st, const char *device, size_t n_tensors,
			size_t n_files, uint64_t open_ns)
{
	double s = (double) st->total_ns / 1e9;
	printf("loaded %zu tensors, %" PRIu64
	       " bytes from %zu file(s) to %s in %.3f s: %.2f GB/s\n",
	       n_tensors, st->bytes, n_files, device, s, s > 0 ? (double) st->bytes / 1e9 / s : 0);
	printf("phases: open %.1f ms, plan %.1f ms, read+copy %.1f ms, total %.1f ms\n",
	       cs_ns_to_ms(open_ns), cs_ns_to_ms(st->plan_ns), cs_ns_to_ms(st->read_ns),
	       cs_ns_to_ms(st->total_ns));
	printf("reads: %" PRIu64 " bytes, %" PRIu64 " O_DIRECT, %" PRIu64 " buffered\n",
	       st->bytes_read, st->bytes_direct, st->bytes_buffered);
	printf("engine: %s, %u worker(s), queue depth %u, request %zu KiB, registered buffers %s",
	       st->backend, st->n_workers, st->queue_depth, st->request_size >> 10,
	       st->fixed_buffers ? "yes" : "no");
	if (st->uring_fallback_error)
		printf(" (io_uring refused: %s)", strerror(-st->uring_fallback_error));
	printf("\nhost memory: %s\n",
	       st->mapped ? "maps the files" : st->huge_pages ? "2 MiB pages" : "4 KiB pages");
}

int ldr_cli_main(int argc, char **argv)
{
	enum {
		OPT_DEVICE = 0x100,
		OPT_PLACEMENT,
		OPT_STATS,
		OPT_VERIFY,
		OPT_NO_URING,
		OPT_NO_DIRECT,
		OPT_DIRECT,
		OPT_QD,
		OPT_REQ,
		OPT_WORKERS,
		OPT_MAP,
		OPT_COPY,
	};
	static const struct option options[] = {
		{"device", required_argument, NULL, OPT_DEVICE},
		{"placement", required_argument, NULL, OPT_PLACEMENT},
		{"stats", no_argument, NULL, OPT_STATS},
		{"verify", no_argument, NULL, OPT_VERIFY},
		{"no-uring", no_argument, NULL, OPT_NO_URING},
		{"no-direct", no_argument, NULL, OPT_NO_DIRECT},
		{"direct", no_argument, NULL, OPT_DIRECT},
		{"queue-depth", required_argument, NULL, OPT_QD},
		{"request-size", required_argument, NULL, OPT_REQ},
		{"workers", required_argument, NULL, OPT_WORKERS},
		{"map", no_argument, NULL, OPT_MAP},
		{"copy", no_argument, NULL, OPT_COPY},
		{"help", no_argument, NULL, 'h'},
		{}};
	struct ldr_load_options o = {.device = "cpu"};
	bool stats = false, do_verify = false;
	size_t v;
	int c;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case OPT_DEVICE:
			o.device = optarg;
			break;
		case OPT_PLACEMENT:
			o.placement = optarg;
			break;
		case OPT_STATS:
			stats = true;
			break;
		case OPT_VERIFY:
			do_verify = true;
			break;
		case OPT_NO_URING:
			o.flags |= LDR_LOAD_NO_URING;
			break;
		case OPT_NO_DIRECT:
			o.flags |= LDR_LOAD_NO_DIRECT;
			break;
		case OPT_DIRECT:
			o.flags |= LDR_LOAD_ALWAYS_DIRECT;
			break;
		case OPT_MAP:
			o.flags |= LDR_LOAD_MAP;
			break;
		case OPT_COPY:
			o.flags |= LDR_LOAD_COPY;
			break;
		case OPT_QD:
		case OPT_REQ:
		case OPT_WORKERS:
			if (parse_size(optarg, &v) < 0 || v == 0 || v > (1u << 30)) {
				log_error("load: invalid number \"%s\" for --%s", optarg,
					  options[c - OPT_DEVICE].name);
				return 2;
			}
			if (c == OPT_QD)
				o.queue_depth = (unsigned) v;
			else if (c == OPT_REQ)
				o.request_size = v;
			else
				o.n_workers = (unsigned) v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}

	char err[1024] = "";
	struct ldr_model *m = NULL;
	struct ldr_load_stats st;
	uint64_t t0 = cs_monotonic_ns();
	int r = ldr_model_open((const char *const *) argv + optind, (size_t) (argc - optind), &m,
			       err, sizeof(err));
	if (r < 0)
		return log_error("load: %s", err[0] ? err : strerror(-r)), 1;
	uint64_t open_ns = cs_monotonic_ns() - t0;
	r = ldr_model_load(m, &o, &st, err, sizeof(err));
	if (r < 0) {
		log_error("load: %s", err[0] ? err : strerror(-r));
		ldr_model_unref(m);
		return 1;
	}
	/* Count the header parsing too: it is part of loading. */
	st.total_ns += open_ns;
	if (stats)
		print_stats(&st, o.device, ldr_model_n_tensors(m), (size_t) (argc - optind),
			    open_ns);
	else
		printf("loaded %zu tensors, %" PRIu64 " bytes to %s in %.3f s\n",
		       ldr_model_n_tensors(m), st.bytes, o.device, (double) st.total_ns / 1e9);
	if (do_verify) {
		uint64_t bytes = 0;
		r = verify(m, &bytes);
		if (r < 0) {
			ldr_model_unref(m);
			return 1;
		}
		printf("verified %zu tensors, %" PRIu64 " bytes: identical to the files\n",
		       ldr_model_n_tensors(m), bytes);
	}
	fflush(stdout);
	ldr_model_unref(m);
	return 0;
}
