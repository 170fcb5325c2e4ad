#ifndef MT_CLI_IMAGES_H
#define MT_CLI_IMAGES_H
/* Inlines the images of a native JSONL dataset at import (SPEC 4): an
 * "images" entry that is a file path is read relative to the dataset file
 * and replaced by a data: URL, so the daemon never opens a path. Lines are
 * rewritten as they stream; an image is base64-encoded in chunks, never held
 * whole in memory. Every other line goes out byte for byte, so the daemon's
 * line numbers match the file's.
 *
 * What may be sent (docs/formats.md): a path must be relative, resolve
 * (symlinks followed) to a regular file inside the dataset file's folder,
 * have an image extension, hold at most max_file bytes and be a PNG, JPEG,
 * GIF, WebP or BMP by its first bytes, which also give the data: URL's type.
 * A data: URL in the dataset must be base64 of such an image, of the type it
 * declares. Anything else refuses the item, naming line, item id and path. */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define IMAGES_MAX_FILE (16u * 1024 * 1024) /* per image file, before base64 */
#define IMAGES_MAGIC_MAX 32                  /* first bytes read to tell the type */
#define IMAGES_MAX_PER_LINE 32
#define IMAGES_MAX_LINE (64u * 1024 * 1024) /* one dataset line */

/* Receives output bytes; returns 0 or a negative errno. */
typedef int (*images_write_fn)(void *ctx, const void *p, size_t n);

struct images_stats {
	uint64_t bytes;     /* bytes produced (the request's Content-Length) */
	uint64_t lines;
	uint64_t images;    /* paths replaced by data: URLs */
	uint64_t rejected;  /* items refused (skip_invalid) */
};

/* Returns the MIME type for an image path by its extension (png, jpg, jpeg,
 * gif, webp, bmp; any case), or NULL when it is not a supported image. */
const char *images_mime(const char *path);

/* Returns the MIME type of an image by its first n bytes of p (PNG, JPEG,
 * GIF, WebP, BMP), or NULL when they are none of these. Static strings; the
 * same pointer for the same type. */
const char *images_magic_mime(const unsigned char *p, size_t n);

/* Builds a whole "data:MIME;base64,..." URL for the file at path (checked
 * as an image path relative to its own folder), in memory. Returns a
 * malloc'ed string (caller frees) or NULL with err set (unreadable, not an
 * image, over max_size bytes). For small files/tests. */
char *images_data_url(const char *path, uint64_t max_size, char *err, size_t errlen);

/* Reads a native JSONL dataset from in (borrowed) and produces the rewritten
 * body through write; with write NULL only counts (a dry run that still
 * checks every image by the rules above). basedir is the directory of the
 * dataset file (image paths are relative to it). Returns 0 and fills st, or
 * a negative errno with err naming the line, the item and the path
 * ("line 3: item \"q-1\": image \"x.png\": No such file or directory"), or
 * write's error. With skip_invalid, an item whose images are refused goes
 * out as a blank line instead (nothing of it is sent) and, when rejected
 * (borrowed) is an array, {"line":N,"reason":"..."} is appended to it, as
 * the daemon reports the lines it rejects. */
int images_stream(FILE *in, const char *basedir, uint64_t max_file, bool skip_invalid, json_t *rejected,
		  images_write_fn write, void *ctx, struct images_stats *st, char *err, size_t errlen);

/* Rewrites a MedVLM-R1 / OmniMedVQA dataset (a JSON array of records whose
 * "image" or "images" is a path or an array of paths) from in into out for
 * upload: every path is checked by the rules above, relative to basedir,
 * and replaced by its data: URL; anything else is copied (the daemon judges
 * it). The document is read whole (at most max_doc bytes); records are
 * written and freed one by one, so at most one record's images are in
 * memory. Returns 0 with st (images, records in lines, bytes written), or a
 * negative errno with err naming the record, the item and the path
 * ("record 3: image \"x.png\": No such file or directory"); nothing
 * should be sent then. */
int images_medvlm(FILE *in, const char *basedir, uint64_t max_file, uint64_t max_doc, FILE *out,
		  struct images_stats *st, char *err, size_t errlen);

#endif
