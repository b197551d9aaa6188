/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `stoke check [--json] [--remeasure] [--criu-timeout SECONDS]`: what works
 * on this host, found by trying it (host-probe.h), and what a page of
 * memory costs here (host-memcost.h, measured once per boot), as a table
 * or one JSON object.
 * `stoke features` says what stoke supports; this says what the host lets
 * it do. The exit status is non-zero when checkpoint/restore cannot work
 * here, with the reason on stderr; the other probes only inform.
 */
#include "cli-checkpoint.h"
#include "host-memcost.h"
#include "host-probe.h"
#include "stoke-runtime-cli.h"

#include "cleanup.h"
#include "log.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#define DEFAULT_CRIU_TIMEOUT_S 10
#define MAX_CRIU_TIMEOUT_S     3600

enum check_row_id {
	ROW_CRIU,
	ROW_CR,
	ROW_HWBP,
	ROW_UFFD,
	ROW_LAZY,
	ROW_URING,
	ROW_CGROUPS,
	ROW_USERNS,
	ROW_GPU,
	ROW_MEMORY,
	N_ROWS,
};

/* JSON keys and table names, in the table's order. */
static const struct {
	const char *key;
	const char *title;
} row_names[N_ROWS] = {
	[ROW_CRIU] = {"criu", "criu"},
	[ROW_CR] = {"checkpoint_restore", "checkpoint/restore"},
	[ROW_HWBP] = {"hardware_breakpoints", "hardware breakpoints"},
	[ROW_UFFD] = {"userfaultfd", "userfaultfd"},
	[ROW_LAZY] = {"lazy_pages", "lazy pages"},
	[ROW_URING] = {"io_uring", "io_uring"},
	[ROW_CGROUPS] = {"cgroups", "cgroups"},
	[ROW_USERNS] = {"user_namespaces", "user namespaces"},
	[ROW_GPU] = {"gpu", "gpu"},
	[ROW_MEMORY] = {"memory", "memory costs"},
};

struct check_args {
	bool json;
	bool remeasure; /* --remeasure: ignore this boot's cached memory profile */
	unsigned criu_timeout_s;
};

static int parse_args(int argc, char **argv, struct check_args *ret)
{
	enum { O_JSON = 0x100, O_TIMEOUT, O_REMEASURE };
	static const struct option opts[] = {
		{"json", no_argument, NULL, O_JSON},
		{"remeasure", no_argument, NULL, O_REMEASURE},
		{"criu-timeout", required_argument, NULL, O_TIMEOUT},
		{},
	};
	struct check_args a = {.criu_timeout_s = DEFAULT_CRIU_TIMEOUT_S};
	char *end;
	int c;

	optind = 0;
	while ((c = getopt_long_only(argc, argv, "", opts, NULL)) != -1) {
		if (c == O_JSON) {
			a.json = true;
		} else if (c == O_REMEASURE) {
			a.remeasure = true;
		} else if (c == O_TIMEOUT) {
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (errno || *end || end == optarg || v == 0 || v > MAX_CRIU_TIMEOUT_S)
				return log_error("check: --criu-timeout: \"%s\" is not a number "
						 "of seconds from 1 to %d",
						 optarg, MAX_CRIU_TIMEOUT_S),
				       -EINVAL;
			a.criu_timeout_s = (unsigned) v;
		} else {
			return log_error("check: usage: stoke check [--json] [--remeasure] "
					 "[--criu-timeout SECONDS]"),
			       -EINVAL;
		}
	}
	if (optind < argc)
		return log_error("check: unexpected argument \"%s\"", argv[optind]), -EINVAL;
	*ret = a;
	return 0;
}

/* The criu row also warns when this criu would hang on this host. */
static void note_criu_hang(struct hp_result *rows, const struct hp_criu *criu)
{
	struct hp_result *r = &rows[ROW_CRIU];
	size_t len = strlen(r->detail);

	if (!hp_criu_hangs_here(criu, &rows[ROW_HWBP]))
		return;
	r->state = HP_UNUSABLE;
	snprintf(r->detail + len, sizeof(r->detail) - len,
		 "; older than 4.2, it hangs in every dump on hosts whose hardware breakpoints "
		 "never fire, as here");
}

static const char *yes_no(bool v)
{
	return v ? "yes" : "no";
}

/* The memory row: what a page costs here (host-memcost.h), in one line. */
static struct hp_result memory_row(const struct hm_profile *m)
{
	struct hp_result r = {.state = HP_OK};

	snprintf(r.value, sizeof(r.value), "%s", m->from_cache ? "cached" : "measured");
	snprintf(r.detail, sizeof(r.detail),
		 "first touch: %.2f us per 4 KiB page, %.1f us per 2 MiB huge page (%.0f%% got "
		 "huge pages); UFFDIO_COPY: %.2f us per 4 KiB, %.1f us per 2 MiB; UFFDIO_MOVE "
		 "%s, MADV_COLLAPSE %s; huge pages cheaper here: %s",
		 m->fault_4k_us, m->fault_2m_us, m->thp_share * 100, m->uffd_copy_4k_us,
		 m->uffd_copy_2m_us, yes_no(m->uffd_move), yes_no(m->madv_collapse),
		 yes_no(m->huge_pages_cheaper));
	return r;
}

static void run_probes(const struct shim_globals *g, const struct check_args *a,
		       struct hp_result *rows, struct hm_profile *mem)
{
	struct hp_criu criu;

	rows[ROW_CRIU] = hp_probe_criu(g->criu_path, &criu);
	rows[ROW_HWBP] = hp_probe_hw_breakpoints();
	note_criu_hang(rows, &criu);
	rows[ROW_CR] = hp_probe_checkpoint_restore(&criu, a->criu_timeout_s);
	rows[ROW_UFFD] = hp_probe_userfaultfd();
	rows[ROW_LAZY] = hp_probe_lazy_pages(&rows[ROW_UFFD], &criu);
	rows[ROW_URING] = hp_probe_io_uring();
	rows[ROW_CGROUPS] = hp_probe_cgroups();
	rows[ROW_USERNS] = hp_probe_user_namespaces();
	rows[ROW_GPU] = hp_probe_gpu();
	/* Cached beside the containers' state: per boot, like /run itself. */
	char cache[4096];
	snprintf(cache, sizeof(cache), "%s/%s", g->root, HM_CACHE_NAME);
	(void) hm_profile_get(cache, a->remeasure, mem);
	rows[ROW_MEMORY] = memory_row(mem);
}

static void print_table(const struct hp_result *rows)
{
	int name_w = (int) strlen("NAME"), value_w = (int) strlen("RESULT");

	for (size_t i = 0; i < N_ROWS; i++) {
		int n = (int) strlen(row_names[i].title), v = (int) strlen(rows[i].value);
		name_w = n > name_w ? n : name_w;
		value_w = v > value_w ? v : value_w;
	}
	printf("%-*s  %-*s  %s\n", name_w, "NAME", value_w, "RESULT", "DETAIL");
	for (size_t i = 0; i < N_ROWS; i++)
		printf("%-*s  %-*s  %s\n", name_w, row_names[i].title, value_w, rows[i].value,
		       rows[i].detail);
}

/* {"result": "ok", "usable": true, "value": "...", "detail": "..."};
 * "usable" is null for a probe that does not apply or was skipped. */
static json_object *row_json(const struct hp_result *r)
{
	json_object *o = json_object_new_object();
	bool known = r->state != HP_NA && r->state != HP_SKIPPED;

	if (!o)
		return NULL;
	json_object_object_add(o, "result", json_object_new_string(hp_state_name(r->state)));
	json_object_object_add(o, "usable",
			       known ? json_object_new_boolean(r->state == HP_OK) : NULL);
	json_object_object_add(o, "value", json_object_new_string(r->value));
	json_object_object_add(o, "detail", json_object_new_string(r->detail));
	return o;
}

/* The memory profile's numbers, for programs (the bench records them). */
static json_object *memory_json(const struct hm_profile *m)
{
	json_object *o = hm_profile_to_json(m);
	if (o)
		json_object_object_add(o, "from_cache", json_object_new_boolean(m->from_cache));
	return o;
}

static int print_json(const struct hp_result *rows, const struct hm_profile *mem, bool cr_ok)
{
	json_object *doc = json_object_new_object();

	if (!doc)
		return -ENOMEM;
	for (size_t i = 0; i < N_ROWS; i++) {
		json_object *o = row_json(&rows[i]);
		if (!o) {
			json_object_put(doc);
			return -ENOMEM;
		}
		json_object_object_add(doc, row_names[i].key, o);
	}
	json_object_object_add(doc, "checkpoint_restore_usable", json_object_new_boolean(cr_ok));
	json_object_object_add(doc, "memory_profile", memory_json(mem));
	puts(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
							 JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(doc);
	return 0;
}

int shim_cmd_check(int argc, char **argv, const struct shim_globals *g)
{
	struct hp_result rows[N_ROWS];
	struct hm_profile mem;
	struct check_args a;

	if (parse_args(argc, argv, &a) < 0)
		return 1;
	run_probes(g, &a, rows, &mem);
	bool cr_ok = rows[ROW_CR].state == HP_OK;
	if (a.json) {
		int r = print_json(rows, &mem, cr_ok);
		if (r < 0)
			return log_error_errno(r, "check: %m"), 1;
	} else {
		print_table(rows);
	}
	(void) fflush(stdout);
	if (!cr_ok) {
		log_error("check: checkpoint/restore does not work on this host: %s",
			  rows[ROW_CR].detail);
		if (rows[ROW_CRIU].state != HP_OK)
			log_error("check: criu: %s", rows[ROW_CRIU].detail);
		return 1;
	}
	return 0;
}
