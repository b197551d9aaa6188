/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `stoke snapshot pack DIR FILE | unpack FILE DIR | inspect FILE | verify FILE`:
 * the snapshot format's command layer, entered from the `stoke` binary.
 *
 * Thread-safety: call from the main thread only (it uses getopt and logs).
 */
#ifndef STOKE_SNAPSHOT_CLI_H
#define STOKE_SNAPSHOT_CLI_H

/*! snap_cli_main() :
 *  Run `snapshot SUBCOMMAND ...` (argv[0] is "snapshot"). Logs its own errors,
 *  once, naming the file and the reason; prints a progress line on stderr
 *  when stderr is a terminal.
 * @return : the process exit status (0 success, 1 failure, 2 usage error). */
int snap_cli_main(int argc, char **argv);

#endif
