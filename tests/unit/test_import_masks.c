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
#include "formats/pngmem.h"

struct sink {
	json_t *items;
	struct buf errors;
};

static int on_item(void *ud, json_t *item, long line)
{
	struct sink *s = ud;

	(void)line;
	json_array_append_new(s->items, item);
	return 0;
}

static int on_error(void *ud, long line, const char *reason)
{
	struct sink *s = ud;

	buf_printf(&s->errors, "%ld: %s\n", line, reason);
	return 0;
}

/* A w x 9 PNG data: URL, gray value px(x,y). */
static char *png_url(int w, uint8_t (*px)(int x, int y))
{
	uint8_t *rgb = calloc((size_t)w * 9 * 3, 1), *png = NULL;
	size_t n = 0;
	char *url;

	for (int y = 0; y < 9; y++)
		for (int x = 0; x < w; x++)
			memset(rgb + 3 * (y * w + x), px(x, y), 3);
	assert_int_equal(pngmem_write_rgb(rgb, (uint32_t)w, 9, &png, &n), 0);
	url = pngmem_data_url(png, n);
	free(png);
	free(rgb);
	return url;
}

static uint8_t three(int x, int y)
{
	return (x == 0 && y == 0) || (x >= 5 && x <= 6 && y >= 3 && y <= 4) || (x >= 9 && y >= 6) ? 255 : 0;
}
static uint8_t none(int x, int y) { (void)x; (void)y; return 0; }
static uint8_t gray(int x, int y) { return (uint8_t)(50 + x + y); }

static void run(const char *format, const char *body, struct sink *s)
{
	struct import_cb cb = { on_item, on_error, s };
	char err[200];
	struct import_parser *p = import_parser_new(format, NULL, &cb, err, sizeof(err));

	assert_non_null(p);
	s->items = json_array();
	buf_init(&s->errors, 1 << 16);
	assert_int_equal(import_parser_feed(p, body, strlen(body)), 0);
	assert_int_equal(import_parser_finish(p), 0);
	import_parser_free(p);
}

static void sink_free(struct sink *s)
{
	json_decref(s->items);
	buf_free(&s->errors);
}

static char *line(const char *id, const char *file, const char *img, const char *mask)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "id", id, "file", file, "image", img, "mask", mask);
	char *s = json_dumps(o, JSON_COMPACT);
	char *r = malloc(strlen(s) + 2);

	sprintf(r, "%s\n", s);
	free(s);
	json_decref(o);
	return r;
}

static void test_one_item_per_lesion(void **state)
{
	char *img = png_url(12, gray), *mask = png_url(12, three), *l = line("c", "img/c.png", img, mask);
	struct sink s;
	json_t *it;
	(void)state;

	run("masks", l, &s);
	assert_true(s.errors.len == 0);
	assert_int_equal(json_array_size(s.items), 3);
	it = json_array_get(s.items, 2);
	assert_string_equal(json_string_value(json_object_get(it, "id")), "c#3");
	assert_string_equal(json_string_value(json_object_get(it, "question")), "Lesion 3 of 3 in image c");
	assert_string_equal(json_string_value(json_object_get(it, "answer")), "3");
	assert_string_equal(json_string_value(json_array_get(json_object_get(it, "images"), 0)), img);
	{
		json_t *m = json_object_get(it, "mask");
		char *a = json_dumps(json_object_get(m, "attributes"), JSON_COMPACT | JSON_REAL_PRECISION(6));

		assert_string_equal(json_string_value(json_object_get(m, "png")), mask);
		assert_int_equal(json_integer_value(json_object_get(m, "region")), 3);
		assert_string_equal(json_string_value(json_object_get(m, "image_id")), "c");
		assert_int_equal(json_integer_value(json_object_get(m, "width")), 12);
		assert_string_equal(a, "{\"region\":3,\"label\":255,\"count\":3,\"bbox\":[9,6,3,3],"
				       "\"centroid\":[10.5,7.5],\"area_px\":9,\"area_fraction\":0.0833333,"
				       "\"position\":\"lower right\",\"size_rank\":1}");
		free(a);
	}
	sink_free(&s);
	free(l);
	free(mask);
	free(img);
}

static void test_bad_pairs(void **state)
{
	char *img = png_url(12, gray), *wide = png_url(13, gray), *mask = png_url(12, three), *empty = png_url(12, none);
	char body[1 << 16];
	char *a = line("a", "img/a.png", wide, mask), *b = line("b", "img/b.png", img, empty),
	     *c = line("c", "img/c.png", "data:image/png;base64,AAAA", mask);
	struct sink s;
	(void)state;

	snprintf(body, sizeof(body), "%s%s%s", a, b, c);
	run("masks", body, &s);
	assert_int_equal(json_array_size(s.items), 0);
	assert_string_equal(s.errors.base,
			    "1: img/a.png: the mask is 12x9 pixels but the image is 13x9: sizes must match\n"
			    "2: img/b.png: the mask is empty: every pixel is 0\n"
			    "3: img/c.png: the image: not a PNG\n");
	sink_free(&s);
	free(a);
	free(b);
	free(c);
	free(img);
	free(wide);
	free(mask);
	free(empty);
}

static void test_native_mask(void **state)
{
	char *img = png_url(12, gray), *mask = png_url(12, three), body[1 << 16];
	struct sink s;
	(void)state;

	snprintf(body, sizeof(body),
		 "{\"id\":\"n1\",\"question\":\"q\",\"answer\":\"2\",\"images\":[\"%s\"],\"mask\":{\"png\":\"%s\",\"region\":2}}\n"
		 "{\"id\":\"n2\",\"question\":\"q\",\"answer\":\"4\",\"images\":[\"%s\"],\"mask\":{\"png\":\"%s\",\"region\":4}}\n"
		 "{\"id\":\"n3\",\"question\":\"q\",\"answer\":\"1\",\"mask\":{\"png\":\"%s\",\"region\":1}}\n",
		 img, mask, img, mask, mask);
	run("native", body, &s);
	assert_int_equal(json_array_size(s.items), 1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(
				    json_array_get(s.items, 0), "mask"), "attributes"), "position")),
			    "central");
	assert_string_equal(s.errors.base, "2: \"mask\": region 4: the mask has 3 lesions\n"
					   "3: an item with a \"mask\" needs its image in \"images\"\n");
	sink_free(&s);
	free(img);
	free(mask);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_item_per_lesion),
		cmocka_unit_test(test_bad_pairs),
		cmocka_unit_test(test_native_mask),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
