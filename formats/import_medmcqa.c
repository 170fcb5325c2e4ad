/* medmcqa: the MedMCQA JSON Lines: question, opa..opd (options A..D), cop
 * (1..4 or a..d), exp, subject_name, topic_name, choice_type. */

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "formats/import_impl.h"

static void medmcqa_parse(struct import_parser *p, const char *rec_key, json_t *obj, long line)
{
	static const char *const opk[] = {"opa", "opb", "opc", "opd"};
	json_t *cand = json_object(), *opts = json_object(), *meta = json_object(), *v;
	int cop = 0;
	char *dump = NULL;

	(void)rec_key; /* not a keyed document */
	if (!cand || !opts || !meta) {
		import_oom(p);
		goto out;
	}
	if (import_copy_id(p, line, obj, cand) < 0 || import_get_str(p, line, obj, "question", &v) < 0)
		goto out;
	if (v)
		json_object_set(cand, "question", v);
	for (int i = 0; i < 4; i++) {
		char k[2] = {(char)('A' + i), '\0'};

		if (import_get_str(p, line, obj, opk[i], &v) < 0)
			goto out;
		if (v && !import_str_blank(v))
			json_object_set(opts, k, v);
	}
	v = json_object_get(obj, "cop");
	if (!v || json_is_null(v)) {
		import_report(p, line, "missing \"cop\" (the MedMCQA test split has no answers)");
		goto out;
	}
	if (json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= 4)
		cop = (int)json_integer_value(v);
	else if (json_is_string(v) && json_string_length(v) == 1 &&
	         strchr("abcdABCD", json_string_value(v)[0]))
		cop = tolower((unsigned char)json_string_value(v)[0]) - 'a' + 1;
	if (!cop) {
		dump = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		const char *found = dump ? dump : "?";

		import_report(p, line, "\"cop\" must be 1, 2, 3 or 4 (opa..opd), found %.*s",
			      (int)utf8_prefix(found, strlen(found), 40), found);
		goto out;
	}
	{
		char k[2] = {(char)('A' + cop - 1), '\0'};

		if (!json_object_get(opts, k)) {
			import_report(p, line, "\"cop\" %d names %s, which is empty", cop, opk[cop - 1]);
			goto out;
		}
		json_object_set_new(cand, "answer", json_string(k));
	}
	json_object_set(cand, "options", opts);
	if (import_copy_str(p, line, obj, "exp", cand, "explanation") < 0 ||
	    import_copy_str(p, line, obj, "subject_name", cand, "topic") < 0 ||
	    import_copy_str(p, line, obj, "topic_name", meta, "topic_name") < 0 ||
	    import_copy_str(p, line, obj, "choice_type", meta, "choice_type") < 0)
		goto out;
	if (json_object_size(meta))
		json_object_set(cand, "meta", meta);
	import_emit(p, cand, line);
	cand = NULL;
out:
	free(dump);
	json_decref(meta);
	json_decref(opts);
	json_decref(cand);
}

const struct import_format import_format_medmcqa = {
	.name = "medmcqa",
	.description = "MedMCQA JSON Lines: question, opa..opd, cop",
	.kind = IMPORT_JSON_LINES,
	.question_key = "question",
	.answer_key = "cop",
	.parse_json = medmcqa_parse,
	.sniff = import_sniff_records,
};
