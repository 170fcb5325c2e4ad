/* The table of model providers. */
#include "teacher_clients/provider.h"

#include <stdlib.h>
#include <string.h>

/* One row per provider; the first is the default. */
static const struct provider *const providers[] = {
	&provider_openai,
	&provider_anthropic,
};

const struct provider *provider_find(const char *name)
{
	size_t i;

	for (i = 0; name && i < sizeof(providers) / sizeof(providers[0]); i++)
		if (strcmp(providers[i]->name, name) == 0)
			return providers[i];
	return NULL;
}

const struct provider *provider_default(void)
{
	return providers[0];
}

void provider_reply_clear(struct provider_reply *r)
{
	if (!r)
		return;
	json_decref(r->root);
	free(r->own);
	memset(r, 0, sizeof(*r));
}
