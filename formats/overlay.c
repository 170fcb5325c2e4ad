/* Outlines and numbers on an image (formats/overlay.h). */
#include "formats/overlay.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/pngmem.h"

/* Distinct, saturated colours; region k takes palette[(k-1) % 8]. */
static const uint8_t palette[8][3] = {
	{255, 0, 0},   {0, 255, 0},   {0, 128, 255}, {255, 255, 0},
	{255, 0, 255}, {0, 255, 255}, {255, 128, 0}, {160, 96, 255},
};

/* 3x5 digits, one row per byte (bit 2 = left column). */
static const uint8_t digits[10][5] = {
	{7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1},
	{7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7},
};

void overlay_colour(int k, uint8_t out[3])
{
	memcpy(out, palette[(k - 1) % 8], 3);
}

static void put(uint8_t *rgb, uint32_t w, uint32_t h, int64_t x, int64_t y, const uint8_t c[3])
{
	if (x < 0 || y < 0 || x >= w || y >= h)
		return;
	memcpy(rgb + ((size_t)y * w + (size_t)x) * 3, c, 3);
}

static void fill(uint8_t *rgb, uint32_t w, uint32_t h, int64_t x, int64_t y, int64_t bw, int64_t bh,
                 const uint8_t c[3])
{
	for (int64_t j = 0; j < bh; j++)
		for (int64_t i = 0; i < bw; i++)
			put(rgb, w, h, x + i, y + j, c);
}

static bool boundary(const struct regions *rs, uint32_t x, uint32_t y, int k)
{
	static const int d[4][2] = {{1, 0}, {-1, 0}, {0, 1}, {0, -1}};

	for (int i = 0; i < 4; i++) {
		int64_t nx = (int64_t)x + d[i][0], ny = (int64_t)y + d[i][1];

		if (nx < 0 || ny < 0 || nx >= rs->w || ny >= rs->h ||
		    rs->map[(size_t)ny * rs->w + (size_t)nx] != k)
			return true;
	}
	return false;
}

static void outline(uint8_t *rgb, const struct regions *rs, int k, const uint8_t c[3], int t)
{
	const struct region *r = &rs->r[k];

	for (uint32_t y = r->y0; y <= r->y1; y++)
		for (uint32_t x = r->x0; x <= r->x1; x++)
			if (rs->map[(size_t)y * rs->w + x] == k && boundary(rs, x, y, k))
				fill(rgb, rs->w, rs->h, (int64_t)x - (t - 1) / 2, (int64_t)y - (t - 1) / 2, t, t, c);
}

static void number(uint8_t *rgb, const struct regions *rs, int k, const uint8_t c[3], int s)
{
	static const uint8_t black[3] = {0, 0, 0};
	const struct region *r = &rs->r[k];
	char txt[8];
	int n = snprintf(txt, sizeof(txt), "%d", k);
	int64_t bw = (int64_t)n * 4 * s + s, bh = 7 * s, x = r->x0, y = (int64_t)r->y0 - bh - 1;

	if (y < 0)
		y = (int64_t)r->y1 + 2 + bh <= rs->h ? (int64_t)r->y1 + 2 : r->y0;
	if (x + bw > rs->w)
		x = rs->w > bw ? (int64_t)rs->w - bw : 0;
	fill(rgb, rs->w, rs->h, x, y, bw, bh, c);
	for (int i = 0; i < n; i++) {
		const uint8_t *g = digits[txt[i] - '0'];

		for (int row = 0; row < 5; row++)
			for (int col = 0; col < 3; col++)
				if (g[row] >> (2 - col) & 1)
					fill(rgb, rs->w, rs->h, x + s + (int64_t)i * 4 * s + col * s,
					     y + s + row * s, s, s, black);
	}
}

int overlay_draw(uint8_t *rgb, uint32_t w, uint32_t h, const struct regions *rs, int only)
{
	uint32_t side = w < h ? w : h;
	int t = 1 + (int)(side / 256), s = side >= 200 ? (int)(side / 100) : 1;

	if (!rgb || w != rs->w || h != rs->h || only < 0 || only > rs->n)
		return -EINVAL;
	if (only) {
		outline(rgb, rs, only, palette[0], t);
		return 0;
	}
	for (int k = 1; k <= rs->n; k++)
		outline(rgb, rs, k, palette[(k - 1) % 8], t);
	for (int k = 1; k <= rs->n; k++)
		number(rgb, rs, k, palette[(k - 1) % 8], s);
	return 0;
}

int overlay_data_url(const char *image_url, const struct regions *rs, int only, char **url_out,
                     char *err, size_t errlen)
{
	uint8_t *png = NULL, *rgb = NULL, *out = NULL;
	size_t n = 0, outn = 0;
	uint32_t w = 0, h = 0;
	int rc;

	*url_out = NULL;
	rc = pngmem_from_data_url(image_url, &png, &n, err, errlen);
	if (rc)
		goto out;
	rc = pngmem_read_rgb(png, n, &rgb, &w, &h, err, errlen);
	if (rc)
		goto out;
	rc = overlay_draw(rgb, w, h, rs, only);
	if (rc) {
		snprintf(err, errlen, "the image is %ux%u, the mask %ux%u", w, h, rs->w, rs->h);
		goto out;
	}
	rc = pngmem_write_rgb(rgb, w, h, &out, &outn);
	if (rc) {
		snprintf(err, errlen, "cannot encode the overlay");
		goto out;
	}
	*url_out = pngmem_data_url(out, outn);
	if (!*url_out) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
	}
out:
	free(png);
	free(rgb);
	free(out);
	return rc;
}
