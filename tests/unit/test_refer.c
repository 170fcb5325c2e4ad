/* layers: stages formats common */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/export.h"
#include "formats/pngmem.h"
#include "stages/refer.h"
#include "stages/steps.h"

/* A 12x9 PNG data: URL whose gray value at (x,y) is px(x,y). */
static char *png_url(uint8_t (*px)(int x, int y))
{
	uint8_t rgb[12 * 9 * 3], *png = NULL;
	size_t n = 0;
	char *url;

	for (int y = 0; y < 9; y++)
		for (int x = 0; x < 12; x++)
			memset(rgb + 3 * (y * 12 + x), px(x, y), 3);
	assert_int_equal(pngmem_write_rgb(rgb, 12, 9, &png, &n), 0);
	url = pngmem_data_url(png, n);
	free(png);
	return url;
}

/* three lesions: (0,0); x 5-6, y 3-4; x 9-11, y 6-8 */
static uint8_t mask_px(int x, int y)
{
	return (x == 0 && y == 0) || (x >= 5 && x <= 6 && y >= 3 && y <= 4) || (x >= 9 && y >= 6) ? 255 : 0;
}

static uint8_t image_px(int x, int y) { return (uint8_t)(40 + x + y); }

static json_t *item_of(int region)
{
	char *m = png_url(mask_px), *i = png_url(image_px);
	json_t *item = json_pack("{s:s, s:s, s:s, s:[s], s:{s:s, s:i, s:s, s:s}}", "id", "c#1", "question", "q",
				 "answer", "1", "images", i, "mask", "png", m, "region", region, "image_id",
				 "c", "file", "img/c.png");

	free(m);
	free(i);
	return item;
}

static void test_write_request(void **state)
{
	json_t *item = item_of(3), *spec = json_pack("{s:{s:i}}", "refer", "expressions_per_region", 2);
	struct step_ctx ctx = { .item = item, .spec = spec };
	struct step_request req;
	const char *text;
	json_t *parts;
	char err[200];
	(void)state;

	assert_int_equal(step_request_build(STEP_REFER, &ctx, &req, err, sizeof(err)), 0);
	assert_true(req.expect_json);
	assert_non_null(req.schema);
	parts = json_object_get(json_array_get(req.messages, 1), "content");
	assert_int_equal(json_array_size(parts), 3);
	text = json_string_value(json_object_get(json_array_get(parts, 0), "text"));
	assert_true(strncmp(text, "### Task: refer\nWrite 2 different", 33) == 0);
	assert_non_null(strstr(text, "Attributes: position: lower right; size rank: 1 of 3"));
	assert_non_null(strstr(text, "- position: upper left; size rank: 3 of 3"));
	/* the original, then the overlay: both PNG data: URLs, not the same */
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(parts, 1), "image_url"), "url")),
			    json_string_value(json_array_get(json_object_get(item, "images"), 0)));
	assert_string_not_equal(json_string_value(json_object_get(json_object_get(json_array_get(parts, 2), "image_url"), "url")),
				json_string_value(json_array_get(json_object_get(item, "images"), 0)));
	step_request_clear(&req);
	/* an item without a mask cannot be asked */
	json_object_del(item, "mask");
	assert_int_equal(step_request_build(STEP_REFER, &ctx, &req, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no mask"));
	json_decref(item);
	json_decref(spec);
}

static void test_write_reply(void **state)
{
	json_t *item = item_of(2), *spec = json_pack("{s:{s:i}}", "refer", "expressions_per_region", 2);
	struct step_ctx ctx = { .item = item, .spec = spec };
	struct step_outcome out;
	json_t *r;
	(void)state;

	r = json_pack("{s:[s,s,s]}", "expressions", "  the central one ", "The central one", "x");
	step_reply_judge(STEP_REFER, &ctx, "", r, &out);
	assert_int_equal(out.result, STEP_DONE);
	assert_int_equal(out.next, STEP_REFER_CHECK1);
	assert_string_equal(out.artifact_kind, "refer_expressions");
	/* trimmed, a duplicate (any case) left out, k kept */
	assert_string_equal(json_string_value(json_array_get(json_object_get(out.artifact, "expressions"), 0)),
			    "the central one");
	assert_string_equal(json_string_value(json_array_get(json_object_get(out.artifact, "expressions"), 1)), "x");
	assert_int_equal(json_integer_value(json_object_get(out.artifact, "region")), 2);
	step_outcome_clear(&out);
	json_decref(r);
	r = json_pack("{s:[s]}", "expressions", "only one");
	step_reply_judge(STEP_REFER, &ctx, "", r, &out);
	assert_int_equal(out.result, STEP_RETRY);
	assert_string_equal(out.reason, "the reply has 1 different non-empty expressions; 2 were asked");
	step_outcome_clear(&out);
	ctx.attempt = STEP_MAX_ATTEMPTS - 1;
	step_reply_judge(STEP_REFER, &ctx, "", r, &out);
	assert_int_equal(out.result, STEP_FAILED);
	step_outcome_clear(&out);
	json_decref(r);
	json_decref(item);
	json_decref(spec);
}

static void test_check(void **state)
{
	json_t *item = item_of(2), *prior = json_pack("{s:[s,s]}", "expressions", "e one", "e two");
	struct step_ctx ctx = { .item = item, .prior = prior };
	struct step_request req;
	struct step_outcome out;
	const char *text;
	json_t *r;
	char err[200];
	(void)state;

	assert_int_equal(step_request_build(STEP_REFER_CHECK2, &ctx, &req, err, sizeof(err)), 0);
	text = json_string_value(json_object_get(json_array_get(json_object_get(json_array_get(req.messages, 1), "content"), 0), "text"));
	assert_non_null(strstr(text, "<<<\ne two\n>>>"));
	assert_null(strstr(text, "e one"));   /* only its own expression */
	assert_null(strstr(text, "target")); /* and never the target */
	assert_non_null(strstr(text, "\n2: position: central; size rank: 2 of 3"));
	step_request_clear(&req);
	assert_int_equal(step_request_build(STEP_REFER_CHECK3, &ctx, &req, err, sizeof(err)), -EINVAL);

	/* right and unique: kept, and check 2 follows check 1 */
	r = json_pack("{s:i, s:b}", "region", 2, "unique", 1);
	step_reply_judge(STEP_REFER_CHECK1, &ctx, "", r, &out);
	assert_int_equal(out.result, STEP_DONE);
	assert_int_equal(out.next, STEP_REFER_CHECK2);
	assert_true(json_is_true(json_object_get(out.artifact, "kept")));
	assert_string_equal(json_string_value(json_object_get(out.artifact, "expression")), "e one");
	step_outcome_clear(&out);
	/* the last expression: nothing follows */
	step_reply_judge(STEP_REFER_CHECK2, &ctx, "", r, &out);
	assert_int_equal(out.next, -1);
	step_outcome_clear(&out);
	json_decref(r);
	/* the wrong region */
	r = json_pack("{s:i, s:b}", "region", 3, "unique", 1);
	step_reply_judge(STEP_REFER_CHECK1, &ctx, "", r, &out);
	assert_false(json_is_true(json_object_get(out.artifact, "kept")));
	assert_string_equal(json_string_value(json_object_get(out.artifact, "reason")),
			    "dropped: the screener picked region 3, the target is 2");
	step_outcome_clear(&out);
	json_decref(r);
	/* right but not unique */
	r = json_pack("{s:i, s:b}", "region", 2, "unique", 0);
	step_reply_judge(STEP_REFER_CHECK1, &ctx, "", r, &out);
	assert_false(json_is_true(json_object_get(out.artifact, "kept")));
	assert_non_null(strstr(json_string_value(json_object_get(out.artifact, "reason")), "dropped: ambiguous"));
	step_outcome_clear(&out);
	json_decref(r);
	/* malformed */
	r = json_pack("{s:s}", "region", "two");
	step_reply_judge(STEP_REFER_CHECK1, &ctx, "", r, &out);
	assert_int_equal(out.result, STEP_RETRY);
	step_outcome_clear(&out);
	json_decref(r);
	json_decref(prior);
	json_decref(item);
}

static void test_documents(void **state)
{
	json_t *item = item_of(1), *regions;
	char *doc = NULL;
	size_t len = 0;
	json_t *d;
	(void)state;

	/* attributes as the importer stores them */
	json_object_set_new(json_object_get(item, "mask"), "attributes",
			    json_pack("{s:[i,i,i,i], s:i}", "bbox", 0, 0, 1, 1, "area_px", 1));
	json_object_set_new(json_object_get(item, "mask"), "width", json_integer(12));
	json_object_set_new(json_object_get(item, "mask"), "height", json_integer(9));
	regions = json_pack("[{s:O, s:s, s:[{s:s, s:b}, {s:s, s:b}, {s:s, s:b}]}]", "item", item, "split",
			    "val", "expressions", "text", "Dropped one", "kept", 0, "text",
			    "The top-left, \"tiny\" lesion", "kept", 1, "text", "Upper-left dot", "kept", 1);
	assert_int_equal(export_format_refcoco.document(regions, &doc, &len), 0);
	d = json_loads(doc, 0, NULL);
	assert_int_equal(json_array_size(json_object_get(d, "refs")), 1);
	{
		json_t *ref = json_array_get(json_object_get(d, "refs"), 0);
		json_t *s0 = json_array_get(json_object_get(ref, "sentences"), 0);
		char *t = json_dumps(json_object_get(s0, "tokens"), JSON_COMPACT);

		assert_string_equal(json_string_value(json_object_get(ref, "split")), "val");
		assert_int_equal(json_array_size(json_object_get(ref, "sentences")), 2);
		assert_string_equal(json_string_value(json_object_get(s0, "raw")), "The top-left, \"tiny\" lesion");
		assert_string_equal(t, "[\"the\",\"top\",\"left\",\"tiny\",\"lesion\"]");
		assert_string_equal(json_string_value(json_object_get(s0, "sent")), "the top left tiny lesion");
		free(t);
		t = json_dumps(json_object_get(json_array_get(json_object_get(d, "annotations"), 0), "segmentation"),
			       JSON_COMPACT);
		assert_string_equal(t, "{\"size\":[9,12],\"counts\":[0,1,107]}");
		free(t);
	}
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(d, "images"), 0), "file_name")),
			    "c.png");
	json_decref(d);
	free(doc);
	assert_int_equal(export_format_lvit.document(regions, &doc, &len), 0);
	assert_string_equal(doc, "Image,Description,Split,Source,Region\r\n"
				 "c_1.png,\"The top-left, \"\"tiny\"\" lesion\",val,img/c.png,1\r\n");
	free(doc);
	json_decref(regions);
	json_decref(item);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_request),
		cmocka_unit_test(test_write_reply),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_documents),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
