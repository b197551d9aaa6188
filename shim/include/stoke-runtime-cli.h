/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The runtime's command layer: runc-compatible verbs (create, start, state,
 * kill, delete, run, exec, ...), entered from the `stoke` binary's main().
 *
 * Thread-safety: single-threaded by design (the runtime clones and execs).
 */
#ifndef STOKE_RUNTIME_CLI_H
#define STOKE_RUNTIME_CLI_H

#include <stdbool.h>

/* Global flags, parsed by main() before the verb (runc's argument order). */
struct shim_globals {
	const char *root;	 /* --root: state directory (default /run/stoke) */
	const char *log_path;	 /* --log: not owned */
	bool log_json;		 /* --log-format json */
	bool debug;		 /* --debug */
	bool systemd_cgroup;	 /* --systemd-cgroup */
	const char *criu_path;	 /* --criu: the criu binary; NULL: "criu" from PATH */
};

/*! shim_cli_is_verb() : whether `verb` is one of the runtime's verbs. */
bool shim_cli_is_verb(const char *verb);

/*! shim_cli_main() :
 *  Run runtime verb argv[0] with its arguments. Logs its own errors (once).
 * @return : the process exit status. */
int shim_cli_main(int argc, char **argv, const struct shim_globals *g);

/*! shim_cli_usage_verbs() : one line per verb, for `stoke --help`. */
const char *shim_cli_usage_verbs(void);

#endif
