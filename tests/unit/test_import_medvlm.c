/* layers: formats common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "formats/import.h"

/* The medvlm importer (formats/import_medvlm.c): items and reasons as text. */
struct sink {
	struct buf items, errors;
};

static int on_item(void *ud, json_t *item, long line)
{
	struct sink *s = ud;
	char *d = json_dumps(item, JSON_COMPACT | JSON_ENSURE_ASCII);

	assert_non_null(d);
	assert_int_equal(buf_printf(&s->items, "%ld: %s\n", line, d), 0);
	free(d);
	json_decref(item);
	return 0;
}

static int on_error(void *ud, long line, const char *reason)
{
	struct sink *s = ud;

	assert_int_equal(buf_printf(&s->errors, "%ld: %s\n", line, reason), 0);
	return 0;
}

/* Parses doc; *items and *errors are the sink's text (static buffers). */
static void run(const char *doc, const char **items, const char **errors)
{
	static char it[8192], er[8192];
	struct sink s;
	struct import_cb cb = { .on_item = on_item, .on_error = on_error, .ud = &s };
	char err[256];
	struct import_parser *p;

	buf_init(&s.items, (size_t)1 << 20);
	buf_init(&s.errors, (size_t)1 << 20);
	p = import_parser_new("medvlm", NULL, &cb, err, sizeof(err));
	assert_non_null(p);
	assert_int_equal(import_parser_feed(p, doc, strlen(doc)), 0);
	assert_int_equal(import_parser_finish(p), 0);
	import_parser_free(p);
	snprintf(it, sizeof(it), "%s", s.items.base ? s.items.base : "");
	snprintf(er, sizeof(er), "%s", s.errors.base ? s.errors.base : "");
	buf_free(&s.items);
	buf_free(&s.errors);
	*items = it;
	*errors = er;
}

#define IMG "data:image/png;base64,iVBORw0KGgo="

static void test_layout(void **state)
{
	const char *items, *errors;

	(void)state;
	run("[{\"image\":[\"" IMG "\"],\"problem\":\"What is it?\\nA) Bleed\\nB) Infarct\","
	    "\"solution\":\"B\",\"question\":\"What is it?\",\"options\":[\"Bleed\",\"Infarct\"],"
	    "\"answer\":\"Infarct\",\"dataset\":\"OmniMedVQA\",\"subset\":\"CT\",\"id\":\"q1\"},"
	    /* no options array: from the problem's lines; solution in answer tags */
	    "{\"image\":\"" IMG "\",\"problem\":\"Which?\\nA) X\\nB) Y\\nC) Z\","
	    "\"solution\":\"<answer> c </answer>\",\"id\":\"q2\"},"
	    /* no solution: the letter of the answer text */
	    "{\"question\":\"Q3?\",\"options\":[\"u\",\"v\"],\"answer\":\"v\",\"id\":\"q3\"}]",
	    &items, &errors);
	assert_string_equal(errors, "");
	assert_non_null(strstr(items, "1: {\"id\":\"q1\",\"question\":\"What is it?\",\"options\":"
				      "{\"A\":\"Bleed\",\"B\":\"Infarct\"},\"answer\":\"B\",\"topic\":\"CT\","
				      "\"images\":[\"" IMG "\"]"));
	assert_non_null(strstr(items, "\"problem\":\"What is it?\\nA) Bleed\\nB) Infarct\""));
	assert_non_null(strstr(items, "2: {\"id\":\"q2\",\"question\":\"Which?\",\"options\":"
				      "{\"A\":\"X\",\"B\":\"Y\",\"C\":\"Z\"},\"answer\":\"C\""));
	assert_non_null(strstr(items, "3: {\"id\":\"q3\",\"question\":\"Q3?\",\"options\":"
				      "{\"A\":\"u\",\"B\":\"v\"},\"answer\":\"B\""));
}

static void test_refused(void **state)
{
	const char *items, *errors;

	(void)state;
	run("[{\"image\":[\"images/x.png\"],\"problem\":\"Q\\nA) a\\nB) b\",\"solution\":\"A\"},"
	    "{\"problem\":\"Q\\nA) a\\nB) b\",\"solution\":\"C\"},"
	    "{\"problem\":\"Q\",\"options\":[\"a\",\"b\"],\"solution\":\"AB\"},"
	    "{\"question\":\"Q\",\"options\":[\"a\",\"b\"],\"solution\":\"A\",\"answer\":\"b\"},"
	    "{\"question\":\"Q\",\"options\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\","
	    "\"j\",\"k\"],\"solution\":\"A\"},"
	    "{\"solution\":\"A\"},"
	    "{\"question\":\"Q\",\"options\":[\"a\"]},"
	    "{\"question\":\"Q\",\"options\":[\"a\"],\"solution\":\"A\",\"image\":7}]",
	    &items, &errors);
	assert_string_equal(items, "");
	assert_non_null(strstr(errors, "\"image\"[0] \"images/x.png\" is a file path, which the daemon never opens"));
	assert_non_null(strstr(errors, "\"solution\" C is not one of the 2 options"));
	assert_non_null(strstr(errors, "\"solution\" \"AB\" is not one option letter A-J"));
	assert_non_null(strstr(errors, "\"solution\" A is \"a\" but \"answer\" is \"b\""));
	assert_non_null(strstr(errors, "11 options, more than 10 (A-J)"));
	assert_non_null(strstr(errors, "missing \"problem\" (or \"question\")"));
	assert_non_null(strstr(errors, "missing \"solution\""));
	assert_non_null(strstr(errors, "\"image\" must be an array of strings, found"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
