/* native: medthink's own item layout (SPEC 4), one JSON object a line.
 * Keys of no normalized field are kept in "meta". */

#include <string.h>

#include "formats/import_impl.h"

static void native_parse(struct import_parser *p, const char *rec_key, json_t *obj, long line)
{
	json_t *cand = json_object(), *extra = json_object(), *v;
	const char *key;

	(void)rec_key; /* not a keyed document */
	if (!cand || !extra) {
		import_oom(p);
		goto bad;
	}
	json_object_foreach(obj, key, v) {
		if (!strcmp(key, "id")) {
			if (import_copy_id(p, line, obj, cand) < 0)
				goto bad;
		} else if (!strcmp(key, "question") || !strcmp(key, "answer")) {
			if (!json_is_string(v)) {
				import_report(p, line, "\"%s\" must be a string, found %s", key, import_json_kind(v));
				goto bad;
			}
			json_object_set(cand, key, v);
		} else if (!strcmp(key, "explanation") || !strcmp(key, "topic") ||
		           !strcmp(key, "context")) {
			if (import_copy_str(p, line, obj, key, cand, key) < 0)
				goto bad;
		} else if (!strcmp(key, "options")) {
			if (json_is_object(v)) {
				json_object_set(cand, "options", v);
			} else if (json_is_array(v)) {
				/* A list of option texts, keyed A, B, C... */
				json_t *o = json_object(), *e;
				size_t i;

				if (json_array_size(v) > 26) {
					import_report(p, line, "\"options\" has more than 26 entries");
					json_decref(o);
					goto bad;
				}
				json_array_foreach(v, i, e) {
					char k[2] = {(char)('A' + i), '\0'};

					json_object_set(o, k, e);
				}
				json_object_set_new(cand, "options", o);
			} else if (!json_is_null(v)) {
				import_report(p, line, "\"options\" must be an object or an array, found %s",
				       import_json_kind(v));
				goto bad;
			}
		} else if (!strcmp(key, "images")) {
			if (import_copy_images(p, line, v, cand) < 0)
				goto bad;
		} else if (!strcmp(key, "mask")) {
			if (!json_is_null(v) &&
			    import_mask_object(p, line, v, json_object_get(obj, "images"), cand) < 0)
				goto bad;
		} else if (!strcmp(key, "meta")) {
			if (!json_is_object(v) && !json_is_null(v)) {
				import_report(p, line, "\"meta\" must be an object, found %s", import_json_kind(v));
				goto bad;
			}
		} else {
			json_object_set(extra, key, v);
		}
	}
	/* Keys of no normalized field are kept in meta; meta's own win. */
	v = json_object_get(obj, "meta");
	if (json_is_object(v))
		json_object_update(extra, v);
	if (json_object_size(extra))
		json_object_set(cand, "meta", extra);
	json_decref(extra);
	import_emit(p, cand, line);
	return;
bad:
	json_decref(extra);
	json_decref(cand);
}

const struct import_format import_format_native = {
	.name = "native",
	.description = "medthink's own JSON Lines: question, answer, options, explanation, "
	               "topic, images, meta",
	.kind = IMPORT_JSON_LINES,
	.question_key = "question",
	.answer_key = "answer",
	.parse_json = native_parse,
	.sniff = import_sniff_records,
};
