/* grpo: the RL prompt layout, {"prompt":[user U + R1],"answer":GOLD}. R1
 * asks, as MedVLM-R1 does, for the reasoning in <think>...</think> and the
 * answer in <answer>...</answer>; the set's output is not used. */
#include "formats/export.h"

#include <errno.h>
#include <string.h>

#include "common/buf.h"
#include "formats/item.h"

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
	if (!item_is_mc(item))
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

/* An RL prompt set's record, as TRL's GRPOTrainer reads it: the prompt as
 * chat messages whose content parts hold one image placeholder per image
 * and the exact prompt text, the images beside it (data: URLs), and the
 * gold in "solution" (the column MedVLM-R1's reward reads) and "answer". */
static int grpo_build_rl(const struct export_input *in, json_t **rec_out)
{
	json_t *parts = json_array(), *images = json_array(), *v;
	size_t i, total = strlen(in->prompt);

	if (!parts || !images)
		goto nomem;
	json_array_foreach(json_object_get(in->item, "images"), i, v) {
		const char *url = json_string_value(v);

		if (!url)
			continue;
		total += strlen(url);
		if (total > EXPORT_RECORD_MAX) {
			json_decref(parts);
			json_decref(images);
			return -E2BIG;
		}
		if (json_array_append_new(parts, json_pack("{s:s}", "type", "image")) ||
		    json_array_append(images, v))
			goto nomem;
	}
	if (json_array_append_new(parts, json_pack("{s:s, s:s}", "type", "text", "text", in->prompt)))
		goto nomem;
	*rec_out = json_pack("{s:[{s:s, s:o}], s:o, s:s, s:s}", "prompt", "role", "user", "content",
			     parts, "images", images, "solution", in->answer, "answer", in->answer);
	return 0;
nomem:
	json_decref(parts);
	json_decref(images);
	return -ENOMEM;
}

static int grpo_build(const struct export_input *in, json_t **rec_out)
{
	struct buf b;
	int rc;

	if (in->prompt)
		return grpo_build_rl(in, rec_out);
	buf_init(&b, EXPORT_RECORD_MAX);
	rc = buf_puts(&b, in->user);
	if (!rc)
		rc = grpo_instruction(&b, in->item);
	if (rc) {
		rc = rc == -ENOBUFS ? -E2BIG : rc;
		goto out;
	}
	*rec_out = json_pack("{s:[{s:s,s:s}],s:s}", "prompt", "role", "user", "content", b.base,
	                     "answer", in->answer);
out:
	buf_free(&b);
	return rc;
}

const struct export_format export_format_grpo = {
	.name = "grpo",
	.description = "GRPO prompts for RL: a user turn asking for <think>/<answer>, the gold "
	               "answer",
	.needs_output = false,
	.build = grpo_build,
};
