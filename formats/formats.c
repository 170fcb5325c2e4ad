#include "formats/formats.h"

#include <stdio.h>
#include <string.h>

#include "formats/export.h"
#include "formats/import.h"

void formats_names_join(char *out, size_t outlen, const char *const *names, size_t n,
                        const char *sep, const char *last)
{
	size_t off = 0;

	if (!outlen)
		return;
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		int k = snprintf(out + off, outlen - off, "%s%s", i == 0 ? "" : i + 1 == n ? last : sep,
		                 names[i]);

		if (k < 0 || (size_t)k >= outlen - off) {
			if (outlen > 4)
				memcpy(out + outlen - 4, "...", 4);
			return;
		}
		off += (size_t)k;
	}
}

/* Appends {"name","description"} to arr; 0 or -1 on ENOMEM. */
static int row_append(json_t *arr, const char *name, const char *description)
{
	return json_array_append_new(arr, json_pack("{s:s, s:s}", "name", name, "description",
	                                             description));
}

json_t *formats_catalog(void)
{
	json_t *imp = json_array(), *exp = json_array();
	int rc = imp && exp ? 0 : -1;

	for (size_t i = 0; !rc && import_format_at(i); i++)
		rc = row_append(imp, import_format_at(i)->name, import_format_at(i)->description);
	for (size_t i = 0; !rc && export_format_at(i); i++)
		rc = row_append(exp, export_format_at(i)->name, export_format_at(i)->description);
	if (rc) {
		json_decref(imp);
		json_decref(exp);
		return NULL;
	}
	return json_pack("{s:o, s:o}", "import", imp, "export", exp);
}
