/* layers: teacher_clients common */
/* Fuzz target: the model reply parsers (teacher_clients/openai.h). The input
 * is a reply body: validated as a chat and as a completion reply, read as a
 * provider error body, and searched for a JSON object as model text (the
 * whole input, and a valid reply's content). Checks: nothing crashes, the
 * result and the error agree, messages are bounded and NUL-terminated. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "teacher_clients/openai.h"
#include "tests/fuzz/fuzz.h"

static void check_reply(const uint8_t *data, size_t size, enum openai_kind kind)
{
	struct openai_reply r;
	json_t *obj = NULL;
	char err[128];
	int rc;

	memset(&r, 0, sizeof(r));
	rc = openai_reply_parse((const char *)data, size, kind, &r);
	fuzz_assert(openai_err_name(r.err) != NULL);
	fuzz_assert(memchr(r.msg, '\0', sizeof(r.msg)) && memchr(r.error_code, '\0', sizeof(r.error_code)));
	if (rc == 0) {
		fuzz_assert(r.err == OPENAI_OK && r.root != NULL);
		fuzz_assert(r.content != NULL && r.content[0] != '\0');
		fuzz_assert(r.tokens_in >= 0 && r.tokens_out >= 0);
		if (openai_json_extract(r.content, &obj, err, sizeof(err)) == 0) {
			fuzz_assert(json_is_object(obj));
			json_decref(obj);
		}
	} else {
		fuzz_assert(rc == -EBADMSG && r.err != OPENAI_OK && r.msg[0] != '\0');
	}
	openai_reply_clear(&r);
	fuzz_assert(r.root == NULL && r.content == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char code[64], msg[256], err[128];
	json_t *obj = NULL;
	char *text;
	int rc;

	check_reply(data, size, OPENAI_CHAT);
	check_reply(data, size, OPENAI_COMPLETION);

	memset(code, 'x', sizeof(code));
	memset(msg, 'x', sizeof(msg));
	openai_error_parse((const char *)data, size, code, sizeof(code), msg, sizeof(msg));
	fuzz_assert(memchr(code, '\0', sizeof(code)) && memchr(msg, '\0', sizeof(msg)));

	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	memset(err, 'x', sizeof(err));
	rc = openai_json_extract(text, &obj, err, sizeof(err));
	if (rc == 0) {
		fuzz_assert(json_is_object(obj));
		json_decref(obj);
	} else {
		fuzz_assert(rc == -EBADMSG && memchr(err, '\0', sizeof(err)) && err[0] != '\0');
	}
	free(text);
	return 0;
}
