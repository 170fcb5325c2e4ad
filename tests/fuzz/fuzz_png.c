/* layers: formats common */
/* Fuzz target: PNG bytes from outside (a mask item's label map, an image a
 * refer step draws on; formats/pngmem.h) and the lesions found in a label
 * map (formats/regions.h). The input is a PNG file, or anything else.
 * Checks: decoders agree with pngmem_size, refuse what is too large, say why
 * when they fail; a decoded label map's regions cover exactly its non-zero
 * pixels with consistent boxes and areas; RGB pixels written and read again
 * are the same pixels. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "formats/pngmem.h"
#include "formats/regions.h"
#include "tests/fuzz/fuzz.h"

static void check_regions(const uint16_t *labels, uint32_t w, uint32_t h)
{
	struct regions rs;
	char err[160];
	uint64_t nonzero = 0, sum = 0;
	int rc;

	for (uint64_t i = 0; i < (uint64_t)w * h; i++)
		nonzero += labels[i] != 0;
	memset(err, 'x', sizeof(err));
	rc = regions_find(labels, w, h, &rs, err, sizeof(err));
	if (rc != 0) {
		fuzz_assert(rc == -EINVAL || rc == -ENOMEM);
		fuzz_assert(memchr(err, '\0', sizeof(err)) && err[0] != '\0');
		if (nonzero == 0)
			fuzz_assert(rc == -EINVAL);
		regions_free(&rs);
		return;
	}
	fuzz_assert(nonzero > 0 && rs.n >= 1 && rs.n <= REGIONS_MAX);
	fuzz_assert(rs.w == w && rs.h == h);
	for (int k = 1; k <= rs.n; k++) {
		const struct region *r = &rs.r[k];
		char pos[64];
		json_t *a, *rle;

		fuzz_assert(r->area > 0 && r->x0 <= r->x1 && r->y0 <= r->y1 && r->x1 < w && r->y1 < h);
		fuzz_assert(r->area <= (uint64_t)(r->x1 - r->x0 + 1) * (r->y1 - r->y0 + 1));
		fuzz_assert(r->size_rank >= 1 && r->size_rank <= rs.n);
		sum += r->area;
		regions_position(&rs, k, pos, sizeof(pos));
		fuzz_assert(pos[0] != '\0' && memchr(pos, '\0', sizeof(pos)));
		a = regions_attributes(&rs, k);
		rle = regions_rle(&rs, k);
		fuzz_assert(a != NULL && json_is_object(a) && rle != NULL);
		json_decref(a);
		json_decref(rle);
	}
	fuzz_assert(sum == nonzero);
	for (uint64_t i = 0; i < (uint64_t)w * h; i++)
		fuzz_assert((rs.map[i] != 0) == (labels[i] != 0));
	regions_free(&rs);
}

static void check_rgb_roundtrip(const uint8_t *rgb, uint32_t w, uint32_t h)
{
	uint8_t *png = NULL, *back = NULL;
	uint32_t w2 = 0, h2 = 0;
	size_t len = 0;
	char err[160];

	if ((uint64_t)w * h > 65536)
		return; /* bounded work per input */
	if (pngmem_write_rgb(rgb, w, h, &png, &len) != 0)
		return;
	fuzz_assert(pngmem_is_png(png, len));
	fuzz_assert(pngmem_read_rgb(png, len, &back, &w2, &h2, err, sizeof(err)) == 0);
	fuzz_assert(w2 == w && h2 == h && memcmp(back, rgb, (size_t)w * h * 3) == 0);
	free(png);
	free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t w = 0, h = 0, w1 = 0, h1 = 0;
	uint16_t *labels = NULL;
	uint8_t *rgb = NULL;
	char err[160];
	int rc, sized;

	memset(err, 'x', sizeof(err));
	sized = pngmem_size(data, size, &w, &h, err, sizeof(err));
	if (sized != 0)
		fuzz_assert(sized == -EINVAL && memchr(err, '\0', sizeof(err)) && err[0] != '\0');

	memset(err, 'x', sizeof(err));
	rc = pngmem_read_labels(data, size, &labels, &w1, &h1, err, sizeof(err));
	if (rc == 0) {
		fuzz_assert(sized == 0 && w1 == w && h1 == h);
		fuzz_assert(w1 >= 1 && h1 >= 1 && w1 <= PNGMEM_MAX_SIDE && h1 <= PNGMEM_MAX_SIDE);
		if ((uint64_t)w1 * h1 <= 262144)
			check_regions(labels, w1, h1);
		free(labels);
	} else {
		fuzz_assert((rc == -EINVAL || rc == -ENOMEM) && memchr(err, '\0', sizeof(err)) && err[0] != '\0');
	}

	memset(err, 'x', sizeof(err));
	rc = pngmem_read_rgb(data, size, &rgb, &w1, &h1, err, sizeof(err));
	if (rc == 0) {
		fuzz_assert(sized == 0 && w1 == w && h1 == h);
		check_rgb_roundtrip(rgb, w1, h1);
		free(rgb);
	} else {
		fuzz_assert((rc == -EINVAL || rc == -ENOMEM) && memchr(err, '\0', sizeof(err)) && err[0] != '\0');
	}
	return 0;
}
