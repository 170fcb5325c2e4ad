/* Selection strategy "none": every item is explained; nothing is screened. */
#include "stages/select.h"

const struct select_strategy select_none = {
	.name = "none",
	.first_step = STEP_EXPLAIN,
};
