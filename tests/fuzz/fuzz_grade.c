/* layers: stages common */
/* Fuzz target: the grader's answer extraction (stages/grade.h).
 * Input: an optional header, "\n===\n", then the model's reply. Header
 * lines "K: text" give the options (K the key), a line "gold: text" the
 * gold answer (an option key with options, else open-ended text). Without
 * a header the reply is graded against A-D options (or yes/no/maybe when its
 * first byte is odd) and against an open-ended gold. Checks: verdicts as
 * documented, an extracted key is one of the options, answers are bounded
 * valid UTF-8. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/utf8.h"
#include "stages/grade.h"
#include "tests/fuzz/fuzz.h"

/* Replies reach the grader from JSON, so they are valid UTF-8; the answer
 * is promised valid UTF-8 only then. */
static bool reply_utf8;

static void check_result(int rc, const struct grade_result *r, json_t *options)
{
	size_t n;

	if (rc != 0) {
		fuzz_assert(rc == -EINVAL || rc == -E2BIG || rc == -ENOMEM);
		return;
	}
	fuzz_assert(r->rule != NULL && r->verdict <= GRADE_NEEDS_JUDGE);
	fuzz_assert(grade_verdict_name(r->verdict) != NULL);
	n = strnlen(r->answer, sizeof(r->answer));
	fuzz_assert(n < sizeof(r->answer));
	if (reply_utf8)
		fuzz_assert(utf8_check(r->answer, n) == n);
	if (options && (r->verdict == GRADE_FOUND || r->verdict == GRADE_CORRECT ||
			r->verdict == GRADE_WRONG))
		fuzz_assert(json_object_get(options, r->answer) != NULL);
}

static void grade_all(const char *reply, json_t *options, const char *gold)
{
	struct grade_result r;
	json_t *item;
	char *norm;
	int rc;

	if (options && json_object_size(options) > 0) {
		memset(&r, 0, sizeof(r));
		rc = grade_extract_choice(reply, options, &r);
		check_result(rc, &r, options);
		if (rc == 0)
			fuzz_assert(r.verdict == GRADE_FOUND || r.verdict == GRADE_NONE ||
				    r.verdict == GRADE_AMBIGUOUS);
	}
	if (gold) {
		memset(&r, 0, sizeof(r));
		rc = grade_open(reply, gold, &r);
		check_result(rc, &r, NULL);
		if (rc == 0)
			fuzz_assert(r.verdict == GRADE_CORRECT || r.verdict == GRADE_NEEDS_JUDGE ||
				    r.verdict == GRADE_NONE);
	}
	item = json_pack("{s:s,s:s}", "question", "q", "answer", gold ? gold : "A");
	if (item) {
		if (options)
			json_object_set(item, "options", options);
		memset(&r, 0, sizeof(r));
		rc = grade_item(item, reply, &r);
		check_result(rc, &r, options);
		json_decref(item);
	}
	norm = grade_normalize(reply);
	free(norm);
}

/* Parses the header into options and gold; returns the reply start. */
static const char *parse_header(char *text, json_t **options, char **gold)
{
	char *sep = strstr(text, "\n===\n"), *line, *next;

	*options = NULL;
	*gold = NULL;
	if (!sep)
		return text;
	*sep = '\0';
	*options = json_object();
	for (line = text; line; line = next) {
		char *colon;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		colon = strstr(line, ": ");
		if (!colon || colon == line)
			continue;
		*colon = '\0';
		if (strcmp(line, "gold") == 0)
			*gold = colon + 2;
		else if (*options && utf8_check(line, strlen(line)) == strlen(line))
			json_object_set_new(*options, line, json_string(colon + 2));
	}
	return sep + 5;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const letters[][2] = {
		{"A", "Vitamin A deficiency"}, {"B", "Iron deficiency anemia"},
		{"C", "Acute pancreatitis"},   {"D", "None of the above"}};
	char *text = malloc(size + 1), *gold;
	const char *reply;
	json_t *options;
	size_t i;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	reply = parse_header(text, &options, &gold);
	reply_utf8 = utf8_check(reply, strlen(reply)) == strlen(reply);
	if (options) {
		grade_all(reply, options, gold);
	} else {
		options = json_object();
		if (size && (data[0] & 1)) {
			json_object_set_new(options, "yes", json_string("yes"));
			json_object_set_new(options, "no", json_string("no"));
			json_object_set_new(options, "maybe", json_string("maybe"));
		} else {
			for (i = 0; i < 4; i++)
				json_object_set_new(options, letters[i][0], json_string(letters[i][1]));
		}
		grade_all(reply, options, NULL);
		grade_all(reply, NULL, "acute pancreatitis");
	}
	json_decref(options);
	free(text);
	return 0;
}
