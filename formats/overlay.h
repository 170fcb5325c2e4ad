#ifndef MT_OVERLAY_H
#define MT_OVERLAY_H
/* Drawing the lesions on their image for a vision model, by our own code:
 * outlines (the region's boundary pixels, thickened by 1 + min(W,H)/256
 * pixels) and, for the screening view, each region's number in a box at
 * its bounding box's top-left corner (above it when there is room). Pure;
 * any thread. */

#include <stddef.h>
#include <stdint.h>

#include "formats/regions.h"

/* Draws on rgb (w*h 8-bit RGB, borrowed, changed in place; w and h must
 * be the mask's). only = k (1..n): region k alone, outlined in red;
 * only = 0: every region, each in its own colour with its number.
 * Returns 0, or -EINVAL for a size that is not the mask's or a bad only. */
int overlay_draw(uint8_t *rgb, uint32_t w, uint32_t h, const struct regions *rs, int only);

/* The colour region k is drawn in (only = 0), as three bytes. */
void overlay_colour(int k, uint8_t out[3]);

/* The whole path for a refer request: decodes the image (a PNG data: URL,
 * borrowed), draws as overlay_draw does and returns a new PNG data: URL
 * (caller frees) in *url_out. 0, or -EINVAL / -ENOMEM with err set. */
int overlay_data_url(const char *image_url, const struct regions *rs, int only, char **url_out,
                     char *err, size_t errlen);

#endif
