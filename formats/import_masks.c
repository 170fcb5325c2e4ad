/* masks: image + mask pairs (docs/refer.md), one JSON object a line as the
 * CLI sends them: {"id","file","image":"data:image/png;base64,...",
 * "mask":"data:image/png;base64,..."}. The lesions of the mask
 * (formats/regions.h) become one item each, since the refer job works
 * region by region:
 *   {"id":"ID#K","question":"Lesion K of N in image ID","answer":"K",
 *    "images":[IMAGE],"mask":{"png":MASK,"region":K,"image_id":ID,
 *    "file":FILE,"width":W,"height":H,"attributes":{...}}}
 * The answer is the region's number: what the refer screening must pick. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/import_impl.h"
#include "formats/pngmem.h"
#include "formats/regions.h"

/* Decodes and checks a mask against the image (both PNG data: URLs) and
 * finds its lesions. 0, or -1 when reported (naming what). */
static int mask_read(struct import_parser *p, long line, const char *what, const char *image,
                     const char *mask, struct regions *rs)
{
	uint8_t *mb = NULL, *ib = NULL;
	uint16_t *lab = NULL;
	size_t mn = 0, in = 0;
	uint32_t w = 0, h = 0, iw = 0, ih = 0;
	char err[200];
	int rc = -1;

	if (pngmem_from_data_url(image, &ib, &in, err, sizeof(err)) ||
	    pngmem_size(ib, in, &iw, &ih, err, sizeof(err))) {
		import_report(p, line, "%s: the image: %s", what, err);
		goto out;
	}
	if (pngmem_from_data_url(mask, &mb, &mn, err, sizeof(err)) ||
	    pngmem_read_labels(mb, mn, &lab, &w, &h, err, sizeof(err))) {
		import_report(p, line, "%s: the mask: %s", what, err);
		goto out;
	}
	if (w != iw || h != ih) {
		import_report(p, line, "%s: the mask is %ux%u pixels but the image is %ux%u: sizes must match",
		              what, w, h, iw, ih);
		goto out;
	}
	if (regions_find(lab, w, h, rs, err, sizeof(err))) {
		import_report(p, line, "%s: %s", what, err);
		goto out;
	}
	rc = 0;
out:
	free(mb);
	free(ib);
	free(lab);
	return rc;
}

int import_mask_object(struct import_parser *p, long line, json_t *mask, json_t *images, json_t *cand)
{
	const char *png = json_string_value(json_object_get(mask, "png"));
	json_t *reg = json_object_get(mask, "region"), *o;
	const char *img = json_string_value(json_array_get(images, 0));
	struct regions rs;
	json_int_t k;

	if (!json_is_object(mask) || !png || !json_is_integer(reg)) {
		import_report(p, line, "\"mask\" must be an object with \"png\" (a data:image/png URL) and "
		              "\"region\" (a lesion number from 1)");
		return -1;
	}
	if (!img) {
		import_report(p, line, "an item with a \"mask\" needs its image in \"images\"");
		return -1;
	}
	if (mask_read(p, line, "\"mask\"", img, png, &rs))
		return -1;
	k = json_integer_value(reg);
	if (k < 1 || k > rs.n) {
		import_report(p, line, "\"mask\": region %lld: the mask has %d lesion%s", (long long)k, rs.n,
		              rs.n == 1 ? "" : "s");
		regions_free(&rs);
		return -1;
	}
	o = json_deep_copy(mask);
	json_object_set_new(o, "width", json_integer(rs.w));
	json_object_set_new(o, "height", json_integer(rs.h));
	json_object_set_new(o, "attributes", regions_attributes(&rs, (int)k));
	json_object_set_new(cand, "mask", o);
	regions_free(&rs);
	return 0;
}

static void masks_parse(struct import_parser *p, const char *rec_key, json_t *obj, long line)
{
	json_t *id = NULL, *image = json_object_get(obj, "image"), *mask = json_object_get(obj, "mask");
	const char *file = json_string_value(json_object_get(obj, "file"));
	struct regions rs;
	char what[160], ex[IMPORT_EXCERPT_BUF];
	const char *ids;

	(void)rec_key;
	memset(&rs, 0, sizeof(rs));
	if (import_get_str(p, line, obj, "id", &id) < 0)
		return;
	if (!json_is_string(image) || !json_is_string(mask)) {
		import_report(p, line, "\"image\" and \"mask\" must be data:image/png URLs (the CLI's "
		              "import --format masks reads the files)");
		return;
	}
	ids = id && !import_str_blank(id) ? json_string_value(id) : file;
	if (!ids || !ids[0]) {
		import_report(p, line, "missing \"id\"");
		return;
	}
	snprintf(what, sizeof(what), "%s", file ? import_excerpt(file, ex, sizeof(ex)) : import_excerpt(ids, ex, sizeof(ex)));
	if (mask_read(p, line, what, json_string_value(image), json_string_value(mask), &rs))
		return;
	for (int k = 1; k <= rs.n; k++) {
		json_t *cand = json_object(), *m;

		m = json_pack("{s:O, s:i, s:s, s:s?, s:i, s:i, s:o}", "png", mask, "region", k, "image_id",
		              ids, "file", file, "width", (int)rs.w, "height", (int)rs.h, "attributes",
		              regions_attributes(&rs, k));
		if (!cand || !m) {
			json_decref(cand);
			json_decref(m);
			import_oom(p);
			break;
		}
		json_object_set_new(cand, "id", json_sprintf("%s#%d", ids, k));
		json_object_set_new(cand, "question",
		                    json_sprintf("Lesion %d of %d in image %s", k, rs.n, ids));
		json_object_set_new(cand, "answer", json_sprintf("%d", k));
		json_object_set_new(cand, "images", json_pack("[O]", image));
		json_object_set_new(cand, "mask", m);
		import_emit(p, cand, line);
	}
	regions_free(&rs);
}

const struct import_format import_format_masks = {
	.name = "masks",
	.description = "image + mask pairs (PNG label maps or binary masks) for the refer job: a "
	               "folder with img/ and mask/, or JSON Lines naming both (read by the CLI)",
	.kind = IMPORT_JSON_LINES,
	.question_key = "image",
	.answer_key = "mask",
	.parse_json = masks_parse,
};
