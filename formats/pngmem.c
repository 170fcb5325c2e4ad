/* PNG in memory (formats/pngmem.h). Label maps go through libpng's
 * low-level reader, which keeps palette indices and gray samples as they
 * are; images and overlays through its simplified API. */
#include "formats/pngmem.h"

#include "common/base64.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

int pngmem_is_png(const void *p, size_t n) { return p && n >= 8 && memcmp(p, sig, 8) == 0; }

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int size_check(uint32_t w, uint32_t h, char *err, size_t errlen)
{
	if (w == 0 || h == 0) {
		snprintf(err, errlen, "an empty image (%ux%u pixels)", w, h);
		return -EINVAL;
	}
	if (w > PNGMEM_MAX_SIDE || h > PNGMEM_MAX_SIDE) {
		snprintf(err, errlen, "%ux%u pixels: larger than %ux%u", w, h, PNGMEM_MAX_SIDE,
		         PNGMEM_MAX_SIDE);
		return -EINVAL;
	}
	return 0;
}

int pngmem_size(const void *p, size_t n, uint32_t *w, uint32_t *h, char *err, size_t errlen)
{
	const uint8_t *b = p;

	if (!pngmem_is_png(p, n)) {
		snprintf(err, errlen, "not a PNG");
		return -EINVAL;
	}
	if (n < 24 || memcmp(b + 12, "IHDR", 4) != 0) {
		snprintf(err, errlen, "a damaged PNG (no header chunk)");
		return -EINVAL;
	}
	*w = be32(b + 16);
	*h = be32(b + 20);
	return 0;
}

/* ---- label maps: the low-level reader ------------------------------------ */

struct reader {
	const uint8_t *p;
	size_t n, off;
	char msg[128];
};

static void reader_read(png_structp png, png_bytep out, size_t len)
{
	struct reader *r = png_get_io_ptr(png);

	if (len > r->n - r->off)
		png_error(png, "the file ends early");
	memcpy(out, r->p + r->off, len);
	r->off += len;
}

static void reader_error(png_structp png, png_const_charp msg)
{
	struct reader *r = png_get_error_ptr(png);

	snprintf(r->msg, sizeof(r->msg), "%s", msg);
	png_longjmp(png, 1);
}

static void reader_warning(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg;
}

/* What the decode keeps across the longjmp: only memory reached through
 * this struct, never a local of decode_labels. */
struct labels_job {
	png_structp png;
	png_infop info;
	uint8_t *pix;
	png_bytep *rows;
	uint16_t *labels;
	uint32_t w, h;
	char why[160];
};

static int decode_labels(struct labels_job *j, struct reader *r)
{
	int depth, type, ch;
	size_t rowbytes;

	if (setjmp(png_jmpbuf(j->png))) {
		snprintf(j->why, sizeof(j->why), "a damaged PNG: %s", r->msg);
		return -EINVAL;
	}
	png_set_read_fn(j->png, r, reader_read);
	png_read_info(j->png, j->info);
	j->w = png_get_image_width(j->png, j->info);
	j->h = png_get_image_height(j->png, j->info);
	if (size_check(j->w, j->h, j->why, sizeof(j->why)))
		return -EINVAL;
	depth = png_get_bit_depth(j->png, j->info);
	type = png_get_color_type(j->png, j->info);
	if (depth < 8)
		png_set_packing(j->png); /* one byte a sample, not scaled */
	if (type & PNG_COLOR_MASK_ALPHA)
		png_set_strip_alpha(j->png);
	png_set_interlace_handling(j->png);
	png_read_update_info(j->png, j->info);
	ch = png_get_channels(j->png, j->info);
	rowbytes = png_get_rowbytes(j->png, j->info);
	if (rowbytes != (size_t)j->w * (size_t)ch * (depth == 16 ? 2 : 1)) {
		snprintf(j->why, sizeof(j->why), "an unsupported PNG layout");
		return -EINVAL;
	}
	j->pix = malloc(rowbytes * j->h);
	j->rows = malloc(sizeof(*j->rows) * j->h);
	j->labels = malloc(sizeof(*j->labels) * (size_t)j->w * j->h);
	if (!j->pix || !j->rows || !j->labels) {
		snprintf(j->why, sizeof(j->why), "out of memory");
		return -ENOMEM;
	}
	for (uint32_t y = 0; y < j->h; y++)
		j->rows[y] = j->pix + rowbytes * y;
	png_read_image(j->png, j->rows);
	for (uint32_t y = 0; y < j->h; y++) {
		const uint8_t *row = j->rows[y];

		for (uint32_t x = 0; x < j->w; x++) {
			uint16_t v[3];

			for (int c = 0; c < ch && c < 3; c++) {
				size_t i = (size_t)x * ch + c;

				v[c] = depth == 16 ? (uint16_t)(row[2 * i] << 8 | row[2 * i + 1]) : row[i];
			}
			if (ch >= 3 && (v[0] != v[1] || v[1] != v[2])) {
				snprintf(j->why, sizeof(j->why),
				         "pixel (%u,%u) is a colour (%u,%u,%u): a mask must be gray, a "
				         "palette, or RGB with equal channels",
				         x, y, v[0], v[1], v[2]);
				return -EINVAL;
			}
			j->labels[(size_t)y * j->w + x] = v[0];
		}
	}
	return 0;
}

int pngmem_read_labels(const void *p, size_t n, uint16_t **labels_out, uint32_t *w, uint32_t *h,
                       char *err, size_t errlen)
{
	struct reader r = {p, n, 0, ""};
	struct labels_job j;
	int rc;

	memset(&j, 0, sizeof(j));
	*labels_out = NULL;
	/* The header chunk first, as the PNG spec wants and pngmem_size
	 * reads it: libpng alone lets an ancillary chunk come before it. */
	if (pngmem_size(p, n, w, h, err, errlen) != 0)
		return -EINVAL;
	j.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, reader_error, reader_warning);
	if (j.png)
		j.info = png_create_info_struct(j.png);
	if (!j.png || !j.info) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	rc = decode_labels(&j, &r);
	if (rc) {
		snprintf(err, errlen, "%s", j.why);
		goto out;
	}
	*labels_out = j.labels;
	j.labels = NULL;
	*w = j.w;
	*h = j.h;
out:
	png_destroy_read_struct(&j.png, &j.info, NULL);
	free(j.pix);
	free(j.rows);
	free(j.labels);
	return rc;
}

/* ---- images and overlays: the simplified API ----------------------------- */

int pngmem_read_rgb(const void *p, size_t n, uint8_t **rgb_out, uint32_t *w, uint32_t *h,
                    char *err, size_t errlen)
{
	png_image img;
	png_color black = {0, 0, 0};
	uint8_t *buf = NULL;
	int rc = -EINVAL;

	*rgb_out = NULL;
	memset(&img, 0, sizeof(img));
	img.version = PNG_IMAGE_VERSION;
	if (pngmem_size(p, n, w, h, err, errlen) != 0)
		return -EINVAL; /* the header chunk first, as in pngmem_read_labels */
	if (!png_image_begin_read_from_memory(&img, p, n)) {
		snprintf(err, errlen, "a damaged PNG: %s", img.message);
		goto out;
	}
	if (size_check(img.width, img.height, err, errlen))
		goto out;
	img.format = PNG_FORMAT_RGB;
	buf = malloc(PNG_IMAGE_SIZE(img));
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	if (!png_image_finish_read(&img, &black, buf, 0, NULL)) {
		snprintf(err, errlen, "a damaged PNG: %s", img.message);
		goto out;
	}
	*rgb_out = buf;
	buf = NULL;
	*w = img.width;
	*h = img.height;
	rc = 0;
out:
	png_image_free(&img);
	free(buf);
	return rc;
}

int pngmem_write_rgb(const uint8_t *rgb, uint32_t w, uint32_t h, uint8_t **png_out, size_t *len)
{
	png_image img;
	png_alloc_size_t size = 0;
	uint8_t *out = NULL;

	*png_out = NULL;
	memset(&img, 0, sizeof(img));
	img.version = PNG_IMAGE_VERSION;
	img.width = w;
	img.height = h;
	img.format = PNG_FORMAT_RGB;
	if (!rgb || !w || !h)
		return -EINVAL;
	if (!png_image_write_to_memory(&img, NULL, &size, 0, rgb, 0, NULL))
		return -EINVAL;
	out = malloc(size);
	if (!out)
		return -ENOMEM;
	if (!png_image_write_to_memory(&img, out, &size, 0, rgb, 0, NULL)) {
		free(out);
		return -EINVAL;
	}
	*png_out = out;
	*len = size;
	return 0;
}

/* ---- data: URLs ------------------------------------------------------------ */

#define PNG_URL "data:image/png;base64,"

int pngmem_from_data_url(const char *url, uint8_t **out, size_t *len, char *err, size_t errlen)
{
	const char *s;
	size_t n;
	uint8_t *b;
	long got;

	*out = NULL;
	if (!url || strncmp(url, PNG_URL, strlen(PNG_URL)) != 0) {
		snprintf(err, errlen, "not a data:image/png;base64 URL");
		return -EINVAL;
	}
	s = url + strlen(PNG_URL);
	n = strlen(s);
	if (n / 4 * 3 > PNGMEM_MAX_BYTES) {
		snprintf(err, errlen, "larger than %zu bytes", PNGMEM_MAX_BYTES);
		return -EINVAL;
	}
	b = malloc(n / 4 * 3 + 1);
	if (!b) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	got = base64_decode(s, n, b, NULL);
	if (got < 0) {
		free(b);
		snprintf(err, errlen, "bad base64 in the data: URL");
		return -EINVAL;
	}
	*out = b;
	*len = (size_t)got;
	return 0;
}

char *pngmem_data_url(const uint8_t *p, size_t n)
{
	size_t pre = strlen(PNG_URL);
	char *s = malloc(pre + base64_len(n) + 1);

	if (!s)
		return NULL;
	memcpy(s, PNG_URL, pre);
	base64_encode(p, n, s + pre);
	return s;
}
