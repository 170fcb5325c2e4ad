#include "stages/export.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "stages/prompts.h"

static const char *const names[] = { "openai", "sharegpt", "alpaca", "grpo" };

int export_format_parse(const char *s)
{
	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

const char *export_format_name(enum export_format f)
{
	if ((unsigned)f >= sizeof names / sizeof names[0])
		return "?";
	return names[f];
}

const char *export_format_list(void)
{
	return "openai|sharegpt|alpaca|grpo";
}

static int is_mc(json_t *item)
{
	json_t *o = json_object_get(item, "options");

	return json_is_object(o) && json_object_size(o) > 0;
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
	if (!rc && is_mc(item)) {
		opts = prompts_options_text(json_object_get(item, "options"));
		rc = opts ? buf_printf(&b, "\n\n%s", opts) : -ENOMEM;
	}
	free(opts);
	if (rc) {
		buf_free(&b);
		return NULL;
	}
	if (!b.base)
		return strdup("");
	return buf_take(&b);
}

/* The R1-style instruction appended to a grpo prompt. */
static int grpo_instruction(struct buf *b, json_t *item)
{
	const char *key;
	json_t *v;
	int rc, first = 1;

	rc = buf_puts(b, "\n\nYour task:\n1. Think through the question step by step, and enclose "
	                 "your reasoning process in <think>...</think> tags.\n");
	if (rc)
		return rc;
	if (!is_mc(item))
		return buf_puts(b, "2. Then give your final answer, in a few words, inside "
		                   "<answer>...</answer> tags.\n3. No extra information or text outside "
		                   "of these tags.");
	rc = buf_puts(b, "2. Then provide the key of the single correct option (");
	json_object_foreach(json_object_get(item, "options"), key, v) {
		(void)v;
		if (!rc && !first)
			rc = buf_puts(b, ", ");
		if (!rc)
			rc = buf_puts(b, key);
		first = 0;
	}
	if (!rc)
		rc = buf_puts(b, ") inside <answer>...</answer> tags.\n3. No extra information or text "
		                 "outside of these tags.");
	return rc;
}

int export_record(enum export_format fmt, json_t *item, const char *output,
                  const struct export_opts *opts, char **line_out)
{
	const char *sys = opts && opts->system ? opts->system : EXPORT_SYSTEM_PROMPT;
	const char *answer, *id;
	char *user = NULL, *text = NULL;
	json_t *rec = NULL;
	struct buf b;
	int rc = 0;
	int ids = !(opts && opts->no_ids);

	buf_init(&b, EXPORT_RECORD_MAX);
	if (!line_out)
		return -EINVAL;
	*line_out = NULL;
	if ((unsigned)fmt > EXPORT_GRPO || !json_is_object(item))
		return -EINVAL;
	answer = json_string_value(json_object_get(item, "answer"));
	id = json_string_value(json_object_get(item, "id"));
	if (!answer || (ids && !id))
		return -EINVAL;
	if (is_mc(item) && !json_is_string(json_object_get(json_object_get(item, "options"), answer)))
		return -EINVAL;
	if (fmt != EXPORT_GRPO && (!output || !output[0]))
		return -EINVAL;
	user = export_user_text(item);
	if (!user) {
		rc = json_is_string(json_object_get(item, "question")) ? -ENOMEM : -EINVAL;
		goto out;
	}
	/* json_pack returns NULL for invalid UTF-8 (or ENOMEM): -EINVAL */
	switch (fmt) {
	case EXPORT_OPENAI:
		rec = json_pack("{s:[{s:s,s:s},{s:s,s:s},{s:s,s:s}]}", "messages", "role", "system",
		                "content", sys, "role", "user", "content", user, "role", "assistant",
		                "content", output);
		break;
	case EXPORT_SHAREGPT:
		rec = json_pack("{s:[{s:s,s:s},{s:s,s:s}],s:s}", "conversations", "from", "human", "value",
		                user, "from", "gpt", "value", output, "system", sys);
		break;
	case EXPORT_ALPACA:
		rec = json_pack("{s:s,s:s,s:s,s:s}", "instruction", user, "input", "", "output", output,
		                "system", sys);
		break;
	case EXPORT_GRPO:
		rc = buf_puts(&b, user);
		if (!rc)
			rc = grpo_instruction(&b, item);
		if (rc) {
			rc = rc == -ENOBUFS ? -E2BIG : rc;
			goto out;
		}
		rec = json_pack("{s:[{s:s,s:s}],s:s}", "prompt", "role", "user", "content", b.base,
		                "answer", answer);
		break;
	}
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
	buf_reset(&b);
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
