/* The export core: the checks every record passes, the user turn, the "id"
 * and the line; the table of layouts. The layouts themselves are
 * formats/export_<name>.c. */
#include "formats/export.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "formats/formats.h"
#include "formats/item.h"

/* Options text is cut where the prompts cut it (PROMPTS_RENDER_MAX), so an
 * item exports exactly when its prompts render. */
#define EXPORT_OPTIONS_MAX ((size_t)512 << 10)

/* The layouts, in listing order. A new exporter is one line here. */
static const struct export_format *const formats[] = {
	&export_format_openai,
	&export_format_sharegpt,
	&export_format_alpaca,
	&export_format_grpo,
	&export_format_refcoco,
	&export_format_lvit,
};

#define NFORMATS (sizeof(formats) / sizeof(formats[0]))

const struct export_format *export_format_at(size_t i) { return i < NFORMATS ? formats[i] : NULL; }

const struct export_format *export_format_find(const char *name)
{
	for (size_t i = 0; name && i < NFORMATS; i++)
		if (strcmp(name, formats[i]->name) == 0)
			return formats[i];
	return NULL;
}

void export_format_names(char *out, size_t outlen, const char *sep, const char *last)
{
	const char *names[NFORMATS];

	for (size_t i = 0; i < NFORMATS; i++)
		names[i] = formats[i]->name;
	formats_names_join(out, outlen, names, NFORMATS, sep, last);
}

static char format_list[256];
static pthread_once_t format_list_once = PTHREAD_ONCE_INIT;

static void format_list_build(void) { export_format_names(format_list, sizeof(format_list), "|", "|"); }

const char *export_format_list(void)
{
	pthread_once(&format_list_once, format_list_build);
	return format_list;
}

char *export_user_text(json_t *item)
{
	const char *q = json_string_value(json_object_get(item, "question"));
	const char *ctx = json_string_value(json_object_get(item, "context"));
	char *opts = NULL;
	struct buf b;
	int rc = 0;

	if (!q)
		return NULL;
	buf_init(&b, EXPORT_RECORD_MAX);
	if (ctx && ctx[0])
		rc = buf_printf(&b, "Context:\n%s\n\nQuestion:\n", ctx);
	if (!rc)
		rc = buf_puts(&b, q);
	if (!rc && item_is_mc(item)) {
		opts = item_options_text(json_object_get(item, "options"), EXPORT_OPTIONS_MAX);
		rc = opts ? buf_printf(&b, "\n\n%s", opts) : -ENOMEM;
	}
	free(opts);
	if (rc) {
		buf_free(&b);
		return NULL;
	}
	return b.base ? buf_take(&b) : strdup("");
}

int export_record(const struct export_format *fmt, json_t *item, const char *output,
                  const struct export_opts *opts, char **line_out)
{
	struct export_input in = { .item = item, .output = output };
	const char *id;
	char *user = NULL, *text = NULL;
	json_t *rec = NULL;
	struct buf b;
	int rc = 0;
	int ids = !(opts && opts->no_ids);

	buf_init(&b, EXPORT_RECORD_MAX);
	if (!line_out)
		return -EINVAL;
	*line_out = NULL;
	if (!fmt || !fmt->build || !json_is_object(item))
		return -EINVAL;
	in.system = opts && opts->system ? opts->system : EXPORT_SYSTEM_PROMPT;
	in.prompt = opts ? opts->prompt : NULL;
	in.answer = json_string_value(json_object_get(item, "answer"));
	id = json_string_value(json_object_get(item, "id"));
	if (!in.answer || (ids && !id))
		return -EINVAL;
	if (item_is_mc(item) &&
	    !json_is_string(json_object_get(json_object_get(item, "options"), in.answer)))
		return -EINVAL;
	if (fmt->needs_output && (!output || !output[0]))
		return -EINVAL;
	user = export_user_text(item);
	if (!user) {
		rc = json_is_string(json_object_get(item, "question")) ? -ENOMEM : -EINVAL;
		goto out;
	}
	in.user = user;
	rc = fmt->build(&in, &rec);
	if (rc)
		goto out;
	/* json_pack returns NULL for invalid UTF-8 (or ENOMEM): -EINVAL */
	if (!rec) {
		rc = -EINVAL;
		goto out;
	}
	if (ids && json_object_set_new(rec, "id", json_string(id)) != 0) {
		rc = -ENOMEM;
		goto out;
	}
	text = json_dumps(rec, JSON_COMPACT);
	if (!text) {
		rc = -ENOMEM;
		goto out;
	}
	rc = buf_puts(&b, text);
	if (!rc)
		rc = buf_puts(&b, "\n");
	if (rc) {
		rc = rc == -ENOBUFS ? -E2BIG : rc;
		goto out;
	}
	*line_out = buf_take(&b);
out:
	buf_free(&b);
	free(text);
	free(user);
	json_decref(rec);
	return rc;
}
