/* layers: stages store common */
/* Fuzz target: the job spec (stages/jobspec.h) as POST /v1/jobs sees it:
 * json_loadb of the raw bytes (flags as daemon/api.c), then jobspec_parse.
 * Checks: errors name a code and a message; an accepted spec normalizes
 * (jobspec_to_json) to a spec that parses again to the same JSON. */
#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "common/err.h"
#include "common/utf8.h"
#include "stages/jobspec.h"
#include "tests/fuzz/fuzz.h"

static void check_err(int rc, const struct mt_err *e)
{
	fuzz_assert(rc == -EINVAL || rc == -EBADMSG);
	fuzz_assert(e->code[0] != '\0' && e->message[0] != '\0');
	fuzz_assert(memchr(e->message, '\0', sizeof(e->message)) != NULL);
	fuzz_assert(utf8_check(e->message, strlen(e->message)) == strlen(e->message));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *spec = json_loadb((const char *)data, size, 0, &jerr);
	json_t *norm = NULL, *again_json = NULL;
	struct jobspec js, again;
	struct mt_err err = {0};
	int rc;

	if (!spec)
		return 0;
	memset(&js, 0xa5, sizeof(js)); /* a parse must not rely on a zeroed struct */
	rc = jobspec_parse(spec, &js, &err);
	if (rc != 0) {
		check_err(rc, &err);
		if (!json_is_object(spec))
			fuzz_assert(rc == -EBADMSG);
		goto out;
	}
	fuzz_assert(memchr(js.name, '\0', sizeof(js.name)) && js.kind >= 0 && js.kind < JOB_KIND__N);
	/* [0, 1]: 1 holds out everything (an eval job over a test set) */
	fuzz_assert(js.eval_fraction >= 0 && js.eval_fraction <= 1);
	norm = jobspec_to_json(&js);
	fuzz_assert(norm != NULL);
	memset(&again, 0x5a, sizeof(again));
	memset(&err, 0, sizeof(err));
	rc = jobspec_parse(norm, &again, &err);
	if (rc != 0)
		fuzz_fail("normalized spec rejected: %s: %s", err.field, err.message);
	again_json = jobspec_to_json(&again);
	fuzz_assert(again_json != NULL);
	if (!json_equal(norm, again_json)) {
		char *a = json_dumps(norm, JSON_SORT_KEYS), *b = json_dumps(again_json, JSON_SORT_KEYS);
		fuzz_fail("normalization not stable: %s vs %s", a ? a : "?", b ? b : "?");
	}
	jobspec_clear(&again);
out:
	jobspec_clear(&js);
	json_decref(again_json);
	json_decref(norm);
	json_decref(spec);
	return 0;
}
