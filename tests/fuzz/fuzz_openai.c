/* layers: teacher_clients common */
/* Fuzz target: the model reply parsers (teacher_clients/openai.h). The input
 * is a reply body: validated as a chat and as a completion reply, read as a
 * provider error body, and searched for a JSON object as model text (the
 * whole input, and a valid reply's content). Checks: nothing crashes, the
 * result and the error agree, messages are bounded and NUL-terminated, and
 * the flat path (openai_reply_parse_flat) gives what the tree path gives. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/jsonload.h"
#include "teacher_clients/openai.h"
#include "tests/fuzz/fuzz.h"
#include "tests/jsonpull_tree.h"

static bool same_str(const char *a, const char *b)
{
	return (!a || !b) ? a == b : strcmp(a, b) == 0;
}

/* The flat path against the tree path t (already parsed, return rt). */
static void check_flat(const uint8_t *data, size_t size, enum openai_kind kind, const struct openai_reply *t,
		       int rt)
{
	struct openai_reply f;
	int rf;

	rf = openai_reply_parse_flat((const char *)data, size, kind, &f);
	fuzz_assert(rf == rt && f.err == t->err);
	fuzz_assert(strcmp(f.msg, t->msg) == 0 && strcmp(f.error_code, t->error_code) == 0);
	fuzz_assert(same_str(f.content, t->content) && same_str(f.finish_reason, t->finish_reason));
	fuzz_assert(f.length_cut == t->length_cut);
	fuzz_assert(f.tokens_in == t->tokens_in && f.tokens_out == t->tokens_out);
	if (rf == 0 && !f.root)
		fuzz_assert(f.own != NULL && f.content == f.own && f.logprobs == NULL);
	else
		fuzz_assert(f.own == NULL);
	openai_reply_clear(&f);
}

/* A document the pull reader reads to its end is one jansson loads (with
 * duplicates rejected) into the same values. */
static void check_pull(const uint8_t *data, size_t size)
{
	struct jsonpull j;
	json_t *v, *ref;
	bool dup = false;

	jsonpull_init(&j, (const char *)data, size);
	v = jsonpull_tree(&j, jsonpull_next(&j), 0, &dup);
	fuzz_assert(!dup); /* the reader stops at a repeated key */
	if (v && jsonpull_next(&j) == JSONPULL_END) {
		ref = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
		fuzz_assert(ref != NULL && json_equal(v, ref));
		json_decref(ref);
	}
	json_decref(v);
	jsonpull_done(&j);
}

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
	check_flat(data, size, kind, &r, rc);
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
	check_pull(data, size);

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
