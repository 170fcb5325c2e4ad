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

#include "formats/overlay.h"
#include "formats/pngmem.h"
#include "formats/regions.h"

/* The attributes of region k, compact, for one string comparison. */
static char *attrs(const struct regions *rs, int k)
{
	json_t *a = regions_attributes(rs, k);
	char *s = json_dumps(a, JSON_COMPACT | JSON_REAL_PRECISION(6));

	json_decref(a);
	return s;
}

static void expect_attrs(const struct regions *rs, int k, const char *want)
{
	char *s = attrs(rs, k);

	assert_string_equal(s, want);
	free(s);
}

/* 12x9 binary mask (value 255): a lone pixel at (0,0), a 2x2 block at
 * x 5-6, y 3-4, a 3x3 block at x 9-11, y 6-8. */
static uint16_t *mask_three(void)
{
	uint16_t *m = calloc(12 * 9, sizeof(*m));

	m[0] = 255;
	for (int y = 3; y <= 4; y++)
		for (int x = 5; x <= 6; x++)
			m[y * 12 + x] = 255;
	for (int y = 6; y <= 8; y++)
		for (int x = 9; x <= 11; x++)
			m[y * 12 + x] = 255;
	return m;
}

static void test_several_lesions(void **state)
{
	struct regions rs;
	uint16_t *m = mask_three();
	char err[128];
	(void)state;

	assert_int_equal(regions_find(m, 12, 9, &rs, err, sizeof(err)), 0);
	assert_true(rs.binary);
	assert_int_equal(rs.n, 3);
	expect_attrs(&rs, 1, "{\"region\":1,\"label\":255,\"count\":3,\"bbox\":[0,0,1,1],"
	                      "\"centroid\":[0.5,0.5],\"area_px\":1,\"area_fraction\":0.00925926,"
	                      "\"position\":\"upper left\",\"size_rank\":3}");
	expect_attrs(&rs, 2, "{\"region\":2,\"label\":255,\"count\":3,\"bbox\":[5,3,2,2],"
	                      "\"centroid\":[6.0,4.0],\"area_px\":4,\"area_fraction\":0.037037,"
	                      "\"position\":\"central\",\"size_rank\":2}");
	expect_attrs(&rs, 3, "{\"region\":3,\"label\":255,\"count\":3,\"bbox\":[9,6,3,3],"
	                      "\"centroid\":[10.5,7.5],\"area_px\":9,\"area_fraction\":0.0833333,"
	                      "\"position\":\"lower right\",\"size_rank\":1}");
	assert_null(regions_attributes(&rs, 0));
	assert_null(regions_attributes(&rs, 4));
	regions_free(&rs);
	free(m);
}

static void test_touching_lesions(void **state)
{
	uint16_t m[5 * 4] = {0};
	struct regions rs;
	char err[128], pos[32];
	(void)state;

	/* binary, touching by a corner: one lesion (8-connectivity) */
	m[1 * 5 + 1] = 1;
	m[2 * 5 + 2] = 1;
	assert_int_equal(regions_find(m, 5, 4, &rs, err, sizeof(err)), 0);
	assert_int_equal(rs.n, 1);
	expect_attrs(&rs, 1, "{\"region\":1,\"label\":1,\"count\":1,\"bbox\":[1,1,2,2],"
	                      "\"centroid\":[2.0,2.0],\"area_px\":2,\"area_fraction\":0.1,"
	                      "\"position\":\"central\",\"size_rank\":1}");
	regions_free(&rs);
	/* a label map: touching by an edge, two values, two lesions, in value
	 * order whatever the raster order */
	memset(m, 0, sizeof(m));
	m[0 * 5 + 4] = 3;
	m[1 * 5 + 3] = 5;
	m[1 * 5 + 4] = 5;
	assert_int_equal(regions_find(m, 5, 4, &rs, err, sizeof(err)), 0);
	assert_false(rs.binary);
	assert_int_equal(rs.n, 2);
	assert_int_equal(rs.r[1].label, 3);
	assert_int_equal(rs.r[2].label, 5);
	assert_int_equal(rs.r[1].area, 1);
	assert_int_equal(rs.r[2].area, 2);
	assert_int_equal(rs.r[2].size_rank, 1);
	regions_position(&rs, 1, pos, sizeof(pos));
	assert_string_equal(pos, "upper right");
	assert_int_equal(rs.map[0 * 5 + 4], 1);
	assert_int_equal(rs.map[1 * 5 + 3], 2);
	regions_free(&rs);
}

static void test_one_pixel_lesions(void **state)
{
	uint16_t m[3 * 3] = {0};
	struct regions rs;
	char err[128];
	json_t *rle;
	char *s;
	(void)state;

	m[0] = 1; /* (0,0) */
	m[8] = 1; /* (2,2): not touching */
	assert_int_equal(regions_find(m, 3, 3, &rs, err, sizeof(err)), 0);
	assert_int_equal(rs.n, 2);
	/* equal areas rank by region number */
	assert_int_equal(rs.r[1].size_rank, 1);
	assert_int_equal(rs.r[2].size_rank, 2);
	expect_attrs(&rs, 2, "{\"region\":2,\"label\":1,\"count\":2,\"bbox\":[2,2,1,1],"
	                      "\"centroid\":[2.5,2.5],\"area_px\":1,\"area_fraction\":0.111111,"
	                      "\"position\":\"lower right\",\"size_rank\":2}");
	/* column-major runs from the background: 8 background, then the pixel */
	rle = regions_rle(&rs, 2);
	s = json_dumps(rle, JSON_COMPACT);
	assert_string_equal(s, "{\"size\":[3,3],\"counts\":[8,1]}");
	free(s);
	json_decref(rle);
	rle = regions_rle(&rs, 1);
	s = json_dumps(rle, JSON_COMPACT);
	assert_string_equal(s, "{\"size\":[3,3],\"counts\":[0,1,8]}");
	free(s);
	json_decref(rle);
	regions_free(&rs);
}

static void test_full_and_empty(void **state)
{
	uint16_t m[4 * 4];
	struct regions rs;
	char err[128], text[400];
	(void)state;

	for (int i = 0; i < 16; i++)
		m[i] = 7;
	assert_int_equal(regions_find(m, 4, 4, &rs, err, sizeof(err)), 0);
	assert_int_equal(rs.n, 1);
	expect_attrs(&rs, 1, "{\"region\":1,\"label\":7,\"count\":1,\"bbox\":[0,0,4,4],"
	                      "\"centroid\":[2.0,2.0],\"area_px\":16,\"area_fraction\":1.0,"
	                      "\"position\":\"central\",\"size_rank\":1}");
	regions_describe(&rs, 1, text, sizeof(text));
	assert_non_null(strstr(text, "the only lesion"));
	assert_non_null(strstr(text, "100.00%"));
	regions_free(&rs);
	memset(m, 0, sizeof(m));
	assert_int_equal(regions_find(m, 4, 4, &rs, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "the mask is empty: every pixel is 0");
	assert_null(rs.map);
}

static void test_png_round_trip(void **state)
{
	uint8_t rgb[12 * 9 * 3], *png = NULL, *back = NULL;
	uint16_t *m = mask_three(), *lab = NULL;
	size_t n = 0, n2 = 0;
	uint32_t w = 0, h = 0;
	char err[160], *url;
	(void)state;

	for (int i = 0; i < 12 * 9; i++)
		rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = (uint8_t)m[i];
	assert_int_equal(pngmem_write_rgb(rgb, 12, 9, &png, &n), 0);
	assert_true(pngmem_is_png(png, n));
	assert_int_equal(pngmem_size(png, n, &w, &h, err, sizeof(err)), 0);
	assert_int_equal(w, 12);
	assert_int_equal(h, 9);
	/* a chunk before the header: refused by every reader (found by the
	 * png fuzz target: libpng alone decoded it) */
	{
		uint8_t *odd = malloc(n + 12), *px = NULL;
		uint16_t *lb = NULL;

		assert_non_null(odd);
		memcpy(odd, png, 8);
		memcpy(odd + 8, "\0\0\0\0rrrr\0\0\0\0", 12); /* empty ancillary chunk */
		memcpy(odd + 20, png + 8, n - 8);
		assert_int_equal(pngmem_size(odd, n + 12, &w, &h, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "no header chunk"));
		assert_int_equal(pngmem_read_labels(odd, n + 12, &lb, &w, &h, err, sizeof(err)), -EINVAL);
		assert_int_equal(pngmem_read_rgb(odd, n + 12, &px, &w, &h, err, sizeof(err)), -EINVAL);
		assert_null(lb);
		assert_null(px);
		free(odd);
	}
	url = pngmem_data_url(png, n);
	assert_int_equal(pngmem_from_data_url(url, &back, &n2, err, sizeof(err)), 0);
	assert_int_equal(n2, n);
	assert_memory_equal(back, png, n);
	assert_int_equal(pngmem_read_labels(back, n2, &lab, &w, &h, err, sizeof(err)), 0);
	assert_memory_equal(lab, m, 12 * 9 * sizeof(*m));
	free(lab);
	free(back);
	free(url);
	free(png);
	/* a colour pixel is not a label */
	rgb[0] = 10;
	assert_int_equal(pngmem_write_rgb(rgb, 12, 9, &png, &n), 0);
	assert_int_equal(pngmem_read_labels(png, n, &lab, &w, &h, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "pixel (0,0) is a colour"));
	free(png);
	assert_int_equal(pngmem_read_labels("GIF89a....", 10, &lab, &w, &h, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "not a PNG");
	assert_int_equal(pngmem_from_data_url("data:image/jpeg;base64,AAAA", &back, &n2, err, sizeof(err)),
	                 -EINVAL);
	free(m);
}

static void test_png_too_large(void **state)
{
	uint8_t *rgb = calloc(4097 * 3, 1), *png = NULL, *out = NULL;
	uint16_t *lab = NULL;
	size_t n = 0;
	uint32_t w, h;
	char err[160];
	(void)state;

	assert_int_equal(pngmem_write_rgb(rgb, 4097, 1, &png, &n), 0);
	assert_int_equal(pngmem_read_labels(png, n, &lab, &w, &h, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "4097x1 pixels: larger than 4096x4096");
	assert_int_equal(pngmem_read_rgb(png, n, &out, &w, &h, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "4097x1 pixels: larger than 4096x4096");
	free(png);
	free(rgb);
}

static void test_overlay(void **state)
{
	uint16_t *m = mask_three();
	uint8_t rgb[12 * 9 * 3] = {0}, red[3] = {255, 0, 0}, black[3] = {0, 0, 0}, c3[3], *png;
	struct regions rs;
	char err[160], *url = NULL, *src;
	size_t n;
	uint32_t w, h;
	uint8_t *dec = NULL;
	(void)state;

	assert_int_equal(regions_find(m, 12, 9, &rs, err, sizeof(err)), 0);
	/* one region: its boundary in red, nothing else touched */
	assert_int_equal(overlay_draw(rgb, 12, 9, &rs, 1), 0);
	assert_memory_equal(rgb, red, 3);
	for (int i = 1; i < 12 * 9; i++)
		assert_memory_equal(rgb + 3 * i, black, 3);
	/* the 3x3 block alone: its ring is drawn, its centre is not */
	memset(rgb, 0, sizeof(rgb));
	assert_int_equal(overlay_draw(rgb, 12, 9, &rs, 3), 0);
	assert_memory_equal(rgb + 3 * (6 * 12 + 9), red, 3);
	assert_memory_equal(rgb + 3 * (7 * 12 + 10), black, 3);
	/* all regions numbered, in their colours */
	memset(rgb, 0, sizeof(rgb));
	assert_int_equal(overlay_draw(rgb, 12, 9, &rs, 0), 0);
	assert_memory_equal(rgb, red, 3);
	overlay_colour(3, c3);
	assert_memory_equal(rgb + 3 * (8 * 12 + 11), c3, 3);
	assert_memory_equal(rgb + 3 * (0 * 12 + 11), black, 3);
	assert_int_equal(overlay_draw(rgb, 11, 9, &rs, 0), -EINVAL);
	assert_int_equal(overlay_draw(rgb, 12, 9, &rs, 4), -EINVAL);
	/* through data: URLs, as the refer steps use it; the same bytes twice */
	memset(rgb, 0, sizeof(rgb));
	assert_int_equal(pngmem_write_rgb(rgb, 12, 9, &png, &n), 0);
	src = pngmem_data_url(png, n);
	free(png);
	assert_int_equal(overlay_data_url(src, &rs, 1, &url, err, sizeof(err)), 0);
	{
		char *again = NULL;

		assert_int_equal(overlay_data_url(src, &rs, 1, &again, err, sizeof(err)), 0);
		assert_string_equal(url, again);
		free(again);
	}
	assert_int_equal(pngmem_from_data_url(url, &png, &n, err, sizeof(err)), 0);
	assert_int_equal(pngmem_read_rgb(png, n, &dec, &w, &h, err, sizeof(err)), 0);
	assert_memory_equal(dec, red, 3);
	free(dec);
	free(png);
	free(url);
	free(src);
	regions_free(&rs);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_several_lesions), cmocka_unit_test(test_touching_lesions),
		cmocka_unit_test(test_one_pixel_lesions), cmocka_unit_test(test_full_and_empty),
		cmocka_unit_test(test_png_round_trip), cmocka_unit_test(test_png_too_large),
		cmocka_unit_test(test_overlay),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
