#include "stages/select.h"

#include <string.h>

static const struct select_strategy *const strategies[SELECT__N] = {
	[SELECT_TEACHER_SCREEN] = &select_teacher_screen,
	[SELECT_NONE] = &select_none,
};

const struct select_strategy *select_get(enum select_id id)
{
	return strategies[(id >= 0 && id < SELECT__N) ? id : SELECT_NONE];
}

int select_parse(const char *name)
{
	for (int i = 0; name && i < SELECT__N; i++)
		if (strcmp(strategies[i]->name, name) == 0)
			return i;
	return -1;
}
