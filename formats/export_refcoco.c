/* refcoco: the refer job's regions as one JSON document in the layout of
 * RefCOCO's refs beside COCO's instances (docs/refer.md):
 *   {"refs":[{"ref_id","ann_id","image_id","category_id","split","file_name",
 *             "sent_ids":[...],"sentences":[{"sent_id","raw","sent","tokens"}]}],
 *    "images":[{"id","file_name","width","height"}],
 *    "annotations":[{"id","image_id","category_id","segmentation":RLE,"area",
 *                    "bbox":[x,y,w,h],"iscrowd":0}],
 *    "categories":[{"id":1,"name":"lesion","supercategory":"lesion"}]}
 * Every region is an annotation; a region with at least one kept expression
 * is a ref whose sentences are its kept expressions. Ids count from 1 in
 * item order. The segmentation is COCO's uncompressed RLE
 * ({"size":[h,w],"counts":[...]}, column-major, formats/regions.h), which
 * pycocotools reads with frPyObjects. tokens: the raw text lower-cased and
 * split at every ASCII character that is not a letter or a digit (bytes of
 * other UTF-8 characters stay in their word), as RefCOCO's are. */
#include "formats/export.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "formats/pngmem.h"
#include "formats/regions.h"

static json_t *tokens_of(const char *s)
{
	json_t *a = json_array();
	size_t n = strlen(s), i = 0;

	while (a && i < n) {
		size_t j = i;
		char *w;

		while (j < n && ((unsigned char)s[j] >= 0x80 || isalnum((unsigned char)s[j])))
			j++;
		if (j > i) {
			w = strndup(s + i, j - i);
			if (!w) {
				json_decref(a);
				return NULL;
			}
			for (char *c = w; *c; c++)
				*c = (char)tolower((unsigned char)*c);
			json_array_append_new(a, json_string(w));
			free(w);
			i = j;
		} else {
			i++;
		}
	}
	return a;
}

static json_t *joined(json_t *tokens)
{
	size_t i, len = 0;
	json_t *t, *r;
	char *s;

	json_array_foreach(tokens, i, t)
		len += json_string_length(t) + 1;
	s = calloc(1, len + 1);
	if (!s)
		return NULL;
	json_array_foreach(tokens, i, t) {
		if (i)
			strcat(s, " ");
		strcat(s, json_string_value(t));
	}
	r = json_string(s);
	free(s);
	return r;
}

/* The RLE of the item's region, from its mask. */
static json_t *region_rle(json_t *mask)
{
	uint8_t *b = NULL;
	uint16_t *lab = NULL;
	size_t n = 0;
	uint32_t w, h;
	char err[160];
	struct regions rs;
	json_t *rle = NULL;
	int k = (int)json_integer_value(json_object_get(mask, "region"));

	memset(&rs, 0, sizeof(rs));
	if (pngmem_from_data_url(json_string_value(json_object_get(mask, "png")), &b, &n, err, sizeof(err)) == 0 &&
	    pngmem_read_labels(b, n, &lab, &w, &h, err, sizeof(err)) == 0 &&
	    regions_find(lab, w, h, &rs, err, sizeof(err)) == 0)
		rle = regions_rle(&rs, k);
	regions_free(&rs);
	free(b);
	free(lab);
	return rle;
}

static const char *base_name(const char *s)
{
	const char *slash = s ? strrchr(s, '/') : NULL;

	return slash ? slash + 1 : s;
}

static int refcoco_document(json_t *regions, char **out, size_t *len)
{
	json_t *doc, *refs, *images, *anns, *img_ids = json_object(), *r;
	json_int_t ann_id = 0, ref_id = 0, sent_id = 0;
	size_t i;
	int rc = 0;

	*out = NULL;
	doc = json_pack("{s:[], s:[], s:[], s:[{s:i, s:s, s:s}]}", "refs", "images", "annotations",
			"categories", "id", 1, "name", "lesion", "supercategory", "lesion");
	if (!doc || !img_ids) {
		rc = -ENOMEM;
		goto out;
	}
	refs = json_object_get(doc, "refs");
	images = json_object_get(doc, "images");
	anns = json_object_get(doc, "annotations");
	json_array_foreach(regions, i, r) {
		json_t *item = json_object_get(r, "item"), *mask = json_object_get(item, "mask");
		json_t *attrs = json_object_get(mask, "attributes"), *e, *sents, *sids, *rle;
		const char *image_id = json_string_value(json_object_get(mask, "image_id"));
		const char *file = base_name(json_string_value(json_object_get(mask, "file")));
		json_int_t img;
		size_t j;

		if (!image_id || !json_is_object(attrs)) {
			rc = -EINVAL;
			goto out;
		}
		if (!json_object_get(img_ids, image_id)) {
			img = (json_int_t)json_array_size(images) + 1;
			json_object_set_new(img_ids, image_id, json_integer(img));
			json_array_append_new(images,
					      json_pack("{s:I, s:s, s:O, s:O}", "id", img, "file_name",
							file ? file : image_id, "width",
							json_object_get(mask, "width"), "height",
							json_object_get(mask, "height")));
		}
		img = json_integer_value(json_object_get(img_ids, image_id));
		rle = region_rle(mask);
		if (!rle) {
			rc = -EINVAL;
			goto out;
		}
		ann_id++;
		json_array_append_new(anns, json_pack("{s:I, s:I, s:i, s:o, s:O, s:O, s:i}", "id", ann_id,
						      "image_id", img, "category_id", 1, "segmentation", rle,
						      "area", json_object_get(attrs, "area_px"), "bbox",
						      json_object_get(attrs, "bbox"), "iscrowd", 0));
		sents = json_array();
		sids = json_array();
		json_array_foreach(json_object_get(r, "expressions"), j, e) {
			const char *raw = json_string_value(json_object_get(e, "text"));
			json_t *toks;

			if (!raw || !json_is_true(json_object_get(e, "kept")))
				continue;
			toks = tokens_of(raw);
			if (!toks) {
				rc = -ENOMEM;
				json_decref(sents);
				json_decref(sids);
				goto out;
			}
			sent_id++;
			json_array_append_new(sids, json_integer(sent_id));
			json_array_append_new(sents, json_pack("{s:I, s:s, s:o, s:o}", "sent_id", sent_id, "raw",
							       raw, "sent", joined(toks), "tokens", toks));
		}
		if (json_array_size(sents) == 0) {
			json_decref(sents);
			json_decref(sids);
			continue;
		}
		ref_id++;
		json_array_append_new(refs, json_pack("{s:I, s:I, s:I, s:i, s:O, s:s, s:o, s:o}", "ref_id",
						      ref_id, "ann_id", ann_id, "image_id", img,
						      "category_id", 1, "split", json_object_get(r, "split"),
						      "file_name", file ? file : image_id, "sent_ids", sids,
						      "sentences", sents));
	}
	*out = json_dumps(doc, JSON_COMPACT);
	if (!*out) {
		rc = -ENOMEM;
		goto out;
	}
	*len = strlen(*out);
	if (*len > EXPORT_DOCUMENT_MAX) {
		free(*out);
		*out = NULL;
		rc = -E2BIG;
	}
out:
	json_decref(doc);
	json_decref(img_ids);
	return rc;
}

const struct export_format export_format_refcoco = {
	.name = "refcoco",
	.description = "refer jobs: one JSON document, RefCOCO refs (kept expressions) with COCO "
		       "images, annotations (RLE), categories",
	.document = refcoco_document,
	.content_type = "application/json",
};
