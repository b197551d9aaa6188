/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `stoke load FILE... [options]`: the command layer over stoke-loader.h.
 */
#ifndef STOKE_LOAD_CLI_H
#define STOKE_LOAD_CLI_H

/*! ldr_cli_main() :
 *  Run the `load` verb; argv[0] is "load". Logs failures (once, naming the
 *  file and reason) and prints the summary and --stats to stdout.
 *  Thread-safety: uses getopt; call from the main thread only.
 * @return : the process exit status (0 success, 1 failure, 2 usage). */
int ldr_cli_main(int argc, char **argv);

#endif
