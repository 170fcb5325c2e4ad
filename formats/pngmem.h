#ifndef MT_PNGMEM_H
#define MT_PNGMEM_H
/* PNG in memory with libpng: the label maps of mask items, the images the
 * refer steps draw on, and the overlays they send. Pure: bytes in, pixels
 * out (and back); no file is opened. Any thread; nothing shared.
 *
 * Every decoder refuses images wider or taller than PNGMEM_MAX_SIDE, and
 * says why in err ("not a PNG", "4097x10 pixels: larger than ..."). */

#include <stddef.h>
#include <stdint.h>

#define PNGMEM_MAX_SIDE 4096u
#define PNGMEM_MAX_BYTES ((size_t)16 << 20) /* a PNG file's bytes */

/* True when p (n bytes) starts with the PNG signature. */
int pngmem_is_png(const void *p, size_t n);

/* Width and height from the IHDR chunk of a PNG, without decoding it.
 * 0, or -EINVAL with err ("not a PNG", "truncated header"). */
int pngmem_size(const void *p, size_t n, uint32_t *w, uint32_t *h, char *err, size_t errlen);

/* Decodes a label map: gray (1 to 16 bits: the sample), palette (the
 * index) or RGB(A) whose channels are equal (the value); alpha ignored.
 * *labels_out gets w*h values row by row (malloc'ed, caller frees).
 * 0, -EINVAL (not a PNG, damaged, too large, a colour RGB pixel) or
 * -ENOMEM, with err set. */
int pngmem_read_labels(const void *p, size_t n, uint16_t **labels_out, uint32_t *w, uint32_t *h,
                       char *err, size_t errlen);

/* Decodes any PNG to 8-bit RGB (3 bytes a pixel, row by row; alpha
 * composited on black): *rgb_out malloc'ed, caller frees. Errors as above. */
int pngmem_read_rgb(const void *p, size_t n, uint8_t **rgb_out, uint32_t *w, uint32_t *h,
                    char *err, size_t errlen);

/* Encodes w*h 8-bit RGB pixels as a PNG: *png_out malloc'ed (caller
 * frees), *len its size. The bytes are the same for the same pixels (the
 * refer requests are cached by their hash). 0, -EINVAL or -ENOMEM. */
int pngmem_write_rgb(const uint8_t *rgb, uint32_t w, uint32_t h, uint8_t **png_out, size_t *len);

/* Decodes a "data:image/png;base64,..." URL into its bytes (malloc'ed,
 * caller frees) of at most PNGMEM_MAX_BYTES. 0, -EINVAL (not such a URL,
 * bad base64) or -ENOMEM with err set. */
int pngmem_from_data_url(const char *url, uint8_t **out, size_t *len, char *err, size_t errlen);

/* The data: URL of n PNG bytes, a new string (caller frees), or NULL. */
char *pngmem_data_url(const uint8_t *p, size_t n);

#endif
