/* openai: the chat fine-tuning layout,
 * {"messages":[system S, user U, assistant O]}. */
#include "formats/export.h"

static int openai_build(const struct export_input *in, json_t **rec_out)
{
	*rec_out = json_pack("{s:[{s:s,s:s},{s:s,s:s},{s:s,s:s}]}", "messages", "role", "system",
	                     "content", in->system, "role", "user", "content", in->user, "role",
	                     "assistant", "content", in->output);
	return 0;
}

const struct export_format export_format_openai = {
	.name = "openai",
	.description = "OpenAI chat fine-tuning: messages (system, user, assistant)",
	.needs_output = true,
	.build = openai_build,
};
