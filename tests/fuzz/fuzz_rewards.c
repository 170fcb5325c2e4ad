/* layers: stages common */
/* Fuzz target: the rule rewards (stages/rewards.h) on model completions.
 * Input: a gold key line ("C\n"), then the completion. Checks, for every
 * rule set: rewards are one of the documented values (format 0 or 1,
 * accuracy 0, 0.5 or 1), the same text scores the same twice, and strict
 * never rewards what r1 does not (strict's format implies r1's; strict's
 * accuracy 1 implies r1's accuracy 1). */
#include <stdlib.h>
#include <string.h>

#include "stages/rewards.h"
#include "tests/fuzz/fuzz.h"

static int value_ok(double v, int halves)
{
	return v == 0.0 || v == 1.0 || (halves && v == 0.5);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct reward_rules *r1 = rewards_find("r1"), *strict = rewards_find("strict");
	const uint8_t *nl = memchr(data, '\n', size < 64 ? size : 64);
	char gold[65];
	const char *text;
	size_t glen, len;
	double f[2], a[2];

	fuzz_assert(r1 && strict && rewards_find(NULL) == r1 && rewards_find("") == r1);
	if (!nl)
		return 0;
	glen = (size_t)(nl - data);
	memcpy(gold, data, glen);
	gold[glen] = '\0';
	if (strlen(gold) != glen)
		return 0; /* a gold key is a C string */
	text = (const char *)nl + 1;
	len = size - glen - 1;
	for (size_t i = 0; rewards_at(i); i++) {
		const struct reward_rules *r = rewards_at(i);
		double fv = r->format(text, len), av = r->accuracy(text, len, gold);

		fuzz_assert(r->name && r->name[0] && rewards_find(r->name) == r);
		fuzz_assert(value_ok(fv, 0) && value_ok(av, 1));
		fuzz_assert(fv == r->format(text, len) && av == r->accuracy(text, len, gold));
	}
	f[0] = r1->format(text, len);
	f[1] = strict->format(text, len);
	a[0] = r1->accuracy(text, len, gold);
	a[1] = strict->accuracy(text, len, gold);
	if (f[1] == 1.0)
		fuzz_assert(f[0] == 1.0);
	fuzz_assert(a[1] != 0.5);
	return 0;
}
