/* layers: common */
/* The CLI's pure evaluation report and SVG renderers (cli/evalreport.c,
 * cli/plot.c), included directly as test_cli does with its modules. Each
 * SVG is checked to be well-formed by a small XML tokenizer here (balanced
 * tags, quoted attributes, only the five entities), and the integration
 * test parses the real ones with python3's xml.etree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../cli/evalreport.c"
#include "../../cli/plot.c"
#include "common/utf8.h"

/* Well-formed enough: every < opens a tag or the XML declaration, tags
 * nest, attribute values are quoted, & starts one of the five entities,
 * no control character but \t \n, valid UTF-8. */
static int xml_ok(const char *s)
{
	const char *stack[64];
	size_t lens[64];
	int depth = 0, roots = 0;

	if (utf8_check(s, strlen(s)) != strlen(s))
		return 0;
	if (strncmp(s, "<?xml ", 6) == 0)
		s = strstr(s, "?>") + 2;
	while (*s) {
		if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t')
			return 0;
		if (*s == '&') {
			static const char *const ents[] = { "&amp;", "&lt;", "&gt;", "&quot;", "&apos;" };
			int known = 0;

			for (size_t i = 0; i < 5; i++)
				known |= strncmp(s, ents[i], strlen(ents[i])) == 0;
			if (!known)
				return 0;
			s++;
		} else if (*s == '>') {
			return 0; /* a bare > is legal XML, but this renderer escapes it */
		} else if (*s == '<') {
			bool close = s[1] == '/';
			const char *name = s + (close ? 2 : 1), *p = name;
			size_t n;

			while (*p && *p != ' ' && *p != '>' && *p != '/')
				p++;
			n = (size_t)(p - name);
			if (n == 0)
				return 0;
			/* attributes: name="value" with no < or " inside */
			while (*p && *p != '>') {
				if (*p == '"') {
					p++;
					while (*p && *p != '"') {
						if (*p == '<')
							return 0;
						p++;
					}
					if (!*p)
						return 0;
				} else if (*p == '<') {
					return 0;
				}
				p++;
			}
			if (!*p)
				return 0;
			if (close) {
				if (depth == 0 || lens[depth - 1] != n || strncmp(stack[depth - 1], name, n))
					return 0;
				depth--;
			} else if (p[-1] != '/') {
				if (depth == 0)
					roots++;
				if (depth == 64)
					return 0;
				stack[depth] = name;
				lens[depth++] = n;
			}
			s = p + 1;
		} else {
			s++;
		}
	}
	return depth == 0 && roots == 1;
}

/* The topic name here has every character XML and Markdown care about, a
 * control character and a long run of 3-byte characters. */
#define TOPIC "a<b>&\\\"c'|\x01" "d"
#define LONG "\xE8\x83\x83\xE8\x83\x83\xE8\x83\x83\xE8\x83\x83\xE8\x83\x83\xE8\x83\x83" \
	     "\xE8\x83\x83\xE8\x83\x83\xE8\x83\x83\xE8\x83\x83\xE8\x83\x83\xE8\x83\x83"  \
	     "\xE8\x83\x83\xE8\x83\x83\xE8\x83\x83\xE8\x83\x83\xE8\x83\x83\xE8\x83\x83"  \
	     "\xE8\x83\x83\xE8\x83\x83"

static json_t *sample_job(void)
{
	json_t *job = json_loads(
		"{\"id\":\"job_7\",\"name\":\"demo, \\\"x\\\"\",\"kind\":\"pipeline\",\"state\":\"done\","
		"\"counts\":{\"screen\":{\"done\":8,\"dropped\":2},\"explain\":{\"done\":7,\"failed\":1},"
		"\"answer\":{\"done\":7},\"correct\":{\"done\":2,\"failed\":1}},"
		"\"eval\":{\"accuracy\":0.75,\"total\":4,\"correct\":3,\"train\":\"hook\","
		"\"checkpoints\":["
		"{\"name\":\"baseline\",\"total\":4,\"correct\":1,\"ungraded\":1,\"judged\":1,\"failed\":0,"
		"\"accuracy\":0.25,\"ci95\":[0.0456,0.6994],\"by_topic\":{}},"
		"{\"name\":\"stage1\",\"total\":4,\"correct\":2,\"ungraded\":0,\"judged\":0,\"failed\":0,"
		"\"accuracy\":0.5,\"ci95\":[0.15,0.85],\"by_topic\":{},"
		"\"change\":{\"from\":\"baseline\",\"delta\":0.25,\"ci95\":[-0.2,0.6],\"pairs\":4,"
		"\"gained\":1,\"lost\":0}},"
		"{\"name\":\"stage2\",\"total\":4,\"correct\":3,\"ungraded\":0,\"judged\":2,\"failed\":1,"
		"\"accuracy\":0.75,\"ci95\":[0.3,0.95],\"by_topic\":{},"
		"\"change\":{\"from\":\"baseline\",\"delta\":0.5,\"ci95\":[0.01,0.8],\"pairs\":4,"
		"\"gained\":2,\"lost\":0}}]}}",
		0, NULL);
	json_t *cks = json_object_get(json_object_get(job, "eval"), "checkpoints"), *c;
	size_t i;

	json_array_foreach(cks, i, c)
	{
		json_t *bt = json_object_get(c, "by_topic");

		json_object_set_new(bt, TOPIC, json_pack("{s:i, s:i, s:f, s:[f,f]}", "total", 2, "correct",
							 1, "accuracy", 0.5, "ci95", 0.09, 0.91));
		json_object_set_new(bt, LONG, json_pack("{s:i, s:i, s:f, s:[f,f]}", "total", 2, "correct",
							(int)i, "accuracy", (double)i / 2, "ci95", 0.0, 0.8));
	}
	return job;
}

static void test_label_cut(void **state)
{
	char out[64];
	(void)state;
	/* 20 three-byte characters cut to 10: 7 characters and "..." */
	plot_label(out, sizeof(out), LONG, 10);
	assert_int_equal(strlen(out), 7 * 3 + 3);
	assert_int_equal(utf8_check(out, strlen(out)), strlen(out));
	assert_string_equal(out + 21, "...");
	/* short labels stay whole */
	assert_string_equal(plot_label(out, sizeof(out), "colon", 10), "colon");
	/* a small buffer still cuts on a boundary */
	plot_label(out, 8, LONG, 30);
	assert_int_equal(utf8_check(out, strlen(out)), strlen(out));
	assert_true(strlen(out) <= 7);
	/* invalid UTF-8 is replaced */
	plot_label(out, sizeof(out), "a\xFF" "b", 10);
	assert_string_equal(out, "a?b");
}

static void test_xml_escape(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b, 1024);
	assert_int_equal(plot_xml_text(&b, TOPIC), 0);
	assert_string_equal(b.base, "a&lt;b&gt;&amp;\\&quot;c&apos;| d");
	buf_free(&b);
}

static void test_eval_svg(void **state)
{
	json_t *job = sample_job();
	struct buf b;
	(void)state;

	buf_init(&b, 1 << 20);
	assert_int_equal(plot_eval_svg(&b, job), 0);
	assert_true(xml_ok(b.base));
	assert_non_null(strstr(b.base, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
	assert_non_null(strstr(b.base, "accuracy (%), whiskers: 95% interval"));
	assert_non_null(strstr(b.base, ">overall</text>"));
	assert_non_null(strstr(b.base, "a&lt;b&gt;&amp;"));
	assert_null(strstr(b.base, "a<b"));
	assert_non_null(strstr(b.base, "stage2: 75.0%, change from baseline +50.0 points "
				       "(95% interval +1.0 to +80.0)"));
	/* the long topic was cut on a character boundary */
	assert_null(strstr(b.base, LONG));
	assert_non_null(strstr(b.base, "\xE8\x83\x83..."));
	/* three bars and whiskers per group, three groups */
	{
		int whiskers = 0;

		for (const char *p = b.base; (p = strstr(p, "<path ")); p++)
			whiskers++;
		assert_int_equal(whiskers, 9);
	}
	buf_free(&b);
	/* no eval report: refused */
	json_object_del(job, "eval");
	buf_init(&b, 1 << 20);
	assert_int_equal(plot_eval_svg(&b, job), -EINVAL);
	buf_free(&b);
	json_decref(job);
}

static void test_funnel_and_progress_svg(void **state)
{
	json_t *job = sample_job();
	json_t *tl = json_loads("{\"bucket_s\":5,\"points\":[{\"t\":100,\"calls\":3,\"tokens_in\":10,"
				"\"tokens_out\":5,\"cost_usd\":0.5,\"items_done\":2},{\"t\":105,"
				"\"calls\":0,\"tokens_in\":0,\"tokens_out\":0,\"cost_usd\":0,"
				"\"items_done\":4}]}",
				0, NULL);
	json_t *empty = json_pack("{s:i, s:[]}", "bucket_s", 1, "points");
	struct buf b;
	(void)state;

	buf_init(&b, 1 << 20);
	assert_int_equal(plot_funnel_svg(&b, job), 0);
	assert_true(xml_ok(b.base));
	/* screened 10 = 8 kept + 2 dropped; wrong 3 = the correction's items */
	assert_non_null(strstr(b.base, ">screened</text>"));
	assert_non_null(strstr(b.base, ">10</text>"));
	assert_non_null(strstr(b.base, ">corrected</text>"));
	assert_non_null(strstr(b.base, ">3</text>"));
	buf_free(&b);
	buf_init(&b, 1 << 20);
	assert_int_equal(plot_progress_svg(&b, tl, "Progress: <job> & \"x\""), 0);
	assert_true(xml_ok(b.base));
	assert_non_null(strstr(b.base, "Progress: &lt;job&gt; &amp; &quot;x&quot;"));
	assert_non_null(strstr(b.base, "per bucket of 5 s"));
	assert_non_null(strstr(b.base, "time since the job started"));
	assert_non_null(strstr(b.base, "spend $0.5000 over 2 buckets"));
	buf_free(&b);
	/* no points at all still draws a valid empty chart */
	buf_init(&b, 1 << 20);
	assert_int_equal(plot_progress_svg(&b, empty, "empty"), 0);
	assert_true(xml_ok(b.base));
	buf_free(&b);
	/* a full buffer is an error, never a cut document */
	buf_init(&b, 200);
	assert_true(plot_progress_svg(&b, tl, "x") != 0);
	buf_free(&b);
	json_decref(tl);
	json_decref(empty);
	json_decref(job);
}

static void test_eval_report_formats(void **state)
{
	json_t *job = sample_job(), *r;
	struct buf b;
	char err[256];
	(void)state;

	buf_init(&b, 1 << 20);
	assert_int_equal(evalreport_render(&b, job, "md", err, sizeof(err)), 0);
	assert_non_null(strstr(b.base, "| baseline | 25.0% | 4.6 to 69.9% | 1 / 4 | 1 | 1 | 0 | - | - |"));
	assert_non_null(strstr(b.base, "| stage2 | 75.0% | 30.0 to 95.0% | 3 / 4 | 0 | 2 | 1 | +50.0 pts | +1.0 to +80.0 |"));
	/* the topic's pipe and markup cannot break the table */
	assert_non_null(strstr(b.base, "| a&lt;b&gt;&amp;\\\\\"c'\\|"));
	buf_free(&b);

	buf_init(&b, 1 << 20);
	assert_int_equal(evalreport_render(&b, job, "csv", err, sizeof(err)), 0);
	assert_non_null(strstr(b.base, "checkpoint,topic,total,correct,ungraded,judged,accuracy,"));
	assert_non_null(strstr(b.base, "\nbaseline,,4,1,1,1,0.250000,0.045600,0.699400,,,,\n"));
	assert_non_null(strstr(b.base, "\nstage1,,4,2,0,0,0.500000,0.150000,0.850000,baseline,0.250000,-0.200000,0.600000\n"));
	/* a topic with a quote is quoted, its quote doubled */
	assert_non_null(strstr(b.base, "\nstage1,\"a<b>&\\\"\"c'|\x01" "d\",2,1,"));
	buf_free(&b);

	buf_init(&b, 1 << 20);
	assert_int_equal(evalreport_render(&b, job, "json", err, sizeof(err)), 0);
	r = json_loads(b.base, 0, NULL);
	assert_non_null(r);
	assert_int_equal(json_array_size(json_object_get(r, "checkpoints")), 3);
	assert_string_equal(json_string_value(json_object_get(r, "job")), "job_7");
	json_decref(r);
	buf_free(&b);

	buf_init(&b, 1 << 20);
	assert_int_equal(evalreport_status_table(&b, json_object_get(job, "eval")), 0);
	assert_non_null(strstr(b.base, "  stage1      50.0% [ 15.0,  85.0]  2/4 correct, 0 ungraded, 0 judged  +25.0 [-20.0, +60.0]\n"));
	buf_free(&b);

	buf_init(&b, 1 << 20);
	assert_int_equal(evalreport_render(&b, job, "xml", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "--format must be md, json or csv");
	json_object_del(job, "eval");
	assert_int_equal(evalreport_render(&b, job, "md", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "job_7 has no eval report yet"));
	buf_free(&b);
	json_decref(job);
}

/* A report from before the checkpoints (no "checkpoints") is one row. */
static void test_eval_report_old_shape(void **state)
{
	json_t *job = json_loads("{\"id\":\"job_1\",\"eval\":{\"accuracy\":0.5,\"total\":2,\"correct\":1}}",
				 0, NULL);
	struct buf b;
	char err[256];
	(void)state;

	buf_init(&b, 1 << 20);
	assert_int_equal(evalreport_render(&b, job, "csv", err, sizeof(err)), 0);
	assert_non_null(strstr(b.base, "\neval,,2,1,0,0,0.500000,"));
	buf_free(&b);
	buf_init(&b, 1 << 20);
	assert_int_equal(plot_eval_svg(&b, job), 0);
	assert_true(xml_ok(b.base));
	buf_free(&b);
	json_decref(job);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_cut),
		cmocka_unit_test(test_xml_escape),
		cmocka_unit_test(test_eval_svg),
		cmocka_unit_test(test_funnel_and_progress_svg),
		cmocka_unit_test(test_eval_report_formats),
		cmocka_unit_test(test_eval_report_old_shape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
