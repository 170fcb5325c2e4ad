/* lvit: the refer job's regions in LViT's text layout (docs/refer.md).
 * LViT reads a table with the columns Image (a file name in img/ and
 * labelcol/) and Description (the text); this is that table as CSV (RFC
 * 4180, header line, UTF-8), which pandas reads as LViT's Excel sheet
 * (save it as Train_text.xlsx / Val_text.xlsx / Test_text.xlsx). One row
 * per region with a kept expression: Image is "<image id>_<region>.png" (the
 * name to give that region's image copy and its one-region mask), and
 * Description its first kept expression. LViT ignores other columns; Split
 * (train|val), Source (the image's file) and Region (its number) say where
 * each row comes from. */
#include "formats/export.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

static int csv_field(struct buf *b, const char *s, bool last)
{
	int rc = 0;

	if (strpbrk(s, ",\"\r\n")) {
		rc = buf_puts(b, "\"");
		for (const char *p = s; !rc && *p; p++)
			rc = *p == '"' ? buf_puts(b, "\"\"") : buf_append(b, p, 1);
		if (!rc)
			rc = buf_puts(b, "\"");
	} else {
		rc = buf_puts(b, s);
	}
	if (!rc)
		rc = buf_puts(b, last ? "\r\n" : ",");
	return rc;
}

static int lvit_document(json_t *regions, char **out, size_t *len)
{
	struct buf b;
	json_t *r;
	size_t i;
	int rc;

	*out = NULL;
	buf_init(&b, EXPORT_DOCUMENT_MAX);
	rc = buf_puts(&b, "Image,Description,Split,Source,Region\r\n");
	json_array_foreach(regions, i, r) {
		json_t *mask = json_object_get(json_object_get(r, "item"), "mask"), *e;
		const char *id = json_string_value(json_object_get(mask, "image_id"));
		const char *file = json_string_value(json_object_get(mask, "file"));
		const char *text = NULL;
		char name[400], region[24];
		size_t j;

		if (rc)
			break;
		if (!id) {
			rc = -EINVAL;
			break;
		}
		json_array_foreach(json_object_get(r, "expressions"), j, e) {
			if (!text && json_is_true(json_object_get(e, "kept")))
				text = json_string_value(json_object_get(e, "text"));
		}
		if (!text)
			continue;
		snprintf(region, sizeof(region), "%lld", (long long)json_integer_value(json_object_get(mask, "region")));
		snprintf(name, sizeof(name), "%s_%s.png", id, region);
		rc = csv_field(&b, name, false);
		if (!rc)
			rc = csv_field(&b, text, false);
		if (!rc)
			rc = csv_field(&b, json_string_value(json_object_get(r, "split")) ? json_string_value(json_object_get(r, "split")) : "train", false);
		if (!rc)
			rc = csv_field(&b, file ? file : "", false);
		if (!rc)
			rc = csv_field(&b, region, true);
	}
	if (rc) {
		buf_free(&b);
		return rc == -ENOBUFS ? -E2BIG : rc;
	}
	*len = b.len;
	*out = buf_take(&b);
	return *out ? 0 : -ENOMEM;
}

const struct export_format export_format_lvit = {
	.name = "lvit",
	.description = "refer jobs: LViT's text table (Image, Description) as CSV, one row per "
		       "region with a kept expression",
	.document = lvit_document,
	.content_type = "text/csv; charset=utf-8",
};
