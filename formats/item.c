#include "formats/item.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

bool item_is_mc(json_t *item)
{
	json_t *o = json_object_get(item, "options");

	return json_is_object(o) && json_object_size(o) > 0;
}

char *item_options_text(json_t *options, size_t max)
{
	struct buf b;
	const char *key;
	json_t *v;
	int rc = 0;

	if (!json_is_object(options))
		return NULL;
	buf_init(&b, max);
	json_object_foreach(options, key, v) {
		const char *txt = json_string_value(v);

		if (b.len)
			rc = buf_puts(&b, "\n");
		/* "KEY. TEXT", without a printf per option (one render a call) */
		if (!rc)
			rc = buf_puts(&b, key);
		if (!rc)
			rc = buf_append(&b, ". ", 2);
		if (!rc)
			rc = buf_puts(&b, txt ? txt : "");
		if (rc) {
			buf_free(&b);
			return NULL;
		}
	}
	return b.base ? buf_take(&b) : strdup("");
}
