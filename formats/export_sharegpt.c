/* sharegpt: {"conversations":[human U, gpt O],"system":S}. */
#include "formats/export.h"

static int sharegpt_build(const struct export_input *in, json_t **rec_out)
{
	*rec_out = json_pack("{s:[{s:s,s:s},{s:s,s:s}],s:s}", "conversations", "from", "human",
	                     "value", in->user, "from", "gpt", "value", in->output, "system",
	                     in->system);
	return 0;
}

const struct export_format export_format_sharegpt = {
	.name = "sharegpt",
	.description = "ShareGPT conversations (human, gpt) with the system prompt",
	.needs_output = true,
	.build = sharegpt_build,
};
