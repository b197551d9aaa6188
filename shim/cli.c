/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The runtime verbs' dispatcher. Each verb parses its own flags (runc's
 * names and order) and logs its own errors once.
 */
#include "stoke-runtime-cli.h"
#include "runtime-features.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int cmd_features(int argc, char **argv, const struct shim_globals *g)
{
	json_object *f;
	int r = shim_features_build(&f);
	if (r < 0)
		return log_error_errno(r, "features: %m"), 1;
	puts(json_object_to_json_string_ext(f, JSON_C_TO_STRING_PRETTY |
						       JSON_C_TO_STRING_SPACED |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(f);
	return 0;
}

struct verb {
	const char *name;
	int (*run)(int argc, char **argv, const struct shim_globals *g);
	const char *help;
};

static const struct verb verbs[] = {
	{ "features", cmd_features, "show the enabled features (JSON)" },
};

bool shim_cli_is_verb(const char *verb)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(verbs[i].name, verb) == 0)
			return true;
	return false;
}

int shim_cli_main(int argc, char **argv, const struct shim_globals *g)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(verbs[i].name, argv[0]) == 0)
			return verbs[i].run(argc, argv, g);
	log_error("unknown command \"%s\"", argv[0]);
	return 1;
}

const char *shim_cli_usage_verbs(void)
{
	static char buf[4096];
	size_t o = 0;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]) && o < sizeof(buf); i++)
		o += (size_t) snprintf(buf + o, sizeof(buf) - o, "   %-12s %s\n", verbs[i].name,
				       verbs[i].help);
	return buf;
}
