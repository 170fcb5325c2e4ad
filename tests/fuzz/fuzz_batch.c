/* layers: teacher_clients store common */
/* Fuzz target: what a provider's Batch API sends back (teacher_clients/
 * batch.h): the first byte picks the provider (OpenAI or Anthropic) and
 * whether the rest is a poll reply or a results file, which is cut into
 * lines as the lane does. Checks: a parse fails with -EBADMSG and a reason
 * or fills the result consistently (ids and messages bounded, a succeeded
 * result has a body, counts non-negative, result URLs terminated). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "teacher_clients/batch.h"
#include "tests/fuzz/fuzz.h"

static void check_poll(const struct batch_api *api, const char *body, size_t len)
{
	struct batch_poll p;
	char err[200];
	int rc;

	memset(&p, 0, sizeof(p));
	memset(err, 'x', sizeof(err));
	rc = api->poll_parse("http://127.0.0.1:1", body, len, &p, err, sizeof(err));
	if (rc != 0) {
		fuzz_assert(rc == -EBADMSG && memchr(err, '\0', sizeof(err)) && err[0] != '\0');
		return;
	}
	fuzz_assert(memchr(p.status, '\0', sizeof(p.status)));
	fuzz_assert(memchr(p.result_url[0], '\0', sizeof(p.result_url[0])));
	fuzz_assert(memchr(p.result_url[1], '\0', sizeof(p.result_url[1])));
	fuzz_assert(p.total >= 0 && p.done >= 0 && p.failed >= 0);
}

static void check_line(const struct batch_api *api, const char *line, size_t len)
{
	struct batch_result r;
	int rc;

	memset(&r, 0, sizeof(r));
	rc = api->result_parse(line, len, &r);
	if (rc == 0) {
		fuzz_assert(memchr(r.custom_id, '\0', sizeof(r.custom_id)) && r.custom_id[0] != '\0');
		fuzz_assert(memchr(r.code, '\0', sizeof(r.code)) && memchr(r.msg, '\0', sizeof(r.msg)));
		fuzz_assert(r.kind >= BATCH_SUCCEEDED && r.kind <= BATCH_CANCELED);
		if (r.kind == BATCH_SUCCEEDED)
			fuzz_assert(r.body != NULL);
	} else {
		fuzz_assert(rc == -EBADMSG);
	}
	batch_result_clear(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct batch_api *api;
	const char *p, *end;
	char *copy;

	if (size < 1)
		return 0;
	api = data[0] % 2 ? &batch_anthropic : &batch_openai;
	copy = malloc(size);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, size - 1);
	copy[size - 1] = '\0';
	if (data[0] / 2 % 2) {
		check_poll(api, copy, size - 1);
	} else {
		for (p = copy, end = copy + size - 1; p < end;) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

			check_line(api, p, n);
			p += n + 1;
		}
	}
	free(copy);
	return 0;
}
