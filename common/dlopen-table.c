/* SPDX-License-Identifier: Apache-2.0 */
#include "dlopen-table.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static __thread char last_error[256];

static void remember_dlerror(void)
{
	const char *e = dlerror();
	snprintf(last_error, sizeof(last_error), "%s", e ? e : "");
}

const char *cs_dl_error(void)
{
	return last_error;
}

static int resolve_with_dlsym(void *handle, const char *name, void **ret_fn, void *userdata)
{
	(void) dlerror();
	void *fn = dlsym(handle, name);
	if (!fn) {
		remember_dlerror();
		return -ENOENT;
	}
	*ret_fn = fn;
	return 0;
}

int cs_dl_open_table(const char *soname, const struct cs_dl_sym *syms, size_t n_syms, void *table,
		     cs_dl_resolver resolver, void *userdata, void **ret_handle,
		     const char **ret_missing)
{
	void *handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!handle) {
		remember_dlerror();
		return -ENOENT;
	}
	if (!resolver)
		resolver = resolve_with_dlsym;

	for (size_t i = 0; i < n_syms; i++) {
		void *fn = NULL;
		int r = resolver(handle, syms[i].name, &fn, userdata);
		if (r == -ENOENT && syms[i].optional)
			fn = NULL;
		else if (r < 0) {
			if (ret_missing)
				*ret_missing = syms[i].name;
			dlclose(handle);
			return r == -ENOENT ? -ENOSYS : r;
		}
		memcpy((char *) table + syms[i].offset, &fn, sizeof(fn));
	}
	*ret_handle = handle;
	return 0;
}
