/* Lesions of a mask (formats/regions.h). */
#include "formats/regions.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void regions_free(struct regions *rs)
{
	free(rs->map);
	rs->map = NULL;
}

static void region_add(struct region *r, uint32_t x, uint32_t y)
{
	if (r->area == 0) {
		r->x0 = r->x1 = x;
		r->y0 = r->y1 = y;
	}
	if (x < r->x0)
		r->x0 = x;
	if (x > r->x1)
		r->x1 = x;
	if (y < r->y0)
		r->y0 = y;
	if (y > r->y1)
		r->y1 = y;
	r->area++;
	r->sum_x += x;
	r->sum_y += y;
}

/* 8-connected components of the non-zero pixels, by a flood fill with an
 * explicit stack (no recursion: a mask the size of the image is one
 * component of up to 16M pixels). */
static int components(const uint16_t *labels, struct regions *rs, char *err, size_t errlen)
{
	uint32_t w = rs->w, h = rs->h;
	size_t npx = (size_t)w * h;
	uint32_t *stack = malloc(sizeof(*stack) * npx);

	if (!stack) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < npx; i++) {
		size_t top = 0;
		struct region *r;

		if (!labels[i] || rs->map[i])
			continue;
		if (rs->n == REGIONS_MAX) {
			free(stack);
			snprintf(err, errlen, "more than %d lesions (connected components)", REGIONS_MAX);
			return -EINVAL;
		}
		r = &rs->r[++rs->n];
		r->label = labels[i];
		rs->map[i] = (uint8_t)rs->n;
		stack[top++] = (uint32_t)i;
		while (top) {
			uint32_t p = stack[--top], x = p % w, y = p / w;

			region_add(r, x, y);
			for (int dy = -1; dy <= 1; dy++) {
				for (int dx = -1; dx <= 1; dx++) {
					int64_t nx = (int64_t)x + dx, ny = (int64_t)y + dy;
					size_t q;

					if (nx < 0 || ny < 0 || nx >= w || ny >= h)
						continue;
					q = (size_t)ny * w + (size_t)nx;
					if (labels[q] && !rs->map[q]) {
						rs->map[q] = (uint8_t)rs->n;
						stack[top++] = (uint32_t)q;
					}
				}
			}
		}
	}
	free(stack);
	return 0;
}

int regions_find(const uint16_t *labels, uint32_t w, uint32_t h, struct regions *rs, char *err,
                 size_t errlen)
{
	size_t npx = (size_t)w * h;
	uint16_t *index = NULL; /* value -> region number */
	uint16_t first = 0;
	int distinct = 0, rc = 0;

	memset(rs, 0, sizeof(*rs));
	rs->w = w;
	rs->h = h;
	if (!w || !h) {
		snprintf(err, errlen, "the mask has no pixels");
		return -EINVAL;
	}
	rs->map = calloc(npx, 1);
	index = calloc(65536, sizeof(*index));
	if (!rs->map || !index) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < npx; i++) {
		if (labels[i] && !index[labels[i]]) {
			index[labels[i]] = 1;
			if (!distinct)
				first = labels[i];
			distinct++;
		}
	}
	if (distinct == 0) {
		snprintf(err, errlen, "the mask is empty: every pixel is 0");
		rc = -EINVAL;
		goto out;
	}
	if (distinct == 1) {
		(void)first;
		rs->binary = true;
		rc = components(labels, rs, err, errlen);
		if (rc)
			goto out;
	} else {
		if (distinct > REGIONS_MAX) {
			snprintf(err, errlen, "more than %d lesions (distinct label values)", REGIONS_MAX);
			rc = -EINVAL;
			goto out;
		}
		for (uint32_t v = 1; v < 65536; v++) {
			if (index[v]) {
				index[v] = (uint16_t)++rs->n;
				rs->r[rs->n].label = (uint16_t)v;
			}
		}
		for (size_t i = 0; i < npx; i++) {
			if (!labels[i])
				continue;
			rs->map[i] = (uint8_t)index[labels[i]];
			region_add(&rs->r[index[labels[i]]], (uint32_t)(i % w), (uint32_t)(i / w));
		}
	}
	for (int k = 1; k <= rs->n; k++) {
		int rank = 1;

		for (int o = 1; o <= rs->n; o++)
			if (rs->r[o].area > rs->r[k].area || (rs->r[o].area == rs->r[k].area && o < k))
				rank++;
		rs->r[k].size_rank = rank;
	}
out:
	free(index);
	if (rc)
		regions_free(rs);
	return rc;
}

void regions_position(const struct regions *rs, int k, char *out, size_t outlen)
{
	const struct region *r = &rs->r[k];
	/* 2*sum + area = 2 * area * (centroid), compared with the thirds
	 * without rounding: cx < W/3  <=>  3*(2*sum_x + a) < 2*W*a */
	uint64_t a = r->area, cx2 = 2 * r->sum_x + a, cy2 = 2 * r->sum_y + a;
	const char *v = 3 * cy2 < 2 * (uint64_t)rs->h * a   ? "upper"
	                : 3 * cy2 > 4 * (uint64_t)rs->h * a ? "lower"
	                                                     : "";
	const char *hz = 3 * cx2 < 2 * (uint64_t)rs->w * a   ? "left"
	                 : 3 * cx2 > 4 * (uint64_t)rs->w * a ? "right"
	                                                      : "";

	if (!*v && !*hz)
		snprintf(out, outlen, "central");
	else
		snprintf(out, outlen, "%s%s%s", v, *v && *hz ? " " : "", hz);
}

static double centroid(uint64_t sum, uint64_t area) { return (double)sum / (double)area + 0.5; }

json_t *regions_attributes(const struct regions *rs, int k)
{
	const struct region *r;
	char pos[32];

	if (k < 1 || k > rs->n)
		return NULL;
	r = &rs->r[k];
	regions_position(rs, k, pos, sizeof(pos));
	return json_pack("{s:i, s:i, s:i, s:[I,I,I,I], s:[f,f], s:I, s:f, s:s, s:i}", "region", k,
	                 "label", (int)r->label, "count", rs->n, "bbox", (json_int_t)r->x0,
	                 (json_int_t)r->y0, (json_int_t)(r->x1 - r->x0 + 1),
	                 (json_int_t)(r->y1 - r->y0 + 1), "centroid", centroid(r->sum_x, r->area),
	                 centroid(r->sum_y, r->area), "area_px", (json_int_t)r->area,
	                 "area_fraction", (double)r->area / ((double)rs->w * rs->h), "position", pos,
	                 "size_rank", r->size_rank);
}

static const char *ordinal(int n, char *buf, size_t len)
{
	const char *suf = (n % 100 >= 11 && n % 100 <= 13) ? "th"
	                  : n % 10 == 1                    ? "st"
	                  : n % 10 == 2                    ? "nd"
	                  : n % 10 == 3                    ? "rd"
	                                                   : "th";

	snprintf(buf, len, "%d%s", n, suf);
	return buf;
}

void regions_describe(const struct regions *rs, int k, char *out, size_t outlen)
{
	const struct region *r = &rs->r[k];
	char pos[32], ord[16];

	if (k < 1 || k > rs->n) {
		snprintf(out, outlen, "no such region");
		return;
	}
	regions_position(rs, k, pos, sizeof(pos));
	snprintf(out, outlen,
	         "region %d of %d; position in the image: %s; bounding box x=%u y=%u width=%u "
	         "height=%u (pixels, origin top-left); centroid (%.1f, %.1f); area %llu px (%.2f%% "
	         "of the image); size: %s of %d",
	         k, rs->n, pos, r->x0, r->y0, r->x1 - r->x0 + 1, r->y1 - r->y0 + 1,
	         centroid(r->sum_x, r->area), centroid(r->sum_y, r->area), (unsigned long long)r->area,
	         100.0 * (double)r->area / ((double)rs->w * rs->h),
	         rs->n == 1 ? "the only lesion" : r->size_rank == 1 ? "the largest" : ordinal(r->size_rank, ord, sizeof(ord)),
	         rs->n);
	if (rs->n > 1 && r->size_rank > 1) {
		size_t l = strlen(out);

		snprintf(out + l, outlen - l, " by area");
	}
}

json_t *regions_rle(const struct regions *rs, int k)
{
	json_t *counts, *o;
	uint64_t run = 0;
	bool in = false;

	if (k < 1 || k > rs->n)
		return NULL;
	counts = json_array();
	if (!counts)
		return NULL;
	for (uint32_t x = 0; x < rs->w; x++) {
		for (uint32_t y = 0; y < rs->h; y++) {
			bool px = rs->map[(size_t)y * rs->w + x] == k;

			if (px != in) {
				json_array_append_new(counts, json_integer((json_int_t)run));
				run = 0;
				in = px;
			}
			run++;
		}
	}
	json_array_append_new(counts, json_integer((json_int_t)run));
	o = json_pack("{s:[I,I], s:o}", "size", (json_int_t)rs->h, (json_int_t)rs->w, "counts", counts);
	return o;
}
