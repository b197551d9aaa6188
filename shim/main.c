/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `stoke` binary: global flags (runc's, placed before the verb), then
 * dispatch to the runtime verbs, `stoke snapshot ...` or `stoke load ...`.
 *
 * This file is the composition root: it is built into the executable, not
 * into any module library, and is the only code that sees every module's
 * public command entry point.
 */
#include <errno.h>
#include <getopt.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "config.h"
#include "log.h"
#include "stoke-load-cli.h"
#include "stoke-runtime-cli.h"
#include "stoke-snapshot-cli.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: stoke [global options] COMMAND [command options] [arguments]\n"
		"\n"
		"stoke is an OCI container runtime that starts AI inference containers fast.\n"
		"\n"
		"global options:\n"
		"   --root DIR          state directory (default /run/stoke)\n"
		"   --log FILE          also write log lines to FILE\n"
		"   --log-format FMT    text or json (default text)\n"
		"   --debug             log debug output\n"
		"   --systemd-cgroup    use systemd's cgroup manager (refused without systemd)\n"
		"   --criu PATH         the criu binary for checkpoint and restore (default: criu "
		"from PATH)\n"
		"   -v, --version       print the version\n"
		"   -h, --help          print this help\n"
		"\n"
		"commands:\n%s"
		"   snapshot     pack, unpack, inspect or verify a snapshot file\n"
		"   load         stream model weights (safetensors, GGUF) into memory or onto "
		"GPUs\n",
		shim_cli_usage_verbs());
}

static void print_version(void)
{
	const struct scmp_version *v = seccomp_version();

	/* runc's shape (containerd and scripts parse the first line). */
	printf("stoke version %s\nspec: 1.2.0\nlibseccomp: %u.%u.%u\n", STOKE_VERSION, v->major,
	       v->minor, v->micro);
}

enum {
	OPT_ROOT = 0x100,
	OPT_LOG,
	OPT_LOG_FORMAT,
	OPT_DEBUG,
	OPT_SYSTEMD_CGROUP,
	OPT_CRIU,
	OPT_ROOTLESS,
};

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"root", required_argument, NULL, OPT_ROOT},
		{"log", required_argument, NULL, OPT_LOG},
		{"log-format", required_argument, NULL, OPT_LOG_FORMAT},
		{"debug", no_argument, NULL, OPT_DEBUG},
		{"systemd-cgroup", no_argument, NULL, OPT_SYSTEMD_CGROUP},
		{"criu", required_argument, NULL, OPT_CRIU},
		{"rootless", required_argument, NULL, OPT_ROOTLESS},
		{"version", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{}};
	struct shim_globals g = {.root = "/run/stoke"};
	int c;

	/*
	 * Before anything else, for every verb: a non-dumpable process's
	 * /proc/PID/exe, fd/, mem and environ are closed to processes without
	 * CAP_SYS_PTRACE. While `stoke exec` (or create's child) sits in a
	 * container's pid namespace, a container process could otherwise open
	 * this binary read-only and reopen it for writing through
	 * /proc/self/fd/N once stoke exits (runc's CVE-2019-5736). Children
	 * inherit the flag, and execve of a readable binary resets it, so the
	 * container's processes (and criu) are dumpable again.
	 */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return log_error_errno(-errno, "cannot make stoke non-dumpable: %m"), 1;

	/* "+" stops at the first non-option: the verb. */
	while ((c = getopt_long(argc, argv, "+vh", options, NULL)) != -1) {
		switch (c) {
		case OPT_ROOT:
			g.root = optarg;
			break;
		case OPT_LOG:
			g.log_path = optarg;
			break;
		case OPT_LOG_FORMAT:
			if (strcmp(optarg, "json") && strcmp(optarg, "text")) {
				log_error("--log-format: unknown format \"%s\" (text or json)",
					  optarg);
				return 1;
			}
			g.log_json = strcmp(optarg, "json") == 0;
			break;
		case OPT_DEBUG:
			g.debug = true;
			break;
		case OPT_SYSTEMD_CGROUP:
			g.systemd_cgroup = true;
			break;
		case OPT_CRIU:
			g.criu_path = optarg;
			break;
		case OPT_ROOTLESS:
			break;
		case 'v':
			print_version();
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}

	int r = cs_log_open(g.log_path, g.log_json ? CS_LOG_JSON : CS_LOG_TEXT);
	if (r < 0)
		return log_error_errno(r, "cannot open log file \"%s\": %m", g.log_path), 1;
	if (g.debug) {
		cs_log_set_level(CS_LOG_DEBUG);
		cs_log_set_stderr_logfmt(true);
	}

	if (optind >= argc) {
		usage(stderr);
		return 1;
	}
	char **verb_argv = argv + optind;
	int verb_argc = argc - optind;
	/* Each verb parses its own options with getopt from argv[0] = verb. */
	optind = 0;

	if (strcmp(verb_argv[0], "load") == 0)
		return ldr_cli_main(verb_argc, verb_argv);
	if (strcmp(verb_argv[0], "snapshot") == 0)
		return snap_cli_main(verb_argc, verb_argv);
	if (shim_cli_is_verb(verb_argv[0]))
		return shim_cli_main(verb_argc, verb_argv, &g);

	log_error("unknown command \"%s\" (see stoke --help)", verb_argv[0]);
	return 3; /* runc's status for an unknown command */
}
