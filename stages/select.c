#include "stages/select.h"

#include <string.h>

static const struct select_strategy *const strategies[SELECT__N] = {
	[SELECT_TEACHER_SCREEN] = &select_teacher_screen,
	[SELECT_NONE] = &select_none,
	[SELECT_DIQ] = &select_diq,
	[SELECT_3DS] = &select_3ds,
};

int select_then(const struct select_strategy *s)
{
	return s->then != STEP_SCREEN ? (int)s->then : step_def(s->first_step)->next;
}

void select_hold_scored(double budget, struct step_outcome *out)
{
	(void)budget;
	if (out->next == STEP_EXPLAIN)
		out->next = -1;
}

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
