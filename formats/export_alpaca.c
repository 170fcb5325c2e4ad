/* alpaca: {"instruction":U,"input":"","output":O,"system":S}. */
#include "formats/export.h"

static int alpaca_build(const struct export_input *in, json_t **rec_out)
{
	*rec_out = json_pack("{s:s,s:s,s:s,s:s}", "instruction", in->user, "input", "", "output",
	                     in->output, "system", in->system);
	return 0;
}

const struct export_format export_format_alpaca = {
	.name = "alpaca",
	.description = "Alpaca: instruction, input, output, system",
	.needs_output = true,
	.build = alpaca_build,
};
