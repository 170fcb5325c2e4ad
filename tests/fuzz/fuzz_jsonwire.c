/* layers: common */
/* Fuzz target: the project's own JSON reader and writer of the wire path
 * (common/jsonload.h, jsondump.h), against jansson itself. The
 * first byte picks the flags (duplicate keys refused, any value at top
 * level); the rest is a reply body. Checks: jsonload_buf accepts exactly
 * what json_loadb accepts, with equal values in the same key order and, on
 * a refusal, the same error text and position; the canonical text of any
 * container it returns is byte for byte json_dumps(COMPACT|SORT_KEYS), the
 * bytes every stored call's cache key is made from. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/jsondump.h"
#include "common/jsonload.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t e1, e2;
	json_t *a, *b;
	size_t flags = 0;

	if (size < 1)
		return 0;
	if (data[0] & 1)
		flags |= JSON_REJECT_DUPLICATES;
	if (data[0] & 2)
		flags |= JSON_DECODE_ANY;
	a = jsonload_buf((const char *)data + 1, size - 1, flags, &e1);
	b = json_loadb((const char *)data + 1, size - 1, flags, &e2);
	fuzz_assert((a == NULL) == (b == NULL));
	if (!a) {
		fuzz_assert(strcmp(e1.text, e2.text) == 0);
		fuzz_assert(e1.line == e2.line && e1.column == e2.column && e1.position == e2.position);
		return 0;
	}
	fuzz_assert(json_equal(a, b));
	{
		char *ta = json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY);
		char *tb = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY);

		fuzz_assert((ta == NULL) == (tb == NULL));
		if (ta)
			fuzz_assert(strcmp(ta, tb) == 0); /* same key order */
		free(ta);
		free(tb);
	}
	if (json_is_object(a) || json_is_array(a)) {
		size_t n = 0;
		char *mine = jsondump_sorted(a, &n);
		char *theirs = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);

		fuzz_assert((mine == NULL) == (theirs == NULL));
		if (mine)
			fuzz_assert(n == strlen(theirs) && memcmp(mine, theirs, n) == 0);
		free(mine);
		free(theirs);
	}
	json_decref(a);
	json_decref(b);
	return 0;
}
