/* medqa: the MedQA (USMLE) JSON Lines: question, options {A..}, answer_idx
 * (or, without it, the answer text naming exactly one option), meta_info. */

#include <string.h>

#include "formats/import_impl.h"

static void medqa_parse(struct import_parser *p, const char *rec_key, json_t *obj, long line)
{
	json_t *cand = json_object(), *v, *opts, *idx, *text;

	(void)rec_key; /* not a keyed document */
	if (!cand) {
		import_oom(p);
		return;
	}
	if (import_copy_id(p, line, obj, cand) < 0 || import_get_str(p, line, obj, "question", &v) < 0)
		goto bad;
	if (v)
		json_object_set(cand, "question", v);
	opts = json_object_get(obj, "options");
	if (!json_is_object(opts)) {
		if (opts)
			import_report(p, line, "\"options\" must be an object, found %s", import_json_kind(opts));
		else
			import_report(p, line, "missing \"options\"");
		goto bad;
	}
	json_object_set(cand, "options", opts);
	if (import_get_str(p, line, obj, "answer_idx", &idx) < 0 || import_get_str(p, line, obj, "answer", &text) < 0)
		goto bad;
	if (!idx && text) {
		/* No answer_idx: the answer text names the option (exactly one). */
		const char *k;
		json_t *o;
		int n = 0;

		json_object_foreach(opts, k, o) {
			if (json_equal(o, text)) {
				n++;
				json_object_set_new(cand, "answer", json_string(k));
			}
		}
		if (n != 1) {
			json_object_del(cand, "answer");
			import_report(p, line, n ? "missing \"answer_idx\" and the answer text matches %d options"
			                  : "missing \"answer_idx\" and the answer text matches no option",
			       n);
			goto bad;
		}
	} else if (idx) {
		json_object_set(cand, "answer", idx);
	}
	v = json_object_get(obj, "meta_info");
	if (v && !json_is_null(v))
		json_object_set_new(cand, "meta", json_pack("{sO}", "meta_info", v));
	import_emit(p, cand, line);
	return;
bad:
	json_decref(cand);
}

const struct import_format import_format_medqa = {
	.name = "medqa",
	.description = "MedQA JSON Lines: question, options, answer_idx",
	.kind = IMPORT_JSON_LINES,
	.question_key = "question",
	.answer_key = "answer_idx",
	.parse_json = medqa_parse,
	.sniff = import_sniff_records,
};
