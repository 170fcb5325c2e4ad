#ifndef MT_REGIONS_H
#define MT_REGIONS_H
/* The lesions of a mask and what can be said of each (the refer job's
 * attributes, the exports' boxes and RLE). Pure; any thread.
 *
 * Which pixels make a lesion:
 *   - a label map (two or more distinct non-zero values): each value is
 *     one lesion, wherever its pixels are (two touching lesions with
 *     different values stay two); lesions in increasing value order;
 *   - a binary mask (one non-zero value, whatever it is: 1, 255, ...): its
 *     connected components, with 8-connectivity (pixels that touch by an
 *     edge or a corner are one lesion), in the raster order of each
 *     component's first pixel (top row first, then left to right).
 * Region numbers are 1-based in that order.
 *
 * Attributes of region k (regions_attributes), coordinates in pixels with
 * (0,0) the top-left corner of the image, x to the right, y down:
 *   bbox [x, y, width, height] (COCO order), centroid [cx, cy] (mean of the
 *   pixel centres, so a lone pixel at (3,4) has centroid (3.5, 4.5)),
 *   area_px, area_fraction (area_px / (width*height)), position in words,
 *   size_rank (1 = largest; equal areas rank by region number), count (the
 *   lesions of the image).
 * Position: the centroid's column and row in thirds of the image: "left"
 * when cx < W/3, "right" when cx > 2W/3; "upper" when cy < H/3, "lower"
 * when cy > 2H/3; joined as "upper left", "upper", "left", ... and
 * "central" when it is in the middle third both ways. Left and right are
 * the image's, not the patient's (radiological convention is not assumed). */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REGIONS_MAX 255 /* lesions in one mask */

struct region {
	uint16_t label;          /* the mask value */
	uint64_t area;           /* pixels */
	uint32_t x0, y0, x1, y1; /* bounding box, inclusive */
	uint64_t sum_x, sum_y;   /* of the pixels' columns and rows */
	int size_rank;           /* 1 = largest */
};

struct regions {
	uint32_t w, h;
	int n;
	bool binary;             /* components of one value */
	struct region r[REGIONS_MAX + 1]; /* r[1..n]; r[0] unused */
	uint8_t *map;            /* w*h region numbers, 0 = background (owned) */
};

/* Finds the lesions of a w*h label map (borrowed) into rs (filled whole;
 * release with regions_free). 0; -EINVAL with err ("the mask is empty:
 * every pixel is 0", "more than 255 lesions"); -ENOMEM. */
int regions_find(const uint16_t *labels, uint32_t w, uint32_t h, struct regions *rs, char *err,
                 size_t errlen);
/* Frees rs->map; rs may be zeroed or already freed. */
void regions_free(struct regions *rs);

/* The position words of region k (1..n) into out ("upper left", "central"). */
void regions_position(const struct regions *rs, int k, char *out, size_t outlen);
/* Region k's attributes as a new object: {"region","label","count","bbox",
 * "centroid","area_px","area_fraction","position","size_rank"}; NULL for a
 * bad k or on ENOMEM. */
json_t *regions_attributes(const struct regions *rs, int k);
/* The attributes as one line of text for a prompt, into out. */
void regions_describe(const struct regions *rs, int k, char *out, size_t outlen);
/* COCO's uncompressed RLE of region k: {"size":[h,w],"counts":[...]},
 * runs in column-major order starting with a (possibly empty) background
 * run. New reference, NULL on ENOMEM or a bad k. */
json_t *regions_rle(const struct regions *rs, int k);

#endif
