/* layers: formats common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "formats/import.h"

/* What a parser handed out: items as compact JSON lines "LINE: {...}" and
 * errors as "LINE: reason" lines, so a test compares one string. */
struct sink {
	struct buf items;
	struct buf errors;
	json_t *list; /* the items themselves, for spot checks */
	int stop_on_error;
	int keep;
};

static int on_item(void *ud, json_t *item, long line)
{
	struct sink *s = ud;
	char *d = json_dumps(item, JSON_COMPACT | JSON_ENSURE_ASCII);

	assert_non_null(d);
	assert_int_equal(buf_printf(&s->items, "%ld: %s\n", line, d), 0);
	free(d);
	if (s->keep)
		json_array_append(s->list, item);
	json_decref(item);
	return 0;
}

static int on_error(void *ud, long line, const char *reason)
{
	struct sink *s = ud;

	assert_int_equal(buf_printf(&s->errors, "%ld: %s\n", line, reason), 0);
	return s->stop_on_error;
}

static void sink_init(struct sink *s)
{
	memset(s, 0, sizeof(*s));
	buf_init(&s->items, (size_t)1 << 30);
	buf_init(&s->errors, (size_t)1 << 30);
	s->list = json_array();
}

static void sink_free(struct sink *s)
{
	buf_free(&s->items);
	buf_free(&s->errors);
	json_decref(s->list);
}

static const char *str(struct buf *b) { return b->base ? b->base : ""; }

static struct import_parser *parser(const char *fmt, size_t max_line, struct sink *s)
{
	struct import_opts o = {.max_line_bytes = max_line, .max_doc_bytes = 0};
	struct import_cb cb = {.on_item = on_item, .on_error = on_error, .ud = s};
	char err[256];
	struct import_parser *p = import_parser_new(fmt, &o, &cb, err, sizeof(err));

	assert_non_null(p);
	return p;
}

/* Parses data fed in chunks of `chunk` bytes (0 = one feed). */
static void run_chunked(const char *fmt, const char *data, size_t len, size_t chunk,
                        size_t max_line, struct sink *s)
{
	struct import_parser *p = parser(fmt, max_line, s);

	if (!chunk)
		chunk = len ? len : 1;
	for (size_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;

		assert_int_equal(import_parser_feed(p, data + off, n), 0);
	}
	assert_int_equal(import_parser_finish(p), 0);
	import_parser_free(p);
}

static void run(const char *fmt, const char *data, struct sink *s)
{
	run_chunked(fmt, data, strlen(data), 0, 0, s);
}

/* Errors only: runs and returns the error text (static). */
static const char *errors_of(const char *fmt, const char *data)
{
	static char out[4096];
	struct sink s;

	sink_init(&s);
	run(fmt, data, &s);
	snprintf(out, sizeof(out), "%s", str(&s.errors));
	sink_free(&s);
	return out;
}

/* ---- formats and API ---------------------------------------------------- */

static void test_unknown_format(void **state)
{
	struct import_cb cb = {.on_item = on_item, .on_error = on_error};
	char err[256];

	(void)state;
	assert_null(import_parser_new("xml", NULL, &cb, err, sizeof(err)));
	assert_string_equal(err,
	                    "unknown format \"xml\" (valid: native, medqa, medmcqa, pubmedqa, "
	                    "sharegpt, csv, masks, medvlm)");
	assert_null(import_parser_new(NULL, NULL, &cb, NULL, 0));
	assert_true(import_format_known("medmcqa"));
	assert_false(import_format_known("MedQA"));
	assert_ptr_equal(import_format_find("pubmedqa"), &import_format_pubmedqa);
	assert_null(import_format_find(NULL));
	assert_ptr_equal(import_format_at(0), &import_format_native);
	assert_ptr_equal(import_format_at(5), &import_format_csv);
	assert_ptr_equal(import_format_at(6), &import_format_masks);
	assert_ptr_equal(import_format_at(7), &import_format_medvlm);
	assert_null(import_format_at(8));
	for (size_t i = 0; import_format_at(i); i++)
		assert_true(import_format_at(i)->description[0] != '\0');
	assert_string_equal(import_format_list(),
			    "native, medqa, medmcqa, pubmedqa, sharegpt, csv, masks, medvlm");
	import_parser_free(NULL);
}

static void test_native_item(void **state)
{
	struct sink s;

	(void)state;
	sink_init(&s);
	run("native",
	    "{\"meta\":{\"src\":\"x\"},\"topic\":\"gi\",\"answer\":\"C\",\"options\":{\"A\":\"a\","
	    "\"B\":\"b\",\"C\":\"c\"},\"question\":\"Q?\",\"id\":\"gi-1\",\"explanation\":\"because\","
	    "\"images\":[\"x.png\"],\"extra\":5}\n"
	    "{\"id\":7,\"question\":\"open\",\"answer\":\"text\",\"explanation\":null,\"topic\":\"\"}\n"
	    "{\"question\":\"q3\",\"options\":[\"one\",\"two\"],\"answer\":\"B\"}\n",
	    &s);
	assert_string_equal(str(&s.errors), "");
	assert_string_equal(
		str(&s.items),
		"1: {\"id\":\"gi-1\",\"question\":\"Q?\",\"options\":{\"A\":\"a\",\"B\":\"b\",\"C\":\"c\"},"
		"\"answer\":\"C\",\"explanation\":\"because\",\"topic\":\"gi\",\"images\":[\"x.png\"],"
		"\"meta\":{\"extra\":5,\"src\":\"x\"}}\n"
		"2: {\"id\":\"7\",\"question\":\"open\",\"answer\":\"text\"}\n"
		"3: {\"id\":\"201a3566cabe9895\",\"question\":\"q3\",\"options\":{\"A\":\"one\",\"B\":\"two\"},"
		"\"answer\":\"B\"}\n");
	sink_free(&s);
}

static void test_item_id(void **state)
{
	json_t *o1 = json_pack("{ssss}", "A", "one", "B", "two");
	json_t *o2 = json_pack("{ssss}", "B", "two", "A", "one");
	char a[17], b[17];

	(void)state;
	import_item_id("q3", o1, "B", a);
	import_item_id("q3", o2, "B", b);
	assert_string_equal(a, b); /* option order does not matter */
	assert_string_equal(a, "201a3566cabe9895");
	import_item_id("q3", NULL, "B", b);
	assert_string_not_equal(a, b);
	import_item_id("", NULL, "", b);
	assert_int_equal(strlen(b), 16);
	json_decref(o1);
	json_decref(o2);
}

/* ---- JSONL errors ------------------------------------------------------ */

static void test_bad_json(void **state)
{
	(void)state;
	assert_string_equal(errors_of("native", "{\"question\":\"q\",\"answer\":\"a\"}\n"
	                                        "{\"question\":\"q2\" \"answer\":\"a\"}\n"
	                                        "{\"question\":\"q3\",\"answer\":\"a\"} x\n"
	                                        "[1,2]\n"
	                                        "{\"question\":\"q\",\"question\":\"a\"}\n"),
	                    "2: invalid JSON at column 25: '}' expected near '\"answer\"'\n"
	                    "3: invalid JSON at column 32: end of file expected near 'x'\n"
	                    "4: expected a JSON object, found an array\n"
	                    "5: invalid JSON at column 26: duplicate object key near '\"question\"'\n");
}

static void test_missing_fields(void **state)
{
	(void)state;
	assert_string_equal(
		errors_of("native", "{\"answer\":\"a\"}\n"
		                    "{\"question\":\"q\"}\n"
		                    "{\"question\":\"  \",\"answer\":\"a\"}\n"
		                    "{\"question\":\"q\",\"answer\":\"\"}\n"
		                    "{\"question\":5,\"answer\":\"a\"}\n"
		                    "{\"question\":\"q\",\"answer\":\"a\",\"id\":[]}\n"
		                    "{\"question\":\"q\",\"answer\":\"a\",\"id\":\"\"}\n"
		                    "{\"question\":\"q\",\"answer\":\"a\",\"topic\":3}\n"
		                    "{\"question\":\"q\",\"answer\":\"a\",\"meta\":[]}\n"
		                    "{\"question\":\"q\",\"answer\":\"a\",\"images\":[\"\"]}\n"),
		"1: missing \"question\"\n"
		"2: missing \"answer\"\n"
		"3: \"question\" is empty\n"
		"4: \"answer\" is empty\n"
		"5: \"question\" must be a string, found a number\n"
		"6: \"id\" must be a string or an integer, found an array\n"
		"7: \"id\" is empty\n"
		"8: \"topic\" must be a string, found a number\n"
		"9: \"meta\" must be an object, found an array\n"
		"10: \"images\"[0] must be a non-empty string\n");
}

static void test_options(void **state)
{
	(void)state;
	assert_string_equal(
		errors_of("native",
		          "{\"question\":\"q\",\"options\":{\"A\":\"x\",\"B\":\"y\"},\"answer\":\"C\"}\n"
		          "{\"question\":\"q\",\"options\":{\"A\":\"x\"},\"answer\":\"A\"}\n"
		          "{\"question\":\"q\",\"options\":{\"A\":\"x\",\"B\":2},\"answer\":\"A\"}\n"
		          "{\"question\":\"q\",\"options\":{\"A\":\"x\",\"B\":\" \"},\"answer\":\"A\"}\n"
		          "{\"question\":\"q\",\"options\":\"A\",\"answer\":\"A\"}\n"
		          "{\"question\":\"q\",\"options\":{\"A\":\"x\",\"B\":\"y\"},\"answer\":\"a\"}\n"),
		"1: answer \"C\" is not one of the option keys (A, B)\n"
		"2: \"options\" needs at least 2 entries, found 1\n"
		"3: option \"B\" must be a string, found a number\n"
		"4: option \"B\" is empty\n"
		"5: \"options\" must be an object or an array, found a string\n"
		"6: answer \"a\" is not one of the option keys (A, B)\n");
}

static void test_duplicate_id(void **state)
{
	(void)state;
	assert_string_equal(errors_of("native", "{\"id\":\"x1\",\"question\":\"q\",\"answer\":\"a\"}\n"
	                                        "\n"
	                                        "{\"id\":\"x2\",\"question\":\"q\",\"answer\":\"a\"}\n"
	                                        "{\"id\":\"x1\",\"question\":\"q2\",\"answer\":\"b\"}\n"
	                                        "{\"question\":\"same\",\"answer\":\"a\"}\n"
	                                        "{\"question\":\"same\",\"answer\":\"a\"}\n"
	                                        "{\"question\":\"same\",\"answer\":\"b\"}\n"),
	                    "4: duplicate id \"x1\" (first used on line 1)\n"
	                    "6: duplicate item: same question, options and answer as line 5\n");
}

/* Many ids: the id set grows (table and arena) many times over and still
 * finds an id first used 50,000 lines before, keeps ids that are prefixes
 * of each other apart, and names the first line. */
static void test_duplicate_id_many(void **state)
{
	struct buf in, want;
	struct sink s;

	(void)state;
	buf_init(&in, (size_t)64 << 20);
	buf_init(&want, (size_t)1 << 20);
	for (int i = 0; i < 50000; i++)
		assert_int_equal(buf_printf(&in, "{\"id\":\"n%d\",\"question\":\"q%d\",\"answer\":\"a\"}\n", i, i), 0);
	/* lines 50001..: "n1" .. again, with the first lines; "n" and "n0x" are new */
	for (int i = 0; i < 50000; i += 997)
		assert_int_equal(buf_printf(&in, "{\"id\":\"n%d\",\"question\":\"r\",\"answer\":\"b\"}\n", i), 0);
	assert_int_equal(buf_printf(&in, "{\"id\":\"n\",\"question\":\"q\",\"answer\":\"a\"}\n"), 0);
	assert_int_equal(buf_printf(&in, "{\"id\":\"n0x\",\"question\":\"q\",\"answer\":\"a\"}\n"), 0);
	for (int i = 0, line = 50001; i < 50000; i += 997, line++)
		assert_int_equal(buf_printf(&want, "%d: duplicate id \"n%d\" (first used on line %d)\n",
					    line, i, i + 1), 0);
	sink_init(&s);
	run_chunked("native", in.base, in.len, 65536, 0, &s);
	assert_string_equal(str(&s.errors), want.base);
	sink_free(&s);
	buf_free(&in);
	buf_free(&want);
}

static void test_utf8(void **state)
{
	(void)state;
	assert_string_equal(
		errors_of("native", "{\"question\":\"caf\xc3\xa9\",\"answer\":\"a\"}\n"
		                    "{\"question\":\"caf\xe9\",\"answer\":\"a\"}\n"
		                    "{\"question\":\"\xed\xa0\x80\",\"answer\":\"a\"}\n"
		                    "{\"question\":\"\xc0\xaf\",\"answer\":\"a\"}\n"
		                    "{\"question\":\"x\",\"answer\":\"\xf0\x9f\x98\"}\n"),
		"2: invalid UTF-8 at byte 17\n"
		"3: invalid UTF-8 at byte 14\n"
		"4: invalid UTF-8 at byte 14\n"
		"5: invalid UTF-8 at byte 27\n");
	/* A partial byte order mark is input like any other. */
	assert_string_equal(errors_of("native", "\xef{}\n"), "1: invalid UTF-8 at byte 1\n");
	/* A raw NUL byte */
	{
		static const char d[] = "{\"question\":\"a\0b\",\"answer\":\"a\"}\n";
		struct sink s;

		sink_init(&s);
		run_chunked("native", d, sizeof(d) - 1, 0, 0, &s);
		assert_string_equal(str(&s.errors), "1: NUL byte at byte 15\n");
		sink_free(&s);
	}
}

static void test_long_line(void **state)
{
	struct sink s;
	const char *d = "{\"question\":\"q\",\"answer\":\"a\"}\n"             /* 30 bytes */
	                "{\"question\":\"qqqqqqqqqqqqqqqqqq\",\"answer\":\"a\"}\n" /* 47 */
	                "{\"question\":\"q2\",\"answer\":\"a\"}\r\n";                /* 31 + CRLF */

	(void)state;
	/* The cap counts the line without its line end: 31 fits in 31. */
	for (size_t chunk = 0; chunk <= 9; chunk++) {
		sink_init(&s);
		run_chunked("native", d, strlen(d), chunk, 31, &s);
		assert_string_equal(str(&s.errors), "2: line longer than 31 bytes\n");
		assert_string_equal(str(&s.items),
		                    "1: {\"id\":\"ac2e510771ae5daa\",\"question\":\"q\",\"answer\":\"a\"}\n"
		                    "3: {\"id\":\"79d0e026a91c1404\",\"question\":\"q2\",\"answer\":\"a\"}\n");
		sink_free(&s);
	}
	/* Over the cap without a final newline. */
	sink_init(&s);
	run_chunked("native", "\n\n{\"question\":\"qqqqqqqqqqqqqqqqqq\"", 34, 5, 20, &s);
	assert_string_equal(str(&s.errors), "3: line longer than 20 bytes\n");
	sink_free(&s);
}

/* Every split point of a small input gives the same result as one feed. */
static void check_splits(const char *fmt, const char *d, size_t len)
{
	struct sink whole, part;

	sink_init(&whole);
	run_chunked(fmt, d, len, 0, 0, &whole);
	for (size_t k = 0; k <= len; k++) {
		struct import_parser *p;

		sink_init(&part);
		p = parser(fmt, 0, &part);
		assert_int_equal(import_parser_feed(p, d, k), 0);
		assert_int_equal(import_parser_feed(p, d + k, len - k), 0);
		assert_int_equal(import_parser_finish(p), 0);
		import_parser_free(p);
		assert_string_equal(str(&part.items), str(&whole.items));
		assert_string_equal(str(&part.errors), str(&whole.errors));
		sink_free(&part);
	}
	sink_init(&part);
	run_chunked(fmt, d, len, 1, 0, &part); /* byte by byte */
	assert_string_equal(str(&part.items), str(&whole.items));
	assert_string_equal(str(&part.errors), str(&whole.errors));
	sink_free(&part);
	sink_free(&whole);
}

static void test_split_feeds(void **state)
{
	static const char jl[] =
		"\xef\xbb\xbf{\"id\":\"a\",\"question\":\"\xe8\x83\x83\xe7\x97\x9b?\",\"answer\":\"x\"}\r\n"
		"\r\n"
		"   \n"
		"{\"question\":\"q\"}\n"
		"{\"id\":\"b\",\"question\":\"Q\",\"options\":{\"A\":\"1\",\"B\":\"2\"},\"answer\":\"B\"}";
	static const char csv[] = "\xef\xbb\xbfquestion,answer,knowledge\r\n"
	                          "\"multi\r\nline, \"\"quoted\"\"\",yes,k1\r\n"
	                          "\r\n"
	                          "plain,\xe6\x98\xaf,\r\n"
	                          "bad\"x\"y,no,\"unterminated";
	static const char sg[] = "[{\"id\":\"i0\",\"conversations\":[{\"from\":\"user\",\"value\":\"Q\"},"
	                         "{\"from\":\"assistant\",\"value\":\"\xe7\xad\x94\xe6\xa1\x88\xef\xbc\x9a"
	                         "A\\n\\nwhy\"}]}]";
	struct sink s;

	(void)state;
	sink_init(&s);
	run_chunked("native", jl, sizeof(jl) - 1, 0, 0, &s);
	assert_string_equal(str(&s.items),
	                    "1: {\"id\":\"a\",\"question\":\"\\u80C3\\u75DB?\",\"answer\":\"x\"}\n"
	                    "5: {\"id\":\"b\",\"question\":\"Q\",\"options\":{\"A\":\"1\",\"B\":\"2\"},"
	                    "\"answer\":\"B\"}\n");
	assert_string_equal(str(&s.errors), "4: missing \"answer\"\n");
	sink_free(&s);
	check_splits("native", jl, sizeof(jl) - 1);
	check_splits("medqa", jl, sizeof(jl) - 1);
	check_splits("csv", csv, sizeof(csv) - 1);
	check_splits("sharegpt", sg, sizeof(sg) - 1);
}

static void test_empty_input(void **state)
{
	static const char *const fmts[] = {"native", "medqa", "medmcqa", "pubmedqa", "sharegpt", "csv"};
	static const char *const inputs[] = {"", "\n", "\r\n\r\n", "\xef\xbb\xbf", "  \n\t\n"};

	(void)state;
	for (size_t f = 0; f < 6; f++) {
		for (size_t i = 0; i < 5; i++) {
			struct sink s;
			long items = -1, errors = -1;
			struct import_parser *p;

			sink_init(&s);
			p = parser(fmts[f], 0, &s);
			assert_int_equal(import_parser_feed(p, inputs[i], strlen(inputs[i])), 0);
			assert_int_equal(import_parser_finish(p), 0);
			import_parser_counts(p, &items, &errors);
			assert_int_equal(items, 0);
			assert_int_equal(errors, 0);
			assert_int_equal(import_parser_finish(p), -EINVAL);
			assert_int_equal(import_parser_feed(p, "x", 1), -EINVAL);
			import_parser_free(p);
			sink_free(&s);
		}
	}
}

static void test_stop_on_error(void **state)
{
	struct sink s;
	struct import_parser *p;
	const char *d = "{\"question\":\"q\",\"answer\":\"a\"}\nnope\n{\"question\":\"r\",\"answer\":\"a\"}\n";
	long items, errors;

	(void)state;
	sink_init(&s);
	s.stop_on_error = -ECANCELED - 1000;
	p = parser("native", 0, &s);
	assert_int_equal(import_parser_feed(p, d, strlen(d)), -ECANCELED - 1000);
	assert_int_equal(import_parser_feed(p, d, strlen(d)), -ECANCELED);
	assert_int_equal(import_parser_finish(p), -ECANCELED);
	import_parser_counts(p, &items, &errors);
	assert_int_equal(items, 1);
	assert_int_equal(errors, 1);
	assert_string_equal(str(&s.errors), "2: invalid JSON at column 4: '[' or '{' expected near 'nope'\n");
	import_parser_free(p);
	sink_free(&s);
}

/* ---- medqa, medmcqa --------------------------------------------------- */

static void test_medqa(void **state)
{
	struct sink s;

	(void)state;
	sink_init(&s);
	run("medqa",
	    "{\"question\":\"Q1\",\"answer\":\"two\",\"options\":{\"A\":\"one\",\"B\":\"two\"},"
	    "\"meta_info\":\"step1\",\"answer_idx\":\"B\"}\n"
	    "{\"question\":\"Q2\",\"answer\":\"one\",\"options\":{\"A\":\"one\",\"B\":\"two\"}}\n"
	    "{\"question\":\"Q3\",\"answer\":\"three\",\"options\":{\"A\":\"one\",\"B\":\"two\"}}\n"
	    "{\"question\":\"Q4\",\"options\":{\"A\":\"one\",\"B\":\"two\"},\"answer_idx\":\"E\"}\n"
	    "{\"question\":\"Q5\",\"answer_idx\":\"A\"}\n",
	    &s);
	assert_string_equal(str(&s.items),
	                    "1: {\"id\":\"498ee5bdd7765e5b\",\"question\":\"Q1\",\"options\":{\"A\":\"one\","
	                    "\"B\":\"two\"},\"answer\":\"B\",\"meta\":{\"meta_info\":\"step1\"}}\n"
	                    "2: {\"id\":\"2981cc5fbcbcb67d\",\"question\":\"Q2\",\"options\":{\"A\":\"one\","
	                    "\"B\":\"two\"},\"answer\":\"A\"}\n");
	assert_string_equal(str(&s.errors),
	                    "3: missing \"answer_idx\" and the answer text matches no option\n"
	                    "4: answer_idx \"E\" is not one of the option keys (A, B)\n"
	                    "5: missing \"options\"\n");
	sink_free(&s);
}

static void test_medmcqa(void **state)
{
	struct sink s;

	(void)state;
	sink_init(&s);
	/* As in the medmcqa.github.io release (train.json/dev.json): cop 1..4. */
	run("medmcqa",
	    "{\"question\":\"Chronic urethral obstruction due to benign prismatic hyperplasia can lead "
	    "to the following change in kidney parenchyma\",\"exp\":\"Chronic urethral obstruction "
	    "...\",\"cop\":3,\"opa\":\"Hyperplasia\",\"opb\":\"Hyperophy\",\"opc\":\"Atrophy\","
	    "\"opd\":\"Dyplasia\",\"subject_name\":\"Anatomy\",\"topic_name\":\"Urinary tract\","
	    "\"id\":\"e9ad821a-c438-4965-9f77-760819dfa155\",\"choice_type\":\"single\"}\n"
	    "{\"id\":\"m2\",\"question\":\"Q\",\"exp\":null,\"cop\":1,\"opa\":\"w\",\"opb\":\"x\","
	    "\"opc\":\"y\",\"opd\":\"z\",\"subject_name\":\"\"}\n"
	    "{\"id\":\"m3\",\"question\":\"Q\",\"cop\":\"d\",\"opa\":\"w\",\"opb\":\"x\",\"opc\":\"y\","
	    "\"opd\":\"z\"}\n"
	    "{\"id\":\"m4\",\"question\":\"Q\",\"cop\":0,\"opa\":\"w\",\"opb\":\"x\",\"opc\":\"y\",\"opd\":\"z\"}\n"
	    "{\"id\":\"m5\",\"question\":\"Q\",\"opa\":\"w\",\"opb\":\"x\",\"opc\":\"y\",\"opd\":\"z\"}\n"
	    "{\"id\":\"m6\",\"question\":\"Q\",\"cop\":4,\"opa\":\"w\",\"opb\":\"x\",\"opc\":\"y\",\"opd\":\"\"}\n"
	    "{\"id\":\"m7\",\"question\":\"Q\",\"cop\":\"5\",\"opa\":\"w\",\"opb\":\"x\"}\n"
	    "{\"id\":\"m8\",\"question\":\"Q\",\"cop\":1,\"opa\":\"w\",\"opb\":3}\n",
	    &s);
	assert_string_equal(
		str(&s.items),
		"1: {\"id\":\"e9ad821a-c438-4965-9f77-760819dfa155\",\"question\":\"Chronic urethral "
		"obstruction due to benign prismatic hyperplasia can lead to the following change in "
		"kidney parenchyma\",\"options\":{\"A\":\"Hyperplasia\",\"B\":\"Hyperophy\",\"C\":\"Atrophy\","
		"\"D\":\"Dyplasia\"},\"answer\":\"C\",\"explanation\":\"Chronic urethral obstruction ...\","
		"\"topic\":\"Anatomy\",\"meta\":{\"topic_name\":\"Urinary tract\",\"choice_type\":\"single\"}}\n"
		"2: {\"id\":\"m2\",\"question\":\"Q\",\"options\":{\"A\":\"w\",\"B\":\"x\",\"C\":\"y\",\"D\":\"z\"},"
		"\"answer\":\"A\"}\n"
		"3: {\"id\":\"m3\",\"question\":\"Q\",\"options\":{\"A\":\"w\",\"B\":\"x\",\"C\":\"y\",\"D\":\"z\"},"
		"\"answer\":\"D\"}\n");
	assert_string_equal(str(&s.errors),
	                    "4: \"cop\" must be 1, 2, 3 or 4 (opa..opd), found 0\n"
	                    "5: missing \"cop\" (the MedMCQA test split has no answers)\n"
	                    "6: \"cop\" 4 names opd, which is empty\n"
	                    "7: \"cop\" must be 1, 2, 3 or 4 (opa..opd), found \"5\"\n"
	                    "8: \"opb\" must be a string, found a number\n");
	sink_free(&s);
}

/* ---- csv --------------------------------------------------------------- */

static void test_csv(void **state)
{
	struct sink s;

	(void)state;
	sink_init(&s);
	run("csv",
	    "ID, Question ,A,B,option_c,answer,knowledge,source,\n"
	    "c1,\"What, with \"\"commas\"\"?\",x,y,z,B,,book,ignored\n"
	    ",\"two\n"
	    "lines\",x,y,,A,because,,\n"
	    "\n"
	    "c3,q,x,y,z,D,,,\n"
	    "c4,q,x,y\n"
	    "c5,\"q\"x,x,y,z,A,,,\n"
	    "c6,q,x,,,A,,,\n"
	    "c7,q,,,,free text,,,\n"
	    "\"\",q,x,y,z,\"\",,,\n",
	    &s);
	assert_string_equal(
		str(&s.items),
		"2: {\"id\":\"c1\",\"question\":\"What, with \\\"commas\\\"?\",\"options\":{\"A\":\"x\","
		"\"B\":\"y\",\"C\":\"z\"},\"answer\":\"B\",\"meta\":{\"source\":\"book\"}}\n"
		"3: {\"id\":\"d0f33c0218f44e70\",\"question\":\"two\\nlines\",\"options\":{\"A\":\"x\","
		"\"B\":\"y\"},\"answer\":\"A\",\"explanation\":\"because\"}\n"
		"10: {\"id\":\"c7\",\"question\":\"q\",\"answer\":\"free text\"}\n");
	assert_string_equal(str(&s.errors),
	                    "6: answer \"D\" is not one of the option keys (A, B, C)\n"
	                    "7: record has 4 fields, expected 9\n"
	                    "8: unexpected character after the closing quote of field 2\n"
	                    "9: \"options\" needs at least 2 entries, found 1\n"
	                    "11: \"answer\" is empty\n");
	sink_free(&s);
}

static void test_csv_headers(void **state)
{
	(void)state;
	assert_string_equal(errors_of("csv", "q,a,k\n1,2,3\n4,5,6\n"),
	                    "1: the header has no \"question\" column (columns: q, a, k)\n");
	assert_string_equal(errors_of("csv", "question,a,k\n1,2,3\n"),
	                    "1: the header has no \"answer\" column (columns: question, a, k)\n");
	assert_string_equal(errors_of("csv", "question,answer,Answer\n1,2,3\n"),
	                    "1: duplicate column \"answer\" in the header\n");
	assert_string_equal(errors_of("csv", "question,answer,a,option_a\n1,2,3,4\n"),
	                    "1: two header columns give option A\n");
	assert_string_equal(errors_of("csv", "question,answer\n\"q\",\"never closed\n\n"),
	                    "2: quoted field 2 is not closed at the end of the input\n");
	assert_string_equal(errors_of("csv", "question,answer\nq,\xff\n"),
	                    "2: invalid UTF-8 in column \"answer\"\n");
	assert_string_equal(errors_of("csv", "question,answer\n\"q\" ,a\n\"q\"\r,a\n"),
	                    "2: unexpected character after the closing quote of field 1\n"
	                    "3: unexpected character after the closing quote of field 1\n");
}

static void test_csv_headerless(void **state)
{
	struct sink s;

	(void)state;
	sink_init(&s);
	/* ChatMed.csv style: no header, 2 columns, CRLF records, LF inside quotes. */
	run("csv", "\xe5\x92\xb3\xe5\x97\xbd,\"\xe5\xa4\x9a\xe5\x96\x9d\xe6\xb0\xb4\n\n\xe4\xbc\x91\xe6\x81\xaf\"\r\n"
	           "q2,a2\r\n"
	           "q3,a3,extra\r\n",
	    &s);
	assert_string_equal(str(&s.items),
	                    "1: {\"id\":\"f3bdd757404f0495\",\"question\":\"\\u54B3\\u55FD\","
	                    "\"answer\":\"\\u591A\\u559D\\u6C34\\n\\n\\u4F11\\u606F\"}\n"
	                    "4: {\"id\":\"1a0117b15ab657c2\",\"question\":\"q2\",\"answer\":\"a2\"}\n");
	assert_string_equal(str(&s.errors), "5: record has 3 fields, expected 2\n");
	sink_free(&s);
	/* No line end after the last record, CR only. */
	sink_init(&s);
	run("csv", "question,answer\nq,a\r", &s);
	assert_string_equal(str(&s.items),
	                    "2: {\"id\":\"ac2e510771ae5daa\",\"question\":\"q\",\"answer\":\"a\"}\n");
	sink_free(&s);
}

static void test_csv_long_record(void **state)
{
	struct sink s;
	const char *d = "question,answer\n\"0123456789\n0123456789\",x\nq,a\n";

	(void)state;
	for (size_t chunk = 0; chunk < 7; chunk++) {
		sink_init(&s);
		run_chunked("csv", d, strlen(d), chunk, 16, &s);
		assert_string_equal(str(&s.errors), "2: record longer than 16 bytes\n");
		assert_string_equal(str(&s.items),
		                    "4: {\"id\":\"ac2e510771ae5daa\",\"question\":\"q\",\"answer\":\"a\"}\n");
		sink_free(&s);
	}
}

/* ---- pubmedqa, sharegpt ---------------------------------------------- */

static void test_pubmedqa(void **state)
{
	struct sink s;

	(void)state;
	sink_init(&s);
	run("pubmedqa",
	    "{\"21645374\":{\"QUESTION\":\"Do mitochondria play a role?\",\"CONTEXTS\":[\"c1\",\"c2\"],"
	    "\"LABELS\":[\"BACKGROUND\",\"RESULTS\"],\"MESHES\":[\"Apoptosis\",\"Leaves\"],\"YEAR\":\"2011\","
	    "\"reasoning_required_pred\":\"yes\",\"reasoning_free_pred\":\"yes\",\"final_decision\":\"yes\","
	    "\"LONG_ANSWER\":\"Results depicted...\"},\n"
	    "\"1\":{\"QUESTION\":\"q\",\"final_decision\":\"perhaps\"},\n"
	    "\"2\":{\"CONTEXTS\":[],\"final_decision\":\"no\"},\n"
	    "\"3\":[],\n"
	    "\"4\":{\"QUESTION\":\"q\",\"final_decision\":\"maybe\"}}",
	    &s);
	assert_string_equal(
		str(&s.items),
		"1: {\"id\":\"21645374\",\"question\":\"Do mitochondria play a role?\",\"context\":\"c1\\n\\nc2\","
		"\"options\":{\"yes\":\"yes\",\"no\":\"no\",\"maybe\":\"maybe\"},\"answer\":\"yes\","
		"\"explanation\":\"Results depicted...\",\"topic\":\"Apoptosis\",\"meta\":{\"year\":\"2011\","
		"\"labels\":[\"BACKGROUND\",\"RESULTS\"],\"meshes\":[\"Apoptosis\",\"Leaves\"]}}\n"
		"5: {\"id\":\"4\",\"question\":\"q\",\"options\":{\"yes\":\"yes\",\"no\":\"no\",\"maybe\":"
		"\"maybe\"},\"answer\":\"maybe\"}\n");
	assert_string_equal(
		str(&s.errors),
		"2: record 2 (PMID 1): final_decision \"perhaps\" is not one of the option keys (yes, no, "
		"maybe)\n"
		"3: record 3 (PMID 2): missing \"QUESTION\"\n"
		"4: record 4 (PMID 3): expected an object, found an array\n");
	sink_free(&s);
	assert_string_equal(errors_of("pubmedqa", "[]"),
	                    "0: expected a JSON object keyed by PMID, found an array\n");
	assert_string_equal(errors_of("pubmedqa", "{\"1\":{},\n\"1\":{}}"),
	                    "2: invalid JSON at line 2, column 3: duplicate object key near '\"1\"'\n");
	assert_string_equal(errors_of("pubmedqa", "{\n\"1\":\"\xe9\"}"),
	                    "2: invalid UTF-8 at line 2, byte 6\n");
}

static void test_sharegpt(void **state)
{
	struct sink s;

	(void)state;
	sink_init(&s);
	run("sharegpt",
	    "[{\"id\":\"identity_0\",\"conversations\":[{\"from\":\"user\",\"value\":\"Q0\"},"
	    "{\"from\":\"assistant\",\"value\":\"\xe7\xad\x94\xe6\xa1\x88\xef\xbc\x9a"
	    "\xe8\x82\xa0\xe9\xb8\xa3\xe9\x9f\xb3\xe6\xb4\xbb\xe8\xb7\x83\\n\\n  knowledge\\nmore \"}]},\n"
	    "{\"conversations\":[{\"from\":\"human\",\"value\":\"Q1\"},{\"from\":\"gpt\",\"value\":"
	    "\"Answer: B \\r\\n\"}],\"system\":\"be brief\"},\n"
	    "{\"id\":\"x2\",\"conversations\":[{\"from\":\"user\",\"value\":\"Q2\"},{\"from\":\"assistant\","
	    "\"value\":\"The answer is C\"}]},\n"
	    "{\"id\":\"x3\",\"conversations\":[{\"from\":\"user\",\"value\":\"Q3\"}]},\n"
	    "{\"id\":\"x4\",\"conversations\":[{\"from\":\"user\",\"value\":\"Q4\"},{\"from\":\"assistant\","
	    "\"value\":\"\xe7\xad\x94\xe6\xa1\x88:\\nexpl\"}]},\n"
	    "{\"id\":\"identity_0\",\"conversations\":[{\"from\":\"user\",\"value\":\"Q5\"},"
	    "{\"from\":\"assistant\",\"value\":\"Answer: A\"}]},\n"
	    "{\"id\":\"x6\",\"conversations\":[{\"from\":\"bot\",\"value\":\"Q6\"}]},\n"
	    "{\"id\":\"x7\"}]",
	    &s);
	assert_string_equal(str(&s.items),
	                    "1: {\"id\":\"identity_0\",\"question\":\"Q0\",\"answer\":\"\\u80A0\\u9E23\\u97F3"
	                    "\\u6D3B\\u8DC3\",\"explanation\":\"knowledge\\nmore\"}\n"
	                    "2: {\"id\":\"6e5632838a3bf6fa\",\"question\":\"Q1\",\"answer\":\"B\","
	                    "\"meta\":{\"system\":\"be brief\"}}\n");
	assert_string_equal(str(&s.errors),
	                    "3: record 3: the assistant turn does not start with \"\xe7\xad\x94\xe6\xa1\x88"
	                    "\xef\xbc\x9a\", \"\xe7\xad\x94\xe6\xa1\x88:\" or \"Answer:\"\n"
	                    "4: record 4: no assistant turn\n"
	                    "5: record 5: empty answer after \"\xe7\xad\x94\xe6\xa1\x88:\"\n"
	                    "6: record 6: duplicate id \"identity_0\" (first used in record 1)\n"
	                    "7: record 7: turn 1 has an unknown role \"bot\"\n"
	                    "8: record 8: missing \"conversations\"\n");
	sink_free(&s);
	assert_string_equal(errors_of("sharegpt", "{}"),
	                    "0: expected a JSON array of conversations, found an object\n");
	assert_string_equal(errors_of("sharegpt", "[\n{\"id\":1,]"),
	                    "2: invalid JSON at line 2, column 9: string or '}' expected near ']'\n");
}

static void test_doc_too_large(void **state)
{
	struct import_opts o = {.max_doc_bytes = 64};
	struct sink s;
	struct import_cb cb = {.on_item = on_item, .on_error = on_error, .ud = &s};
	struct import_parser *p;
	char chunk[40];

	(void)state;
	sink_init(&s);
	memset(chunk, ' ', sizeof(chunk));
	p = import_parser_new("sharegpt", &o, &cb, NULL, 0);
	assert_non_null(p);
	assert_int_equal(import_parser_feed(p, "[", 1), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(import_parser_feed(p, chunk, sizeof(chunk)), 0);
	assert_int_equal(import_parser_feed(p, "]", 1), 0);
	assert_int_equal(import_parser_finish(p), 0);
	assert_string_equal(str(&s.errors), "0: document larger than 64 bytes\n");
	assert_string_equal(str(&s.items), "");
	import_parser_free(p);
	sink_free(&s);
}

/* ---- the real files (../shared/data, never copied into the repo) ------ */

static char *slurp(const char *rel, size_t *len)
{
	const char *dir = getenv("MEDTHINK_DATA");
	char path[512];
	FILE *f;
	char *d = NULL;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir ? dir : "../shared/data", rel);
	f = fopen(path, "rb");
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		d = malloc((size_t)n + 1);
		if (d && fread(d, 1, (size_t)n, f) != (size_t)n) {
			free(d);
			d = NULL;
		}
		*len = (size_t)n;
	}
	fclose(f);
	return d;
}

/* Imports a real file in odd-sized chunks; NULL (test skipped) when the
 * data folder is not there. */
static bool run_file(const char *fmt, const char *rel, struct sink *s)
{
	size_t len = 0;
	char *d = slurp(rel, &len);

	if (!d)
		return false;
	sink_init(s);
	s->keep = 1;
	run_chunked(fmt, d, len, 4093, 0, s);
	free(d);
	return true;
}

static json_t *nth(struct sink *s, size_t i) { return json_array_get(s->list, i); }
static const char *field(json_t *item, const char *k) { return json_string_value(json_object_get(item, k)); }

static void test_real_medqa(void **state)
{
	struct sink s;

	(void)state;
	if (!run_file("medqa", "medqa/medqa_test.jsonl", &s))
		skip();
	assert_string_equal(str(&s.errors), "");
	assert_int_equal(json_array_size(s.list), 1273);
	assert_string_equal(field(nth(&s, 0), "answer"), "C");
	assert_string_equal(json_string_value(json_object_get(json_object_get(nth(&s, 0), "options"), "C")),
	                    "Tell the attending that he cannot fail to disclose this mistake");
	assert_string_equal(json_string_value(json_object_get(json_object_get(nth(&s, 0), "meta"), "meta_info")),
	                    "step1");
	assert_int_equal(json_object_size(json_object_get(nth(&s, 1272), "options")), 5);
	assert_int_equal(strlen(field(nth(&s, 0), "id")), 16);
	sink_free(&s);
}

static void test_real_pubmedqa(void **state)
{
	struct sink s;
	json_t *it;

	(void)state;
	if (!run_file("pubmedqa", "pubmedqa/ori_pqal.json", &s))
		skip();
	assert_string_equal(str(&s.errors), "");
	assert_int_equal(json_array_size(s.list), 1000);
	it = nth(&s, 0);
	assert_string_equal(field(it, "id"), "21645374");
	assert_string_equal(field(it, "question"),
	                    "Do mitochondria play a role in remodelling lace plant leaves during programmed "
	                    "cell death?");
	assert_string_equal(field(it, "answer"), "yes");
	assert_non_null(strstr(field(it, "context"), "Programmed cell death (PCD) is the regulated death"));
	assert_non_null(field(it, "explanation"));
	assert_non_null(field(it, "topic"));
	sink_free(&s);
}

static void test_real_sharegpt(void **state)
{
	struct sink s;
	json_t *it;

	(void)state;
	if (!run_file("sharegpt", "medthink/digestive_Qwen2_72b_Instruction_train.json", &s))
		skip();
	assert_string_equal(str(&s.errors), "");
	assert_int_equal(json_array_size(s.list), 755);
	it = nth(&s, 0);
	assert_string_equal(field(it, "id"), "identity_0");
	assert_string_equal(field(it, "question"), "腹部闭合性损伤时，不支持腹腔内脏损伤诊断的是");
	assert_string_equal(field(it, "answer"), "肠鸣音活跃");
	assert_true(!strncmp(field(it, "explanation"), "以下是针对腹部闭合性损伤的医学知识要点：", 60));
	assert_null(json_object_get(it, "options"));
	assert_string_equal(field(nth(&s, 754), "id"), "identity_754");
	sink_free(&s);
}

/* The MedThink stage-two set repeats 11 records verbatim (same id, same
 * conversation): each repeat is reported against its first use. */
static void test_real_sharegpt_duplicates(void **state)
{
	struct sink s;

	(void)state;
	if (!run_file("sharegpt", "medthink/merged_digestive.json", &s))
		skip();
	assert_int_equal(json_array_size(s.list), 430);
	assert_string_equal(str(&s.errors),
	                    "48: record 48: duplicate id \"identity_10\" (first used in record 6)\n"
	                    "63: record 63: duplicate id \"identity_69\" (first used in record 43)\n"
	                    "254: record 254: duplicate id \"identity_405\" (first used in record 244)\n"
	                    "323: record 323: duplicate id \"identity_5\" (first used in record 4)\n"
	                    "324: record 324: duplicate id \"identity_301\" (first used in record 186)\n"
	                    "325: record 325: duplicate id \"identity_446\" (first used in record 267)\n"
	                    "351: record 351: duplicate id \"identity_5\" (first used in record 4)\n"
	                    "356: record 356: duplicate id \"identity_556\" (first used in record 321)\n"
	                    "380: record 380: duplicate id \"identity_4\" (first used in record 3)\n"
	                    "383: record 383: duplicate id \"identity_4\" (first used in record 3)\n"
	                    "402: record 402: duplicate id \"identity_4\" (first used in record 3)\n");
	sink_free(&s);
}

static void test_real_csv(void **state)
{
	struct sink s;
	json_t *it;

	(void)state;
	if (!run_file("csv", "medthink/q&a.csv", &s))
		skip();
	assert_string_equal(str(&s.errors), "");
	assert_int_equal(json_array_size(s.list), 199);
	it = nth(&s, 0);
	assert_string_equal(field(it, "question"), "肾上腺素受体是哪一种受体？");
	assert_string_equal(field(it, "answer"), "G蛋白偶联受体");
	assert_true(!strncmp(field(it, "explanation"), "肾上腺素受体属于G蛋白偶联受体", 42));
	/* The same question twice (lines 145 and 184) with different answers
	 * are two items. */
	assert_string_equal(field(nth(&s, 143), "question"), "重度贫血的血红蛋白含量为");
	assert_string_equal(field(nth(&s, 182), "question"), "重度贫血的血红蛋白含量为");
	assert_string_not_equal(field(nth(&s, 143), "id"), field(nth(&s, 182), "id"));
	sink_free(&s);

	if (!run_file("csv", "medthink/ChatMed.csv", &s))
		skip();
	assert_string_equal(str(&s.errors), "");
	assert_int_equal(json_array_size(s.list), 232);
	it = nth(&s, 0);
	assert_string_equal(field(it, "question"), "这段时间去上厕所本来想小便的可是每次都会拉大便");
	assert_true(!strncmp(field(it, "answer"), "这可能是因为你的饮食习惯", 36));
	assert_null(json_object_get(it, "explanation"));
	sink_free(&s);
}

/* Without a format the first records tell the layout; native stays the
 * default when it reads; two layouts that fit equally are named. */
static const char *sniffed(const char *head, bool all, char *err, size_t errlen)
{
	const struct import_format *f;

	err[0] = '\0';
	f = import_format_sniff(head, strlen(head), all, err, errlen);
	return f ? f->name : NULL;
}

static void test_sniff(void **state)
{
	char err[300];
	char big[IMPORT_SNIFF_WANT + 16];
	(void)state;

	assert_string_equal(sniffed("{\"question\":\"q\",\"answer\":\"A\",\"options\":{\"A\":\"x\",\"B\":\"y\"}}\n", true,
				    err, sizeof(err)), "native");
	/* the BOM and blank lines first do not matter */
	assert_string_equal(sniffed("\xEF\xBB\xBF\n\n{\"question\":\"q\",\"answer\":\"yes\"}\n", true, err, sizeof(err)),
			    "native");
	assert_string_equal(sniffed("{\"question\":\"q\",\"answer\":\"the pancreas\",\"options\":{\"A\":\"the liver\","
				    "\"B\":\"the pancreas\"},\"meta_info\":\"step1\",\"answer_idx\":\"B\"}\n",
				    true, err, sizeof(err)), "medqa");
	assert_string_equal(sniffed("{\"question\":\"q\",\"opa\":\"a\",\"opb\":\"b\",\"opc\":\"c\",\"opd\":\"d\",\"cop\":2}\n",
				    true, err, sizeof(err)), "medmcqa");
	assert_string_equal(sniffed("{\n    \"21645374\": {\n        \"QUESTION\": \"Do mitochondria ...?\",\n", false, err,
				    sizeof(err)), "pubmedqa");
	assert_string_equal(sniffed("{\"1\":{\"QUESTION\":\"q\",\"CONTEXTS\":[\"c\"],\"final_decision\":\"yes\"}}", true, err,
				    sizeof(err)), "pubmedqa");
	assert_string_equal(sniffed("[\n  {\n    \"id\": \"identity_0\",\n    \"conversations\": [\n", false, err, sizeof(err)),
			    "sharegpt");
	assert_string_equal(sniffed("question,answer\nWhat makes insulin?,the pancreas\n", true, err, sizeof(err)), "csv");
	/* nothing fits: native, whose errors say what is wrong line by line */
	assert_string_equal(sniffed("{\"question\": oops\n", true, err, sizeof(err)), "native");
	assert_string_equal(sniffed("", true, err, sizeof(err)), "native");
	/* a record both MedQA and MedMCQA read */
	assert_null(sniffed("{\"question\":\"q\",\"options\":{\"A\":\"a\",\"B\":\"b\"},\"answer_idx\":\"A\",\"opa\":\"a\","
			    "\"opb\":\"b\",\"opc\":\"c\",\"opd\":\"d\",\"cop\":1}\n",
			    true, err, sizeof(err)));
	assert_string_equal(err, "cannot tell the file's layout: it could be medqa or medmcqa; give the format");
	/* a cut last line is not judged: the complete ones are */
	assert_string_equal(sniffed("{\"question\":\"q\",\"answer\":\"yes\"}\n{\"question\":\"q2\",\"ans", false, err,
				    sizeof(err)), "native");

	assert_false(import_sniff_enough("{\"a\":1}\n", 8));
	memset(big, 'x', sizeof(big));
	big[0] = '{';
	assert_false(import_sniff_enough(big, IMPORT_SNIFF_WANT + 8)); /* no line end yet */
	big[100] = '\n';
	assert_true(import_sniff_enough(big, IMPORT_SNIFF_WANT + 8));
	assert_false(import_sniff_enough(big, IMPORT_SNIFF_WANT - 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unknown_format),
		cmocka_unit_test(test_native_item),
		cmocka_unit_test(test_item_id),
		cmocka_unit_test(test_bad_json),
		cmocka_unit_test(test_missing_fields),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_duplicate_id),
		cmocka_unit_test(test_duplicate_id_many),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_split_feeds),
		cmocka_unit_test(test_empty_input),
		cmocka_unit_test(test_stop_on_error),
		cmocka_unit_test(test_medqa),
		cmocka_unit_test(test_medmcqa),
		cmocka_unit_test(test_csv),
		cmocka_unit_test(test_csv_headers),
		cmocka_unit_test(test_csv_headerless),
		cmocka_unit_test(test_csv_long_record),
		cmocka_unit_test(test_pubmedqa),
		cmocka_unit_test(test_sharegpt),
		cmocka_unit_test(test_doc_too_large),
		cmocka_unit_test(test_real_medqa),
		cmocka_unit_test(test_real_pubmedqa),
		cmocka_unit_test(test_real_sharegpt),
		cmocka_unit_test(test_real_sharegpt_duplicates),
		cmocka_unit_test(test_real_csv),
		cmocka_unit_test(test_sniff),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
