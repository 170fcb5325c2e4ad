/* layers: formats common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "formats/export.h"
#include "formats/formats.h"

#define SYS "You are a medical expert. Answer the medical question: reason step by step from the " \
            "key findings and the relevant medical knowledge, then state the final answer."

static json_t *mc(void)
{
	return json_pack("{s:s,s:s,s:{s:s,s:s,s:s},s:s,s:s}", "id", "gi-0001", "question",
	                 "Which test comes first for melena?", "options", "A", "Upper GI endoscopy",
	                 "B", "Colonoscopy", "C", "Barium swallow", "answer", "A", "topic", "gi");
}

static json_t *open_cn(void)
{
	return json_pack("{s:s,s:s,s:s}", "id", "identity_0", "question",
	                 "腹部闭合性损伤时，不支持腹腔内脏损伤诊断的是", "answer", "肠鸣音活跃");
}

static void expect_line(const struct export_format *f, json_t *item, const char *output,
                        const struct export_opts *o, const char *want)
{
	char *line = NULL;
	int rc = export_record(f, item, output, o, &line);

	if (rc)
		fail_msg("%s: rc %d", f->name, rc);
	if (strcmp(line, want) != 0)
		fail_msg("%s:\n got  %s want %s", f->name, line, want);
	free(line);
}

#define MC_USER "Which test comes first for melena?\\n\\nA. Upper GI endoscopy\\nB. Colonoscopy\\nC. Barium swallow"
#define MC_OUT "Melena with epigastric pain points to an upper GI source.\\nFinal answer: A"

static void test_mc_formats(void **state)
{
	json_t *item = mc();
	const char *out = "Melena with epigastric pain points to an upper GI source.\nFinal answer: A";

	(void)state;
	expect_line(&export_format_openai, item, out, NULL,
	            "{\"messages\":[{\"role\":\"system\",\"content\":\"" SYS "\"},"
	            "{\"role\":\"user\",\"content\":\"" MC_USER "\"},"
	            "{\"role\":\"assistant\",\"content\":\"" MC_OUT "\"}],\"id\":\"gi-0001\"}\n");
	expect_line(&export_format_sharegpt, item, out, NULL,
	            "{\"conversations\":[{\"from\":\"human\",\"value\":\"" MC_USER "\"},"
	            "{\"from\":\"gpt\",\"value\":\"" MC_OUT "\"}],\"system\":\"" SYS "\","
	            "\"id\":\"gi-0001\"}\n");
	expect_line(&export_format_alpaca, item, out, NULL,
	            "{\"instruction\":\"" MC_USER "\",\"input\":\"\",\"output\":\"" MC_OUT "\","
	            "\"system\":\"" SYS "\",\"id\":\"gi-0001\"}\n");
	expect_line(&export_format_grpo, item, NULL, NULL,
	            "{\"prompt\":[{\"role\":\"user\",\"content\":\"" MC_USER "\\n\\nYour task:\\n"
	            "1. Think through the question step by step, and enclose your reasoning process "
	            "in <think>...</think> tags.\\n2. Then provide the key of the single correct option "
	            "(A, B, C) inside <answer>...</answer> tags.\\n3. No extra information or text "
	            "outside of these tags.\"}],\"answer\":\"A\",\"id\":\"gi-0001\"}\n");
	json_decref(item);
}

static void test_open_unicode(void **state)
{
	json_t *item = open_cn();
	const char *out = "答案：肠鸣音活跃\n\n肠鸣音活跃提示肠道功能良好。";

	(void)state;
	expect_line(&export_format_openai, item, out, NULL,
	            "{\"messages\":[{\"role\":\"system\",\"content\":\"" SYS "\"},"
	            "{\"role\":\"user\",\"content\":\"腹部闭合性损伤时，不支持腹腔内脏损伤诊断的是\"},"
	            "{\"role\":\"assistant\",\"content\":\"答案：肠鸣音活跃\\n\\n肠鸣音活跃提示肠道功能良好。\"}],"
	            "\"id\":\"identity_0\"}\n");
	expect_line(&export_format_sharegpt, item, out, NULL,
	            "{\"conversations\":[{\"from\":\"human\",\"value\":\"腹部闭合性损伤时，不支持腹腔内脏损伤诊断的是\"},"
	            "{\"from\":\"gpt\",\"value\":\"答案：肠鸣音活跃\\n\\n肠鸣音活跃提示肠道功能良好。\"}],"
	            "\"system\":\"" SYS "\",\"id\":\"identity_0\"}\n");
	expect_line(&export_format_alpaca, item, out, NULL,
	            "{\"instruction\":\"腹部闭合性损伤时，不支持腹腔内脏损伤诊断的是\",\"input\":\"\","
	            "\"output\":\"答案：肠鸣音活跃\\n\\n肠鸣音活跃提示肠道功能良好。\",\"system\":\"" SYS "\","
	            "\"id\":\"identity_0\"}\n");
	expect_line(&export_format_grpo, item, out, NULL,
	            "{\"prompt\":[{\"role\":\"user\",\"content\":\"腹部闭合性损伤时，不支持腹腔内脏损伤诊断的是"
	            "\\n\\nYour task:\\n1. Think through the question step by step, and enclose your "
	            "reasoning process in <think>...</think> tags.\\n2. Then give your final answer, in a "
	            "few words, inside <answer>...</answer> tags.\\n3. No extra information or text "
	            "outside of these tags.\"}],\"answer\":\"肠鸣音活跃\",\"id\":\"identity_0\"}\n");
	json_decref(item);
}

static void test_no_ids(void **state)
{
	json_t *item = mc(), *noid = json_pack("{s:s,s:s}", "question", "Q?", "answer", "x");
	struct export_opts o = { .no_ids = true, .system = "Be brief." };
	char *line = NULL;

	(void)state;
	expect_line(&export_format_alpaca, item, "Final answer: A", &o,
	            "{\"instruction\":\"" MC_USER "\",\"input\":\"\",\"output\":\"Final answer: A\","
	            "\"system\":\"Be brief.\"}\n");
	expect_line(&export_format_grpo, noid, NULL, &o,
	            "{\"prompt\":[{\"role\":\"user\",\"content\":\"Q?\\n\\nYour task:\\n1. Think through "
	            "the question step by step, and enclose your reasoning process in "
	            "<think>...</think> tags.\\n2. Then give your final answer, in a few words, inside "
	            "<answer>...</answer> tags.\\n3. No extra information or text outside of these "
	            "tags.\"}],\"answer\":\"x\"}\n");
	/* with ids on, an item without an id is refused */
	assert_int_equal(export_record(&export_format_openai, noid, "x", NULL, &line), -EINVAL);
	assert_null(line);
	json_decref(item);
	json_decref(noid);
}

static void test_context_and_special(void **state)
{
	json_t *item = json_pack("{s:s,s:s,s:s,s:{s:s,s:s,s:s},s:s}", "id", "21645374", "question",
	                         "Do mitochondria play a role?", "context", "PCD is \"regulated\".",
	                         "options", "yes", "yes", "no", "no", "maybe", "maybe", "answer", "yes");
	char *line = NULL;
	json_t *back;

	(void)state;
	expect_line(&export_format_sharegpt, item, "Final answer: yes", NULL,
	            "{\"conversations\":[{\"from\":\"human\",\"value\":\"Context:\\nPCD is \\\"regulated\\\"."
	            "\\n\\nQuestion:\\nDo mitochondria play a role?\\n\\nyes. yes\\nno. no\\nmaybe. maybe\"},"
	            "{\"from\":\"gpt\",\"value\":\"Final answer: yes\"}],\"system\":\"" SYS "\","
	            "\"id\":\"21645374\"}\n");
	assert_int_equal(export_record(&export_format_grpo, item, NULL, NULL, &line), 0);
	assert_non_null(strstr(line, "(yes, no, maybe)"));
	assert_non_null(strstr(line, "\"answer\":\"yes\""));
	/* one line, valid JSON */
	assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1);
	back = json_loads(line, 0, NULL);
	assert_non_null(back);
	json_decref(back);
	free(line);
	json_decref(item);
}

static void test_errors(void **state)
{
	json_t *item = mc(), *bad;
	char *line = NULL;
	char *big;

	(void)state;
	assert_int_equal(export_record(&export_format_openai, item, NULL, NULL, &line), -EINVAL);
	assert_int_equal(export_record(&export_format_openai, item, "", NULL, &line), -EINVAL);
	assert_int_equal(export_record(NULL, item, "x", NULL, &line), -EINVAL);
	assert_int_equal(export_record(&export_format_openai, NULL, "x", NULL, &line), -EINVAL);
	assert_int_equal(export_record(&export_format_openai, item, "bad \xff utf8", NULL, &line), -EINVAL);
	assert_null(line);
	bad = json_deep_copy(item);
	json_object_set_new(bad, "answer", json_string("Z"));
	assert_int_equal(export_record(&export_format_grpo, bad, NULL, NULL, &line), -EINVAL);
	json_object_del(bad, "question");
	json_object_set_new(bad, "answer", json_string("A"));
	assert_int_equal(export_record(&export_format_grpo, bad, NULL, NULL, &line), -EINVAL);
	json_decref(bad);
	big = malloc(EXPORT_RECORD_MAX + 2);
	assert_non_null(big);
	memset(big, 'x', EXPORT_RECORD_MAX + 1);
	big[EXPORT_RECORD_MAX + 1] = '\0';
	assert_int_equal(export_record(&export_format_openai, item, big, NULL, &line), -E2BIG);
	assert_null(line);
	free(big);
	json_decref(item);
}

static void test_format_parse(void **state)
{
	(void)state;
	assert_ptr_equal(export_format_find("openai"), &export_format_openai);
	assert_ptr_equal(export_format_find("sharegpt"), &export_format_sharegpt);
	assert_ptr_equal(export_format_find("alpaca"), &export_format_alpaca);
	assert_ptr_equal(export_format_find("grpo"), &export_format_grpo);
	assert_null(export_format_find("OpenAI"));
	assert_null(export_format_find(""));
	assert_null(export_format_find(NULL));
	assert_string_equal(export_format_grpo.name, "grpo");
	/* the table, in listing order; no row past its end */
	assert_ptr_equal(export_format_at(0), &export_format_openai);
	assert_ptr_equal(export_format_at(3), &export_format_grpo);
	assert_null(export_format_at(7));
	for (size_t i = 0; export_format_at(i); i++)
		assert_true(export_format_at(i)->description[0] != '\0');
	assert_string_equal(export_format_list(), "openai|sharegpt|alpaca|grpo|refcoco|lvit");
	/* the refer job's whole documents: no record builder */
	assert_ptr_equal(export_format_find("refcoco"), &export_format_refcoco);
	assert_ptr_equal(export_format_find("lvit"), &export_format_lvit);
	assert_null(export_format_refcoco.build);
	assert_non_null(export_format_lvit.document);
}

static void test_names_join(void **state)
{
	static const char *const names[] = {"openai", "sharegpt", "alpaca", "grpo"};
	char out[64];

	(void)state;
	formats_names_join(out, sizeof(out), names, 4, ", ", " or ");
	assert_string_equal(out, "openai, sharegpt, alpaca or grpo");
	formats_names_join(out, sizeof(out), names, 1, ", ", " or ");
	assert_string_equal(out, "openai");
	formats_names_join(out, 12, names, 4, ", ", " or ");
	assert_string_equal(out, "openai, ...");
	/* every row is named in the list the API's messages use */
	export_format_names(out, sizeof(out), "|", "|");
	assert_string_equal(out, export_format_list());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mc_formats),
		cmocka_unit_test(test_open_unicode),
		cmocka_unit_test(test_no_ids),
		cmocka_unit_test(test_context_and_special),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_format_parse),
		cmocka_unit_test(test_names_join),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
