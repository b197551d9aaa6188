/* SPDX-License-Identifier: Apache-2.0 */
/* Keeps the library non-empty until the format sources land; remove then. */
int snap_placeholder_(void);
int snap_placeholder_(void)
{
	return 0;
}
